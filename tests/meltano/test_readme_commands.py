"""Every `meltano` command the README, docs/ and meltano.yml show parses on the pinned Meltano.

Each command line (shell blocks, inline code, comments in YAML examples) is parsed by
the pinned Meltano's own CLI definition (`meltano_cli_check.py`, run with Meltano's
Python) without running it, so Meltano 3 forms such as `meltano config <plugin> set` or
`meltano add loader <name>` fail here. What can run locally runs elsewhere:
`test_fresh_project.py` (add, config set/list/print/test, invoke) and the end-to-end
tests (run, state, job, schedule).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

from meltano_project import MELTANO, ROOT

CHECKER = ROOT / "tests" / "meltano" / "meltano_cli_check.py"
MELTANO_PYTHON = MELTANO.parent / "python"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")
COMMAND = re.compile(r"^(?:[A-Z][A-Z0-9_]*=\S*\s+)*meltano\s+(.*)$")
PLACEHOLDER = re.compile(r"<([^<>]*)>")


def arguments(command: str) -> list[str]:
    """The arguments after `meltano`, placeholders filled in, comments and `...` dropped."""

    def fill(match: re.Match[str]) -> str:
        path = re.search(r"plugins/\S+\.yml", match.group(1))
        return str(ROOT / path.group(0)) if path else "placeholder"

    return [a for a in shlex.split(PLACEHOLDER.sub(fill, command), comments=True) if a != "..."]


def in_comment(line: str) -> list[tuple[list[str], bool]]:
    """Commands in a `#` comment: a whole command line, or inline code spans."""
    comment = line.split("#", 1)[1].strip()
    found = [(arguments(m.group(1)), True) for m in [COMMAND.match(comment)] if m]
    return found or spans(comment)


def spans(text: str) -> list[tuple[list[str], bool]]:
    """Commands named in inline code (prose: required arguments may be left out)."""
    found = []
    for span in INLINE.findall(text):
        if match := COMMAND.match(" ".join(span.split())):
            found.append((arguments(match.group(1)), False))
    return found


def markdown_commands(text: str) -> list[tuple[list[str], bool]]:
    """(arguments, strict) of every meltano command in Markdown: blocks, comments, prose."""
    found: list[tuple[list[str], bool]] = []
    for block in FENCE.findall(text):
        for line in block.splitlines():
            if match := COMMAND.match(line.strip()):
                found.append((arguments(match.group(1)), True))
            elif "#" in line:
                found += in_comment(line)
    return found + spans(FENCE.sub("", text))


def yaml_commands(text: str) -> list[tuple[list[str], bool]]:
    """(arguments, strict) of every meltano command in the comments of a YAML file."""
    return [c for line in text.splitlines() if "#" in line for c in in_comment(line)]


def test_every_documented_meltano_command_parses_on_the_pinned_meltano() -> None:
    lines = markdown_commands((ROOT / "README.md").read_text())
    for doc in sorted((ROOT / "docs").glob("*.md")):
        lines += markdown_commands(doc.read_text())
    lines += yaml_commands((ROOT / "meltano.yml").read_text())
    documented = {" ".join(a) for a, _ in lines}
    for expected in ("add tap-precoro --from-ref", "config set tap-precoro auth_token"):
        assert any(line.startswith(expected) for line in documented), expected
    assert len(lines) > 30
    result = subprocess.run(
        [str(MELTANO_PYTHON), str(CHECKER)],
        input=json.dumps(lines),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    problems = json.loads(result.stdout)
    assert problems == {}, "commands the pinned Meltano refuses:\n" + "\n".join(
        f"meltano {line}: {why}" for line, why in problems.items()
    )


def test_the_checker_refuses_meltano_3_forms() -> None:
    lines = [
        (["config", "tap-precoro", "set", "auth_token", "x"], True),
        (["add", "loader", "target-postgres"], True),
        (["state", "get"], True),
        (["run", "--no-such-option", "tap-precoro", "target-erp"], True),
        (["state", "get"], False),  # named in prose: arguments may be left out
        (["config", "set", "tap-precoro", "auth_token", "x"], True),
    ]
    result = subprocess.run(
        [str(MELTANO_PYTHON), str(CHECKER)],
        input=json.dumps(lines),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert set(json.loads(result.stdout)) == {
        "config tap-precoro set auth_token x",
        "add loader target-postgres",
        "state get",
        "run --no-such-option tap-precoro target-erp",
    }
