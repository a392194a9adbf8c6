"""Run the target in-process against a sandbox and read what it did (for tests and scripts).

A hermetic config (state, reports and ledger under one folder), Singer input built
from records, the run's outcomes and summary, and the sandbox's rows read test-side.
Shared by the target's tests and any end-to-end test, like the tap's `testing.py`.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from target_precoro.target import TargetPrecoro

if TYPE_CHECKING:
    import pytest

FAST = {
    "max_requests_per_second": 1000,
    "duplicate_get_interval_seconds": 0,
    "max_tries": 2,
}


def make_config(sb: Any, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Config for one sandbox, with state, reports and the ledger under tmp_path."""
    return {
        "auth_token": sb.token,
        "email": sb.email,
        "api_url": sb.url,
        "budget_ledger_path": str(tmp_path / "ledger.sqlite3"),
        "state_dir": str(tmp_path / "state"),
        "report_dir": str(tmp_path / "reports"),
        **FAST,
        **overrides,
    }


def schema_line(stream: str) -> str:
    """A permissive SCHEMA message keyed by externalId."""
    return json.dumps(
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": {"type": "object", "properties": {"externalId": {"type": "string"}}},
            "key_properties": ["externalId"],
        }
    )


def singer(stream: str, records: Iterable[dict[str, Any]], state: Any = None) -> str:
    """SCHEMA + RECORD lines (+ an optional STATE) for one stream."""
    lines = [schema_line(stream)]
    lines += [json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    if state is not None:
        lines.append(json.dumps({"type": "STATE", "value": state}))
    return "\n".join(lines) + "\n"


@dataclass
class RunResult:
    """What one in-process run produced."""

    exit_code: int
    outcomes: list[dict[str, Any]]
    summary: dict[str, Any]
    report_dir: Path
    stdout: str

    def by_id(self) -> dict[str | None, dict[str, Any]]:
        return {o.get("external_id"): o for o in self.outcomes}

    def outcome_of(self, external_id: str) -> str:
        return str(self.by_id()[external_id]["outcome"])

    @property
    def states(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def rejected(self) -> list[dict[str, Any]]:
        path = self.report_dir / "rejected-lines.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def dead_letter(self) -> list[dict[str, Any]]:
        path = self.report_dir / "dead-letter.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


def run_target(
    config: dict[str, Any], text: str | bytes, capsys: pytest.CaptureFixture[str] | None = None
) -> RunResult:
    """Run the target on `text` (bytes: read as stdin is, through a UTF-8 text layer).

    Returns exit code, report lines and summary.
    """
    target = TargetPrecoro(config=config, parse_env_config=False)
    if capsys is not None:
        capsys.readouterr()
    code = 0
    source: io.TextIOBase
    if isinstance(text, bytes):
        source = io.TextIOWrapper(io.BytesIO(text), encoding="utf-8")
    else:
        source = io.StringIO(text)
    try:
        target.listen(source)  # type: ignore[arg-type]
    except SystemExit as exc:
        code = int(exc.code or 0)
    stdout = capsys.readouterr().out if capsys is not None else ""
    runtime = target.run.opened_runtime
    assert runtime is not None
    folder = runtime.report.dir
    report = folder / "report.jsonl"
    lines = report.read_text().splitlines() if report.exists() else []
    summary = json.loads((folder / "summary.json").read_text())
    return RunResult(code, [json.loads(line) for line in lines], summary, folder, stdout)


def api_records(sb: Any, entity_path: str, **params: Any) -> list[dict[str, Any]]:
    """Every record of a list endpoint, read straight from the sandbox (test-side)."""
    import requests

    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        response = requests.get(
            f"{sb.url}{entity_path}",
            params={**params, "page": page, "per_page": 200},
            headers=sb.headers,
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        rows.extend(body["data"])
        if not body["meta"]["pagination"]["has_next_page"]:
            return rows
        page += 1


def suppliers(prefix: str, label: str, n: int) -> list[dict[str, Any]]:
    """`n` minimal ERP suppliers with externalIds `<prefix>-<i>`."""
    return [
        {"externalId": f"{prefix}-{i}", "name": f"{label} Vendor {i}", "country": "France"}
        for i in range(n)
    ]


def rows_per_external_id(sb: Any, prefix: str) -> Counter[str]:
    """How many Precoro suppliers carry each externalId starting with `prefix`."""
    rows = api_records(sb, "/suppliers")
    return Counter(r["externalId"] for r in rows if str(r.get("externalId")).startswith(prefix))
