"""Test and benchmark helpers: a slow-client attack from loopback, and real deliveries.

Used by the receiver's tests, the webhook end-to-end tests and `benchmarks/webhooks.py`.
The attacker holds `idle` sockets that connect and send nothing and `trickle` sockets that send one
byte of a never-ending header every `trickle_seconds`; a socket the server closes is
reopened after `reconnect_seconds`, so the pressure lasts as long as the attack.
One thread drives every socket.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

TEST_SECRET = "test-secret-0123456789abcdef"
"""The receiver secret the tests use (long enough for the receiver's strength check)."""
PREFIX = b"POST /webhook HTTP/1.1\r\nHost: receiver\r\nX-Slow: "


@dataclass
class _Slot:
    trickle: bool
    sock: socket.socket | None = None
    sent: int = 0
    next_send: float = 0.0
    reopen_at: float = 0.0


@dataclass
class AttackCounts:
    connects: int = 0
    closed_by_server: int = 0
    bytes_trickled: int = 0


@dataclass
class SlowClientAttack:
    """`idle` silent sockets plus `trickle` one-byte-at-a-time sockets on host:port."""

    host: str
    port: int
    idle: int = 150
    trickle: int = 50
    trickle_seconds: float = 1.0
    reconnect_seconds: float = 0.2
    counts: AttackCounts = field(default_factory=AttackCounts)

    def __post_init__(self) -> None:
        self._slots = [_Slot(trickle=False) for _ in range(self.idle)]
        self._slots += [_Slot(trickle=True) for _ in range(self.trickle)]
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def __enter__(self) -> SlowClientAttack:
        self._thread.start()
        assert self._connected.wait(60), "the attack could not open its sockets"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        for slot in self._slots:
            self._drop(slot)
        self._selector.close()

    def open_sockets(self) -> int:
        return sum(slot.sock is not None for slot in self._slots)

    def _open(self, slot: _Slot, now: float) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5)
        except OSError:
            slot.reopen_at = now + self.reconnect_seconds
            return
        sock.setblocking(False)
        slot.sock, slot.sent, slot.next_send = sock, 0, now
        self._selector.register(sock, selectors.EVENT_READ, slot)
        self.counts.connects += 1

    def _drop(self, slot: _Slot) -> None:
        if slot.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(slot.sock)
            slot.sock.close()
            slot.sock = None

    def _closed(self, slot: _Slot, now: float) -> None:
        self._drop(slot)
        self.counts.closed_by_server += 1
        slot.reopen_at = now + self.reconnect_seconds

    def _run(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            self._open(slot, now)
        self._connected.set()
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                slot = key.data
                try:
                    data = slot.sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # the server closed it (a 4xx before closing counts too)
                    self._closed(slot, time.monotonic())
            now = time.monotonic()
            for slot in self._slots:
                if slot.sock is None:
                    if now >= slot.reopen_at:
                        self._open(slot, now)
                elif slot.trickle and now >= slot.next_send:
                    byte = PREFIX[slot.sent : slot.sent + 1] or b"a"
                    try:
                        slot.sock.send(byte)
                        slot.sent += 1
                        self.counts.bytes_trickled += 1
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._closed(slot, now)
                        continue
                    slot.next_send = now + self.trickle_seconds


@dataclass
class DeliveryResults:
    sent: int
    ok: int
    latencies_ms: list[float]
    acknowledged_ids: list[int]

    @property
    def fraction_ok(self) -> float:
        return self.ok / self.sent if self.sent else 0.0


def deliver(
    url: str,
    count: int,
    *,
    threads: int = 4,
    timeout: float = 10.0,
    body: Callable[[int], dict[str, int]] | None = None,
    keep_alive: bool = False,
) -> DeliveryResults:
    """`count` genuine deliveries from `threads` clients, counted with their latencies.

    Each goes on a new connection unless `keep_alive`; a success is a 200.
    """
    local = threading.local()
    make = body or (lambda i: {"id": i + 1, "type": 7, "action": 1})

    def send(i: int) -> tuple[int, bool, float]:
        started = time.perf_counter()
        try:
            if keep_alive:
                session = getattr(local, "session", None)
                if session is None:
                    session = local.session = requests.Session()
                status = session.post(url, json=make(i), timeout=timeout).status_code
            else:
                status = requests.post(
                    url, json=make(i), timeout=timeout, headers={"Connection": "close"}
                ).status_code
        except requests.RequestException:
            status = 0
        return make(i)["id"], status == 200, (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(send, range(count)))
    return DeliveryResults(
        sent=count,
        ok=sum(ok for _, ok, _ in results),
        latencies_ms=[ms for _, ok, ms in results if ok],
        acknowledged_ids=[entity for entity, ok, _ in results if ok],
    )
