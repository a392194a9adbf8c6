"""The README's settings tables are exactly what the plugins' `--about` says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_settings_tables_match_about():
    spec = importlib.util.spec_from_file_location(
        "readme_settings", ROOT / "scripts" / "readme_settings.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text()
    assert module.render(readme) == readme, "README settings tables are stale: run `make readme`"
    for plugin in module.PLUGINS:
        assert f"<!-- BEGIN {plugin} settings -->\n| Setting" in readme
