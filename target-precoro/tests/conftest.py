"""Fixtures for target-precoro tests; helpers live in `target_precoro.testing`."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep TARGET_PRECORO_* variables of the developer's shell out of the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("TARGET_PRECORO_"):
            monkeypatch.delenv(name)


@pytest.fixture
def frozen(sandbox_factory: Any) -> Any:
    """A sandbox whose clock moves only when a test moves it (settle periods, re-checks)."""
    from precoro_sandbox.testing import START

    return sandbox_factory(limits="off", clock_start=START, clock_frozen=True)
