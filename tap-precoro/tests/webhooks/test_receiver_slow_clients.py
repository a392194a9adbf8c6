"""Unauthenticated slow or idle clients cannot starve genuine deliveries.

Each test runs a bounded attack from loopback (silent sockets plus sockets trickling
one header byte at a time, reopened whenever the receiver closes them) while genuine
deliveries are sent, each on a new connection with a generous timeout. The tests
count successes and what ends up in the inbox, not timings.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest
from tap_precoro.webhooks.cli import build_parser
from tap_precoro.webhooks.guard import ServerLimits
from tap_precoro.webhooks.inbox import SqliteInbox
from tap_precoro.webhooks.receiver import Receiver, ReceiverSettings
from tap_precoro.webhooks.testing import TEST_SECRET as SECRET
from tap_precoro.webhooks.testing import SlowClientAttack, deliver

REQUIRED_FRACTION = 0.95


def stored_ids(inbox: SqliteInbox) -> set[int]:
    return {e.notification.id for e in inbox.read_after(0, 100_000) if e.notification}


def wait_for(predicate, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_idle_and_trickling_sockets_do_not_starve_deliveries_at_the_defaults(tmp_path: Path):
    """The attack from the issue: 150 silent sockets and 50 trickling ones."""
    settings = ReceiverSettings(secret=SECRET)
    with (
        Receiver.open(tmp_path / "inbox.sqlite3", settings, port=0) as receiver,
        SlowClientAttack(receiver.host, receiver.port, idle=150, trickle=50) as attack,
    ):
        assert wait_for(lambda: attack.counts.bytes_trickled >= 50)
        results = deliver(receiver.webhook_url(), 40, threads=4, timeout=10)
        assert attack.open_sockets() >= 150  # the attack was still in place at the end
    assert results.fraction_ok >= REQUIRED_FRACTION, results.ok
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3")
    try:
        assert set(results.acknowledged_ids) <= stored_ids(inbox)  # every 200 is durable
    finally:
        inbox.close()


def test_more_attacking_sockets_than_the_connection_limit_still_let_deliveries_in(
    tmp_path: Path,
):
    """200 attacking sockets, reopened as soon as closed, against a limit of 100: the
    receiver evicts the longest-waiting unfinished connections to let new ones in."""
    limits = ServerLimits(connection_limit=100)
    settings = ReceiverSettings(secret=SECRET)
    with (
        Receiver.open(tmp_path / "inbox.sqlite3", settings, port=0, limits=limits) as receiver,
        SlowClientAttack(
            receiver.host, receiver.port, idle=150, trickle=50, reconnect_seconds=1.0
        ) as attack,
    ):
        waves = []
        for wave in range(3):
            # Each wave starts while the attack pushes against the limit: 50 more
            # of its connections were evicted since the previous wave started.
            evicted = receiver.guard.evicted
            assert wait_for(lambda e=evicted: receiver.guard.evicted >= e + 50)
            waves.append(
                deliver(
                    receiver.webhook_url(),
                    20,
                    threads=4,
                    timeout=15,
                    body=lambda i, w=wave: {"id": 100 * w + i + 1, "type": 7, "action": 1},
                )
            )
        guard = receiver.guard.as_dict()
    ok = sum(w.ok for w in waves)
    assert ok / sum(w.sent for w in waves) >= REQUIRED_FRACTION, [w.ok for w in waves]
    assert guard["evicted"] >= 150
    assert attack.counts.connects >= 350  # the attack kept reconnecting throughout
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3")
    try:
        assert {i for w in waves for i in w.acknowledged_ids} <= stored_ids(inbox)
    finally:
        inbox.close()


def test_trickling_and_silent_sockets_are_closed_at_the_request_deadline(tmp_path: Path):
    """Below the limit nothing is evicted: the 2 s request deadline closes every
    attacking socket however it trickles, again and again, while deliveries succeed."""
    limits = ServerLimits(request_timeout_seconds=2)
    settings = ReceiverSettings(secret=SECRET)
    with (
        Receiver.open(tmp_path / "inbox.sqlite3", settings, port=0, limits=limits) as receiver,
        SlowClientAttack(
            receiver.host, receiver.port, idle=20, trickle=30, trickle_seconds=0.5
        ) as attack,
    ):
        first = deliver(receiver.webhook_url(), 20, threads=4, timeout=15)
        # Every attacking socket is closed at least twice (a trickle never extends it).
        assert wait_for(lambda: receiver.guard.timed_out >= 100, seconds=90)
        second = deliver(
            receiver.webhook_url(),
            20,
            threads=4,
            timeout=15,
            body=lambda i: {"id": 1000 + i, "type": 7, "action": 1},
        )
        guard = receiver.guard.as_dict()
        closed = attack.counts.closed_by_server
    ok = first.ok + second.ok
    assert ok / (first.sent + second.sent) >= REQUIRED_FRACTION, (first.ok, second.ok)
    assert guard["evicted"] == 0
    assert closed >= 100
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3")
    try:
        assert set(first.acknowledged_ids + second.acknowledged_ids) <= stored_ids(inbox)
    finally:
        inbox.close()


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body); returns its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "connection closed before a response"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        chunk = sock.recv(4096)
        assert chunk, "connection closed inside a response"
        rest += chunk
    return head.split(b"\r\n", 1)[0]


def test_a_keep_alive_clients_next_request_has_its_own_deadline(tmp_path: Path):
    """The request deadline counts from a request's first byte, not from the accept:
    a keep-alive sender that idles and then sends slowly (within limits) is served."""
    limits = ServerLimits(request_timeout_seconds=5, idle_timeout_seconds=30)
    settings = ReceiverSettings(secret=SECRET)
    body = b'{"id": 7, "type": 7, "action": 1}'
    head = (
        f"POST /webhook?secret={SECRET} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with (
        Receiver.open(tmp_path / "inbox.sqlite3", settings, port=0, limits=limits) as receiver,
        socket.create_connection((receiver.host, receiver.port), timeout=20) as sock,
    ):
        sock.sendall(head + body)
        assert read_response(sock) == b"HTTP/1.1 200 OK"
        time.sleep(3)  # idle on the open connection (under the 30 s idle timeout)
        sock.sendall(head)
        time.sleep(1)  # accept + 4 s > 5 s deadline minus a margin; this request: 1 s
        sock.sendall(body)
        assert read_response(sock) == b"HTTP/1.1 200 OK"
        assert receiver.inbox.depth() == 2
        assert receiver.guard.timed_out == 0


@pytest.mark.parametrize(
    "option",
    [
        ["--connection-limit", "5"],
        ["--connection-limit", "1e9"],
        ["--request-timeout-seconds", "0"],
        ["--request-timeout-seconds", "2.5"],
        ["--idle-timeout-seconds", "-1"],
        ["--threads", "0"],
    ],
)
def test_cli_refuses_out_of_range_connection_settings(option, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--inbox", "x.sqlite3", *option])
    assert option[0].lstrip("-").split("-")[0] in capsys.readouterr().err


def test_cli_passes_connection_settings_to_the_server():
    args = build_parser().parse_args(
        [
            "serve",
            "--inbox",
            "x.sqlite3",
            "--connection-limit",
            "250",
            "--request-timeout-seconds",
            "4",
            "--idle-timeout-seconds",
            "9",
            "--threads",
            "3",
        ]
    )
    assert (
        args.connection_limit,
        args.request_timeout_seconds,
        args.idle_timeout_seconds,
        args.threads,
    ) == (
        250,
        4,
        9,
        3,
    )
    with pytest.raises(ValueError, match="connection_limit"):
        ServerLimits(connection_limit=1)


def test_cli_names_the_setting_when_the_descriptor_limit_cannot_fit_it(tmp_path: Path):
    """A connection limit the process could not open descriptors for is refused at start."""
    import os
    import resource
    import subprocess
    import sys

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "tap_precoro.webhooks.cli",
            "serve",
            "--inbox",
            str(tmp_path / "inbox.sqlite3"),
            "--port",
            "0",
            "--connection-limit",
            "1000",
        ],
        env={**os.environ, "PRECORO_WEBHOOK_SECRET": SECRET},
        preexec_fn=low_limit,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 2
    assert "connection_limit 1000" in process.stderr
    assert SECRET not in process.stderr + process.stdout


def test_oversized_headers_are_refused_before_the_app_runs(tmp_path: Path):
    """Headers are capped at 8 KiB (waitress allows 256 KiB): a client cannot make the
    receiver buffer more than that per connection, even with the right secret."""
    import requests

    settings = ReceiverSettings(secret=SECRET)
    with Receiver.open(tmp_path / "inbox.sqlite3", settings, port=0) as receiver:
        url = receiver.webhook_url()
        body = {"id": 5, "type": 7, "action": 1}
        big = requests.post(url, json=body, headers={"X-Pad": "a" * 10_000}, timeout=10)
        assert big.status_code == 431
        assert receiver.inbox.depth() == 0
        normal = requests.post(url, json=body, headers={"X-Pad": "a" * 2_000}, timeout=10)
        assert normal.status_code == 200
        assert receiver.inbox.depth() == 1


def test_a_client_that_never_reads_its_responses_is_closed(tmp_path: Path):
    """A client pipelining requests without reading the answers stalls the
    connection on output (waitress then reads no more from it); it is closed once
    nothing could be sent to it for the request deadline."""
    limits = ServerLimits(request_timeout_seconds=2)
    settings = ReceiverSettings(secret=SECRET)
    request = b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
    with Receiver.open(tmp_path / "inbox.sqlite3", settings, port=0, limits=limits) as receiver:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((receiver.host, receiver.port))
        sock.setblocking(False)
        try:

            def stalled() -> bool:
                # Keep pipelining until the receiver stops reading from us.
                with contextlib.suppress(BlockingIOError, OSError):
                    sock.send(request * 2048)
                return any(
                    c.total_outbufs_len and not c.requests
                    for c in list(receiver.server.active_channels.values())
                )

            assert wait_for(stalled, seconds=60)
            assert wait_for(lambda: receiver.guard.write_stalled == 1, seconds=60)
            assert wait_for(lambda: not receiver.server.active_channels, seconds=30)
        finally:
            sock.close()
