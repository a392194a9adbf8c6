"""Pytest fixtures that start the sandbox in-process (registered as a pytest11 plugin).

- `sandbox`: a fresh small dataset per test, rate limits off (fast), UTC.
- `sandbox_factory(**options)`: start sandboxes with any SandboxOptions field; all are
  closed at the end of the test.

`PRECORO_SANDBOX_SETTINGS=key=value,...` (e.g. `modified_since=strict,unknown_filters=reject`)
sets runtime switches of every sandbox these fixtures start, unless a test sets them:
the way to run a plugin's suite against the other reading of an unknown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from precoro_sandbox.options import SandboxOptions, parse_switches
from precoro_sandbox.server import SandboxServer

SETTINGS_ENV = "PRECORO_SANDBOX_SETTINGS"
"""Environment variable with switch overrides for the fixtures' sandboxes."""

SMALL_SCALE = 30
"""Suppliers in the default test dataset (≈ 400 records in all, several pages each)."""

SandboxFactory = Callable[..., SandboxServer]


@pytest.fixture
def sandbox_factory() -> Iterator[SandboxFactory]:
    """Start sandboxes with options (defaults: scale 30, limits off); closed after the test."""
    started: list[SandboxServer] = []

    def make(**options: Any) -> SandboxServer:
        switches = parse_switches(os.environ.get(SETTINGS_ENV, ""))
        merged: dict[str, Any] = {"scale": SMALL_SCALE, "limits": "off", **switches, **options}
        server = SandboxServer(SandboxOptions(**merged)).start()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.close()


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> SandboxServer:
    """A running sandbox with a small fresh dataset and no rate limits."""
    return sandbox_factory()
