"""SQLite storage of sandbox records, built for 1,000,000 records and fast pages.

One table holds every record of every company. The columns lists filter and sort on
(company, collection, id, idn, update time as epoch seconds, externalId, enable,
status, logicType, supplier id, parent id, shuffle key) are indexed; the record itself
is stored twice as ready-made JSON text — the list row, and the detail-only extra
fields — so a page is served by joining strings, never by re-serialising.

The server is threaded: connections come from a small pool (one per concurrent
request, reused), reads run in WAL mode alongside the single writer, and all writes
go through `write_lock` so read-modify-write sequences are atomic.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from precoro_client.registry import PARENT_ID_FIELD, Entity

from precoro_sandbox.datagen import Record, Sequences
from precoro_sandbox.dates import epoch

COLUMNS = (
    "company",
    "coll",
    "id",
    "idn",
    "parent_id",
    "upd",
    "created",
    "approval",
    "external_id",
    "enable",
    "status",
    "logic_type",
    "supplier_id",
    "shuffle",
    "list_json",
    "extra_json",
)

FILTER_COLUMNS: dict[str, str] = {
    "id": "id",
    "externalId": "external_id",
    "status": "status",
    "enable": "enable",
    "supplier.id": "supplier_id",
    "approvalDate": "approval",
    "createDate": "created",
    "logicType": "logic_type",
    "updateDate": "upd",
}
"""Registry filter field → indexed column."""

ORDER_SQL: dict[str, str] = {
    "id": "id",
    "id_desc": "id DESC",
    "updated_asc": "upd, id",
    "updated_desc": "upd DESC, id DESC",
    "created": "created, id",
    "shuffle": "shuffle, id",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    company INTEGER NOT NULL,
    coll TEXT NOT NULL,
    id INTEGER NOT NULL,
    idn TEXT,
    parent_id INTEGER,
    upd INTEGER NOT NULL,
    created INTEGER,
    approval INTEGER,
    external_id TEXT,
    enable INTEGER,
    status INTEGER,
    logic_type INTEGER,
    supplier_id INTEGER,
    shuffle INTEGER NOT NULL,
    list_json TEXT NOT NULL,
    extra_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS ux_records_id ON records (company, coll, id);
CREATE UNIQUE INDEX IF NOT EXISTS ux_records_coll_id ON records (coll, id);
CREATE INDEX IF NOT EXISTS ix_records_upd ON records (company, coll, upd, id);
CREATE INDEX IF NOT EXISTS ix_records_shuffle ON records (company, coll, shuffle, id);
CREATE INDEX IF NOT EXISTS ix_records_idn ON records (company, coll, idn);
CREATE INDEX IF NOT EXISTS ix_records_ext ON records (company, coll, external_id);
CREATE INDEX IF NOT EXISTS ix_records_supplier ON records (company, coll, supplier_id);
CREATE INDEX IF NOT EXISTS ix_records_parent ON records (company, coll, parent_id, id);
CREATE INDEX IF NOT EXISTS ix_records_status ON records (company, coll, status);
"""

_BATCH = 5000


def dumps(value: Any) -> str:
    """Compact UTF-8 JSON, as served."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def split_json(entity: Entity, rec: Record) -> tuple[str, str]:
    """The list-row JSON and the detail-only extra JSON of a record, in registry order."""
    listed = {f.name: rec.get(f.name) for f in entity.list_fields}
    extra = {f.name: rec.get(f.name) for f in entity.detail_fields}
    return dumps(listed), dumps(extra)


def detail_text(list_json: str, extra_json: str) -> str:
    """The detail JSON: the list row with the detail-only fields appended."""
    if extra_json == "{}":
        return list_json
    return list_json[:-1] + "," + extra_json[1:]


def shuffle_key(seed: int, coll: str, record_id: int) -> int:
    """Stable pseudo-random sort key for the `shuffle` order."""
    return zlib.crc32(f"{seed}:{coll}:{record_id}".encode())


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def row_for(company: int, entity: Entity, rec: Record, seed: int) -> tuple[Any, ...]:
    """The table row (all COLUMNS) of a record."""
    list_json, extra_json = split_json(entity, rec)
    supplier = rec.get("supplier")
    external = rec.get("externalId")
    enable = rec.get("enable")
    return (
        company,
        entity.name,
        rec["id"],
        rec.get("idn"),
        rec.get(PARENT_ID_FIELD),
        epoch(rec["updateDate"]),
        epoch(rec.get("createDate")),
        epoch(rec.get("approvalDate")),
        None if external in (None, "") else str(external),
        None if enable is None else int(bool(enable)),
        _int_or_none(rec.get("status")),
        _int_or_none(rec.get("logicType")),
        supplier.get("id") if isinstance(supplier, dict) else None,
        shuffle_key(seed, entity.name, rec["id"]),
        list_json,
        extra_json,
    )


class Store:
    """The record table plus a pool of connections to it."""

    def __init__(self, path: str | None = None) -> None:
        """Open (or create) the database; None means a temporary file removed on close."""
        self.temporary = path is None
        if path is None:
            fd, path = tempfile.mkstemp(prefix="precoro-sandbox-", suffix=".sqlite3")
            os.close(fd)
        self.path = path
        self.write_lock = threading.RLock()
        self.seq = Sequences()
        self._pool: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        with self.connection() as conn:
            conn.executescript(_SCHEMA)

    # --- connections -----------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        """A pooled connection tuned for speed, not for surviving a crash.

        Not the target's `open_db` nor the webhook inbox's `_connect`, on purpose: the
        records are an emulator's test data (generated from a seed), so commits are not
        synced (`synchronous=OFF`) and caches are large, to serve 1,000,000 records fast;
        the server's threads share the pool (`check_same_thread=False`).
        """
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA mmap_size=268435456")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection for the duration of one request."""
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("store is closed")
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._open()
            with self._pool_lock:
                self._all.append(conn)
        try:
            yield conn
        finally:
            with self._pool_lock:
                self._pool.append(conn)

    def close(self) -> None:
        """Close every connection; delete the file when it is temporary."""
        with self._pool_lock:
            self._closed = True
            conns, self._all, self._pool = self._all, [], []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if self.temporary:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path + suffix)

    # --- bulk load -------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        """A stored metadata value (dataset signature...)."""
        with self.connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a metadata value."""
        with self.write_lock, self.connection() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def wipe(self) -> None:
        """Drop every record (indexes are dropped too, for a fast bulk reload)."""
        with self.write_lock, self.connection() as conn:
            conn.execute("DROP TABLE IF EXISTS records")
            conn.execute("DELETE FROM meta")
            conn.executescript(_SCHEMA)
        self.seq = Sequences()

    def insert_rows(self, rows: Iterable[tuple[Any, ...]]) -> int:
        """Insert rows in batches with executemany; returns how many."""
        sql = f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        total = 0
        batch: list[tuple[Any, ...]] = []
        with self.write_lock, self.connection() as conn:
            conn.execute("BEGIN")
            for row in rows:
                batch.append(row)
                if len(batch) >= _BATCH:
                    conn.executemany(sql, batch)
                    total += len(batch)
                    batch.clear()
            if batch:
                conn.executemany(sql, batch)
                total += len(batch)
            conn.execute("COMMIT")
        return total

    def finish_load(self) -> None:
        """Create the indexes and move the id/idn counters past the stored records."""
        with self.write_lock, self.connection() as conn:
            conn.executescript(_INDEXES)
            conn.execute("ANALYZE")
            rows = conn.execute(
                "SELECT company, coll, MAX(id), MAX(CAST(idn AS INTEGER)) "
                "FROM records GROUP BY company, coll"
            ).fetchall()
        for company, coll, max_id, max_idn in rows:
            self.seq.observe(coll, max_id, company, max_idn)

    # --- reads -----------------------------------------------------------------------

    def page(
        self,
        company: int,
        coll: str,
        where: list[str],
        params: list[Any],
        *,
        order: str,
        limit: int,
        offset: int,
    ) -> list[str]:
        """List-row JSON texts of one page."""
        sql = (
            "SELECT list_json FROM records WHERE company = ? AND coll = ?"
            + "".join(f" AND {clause}" for clause in where)
            + f" ORDER BY {ORDER_SQL[order]} LIMIT ? OFFSET ?"
        )
        with self.connection() as conn:
            rows = conn.execute(sql, (company, coll, *params, limit, offset)).fetchall()
        return [row[0] for row in rows]

    def count(self, company: int, coll: str, where: list[str], params: list[Any]) -> int:
        """Number of records matching a filter."""
        sql = "SELECT COUNT(*) FROM records WHERE company = ? AND coll = ?" + "".join(
            f" AND {clause}" for clause in where
        )
        with self.connection() as conn:
            return int(conn.execute(sql, (company, coll, *params)).fetchone()[0])

    def find(
        self, company: int, coll: str, column: str, value: Any, parent_id: int | None = None
    ) -> tuple[str, str] | None:
        """(list_json, extra_json) of the record whose `column` equals `value`."""
        sql = (
            "SELECT list_json, extra_json FROM records "
            f"WHERE company = ? AND coll = ? AND {column} = ?"
        )
        params: list[Any] = [company, coll, value]
        if parent_id is not None:
            sql += " AND parent_id = ?"
            params.append(parent_id)
        with self.connection() as conn:
            row = conn.execute(sql + " LIMIT 1", params).fetchone()
        return None if row is None else (row[0], row[1])

    def record(
        self, company: int, coll: str, column: str, value: Any, parent_id: int | None = None
    ) -> Record | None:
        """The full record (list and detail fields) as a dict, or None."""
        found = self.find(company, coll, column, value, parent_id)
        if found is None:
            return None
        rec: Record = json.loads(found[0])
        rec.update(json.loads(found[1]))
        return rec

    def random_record(
        self, company: int, coll: str, rng: random.Random, parent_id: int | None = None
    ) -> Record | None:
        """A uniformly chosen record of a collection (deterministic for a given rng)."""
        where, params = ([], []) if parent_id is None else (["parent_id = ?"], [parent_id])
        total = self.count(company, coll, where, params)
        if total == 0:
            return None
        offset = rng.randrange(total)
        sql = (
            "SELECT list_json, extra_json FROM records WHERE company = ? AND coll = ?"
            + "".join(f" AND {c}" for c in where)
            + " ORDER BY id LIMIT 1 OFFSET ?"
        )
        with self.connection() as conn:
            row = conn.execute(sql, (company, coll, *params, offset)).fetchone()
        rec: Record = json.loads(row[0])
        rec.update(json.loads(row[1]))
        return rec

    def counts(self) -> dict[int, dict[str, int]]:
        """Record counts per company and collection."""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT company, coll, COUNT(*) FROM records GROUP BY company, coll"
            ).fetchall()
        result: dict[int, dict[str, int]] = {}
        for company, coll, total in rows:
            result.setdefault(int(company), {})[str(coll)] = int(total)
        return result

    # --- writes ----------------------------------------------------------------------

    def save(self, company: int, entity: Entity, rec: Record, seed: int, *, new: bool) -> None:
        """Insert a new record or replace an existing one (by collection and id)."""
        row = row_for(company, entity, rec, seed)
        with self.write_lock, self.connection() as conn:
            if new:
                conn.execute(
                    f"INSERT INTO records ({', '.join(COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(COLUMNS))})",
                    row,
                )
            else:
                assignments = ", ".join(f"{c} = ?" for c in COLUMNS if c != "shuffle")
                values = [v for c, v in zip(COLUMNS, row, strict=True) if c != "shuffle"]
                conn.execute(
                    f"UPDATE records SET {assignments} WHERE coll = ? AND id = ?",
                    (*values, entity.name, rec["id"]),
                )
