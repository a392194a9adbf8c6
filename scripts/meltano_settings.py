"""Regenerate the `settings:` lists of the local plugins in meltano.yml from `--about`.

Meltano only offers (and only maps `TAP_PRECORO_*` variables to) settings the project
declares, so meltano.yml must list every setting the plugins accept, with its type,
description and `sensitive: true` for the token. Writing that list by hand drifts;
`make readme` runs this script and `tests/meltano/test_project.py` fails while
meltano.yml lags behind the code. Only the lines between the `# BEGIN <plugin>
settings` and `# END <plugin> settings` markers are rewritten.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_about import PLUGINS, SDK_BUILTINS
from plugin_about import about as about_text

ROOT = Path(__file__).resolve().parent.parent
MELTANO_YML = ROOT / "meltano.yml"
INDENT = " " * 4


def about(plugin: str) -> dict[str, Any]:
    """The plugin's `--about --format=json`."""
    result: dict[str, Any] = json.loads(about_text(plugin, "json"))
    return result


def meltano_kind(spec: dict[str, Any]) -> str:
    """Meltano's setting kind for a JSON-schema property."""
    types = spec.get("type", "string")
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    if "enum" in spec:
        return "options"
    first = types[0] if types else "string"
    return {"number": "decimal"}.get(first, first)


def yaml_scalar(value: Any) -> str:
    """One YAML scalar via JSON, which YAML reads unchanged (quotes keep `:` and `#` safe)."""
    return json.dumps(value, ensure_ascii=False)


def settings_yaml(plugin: str) -> list[str]:
    """The lines of one plugin's `settings:` list."""
    schema = about(plugin)["settings"]
    lines: list[str] = []
    for name, spec in schema["properties"].items():
        if name.startswith(SDK_BUILTINS):
            continue
        kind = meltano_kind(spec)
        lines.append(f"{INDENT}- name: {name}")
        lines.append(f"{INDENT}  kind: {kind}")
        if spec.get("secret"):
            lines.append(f"{INDENT}  sensitive: true")
        if kind == "options":
            lines.append(f"{INDENT}  options:")
            for option in spec["enum"]:
                lines.append(f"{INDENT}  - label: {yaml_scalar(str(option))}")
                lines.append(f"{INDENT}    value: {yaml_scalar(option)}")
        description = spec.get("description") or spec.get("title") or name
        if spec.get("default") is not None:
            # Shown, not passed: a `value:` here would be sent to the plugin on every
            # run and could contradict a related setting (api_url vs region).
            description += f" Default: {json.dumps(spec['default'])}."
        lines.append(f"{INDENT}  description: {yaml_scalar(description)}")
    return lines


def render(text: str) -> str:
    """meltano.yml text with every marked settings list replaced by the current one."""
    for plugin in PLUGINS:
        pattern = re.compile(
            rf"(^[ \t]*# BEGIN {plugin} settings[^\n]*\n).*?(^[ \t]*# END {plugin} settings)",
            re.DOTALL | re.MULTILINE,
        )
        if not pattern.search(text):
            raise SystemExit(f"meltano.yml has no '# BEGIN {plugin} settings' marker")
        body = "\n".join(settings_yaml(plugin)) + "\n"
        text = pattern.sub(lambda m: m.group(1) + body + m.group(2), text)  # noqa: B023
    return text


def main() -> None:
    """Rewrite meltano.yml in place."""
    MELTANO_YML.write_text(render(MELTANO_YML.read_text()))
    print(f"updated {MELTANO_YML}")


if __name__ == "__main__":
    main()
