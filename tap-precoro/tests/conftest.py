"""Run the tap against the sandbox and collect what it emitted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from precoro_sandbox.server import SandboxServer
from tap_precoro import testing
from tap_precoro.testing import TapRun


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
    return testing.run_tap
