"""The write journal: every write's intent is on disk before the request leaves.

A kill -9, a timeout or a lost response can leave a POST whose effect is unknown.
The journal makes that visible to the next attempt: an entry still in `intent` (or
`unknown`) means "this externalId may already exist in Precoro — look it up before
writing". SQLite with `synchronous=FULL` so an intent survives a power cut too.

Precoro may apply a POST well after the client stopped waiting, so a look-up that
finds nothing proves nothing until the write has had time to settle. Each entry keeps
`sent_by`: Precoro's clock (epoch seconds) by which the request had certainly left;
the settle period (`write_settle_seconds`) is counted from it.

The journal is the account's, not the run's: it lives beside the account lock (in the
budget ledger's folder, `journal_path`), so every writer of the account on this machine
sees the writes left open by any other, whatever its `state_dir`. Otherwise a run from
another `state_dir`, taking the lock after a holder was killed with a POST in flight,
would find nothing yet and POST again. Open entries of a journal kept in a `state_dir`
by an older version are moved in once (`adopt`).

Where it is stored is a `JournalBackend`: the SQLite file (the default), or
PostgreSQL (`pg_state.PostgresJournal`, with `state_backend_url`) so that every
machine writing the account sees the open writes of every other. `Journal` holds the
rules (which states are open, what a finish records, what is pruned); a backend only
stores rows.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from precoro_client.errors import LedgerUnavailable
from typing_extensions import override

from target_precoro.settings import account_file
from target_precoro.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL,
    entity TEXT NOT NULL,
    parent INTEGER NOT NULL,
    external_id TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    state TEXT NOT NULL,
    precoro_id INTEGER,
    status INTEGER,
    message TEXT,
    started REAL NOT NULL,
    finished REAL,
    sent_by REAL
);
CREATE INDEX IF NOT EXISTS ix_journal_open ON journal (entity, parent, state);
"""

OPEN_STATES = ("intent", "unknown")
"""States whose outcome in Precoro is not known."""

RETAIN_SECONDS = 30 * 24 * 3600
"""Finished entries are kept this long (for investigations), then pruned; open
entries are never pruned, since they are what makes a re-run look before it writes."""


def journal_path(ledger_path: Path, ledger_key: str) -> Path:
    """The account's journal: beside its lock file (`write-<key>.lock`) and ledger."""
    return account_file(ledger_path, ledger_key, "journal.sqlite3")


@dataclass(frozen=True)
class OpenWrite:
    """A write whose outcome in Precoro is not known yet."""

    method: str
    sent_by: float
    """Precoro's clock (epoch seconds) by which the request had certainly left."""
    base: dict[str, Any] = field(default_factory=dict)
    """The values that become the three-way base if Precoro applied the write."""


COLUMNS = (
    "run",
    "entity",
    "parent",
    "external_id",
    "method",
    "path",
    "state",
    "precoro_id",
    "status",
    "message",
    "started",
    "finished",
    "sent_by",
    "base",
)
"""A journal row, as backends store it (without the sequence number)."""

Row = tuple[Any, ...]


class JournalBackend(ABC):
    """Where the journal's rows live; `Journal` decides what they say."""

    @abstractmethod
    def insert(self, row: Row) -> int:
        """Store one row (values in `COLUMNS` order); returns its sequence number."""

    @abstractmethod
    def insert_many(self, rows: Sequence[Row]) -> None:
        """Store rows in one transaction (adopted entries)."""

    @abstractmethod
    def update(self, seq: int, values: Mapping[str, Any]) -> None:
        """Set columns of one row; a None `sent_by` keeps the stored one."""

    @abstractmethod
    def latest_in(
        self, entity: str, parent: int, states: Sequence[str]
    ) -> list[tuple[str, str, float, str | None]]:
        """(external_id, method, sent_by or started, base) of rows in `states`, oldest first."""

    @abstractmethod
    def close_open(
        self, key: tuple[str, int, str], states: Sequence[str], values: Mapping[str, Any]
    ) -> None:
        """Set columns of every row of (entity, parent, external_id) in `states`."""

    @abstractmethod
    def delete_before(self, before: float, keep: Sequence[str]) -> int:
        """Delete rows started before `before` whose state is not in `keep`."""

    @abstractmethod
    def close(self) -> None:
        """Release the file or connection."""


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


class SqliteJournal(JournalBackend):
    """The journal file (`synchronous=FULL`: an intent outlives a power cut)."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the file, adding columns older versions lacked."""
        self.path = path
        self.db = open_db(path, _SCHEMA, durable=True)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(journal)")}
        if "sent_by" not in columns:  # a journal written before sent_by existed
            self.db.execute("ALTER TABLE journal ADD COLUMN sent_by REAL")
        if "base" not in columns:  # a journal written before the three-way base existed
            self.db.execute("ALTER TABLE journal ADD COLUMN base TEXT")

    @override
    def insert(self, row: Row) -> int:
        cur = self.db.execute(
            f"INSERT INTO journal ({', '.join(COLUMNS)}) VALUES ({_marks(COLUMNS)})", row
        )
        return int(cur.lastrowid or 0)

    @override
    def insert_many(self, rows: Sequence[Row]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                f"INSERT INTO journal ({', '.join(COLUMNS)}) VALUES ({_marks(COLUMNS)})", rows
            )

    @override
    def update(self, seq: int, values: Mapping[str, Any]) -> None:
        sets = ", ".join(
            f"{name}=COALESCE(?, {name})" if name == "sent_by" else f"{name}=?" for name in values
        )
        self.db.execute(f"UPDATE journal SET {sets} WHERE seq=?", (*values.values(), seq))

    @override
    def latest_in(
        self, entity: str, parent: int, states: Sequence[str]
    ) -> list[tuple[str, str, float, str | None]]:
        rows = self.db.execute(
            "SELECT external_id, method, COALESCE(sent_by, started), base FROM journal "
            f"WHERE entity=? AND parent=? AND state IN ({_marks(states)}) ORDER BY seq",
            (entity, parent, *states),
        ).fetchall()
        return [(str(a), str(b), float(c), d) for a, b, c, d in rows]

    @override
    def close_open(
        self, key: tuple[str, int, str], states: Sequence[str], values: Mapping[str, Any]
    ) -> None:
        sets = ", ".join(f"{name}=?" for name in values)
        self.db.execute(
            f"UPDATE journal SET {sets} WHERE entity=? AND parent=? AND external_id=? "
            f"AND state IN ({_marks(states)})",
            (*values.values(), *key, *states),
        )

    @override
    def delete_before(self, before: float, keep: Sequence[str]) -> int:
        cur = self.db.execute(
            f"DELETE FROM journal WHERE state NOT IN ({_marks(keep)}) AND started < ?",
            (*keep, before),
        )
        return cur.rowcount

    @override
    def close(self) -> None:
        self.db.close()


class Journal:
    """Append-only log of write intents and results."""

    def __init__(self, where: Path | JournalBackend, run_id: str) -> None:
        """Open the journal: a SQLite file by path, or another backend."""
        self.store = SqliteJournal(where) if isinstance(where, Path) else where
        self.path = self.store.path if isinstance(self.store, SqliteJournal) else None
        self.run_id = run_id
        # Housekeeping only: if the database is down, the run stops at the next use.
        with contextlib.suppress(LedgerUnavailable):
            self.prune(time.time() - RETAIN_SECONDS)

    def adopt(self, legacy: Path) -> int:
        """Move the open entries of an older journal file (a `state_dir`'s) into this one.

        Called with the account lock held. The entries are marked `moved` in the old
        file, so a second call (or another state_dir's run) does not bring them twice.
        """
        if not legacy.exists() or (
            self.path is not None and legacy.resolve() == self.path.resolve()
        ):
            return 0
        old = sqlite3.connect(legacy, isolation_level=None)
        try:
            known = {row[1] for row in old.execute("PRAGMA table_info(journal)")}
            if not known:
                return 0
            picked = ", ".join(name if name in known else "NULL" for name in COLUMNS)
            rows = old.execute(
                f"SELECT {picked} FROM journal WHERE state IN ({_marks(OPEN_STATES)}) ORDER BY seq",
                OPEN_STATES,
            ).fetchall()
            if not rows:
                return 0
            self.store.insert_many(rows)
            where = self.path if self.path is not None else "the shared journal"
            old.execute(
                "UPDATE journal SET state='moved', message=? "
                f"WHERE state IN ({_marks(OPEN_STATES)})",
                (f"moved to {where}", *OPEN_STATES),
            )
        finally:
            old.close()
        return len(rows)

    def prune(self, before: float) -> int:
        """Delete finished entries older than `before` (epoch seconds); keeps open ones."""
        return self.store.delete_before(before, OPEN_STATES)

    def close(self) -> None:
        """Close the file."""
        self.store.close()

    def intent(
        self,
        entity: str,
        parent: int,
        external_id: str,
        method: str,
        path: str,
        *,
        sent_by: float | None = None,
        base: Mapping[str, Any] | None = None,
    ) -> int:
        """Record a write about to be sent; returns its sequence number.

        `sent_by` (Precoro's clock) bounds when the request leaves, queueing included;
        default: now on the local clock. `base`: the field values that become the
        three-way base if Precoro applies the write, so a write whose answer was lost is
        recognised as ours (not a person's edit) when a later run finds it applied.
        """
        now = time.time()
        values = {
            "run": self.run_id,
            "entity": entity,
            "parent": parent,
            "external_id": external_id,
            "method": method,
            "path": path,
            "state": "intent",
            "started": now,
            "sent_by": now if sent_by is None else sent_by,
            "base": None if not base else json.dumps(dict(base), default=str),
        }
        return self.store.insert(tuple(values.get(name) for name in COLUMNS))

    def _finish(
        self,
        seq: int,
        state: str,
        *,
        precoro_id: int | None = None,
        status: int | None = None,
        message: str | None = None,
        sent_by: float | None = None,
    ) -> None:
        values = {
            "state": state,
            "precoro_id": precoro_id,
            "status": status,
            "message": message,
            "finished": time.time(),
            "sent_by": sent_by,
        }
        self.store.update(seq, values)

    def done(self, seq: int, precoro_id: int | None) -> None:
        """The write succeeded."""
        self._finish(seq, "done", precoro_id=precoro_id)

    def failed(self, seq: int, status: int | None, message: str) -> None:
        """Precoro refused the write (it was not applied)."""
        self._finish(seq, "failed", status=status, message=message)

    def unknown(self, seq: int, message: str, *, sent_by: float | None = None) -> None:
        """The write may or may not have been applied; `sent_by` narrows when it left."""
        self._finish(seq, "unknown", message=message, sent_by=sent_by)

    def open_writes(self, entity: str, parent: int) -> dict[str, OpenWrite]:
        """externalId -> the latest write whose outcome is unknown."""
        rows = self.store.latest_in(entity, parent, OPEN_STATES)
        return {
            ext: OpenWrite(method, sent_by, json.loads(base) if base else {})
            for ext, method, sent_by, base in rows
        }

    def resolve(
        self, entity: str, parent: int, external_id: str, precoro_id: int | None, how: str
    ) -> None:
        """Close open entries once a look-up has established the truth."""
        values = {"state": "resolved", "precoro_id": precoro_id, "message": how}
        self.store.close_open(
            (entity, parent, external_id), OPEN_STATES, {**values, "finished": time.time()}
        )
