"""The durable inbox between the webhook receiver and the tap.

Precoro documents no retry for webhooks, so a notification the receiver answered 2xx
for must survive a crash or power cut: the receiver appends it here and answers only
after the append returned. The tap reads entries after the position it keeps in its
Singer state; positions are strictly increasing and never reused (AUTOINCREMENT),
even after a prune, so a position in state stays meaningful.

Besides notifications the inbox holds the receiver's lifecycle markers (`started`,
`stopped`, `heartbeat`): they let the tap see that the receiver was down and that
webhooks may have been lost, which triggers its reconcile poll.

`Inbox` is the whole storage interface; `SqliteInbox` is the implementation, in WAL
mode with `synchronous=FULL`: in WAL mode FULL syncs the log at every commit, so an
acknowledged notification survives a power loss (NORMAL would only survive a process
crash and could lose the last acknowledged deliveries). Concurrent appends share one
commit (group commit), so the fsync cost is paid once per batch, not per delivery.
A row is checked before it joins a batch, and if a batch still fails, each of its rows
is retried in a transaction of its own: one bad row never fails another's append.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

MarkerKind = Literal["started", "stopped", "heartbeat"]
MARKERS: tuple[str, ...] = ("started", "stopped", "heartbeat")
NOTIFICATION = "notification"
BUSY_TIMEOUT_MS = 10_000
SCHEMA_VERSION = "1"
MAX_ENTITY_ID = 2**63 - 1
"""Largest id a SQLite INTEGER holds (signed 64-bit); Precoro's ids are positive."""
MAX_IDN_LENGTH = 64
"""Longest idn the inbox takes (Precoro's are short numbers or codes)."""


@dataclass(frozen=True)
class Notification:
    """One accepted webhook: which entity changed (Precoro sends nothing else)."""

    id: int
    type: int
    action: int
    idn: str | None = None

    def problem(self) -> str | None:
        """Why the inbox cannot store this notification (None: it can)."""
        for name in ("id", "type", "action"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{name!r} must be an integer"
        if not 0 < self.id <= MAX_ENTITY_ID:
            return f"'id' must be between 1 and {MAX_ENTITY_ID}"
        if not (0 <= self.type <= MAX_ENTITY_ID and 0 <= self.action <= MAX_ENTITY_ID):
            return "'type' and 'action' must be between 0 and 2**63 - 1"
        idn = self.idn
        if idn is not None and (
            not isinstance(idn, str)
            or not idn
            or len(idn) > MAX_IDN_LENGTH
            or not idn.isprintable()
        ):
            return f"'idn' must be 1 to {MAX_IDN_LENGTH} printable characters"
        return None


@dataclass(frozen=True)
class Entry:
    """One inbox row: a notification or a receiver lifecycle marker."""

    position: int
    received_at: float
    """Unix time (receiver clock) when the row was written."""
    kind: str
    notification: Notification | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InboxInfo:
    """What identifies an inbox and bounds its positions."""

    inbox_id: str
    """Random id made when the inbox was created: a replaced file gets a new one."""
    head: int
    """Highest position ever written (0 when none)."""
    pruned_upto: int
    """Entries at or below this position were deleted by a prune."""
    heartbeat_seconds: float | None = None
    """Heartbeat interval announced by the newest `started` marker (None: unknown)."""


class Inbox(Protocol):
    """Storage the receiver appends to and the tap reads from."""

    def append(self, notification: Notification) -> int:
        """Store a notification durably; return its position."""
        ...

    def mark(self, kind: MarkerKind, info: Mapping[str, Any] | None = None) -> int:
        """Store a lifecycle marker durably; return its position."""
        ...

    def read_after(
        self, position: int, limit: int, types: Collection[int] | None = None
    ) -> list[Entry]:
        """Entries after `position`, oldest first: markers, and notifications of `types`."""
        ...

    def depth(self, after: int = 0) -> int:
        """Notifications stored after `after`."""
        ...

    def prune(self, upto: int) -> int:
        """Delete entries at or below `upto` (already consumed); return how many."""
        ...

    def info(self) -> InboxInfo:
        """Id, head and prune mark."""
        ...

    def close(self) -> None:
        """Release the storage."""
        ...


class InboxMissing(FileNotFoundError):
    """The inbox file does not exist (the receiver never ran with this path)."""


Row = tuple[float, str, int | None, int | None, int | None, str | None, str | None]
"""received_at, kind, entity_id, type, action, idn, info (JSON text)."""


@dataclass
class _Pending:
    """A row waiting for the group commit that will store it."""

    row: Row
    done: bool = False
    position: int = 0
    error: BaseException | None = None


class SqliteInbox:
    """SQLite (WAL, synchronous=FULL) inbox; safe across threads and processes."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        """Open the inbox at `path`; `create` makes it if missing (the receiver does)."""
        self.path = Path(path)
        if not create and not self.path.exists():
            msg = (
                f"webhook inbox {self.path} does not exist; start "
                f"`precoro-webhooks serve --inbox {self.path}` first"
            )
            raise InboxMissing(msg)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write = self._connect()
        self._read = self._connect()
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        if create:
            self._create_schema()

    def _connect(self) -> sqlite3.Connection:
        """A connection for any thread, every commit synced.

        Not the target's `open_db` nor the sandbox store's `_open`, on purpose: the
        receiver's worker threads share it (`check_same_thread=False`); the tap and
        `status`/`prune` open the same file from other processes, so a writer waits up to
        `BUSY_TIMEOUT_MS` for the lock; a 200 promises the notification is on disk
        (`synchronous=FULL`). WAL is set by the creator only (`_create_schema`): the mode
        persists in the file, and readers open it without creating anything.
        """
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _create_schema(self) -> None:
        with self._write_lock:
            self._write.execute("PRAGMA journal_mode = WAL")
            self._write.execute("BEGIN IMMEDIATE")
            try:
                self._write.execute(
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
                self._write.execute(
                    "CREATE TABLE IF NOT EXISTS entries ("
                    " position INTEGER PRIMARY KEY AUTOINCREMENT,"
                    " received_at REAL NOT NULL,"
                    " kind TEXT NOT NULL,"
                    " entity_id INTEGER, type INTEGER, action INTEGER, idn TEXT, info TEXT)"
                )
                defaults = {
                    "inbox_id": uuid.uuid4().hex,
                    "schema": SCHEMA_VERSION,
                    "pruned_upto": "0",
                }
                self._write.executemany(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", defaults.items()
                )
                self._write.execute("COMMIT")
            except BaseException:
                self._write.execute("ROLLBACK")
                raise

    # --- writes -----------------------------------------------------------------------

    def append(self, notification: Notification) -> int:
        """Store a notification; returns once it is on disk (fsynced).

        A notification the inbox cannot hold raises `ValueError` before it joins a
        batch, so it cannot fail the commit other deliveries share.
        """
        problem = notification.problem()
        if problem is not None:
            msg = f"cannot store notification of type {notification.type!r}: {problem}"
            raise ValueError(msg)
        return self._submit(
            (
                time.time(),
                NOTIFICATION,
                notification.id,
                notification.type,
                notification.action,
                notification.idn,
                None,
            )
        )

    def mark(self, kind: MarkerKind, info: Mapping[str, Any] | None = None) -> int:
        """Store a lifecycle marker; returns once it is on disk."""
        if kind not in MARKERS:
            msg = f"unknown marker {kind!r}; expected one of {MARKERS}"
            raise ValueError(msg)
        text = json.dumps(dict(info), sort_keys=True) if info else None
        return self._submit((time.time(), kind, None, None, None, None, text))

    def _submit(self, row: Row) -> int:
        """Group commit: whoever holds the write lock commits everything queued.

        A caller queues its row, then takes the write lock; if an earlier holder
        already committed the row it just returns, else it commits the whole queue in
        one transaction (one fsync for every delivery that arrived meanwhile).
        """
        pending = _Pending(row)
        with self._queue_lock:
            self._queue.append(pending)
        with self._write_lock:
            if not pending.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if pending.error is not None:
            raise pending.error
        return pending.position

    def _commit(self, batch: list[_Pending]) -> None:
        """Commit the batch in one transaction; if that fails, each row on its own.

        The retry isolates a failing row (its waiter gets its own error) from the
        others, which are then stored as if they had arrived alone.
        """
        try:
            try:
                self._insert(batch)
            except Exception:
                if len(batch) == 1:
                    raise
                for item in batch:
                    try:
                        self._insert([item])
                    except Exception as exc:
                        item.error = exc
        except BaseException as exc:  # e.g. the single row failed: its waiter gets it
            for item in batch:
                if item.position == 0 and item.error is None:
                    item.error = exc
        finally:
            for item in batch:
                item.done = True

    def _insert(self, items: list[_Pending]) -> None:
        """Insert `items` in one transaction; positions are set only once committed."""
        conn = self._write
        positions: list[int] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                cursor = conn.execute(
                    "INSERT INTO entries"
                    " (received_at, kind, entity_id, type, action, idn, info)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    item.row,
                )
                positions.append(int(cursor.lastrowid or 0))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for item, position in zip(items, positions, strict=True):
            item.position = position

    def prune(self, upto: int) -> int:
        """Delete entries at or below `upto` (capped at the head); return how many."""
        with self._write_lock:
            conn = self._write
            conn.execute("BEGIN IMMEDIATE")
            try:
                upto = min(int(upto), self._head(conn))
                # The newest `started` marker is kept: it tells the tap the receiver's
                # heartbeat interval.
                removed = conn.execute(
                    "DELETE FROM entries WHERE position <= ? AND position IS NOT"
                    " (SELECT max(position) FROM entries WHERE kind = 'started')",
                    (upto,),
                ).rowcount
                conn.execute(
                    "UPDATE meta SET value = CAST(MAX(CAST(value AS INTEGER), ?) AS TEXT)"
                    " WHERE key = 'pruned_upto'",
                    (upto,),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return int(removed)

    # --- reads ------------------------------------------------------------------------

    def read_after(
        self, position: int, limit: int, types: Collection[int] | None = None
    ) -> list[Entry]:
        """Entries after `position`, oldest first (markers always included)."""
        sql = (
            "SELECT position, received_at, kind, entity_id, type, action, idn, info"
            " FROM entries WHERE position > ?"
        )
        params: list[Any] = [int(position)]
        if types is not None:
            codes = sorted({int(code) for code in types})
            marks = ", ".join("?" for _ in codes) or "NULL"
            sql += f" AND (kind != ? OR type IN ({marks}))"
            params.extend([NOTIFICATION, *codes])
        sql += " ORDER BY position LIMIT ?"
        params.append(int(limit))
        with self._read_lock:
            rows = self._read.execute(sql, params).fetchall()
        return [_entry(row) for row in rows]

    def depth(self, after: int = 0) -> int:
        """Notifications stored after `after` (markers not counted)."""
        with self._read_lock:
            row = self._read.execute(
                "SELECT count(*) FROM entries WHERE kind = ? AND position > ?",
                (NOTIFICATION, int(after)),
            ).fetchone()
        return int(row[0])

    def info(self) -> InboxInfo:
        """Id, head and prune mark, read in one snapshot."""
        with self._read_lock:
            conn = self._read
            conn.execute("BEGIN")
            try:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                head = self._head(conn)
                started = conn.execute(
                    "SELECT info FROM entries WHERE kind = 'started' ORDER BY position DESC LIMIT 1"
                ).fetchone()
            finally:
                conn.execute("COMMIT")
        return InboxInfo(
            inbox_id=str(meta.get("inbox_id", "")),
            head=head,
            pruned_upto=int(meta.get("pruned_upto", "0")),
            heartbeat_seconds=_heartbeat(started[0] if started else None),
        )

    def last_marker(self, kind: MarkerKind) -> Entry | None:
        """The newest marker of one kind, if any is left."""
        with self._read_lock:
            row = self._read.execute(
                "SELECT position, received_at, kind, entity_id, type, action, idn, info"
                " FROM entries WHERE kind = ? ORDER BY position DESC LIMIT 1",
                (kind,),
            ).fetchone()
        return _entry(row) if row else None

    @staticmethod
    def _head(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Close both connections (safe to call twice)."""
        with self._write_lock:
            self._write.close()
        with self._read_lock:
            self._read.close()


def _heartbeat(info: str | None) -> float | None:
    value = json.loads(info).get("heartbeat_seconds") if info else None
    return float(value) if isinstance(value, int | float) else None


def _entry(row: tuple[Any, ...]) -> Entry:
    position, received_at, kind, entity_id, type_code, action, idn, info = row
    notification = None
    if kind == NOTIFICATION:
        notification = Notification(
            id=int(entity_id), type=int(type_code), action=int(action), idn=idn
        )
    return Entry(
        position=int(position),
        received_at=float(received_at),
        kind=str(kind),
        notification=notification,
        info=json.loads(info) if info else {},
    )
