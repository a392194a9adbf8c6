"""Webhook delivery the way Precoro does it (docs/precoro-api.md, "Webhooks").

Up to 5 unique HTTP(S) endpoints; each create/update sends a POST with a small JSON
body such as `{"id":123,"type":2,"action":0,"idn":5}` and no document data. Precoro's
retry policy, timeout and expected status are not published; the choices here
(2xx = delivered, retry on anything else with growing delays, then give up) are
assumptions, made so receivers are tested against an unreliable sender.

Each URL has its own worker thread, so a dead or hanging receiver never delays a live
one, and first attempts to one URL go out in publish order.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from precoro_sandbox.clock import SandboxClock

MAX_URLS = 5
"""Precoro allows up to 5 unique webhook endpoints per company (H-WH)."""
LOG_SIZE = 10_000
USER_AGENT = "Precoro-Sandbox-Webhooks/1.0"
"""Assumption: Precoro's real User-Agent and any signature headers are unknown."""
JITTER = 0.1
"""Retry delays are stretched by up to this fraction, so receivers see no lockstep."""


@dataclass
class _Delivery:
    """One notification on its way to one URL."""

    payload: dict[str, Any]
    body: bytes
    attempt: int = 1


@dataclass
class _Target:
    """A registered URL: its queue of first attempts, its retry heap, its worker."""

    url: str
    cond: threading.Condition
    queue: deque[_Delivery] = field(default_factory=deque)
    retries: list[tuple[float, int, _Delivery]] = field(default_factory=list)
    stopped: bool = False
    thread: threading.Thread | None = None


class WebhookDispatcher:
    """Delivers published notifications to every registered URL in the background."""

    def __init__(
        self,
        *,
        max_urls: int = MAX_URLS,
        retry_delays: Sequence[float] = (0.5, 1, 2, 4, 8),
        timeout: float = 5.0,
        clock: SandboxClock | None = None,
    ) -> None:
        """Configure limits and retry policy; `clock` only stamps the delivery log."""
        self.max_urls = max_urls
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self.timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._targets: dict[str, _Target] = {}
        self._threads: list[threading.Thread] = []
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self._seq = itertools.count()
        self._random = random.Random()
        self._closed = False
        self._pending = 0
        self._stats = {"delivered": 0, "failed_attempts": 0, "given_up": 0, "dropped": 0}

    # -- registration ----------------------------------------------------------------

    def register(self, url: str) -> None:
        """Add an endpoint; a 6th, a duplicate or a non-HTTP(S) URL raises ValueError."""
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be an http:// or https:// URL, got {url!r}")
        with self._lock:
            if self._closed:
                raise RuntimeError("webhook dispatcher is closed")
            if url in self._targets:
                raise ValueError(f"webhook URL {url!r} is already registered")
            if len(self._targets) >= self.max_urls:
                raise ValueError(
                    f"at most {self.max_urls} webhook URLs can be registered; "
                    f"unregister one before adding {url!r}"
                )
            target = _Target(url=url, cond=threading.Condition(self._lock))
            thread = threading.Thread(
                target=self._work,
                args=(target,),
                name=f"webhook-{len(self._threads)}",
                daemon=True,
            )
            target.thread = thread
            self._targets[url] = target
            self._threads.append(thread)
        thread.start()

    def unregister(self, url: str) -> None:
        """Remove an endpoint; its undelivered notifications are dropped."""
        url = url.strip()
        with self._lock:
            target = self._targets.pop(url, None)
            if target is None:
                raise ValueError(f"webhook URL {url!r} is not registered")
            self._stop(target)

    def urls(self) -> list[str]:
        """Registered endpoints in registration order."""
        with self._lock:
            return list(self._targets)

    # -- delivery --------------------------------------------------------------------

    def publish(self, payload: dict[str, Any]) -> None:
        """Queue one notification for every registered URL; never blocks on the network."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        with self._lock:
            if self._closed:
                return
            for target in self._targets.values():
                target.queue.append(_Delivery(payload=dict(payload), body=body))
                self._pending += 1
                target.cond.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued, awaiting retry or in flight; True if drained."""
        with self._lock:
            return self._drained.wait_for(lambda: self._pending == 0, timeout)

    def stats(self) -> dict[str, int]:
        """Counters: delivered, failed_attempts, given_up, dropped, pending."""
        with self._lock:
            return {**self._stats, "pending": self._pending}

    def deliveries(self) -> list[dict[str, Any]]:
        """Recent attempts, oldest first (bounded): url, payload, status/error, attempt, time."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def close(self) -> None:
        """Stop all workers and drop what is undelivered; safe to call twice."""
        with self._lock:
            self._closed = True
            for target in self._targets.values():
                self._stop(target)
            self._targets.clear()
            threads = list(self._threads)
        for thread in threads:
            thread.join(self.timeout + 1.0)

    # -- internals ---------------------------------------------------------------------

    def _stop(self, target: _Target) -> None:
        """Mark a target stopped and drop its backlog; the caller holds the lock."""
        target.stopped = True
        dropped = len(target.queue) + len(target.retries)
        target.queue.clear()
        target.retries.clear()
        self._stats["dropped"] += dropped
        self._settle(dropped)
        target.cond.notify_all()

    def _settle(self, count: int) -> None:
        """Mark `count` notifications finished; wake `flush` when none is left."""
        self._pending -= count
        if self._pending == 0:
            self._drained.notify_all()

    def _next(self, target: _Target) -> _Delivery | None:
        """Block until a retry is due or a new notification waits; None means stop."""
        with self._lock:
            while True:
                if target.stopped or self._closed:
                    return None
                now = time.monotonic()
                if target.retries and target.retries[0][0] <= now:
                    return heapq.heappop(target.retries)[2]
                if target.queue:
                    return target.queue.popleft()
                wait = target.retries[0][0] - now if target.retries else None
                target.cond.wait(wait)

    def _work(self, target: _Target) -> None:
        """Worker loop for one URL."""
        while (delivery := self._next(target)) is not None:
            status, error = self._post(target.url, delivery.body)
            ok = status is not None and 200 <= status < 300
            with self._lock:
                self._log.append(
                    {
                        "url": target.url,
                        "payload": delivery.payload,
                        "status": status,
                        "error": error,
                        "ok": ok,
                        "attempt": delivery.attempt,
                        "time": self._now(),
                    }
                )
                if ok:
                    self._stats["delivered"] += 1
                    self._settle(1)
                    continue
                self._stats["failed_attempts"] += 1
                if target.stopped or self._closed:
                    self._stats["dropped"] += 1
                    self._settle(1)
                elif delivery.attempt > len(self.retry_delays):
                    self._stats["given_up"] += 1
                    self._settle(1)
                else:
                    delay = self.retry_delays[delivery.attempt - 1]
                    delay *= 1 + JITTER * self._random.random()
                    delivery.attempt += 1
                    due = time.monotonic() + delay
                    heapq.heappush(target.retries, (due, next(self._seq), delivery))

    def _post(self, url: str, body: bytes) -> tuple[int | None, str | None]:
        """POST `body` to `url`: (status, None), or (None, error text) if no answer."""
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_class(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            conn.request(
                "POST",
                path,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    "Connection": "close",
                },
            )
            response = conn.getresponse()
            response.read()
            return response.status, None
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()

    def _now(self) -> str:
        """Timestamp for the log: sandbox time when a clock was given, else real UTC."""
        now = self._clock.now() if self._clock is not None else datetime.now(UTC)
        return now.isoformat(timespec="milliseconds")
