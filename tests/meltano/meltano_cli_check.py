"""Check command lines against the pinned Meltano's own CLI, without running them.

Run with Meltano's Python (`.meltano-venv/bin/python`): reads a JSON list of
`[args, strict]` pairs on stdin, parses each `meltano <args>` with Meltano's click
commands (subcommands, options, arguments; a confirmation prompt reads a closed stdin),
and prints a JSON object mapping each rejected command line to the reason. A line that
is not strict (a command named in prose) may leave out required arguments.
"""

from __future__ import annotations

import json
import sys

import click
from meltano.cli import cli
from meltano.core.plugin import PluginType

PLUGIN_TYPE_WORDS = {t.value for t in PluginType} | {t.singular for t in PluginType}


def problem(args: list[str], *, strict: bool) -> str | None:
    """Why Meltano would refuse `meltano <args>`, or None."""
    command: click.Command = cli
    name = "meltano"
    parent: click.Context | None = None
    rest = list(args)
    path: list[str] = []
    try:
        while True:
            if parent is None:  # the callbacks look for a project; there is none
                ctx = command.make_context(name, rest, obj={"project": None})
            else:
                ctx = command.make_context(name, rest, parent=parent)
            if not isinstance(command, click.Group):
                break
            remaining = [*ctx._protected_args, *ctx.args]
            if not remaining:
                break
            sub_name, sub, rest = command.resolve_command(ctx, remaining)
            if sub is None or sub_name is None:
                return f"no command {remaining[0]!r}"
            path.append(sub_name)
            command, name, parent = sub, sub_name, ctx
    except (click.exceptions.Abort, click.exceptions.Exit):
        return None  # a confirmation prompt or --help/--version: the line parsed
    except click.MissingParameter as exc:
        return exc.format_message() if strict else None
    except click.UsageError as exc:
        return exc.format_message()
    if path == ["add"]:
        # Meltano 4 infers the type from the name (tap-/target-, else utility); a type
        # word is taken for a plugin name (`meltano add loader x` adds a utility 'loader').
        words = [a for a in ctx.params.get("plugin", ()) if a in PLUGIN_TYPE_WORDS]
        if words:
            return f"{words[0]!r} is read as a plugin name: use --plugin-type"
    return None


def main() -> None:
    """Print the problems of the command lines read from stdin."""
    lines: list[tuple[list[str], bool]] = json.load(sys.stdin)
    out = sys.stdout
    sys.stdin = open("/dev/null")  # noqa: SIM115 - prompts read EOF and abort
    sys.stdout = sys.stderr  # prompts and messages stay out of the report
    report = {" ".join(a): p for a, strict in lines if (p := problem(a, strict=strict))}
    out.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
