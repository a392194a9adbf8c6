"""The duplicate-GET window keeps a margin and restarts when an attempt ends.

Precoro refuses an identical GET within 60 s of the one it saw (`docs/precoro-api.md`,
"Rate limits"). The server sees a request some time after the governor admits it, so
the window is counted from the end of each attempt, plus 10% as for the per-second
spacing.
"""

from __future__ import annotations

import socket

import pytest
from precoro_client.client import PrecoroClient
from precoro_client.governor import DUPLICATE_GET_MARGIN

URL = "https://api.precoro.com/suppliers?page=1&per_page=100"
FAST = {"max_requests_per_second": 1000}


def test_identical_get_waits_the_window_plus_its_margin(make_governor, clock):
    governor = make_governor(**FAST)
    start = clock.now
    governor.acquire("GET", URL)
    governor.acquire("GET", URL)
    assert DUPLICATE_GET_MARGIN > 0
    assert clock.now - start == pytest.approx(60 * (1 + DUPLICATE_GET_MARGIN))
    assert clock.now - start > 60


def test_the_window_restarts_when_the_attempt_ends(make_governor, clock):
    governor = make_governor(**FAST)
    governor.acquire("GET", URL)
    clock.advance(20)  # a slow answer (or a timeout): the server may have seen it late
    governor.settle("GET", URL)
    ended = clock.now
    governor.acquire("GET", URL)
    assert clock.now - ended == pytest.approx(66.0)
    # Writes and other pages are not held.
    before = clock.now
    governor.settle("POST", URL)
    governor.acquire("POST", URL)
    governor.acquire("GET", URL.replace("page=1", "page=2"))
    assert clock.now - before < 1


def test_a_slow_failed_get_is_retried_only_after_the_window(
    make_settings, make_governor, raw_server, clock
):
    """The client settles after every attempt, so the retry clears the server's window."""
    seen: list[float] = []

    def slow_503(conn: socket.socket, _request: bytes) -> None:
        seen.append(clock.now)
        clock.advance(30)  # the 503 arrives 30 s after the request left
        body = b'{"message": "busy"}'
        conn.sendall(
            b"HTTP/1.1 503 X\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def ok(conn: socket.socket, _request: bytes) -> None:
        seen.append(clock.now)
        body = b'{"data": []}'
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    raw_server.actions = [slow_503, ok]
    settings = make_settings(api_url=raw_server.url, max_tries=3, **FAST)
    client = PrecoroClient(settings, governor=make_governor(settings), jitter=lambda _: 0.0)
    try:
        assert client.get_json("/suppliers", {"page": 1}) == {"data": []}
    finally:
        client.close()
    assert len(seen) == 2
    # The server saw the first GET at seen[0] at the earliest and at seen[0] + 30 at the
    # latest; the retry leaves a full window plus margin after that.
    assert seen[1] - (seen[0] + 30) >= 66


def test_two_processes_on_one_ledger_share_the_window(make_governor, make_settings, clock):
    """Two taps on one key: the second's identical GET waits for the first's to end + 66 s."""
    settings = make_settings(**FAST)
    first, second = make_governor(settings), make_governor(settings)
    first.acquire("GET", URL)
    clock.advance(4)
    first.settle("GET", URL)
    ended = clock.now
    second.acquire("GET", URL)
    assert clock.now - ended == pytest.approx(66.0)
