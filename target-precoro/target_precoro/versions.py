"""Which version of each record Precoro holds from us, so a replay never reverts one.

A version is where a record came from: the run that first read it (its start time)
and its input line. Records of a later run are newer; within a run, a later line is
newer. A dead-letter file keeps each record's origin, so replaying it later does not
make its records new: a record whose externalId has since been written from a newer
version is skipped, not written over the newer one.

The store is the account's, like the write journal: it lives beside the account lock
(`account_file`), so a dead-letter file replayed through any pipeline's `state_dir`
sees every newer version any of them wrote. A store an older version kept in a
`state_dir` is merged in once (`adopt`, newer wins).

Rows live in a `VersionBackend`: the SQLite file (default) or PostgreSQL
(`pg_state.PostgresVersions`, with `state_backend_url`, so every machine sees every
newer version). The rule (newer wins, by run start then line) is `Origin`'s order,
applied here and in the backend's conditional upsert.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from typing_extensions import override

from target_precoro.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS written (
    stream TEXT NOT NULL,
    external_id TEXT NOT NULL,
    started REAL NOT NULL,
    line INTEGER NOT NULL,
    run TEXT NOT NULL,
    PRIMARY KEY (stream, external_id)
);
"""


@dataclass(frozen=True, order=True)
class Origin:
    """Where one record version came from; ordered oldest first."""

    started: float
    """Start of the run that first read it (epoch seconds)."""
    line: int
    run: str

    def to_json(self) -> dict[str, Any]:
        """The `origin` key of a dead-letter RECORD message."""
        return {"run": self.run, "started": self.started, "line": self.line}

    @classmethod
    def from_json(cls, data: Any) -> Origin | None:
        """An origin from a dead-letter message; None when absent or not well formed."""
        if not isinstance(data, dict):
            return None
        run, started, line = data.get("run"), data.get("started"), data.get("line")
        if (
            not isinstance(run, str)
            or isinstance(started, bool)
            or not isinstance(started, int | float | Decimal)  # Singer parses floats as Decimal
            or isinstance(line, bool)
            or not isinstance(line, int)
        ):
            return None
        return cls(float(started), line, run)

    def describe(self) -> str:
        """E.g. "line 12 of run 20261201T...": for report messages."""
        return f"line {self.line} of run {self.run}"


VersionRow = tuple[str, str, float, int, str]
"""(stream, external_id, started, line, run)."""


class VersionBackend(ABC):
    """Where the newest version per record is stored."""

    @abstractmethod
    def get(self, stream: str, external_id: str) -> tuple[float, int, str] | None:
        """(started, line, run) stored for the record, if any."""

    @abstractmethod
    def put_newer(self, rows: Sequence[VersionRow]) -> None:
        """Store rows in one transaction, each only over an older (started, line)."""

    @abstractmethod
    def close(self) -> None:
        """Release the file or connection."""


class SqliteVersions(VersionBackend):
    """The versions file beside the account lock."""

    def __init__(self, path: Path) -> None:
        """Open (and create) the file."""
        self.path = path
        self.db = open_db(path, _SCHEMA)

    @override
    def get(self, stream: str, external_id: str) -> tuple[float, int, str] | None:
        row = self.db.execute(
            "SELECT started, line, run FROM written WHERE stream = ? AND external_id = ?",
            (stream, external_id),
        ).fetchone()
        return None if row is None else (float(row[0]), int(row[1]), str(row[2]))

    @override
    def put_newer(self, rows: Sequence[VersionRow]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO written (stream, external_id, started, line, run)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream, external_id) DO UPDATE SET"
                " started = excluded.started, line = excluded.line, run = excluded.run"
                " WHERE (excluded.started, excluded.line) > (written.started, written.line)",
                rows,
            )

    @override
    def close(self) -> None:
        self.db.close()


class VersionStore:
    """The newest version written per stream and externalId (per account)."""

    def __init__(self, where: Path | VersionBackend) -> None:
        """Open the store: a SQLite file by path, or another backend."""
        self.store = SqliteVersions(where) if isinstance(where, Path) else where
        self.path = self.store.path if isinstance(self.store, SqliteVersions) else None
        self._pending: dict[tuple[str, str], Origin] = {}

    def adopt(self, legacy: Path) -> int:
        """Merge an older store's file (a `state_dir`'s; newer wins), then rename it.

        Called with the account lock held; the renamed file (`.adopted`) is kept for
        investigations and is not read again.
        """
        if not legacy.exists() or (
            self.path is not None and legacy.resolve() == self.path.resolve()
        ):
            return 0
        old = sqlite3.connect(legacy)
        try:
            tables = {r[0] for r in old.execute("SELECT name FROM sqlite_master")}
            rows = (
                old.execute(
                    "SELECT stream, external_id, started, line, run FROM written"
                ).fetchall()
                if "written" in tables
                else []
            )
        finally:
            old.close()
        for stream, external_id, started, line, run in rows:
            self.written(str(stream), str(external_id), Origin(float(started), int(line), str(run)))
        self.flush()
        legacy.rename(legacy.with_name(legacy.name + ".adopted"))
        return len(rows)

    def newest(self, stream: str, external_id: str) -> Origin | None:
        """The newest version of this record that Precoro holds from us, if known."""
        pending = self._pending.get((stream, external_id))
        row = self.store.get(stream, external_id)
        stored = None if row is None else Origin(*row)
        return max((o for o in (pending, stored) if o is not None), default=None)

    def written(self, stream: str, external_id: str, origin: Origin) -> None:
        """Note that Precoro now holds this version (stored by `flush`, once per batch)."""
        key = (stream, external_id)
        known = self._pending.get(key)
        if known is None or origin > known:
            self._pending[key] = origin

    def flush(self) -> None:
        """Store the versions noted since the last flush (one transaction); newer wins."""
        if not self._pending:
            return
        rows = [(s, x, o.started, o.line, o.run) for (s, x), o in self._pending.items()]
        self.store.put_newer(rows)
        self._pending.clear()

    def close(self) -> None:
        """Store what is pending and close the database."""
        try:
            self.flush()
        finally:
            self.store.close()
