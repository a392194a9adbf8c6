"""The externalId index: which Precoro record carries which externalId, cached locally.

One SQLite file per account in `state_dir`. Precoro records are stored as last seen
(the full list row), keyed by entity, parent (custom field of an option, else `NO_PARENT`) and
Precoro id. How it stays correct without re-reading whole collections:

- Entities Precoro filters by `modifiedSince` (suppliers, items, payments, documents):
  once per run, the changes since the previous refresh (minus `lookback_minutes`) are
  read and stored, so cached rows are trusted.
- Other entities (taxes, payment terms, locations, legal entities, options) cannot be
  asked what changed, so their cache is not trusted: every incoming externalId is
  looked up with `external_id[]`.
- Any externalId not in the cache, or with an unfinished write in the journal, is
  looked up with `external_id[]`, up to 200 per call.
- A refresh never reports deletions, so a cached row is trusted only for
  `index_recheck_hours` after Precoro last showed it (`confirmed`, Precoro's clock);
  then it is looked up again. A look-up that does not return a cached row drops it:
  the record is gone (or carries another externalId, which the refresh shows).
- Linking candidates (records without externalId) are listed once per entity (with
  Precoro's "has no externalId" filter where the registry has one) and then kept
  current by the same refresh.

About 600 lines, kept in one file on purpose: `IndexStore` (the tables) and `Index`
(the reads that keep them right) implement the rules above together, and a change to
one rule changes both.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from precoro_client.client import PrecoroClient
from precoro_client.errors import ValidationFailed
from precoro_client.limits import MAX_EXTERNAL_IDS
from precoro_client.registry import MODIFIED_SINCE_FORMAT, Entity, get
from typing_extensions import override

from target_precoro.sqlite import open_db

NO_PARENT = 0
"""The `parent` key of a top-level entity's records (options are keyed by their custom
field's id). 0 rather than NULL: the index and journal key rows by (entity, parent, ...)
and SQLite's NULLs never compare equal."""


def path_parent(parent: int) -> int | None:
    """The parent id to fill into an entity's path: none for `NO_PARENT`."""
    return None if parent == NO_PARENT else parent


PAGE_SIZE = 200
MAX_LOOKUP_QUERY_BYTES = 7200
"""Budget of one `external_id[]` look-up's query string (paging included), URL-encoded.

nginx and Apache refuse a request line over 8 KB (8192 / 8190 bytes: method, path,
query and protocol) with 414; 7200 bytes of query leave about 1 KB (over 10%) for the
rest. 200 ids of up to 16 ASCII characters fit in one call (UUIDs take two calls per
200). Look-ups are batched by this as well as by `lookup_batch_size`."""
RECHECK_TOLERANCE = 0.05
"""A row is re-checked once 95% of `index_recheck_hours` have passed, so a run started
a little earlier than the previous one (schedule jitter) does not skip a period."""
PAGING_BYTES = 32
"""What `&page=N&per_page=200` adds to a look-up's query (with room to spare)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    entity TEXT NOT NULL,
    parent INTEGER NOT NULL,
    id INTEGER NOT NULL,
    external_id TEXT,
    data TEXT NOT NULL,
    confirmed REAL,
    PRIMARY KEY (entity, parent, id)
);
CREATE INDEX IF NOT EXISTS ix_records_ext ON records (entity, parent, external_id);
CREATE TABLE IF NOT EXISTS refreshes (
    entity TEXT NOT NULL,
    parent INTEGER NOT NULL,
    since TEXT,
    candidates_loaded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity, parent)
);
CREATE TABLE IF NOT EXISTS bases (
    entity TEXT NOT NULL,
    parent INTEGER NOT NULL,
    id INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (entity, parent, id)
);
"""


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _query_bytes(param: str, value: str) -> int:
    """Bytes one `param=value&` adds to a query string (as `requests` encodes it)."""
    return len(urlencode([(param, value)])) + 1


def _has_external_filter(entity: Entity) -> str | None:
    """The registry's "has externalId" list filter of an entity, if any."""
    for flt in entity.filters:
        if flt.field == "externalId" and flt.op == "has":
            return str(flt.param)
    return None


def _lookup_param(entity: Entity) -> str:
    for flt in entity.filters:
        if flt.field == "externalId" and flt.op == "in":
            return str(flt.param)
    msg = f"{entity.name} has no external_id[] filter in the registry"
    raise ValueError(msg)


BaseRow = tuple[str, int, int, str]
"""(entity, parent, Precoro id, JSON of field -> value)."""


class BasesBackend(ABC):
    """Where the three-way bases live; `IndexStore` decides what they hold.

    `put` runs inside the index file's transaction: the SQLite bases (an attached
    file) commit with the records; PostgreSQL's (`pg_state.PostgresBases`) commit
    first, so a kill in between leaves a base ahead of a stale cached row, which the
    next refresh or look-up replaces (never a cached row ahead of its base, which
    would read our own write as a person's edit).
    """

    @abstractmethod
    def get(self, entity: str, parent: int, precoro_id: int) -> str | None:
        """The stored JSON of one record's base."""

    @abstractmethod
    def put(self, rows: list[BaseRow]) -> None:
        """Insert or replace rows."""

    @abstractmethod
    def delete(self, keys: list[tuple[str, int, int]]) -> None:
        """Forget the bases of these records."""

    @abstractmethod
    def close(self) -> None:
        """Release what the backend holds."""


class SqliteBases(BasesBackend):
    """A `bases` table on the index's connection (its own or an attached shared file)."""

    def __init__(self, db: sqlite3.Connection, table: str) -> None:
        """Use `table` (`main.bases` or `shared.bases`) of `db`."""
        self.db = db
        self.table = table

    @override
    def get(self, entity: str, parent: int, precoro_id: int) -> str | None:
        row = self.db.execute(
            f"SELECT data FROM {self.table} WHERE entity=? AND parent=? AND id=?",
            (entity, parent, precoro_id),
        ).fetchone()
        return None if row is None else str(row[0])

    @override
    def put(self, rows: list[BaseRow]) -> None:
        self.db.executemany(f"INSERT OR REPLACE INTO {self.table} VALUES (?, ?, ?, ?)", rows)

    @override
    def delete(self, keys: list[tuple[str, int, int]]) -> None:
        self.db.executemany(f"DELETE FROM {self.table} WHERE entity=? AND parent=? AND id=?", keys)

    @override
    def close(self) -> None:
        """Nothing: the tables share the index's connection, which `IndexStore` closes."""


class IndexStore:
    """The SQLite cache itself (no HTTP)."""

    def __init__(self, path: Path, bases: Path | BasesBackend | None = None) -> None:
        """Open (and create) the cache file; `bases`: the account's shared bases.

        The three-way bases say what *we* last wrote or saw equal, so every writer of
        the account must share them, like the journal (beside the account lock, or in
        PostgreSQL): with a base per `state_dir`, one pipeline's write looks like a
        person's edit to another and ends in a false `conflict`. Bases an older version
        kept in this file are moved to a shared file once. Without `bases` (a
        locked-out run) they stay in this file.
        """
        self.db = open_db(path, _SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(records)")}
        if "confirmed" not in columns:  # an index written before rechecks: all are due
            self.db.execute("ALTER TABLE records ADD COLUMN confirmed REAL")
        self.bases: BasesBackend = SqliteBases(self.db, "main.bases")
        if isinstance(bases, BasesBackend):
            self.bases = bases
        elif bases is not None:
            bases.parent.mkdir(parents=True, exist_ok=True)
            self.db.execute("ATTACH DATABASE ? AS shared", (str(bases),))
            self.db.execute("PRAGMA shared.journal_mode=WAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS shared.bases (entity TEXT NOT NULL, "
                "parent INTEGER NOT NULL, id INTEGER NOT NULL, data TEXT NOT NULL, "
                "PRIMARY KEY (entity, parent, id))"
            )
            with closing(self.db.cursor()) as cur:
                cur.execute("BEGIN")
                cur.execute("INSERT OR IGNORE INTO shared.bases SELECT * FROM main.bases")
                cur.execute("DELETE FROM main.bases")
                cur.execute("COMMIT")
            self.bases = SqliteBases(self.db, "shared.bases")

    def close(self) -> None:
        """Close the file (and the shared bases' connection)."""
        try:
            self.bases.close()
        finally:
            self.db.close()

    def put(
        self,
        entity: str,
        parent: int,
        rows: Iterable[dict[str, Any]],
        confirmed: float,
        *,
        bases: Iterable[tuple[int, dict[str, Any]]] = (),
    ) -> None:
        """Store records as Precoro returned them at `confirmed` (insert or replace by id).

        `bases` (see `set_bases`) are stored in the same transaction.
        """
        values = [
            (
                entity,
                parent,
                int(row["id"]),
                str(row["externalId"]) if row.get("externalId") not in (None, "") else None,
                json.dumps(row, separators=(",", ":"), default=str),
                confirmed,
            )
            for row in rows
            if row.get("id") is not None
        ]
        changed = self._changed_bases(entity, parent, bases)
        if not values and not changed:
            return
        with closing(self.db.cursor()) as cur:
            cur.execute("BEGIN")
            try:
                if changed:
                    self.bases.put(changed)
                cur.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?)", values)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def drop(self, entity: str, parent: int, ids: Iterable[int]) -> None:
        """Forget records Precoro no longer has (and their bases)."""
        keys = [(entity, parent, int(i)) for i in ids]
        self.db.executemany("DELETE FROM records WHERE entity=? AND parent=? AND id=?", keys)
        if keys:
            self.bases.delete(keys)

    def base(self, entity: str, parent: int, precoro_id: int) -> dict[str, Any] | None:
        """The three-way base of a record: field -> value last written or seen equal."""
        text = self.bases.get(entity, parent, precoro_id)
        return None if text is None else dict(json.loads(text))

    def set_base(self, entity: str, parent: int, precoro_id: int, values: dict[str, Any]) -> None:
        """Move the base of the given fields (others keep theirs); no write if unchanged."""
        self.set_bases(entity, parent, [(precoro_id, values)])

    def set_bases(
        self, entity: str, parent: int, updates: Iterable[tuple[int, dict[str, Any]]]
    ) -> None:
        """`set_base` for many records in one transaction (only those that change)."""
        self.put(entity, parent, [], 0.0, bases=updates)

    def _changed_bases(
        self, entity: str, parent: int, updates: Iterable[tuple[int, dict[str, Any]]]
    ) -> list[BaseRow]:
        """Rows of `bases` to write: each record's base with the given fields moved."""
        rows = []
        for precoro_id, values in updates:
            old = self.base(entity, parent, precoro_id)
            merged = {**(old or {}), **json.loads(json.dumps(values, default=str))}
            if old != merged:
                text = json.dumps(merged, separators=(",", ":"))
                rows.append((entity, parent, precoro_id, text))
        return rows

    def ids_carrying(self, entity: str, parent: int, external_ids: list[str]) -> set[int]:
        """Ids of cached records carrying any of `external_ids`."""
        found: set[int] = set()
        for chunk in _chunks(external_ids, 500):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT id FROM records WHERE entity=? AND parent=? AND external_id IN ({marks})",
                (entity, parent, *chunk),
            ).fetchall()
            found.update(int(value) for (value,) in rows)
        return found

    def by_external_id(self, entity: str, parent: int, external_id: str) -> list[dict[str, Any]]:
        """Cached records carrying `external_id`."""
        rows = self.db.execute(
            "SELECT data FROM records WHERE entity=? AND parent=? AND external_id=?",
            (entity, parent, external_id),
        ).fetchall()
        return [json.loads(text) for (text,) in rows]

    def known_external_ids(
        self, entity: str, parent: int, external_ids: list[str], confirmed_after: float
    ) -> set[str]:
        """Which of `external_ids` the cache holds, every row confirmed after the given time."""
        found: set[str] = set()
        for chunk in _chunks(external_ids, 500):
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT external_id FROM records WHERE entity=? AND parent=? "
                f"AND external_id IN ({marks}) GROUP BY external_id "
                "HAVING MIN(COALESCE(confirmed, 0)) > ?",
                (entity, parent, *chunk, confirmed_after),
            ).fetchall()
            found.update(value for (value,) in rows)
        return found

    def unlinked(self, entity: str, parent: int) -> list[dict[str, Any]]:
        """Cached records without externalId (linking candidates)."""
        rows = self.db.execute(
            "SELECT data FROM records WHERE entity=? AND parent=? AND external_id IS NULL",
            (entity, parent),
        ).fetchall()
        return [json.loads(text) for (text,) in rows]

    def refresh_state(self, entity: str, parent: int) -> tuple[str | None, bool]:
        """(since, candidates_loaded) of an entity."""
        row = self.db.execute(
            "SELECT since, candidates_loaded FROM refreshes WHERE entity=? AND parent=?",
            (entity, parent),
        ).fetchone()
        return (row[0], bool(row[1])) if row else (None, False)

    def set_refresh(
        self, entity: str, parent: int, since: str, *, candidates_loaded: bool | None = None
    ) -> None:
        """Remember the refresh point (and that candidates were listed)."""
        _, loaded = self.refresh_state(entity, parent)
        flag = loaded if candidates_loaded is None else candidates_loaded
        self.db.execute(
            "INSERT OR REPLACE INTO refreshes VALUES (?, ?, ?, ?)",
            (entity, parent, since, int(flag)),
        )


class Index:
    """The cache plus the reads that keep it right; counts the calls it makes."""

    def __init__(
        self,
        store: IndexStore,
        client: PrecoroClient,
        *,
        lookup_batch_size: int = MAX_EXTERNAL_IDS,
        lookback: timedelta = timedelta(minutes=5),
        recheck: timedelta = timedelta(hours=24),
    ) -> None:
        """Use `client` for every read; nothing is read until asked.

        `recheck`: how long a row Precoro showed is trusted without a look-up (0: never).
        """
        self.store = store
        self.client = client
        self.lookup_batch_size = lookup_batch_size
        self.lookback = lookback
        self.recheck = recheck
        self.query_room = MAX_LOOKUP_QUERY_BYTES - PAGING_BYTES
        """Bytes of ids per look-up query; shrinks when Precoro answers 414 anyway."""
        self._refused: set[tuple[str, int, str]] = set()
        """ids Precoro refused to look up even alone (414): never taken as absent."""
        self.calls = 0
        """Index reads made in this run."""
        self._run_start: datetime | None = None
        self._refreshed: set[tuple[str, int]] = set()
        self._looked_up: set[tuple[str, int, str]] = set()
        self._custom_fields: dict[str, dict[str, int]] = {}

    # --- reads ---------------------------------------------------------------------

    def _read(self, path: str, params: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for page in self.client.iter_pages(path, params, PAGE_SIZE):
            self.calls += 1
            if self._run_start is None:
                self._run_start = self.client.last_server_date or datetime.now(UTC)
            rows.extend(page.records)
        return rows

    def _server_now(self) -> datetime:
        return self._run_start or self.client.last_server_date or datetime.now(UTC)

    def _seen_now(self) -> float:
        """When rows read or written in this run count as confirmed: the run's start.

        Earlier than the real moment, so a re-check is due at the same point of the
        schedule every time (a daily run re-checks what yesterday's run confirmed).
        """
        return self._server_now().timestamp()

    def refresh(self, entity: Entity, parent: int) -> None:
        """Once per run: read what changed since the last refresh (incremental entities)."""
        key = (entity.name, parent)
        if key in self._refreshed or not entity.incremental:
            return
        self._refreshed.add(key)
        since, _ = self.store.refresh_state(entity.name, parent)
        if since is None:
            return
        start = datetime.fromisoformat(since) - self.lookback
        params = [("modifiedSince", start.strftime(MODIFIED_SINCE_FORMAT))]
        rows = self._read(entity.list_path(path_parent(parent)), params)
        self.store.put(entity.name, parent, rows, self._seen_now())
        self._mark_fresh(entity, parent)

    def _mark_fresh(self, entity: Entity, parent: int, *, candidates: bool | None = None) -> None:
        """Record the run's start (server clock) as the next refresh point."""
        if not entity.incremental:
            return
        stamp = self._server_now().astimezone(UTC).replace(tzinfo=None).isoformat()
        self.store.set_refresh(entity.name, parent, stamp, candidates_loaded=candidates)

    def trusted(self, entity: Entity) -> bool:
        """Whether cached rows of this entity are kept current by `refresh`."""
        return bool(entity.incremental)

    def lookup(self, entity: Entity, parent: int, external_ids: Iterable[str]) -> None:
        """Read the given externalIds from Precoro (batched), once per run each."""
        wanted = sorted(
            {x for x in external_ids if (entity.name, parent, x) not in self._looked_up}
        )
        if not wanted:
            return
        param = _lookup_param(entity)
        first_time = self.store.refresh_state(entity.name, parent)[0] is None
        limit = MAX_LOOKUP_QUERY_BYTES - PAGING_BYTES
        for value in wanted:
            if _query_bytes(param, value) > limit:
                self._refused.add((entity.name, parent, value))
        readable = [x for x in wanted if (entity.name, parent, x) not in self._refused]
        queue = deque(self._lookup_chunks(param, readable))
        while queue:
            chunk = queue.popleft()
            try:
                rows = self._read(entity.list_path(path_parent(parent)), [(param, chunk)])
            except ValidationFailed as exc:
                if exc.status != HTTPStatus.REQUEST_URI_TOO_LONG:
                    raise
                # Precoro's limit is below ours: halve the budget and split the chunk.
                if len(chunk) == 1:
                    self._refused.add((entity.name, parent, chunk[0]))
                    continue
                size = sum(_query_bytes(param, x) for x in chunk)
                self.query_room = min(self.query_room, size // 2)
                rest = [x for part in (chunk, *queue) for x in part]
                queue = deque(self._lookup_chunks(param, rest))
                continue
            # Cached rows carrying a looked-up id that Precoro did not return are gone
            # (deleted, reset, restored) or carry another externalId now: drop them.
            returned = {int(r["id"]) for r in rows if r.get("id") is not None}
            gone = self.store.ids_carrying(entity.name, parent, chunk) - returned
            self.store.drop(entity.name, parent, gone)
            self.store.put(entity.name, parent, rows, self._seen_now())
            self._looked_up.update((entity.name, parent, x) for x in chunk)
        if first_time:
            self._mark_fresh(entity, parent)

    def _lookup_chunks(self, param: str, wanted: list[str]) -> Iterator[list[str]]:
        """Consecutive ids per call: at most `lookup_batch_size`, within `query_room`.

        An id larger than the room on its own is tried alone.
        """
        room = self.query_room
        chunk: list[str] = []
        size = 0
        for value in wanted:
            cost = _query_bytes(param, value)
            if chunk and (len(chunk) >= self.lookup_batch_size or size + cost > room):
                yield chunk
                chunk, size = [], 0
            chunk.append(value)
            size += cost
        if chunk:
            yield chunk

    @staticmethod
    def too_long(entity: Entity, external_id: str) -> str | None:
        """Why `external_id` cannot be looked up (its URL would be refused), or None."""
        size = _query_bytes(_lookup_param(entity), external_id)
        room = MAX_LOOKUP_QUERY_BYTES - PAGING_BYTES
        if size <= room:
            return None
        return (
            f"is too long to look up: {size} bytes URL-encoded in an external_id[] query, "
            f"which holds at most {room} (longer URLs are refused with HTTP 414)"
        )

    def refused(self, entity: Entity, parent: int, external_id: str) -> str | None:
        """Why `external_id` could not be looked up in this run, or None.

        Its absence from the index then proves nothing: the record must not be created.
        """
        if (entity.name, parent, external_id) not in self._refused:
            return None
        return self.too_long(entity, external_id) or (
            "could not be looked up: Precoro refused the look-up URL even for this "
            "externalId alone (HTTP 414)"
        )

    def lookup_again(self, entity: Entity, parent: int, external_id: str) -> None:
        """Look one externalId up even if it was already read this run (after a lost POST)."""
        self._looked_up.discard((entity.name, parent, external_id))
        self.lookup(entity, parent, [external_id])

    def forget(self, entity: Entity, parent: int, precoro_id: int) -> None:
        """Drop a cached record Precoro answered 404 for."""
        self.store.drop(entity.name, parent, [precoro_id])

    def find(self, entity: Entity, parent: int, external_id: str) -> list[dict[str, Any]]:
        """Cached Precoro records carrying `external_id` (after refresh/lookup)."""
        return self.store.by_external_id(entity.name, parent, external_id)

    def needs_lookup(
        self, entity: Entity, parent: int, external_ids: list[str], force: set[str]
    ) -> list[str]:
        """The ids whose cached answer cannot be trusted this run."""
        if not self.trusted(entity) or self.recheck <= timedelta(0):
            return external_ids
        due = self._seen_now() - self.recheck.total_seconds() * (1 - RECHECK_TOLERANCE)
        known = self.store.known_external_ids(entity.name, parent, external_ids, due)
        return [x for x in external_ids if x not in known or x in force]

    def candidates(self, entity: Entity, parent: int) -> list[dict[str, Any]]:
        """Records without externalId, listed once (then kept current by `refresh`)."""
        _, loaded = self.store.refresh_state(entity.name, parent)
        key = (entity.name, parent, "*candidates*")
        if not (loaded and self.trusted(entity)) and key not in self._looked_up:
            params: list[tuple[str, Any]] = []
            flag = _has_external_filter(entity)
            if flag is not None:
                params.append((flag, "0"))
            rows = self._read(entity.list_path(path_parent(parent)), params)
            self.store.put(entity.name, parent, rows, self._seen_now())
            self._looked_up.add(key)
            self._mark_fresh(entity, parent, candidates=True)
        return self.store.unlinked(entity.name, parent)

    def base(self, entity: Entity, parent: int, precoro_id: int) -> dict[str, Any] | None:
        """The record's three-way base (see `threeway`), None before its first sync."""
        return self.store.base(entity.name, parent, precoro_id)

    def set_base(
        self, entity: Entity, parent: int, precoro_id: int, values: dict[str, Any]
    ) -> None:
        """Move the base of fields Precoro confirmed (seen equal, or a write returned 2xx)."""
        if values:
            self.store.set_base(entity.name, parent, precoro_id, values)

    def set_bases(
        self, entity: Entity, parent: int, updates: list[tuple[int, dict[str, Any]]]
    ) -> None:
        """`set_base` for many records of a batch, in one transaction."""
        self.store.set_bases(entity.name, parent, [(i, v) for i, v in updates if v])

    def remember(
        self, entity: Entity, parent: int, row: dict[str, Any], base: dict[str, Any] | None = None
    ) -> None:
        """Store a record a write returned (and, in the same transaction, its new base)."""
        if isinstance(row, dict) and row.get("id") is not None:
            bases = [(int(row["id"]), base)] if base else []
            self.store.put(entity.name, parent, [row], self._seen_now(), bases=bases)

    def custom_field_id(self, options: Entity, given: str) -> int | None:
        """Resolve an options stream's custom field, given by id or by name."""
        if given.isdigit():
            return int(given)
        parent = get(options.parent or "")
        if parent.name not in self._custom_fields:
            rows = self._read(parent.list_path(), [])
            self._custom_fields[parent.name] = {
                str(r.get("name", "")).casefold(): int(r["id"]) for r in rows if "id" in r
            }
        return self._custom_fields[parent.name].get(given.strip().casefold())
