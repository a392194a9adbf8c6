"""The governor at Precoro's real limits: at least 97% of 1 request/s and no 429.

Time-compressed: the sandbox runs with its documented limits (1/s, no identical GET
within 60 s, 1500/hour, 3000/day in fixed windows) on a frozen clock that only the
test moves. The governor reads that clock and "sleeps" by moving it, and every request
moves it by a seeded network delay on the way out (before the server sees it) and on
the way back, so the server sees each request later than it left, by a varying
amount, exactly as over a network. An hour of traffic takes seconds; the sandbox
counts the 429s.
"""

from __future__ import annotations

import random
from typing import Any

import requests
from precoro_client.client import PrecoroClient
from precoro_client.governor import RateGovernor
from precoro_client.settings import PrecoroSettings
from precoro_sandbox.server import SandboxServer
from precoro_sandbox.testing import START


class DelayedSession(requests.Session):
    """Moves the sandbox clock by a seeded delay before each request and after it."""

    def __init__(self, sb: SandboxServer, *, max_delay: float, seed: int = 7) -> None:
        super().__init__()
        self.clock = sb.sandbox.clock
        self.max_delay = max_delay
        self.random = random.Random(seed)
        self.sent: list[float] = []
        """When each request left (sandbox clock)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(self.clock.timestamp())
        self.clock.advance(self.random.uniform(0, self.max_delay))  # on the way out
        response = super().send(request, **kwargs)
        self.clock.advance(self.random.uniform(0, self.max_delay))  # on the way back
        return response


def governed_client(sb: SandboxServer, tmp_path: Any, max_delay: float) -> PrecoroClient:
    clock = sb.sandbox.clock
    settings = PrecoroSettings.from_config(
        {
            "auth_token": sb.token,
            "email": sb.email,
            "api_url": sb.url,
            "budget_ledger_path": str(tmp_path / "ledger.sqlite3"),
            "max_wait_seconds": 3600,  # sleep through the hourly window (virtual time)
        }
    )
    governor = RateGovernor(settings, clock=clock.timestamp, sleep=clock.advance)
    session = DelayedSession(sb, max_delay=max_delay)
    return PrecoroClient(settings, governor=governor, session=session)


def test_real_limits_at_97_percent_of_the_rate_without_a_429(sandbox_factory, tmp_path):
    sb = sandbox_factory(limits="real", clock_start=START, clock_frozen=True, scale=5)
    client = governed_client(sb, tmp_path, max_delay=0.020)  # up to 20 ms each way
    assert isinstance(client.session, DelayedSession)
    sent = client.session.sent
    try:
        for n in range(1520):  # past the 1500/hour limit
            client.get_json("/suppliers", {"page": n + 1, "per_page": 10})
    finally:
        client.close()
    counters = sb.admin.counters()
    assert counters.get(status=429) == 0
    assert counters.get(status=200) == 1520
    assert client.call_count == 1520  # no retries: every call was answered at once
    # The first hour's 1500 calls: the per-second limit is the only one that binds.
    rate = 1499 / (sent[1499] - sent[0])
    assert rate >= 0.97, rate
    assert rate < 1.0
    # Call 1501 waited for the rolling hour: never early at the server's fixed hour.
    assert sent[1500] - sent[0] >= 3600
