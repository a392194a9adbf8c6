"""Fixtures: a fake clock that sleeps instantly, settings on a temp ledger, raw HTTP servers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from precoro_client.governor import RateGovernor
from precoro_client.settings import PrecoroSettings

TOKEN = "tok-S3cret-0123456789abcdef"
START = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)


class FakeClock:
    """Wall clock that only moves when something sleeps (or a test advances it)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start.timestamp()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, tz=UTC)


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.sqlite3"


@pytest.fixture
def make_settings(ledger: Path) -> Callable[..., PrecoroSettings]:
    def make(**overrides: Any) -> PrecoroSettings:
        config: dict[str, Any] = {
            "auth_token": TOKEN,
            "email": "api@example.com",
            "api_url": "http://127.0.0.1:9",
            "budget_ledger_path": str(ledger),
        }
        config.update(overrides)
        return PrecoroSettings.from_config(config)

    return make


@pytest.fixture
def make_governor(
    make_settings: Callable[..., PrecoroSettings], clock: FakeClock
) -> Iterator[Callable[..., RateGovernor]]:
    opened: list[RateGovernor] = []

    def make(settings: PrecoroSettings | None = None, **overrides: Any) -> RateGovernor:
        governor = RateGovernor(
            settings or make_settings(**overrides), clock=clock, sleep=clock.sleep
        )
        opened.append(governor)
        return governor

    yield make
    for governor in opened:
        governor.close()


Action = Callable[[socket.socket, bytes], None]


class RawServer:
    """A TCP server answering each request, in arrival order, with a scripted action.

    Used for what an HTTP framework cannot do on purpose: drop the connection, send a
    truncated body, or stall past the read timeout.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.actions: list[Action] = []
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                while len(rest) < length:
                    rest += conn.recv(65536)
            except OSError:
                return
            with self._lock:
                self.requests.append(data)
                action = self.actions.pop(0) if self.actions else respond(200, b"{}")
            with contextlib.suppress(OSError):
                action(conn, data)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=2)


def respond(
    status: int,
    body: bytes | dict[str, Any] | list[Any],
    *,
    declared_length: int | None = None,
    headers: dict[str, str] | None = None,
) -> Action:
    """Send a full HTTP response (optionally lying about Content-Length to truncate).

    Unlike werkzeug, adds no `Date` header of its own, so tests control it.
    """
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()

    def action(conn: socket.socket, _request: bytes) -> None:
        length = len(body) if declared_length is None else declared_length
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
        ).encode()
        conn.sendall(head + body)

    return action


def drop() -> Action:
    """Close the connection without a response (a dropped connection)."""

    def action(conn: socket.socket, _request: bytes) -> None:
        conn.shutdown(socket.SHUT_RDWR)

    return action


def stall(seconds: float) -> Action:
    """Say nothing for a while (longer than the client's read timeout), then close."""

    def action(conn: socket.socket, _request: bytes) -> None:
        threading.Event().wait(seconds)

    return action


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


@pytest.fixture
def scripted() -> dict[str, Callable[..., Action]]:
    return {"respond": respond, "drop": drop, "stall": stall}
