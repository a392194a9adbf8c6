"""What one target run shares, created once by the target and handed to every sink.

The sinks never reach back into the target: the target builds this context, the
sinks use it (the current input line, the shared `Runtime`, stale replays, stops),
and the run ends through it (`finish`: the report, the summary and the exit status).
The target keeps only what the SDK calls on it: its message handlers, STATE and the
signal handler.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol

from precoro_client.account_lock import AccountLock, AccountLocked, account_lock
from precoro_client.client import PrecoroClient
from precoro_client.errors import EXIT_TEMPFAIL, ConfigError, LedgerUnavailable
from precoro_client.settings import PrecoroSettings

from target_precoro.account_state import AccountState
from target_precoro.index import Index, IndexStore
from target_precoro.journal import Journal
from target_precoro.reader import LineNumberReader, ReadInterrupted
from target_precoro.report import RecordOutcome, RunReport, prune_reports
from target_precoro.settings import TargetSettings
from target_precoro.upsert import Item, RunStop, Upserter
from target_precoro.versions import Origin, VersionStore
from target_precoro.writable import UnknownStreamError

EXIT_LOCKED = EXIT_TEMPFAIL
"""Exit status when another run held the account lock past `lock_wait_seconds`, or the
shared ledger went away (sysexits' EX_TEMPFAIL: try again later)."""
EXIT_SIGNAL_BASE = 128
"""After SIGTERM/SIGINT the exit status is 128 + the signal number (143, 130), as a
shell reports a process killed by that signal: the orchestrator sees an interrupted run."""
IN_MEMORY = Path(":memory:")
"""Index and journal of a locked-out run: it must not touch the holder's state."""


@dataclass
class Runtime:
    """Everything a run shares: client, index, journal, report and upserter."""

    client: PrecoroClient
    index: Index
    journal: Journal
    report: RunReport
    upserter: Upserter
    lock: AccountLock | None = None
    """The account's write lock; None for a dry run (it writes nothing)."""
    locked_out: bool = False
    """Another run kept the lock: nothing was attempted."""

    def close(self) -> None:
        """Release files, connections and the account lock."""
        try:
            self.index.store.close()
            self.journal.close()
            self.client.close()
        finally:
            if self.lock is not None:
                self.lock.release()


class StagedRecords(Protocol):
    """A sink as the end of the run sees it: records read and not yet given an outcome."""

    staged: list[Item]

    def abandon(self) -> None:
        """Give every staged record `not attempted`."""


def budget_left(client: PrecoroClient) -> int | None:
    """Calls left today by the budget ledger (no Precoro call); None if it cannot be read."""
    try:
        return client.governor.remaining_today()
    except Exception:
        return None


class RunContext:
    """The runtime, the stop request, record versions and the end of one run."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        schema_of: Callable[[str], dict[str, Any] | None],
        sinks: Callable[[], Sequence[StagedRecords]],
        emit_safe_state: Callable[[], None],
        states_held: Callable[[], bool],
    ) -> None:
        """Nothing is opened here: the runtime opens on the first batch (after the lock).

        The callbacks are the target's: the schema of a stream, every sink of the run,
        emitting the latest safe STATE, and whether a STATE is still held back.
        """
        self.logger = logger
        self._schema_of = schema_of
        self._sinks = sinks
        self._emit_safe_state = emit_safe_state
        self._states_held = states_held
        self._precoro_settings: PrecoroSettings | None = None
        self._settings: TargetSettings | None = None
        self.reader: LineNumberReader | None = None
        """The input reader (set by the target once the SDK has made it)."""
        self._runtime: Runtime | None = None
        self._finished = False
        self._finishing = False
        self.stop_signal: int | None = None
        self.origins: dict[int, Origin] = {}
        """Replayed records' origins (dead-letter `origin` key), by input line."""
        self._versions: VersionStore | None = None

    def configure(self, precoro_settings: PrecoroSettings, settings: TargetSettings) -> None:
        """The validated settings (set by the target's settings check)."""
        self._precoro_settings = precoro_settings
        self._settings = settings

    @property
    def precoro_settings(self) -> PrecoroSettings:
        """The connection settings; an error if the config did not validate."""
        if self._precoro_settings is None:
            msg = "the target's config did not validate: no request can be made"
            raise RuntimeError(msg)
        return self._precoro_settings

    @property
    def settings(self) -> TargetSettings:
        """The target's settings; an error if the config did not validate."""
        if self._settings is None:
            msg = "the target's config did not validate: no record can be written"
            raise RuntimeError(msg)
        return self._settings

    @property
    def current_line(self) -> int | None:
        """Input line number of the message being processed."""
        return self.reader.line_number if self.reader is not None else None

    # --- the runtime ------------------------------------------------------------------

    @property
    def opened_runtime(self) -> Runtime | None:
        """The runtime if the run opened it (its first batch, or its end), else None."""
        return self._runtime

    @property
    def runtime(self) -> Runtime:
        """Client, index, journal and report, opened on the first batch (after the lock)."""
        if self._runtime is None:
            settings = self.settings
            precoro = self.precoro_settings
            run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{os.getpid()}"
            client = PrecoroClient(precoro)
            lock, refusal = self._take_lock(run_id)
            account = settings.account_dir(precoro.ledger_key)
            shared = refusal is None
            index = Index(
                IndexStore(
                    account / "index.sqlite3" if shared else IN_MEMORY,
                    bases=self.account_state.bases() if shared else None,
                ),
                client,
                lookup_batch_size=settings.lookup_batch_size,
                lookback=timedelta(minutes=settings.lookback_minutes),
                recheck=timedelta(hours=settings.index_recheck_hours),
            )
            if shared:
                journal = self.account_state.journal(run_id)
                if lock is not None:  # where older versions kept them (a dry run leaves them)
                    self.account_state.adopt(journal, self.versions, account)
            else:
                journal = Journal(IN_MEMORY, run_id)
            pruned = prune_reports(
                settings.report_dir, settings.report_retention_days, datetime.now(UTC)
            )
            if pruned:
                self.logger.info(
                    "Deleted %d run reports older than report_retention_days (%g)",
                    len(pruned),
                    settings.report_retention_days,
                )
            report = RunReport(settings.report_dir, run_id, dry_run=settings.dry_run)
            report.calls_now = lambda: client.call_count
            if refusal is None:
                report.budget_at_start = budget_left(client)
            upserter = Upserter(
                client=client,
                index=index,
                journal=journal,
                report=report,
                settings=settings,
                schema_of=self._schema_of,
            )
            if refusal is not None:
                upserter.halt = refusal
                report.halted = refusal.reason
            self._runtime = Runtime(
                client,
                index,
                journal,
                report,
                upserter,
                lock=lock,
                locked_out=refusal is not None and not refusal.fatal,
            )
        return self._runtime

    def _take_lock(self, run_id: str) -> tuple[AccountLock | None, RunStop | None]:
        """One writer per account: its lock before any shared state or Precoro read.

        Without it, two runs both look an externalId up, find nothing and both POST.
        Returns the held lock, or the reason to attempt nothing (another run kept it
        past `lock_wait_seconds`: every record is dead-lettered as not attempted, STATE
        is withheld, exit status 75). Dry runs write nothing and take no lock; neither
        does a run that ends before its first batch.
        """
        if self.settings.dry_run or self._finishing:
            return None, None
        lock = account_lock(self.precoro_settings, run_id=run_id)
        try:
            # A SIGTERM/SIGINT only sets `stop_signal` (see `request_stop`), which ends
            # the wait: the run then attempts nothing and reports every record.
            lock.acquire(
                self.settings.lock_wait_seconds,
                cancelled=lambda: self.stop_signal is not None,
            )
        except AccountLocked as exc:
            return None, RunStop(exc.message, fatal=False)
        except ConfigError as exc:
            return None, RunStop(exc.message, fatal=True)
        return lock, None

    def runtime_for_writes(self) -> Runtime:
        """The runtime, with a pending stop request passed on to the upserter."""
        runtime = self.runtime
        if self.stop_reason is not None and runtime.upserter.stop_requested is None:
            runtime.upserter.stop_requested = self.stop_reason
        if runtime.report.on_written is None:
            runtime.report.origins = self.origins
            runtime.report.on_written = self._note_written
        return runtime

    @property
    def halt(self) -> RunStop | None:
        """Why the upserter stopped writing, if it did."""
        return self.runtime.upserter.halt

    # --- stop requests (SIGTERM/SIGINT) -----------------------------------------------

    @property
    def stop_reason(self) -> str | None:
        """Why the run is stopping at the next safe point (a signal), if it is."""
        if self.stop_signal is None:
            return None
        return f"interrupted by {signal.Signals(self.stop_signal).name}"

    def request_stop(self, signum: int) -> None:
        """From the signal handler: no new line or call starts; the one in flight ends.

        Raises `ReadInterrupted` when the reader is blocked waiting for the next line.
        """
        if self.stop_signal is None:
            self.stop_signal = signum
        runtime = self._runtime
        if runtime is not None and runtime.upserter.stop_requested is None:
            runtime.upserter.stop_requested = self.stop_reason
        reader = self.reader
        if reader is not None:
            reader.stop_requested = True
            if reader.waiting:
                raise ReadInterrupted

    # --- versions: a replay never reverts a newer record ------------------------------

    @property
    def versions(self) -> VersionStore:
        """The account's record versions, opened on first use."""
        if self._versions is None:
            self._versions = self.account_state.versions()
        return self._versions

    @functools.cached_property
    def account_state(self) -> AccountState:
        """Where the journal, versions and bases live (files, or `state_backend_url`)."""
        return AccountState(self.precoro_settings)

    def _note_written(self, outcome: RecordOutcome, origin: Origin) -> None:
        if outcome.external_id is not None:
            self.versions.written(outcome.stream, outcome.external_id, origin)

    def drop_stale(self, stream: str, items: list[Item]) -> list[Item]:
        """Replayed records older than what Precoro holds from us end `skipped`, unsent."""
        fresh = []
        for item in items:
            origin = self.origins.get(item.line or 0)
            ext = item.record.get("externalId")
            ext = None if ext is None else str(ext).strip()  # as `validate_record` keys it
            try:
                newest = None if origin is None or not ext else self.versions.newest(stream, ext)
            except LedgerUnavailable as exc:  # the record is not attempted (exit 75)
                self.runtime.upserter.stop_for(exc)
                return items
            if origin is None or newest is None or newest <= origin:
                fresh.append(item)
                continue
            why = (
                f"not replayed: Precoro holds a newer version ({newest.describe()}) than this "
                f"record ({origin.describe()}); writing it would revert that"
            )
            outcome = RecordOutcome(
                stream,
                ext,
                "skipped",
                message=why,
                line=item.line,
                superseded=newest.describe(),
            )
            self.runtime.report.add(outcome, item.record)
            item.done = True
        return fresh

    # --- bad input, stops and the end of the run ------------------------------------

    def reject_line(self, number: int, text: str, reason: str) -> None:
        """An input line the target cannot use: kept aside in the report, by number."""
        self.logger.error("Input line %d cannot be used (%s); kept aside", number, reason)
        self.runtime.report.reject_line(number, text, reason)

    def stop_now(self) -> None:
        """401/403 or an internal error: no further record can succeed; report and exit 1."""
        self.finish()

    def internal_error(self, exc: BaseException) -> None:
        """An unexpected exception: log it, and halt the run (exit 1, report written)."""
        reason = f"stopped by an unexpected error: {type(exc).__name__}: {exc}"
        self.logger.error("%s", reason[:500], exc_info=exc)
        self._halt(reason)

    def _halt(self, reason: str) -> None:
        upserter = self.runtime.upserter
        if upserter.halt is None or not upserter.halt.fatal:
            upserter.halt = RunStop(reason[:500], fatal=True)
            self.runtime.report.halted = upserter.halt.reason

    def fail(self, exc: Exception) -> NoReturn:
        """Last resort for an exception outside any record: report, then exit 1."""
        if isinstance(exc, UnknownStreamError):
            self._halt(str(exc))  # a setup mistake, named in the message: no traceback
        else:
            self.internal_error(exc)
        self.finish()
        sys.exit(1)

    def finish(self) -> None:
        """Write the summary (once), log it, and exit non-zero when the run failed."""
        if self._finished:
            return
        self._finished = True
        self._finishing = True  # a run ending before its first batch wrote nothing: no lock
        runtime = self.runtime_for_writes()
        sinks = self._sinks()
        if runtime.upserter.halt is None and any(s.staged for s in sinks):
            runtime.upserter.halt = RunStop(self.stop_reason or "run stopped", fatal=False)
            runtime.report.halted = runtime.upserter.halt.reason
        for sink in sinks:
            sink.abandon()
        self._emit_safe_state()
        if self._states_held():
            self.logger.warning(
                "Latest STATE not emitted: %d records still need work (a re-run resends them)",
                runtime.report.unfinished,
            )
        report = runtime.report
        client = runtime.client
        calls = {
            "total": client.call_count,
            "index_reads": runtime.index.calls,
            **{method: count for method, count in sorted(client.calls.items())},
        }
        left = budget_left(client)
        summary = report.summary(calls=calls, budget_left=left)
        report.close(summary)
        self.logger.info(
            "Run summary: %s; calls %s; budget left today %s; report in %s",
            summary["totals"] or "no records",
            calls,
            left,
            report.dir,
        )
        if self.settings.dry_run:
            self.logger.warning(
                "Dry run finished: nothing was written to Precoro; what a real run would "
                "do is in %s",
                report.dir / "report.html",
            )
        halt = runtime.upserter.halt
        failures = report.failures()
        runtime.close()
        if self._versions is not None:
            try:
                self._versions.close()
            except Exception as exc:  # the report is written; only replay protection suffers
                self.logger.error("Could not store record versions: %s", exc)
        if halt is not None and halt.fatal:
            self.logger.error("Stopped: %s", halt.reason)
            sys.exit(1)
        if halt is not None:
            self.logger.warning(
                "Stopped early: %s. %d records were not attempted; they are in the "
                "dead-letter file and a re-run resends them.",
                halt.reason,
                report.unfinished,
            )
        if self.stop_signal is not None:
            sys.exit(EXIT_SIGNAL_BASE + self.stop_signal)
        if runtime.locked_out or (halt is not None and halt.retry):
            sys.exit(EXIT_LOCKED)
        if failures > self.settings.max_failures:
            self.logger.error(
                "%d records failed or were invalid (max_failures %d); see %s",
                failures,
                self.settings.max_failures,
                report.dir,
            )
            sys.exit(1)
