"""How the target opens its SQLite files (index, journal, record versions): one way."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str, *, durable: bool = False) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit) in WAL mode, schema created.

    WAL lets the readers of other runs go on while one writes. `durable` also syncs
    every commit to disk (the journal: a write's intent must outlive a power cut).
    The webhook inbox (`SqliteInbox._connect`) and the sandbox store (`Store._open`)
    open theirs differently on purpose: shared across threads, and always synced (the
    inbox) or never (the sandbox's test data); see their docstrings.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    if durable:
        db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db
