"""The budget ledger and the account write lock on PostgreSQL, for many machines.

Chosen by `state_backend_url = postgresql://...`. Every worker of one Precoro
account, on any machine, then spends one budget and takes turns writing.

- Ledger: one transaction per admission, serialised per budget by
  `pg_advisory_xact_lock(<ledger key hash>)`. Inside it the governor reads the
  server blocks, the duplicate-GET window and the per-second/hourly/daily counts and
  records the call, so the decision is exact across machines. The counts are the
  running counts shared with the SQLite store (`LedgerStore`, constant time per
  admission). "Now" is the database's `clock_timestamp()`, so machines whose clocks
  disagree still space calls at one clock. Rows are keyed by
  `PrecoroSettings.ledger_key` (a hash); the token never reaches the database.
- Why not pyrate-limiter's `PostgresBucket`: it counts calls in its own transaction
  on its own pooled connection (a table per bucket, `LOCK TABLE ... NOWAIT` that
  refuses on contention), so the duplicate-GET window and the server's 429 blocks
  could not be checked and recorded atomically with the count; two machines could
  both pass the duplicate check and both send; and its buckets count every call of a
  window on every admission.
- Account lock: a session-level `pg_try_advisory_lock` on a dedicated connection,
  keyed by another hash of the ledger key; the server drops it when the session ends
  (the process died, the network went), so a crashed run never blocks the next. The
  holder's pid/host/run id sit in `precoro_account_locks`. While a process holds the
  lock, every admission also checks in `pg_locks` that the lock's session still
  holds it: a lock lost mid-run stops the run before its next call, it never writes
  without exclusivity.
- About 590 lines in one file: the ledger store, the account lock and the session of
  the target's account state share one connection policy (`_OneConnection`, advisory
  keys, `LedgerUnavailable` naming the setting without the password).
- No reconnecting: a connection error marks the ledger unavailable and every later
  admission raises `LedgerUnavailable` (a clean stop); the next run starts afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, NoReturn

import psycopg
from typing_extensions import override

from precoro_client.account_lock import (
    AccountLock,
    AccountLocked,
    Cancelled,
    LockHolder,
)
from precoro_client.errors import LedgerUnavailable, PrecoroError
from precoro_client.governor import LedgerStore, Row, Spacing, Window
from precoro_client.secret import scrub
from precoro_client.settings import PrecoroSettings, shown_backend

logger = logging.getLogger("precoro_client")

SETTING = "state_backend_url"
CONNECT_TIMEOUT_SECONDS = 10
"""How long to wait for the database before the run stops (it is per connection)."""
LOCK_POLL_SECONDS = 0.2
"""Interval between `pg_try_advisory_lock` attempts while waiting for the account lock."""
SCHEMA_LOCK = 0x707265636F726F
"""Advisory lock serialising `CREATE TABLE IF NOT EXISTS` (concurrent creates race)."""

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS precoro_ledger_calls (ledger_key TEXT NOT NULL, "
    "at_ms BIGINT NOT NULL, method TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS precoro_ledger_calls_key_at "
    "ON precoro_ledger_calls (ledger_key, at_ms)",
    "CREATE TABLE IF NOT EXISTS precoro_ledger_windows (ledger_key TEXT NOT NULL, "
    "name TEXT NOT NULL, cut_ms BIGINT NOT NULL, calls BIGINT NOT NULL, "
    "PRIMARY KEY (ledger_key, name))",
    "CREATE TABLE IF NOT EXISTS precoro_ledger_last (ledger_key TEXT PRIMARY KEY, "
    "at_ms BIGINT NOT NULL, ended_ms BIGINT)",
    "CREATE TABLE IF NOT EXISTS precoro_ledger_recent_gets (ledger_key TEXT NOT NULL, "
    "request_key TEXT NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (ledger_key, request_key))",
    "CREATE TABLE IF NOT EXISTS precoro_ledger_blocks (ledger_key TEXT NOT NULL, "
    "scope TEXT NOT NULL, until_ms BIGINT NOT NULL, reason TEXT, "
    "PRIMARY KEY (ledger_key, scope))",
    "CREATE TABLE IF NOT EXISTS precoro_account_locks (ledger_key TEXT PRIMARY KEY, "
    "pid INTEGER NOT NULL, host TEXT NOT NULL, run_id TEXT NOT NULL, since TEXT NOT NULL, "
    "program TEXT NOT NULL)",
    # target-precoro's account state (journal, record versions, three-way bases): the
    # same columns as its SQLite files, plus the ledger key (one file per account there).
    "CREATE TABLE IF NOT EXISTS precoro_target_journal (seq BIGSERIAL PRIMARY KEY, "
    "ledger_key TEXT NOT NULL, run TEXT NOT NULL, entity TEXT NOT NULL, "
    "parent BIGINT NOT NULL, external_id TEXT NOT NULL, method TEXT NOT NULL, "
    "path TEXT NOT NULL, state TEXT NOT NULL, precoro_id BIGINT, status INTEGER, "
    "message TEXT, started DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION, "
    "sent_by DOUBLE PRECISION, base TEXT)",
    "CREATE INDEX IF NOT EXISTS precoro_target_journal_open "
    "ON precoro_target_journal (ledger_key, entity, parent, state)",
    "CREATE TABLE IF NOT EXISTS precoro_target_versions (ledger_key TEXT NOT NULL, "
    "stream TEXT NOT NULL, external_id TEXT NOT NULL, started DOUBLE PRECISION NOT NULL, "
    "line BIGINT NOT NULL, run TEXT NOT NULL, PRIMARY KEY (ledger_key, stream, external_id))",
    "CREATE TABLE IF NOT EXISTS precoro_target_bases (ledger_key TEXT NOT NULL, "
    "entity TEXT NOT NULL, parent BIGINT NOT NULL, id BIGINT NOT NULL, data TEXT NOT NULL, "
    "PRIMARY KEY (ledger_key, entity, parent, id))",
)

_held_lock = threading.Lock()
_held_sessions: dict[str, set[int]] = {}
"""ledger key -> backend pids of the account-lock sessions this process believes hold it."""


def advisory_key(purpose: str, ledger_key: str) -> int:
    """A signed 64-bit advisory lock key for `purpose` of one budget (stable everywhere)."""
    digest = hashlib.sha256(f"precoro:{purpose}:{ledger_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_tag(key: int) -> tuple[int, int]:
    """`pg_locks` (classid, objid) of a one-bigint advisory lock."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def _problem(exc: BaseException) -> str:
    """The driver's first line, scrubbed (it may repeat parts of the URL)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return scrub(f"{type(exc).__name__}: {first}")


def connect(settings: PrecoroSettings, *, autocommit: bool) -> psycopg.Connection[Any]:
    """Open a connection to `state_backend_url`; `LedgerUnavailable` when it cannot."""
    url = settings.state_backend_url
    if url is None:  # pragma: no cover - callers check
        msg = "state_backend_url is not set"
        raise ValueError(msg)
    try:
        return psycopg.connect(
            url.reveal(),
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="precoro-client",
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
    except psycopg.Error as exc:
        raise LedgerUnavailable(SETTING, shown_backend(settings), _problem(exc)) from None


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the tables once (serialised: concurrent `IF NOT EXISTS` creates collide)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for statement in SCHEMA:
            conn.execute(statement)


class _OneConnection:
    """One connection opened on first use and never reopened, for the ledger and the journal.

    Opened (and the tables created) on first use, so a run can be set up while the
    database is down; any database error marks it broken and raises `LedgerUnavailable`
    naming the setting, now and on every later use, so the caller stops cleanly and the
    next run starts afresh. `_transactions`: whether statements then run in explicit
    transactions (the ledger) or commit on their own (the journal).
    """

    _transactions = False
    _closed_problem = "the connection was closed"

    def _open_lazily(self, settings: PrecoroSettings) -> None:
        self._settings = settings
        self._thread_lock = threading.RLock()
        self._broken: str | None = None
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None

    def _unavailable(self, problem: str) -> LedgerUnavailable:
        return LedgerUnavailable(SETTING, shown_backend(self._settings), problem)

    def _fail(self, exc: BaseException) -> NoReturn:
        """Mark the connection unusable for the rest of the run and stop the caller."""
        self._broken = _problem(exc)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        raise self._unavailable(self._broken) from None

    def _c(self) -> psycopg.Connection[Any]:
        """The connection, opened (and the tables created) on first use; never reopened."""
        if self._broken is not None:
            raise self._unavailable(self._broken)
        if self._conn is None:
            if self._closed:
                raise self._unavailable(self._closed_problem)
            try:
                conn = connect(self._settings, autocommit=True)
            except LedgerUnavailable as exc:
                self._broken = exc.problem
                raise
            self._conn = conn
            try:
                ensure_schema(conn)
                conn.autocommit = not self._transactions
            except psycopg.Error as exc:
                self._fail(exc)
        return self._conn

    def _close_connection(self) -> None:
        """Close for good: a later use raises `LedgerUnavailable`."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class PostgresLedgerStore(_OneConnection, LedgerStore):
    """The ledger's rows in PostgreSQL; one connection, one transaction per decision."""

    CALLS = "precoro_ledger_calls"
    WINDOWS = "precoro_ledger_windows"
    LAST = "precoro_ledger_last"

    _transactions = True
    _closed_problem = "the ledger was closed"

    def __init__(self, settings: PrecoroSettings, windows: list[Window]) -> None:
        """Connect on first use (`_OneConnection`).

        A client (and a target's run) can be built while the database is down; the lock
        or the first admission then stops the run cleanly.
        """
        super().__init__(settings.ledger_key, windows)
        self._open_lazily(settings)
        self._xact_key = advisory_key("ledger", self._key)

    @override
    def _one(self, query: str, params: tuple[Any, ...]) -> Row | None:
        """`?` placeholders (the shared SQL's) become psycopg's `%s`."""
        try:
            row: Row | None = self._c().execute(query.replace("?", "%s"), params).fetchone()
        except psycopg.Error as exc:
            self._fail(exc)
        return row

    @override
    def _all(self, query: str, params: tuple[Any, ...]) -> list[Row]:
        try:
            rows: list[Row] = self._c().execute(query.replace("?", "%s"), params).fetchall()
        except psycopg.Error as exc:
            self._fail(exc)
        return rows

    @override
    def _run(self, query: str, params: tuple[Any, ...]) -> None:
        try:
            self._c().execute(query.replace("?", "%s"), params)
        except psycopg.Error as exc:
            self._fail(exc)

    @override
    @contextlib.contextmanager
    def transaction(self) -> Iterator[int | None]:
        """BEGIN; the budget's advisory lock; the database's clock. COMMIT on any way out.

        A governor decision that raises (`BudgetExhausted` after recording a 429 block)
        still commits what it wrote; only a database error or an interrupt rolls back.
        """
        with self._thread_lock:
            row = self._one(
                "SELECT pg_advisory_xact_lock(%s), "
                "(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                (self._xact_key,),
            )
            assert row is not None
            try:
                yield int(row[1])
            except (KeyboardInterrupt, SystemExit):
                with contextlib.suppress(Exception):
                    self._c().rollback()
                raise
            except LedgerUnavailable:
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        self._conn.rollback()
                raise
            except Exception:
                self._commit()
                raise
            self._commit()

    def _commit(self) -> None:
        try:
            self._c().commit()
        except psycopg.Error as exc:
            self._fail(exc)

    def _check_lock_session(self) -> None:
        """While this process holds the account lock, prove its session still holds it."""
        with _held_lock:
            sessions = sorted(_held_sessions.get(self._key, ()))
        if not sessions:
            return
        classid, objid = _lock_tag(advisory_key("account", self._key))
        row = self._one(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = ANY(%s) AND classid = %s AND objid = %s AND objsubid = 1",
            (sessions, classid, objid),
        )
        if not row or int(row[0]) < len(sessions):
            problem = "the account write lock's session ended (lock lost)"
            self._broken = problem
            raise self._unavailable(problem)

    @override
    def admit(self, method: str, now_ms: int, spacing: Spacing) -> tuple[str, int] | None:
        """Prove the account lock is still held, then the shared counting decides."""
        self._check_lock_session()
        return super().admit(method, now_ms, spacing)

    @override
    def blocks(self, now_ms: int) -> dict[str, tuple[int, str]]:
        try:
            rows = (
                self._c()
                .execute(
                    "SELECT scope, until_ms, reason FROM precoro_ledger_blocks "
                    "WHERE ledger_key = %s AND until_ms > %s",
                    (self._key, now_ms),
                )
                .fetchall()
            )
        except psycopg.Error as exc:
            self._fail(exc)
        return {str(scope): (int(until), str(reason or "")) for scope, until, reason in rows}

    @override
    def add_block(self, scope: str, until_ms: int, reason: str) -> None:
        self._run(
            "INSERT INTO precoro_ledger_blocks (ledger_key, scope, until_ms, reason) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (ledger_key, scope) DO UPDATE SET "
            "until_ms = GREATEST(precoro_ledger_blocks.until_ms, excluded.until_ms), "
            "reason = excluded.reason",
            (self._key, scope, until_ms, reason),
        )

    @override
    def duplicate_at(self, key: str) -> int | None:
        row = self._one(
            "SELECT at_ms FROM precoro_ledger_recent_gets "
            "WHERE ledger_key = %s AND request_key = %s",
            (self._key, key),
        )
        return None if row is None else int(row[0])

    @override
    def record_get(self, key: str, at_ms: int) -> None:
        self._run(
            "INSERT INTO precoro_ledger_recent_gets (ledger_key, request_key, at_ms) "
            "VALUES (%s, %s, %s) ON CONFLICT (ledger_key, request_key) "
            "DO UPDATE SET at_ms = excluded.at_ms",
            (self._key, key, at_ms),
        )

    @override
    def settle_get(self, key: str, at_ms: int) -> None:
        self._run(
            "UPDATE precoro_ledger_recent_gets SET at_ms = GREATEST(at_ms, %s) "
            "WHERE ledger_key = %s AND request_key = %s",
            (at_ms, self._key, key),
        )

    @override
    def cleanup(self, now_ms: int, duplicate_ms: int) -> None:
        self.cleanup_calls(now_ms)
        self._run(
            "DELETE FROM precoro_ledger_recent_gets WHERE ledger_key = %s AND at_ms < %s",
            (self._key, now_ms - duplicate_ms),
        )
        self._run(
            "DELETE FROM precoro_ledger_blocks WHERE ledger_key = %s AND until_ms <= %s",
            (self._key, now_ms),
        )

    @override
    def close(self) -> None:
        with self._thread_lock:
            self._close_connection()


class AccountLockUnavailable(AccountLocked):
    """The database holding the account lock cannot be reached: attempt nothing."""

    def __init__(self, where: str, problem: str) -> None:
        """Name the setting and the (password-free) location."""
        self.holder = None
        self.waited_seconds = 0.0
        self.cancelled = False
        PrecoroError.__init__(
            self, f"the Precoro account write lock at {where} ({SETTING}) is unavailable: {problem}"
        )


class PostgresAccountLock(AccountLock):
    """Session-level advisory lock on a dedicated connection; holder info in a table."""

    def __init__(self, settings: PrecoroSettings, *, run_id: str, program: str) -> None:
        """Nothing is opened until `try_acquire`."""
        super().__init__(settings.ledger_key, run_id=run_id, program=program)
        self._settings = settings
        self._lock_key = advisory_key("account", self.key)
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False
        self._session = 0

    @property
    @override
    def held(self) -> bool:
        return self._held

    def _unavailable(self, exc: BaseException) -> AccountLockUnavailable:
        problem = exc.problem if isinstance(exc, LedgerUnavailable) else _problem(exc)
        return AccountLockUnavailable(shown_backend(self._settings), problem)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            try:
                conn = connect(self._settings, autocommit=True)
            except LedgerUnavailable as exc:
                raise self._unavailable(exc) from None
            try:
                ensure_schema(conn)
            except psycopg.Error as exc:
                conn.close()
                raise self._unavailable(exc) from None
            self._conn = conn
        return self._conn

    @override
    def try_acquire(self, wait_seconds: float, cancelled: Cancelled | None = None) -> bool:
        if self._held:
            return True
        conn = self._connection()
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            try:
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key,)).fetchone()
                if row and row[0]:
                    self._record_holder(conn)
                    break
            except psycopg.Error as exc:
                self._drop()
                raise self._unavailable(exc) from None
            left = deadline - time.monotonic()
            if left <= 0 or (cancelled is not None and cancelled()):
                return False
            time.sleep(min(LOCK_POLL_SECONDS, left))
        self._held = True
        self._session = conn.info.backend_pid
        with _held_lock:
            _held_sessions.setdefault(self.key, set()).add(self._session)
        return True

    def _record_holder(self, conn: psycopg.Connection[Any]) -> None:
        info = self._holder_info()
        conn.execute(
            "INSERT INTO precoro_account_locks (ledger_key, pid, host, run_id, since, program) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (ledger_key) DO UPDATE SET "
            "pid = excluded.pid, host = excluded.host, run_id = excluded.run_id, "
            "since = excluded.since, program = excluded.program",
            (self.key, info.pid, info.host, info.run_id, info.since, info.program),
        )

    def _drop(self) -> None:
        self._held = False
        with _held_lock:
            held = _held_sessions.get(self.key, set())
            held.discard(self._session)
            if not held:
                _held_sessions.pop(self.key, None)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @override
    def release(self) -> None:
        """Delete our holder row and unlock; closing the session would unlock as well."""
        if not self._held:
            if self._conn is not None:
                self._drop()
            return
        conn = self._conn
        try:
            if conn is not None:
                conn.execute(
                    "DELETE FROM precoro_account_locks WHERE ledger_key = %s AND run_id = %s",
                    (self.key, self.run_id),
                )
                conn.execute("SELECT pg_advisory_unlock(%s)", (self._lock_key,))
        except psycopg.Error as exc:
            logger.warning("releasing the account lock: %s (the session end releases it)", exc)
        finally:
            self._drop()

    @override
    def holder(self) -> LockHolder | None:
        try:
            row = (
                self._connection()
                .execute(
                    "SELECT pid, host, run_id, since, program FROM precoro_account_locks "
                    "WHERE ledger_key = %s",
                    (self.key,),
                )
                .fetchone()
            )
        except (psycopg.Error, AccountLockUnavailable):
            return None
        if row is None:
            return None
        pid, host, run_id, since, program = row
        return LockHolder(pid=pid, host=host, run_id=run_id, since=since, program=program)


class PostgresSession(_OneConnection):
    """One autocommit connection for state kept beside the ledger (the target's journal).

    Handled like the ledger's: connected (and the tables created) on first use, never
    reopened; any database error marks it broken and raises `LedgerUnavailable`, now
    and on every later use, so the caller stops cleanly. Every statement commits on
    its own (the journal's intent is durable before the request leaves); `run_many`
    is one transaction. `statements` counts round trips (`run_many` pipelines its
    rows). Shared by several stores: each calls `attach()` and `close()`; the last
    `close()` closes the connection.
    """

    def __init__(self, settings: PrecoroSettings) -> None:
        """Nothing is opened until the first statement."""
        self._open_lazily(settings)
        self.key = settings.ledger_key
        """Rows are keyed by this hash of token + API URL, never the token."""
        self._users = 0
        self.statements = 0

    def attach(self) -> PostgresSession:
        """One more store uses this session (closed when the last one closes)."""
        with self._thread_lock:
            self._users += 1
        return self

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[Row]:
        """The rows of one statement."""
        with self._thread_lock:
            try:
                self.statements += 1
                cur = self._c().execute(query, params)
                result: list[Row] = cur.fetchall() if cur.description is not None else []
            except psycopg.Error as exc:
                self._fail(exc)
        return result

    def run(self, query: str, params: tuple[Any, ...] = ()) -> int:
        """One statement; returns its row count."""
        with self._thread_lock:
            try:
                self.statements += 1
                return int(self._c().execute(query, params).rowcount)
            except psycopg.Error as exc:
                self._fail(exc)

    def run_many(self, query: str, params: list[tuple[Any, ...]]) -> None:
        """One statement for many rows, in one transaction (psycopg pipelines them)."""
        if not params:
            return
        with self._thread_lock:
            try:
                self.statements += 1
                conn = self._c()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(query, params)
            except psycopg.Error as exc:
                self._fail(exc)

    def close(self) -> None:
        """One store is done; the last closes the connection (later use raises)."""
        with self._thread_lock:
            self._users -= 1
            if self._users > 0:
                return
            self._close_connection()
