"""Where the account's shared state lives: files beside the lock, or PostgreSQL.

The write journal, the record versions and the three-way bases belong to the Precoro
account, not to a run or a `state_dir`: they live where the account lock lives.
With the default SQLite ledger that is the ledger's folder (`account_file`); with
`state_backend_url` it is the same PostgreSQL database as the ledger and the lock,
so a run on any machine sees what a run on any other left. One connection serves
the three stores of a run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from precoro_client.errors import LedgerUnavailable
from precoro_client.settings import PrecoroSettings

from target_precoro.index import BasesBackend
from target_precoro.journal import Journal, journal_path
from target_precoro.settings import account_file
from target_precoro.versions import VersionStore

if TYPE_CHECKING:
    from precoro_client.pg_backend import PostgresSession


class AccountState:
    """Opens the account's journal, versions and bases where `state_backend_url` says."""

    def __init__(self, settings: PrecoroSettings) -> None:
        """Nothing is opened or connected yet."""
        self.settings = settings
        self._session: PostgresSession | None = None
        if settings.state_backend_url is not None:
            from precoro_client.pg_backend import PostgresSession

            self._session = PostgresSession(settings)

    @property
    def shared_db(self) -> bool:
        """Whether the state is in PostgreSQL (every machine sees it)."""
        return self._session is not None

    @property
    def statements(self) -> int:
        """PostgreSQL round trips so far (0 with SQLite files)."""
        return 0 if self._session is None else self._session.statements

    def _file(self, name: str) -> Path:
        return account_file(self.settings.budget_ledger_path, self.settings.ledger_key, name)

    def journal(self, run_id: str) -> Journal:
        """The account's write journal."""
        if self._session is None:
            return Journal(
                journal_path(self.settings.budget_ledger_path, self.settings.ledger_key), run_id
            )
        from target_precoro.pg_state import PostgresJournal

        return Journal(PostgresJournal(self._session), run_id)

    def versions(self) -> VersionStore:
        """The account's record versions."""
        if self._session is None:
            return VersionStore(self._file("versions.sqlite3"))
        from target_precoro.pg_state import PostgresVersions

        return VersionStore(PostgresVersions(self._session))

    def bases(self) -> Path | BasesBackend:
        """The account's three-way bases, for `IndexStore(bases=...)`."""
        if self._session is None:
            return self._file("bases.sqlite3")
        from target_precoro.pg_state import PostgresBases

        return PostgresBases(self._session)

    def adopt(self, journal: Journal, versions: VersionStore, state_account: Path) -> None:
        """Bring in, once and with the lock held, what older setups kept elsewhere.

        The `state_dir`'s journal and versions (before they moved beside the lock);
        with PostgreSQL also the files beside the lock (before `state_backend_url` was
        set), bases included, so switching backends loses no open write, version or
        base. A database error here only marks the connection broken: the run then
        stops at the state's first use, attempting nothing (exit 75).
        """
        try:
            journal.adopt(state_account / "journal.sqlite3")
            versions.adopt(state_account / "versions.sqlite3")
            if self._session is not None:
                journal.adopt(self._file("journal.sqlite3"))
                versions.adopt(self._file("versions.sqlite3"))
                self._adopt_bases(self._file("bases.sqlite3"))
        except LedgerUnavailable:
            pass

    def _adopt_bases(self, legacy: Path) -> None:
        """Copy a bases file into PostgreSQL (rows the database lacks), then rename it."""
        if not legacy.exists():
            return
        old = sqlite3.connect(legacy)
        try:
            tables = {r[0] for r in old.execute("SELECT name FROM sqlite_master")}
            rows = (
                old.execute("SELECT entity, parent, id, data FROM bases").fetchall()
                if "bases" in tables
                else []
            )
        finally:
            old.close()
        store = self.bases()
        assert isinstance(store, BasesBackend)
        try:
            missing = [
                (str(e), int(p), int(i), str(d))
                for e, p, i, d in rows
                if store.get(str(e), int(p), int(i)) is None
            ]
            store.put(missing)
        finally:
            store.close()
        legacy.rename(legacy.with_name(legacy.name + ".adopted"))
