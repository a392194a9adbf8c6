"""Run the tap against the sandbox and collect what it emitted."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from precoro_sandbox.server import SandboxServer
from tap_precoro.tap import TapPrecoro


@dataclass
class TapRun:
    """Messages of one tap run."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    states: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int = 0

    @property
    def state(self) -> dict[str, Any]:
        """The last STATE the run emitted (what Meltano would store)."""
        return self.states[-1] if self.states else {}

    def ids(self, stream: str) -> list[int]:
        """Ids emitted for a stream, in order."""
        return [int(r["id"]) for r in self.records.get(stream, [])]


def parse_messages(text: str) -> TapRun:
    """Read Singer messages (one JSON object per line)."""
    run = TapRun()
    for line in text.splitlines():
        if not line.strip():
            continue
        message = json.loads(line)
        if message["type"] == "RECORD":
            run.records[message["stream"]].append(message["record"])
        elif message["type"] == "STATE":
            run.states.append(message["value"])
    return run


def _tap_config(sb: SandboxServer, ledger_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A config for the sandbox with a private ledger and a governor as fast as the
    sandbox allows (limits off unless a test sets them)."""
    return {
        "auth_token": sb.token,
        "email": sb.email,
        "api_url": sb.url,
        "budget_ledger_path": str(ledger_dir / "ledger.sqlite3"),
        "max_requests_per_second": 1000,
        "duplicate_get_interval_seconds": 0,
        **overrides,
    }


def _run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    streams: list[str] | None = None,
) -> TapRun:
    """Run the tap in-process (optionally only some streams) and parse its output."""
    tap = TapPrecoro(config=config, state=state or {}, validate_config=True)
    if streams is not None:
        for name, stream in tap.streams.items():
            stream.selected = name in streams
    buffer = io.StringIO()
    exit_code = 0
    with redirect_stdout(buffer):
        try:
            tap.sync_all()
        except SystemExit as exc:
            exit_code = int(exc.code or 0)
    run = parse_messages(buffer.getvalue())
    run.exit_code = exit_code
    return run


@pytest.fixture
def ledger_dir(tmp_path: Path) -> Path:
    """A private ledger directory per test (budgets never leak between tests)."""
    path = tmp_path / "ledger"
    path.mkdir()
    return path


@pytest.fixture
def make_config(ledger_dir: Path) -> Callable[..., dict[str, Any]]:
    """`make_config(sandbox, **overrides)`: tap config for a sandbox."""

    def make(sb: SandboxServer, **overrides: Any) -> dict[str, Any]:
        return _tap_config(sb, ledger_dir, **overrides)

    return make


@pytest.fixture
def run_tap() -> Callable[..., TapRun]:
    """`run_tap(config, state=None, streams=None)`: run in-process, return messages."""
    return _run_tap
