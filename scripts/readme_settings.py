"""Regenerate the README's settings tables from the plugins' `--about --format=markdown`.

Run `make readme` after changing a setting; `tests/test_readme.py` fails while the
README lags behind the code, so the tables never drift from `--about`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_about import PLUGINS, SDK_BUILTINS, about

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def settings_table(plugin: str) -> str:
    """The Settings table of a plugin's markdown --about, minus the SDK's built-ins."""
    lines = about(plugin, "markdown").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Setting"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        name = line.split("|")[1].strip()
        if name.startswith(SDK_BUILTINS):
            continue
        table.append(line)
    return "\n".join(table)


def render(readme: str) -> str:
    """README text with every marked table replaced by the current one."""
    for plugin in PLUGINS:
        pattern = re.compile(
            rf"(<!-- BEGIN {plugin} settings -->\n).*?(<!-- END {plugin} settings -->)",
            re.DOTALL,
        )
        readme = pattern.sub(
            lambda m, p=plugin: m.group(1) + settings_table(p) + "\n" + m.group(2), readme
        )
    return readme


def main() -> None:
    README.write_text(render(README.read_text()))
    print(f"updated {README}")


if __name__ == "__main__":
    main()
