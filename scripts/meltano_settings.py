"""Regenerate the Meltano definitions of the local plugins from their `--about`.

Meltano only offers (and only maps `TAP_PRECORO_*` variables to) settings a plugin
definition declares, shows the plugins' own log levels only for `structured-logging`,
and calls a setting optional with no default unless told, so the definitions must list
every setting with its kind, `value:` default, `sensitive: true` for the token, the
capabilities and the required group. Writing that by hand drifts; `make readme` runs
this script and `tests/meltano/test_project.py` fails while a definition lags behind
the code. It writes:

- in meltano.yml, the lines between `# BEGIN <plugin> settings` and `# END <plugin>
  settings` (capabilities, settings_group_validation, settings);
- `plugins/<type>/<plugin>.yml`, the whole definition for `meltano add <plugin>
  --from-ref <file or URL>` in any project (pip_url: the PyPI release of this version).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_about import PLUGIN_INFO, PLUGINS, ROOT
from plugin_about import about as about_text

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
    first = types[0] if types else "string"
    if "enum" in spec and all(isinstance(option, str) for option in spec["enum"]):
        return "options"
    # Numbers with a fixed set of values (page_size) stay numbers: Meltano compares an
    # option with the raw string of an environment variable ("100" is not 100); the
    # plugin's own schema checks the value.
    if first == "string" and spec.get("format") == "date-time":
        return "date_iso8601"
    return {"number": "decimal"}.get(first, first)


def yaml_scalar(value: Any) -> str:
    """One YAML value via JSON, which YAML reads unchanged (quotes keep `:` and `#` safe)."""
    return json.dumps(value, ensure_ascii=False)


def flow_list(values: list[str]) -> str:
    """A one-line YAML list."""
    return "[" + ", ".join(values) + "]"


def definition_lines(info: dict[str, Any]) -> list[str]:
    """capabilities, settings_group_validation and settings of one plugin, unindented."""
    schema = info["settings"]
    lines = [f"capabilities: {flow_list(info['capabilities'])}"]
    if schema.get("required"):
        lines += ["settings_group_validation:", f"- {flow_list(schema['required'])}"]
    lines.append("settings:")
    for name, spec in schema["properties"].items():
        kind = meltano_kind(spec)
        lines.append(f"- name: {name}")
        lines.append(f"  kind: {kind}")
        if spec.get("title"):
            lines.append(f"  label: {yaml_scalar(spec['title'])}")
        if spec.get("default") is not None:
            lines.append(f"  value: {yaml_scalar(spec['default'])}")
        if spec.get("secret"):
            lines.append("  sensitive: true")
        if kind == "options":
            lines.append("  options:")
            for option in spec["enum"]:
                lines.append(f"  - label: {yaml_scalar(str(option))}")
                lines.append(f"    value: {yaml_scalar(option)}")
        description = spec.get("description") or spec.get("title") or name
        lines.append(f"  description: {yaml_scalar(description)}")
    return lines


def definition_file(plugin: str, info: dict[str, Any] | None = None) -> str:
    """The text of `plugins/<type>/<plugin>.yml`."""
    info = info or about(plugin)
    meta = PLUGIN_INFO[plugin]
    head = [
        f"# Meltano plugin definition of {plugin} {info['version']}, generated from",
        f"# `{plugin} --about` by `make readme` (scripts/meltano_settings.py): do not edit.",
        f"#   meltano add {plugin} --from-ref <this file, or its raw URL>",
        f"name: {plugin}",
        f"namespace: {meta.namespace}",
        f"label: {yaml_scalar(meta.label)}",
        f"description: {yaml_scalar(info['description'])}",
        f"pip_url: {plugin}=={info['version']}",
        f"executable: {plugin}",
    ]
    return "\n".join([*head, *definition_lines(info)]) + "\n"


def render(text: str) -> str:
    """meltano.yml text with every marked definition block replaced by the current one."""
    for plugin in PLUGINS:
        pattern = re.compile(
            rf"(^[ \t]*# BEGIN {plugin} settings[^\n]*\n).*?(^[ \t]*# END {plugin} settings)",
            re.DOTALL | re.MULTILINE,
        )
        if not pattern.search(text):
            raise SystemExit(f"meltano.yml has no '# BEGIN {plugin} settings' marker")
        body = "".join(f"{INDENT}{line}\n" for line in definition_lines(about(plugin)))
        text = pattern.sub(lambda m: m.group(1) + body + m.group(2), text)  # noqa: B023
    return text


def main() -> None:
    """Rewrite meltano.yml in place and write the definition files."""
    MELTANO_YML.write_text(render(MELTANO_YML.read_text()))
    print(f"updated {MELTANO_YML}")
    for plugin, meta in PLUGIN_INFO.items():
        meta.definition_path.parent.mkdir(parents=True, exist_ok=True)
        meta.definition_path.write_text(definition_file(plugin))
        print(f"updated {meta.definition_path}")


if __name__ == "__main__":
    main()
