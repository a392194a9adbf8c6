"""Fixtures for target-precoro tests; helpers live in `target_helpers` (importable here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep TARGET_PRECORO_* variables of the developer's shell out of the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("TARGET_PRECORO_"):
            monkeypatch.delenv(name)
