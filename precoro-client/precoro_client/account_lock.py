"""The account write lock: one writer per Precoro account on this machine.

Two writers on one account that look up an externalId, find nothing and both POST
create two records. So every writer (the target) holds this lock for its whole run,
from before its first Precoro read until it exits. It is keyed like the budget
ledger, by `PrecoroSettings.ledger_key` (sha256 of token + API URL, never the token),
and lives where the ledger lives, so every process that shares a budget also shares
the lock, whatever their other state folders.

- `AccountLock` is the interface callers use; `account_lock(settings, ...)` picks the
  implementation: `FileAccountLock` beside the SQLite ledger, or
  `pg_backend.PostgresAccountLock` when `state_backend_url` puts the ledger on
  PostgreSQL (every machine then sees one lock).
- `FileAccountLock` is an OS lock (`flock`/`LockFileEx` through the `filelock`
  library, soft fallback off): the kernel drops it when the holding process dies,
  kill -9 included, so a crashed run never blocks the next one.
- Who holds it (pid, host, run id, since when) is written next to the lock file as
  JSON, so a run that cannot get the lock can name the one that has it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from typing_extensions import override

from precoro_client.errors import ConfigError, PrecoroError
from precoro_client.settings import PrecoroSettings

logger = logging.getLogger("precoro_client")

Cancelled = Callable[[], bool]
"""Polled while waiting for the lock; True ends the wait."""

WAITING_LOG = "waiting up to %g s for the Precoro account lock held by %s"
"""Logged once when a run starts to wait (tests of other processes wait for it)."""

LOCK_PREFIX = "write-"
"""Lock files are `write-<key>.lock`, holder info `write-<key>.holder.json`."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds an account lock; what an operator needs to find that run."""

    pid: int
    host: str
    run_id: str
    since: str
    """When the lock was taken, ISO 8601 UTC."""
    program: str = ""

    def describe(self) -> str:
        """One line naming the holder, e.g. `target-precoro run X (pid 12 on h, since T)`."""
        who = f"{self.program} run {self.run_id}" if self.program else f"run {self.run_id}"
        return f"{who} (pid {self.pid} on {self.host}, since {self.since})"

    @classmethod
    def from_json(cls, data: Any) -> LockHolder | None:
        """Parse holder info; None when it is missing fields (a partial or foreign file)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                pid=int(data["pid"]),
                host=str(data["host"]),
                run_id=str(data["run_id"]),
                since=str(data["since"]),
                program=str(data.get("program", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None


class AccountLocked(PrecoroError):
    """Another run holds the account's write lock and did not release it in time."""

    def __init__(
        self, holder: LockHolder | None, waited_seconds: float, *, cancelled: bool = False
    ) -> None:
        """Name the holder (when its info could be read) and how long we waited."""
        self.holder = holder
        self.waited_seconds = waited_seconds
        self.cancelled = cancelled
        who = holder.describe() if holder is not None else "another run (holder info not found)"
        waited = (
            "stopped while waiting for it"
            if cancelled
            else f"waited {waited_seconds:g} s (lock_wait_seconds)"
        )
        super().__init__(f"the Precoro account is being written by {who}; {waited}")


class AccountLock(ABC):
    """Exclusive right to write to one Precoro account, for the length of a run.

    Use `acquire(wait_seconds)` then `release()` (or `with lock.hold(wait):`).
    `release` is idempotent, so it can sit on every exit path.
    """

    def __init__(self, key: str, *, run_id: str, program: str) -> None:
        """`key` identifies the account (a hash, never the token)."""
        self.key = key
        self.run_id = run_id
        self.program = program

    @property
    @abstractmethod
    def held(self) -> bool:
        """Whether this object holds the lock now."""

    @abstractmethod
    def try_acquire(self, wait_seconds: float, cancelled: Cancelled | None = None) -> bool:
        """Try for up to `wait_seconds` (0: once), or until `cancelled()`; True when acquired."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up (no-op when not held)."""

    @abstractmethod
    def holder(self) -> LockHolder | None:
        """The current holder's info, if recorded."""

    def acquire(self, wait_seconds: float, cancelled: Cancelled | None = None) -> None:
        """Take the lock, waiting up to `wait_seconds`; raises `AccountLocked` if it stays held.

        `cancelled` is polled while waiting (e.g. "a SIGTERM arrived"); when it turns
        True the wait ends with `AccountLocked(cancelled=True)`. Logs once, naming the
        holder, when it has to wait.
        """
        if self.try_acquire(0):
            return
        if wait_seconds > 0:
            holder = self.holder()
            logger.warning(
                WAITING_LOG,
                wait_seconds,
                holder.describe() if holder else "another run",
            )
            if self.try_acquire(wait_seconds, cancelled):
                return
        stopped = cancelled is not None and cancelled()
        raise AccountLocked(self.holder(), wait_seconds, cancelled=stopped)

    @contextlib.contextmanager
    def hold(self, wait_seconds: float) -> Iterator[AccountLock]:
        """Context manager: acquire, and release on every way out."""
        self.acquire(wait_seconds)
        try:
            yield self
        finally:
            self.release()

    def _holder_info(self) -> LockHolder:
        return LockHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            run_id=self.run_id,
            since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            program=self.program,
        )


class FileAccountLock(AccountLock):
    """OS file lock in `directory`, with the holder's info in a JSON file beside it."""

    def __init__(self, directory: Path, key: str, *, run_id: str, program: str) -> None:
        """Lock `<directory>/write-<key[:32]>.lock`; nothing is opened until acquired."""
        super().__init__(key, run_id=run_id, program=program)
        stem = f"{LOCK_PREFIX}{key[:32]}"
        self.directory = directory
        self.path = directory / f"{stem}.lock"
        self.holder_path = directory / f"{stem}.holder.json"
        self._lock: FileLock | None = None

    @property
    @override
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._lock is not None and self._lock.is_locked

    def _file_lock(self) -> FileLock:
        if self._lock is None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                msg = f"cannot create the lock folder {str(self.directory)!r}: {exc.strerror}"
                raise ConfigError("budget_ledger_path", msg) from None
            # Not thread-local: the run holds it, whichever thread drains a batch.
            # No soft fallback: a marker file would outlive a killed holder.
            self._lock = FileLock(self.path, mode=0o600, thread_local=False, fallback_to_soft=False)
        return self._lock

    @override
    def try_acquire(self, wait_seconds: float, cancelled: Cancelled | None = None) -> bool:
        """Try for up to `wait_seconds` (or until `cancelled()`); on success record who holds it."""
        if self.held:
            return True
        lock = self._file_lock()
        try:
            lock.acquire(timeout=max(0.0, wait_seconds), cancel_check=cancelled)
        except Timeout:
            return False
        except OSError as exc:
            msg = (
                f"cannot lock {str(self.path)!r} ({exc.strerror or exc}); the account lock "
                "needs a local file system with flock, like the ledger"
            )
            raise ConfigError("budget_ledger_path", msg) from None
        try:
            self._write_holder()
        except BaseException:
            lock.release()
            raise
        return True

    def _write_holder(self) -> None:
        """Write holder info atomically (temp file + rename), readable by the owner only."""
        data = json.dumps(asdict(self._holder_info()), indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.holder_path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, self.holder_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @override
    def release(self) -> None:
        """Remove our holder info, then drop the OS lock."""
        lock = self._lock
        if lock is None or not lock.is_locked:
            return
        try:
            current = self.holder()
            if current is not None and current.pid == os.getpid() and current.run_id == self.run_id:
                with contextlib.suppress(OSError):
                    self.holder_path.unlink()
        finally:
            lock.release(force=True)

    @override
    def holder(self) -> LockHolder | None:
        """Holder info as written by the holder (None if absent or unreadable)."""
        try:
            return LockHolder.from_json(json.loads(self.holder_path.read_text("utf-8")))
        except (OSError, ValueError):
            return None


def account_lock(
    settings: PrecoroSettings, *, run_id: str, program: str = "target-precoro"
) -> AccountLock:
    """The write lock of `settings`' account, kept where its budget ledger is kept.

    PostgreSQL (`state_backend_url`): an advisory lock every machine sees; otherwise
    an OS file lock beside the SQLite ledger (one machine).
    """
    if settings.state_backend_url is not None:
        from precoro_client.pg_backend import PostgresAccountLock

        return PostgresAccountLock(settings, run_id=run_id, program=program)
    return FileAccountLock(
        settings.budget_ledger_path.parent, settings.ledger_key, run_id=run_id, program=program
    )
