"""Fixtures shared by the sandbox contract tests (the rest come from the pytest plugin)."""

from __future__ import annotations

import pytest
import requests
from precoro_sandbox.server import SandboxServer
from precoro_sandbox.testing import client


@pytest.fixture
def api(sandbox: SandboxServer) -> requests.Session:
    """A session authenticated as company 1 of the default sandbox."""
    return client(sandbox)
