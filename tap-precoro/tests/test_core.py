"""The Singer SDK's standard tap tests, run against a sandbox started for this module."""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path

from precoro_sandbox.server import SandboxServer
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_precoro.tap import TapPrecoro
from tap_precoro.testing import catalog_selecting

# The SDK builds the test class at import time, so the sandbox must exist by then.
_SANDBOX = SandboxServer(scale=15, limits="off").start()
atexit.register(_SANDBOX.close)
_LEDGER = Path(tempfile.mkdtemp(prefix="tap-precoro-core-")) / "ledger.sqlite3"

CONFIG = {
    "auth_token": _SANDBOX.token,
    "email": _SANDBOX.email,
    "api_url": _SANDBOX.url,
    "budget_ledger_path": str(_LEDGER),
    "max_requests_per_second": 1000,
    "duplicate_get_interval_seconds": 0,
    "page_size": 20,
}


TestTapPrecoro = get_tap_test_class(
    tap_class=TapPrecoro,
    config=CONFIG,
    # Credit notes are deselected by default (invoices already carry them); the
    # standard suite checks every stream, so it gets a catalog that selects all.
    catalog=catalog_selecting(CONFIG, None),
    suite_config=SuiteConfig(),
)
