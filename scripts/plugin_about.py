"""What the generator scripts need to know about the plugins' `--about` output.

`readme_settings.py` renders the README tables and `meltano_settings.py` the
meltano.yml settings from it; both list the same plugins and skip the same settings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLUGINS = ("tap-precoro", "target-precoro")
SDK_BUILTINS = ("stream_maps", "stream_map_config", "faker_config", "flattening_", "batch_config")
"""Settings the SDK adds to every plugin; Meltano declares them itself, and they are
not this project's to document."""


def about(plugin: str, output_format: str) -> str:
    """`<plugin> --about --format=<output_format>`, from the executable beside this Python."""
    executable = Path(sys.executable).parent / plugin
    return subprocess.run(
        [str(executable), "--about", f"--format={output_format}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
