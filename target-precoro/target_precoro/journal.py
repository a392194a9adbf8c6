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
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


class Journal:
    """Append-only log of write intents and results."""

    def __init__(self, path: Path, run_id: str) -> None:
        """Open (and create) the journal file."""
        self.path = path
        self.db = open_db(path, _SCHEMA, durable=True)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(journal)")}
        if "sent_by" not in columns:  # a journal written before sent_by existed
            self.db.execute("ALTER TABLE journal ADD COLUMN sent_by REAL")
        if "base" not in columns:  # a journal written before the three-way base existed
            self.db.execute("ALTER TABLE journal ADD COLUMN base TEXT")
        self.run_id = run_id
        self.prune(time.time() - RETAIN_SECONDS)

    def adopt(self, legacy: Path) -> int:
        """Move the open entries of an older, per-`state_dir` journal into this one.

        Called with the account lock held. The entries are marked `moved` in the old
        file, so a second call (or another state_dir's run) does not bring them twice.
        """
        if not legacy.exists() or legacy.resolve() == self.path.resolve():
            return 0
        columns = (
            "run, entity, parent, external_id, method, path, state, precoro_id, status, "
            "message, started, finished, sent_by"
        )
        old = sqlite3.connect(legacy, isolation_level=None)
        try:
            known = {row[1] for row in old.execute("PRAGMA table_info(journal)")}
            if not known:
                return 0
            sent_by = "sent_by" if "sent_by" in known else "NULL"
            placeholders = ", ".join("?" for _ in OPEN_STATES)
            rows = old.execute(
                f"SELECT {columns.replace('sent_by', sent_by)} FROM journal "
                f"WHERE state IN ({placeholders}) ORDER BY seq",
                OPEN_STATES,
            ).fetchall()
            if not rows:
                return 0
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany(
                    f"INSERT INTO journal ({columns}) VALUES ({', '.join('?' * 13)})", rows
                )
            old.execute(
                f"UPDATE journal SET state='moved', message=? WHERE state IN ({placeholders})",
                (f"moved to {self.path}", *OPEN_STATES),
            )
        finally:
            old.close()
        return len(rows)

    def prune(self, before: float) -> int:
        """Delete finished entries older than `before` (epoch seconds); keeps open ones."""
        placeholders = ", ".join("?" for _ in OPEN_STATES)
        cur = self.db.execute(
            f"DELETE FROM journal WHERE state NOT IN ({placeholders}) AND started < ?",
            (*OPEN_STATES, before),
        )
        return cur.rowcount

    def close(self) -> None:
        """Close the file."""
        self.db.close()

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
        cur = self.db.execute(
            "INSERT INTO journal (run, entity, parent, external_id, method, path, state, started,"
            " sent_by, base) VALUES (?, ?, ?, ?, ?, ?, 'intent', ?, ?, ?)",
            (
                self.run_id,
                entity,
                parent,
                external_id,
                method,
                path,
                now,
                now if sent_by is None else sent_by,
                None if not base else json.dumps(dict(base), default=str),
            ),
        )
        return int(cur.lastrowid or 0)

    def _finish(
        self,
        seq: int,
        state: str,
        *,
        precoro_id: int | None = None,
        status: int | None = None,
        message: str | None = None,
    ) -> None:
        self.db.execute(
            "UPDATE journal SET state=?, precoro_id=?, status=?, message=?, finished=? WHERE seq=?",
            (state, precoro_id, status, message, time.time(), seq),
        )

    def done(self, seq: int, precoro_id: int | None) -> None:
        """The write succeeded."""
        self._finish(seq, "done", precoro_id=precoro_id)

    def failed(self, seq: int, status: int | None, message: str) -> None:
        """Precoro refused the write (it was not applied)."""
        self._finish(seq, "failed", status=status, message=message)

    def unknown(self, seq: int, message: str, *, sent_by: float | None = None) -> None:
        """The write may or may not have been applied; `sent_by` narrows when it left."""
        self._finish(seq, "unknown", message=message)
        if sent_by is not None:
            self.db.execute("UPDATE journal SET sent_by=? WHERE seq=?", (sent_by, seq))

    def open_writes(self, entity: str, parent: int) -> dict[str, OpenWrite]:
        """externalId -> the latest write whose outcome is unknown."""
        rows = self.db.execute(
            "SELECT external_id, method, COALESCE(sent_by, started), base FROM journal "
            "WHERE entity=? AND parent=? AND state IN ('intent', 'unknown') ORDER BY seq",
            (entity, parent),
        ).fetchall()
        return {
            ext: OpenWrite(method, float(sent_by), json.loads(base) if base else {})
            for ext, method, sent_by, base in rows
        }

    def resolve(
        self, entity: str, parent: int, external_id: str, precoro_id: int | None, how: str
    ) -> None:
        """Close open entries once a look-up has established the truth."""
        self.db.execute(
            "UPDATE journal SET state='resolved', precoro_id=?, message=?, finished=? "
            "WHERE entity=? AND parent=? AND external_id=? AND state IN ('intent', 'unknown')",
            (precoro_id, how, time.time(), entity, parent, external_id),
        )
