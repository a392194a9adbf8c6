"""target-precoro: idempotent upsert by externalId into Precoro, with a report per run.

The singer-sdk private members this target and `precoro_client.plugin_config` override
or use, each with its reason, are listed in `target-precoro/SDK.md`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import os
import signal
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any, ClassVar, NoReturn

from precoro_client.account_lock import AccountLock, AccountLocked, account_lock
from precoro_client.client import PrecoroClient
from precoro_client.errors import EXIT_TEMPFAIL, ConfigError, LedgerUnavailable
from precoro_client.plugin_config import PrecoroPlugin
from precoro_client.settings import PrecoroSettings
from precoro_client.singer_settings import CONNECTION_PROPERTIES
from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.exceptions import InvalidInputLine
from singer_sdk.helpers.capabilities import CapabilitiesEnum, TargetCapabilities
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.json import deserialize_json
from singer_sdk.sinks import Sink
from typing_extensions import override

from target_precoro.account_state import AccountState
from target_precoro.index import Index, IndexStore
from target_precoro.journal import Journal
from target_precoro.report import RecordOutcome, RunReport, prune_reports
from target_precoro.settings import TARGET_PROPERTIES, TargetSettings
from target_precoro.sinks import PrecoroSink
from target_precoro.streams import SUPPORTED_STREAMS, dependencies, supported_names
from target_precoro.upsert import Halt, Item, Upserter
from target_precoro.versions import Origin, VersionStore

EXIT_LOCKED = EXIT_TEMPFAIL
"""Exit status when another run held the account lock past `lock_wait_seconds`, or the
shared ledger went away (sysexits' EX_TEMPFAIL: try again later)."""
IN_MEMORY = Path(":memory:")
"""Index and journal of a locked-out run: it must not touch the holder's state."""


class UnknownStreamError(ValueError):
    """A stream that is not a Precoro entity the target can write."""


EXIT_SIGNAL_BASE = 128
"""After SIGTERM/SIGINT the exit status is 128 + the signal number (143, 130), as a
shell reports a process killed by that signal: the orchestrator sees an interrupted run."""
MAX_LINE_CHARS = 5_000_000
"""Longest input line read (characters); a longer one is rejected unread, not loaded.
Precoro master-data records are a few kB; this leaves three orders of magnitude."""
MAX_NESTING = 100
"""Deepest nesting of objects and lists accepted in one message (records need < 10);
deeper input is rejected before any recursive code (copy, encoding) can overflow."""


class ReadInterrupted(Exception):
    """Raised by the signal handler, only while the reader waits for the next line."""


class BadLine(Exception):
    """An input line the target cannot use; the reason goes to `rejected-lines.jsonl`."""


def _decoded(source: IO[str]) -> IO[str]:
    """The same input, decoded as UTF-8 keeping invalid bytes (as lone surrogates).

    A strict decoder raises in the middle of the input and ends the run; with
    `surrogateescape` the bad line is read, found invalid and rejected by number.
    """
    buffer = getattr(source, "buffer", None)
    if buffer is None:
        return source
    return io.TextIOWrapper(buffer, encoding="utf-8", errors="surrogateescape")


def _bounded_lines(source: IO[str], limit: int) -> Iterator[tuple[str, bool]]:
    """Lines of at most `limit` characters; a longer one is skipped, yielding (head, True)."""
    while True:
        line = source.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit:
            yield line, False
            continue
        head = line
        while not line.endswith("\n"):
            line = source.readline(limit)
            if not line:
                break
        yield head[:200], True


def _value_problem(message: dict[str, Any], line: str) -> str | None:
    """Why a parsed message cannot be used: too deep, or a string that is not Unicode."""
    deep = line.count("{") + line.count("[") > MAX_NESTING
    escapes = "\\u" in line
    if not deep and not escapes:
        return None
    stack: list[tuple[Any, int]] = [(message, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_NESTING:
                return f"nested deeper than {MAX_NESTING} levels"
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return (
                    f"a string holds a lone surrogate ({value[exc.start]!r}), which is not "
                    "valid Unicode"
                )
    return None


def parse_line(line: str) -> dict[str, Any]:
    """One Singer message from one line, or `BadLine` saying why not."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadLine(f"invalid UTF-8 at character {exc.start}") from None
    try:
        message = deserialize_json(line)
    except RecursionError:
        raise BadLine("nested too deeply to parse") from None
    except ValueError as exc:
        raise BadLine(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BadLine(f"not a Singer message: a JSON {type(message).__name__}, not an object")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise BadLine("a Singer message needs a 'type' string")
    problem = _value_problem(message, line)
    if problem is not None:
        raise BadLine(problem)
    return message


class LineNumberReader(SingerReader):
    """Reads Singer lines, counting them; a line it cannot use is kept, not fatal."""

    def __init__(self) -> None:
        """Start at line 0; the callbacks are set by the target."""
        super().__init__()
        self.line_number = 0
        self.on_bad_line: Callable[[int, str, str], None] | None = None
        self.on_failure: Callable[[Exception], None] | None = None
        self.on_start: Callable[[], None] | None = None
        """Called once before the first line is read (the run's start)."""
        self.stop_requested = False
        """Set by the signal handler: take no further line."""
        self.waiting = False
        """True only while blocked reading the next line (a signal may then break out)."""

    @override
    def process_lines(  # type: ignore[override]
        self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict[str, Any]], None]]
    ) -> Any:
        """Like the SDK's loop, but numbering lines and rejecting bad ones one by one.

        It stops between lines on a signal, and hands any unexpected error to the
        last-resort handler, which writes the report before exiting.
        """
        stats: Counter[str] = Counter()
        if self.on_start is not None:
            self.on_start()
        source = file_input or self.default_input
        decoded = _decoded(source)
        try:
            lines = _bounded_lines(decoded, MAX_LINE_CHARS)
            while not self.stop_requested:
                try:
                    try:
                        self.waiting = True
                        if self.stop_requested:
                            break
                        line, oversize = next(lines)
                    finally:
                        self.waiting = False
                except (StopIteration, ReadInterrupted):
                    break
                self.line_number += 1
                kind = self._process_line(line, oversize=oversize, callbacks=callbacks)
                if kind is not None:
                    stats[kind] += 1
        except Exception as exc:
            if self.on_failure is None:
                raise
            self.on_failure(exc)
        finally:
            if isinstance(decoded, io.TextIOWrapper) and decoded is not source:
                # Taken off, not closed: closing (or garbage-collecting) the layer would
                # close the caller's stream (stdin) under it.
                with contextlib.suppress(ValueError):
                    decoded.detach()
        return stats

    def _process_line(
        self,
        line: str,
        *,
        oversize: bool,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
    ) -> str | None:
        """Hand one line to its callback; a line the target cannot use is rejected."""
        try:
            if oversize:
                raise BadLine(f"longer than {MAX_LINE_CHARS} characters (MAX_LINE_CHARS)")
            if not line.strip():
                return None
            message = parse_line(line)
            kind = str(message["type"])
            callback = callbacks.get(kind)
            if callback is None:
                raise BadLine(f"unknown Singer message type {kind!r}")
            try:
                callback(message)
            except UnknownStreamError:
                raise
            except Exception as exc:
                text = str(exc).split("\n", 1)[0]
                raise BadLine(f"{type(exc).__name__}: {text}") from exc
        except BadLine as exc:
            if self.on_bad_line is None:
                raise InvalidInputLine(str(exc)) from exc
            self.on_bad_line(self.line_number, line, str(exc)[:500])
            return None
        return kind


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


def _dependency_rank() -> dict[str, int]:
    """Suppliers before items, invoices before payments: referenced streams drain first."""
    rank: dict[str, int] = {}

    def visit(name: str, seen: frozenset[str]) -> int:
        if name in rank:
            return rank[name]
        deps = [d for d in dependencies(SUPPORTED_STREAMS[name]) if d in SUPPORTED_STREAMS]
        value = 1 + max((visit(d, seen | {name}) for d in deps if d not in seen), default=0)
        rank[name] = value
        return value

    for name in SUPPORTED_STREAMS:
        visit(name, frozenset())
    return rank


DRAIN_RANK = _dependency_rank()


def _budget_left(client: PrecoroClient) -> int | None:
    """Calls left today by the budget ledger (no Precoro call); None if it cannot be read."""
    try:
        return client.governor.remaining_today()
    except Exception:
        return None


class TargetPrecoro(PrecoroPlugin, Target):
    """Singer target writing ERP master data to Precoro by externalId."""

    name = "target-precoro"
    default_sink_class = PrecoroSink
    message_reader_class = LineNumberReader
    config_jsonschema = th.PropertiesList(*CONNECTION_PROPERTIES, *TARGET_PROPERTIES).to_dict()
    # `validate.py` checks records against the registry (the sinks turn the SDK's schema
    # validation off), so `validate-records` and its setting would be a false promise.
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        c for c in Target.capabilities if c is not TargetCapabilities.VALIDATE_RECORDS
    ]
    UNSUPPORTED_SDK_SETTINGS = ("add_record_metadata", "load_method")
    """SDK built-ins this target ignores: records are matched by externalId whatever
    `load_method` says (never appended, never overwritten), and `_sdc_*` metadata columns
    are not Precoro fields."""

    @override
    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, Any]) -> None:
        """The SDK's built-in settings, minus those the target does not honour."""
        super().append_builtin_config(config_jsonschema)
        for name in cls.UNSUPPORTED_SDK_SETTINGS:
            config_jsonschema["properties"].pop(name, None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Validate settings before any request; one sink drains at a time (shared limit)."""
        self._runtime: Runtime | None = None
        self._finished = False
        self._finishing = False
        self._stop_signal: int | None = None
        self._states: deque[tuple[int, Any]] = deque()
        """STATE messages read and not yet emitted, with their input line."""
        self._emitted_state: Any = None
        self._last_record_line = 0
        self._origins: dict[int, Origin] = {}
        """Replayed records' origins (dead-letter `origin` key), by input line."""
        self._versions: VersionStore | None = None
        super().__init__(*args, **kwargs)
        self.max_parallelism = 1
        if isinstance(self.message_reader, LineNumberReader):
            self.message_reader.on_bad_line = self._reject_line
            self.message_reader.on_failure = self.fail
            self.message_reader.on_start = self._announce

    # --- configuration ----------------------------------------------------------------

    @override
    def check_settings(self) -> list[str]:
        """The checks the schema cannot express (numbers are already parsed)."""
        problems: list[str] = []
        try:
            self.precoro_settings = PrecoroSettings.from_config(self.config)
        except ConfigError as exc:
            problems.append(str(exc))
        try:
            self.target_settings = TargetSettings.from_config(self.config)
        except ConfigError as exc:
            problems.append(str(exc))
        return problems

    # --- the run ----------------------------------------------------------------------

    def _announce(self) -> None:
        """Before the first input line: a dry run says so, so nobody takes it for a real one."""
        if self.target_settings.dry_run:
            self.logger.warning(
                "Dry run (dry_run is true): nothing will be written to Precoro; reads "
                "still count against the budget. Outcomes go to the run report."
            )

    @property
    def current_line(self) -> int | None:
        """Input line number of the message being processed."""
        reader = self.message_reader
        return reader.line_number if isinstance(reader, LineNumberReader) else None

    @property
    def runtime(self) -> Runtime:
        """Client, index, journal and report, opened on the first batch (after the lock)."""
        if self._runtime is None:
            settings = self.target_settings
            run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{os.getpid()}"
            client = PrecoroClient(self.precoro_settings)
            lock, refusal = self._take_lock(run_id)
            account = settings.account_dir(self.precoro_settings.ledger_key)
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
                report.budget_at_start = _budget_left(client)
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

    def _take_lock(self, run_id: str) -> tuple[AccountLock | None, Halt | None]:
        """One writer per account: its lock before any shared state or Precoro read.

        Without it, two runs both look an externalId up, find nothing and both POST.
        Returns the held lock, or the reason to attempt nothing (another run kept it
        past `lock_wait_seconds`: every record is dead-lettered as not attempted, STATE
        is withheld, exit status 75). Dry runs write nothing and take no lock; neither
        does a run that ends before its first batch.
        """
        if self.target_settings.dry_run or self._finishing:
            return None, None
        lock = account_lock(self.precoro_settings, run_id=run_id)
        try:
            # A SIGTERM/SIGINT only sets `_stop_signal` (see `_handle_termination`),
            # which ends the wait: the run then attempts nothing and reports every record.
            lock.acquire(
                self.target_settings.lock_wait_seconds,
                cancelled=lambda: self._stop_signal is not None,
            )
        except AccountLocked as exc:
            return None, Halt(exc.message, fatal=False)
        except ConfigError as exc:
            return None, Halt(exc.message, fatal=True)
        return lock, None

    def _schema_of(self, stream: str) -> dict[str, Any] | None:
        return self.get_sink(stream).schema if self.sink_exists(stream) else None

    @override
    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """Only Precoro entities the target can write; anything else is a clear error."""
        if stream_name not in SUPPORTED_STREAMS:
            msg = (
                f"Unknown stream {stream_name!r}: target-precoro writes only these streams "
                f"(named after Precoro entities): {supported_names()}"
            )
            raise UnknownStreamError(msg)
        return PrecoroSink

    @override
    def _drain_all(self, sink_list: Iterable[Sink], parallelism: int) -> None:
        """Drain referenced streams first, so an item's supplier exists before the item."""
        ordered = sorted(sink_list, key=lambda s: DRAIN_RANK.get(s.stream_name, 0))
        super()._drain_all(ordered, 1)

    # --- STATE: never ahead of what is durably done ----------------------------------

    @override
    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        self._last_record_line = self.current_line or 0
        origin = Origin.from_json(message_dict.get("origin"))
        if origin is not None:
            self._origins[self._last_record_line] = origin
        super()._process_record_message(message_dict)

    @override
    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        """Keep each STATE with its line: it may be emitted once every record before it is final."""
        self._assert_line_requires(message_dict, requires={"value"})
        state = message_dict["value"]
        line = self.current_line or 0
        if self._states and self._states[-1][1] == state:
            return
        if self._states and self._states[-1][0] > self._last_record_line:
            self._states.pop()  # no record in between: the newer STATE says all the older did
        self._states.append((line, state))
        self._latest_state = state

    def _open_line(self) -> int | None:
        """Input line of the earliest record that has no final outcome (None: all final)."""
        lines = [sink.first_open_line for sink in self._precoro_sinks()]
        if self._runtime is not None:
            lines.append(self._runtime.report.first_unfinished_line)
        known = [line for line in lines if line is not None]
        return min(known) if known else None

    def _precoro_sinks(self) -> list[PrecoroSink]:
        sinks = [*self._sinks_to_clear, *self._sinks_active.values()]
        return [sink for sink in sinks if isinstance(sink, PrecoroSink)]

    def emit_safe_state(self) -> None:
        """Emit the latest STATE read after records that all have a final outcome.

        A STATE at line n promises everything before line n is done; records staged,
        not attempted or with an unknown outcome hold it back, so a re-run resends them.
        """
        frontier = self._open_line()
        chosen = None
        while self._states and (frontier is None or self._states[0][0] < frontier):
            chosen = self._states.popleft()
        if chosen is not None and chosen[1] != self._emitted_state:
            self._emitted_state = chosen[1]
            super()._write_state_message(copy.deepcopy(chosen[1]))

    @override
    def _write_state_message(self, state: dict[str, Any]) -> None:
        """The SDK's drain emits its latest STATE; emit the latest safe one instead."""
        self.emit_safe_state()

    # --- bad input, stops and the end of the run ------------------------------------

    def _reject_line(self, number: int, text: str, reason: str) -> None:
        self.logger.error("Input line %d cannot be used (%s); kept aside", number, reason)
        self.runtime.report.reject_line(number, text, reason)

    @property
    def stop_reason(self) -> str | None:
        """Why the run is stopping at the next safe point (a signal), if it is."""
        if self._stop_signal is None:
            return None
        return f"interrupted by {signal.Signals(self._stop_signal).name}"

    def runtime_for_writes(self) -> Runtime:
        """The runtime, with a pending stop request passed on to the upserter."""
        runtime = self.runtime
        if self.stop_reason is not None and runtime.upserter.stop_requested is None:
            runtime.upserter.stop_requested = self.stop_reason
        if runtime.report.on_written is None:
            runtime.report.origins = self._origins
            runtime.report.on_written = self._note_written
        return runtime

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
            origin = self._origins.get(item.line or 0)
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

    @override
    def process_endofpipe(self) -> None:
        """Drain, then write the report and summary and set the exit status."""
        try:
            if self.stop_reason is not None:
                self.logger.warning(
                    "%s: no new record is taken; the rest is reported as not attempted",
                    self.stop_reason,
                )
                self.runtime_for_writes()
            super().process_endofpipe()
        except Exception as exc:
            self.fail(exc)
        self.finish()

    def stop_now(self) -> None:
        """401/403 or an internal error: no further record can succeed; report and exit 1."""
        self.finish()

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: only note it; the run stops at the next safe point.

        Draining or exiting here would cut a write in flight, or report records as done
        that are not. Instead the write in flight finishes, no further call starts, the
        staged records end `not attempted` (dead-lettered, final false), STATE stops
        before the first of them, and the exit status is 128 + the signal number.
        """
        if self._stop_signal is None:
            self._stop_signal = signum
        runtime = self._runtime
        if runtime is not None and runtime.upserter.stop_requested is None:
            runtime.upserter.stop_requested = self.stop_reason
        reader = self.message_reader
        if isinstance(reader, LineNumberReader):
            reader.stop_requested = True
            if reader.waiting:
                raise ReadInterrupted

    def internal_error(self, exc: BaseException) -> None:
        """An unexpected exception: log it, and halt the run (exit 1, report written)."""
        reason = f"stopped by an unexpected error: {type(exc).__name__}: {exc}"
        self.logger.error("%s", reason[:500], exc_info=exc)
        self._halt(reason)

    def _halt(self, reason: str) -> None:
        upserter = self.runtime.upserter
        if upserter.halt is None or not upserter.halt.fatal:
            upserter.halt = Halt(reason[:500], fatal=True)
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
        if runtime.upserter.halt is None and any(s.staged for s in self._precoro_sinks()):
            runtime.upserter.halt = Halt(self.stop_reason or "run stopped", fatal=False)
            runtime.report.halted = runtime.upserter.halt.reason
        for sink in self._precoro_sinks():
            sink.abandon()
        self.emit_safe_state()
        if self._states:
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
        budget_left = _budget_left(client)
        summary = report.summary(calls=calls, budget_left=budget_left)
        report.close(summary)
        self.logger.info(
            "Run summary: %s; calls %s; budget left today %s; report in %s",
            summary["totals"] or "no records",
            calls,
            budget_left,
            report.dir,
        )
        if self.target_settings.dry_run:
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
        if self._stop_signal is not None:
            sys.exit(EXIT_SIGNAL_BASE + self._stop_signal)
        if runtime.locked_out or (halt is not None and halt.retry):
            sys.exit(EXIT_LOCKED)
        if failures > self.target_settings.max_failures:
            self.logger.error(
                "%d records failed or were invalid (max_failures %d); see %s",
                failures,
                self.target_settings.max_failures,
                report.dir,
            )
            sys.exit(1)
