"""What the generator scripts need to know about the plugins' `--about` output.

`readme_settings.py` renders the README tables and `meltano_settings.py` the
meltano.yml settings and the Meltano plugin definition files from it; all of them list
the same plugins.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plugin:
    """The facts about a plugin that `--about` does not report."""

    name: str
    plugin_type: str
    """Meltano's plural plugin type (the definition file's folder)."""
    label: str

    @property
    def namespace(self) -> str:
        """Meltano namespace (the package's import name)."""
        return self.name.replace("-", "_")

    @property
    def definition_path(self) -> Path:
        """The plugin definition file for `meltano add --from-ref`."""
        return ROOT / "plugins" / self.plugin_type / f"{self.name}.yml"


PLUGIN_INFO = {
    "tap-precoro": Plugin("tap-precoro", "extractors", "Precoro"),
    "target-precoro": Plugin("target-precoro", "loaders", "Precoro"),
}
PLUGINS = tuple(PLUGIN_INFO)
SDK_BUILTINS = ("stream_maps", "stream_map_config", "faker_config", "flattening_", "batch_config")
"""Settings the SDK adds to every plugin; the README tables leave them to the SDK's docs
(meltano.yml and the definition files declare them, so their variables map)."""


def about(plugin: str, output_format: str) -> str:
    """`<plugin> --about --format=<output_format>`, from the executable beside this Python."""
    executable = Path(sys.executable).parent / plugin
    return subprocess.run(
        [str(executable), "--about", f"--format={output_format}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
