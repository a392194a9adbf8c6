"""The rate governor: every documented Precoro limit, enforced before a request leaves.

Limits (fact sheet §5): 1 request/second, no identical GET within 60 s, 1500/hour,
3000/day. All windows are rolling on the client side, which is safe whether the
server counts in fixed or rolling windows.

Storage is one SQLite file (the ledger) shared by every process using the same
token and API URL, so a tap and a target running side by side spend one budget.
Their rows are keyed by `PrecoroSettings.ledger_key` (sha256 of token + URL); the
token itself is never written.

- Second/hour/day counting uses pyrate-limiter's `SQLiteBucket` (sliding-window log,
  file-locked for several processes): one `Rate` per limit in one bucket, so one
  atomic check admits a call under all three.
- Hand-written, with reasons: the duplicate-GET rule needs one window per URL,
  and a pyrate-limiter bucket counts every row of its table regardless of name
  (a bucket per URL would mean a table per URL), so recent GETs live in a small
  `recent_gets` table. Server-reported 429s ("Daily limiter" until its
  RateLimit-Retry-After) are absolute "closed until" times, not counts, so they
  live in a `blocks` table. Both are read and written under the bucket's file lock.
- pyrate-limiter's `Limiter` is not used: it sleeps with `time.sleep` for any wait
  and cannot tell a one-second pause from a day-long one. Here short waits sleep
  through the injected `sleep`, long ones raise `BudgetExhausted` at once.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from pyrate_limiter import Decision, Duration, Rate, RateItem, SQLiteBucket
from pyrate_limiter.utils import validate_rate_list
from typing_extensions import override

from precoro_client.errors import BudgetExhausted, LedgerUnavailable, RateLimited
from precoro_client.settings import PrecoroSettings

logger = logging.getLogger("precoro_client")

Clock = Callable[[], float]
"""Returns wall-clock time as epoch seconds (wall, not monotonic: the ledger is shared)."""
Sleep = Callable[[float], None]

SECOND = "second"
HOURLY = "hourly"
DAILY = "daily"
ROUTE = "route"
SERVER = "unknown"

SPACING_MARGIN = 0.1
"""Added to the per-second interval: requests leave 1.1 s apart so network jitter
cannot make two arrive within one second at the server (assumption)."""

DUPLICATE_GET_MARGIN = 0.1
"""Added to the duplicate-GET window, as to the spacing: an identical GET waits 66 s
for Precoro's 60 s. The window also runs from when the previous attempt *ended*
(`settle`), the latest moment the server can have seen it, so a slow first attempt or
a faster retry connection cannot land the retry inside the server's window."""

LEAK_EVERY = 200
"""Acquisitions between clean-ups of expired ledger rows."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def request_key(method: str, url: str) -> str:
    """sha256 of method + normalised URL (query sorted): "the same GET" for the limiter."""
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    normalized = urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, "")
    )
    return hashlib.sha256(f"{method.upper()} {normalized}".encode()).hexdigest()


@dataclass(frozen=True)
class _Wait:
    """Why acquire must pause, and for how long."""

    limit: str
    milliseconds: int
    sleepable: bool
    detail: str


def _rate_for_rps(rps: float) -> Rate:
    """`max_requests_per_second` as minimum spacing between calls (1 call per 1/rps s).

    Precoro's rule is spacing ("1 request per second"), not a burst allowance per
    second, so N per second means one call every 1/N s, plus a 10% margin so
    network jitter never lands two calls closer than that at the server.
    """
    spacing_ms = 1000 / rps
    return Rate(1, math.ceil(spacing_ms * (1 + SPACING_MARGIN)))


def _consistent_rates(named: list[tuple[str, Rate]]) -> list[tuple[str, Rate]]:
    """Drop rates that can never bind, so pyrate-limiter's rate-list contract holds.

    The contract: longer intervals have strictly larger limits and lower density.
    A shorter rate whose limit is >= a longer one's is implied by it (e.g. a large
    `budget_reserve` makes the daily limit smaller than the hourly one); a longer
    rate at least as dense as a shorter one is implied by the shorter.
    """
    rates = sorted(named, key=lambda pair: pair[1].interval)
    changed = True
    while changed:
        changed = False
        for index in range(len(rates) - 1):
            (short_name, short), (long_name, long) = rates[index], rates[index + 1]
            if long.limit <= short.limit:
                logger.debug("rate %s is implied by %s; not enforced", short_name, long_name)
                del rates[index]
                changed = True
                break
            if long.limit / long.interval >= short.limit / short.interval:
                logger.debug("rate %s is implied by %s; not enforced", long_name, short_name)
                del rates[index + 1]
                changed = True
                break
    assert validate_rate_list([rate for _, rate in rates])
    return rates


def _prepare_ledger_file(path: os.PathLike[str] | str) -> None:
    """Create the ledger's directory (0700) and file (0600) before SQLite opens it."""
    directory = os.path.dirname(os.fspath(path)) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if not os.path.exists(path):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


class LedgerStore(ABC):
    """Where the ledger's rows live: the SQLite file (one machine) or PostgreSQL (many).

    The governor decides; a store only reads and writes. Every method but `close`
    runs inside `transaction()`, which makes the read-decide-record sequence atomic
    for every process and machine sharing the store.
    """

    @abstractmethod
    def transaction(self) -> AbstractContextManager[int | None]:
        """Exclusive access to this budget's rows; yields the store's clock (ms) or None."""

    @abstractmethod
    def count_since(self, start_ms: int) -> int:
        """Calls recorded at or after `start_ms`."""

    @abstractmethod
    def latest(self, offset: int) -> int | None:
        """Timestamp (ms) of the call `offset` places from the newest (0: the newest)."""

    @abstractmethod
    def admit(self, method: str, now_ms: int) -> tuple[Rate | None, int | None]:
        """Record a call at `now_ms` if every rate has room: (None, None); else (failing, wait)."""

    @abstractmethod
    def blocks(self, now_ms: int) -> dict[str, tuple[int, str]]:
        """Server-reported blocks still in force: scope -> (until_ms, reason)."""

    @abstractmethod
    def add_block(self, scope: str, until_ms: int, reason: str) -> None:
        """Record (or extend) a block for `scope`."""

    @abstractmethod
    def duplicate_at(self, key: str) -> int | None:
        """When the identical GET `key` last ran (ms), if recorded."""

    @abstractmethod
    def record_get(self, key: str, at_ms: int) -> None:
        """Remember that GET `key` is sent at `at_ms`."""

    @abstractmethod
    def settle_get(self, key: str, at_ms: int) -> None:
        """Move GET `key`'s time forward to `at_ms` (the end of its attempt)."""

    @abstractmethod
    def cleanup(self, now_ms: int, duplicate_ms: int) -> None:
        """Delete rows no window can need any more."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""


class SQLiteLedgerStore(LedgerStore):
    """The ledger in one SQLite file, shared by the processes of one machine.

    Calls are counted by pyrate-limiter's `SQLiteBucket` (one table per budget,
    file-locked); recent GETs and blocks live in two small tables beside it, read
    and written under the same file lock.
    """

    def __init__(self, settings: PrecoroSettings, rates: list[Rate]) -> None:
        """Open (or create) the file at `settings.budget_ledger_path`."""
        self._key = settings.ledger_key
        path = settings.budget_ledger_path
        _prepare_ledger_file(path)
        self._table = f"calls_{self._key[:32]}"
        self._bucket = SQLiteBucket.init_from_file(
            rates, table=self._table, db_path=os.fspath(path), use_file_lock=True
        )
        self._thread_lock = threading.RLock()
        with self.transaction():
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS recent_gets (ledger_key TEXT NOT NULL, "
                "request_key TEXT NOT NULL, at_ms INTEGER NOT NULL, "
                "PRIMARY KEY (ledger_key, request_key))"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS blocks (ledger_key TEXT NOT NULL, "
                "scope TEXT NOT NULL, until_ms INTEGER NOT NULL, reason TEXT, "
                "PRIMARY KEY (ledger_key, scope))"
            )
            self._conn.commit()

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._bucket.conn

    @override
    @contextmanager
    def transaction(self) -> Iterator[int | None]:
        """Thread lock + the bucket's file lock: one writer across threads and processes."""
        with self._thread_lock, self._bucket.lock:
            yield None

    @override
    def count_since(self, start_ms: int) -> int:
        row = self._conn.execute(
            f"SELECT COUNT(*) FROM '{self._table}' WHERE item_timestamp >= ?", (start_ms,)
        ).fetchone()
        return int(row[0])

    @override
    def latest(self, offset: int) -> int | None:
        item = self._bucket.peek(offset)
        return None if item is None else int(item.timestamp)

    @override
    def admit(self, method: str, now_ms: int) -> tuple[Rate | None, int | None]:
        decision = self._bucket.put_decision(RateItem(method, now_ms))
        if not isinstance(decision, Decision):  # only async buckets return awaitables
            msg = "the SQLite bucket returned an awaitable"
            raise TypeError(msg)
        return decision.failing_rate, decision.retry_after_ms

    @override
    def blocks(self, now_ms: int) -> dict[str, tuple[int, str]]:
        rows = self._conn.execute(
            "SELECT scope, until_ms, reason FROM blocks WHERE ledger_key = ? AND until_ms > ?",
            (self._key, now_ms),
        ).fetchall()
        return {str(scope): (int(until), str(reason or "")) for scope, until, reason in rows}

    @override
    def add_block(self, scope: str, until_ms: int, reason: str) -> None:
        self._conn.execute(
            "INSERT INTO blocks (ledger_key, scope, until_ms, reason) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (ledger_key, scope) DO UPDATE SET "
            "until_ms = MAX(until_ms, excluded.until_ms), reason = excluded.reason",
            (self._key, scope, until_ms, reason),
        )
        self._conn.commit()

    @override
    def duplicate_at(self, key: str) -> int | None:
        row = self._conn.execute(
            "SELECT at_ms FROM recent_gets WHERE ledger_key = ? AND request_key = ?",
            (self._key, key),
        ).fetchone()
        return None if row is None else int(row[0])

    @override
    def record_get(self, key: str, at_ms: int) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO recent_gets (ledger_key, request_key, at_ms) VALUES (?, ?, ?)",
            (self._key, key, at_ms),
        )
        self._conn.commit()

    @override
    def settle_get(self, key: str, at_ms: int) -> None:
        self._conn.execute(
            "UPDATE recent_gets SET at_ms = MAX(at_ms, ?) WHERE ledger_key = ? AND request_key = ?",
            (at_ms, self._key, key),
        )
        self._conn.commit()

    @override
    def cleanup(self, now_ms: int, duplicate_ms: int) -> None:
        self._bucket.leak(now_ms)
        self._conn.execute(
            "DELETE FROM recent_gets WHERE ledger_key = ? AND at_ms < ?",
            (self._key, now_ms - duplicate_ms),
        )
        self._conn.execute(
            "DELETE FROM blocks WHERE ledger_key = ? AND until_ms <= ?", (self._key, now_ms)
        )
        self._conn.commit()

    @override
    def close(self) -> None:
        with self._thread_lock:
            self._bucket.close()  # type: ignore[no-untyped-call]


def open_ledger_store(settings: PrecoroSettings, rates: list[Rate]) -> LedgerStore:
    """The store `settings` selects: PostgreSQL for `state_backend_url`, else SQLite."""
    if settings.state_backend_url is not None:
        from precoro_client.pg_backend import PostgresLedgerStore

        return PostgresLedgerStore(settings, rates)
    return SQLiteLedgerStore(settings, rates)


class RateGovernor:
    """Admits one request at a time within Precoro's limits, shared across processes.

    `acquire(method, url)` returns when the call may be made, sleeping through
    short waits; it raises `BudgetExhausted` when the wait is for the daily budget,
    or longer than `max_wait_seconds` for the hourly one or a server-reported block.
    """

    def __init__(
        self,
        settings: PrecoroSettings,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        """Open (or create) the ledger `settings` selects (`open_ledger_store`).

        `clock`/`sleep` default to `time.time`/`time.sleep`; tests inject fakes.
        Without an injected clock, a store with its own clock (PostgreSQL's) times
        the ledger rows, so machines whose clocks disagree still space calls exactly.
        """
        self.settings = settings
        self._clock: Clock = clock or time.time
        self._store_clock = clock is None
        self._sleep: Sleep = sleep or time.sleep
        self._key = settings.ledger_key
        self._daily_limit = settings.max_requests_per_day - settings.budget_reserve
        self._hourly_limit = settings.max_requests_per_hour
        self._dup_ms = math.ceil(
            settings.duplicate_get_interval_seconds * 1000 * (1 + DUPLICATE_GET_MARGIN)
        )
        self._max_wait_ms = int(settings.max_wait_seconds * 1000)
        named = _consistent_rates(
            [
                (SECOND, _rate_for_rps(settings.max_requests_per_second)),
                (HOURLY, Rate(self._hourly_limit, Duration.HOUR)),
                (DAILY, Rate(self._daily_limit, Duration.DAY)),
            ]
        )
        self._rate_names = {id(rate): name for name, rate in named}
        self._rates = {name: rate for name, rate in named}
        self._store = open_ledger_store(settings, [rate for _, rate in named])
        self._acquired = 0
        """Admission attempts so far; expired rows are cleaned at the first and every
        `LEAK_EVERY`th (not here: a server-backed store connects on first use)."""

    # --- plumbing ---------------------------------------------------------------------

    def now(self) -> float:
        """The governor's clock (epoch seconds); clients share it for 429 parsing."""
        return self._clock()

    def sleep(self, seconds: float) -> None:
        """Sleep with the governor's (injectable) sleep; clients use it for backoff."""
        if seconds > 0:
            self._sleep(seconds)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @staticmethod
    def _to_datetime(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    @contextmanager
    def _locked(self) -> Iterator[int]:
        """One store transaction (one writer across threads, processes and machines).

        Yields "now" in ms: the store's clock when it has one and no clock was injected.
        """
        with self._store.transaction() as store_ms:
            if store_ms is None or not self._store_clock:
                yield self._now_ms()
            else:
                yield store_ms

    def close(self) -> None:
        """Close the ledger connection."""
        self._store.close()

    def __enter__(self) -> RateGovernor:
        """Use as a context manager to close the ledger at the end."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the ledger."""
        self.close()

    # --- reading the ledger ------------------------------------------------------------

    def _rate_free_at(self, name: str, now_ms: int) -> int:
        """When `name`'s window has room for one more call (now if it already has)."""
        rate = self._rates.get(name)
        if rate is None:
            return now_ms
        blocking = self._store.latest(rate.limit - 1)
        if blocking is None:
            return now_ms
        return max(now_ms, blocking + rate.interval + 1)

    def _usage(self, now_ms: int) -> tuple[int, int]:
        used = self._store.count_since(now_ms - int(Duration.DAY))
        if DAILY in self._store.blocks(now_ms):
            return used, 0
        return used, max(0, self._daily_limit - used)

    def calls_used_today(self) -> int:
        """Calls recorded by every process on this budget in the last 24 hours."""
        with self._locked() as now_ms:
            return self._usage(now_ms)[0]

    def remaining_today(self) -> int:
        """Calls left in the rolling 24 h (after `budget_reserve`); 0 while a daily 429 holds."""
        with self._locked() as now_ms:
            return self._usage(now_ms)[1]

    def next_available(self, method: str = "POST", url: str | None = None) -> datetime:
        """Earliest time (aware, UTC) a call could be admitted; now if it could go now.

        With `url`, the duplicate-GET rule and route blocks for that URL count too.
        """
        with self._locked() as now_ms:
            candidates = [now_ms]
            candidates.extend(self._rate_free_at(name, now_ms) for name in self._rates)
            key = request_key(method, url) if url else None
            for scope, (until, _) in self._store.blocks(now_ms).items():
                if not scope.startswith(f"{ROUTE}:") or scope == f"{ROUTE}:{key}":
                    candidates.append(until)
            if key is not None and method.upper() == "GET":
                candidates.append(self._duplicate_free_at(key, now_ms))
            return self._to_datetime(max(candidates))

    def _duplicate_free_at(self, key: str, now_ms: int) -> int:
        at_ms = self._store.duplicate_at(key)
        if at_ms is None:
            return now_ms
        return max(now_ms, at_ms + self._dup_ms)

    # --- admitting calls --------------------------------------------------------------

    def _exhausted(self, limit: str, until_ms: int, now_ms: int, detail: str) -> BudgetExhausted:
        used, remaining = self._usage(now_ms)
        return BudgetExhausted(
            limit,
            self._to_datetime(until_ms),
            used_today=used,
            remaining_today=remaining,
            detail=detail,
        )

    def _check(self, method: str, key: str, now_ms: int) -> _Wait | None:
        """One admission attempt inside a transaction: None if admitted (and recorded)."""
        blocks = self._store.blocks(now_ms)
        if DAILY in blocks:
            until, reason = blocks[DAILY]
            raise self._exhausted(DAILY, until, now_ms, reason or "daily limit reached")
        for scope, limit in ((HOURLY, HOURLY), (SERVER, SERVER), (f"{ROUTE}:{key}", ROUTE)):
            if scope in blocks:
                until, reason = blocks[scope]
                return _Wait(limit, until - now_ms, False, reason or f"{limit} 429")
        if method == "GET" and self._dup_ms > 0:
            free_at = self._duplicate_free_at(key, now_ms)
            if free_at > now_ms:
                return _Wait("duplicate GET", free_at - now_ms, True, "same GET within interval")
        failing, wait_ms = self._store.admit(method, now_ms)
        if failing is None:
            if method == "GET" and self._dup_ms > 0:
                self._store.record_get(key, now_ms)
            return None
        name = self._rate_names.get(id(failing), SECOND)
        if wait_ms is None:
            wait_ms = self._rate_free_at(name, now_ms) - now_ms
        if name == DAILY:
            detail = f"{failing.limit} calls in the last 24 h"
            raise self._exhausted(DAILY, now_ms + wait_ms, now_ms, detail)
        return _Wait(name, max(1, wait_ms), name == SECOND, f"{failing.limit} calls per window")

    def acquire(self, method: str, url: str) -> None:
        """Block until `method url` may be sent, then record it in the ledger.

        Raises `BudgetExhausted` rather than sleeping for the daily budget, or for
        an hourly/server wait longer than `max_wait_seconds`; `LedgerUnavailable`
        (a `BudgetExhausted`, so callers stop the same clean way) when the ledger
        cannot be reached: no call is made without its ledger entry.
        """
        method = method.upper()
        key = request_key(method, url)
        while True:
            with self._locked() as now_ms:
                if self._acquired % LEAK_EVERY == 0:
                    self._store.cleanup(now_ms, self._dup_ms)
                self._acquired += 1
                wait = self._check(method, key, now_ms)
                if wait is None:
                    return
                if not wait.sleepable and wait.milliseconds > self._max_wait_ms:
                    detail = f"{wait.detail}; longer than max_wait_seconds"
                    raise self._exhausted(wait.limit, now_ms + wait.milliseconds, now_ms, detail)
            seconds = wait.milliseconds / 1000
            level = logging.INFO if seconds >= 5 else logging.DEBUG
            logger.log(level, "waiting %.1f s for the %s limit", seconds, wait.limit)
            self._sleep(seconds)

    def settle(self, method: str, url: str) -> None:
        """Mark the end of an attempt: an identical GET's window starts again from now.

        Called by the client after every attempt, answered or not (a timed-out GET
        may still have reached the server). It never raises for an unreachable
        ledger: the attempt's answer must reach the caller (a POST that was applied
        must not look unsent); the next `acquire` stops the run instead.
        """
        if method.upper() != "GET" or self._dup_ms <= 0:
            return
        key = request_key(method, url)
        try:
            with self._locked() as now_ms:
                self._store.settle_get(key, now_ms)
        except LedgerUnavailable as exc:
            logger.warning("%s; the GET's window runs from its start", exc.message)

    def wrap_request(
        self, func: Callable[Concatenate[requests.PreparedRequest, _P], _R]
    ) -> Callable[Concatenate[requests.PreparedRequest, _P], _R]:
        """Decorate a function taking a `PreparedRequest` first so each call acquires.

        For singer-sdk: `return super().request_decorator(governor.wrap_request(func))`
        puts the governor inside the SDK's retries, so every attempt is admitted.
        """

        @functools.wraps(func)
        def governed(
            request: requests.PreparedRequest, /, *args: _P.args, **kwargs: _P.kwargs
        ) -> _R:
            self.acquire(request.method or "GET", request.url or "")
            return func(request, *args, **kwargs)

        return governed

    # --- learning from the server -----------------------------------------------------

    def record_429(
        self,
        error: RateLimited,
        method: str,
        url: str,
        *,
        fallback_seconds: float = 60.0,
    ) -> float:
        """Record a server 429 so every process on this budget holds back.

        Returns the seconds until calls may resume (the next `acquire` sleeps them),
        or raises `BudgetExhausted` for a daily limit or a wait over
        `max_wait_seconds`. Without a parsable retry time the block lasts
        `fallback_seconds` (the caller's exponential backoff); a daily 429 without
        one lasts until the next midnight UTC (assumption: calendar-day window).
        """
        kind = error.kind
        key = request_key(method, url)
        with self._locked() as now_ms:
            if error.retry_at is not None:
                until_ms = int(error.retry_at.timestamp() * 1000)
            elif kind == DAILY:
                now = self._to_datetime(now_ms)
                midnight = (now + timedelta(days=1)).replace(
                    hour=0, minute=0, second=0, microsecond=0
                )
                until_ms = int(midnight.timestamp() * 1000)
            else:
                until_ms = now_ms + int(fallback_seconds * 1000)
            until_ms = max(until_ms, now_ms + 1)
            scope = {DAILY: DAILY, HOURLY: HOURLY, ROUTE: f"{ROUTE}:{key}"}.get(kind, SERVER)
            reason = f"server 429 ({error.limit_type or 'no RateLimit-Type'})"
            self._store.add_block(scope, until_ms, reason)
            logger.warning(
                "Precoro answered 429 (%s); holding %s calls until %s",
                error.limit_type or "no RateLimit-Type",
                kind,
                self._to_datetime(until_ms).strftime("%Y-%m-%d %H:%M:%S UTC"),
            )
            wait_ms = until_ms - now_ms
            limit = kind if kind in (DAILY, HOURLY, ROUTE) else SERVER
            if kind == DAILY or wait_ms > self._max_wait_ms:
                raise self._exhausted(limit, until_ms, now_ms, reason)
            return wait_ms / 1000
