"""Fixtures for the webhook end-to-end tests: a sandbox that fires webhooks at a real
receiver (waitress, SQLite inbox), and the tap run in-process in webhook mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from precoro_sandbox.server import SandboxServer
from tap_precoro.webhooks.inbox import SqliteInbox
from tap_precoro.webhooks.receiver import Receiver, ReceiverSettings
from tap_precoro.webhooks.testing import TEST_SECRET as SECRET

FAST_RETRIES = (0.05, 0.1)
"""Sandbox webhook retry delays: a dead receiver is given up on within ~0.2 s."""


@dataclass
class Rig:
    """A sandbox, the receiver it delivers to, and a tap config in webhook mode."""

    sandbox: SandboxServer
    inbox_path: Path
    ledger_dir: Path
    receiver: Receiver | None = None
    port: int = 0

    def start_receiver(self, **settings: Any) -> Receiver:
        """Start (or restart) the receiver on the same port and inbox file."""
        receiver = Receiver.open(
            self.inbox_path, ReceiverSettings(secret=SECRET, **settings), port=self.port
        ).start()
        self.receiver, self.port = receiver, receiver.port
        return receiver

    def stop_receiver(self) -> None:
        """Stop the receiver (it writes its `stopped` marker)."""
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None

    def config(self, **overrides: Any) -> dict[str, Any]:
        """Tap config for the sandbox, webhook mode on, limits as fast as allowed."""
        return {
            "auth_token": self.sandbox.token,
            "email": self.sandbox.email,
            "api_url": self.sandbox.url,
            "budget_ledger_path": str(self.ledger_dir / "ledger.sqlite3"),
            "max_requests_per_second": 1000,
            "duplicate_get_interval_seconds": 0,
            "webhook_inbox": str(self.inbox_path),
            **overrides,
        }

    def flush(self) -> None:
        """Wait until the sandbox delivered (or gave up on) every webhook."""
        assert self.sandbox.admin.flush_webhooks(timeout=30)

    def inbox(self) -> SqliteInbox:
        """A reader on the inbox (close it after use)."""
        return SqliteInbox(self.inbox_path)


@pytest.fixture
def rig(sandbox_factory: Callable[..., SandboxServer], tmp_path: Path) -> Iterator[Rig]:
    """Sandbox (scale 30, limits off, fast webhook retries) wired to a running receiver."""
    sandbox = sandbox_factory(webhook_retry_delays=FAST_RETRIES, webhook_timeout=5.0)
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    setup = Rig(sandbox=sandbox, inbox_path=tmp_path / "inbox.sqlite3", ledger_dir=ledger)
    receiver = setup.start_receiver()
    sandbox.admin.register_webhook(receiver.webhook_url())
    yield setup
    setup.stop_receiver()
