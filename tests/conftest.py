"""Fixtures shared by the root tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def offline_plugin_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A config both plugins accept, pointing at a closed port (no request can succeed).

    The test runs in its own folder, so `--config=ENV` reads no stray `.env`.
    """
    monkeypatch.chdir(tmp_path)
    return {
        "auth_token": "tok-Settings-0123456789",
        "email": "api@example.com",
        "api_url": "http://127.0.0.1:9",
        "budget_ledger_path": str(tmp_path / "ledger.sqlite3"),
        "state_dir": str(tmp_path / "target-state"),
        "report_dir": str(tmp_path / "reports"),
    }
