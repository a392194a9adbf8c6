"""The rate governor: every documented Precoro limit, enforced before a request leaves.

Limits (fact sheet §5): 1 request/second, no identical GET within 60 s, 1500/hour,
3000/day. The hour and day windows are rolling on the client side, which is safe
whether the server counts in fixed or rolling windows.

Storage is one SQLite file (the ledger) shared by every process using the same
token and API URL, so a tap and a target running side by side spend one budget.
Their rows are keyed by `PrecoroSettings.ledger_key` (sha256 of token + URL); the
token itself is never written. `state_backend_url` moves it to PostgreSQL.

- Every admission is one transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL an advisory
  lock), so read-decide-record is atomic for every process sharing the ledger.
- Constant time per admission, however many calls the last 24 h hold: each window
  (hour, day) keeps a running count and the cut-off it was counted from. Admitting
  moves the cut-off to now - window and subtracts only the calls that left since the
  last admission (an index range, amortised O(1)); spacing reads the newest call
  (an index lookup). No admission counts the whole day.
- Why not pyrate-limiter (used before): its buckets count every row of a window on
  every admission (0.58 ms per call empty, 2.88 ms at 100,000 rows), and the
  duplicate-GET window and the server's 429 blocks must be decided in the same
  transaction as the count anyway.
- Recent GETs (the duplicate-GET rule, one window per URL) live in `recent_gets`;
  server-reported 429s ("Daily limiter" until its RateLimit-Retry-After) are absolute
  "closed until" times, kept in `blocks`.
- Short waits sleep through the injected `sleep`, long ones raise `BudgetExhausted`
  at once.

About 870 lines, one file on purpose: the admission rules (`RateGovernor`) and the
ledger's shared SQL (`LedgerStore`, with its SQLite store) are one decision taken in
one transaction, and a change to a rule (a window, the spacing, a block) changes both
sides. The PostgreSQL store is apart (`pg_backend.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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

SPACING_MARGIN = 0.025
"""Added to the per-second interval when the previous call's answer has not come back
fast: requests then leave 1.025 s apart (25 ms at 1/s).

Why a margin at all: Precoro spaces the requests it *receives*; we space the ones we
send. The gap it sees is our gap plus (outbound delay of this request - outbound delay
of the previous one), so the margin must cover how much slower the previous request's
trip to the server may have been: the delay variation on one kept-alive connection,
typically a few ms. 25 ms covers that several times over and keeps 97.5% of the limit
(it was 10%, 90.9%). Three things keep it honest:

- When the previous call's answer arrived less than the margin after it left, the next
  call leaves one interval after that answer instead: the server cannot have seen the
  previous request after its answer arrived, nor the next before it leaves, so the gap
  at the server is at least one interval with no assumption at all (`Spacing.free_at`).
- An answer slower than this process's quickest recent one (`ANSWER_HISTORY`) may have
  queued before Precoro's limiter: the next gap grows by the difference (seen on a
  loaded machine: a 72 ms answer, then a 429 at 25 ms).
- A per-second 429 means the assumption failed on this link: the margin doubles (up to
  `MAX_SPACING_MARGIN`) and the answer shortcut is no longer taken for the run."""

ANSWER_SLACK_MS = 2
"""Added when spacing from the previous answer: ledger times are whole milliseconds
(rounded, so up to 1 ms early), and a clock running 0.1% off the server's gains 1 ms a
second. Seen without it: one 429 in 60 s against a local sandbox."""

ANSWER_HISTORY = 32
"""Answered calls whose durations give the usual (quickest) answer time."""

MAX_SPACING_MARGIN = 0.1
"""The widest per-second margin a run widens to after per-second 429s (the old fixed one)."""

DUPLICATE_GET_MARGIN = 0.1
"""Added to the duplicate-GET window, as to the spacing: an identical GET waits 66 s
for Precoro's 60 s. The window also runs from when the previous attempt *ended*
(`settle`), the latest moment the server can have seen it, so a slow first attempt or
a faster retry connection cannot land the retry inside the server's window."""

LEAK_EVERY = 200
"""Acquisitions between clean-ups of expired ledger rows."""


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


@dataclass(frozen=True)
class Window:
    """A rolling count limit: at most `limit` calls in any `interval_ms`."""

    name: str
    limit: int
    interval_ms: int


HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WINDOW_INTERVALS = {HOURLY: HOUR_MS, DAILY: DAY_MS}
"""Every ledger keeps both running counts, whatever limits a process enforces, so
processes with different limits on one budget keep each other's counts right."""


@dataclass(frozen=True)
class Spacing:
    """The per-second rule as spacing: one call per `interval_ms`, see `SPACING_MARGIN`.

    Precoro's rule is spacing ("1 request per second"), not a burst allowance per
    second, so N per second means one call every 1/N s.
    """

    interval_ms: int
    margin_ms: int
    trust_end: bool = True
    """Space from the previous call's end when that is sooner (proof: `SPACING_MARGIN`)."""
    floor_ms: int | None = None
    """The quickest answer this process has seen lately (ms); None before the first."""

    @classmethod
    def for_rps(cls, rps: float, margin: float, *, trust_end: bool = True) -> Spacing:
        """`max_requests_per_second` with a relative `margin`."""
        interval = 1000 / rps
        return cls(math.ceil(interval), math.ceil(interval * margin), trust_end)

    def free_at(self, sent_ms: int, ended_ms: int | None) -> int:
        """When the call after one sent at `sent_ms` (answered at `ended_ms`) may leave.

        A previous answer slower than usual by more than the margin (a queue at the
        server, which may sit before its limiter) widens the margin by that much:
        the previous request may have reached the limiter that much later. Never
        beyond one interval after the answer, which is always safe.
        """
        free = sent_ms + self.interval_ms + self.margin_ms
        if ended_ms is None:
            return free
        answered = max(ended_ms, sent_ms) + self.interval_ms + ANSWER_SLACK_MS
        # Unknown usual answer time (no answer yet): as if the whole wait were the queue.
        free = max(free, answered - (self.floor_ms or 0))
        return min(free, answered) if self.trust_end else free


def _prepare_ledger_file(path: os.PathLike[str] | str) -> None:
    """Create the ledger's directory (0700) and file (0600) before SQLite opens it."""
    directory = os.path.dirname(os.fspath(path)) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if not os.path.exists(path):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


Row = tuple[Any, ...]


class LedgerStore(ABC):
    """Where the ledger's rows live: the SQLite file (one machine) or PostgreSQL (many).

    The governor decides; a store reads and writes. Every method but `close` runs
    inside `transaction()`, which makes the read-decide-record sequence atomic for
    every process and machine sharing the store.

    Call counting is shared (the SQL is the same on both databases): the calls table
    holds one row per admitted call; the windows table holds, per budget and window,
    the running count of calls at or after `cut_ms`. Only the calls between the old
    and the new cut-off are read when a window moves, so an admission costs the same
    with 0 or 100,000 calls recorded.
    """

    CALLS = "ledger_calls"
    WINDOWS = "ledger_windows"
    LAST = "ledger_last"
    """One row per budget: when the newest call was sent and, once known, answered."""

    def __init__(self, ledger_key: str, windows: list[Window]) -> None:
        """Enforce `windows` (any subset of `WINDOW_INTERVALS`) on `ledger_key`'s calls."""
        self._key = ledger_key
        self._windows = windows

    # --- the database, per backend -------------------------------------------------

    @abstractmethod
    def _one(self, query: str, params: tuple[Any, ...]) -> Row | None:
        """Run `query` (`?` placeholders) and return its first row."""

    @abstractmethod
    def _all(self, query: str, params: tuple[Any, ...]) -> list[Row]:
        """Run `query` (`?` placeholders) and return every row."""

    @abstractmethod
    def _run(self, query: str, params: tuple[Any, ...]) -> None:
        """Run a statement (`?` placeholders)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[int | None]:
        """Exclusive access to this budget's rows; yields the store's clock (ms) or None."""

    # --- counting calls (shared) -----------------------------------------------------

    def _counts(self, now_ms: int) -> dict[str, tuple[int, int]]:
        """Per window: (cut-off now - interval, calls at or after it), from the running counts.

        Reads only the calls that left a window since its count was last stored.
        """
        stored = {
            str(name): (int(cut), int(calls))
            for name, cut, calls in self._all(
                f"SELECT name, cut_ms, calls FROM {self.WINDOWS} WHERE ledger_key = ?",
                (self._key,),
            )
        }
        counts: dict[str, tuple[int, int]] = {}
        for name, interval in WINDOW_INTERVALS.items():
            cut = now_ms - interval
            old = stored.get(name)
            if old is not None and old[0] == cut:
                counts[name] = old
                continue
            if old is not None and old[0] < cut:
                left = self._one(
                    f"SELECT COUNT(*) FROM {self.CALLS} WHERE ledger_key = ? "
                    "AND at_ms >= ? AND at_ms < ?",
                    (self._key, old[0], cut),
                )
                counts[name] = (cut, old[1] - int(left[0] if left else 0))
                continue
            # First use of this ledger, or the clock stepped back: count once, exactly.
            counted = self._one(
                f"SELECT COUNT(*) FROM {self.CALLS} WHERE ledger_key = ? AND at_ms >= ?",
                (self._key, cut),
            )
            counts[name] = (cut, int(counted[0] if counted else 0))
        return counts

    def _store_counts(self, counts: dict[str, tuple[int, int]]) -> None:
        """Write the windows' cut-offs and counts back (one statement)."""
        names = list(counts)
        values = ", ".join(["(?, ?, ?, ?)"] * len(names))
        params = [v for name in names for v in (self._key, name, *counts[name])]
        self._run(
            f"INSERT INTO {self.WINDOWS} (ledger_key, name, cut_ms, calls) VALUES {values} "
            "ON CONFLICT (ledger_key, name) DO UPDATE SET "
            "cut_ms = excluded.cut_ms, calls = excluded.calls",
            tuple(params),
        )

    def _newest(self) -> tuple[int, int | None] | None:
        """(sent, answered or None) of the newest call on this budget, if any."""
        row = self._one(
            f"SELECT at_ms, ended_ms FROM {self.LAST} WHERE ledger_key = ?", (self._key,)
        )
        if row is None:  # a ledger written before `ledger_last` existed
            row = self._one(
                f"SELECT MAX(at_ms), NULL FROM {self.CALLS} WHERE ledger_key = ?", (self._key,)
            )
            if row is None or row[0] is None:
                return None
        return int(row[0]), None if row[1] is None else int(row[1])

    def settle_call(self, sent_ms: int, ended_ms: int) -> None:
        """The call sent at `sent_ms` was answered (or failed) at `ended_ms`."""
        self._run(
            f"UPDATE {self.LAST} SET ended_ms = ? WHERE ledger_key = ? AND at_ms = ?",
            (ended_ms, self._key, sent_ms),
        )

    def _window_free_at(self, window: Window, now_ms: int, cut: int, count: int) -> int:
        """When `window` (holding `count` calls since `cut`) has room for one more call."""
        if count < window.limit:
            return now_ms
        # The limit-th newest call in the window must leave it first (a short scan:
        # `count - limit` is 0 unless the limit was lowered).
        row = self._one(
            f"SELECT at_ms FROM {self.CALLS} WHERE ledger_key = ? AND at_ms >= ? "
            "ORDER BY at_ms LIMIT 1 OFFSET ?",
            (self._key, cut, count - window.limit),
        )
        if row is None:  # pragma: no cover - the count says the rows exist
            return now_ms
        return max(now_ms, int(row[0]) + window.interval_ms + 1)

    def _free_at(
        self, name: str, now_ms: int, spacing: Spacing, counts: dict[str, tuple[int, int]]
    ) -> int:
        if name == SECOND:
            newest = self._newest()
            return now_ms if newest is None else max(now_ms, spacing.free_at(*newest))
        for window in self._windows:
            if window.name == name:
                return self._window_free_at(window, now_ms, *counts[name])
        return now_ms

    def used(self, now_ms: int) -> int:
        """Calls recorded in the last 24 h (by every process on this budget)."""
        return self._counts(now_ms)[DAILY][1]

    def oldest(self, now_ms: int) -> int | None:
        """When the oldest call of the last 24 h was made (an index lookup), if any."""
        row = self._one(
            f"SELECT MIN(at_ms) FROM {self.CALLS} WHERE ledger_key = ? AND at_ms >= ?",
            (self._key, now_ms - DAY_MS),
        )
        return None if row is None or row[0] is None else int(row[0])

    def free_at(self, name: str, now_ms: int, spacing: Spacing) -> int:
        """When limit `name` (a window's name or SECOND) has room for one more call."""
        return self._free_at(name, now_ms, spacing, self._counts(now_ms))

    def limits(self) -> list[str]:
        """The limits this store enforces, daily first (the one that stops a run)."""
        order = {DAILY: 0, HOURLY: 1}
        return [w.name for w in sorted(self._windows, key=lambda w: order[w.name])] + [SECOND]

    def admit(self, method: str, now_ms: int, spacing: Spacing) -> tuple[str, int] | None:
        """Record a call at `now_ms` if every limit has room: None; else (limit, free at ms)."""
        counts = self._counts(now_ms)
        for name in self.limits():
            free = self._free_at(name, now_ms, spacing, counts)
            if free > now_ms:
                return name, free
        self._run(
            f"INSERT INTO {self.CALLS} (ledger_key, at_ms, method) VALUES (?, ?, ?)",
            (self._key, now_ms, method),
        )
        self._store_counts({name: (cut, count + 1) for name, (cut, count) in counts.items()})
        self._run(
            f"INSERT INTO {self.LAST} (ledger_key, at_ms, ended_ms) VALUES (?, ?, NULL) "
            "ON CONFLICT (ledger_key) DO UPDATE SET at_ms = excluded.at_ms, ended_ms = NULL",
            (self._key, now_ms),
        )
        return None

    def cleanup_calls(self, now_ms: int) -> None:
        """Delete calls older than every window (the counts move past them first)."""
        self._store_counts(self._counts(now_ms))
        self._run(
            f"DELETE FROM {self.CALLS} WHERE ledger_key = ? AND at_ms < ?",
            (self._key, now_ms - max(WINDOW_INTERVALS.values())),
        )

    # --- the rest, per backend -------------------------------------------------------

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


BUSY_TIMEOUT_SECONDS = 60.0
"""How long a process waits for another's admission transaction on the SQLite file."""


class SQLiteLedgerStore(LedgerStore):
    """The ledger in one SQLite file, shared by the processes of one machine.

    Each transaction is `BEGIN IMMEDIATE`: SQLite's own file lock makes one writer at
    a time across processes (others wait up to `BUSY_TIMEOUT_SECONDS`).
    """

    def __init__(self, settings: PrecoroSettings, windows: list[Window]) -> None:
        """Open (or create) the file at `settings.budget_ledger_path`."""
        super().__init__(settings.ledger_key, windows)
        path = settings.budget_ledger_path
        _prepare_ledger_file(path)
        self._conn = sqlite3.connect(
            os.fspath(path),
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
        # WAL + synchronous=NORMAL (as pyrate-limiter's bucket did): a commit survives a
        # killed process without an fsync per call; a power cut may lose the last few.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._thread_lock = threading.RLock()
        with self.transaction():
            for statement in (
                f"CREATE TABLE IF NOT EXISTS {self.CALLS} (ledger_key TEXT NOT NULL, "
                "at_ms INTEGER NOT NULL, method TEXT NOT NULL)",
                f"CREATE INDEX IF NOT EXISTS {self.CALLS}_key_at "
                f"ON {self.CALLS} (ledger_key, at_ms)",
                f"CREATE TABLE IF NOT EXISTS {self.WINDOWS} (ledger_key TEXT NOT NULL, "
                "name TEXT NOT NULL, cut_ms INTEGER NOT NULL, calls INTEGER NOT NULL, "
                "PRIMARY KEY (ledger_key, name))",
                f"CREATE TABLE IF NOT EXISTS {self.LAST} (ledger_key TEXT PRIMARY KEY, "
                "at_ms INTEGER NOT NULL, ended_ms INTEGER)",
                "CREATE TABLE IF NOT EXISTS recent_gets (ledger_key TEXT NOT NULL, "
                "request_key TEXT NOT NULL, at_ms INTEGER NOT NULL, "
                "PRIMARY KEY (ledger_key, request_key))",
                "CREATE TABLE IF NOT EXISTS blocks (ledger_key TEXT NOT NULL, "
                "scope TEXT NOT NULL, until_ms INTEGER NOT NULL, reason TEXT, "
                "PRIMARY KEY (ledger_key, scope))",
            ):
                self._conn.execute(statement)
            self._adopt_pyrate_table()

    def _adopt_pyrate_table(self) -> None:
        """Move calls recorded by an older version (pyrate-limiter's table) into ours.

        Without this, the first run after an upgrade would not see the day's calls.
        """
        old = f"calls_{self._key[:32]}"
        found = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (old,)
        ).fetchone()
        if found is None:
            return
        self._conn.execute(
            f"INSERT INTO {self.CALLS} (ledger_key, at_ms, method) "
            f"SELECT ?, item_timestamp, name FROM '{old}'",
            (self._key,),
        )
        self._conn.execute(f"DROP TABLE '{old}'")
        self._conn.execute(f"DELETE FROM {self.WINDOWS} WHERE ledger_key = ?", (self._key,))

    @override
    def _one(self, query: str, params: tuple[Any, ...]) -> Row | None:
        row: Row | None = self._conn.execute(query, params).fetchone()
        return row

    @override
    def _all(self, query: str, params: tuple[Any, ...]) -> list[Row]:
        return list(self._conn.execute(query, params).fetchall())

    @override
    def _run(self, query: str, params: tuple[Any, ...]) -> None:
        self._conn.execute(query, params)

    @override
    @contextmanager
    def transaction(self) -> Iterator[int | None]:
        """Thread lock + `BEGIN IMMEDIATE`: one writer across threads and processes.

        Commits on any way out but an interrupt, like the PostgreSQL store: a decision
        that raises (`BudgetExhausted` after recording a 429 block) keeps what it wrote.
        """
        with self._thread_lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield None
            except (KeyboardInterrupt, SystemExit):
                self._conn.rollback()
                raise
            except BaseException:
                self._conn.commit()
                raise
            self._conn.commit()

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

    @override
    def settle_get(self, key: str, at_ms: int) -> None:
        self._conn.execute(
            "UPDATE recent_gets SET at_ms = MAX(at_ms, ?) WHERE ledger_key = ? AND request_key = ?",
            (at_ms, self._key, key),
        )

    @override
    def cleanup(self, now_ms: int, duplicate_ms: int) -> None:
        self.cleanup_calls(now_ms)
        self._conn.execute(
            "DELETE FROM recent_gets WHERE ledger_key = ? AND at_ms < ?",
            (self._key, now_ms - duplicate_ms),
        )
        self._conn.execute(
            "DELETE FROM blocks WHERE ledger_key = ? AND until_ms <= ?", (self._key, now_ms)
        )

    @override
    def close(self) -> None:
        with self._thread_lock:
            self._conn.close()


def open_ledger_store(settings: PrecoroSettings, windows: list[Window]) -> LedgerStore:
    """The store `settings` selects: PostgreSQL for `state_backend_url`, else SQLite."""
    if settings.state_backend_url is not None:
        from precoro_client.pg_backend import PostgresLedgerStore

        return PostgresLedgerStore(settings, windows)
    return SQLiteLedgerStore(settings, windows)


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
        self._spacing = Spacing.for_rps(settings.max_requests_per_second, SPACING_MARGIN)
        self._sent: dict[str, int] = {}
        self._answers: deque[int] = deque(maxlen=ANSWER_HISTORY)
        """How long this process's last answered calls took (ms), for `Spacing.floor_ms`."""
        """Request key -> when this governor admitted it (ms), until its `settle`."""
        windows = [
            Window(HOURLY, self._hourly_limit, HOUR_MS),
            Window(DAILY, self._daily_limit, DAY_MS),
        ]
        self._store = open_ledger_store(settings, windows)
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

    def _usage(self, now_ms: int) -> tuple[int, int]:
        used = self._store.used(now_ms)
        if DAILY in self._store.blocks(now_ms):
            return used, 0
        return used, max(0, self._daily_limit - used)

    def calls_used_today(self) -> int:
        """Calls recorded by every process on this budget in the last 24 hours."""
        with self._locked() as now_ms:
            return self._usage(now_ms)[0]

    def budget(self) -> tuple[int, int, datetime | None]:
        """(calls used in 24 h, left today, when the oldest of them leaves the window)."""
        with self._locked() as now_ms:
            used, left = self._usage(now_ms)
            oldest = self._store.oldest(now_ms)
            return used, left, None if oldest is None else self._to_datetime(oldest + DAY_MS)

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
            spacing = self._spacing_now()
            candidates.extend(
                self._store.free_at(name, now_ms, spacing) for name in self._store.limits()
            )
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
        refused = self._store.admit(method, now_ms, self._spacing_now())
        if refused is None:
            if method == "GET" and self._dup_ms > 0:
                self._store.record_get(key, now_ms)
            self._sent.pop(key, None)
            self._sent[key] = now_ms
            while len(self._sent) > ANSWER_HISTORY:  # acquired, never settled: forget
                del self._sent[next(iter(self._sent))]
            return None
        name, free_at = refused
        if name == DAILY:
            detail = f"{self._daily_limit} calls in the last 24 h"
            raise self._exhausted(DAILY, free_at, now_ms, detail)
        allowed = self._hourly_limit if name == HOURLY else 1
        wait_ms = max(1, free_at - now_ms)
        return _Wait(name, wait_ms, name == SECOND, f"{allowed} calls per window")

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

    def settle(self, method: str, url: str, *, answered: bool = True) -> None:
        """Mark the end of an attempt: an identical GET's window starts again from now.

        Called by the client after every attempt, answered or not (a timed-out GET
        may still have reached the server). An `answered` attempt also tells the
        spacing when the server had certainly seen it (`SPACING_MARGIN`); one that
        failed without an answer does not (its request may still be on the way).
        It never raises for an unreachable ledger: the attempt's answer must reach the
        caller (a POST that was applied must not look unsent); the next `acquire`
        stops the run instead.
        """
        method = method.upper()
        key = request_key(method, url)
        sent = self._sent.pop(key, None)
        is_get = method == "GET" and self._dup_ms > 0
        if not is_get and (sent is None or not answered):
            return
        try:
            with self._locked() as now_ms:
                if is_get:
                    self._store.settle_get(key, now_ms)
                if sent is not None and answered:
                    self._store.settle_call(sent, now_ms)
                    self._answers.append(max(0, now_ms - sent))
        except LedgerUnavailable as exc:
            logger.warning("%s; the GET's window runs from its start", exc.message)

    # --- learning from the server -----------------------------------------------------

    def _spacing_now(self) -> Spacing:
        floor = min(self._answers) if self._answers else None
        return dataclasses.replace(self._spacing, floor_ms=floor)

    def _widen_spacing(self) -> None:
        """A per-second 429: this link's delays vary more than `SPACING_MARGIN` assumes."""
        old = self._spacing
        margin = min(2 * old.margin_ms, math.ceil(old.interval_ms * MAX_SPACING_MARGIN))
        self._spacing = Spacing(old.interval_ms, max(margin, old.margin_ms), trust_end=False)
        logger.warning(
            "Precoro refused a call for the per-second limit; spacing calls %d ms apart from now",
            self._spacing.interval_ms + self._spacing.margin_ms,
        )

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
        if "second" in (error.limit_type or "").lower():
            self._widen_spacing()
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
