"""The target's account state on PostgreSQL: journal, record versions, three-way bases.

Chosen with `state_backend_url` (the database of the budget ledger and the account
lock), so every machine writing the account sees what any other left: a write whose
answer was lost (held back until `write_settle_seconds`, then looked up), the newest
version written (a replay never reverts it) and the base of each field (a person's
edit in Precoro is kept, whichever machine runs the ERP export).

Only storage lives here: the rules are `Journal`'s, `VersionStore`'s and
`IndexStore`'s, shared with the SQLite files. Rows are keyed by the ledger key (a
hash of token + API URL, never the token). One `PostgresSession` (precoro-client's
connection handling: no reconnect, any error raises `LedgerUnavailable`) serves all
three; an outage stops the run like the ledger's (exit 75, records not attempted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from precoro_client.pg_backend import PostgresSession
from typing_extensions import override

from target_precoro.index import BaseRow, BasesBackend
from target_precoro.journal import COLUMNS, JournalBackend, Row
from target_precoro.versions import VersionBackend, VersionRow

JOURNAL = "precoro_target_journal"
VERSIONS = "precoro_target_versions"
BASES = "precoro_target_bases"


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("%s" for _ in values)


class PostgresJournal(JournalBackend):
    """Journal rows in `precoro_target_journal`; each statement commits (durable)."""

    def __init__(self, session: PostgresSession) -> None:
        """Nothing is read until first use."""
        self.session = session.attach()
        self.key = session.key

    @override
    def insert(self, row: Row) -> int:
        (seq,) = self.session.rows(
            f"INSERT INTO {JOURNAL} (ledger_key, {', '.join(COLUMNS)}) "
            f"VALUES (%s, {_marks(COLUMNS)}) RETURNING seq",
            (self.key, *row),
        )[0]
        return int(seq)

    @override
    def insert_many(self, rows: Sequence[Row]) -> None:
        self.session.run_many(
            f"INSERT INTO {JOURNAL} (ledger_key, {', '.join(COLUMNS)}) "
            f"VALUES (%s, {_marks(COLUMNS)})",
            [(self.key, *row) for row in rows],
        )

    @override
    def update(self, seq: int, values: Mapping[str, Any]) -> None:
        sets = ", ".join(
            f"{name} = COALESCE(%s, {name})" if name == "sent_by" else f"{name} = %s"
            for name in values
        )
        self.session.run(
            f"UPDATE {JOURNAL} SET {sets} WHERE ledger_key = %s AND seq = %s",
            (*values.values(), self.key, seq),
        )

    @override
    def latest_in(
        self, entity: str, parent: int, states: Sequence[str]
    ) -> list[tuple[str, str, float, str | None]]:
        rows = self.session.rows(
            f"SELECT external_id, method, COALESCE(sent_by, started), base FROM {JOURNAL} "
            "WHERE ledger_key = %s AND entity = %s AND parent = %s AND state = ANY(%s) "
            "ORDER BY seq",
            (self.key, entity, parent, list(states)),
        )
        return [(str(a), str(b), float(c), d) for a, b, c, d in rows]

    @override
    def close_open(
        self, key: tuple[str, int, str], states: Sequence[str], values: Mapping[str, Any]
    ) -> None:
        sets = ", ".join(f"{name} = %s" for name in values)
        self.session.run(
            f"UPDATE {JOURNAL} SET {sets} WHERE ledger_key = %s AND entity = %s "
            "AND parent = %s AND external_id = %s AND state = ANY(%s)",
            (*values.values(), self.key, *key, list(states)),
        )

    @override
    def delete_before(self, before: float, keep: Sequence[str]) -> int:
        return self.session.run(
            f"DELETE FROM {JOURNAL} WHERE ledger_key = %s AND NOT (state = ANY(%s)) "
            "AND started < %s",
            (self.key, list(keep), before),
        )

    @override
    def close(self) -> None:
        self.session.close()


class PostgresVersions(VersionBackend):
    """Newest version per record in `precoro_target_versions`."""

    def __init__(self, session: PostgresSession) -> None:
        """Nothing is read until first use."""
        self.session = session.attach()
        self.key = session.key

    @override
    def get(self, stream: str, external_id: str) -> tuple[float, int, str] | None:
        rows = self.session.rows(
            f"SELECT started, line, run FROM {VERSIONS} "
            "WHERE ledger_key = %s AND stream = %s AND external_id = %s",
            (self.key, stream, external_id),
        )
        return None if not rows else (float(rows[0][0]), int(rows[0][1]), str(rows[0][2]))

    @override
    def put_newer(self, rows: Sequence[VersionRow]) -> None:
        self.session.run_many(
            f"INSERT INTO {VERSIONS} AS written (ledger_key, stream, external_id, started, "
            "line, run) VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (ledger_key, stream, external_id) DO UPDATE SET "
            "started = excluded.started, line = excluded.line, run = excluded.run "
            "WHERE (excluded.started, excluded.line) > (written.started, written.line)",
            [(self.key, *row) for row in rows],
        )

    @override
    def close(self) -> None:
        self.session.close()


class PostgresBases(BasesBackend):
    """Three-way bases in `precoro_target_bases`."""

    def __init__(self, session: PostgresSession) -> None:
        """Nothing is read until first use."""
        self.session = session.attach()
        self.key = session.key

    @override
    def get(self, entity: str, parent: int, precoro_id: int) -> str | None:
        rows = self.session.rows(
            f"SELECT data FROM {BASES} WHERE ledger_key = %s AND entity = %s "
            "AND parent = %s AND id = %s",
            (self.key, entity, parent, precoro_id),
        )
        return None if not rows else str(rows[0][0])

    @override
    def put(self, rows: list[BaseRow]) -> None:
        self.session.run_many(
            f"INSERT INTO {BASES} (ledger_key, entity, parent, id, data) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (ledger_key, entity, parent, id) "
            "DO UPDATE SET data = excluded.data",
            [(self.key, *row) for row in rows],
        )

    @override
    def delete(self, keys: list[tuple[str, int, int]]) -> None:
        self.session.run_many(
            f"DELETE FROM {BASES} WHERE ledger_key = %s AND entity = %s AND parent = %s "
            "AND id = %s",
            [(self.key, *key) for key in keys],
        )

    @override
    def close(self) -> None:
        self.session.close()
