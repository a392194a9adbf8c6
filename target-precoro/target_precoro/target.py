"""target-precoro: idempotent upsert by externalId into Precoro, with a report per run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import IO, Any, ClassVar

from precoro_client.client import PrecoroClient
from precoro_client.errors import ConfigError
from precoro_client.settings import PrecoroSettings
from precoro_client.singer_settings import CONNECTION_PROPERTIES
from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError, InvalidInputLine
from singer_sdk.helpers.capabilities import CapabilitiesEnum, TargetCapabilities
from singer_sdk.io_base import SingerReader
from singer_sdk.sinks import Sink
from typing_extensions import override

from target_precoro.index import Index, IndexStore
from target_precoro.journal import Journal
from target_precoro.report import RunReport
from target_precoro.settings import TARGET_PROPERTIES, TargetSettings
from target_precoro.sinks import PrecoroSink
from target_precoro.streams import SUPPORTED_STREAMS, dependencies, supported_names
from target_precoro.upsert import Upserter


class UnknownStreamError(ValueError):
    """A stream that is not a Precoro entity the target can write."""


class LineNumberReader(SingerReader):
    """Reads Singer lines, counting them; a malformed line is kept, not fatal."""

    def __init__(self) -> None:
        """Start at line 0; `on_bad_line` is set by the target."""
        super().__init__()
        self.line_number = 0
        self.on_bad_line: Callable[[int, str, str], None] | None = None

    def process_lines(  # type: ignore[override]
        self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict[str, Any]], None]]
    ) -> Any:
        """Like the SDK's loop, but numbering lines and rejecting bad ones one by one."""
        from collections import Counter

        stats: Counter[str] = Counter()
        for line in file_input or self.default_input:
            self.line_number += 1
            if not line.strip():
                continue
            try:
                message = self.deserialize_json(line)
                if not isinstance(message, dict) or "type" not in message:
                    raise InvalidInputLine("a Singer message needs a 'type'")
            except InvalidInputLine as exc:
                reason = str(exc).split("\n", 1)[0][:200]
                if self.on_bad_line is None:
                    raise
                self.on_bad_line(self.line_number, line, reason)
                continue
            kind = message["type"]
            callback = callbacks.get(kind)
            if callback is None:
                self._process_unknown_message(message)
            else:
                callback(message)
            stats[kind] += 1
        return stats


@dataclass
class Runtime:
    """Everything a run shares: client, index, journal, report and upserter."""

    client: PrecoroClient
    index: Index
    journal: Journal
    report: RunReport
    upserter: Upserter

    def close(self) -> None:
        """Release files and connections."""
        self.index.store.close()
        self.journal.close()
        self.client.close()


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


class TargetPrecoro(Target):
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
        super().__init__(*args, **kwargs)
        self.max_parallelism = 1
        if isinstance(self.message_reader, LineNumberReader):
            self.message_reader.on_bad_line = self._reject_line

    # --- configuration ----------------------------------------------------------------

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """SDK schema checks plus the checks the schema cannot express."""
        errors = super()._validate_config(raise_errors=raise_errors)
        problems: list[str] = []
        try:
            self.precoro_settings = PrecoroSettings.from_config(self.config)
        except ConfigError as exc:
            problems.append(str(exc))
        try:
            self.target_settings = TargetSettings.from_config(self.config)
        except ConfigError as exc:
            problems.append(str(exc))
        if problems and raise_errors:
            raise ConfigValidationError(problems[0], errors=problems)
        return [*errors, *problems]

    # --- the run ----------------------------------------------------------------------

    @property
    def current_line(self) -> int | None:
        """Input line number of the message being processed."""
        reader = self.message_reader
        return reader.line_number if isinstance(reader, LineNumberReader) else None

    @property
    def runtime(self) -> Runtime:
        """Client, index, journal and report, opened on the first batch."""
        if self._runtime is None:
            settings = self.target_settings
            run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{os.getpid()}"
            client = PrecoroClient(self.precoro_settings)
            account = settings.account_dir(self.precoro_settings.ledger_key)
            index = Index(
                IndexStore(account / "index.sqlite3"),
                client,
                lookup_batch_size=settings.lookup_batch_size,
                lookback=timedelta(minutes=settings.lookback_minutes),
            )
            journal = Journal(account / "journal.sqlite3", run_id)
            report = RunReport(settings.report_dir, run_id, dry_run=settings.dry_run)
            upserter = Upserter(
                client=client,
                index=index,
                journal=journal,
                report=report,
                settings=settings,
                schema_of=self._schema_of,
            )
            self._runtime = Runtime(client, index, journal, report, upserter)
        return self._runtime

    def _schema_of(self, stream: str) -> dict[str, Any] | None:
        sink = self._sinks_active.get(stream)
        return sink.schema if sink is not None else None

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """Only Precoro entities the target can write; anything else is a clear error."""
        if stream_name not in SUPPORTED_STREAMS:
            msg = (
                f"Unknown stream {stream_name!r}: target-precoro writes only these streams "
                f"(named after Precoro entities): {supported_names()}"
            )
            raise UnknownStreamError(msg)
        return PrecoroSink

    def _drain_all(self, sink_list: Iterable[Sink], parallelism: int) -> None:
        """Drain referenced streams first, so an item's supplier exists before the item."""
        ordered = sorted(sink_list, key=lambda s: DRAIN_RANK.get(s.stream_name, 0))
        super()._drain_all(ordered, 1)

    def _write_state_message(self, state: dict[str, Any]) -> None:
        """Emit STATE only while every record so far has a final outcome."""
        runtime = self._runtime
        if runtime is not None and (runtime.report.unfinished or runtime.upserter.halt):
            self.logger.warning(
                "STATE not emitted: %d records still need work (a re-run resends them)",
                runtime.report.unfinished,
            )
            return
        super()._write_state_message(state)

    def _reject_line(self, number: int, text: str, reason: str) -> None:
        self.logger.error("Input line %d is not a Singer message (%s); kept aside", number, reason)
        self.runtime.report.reject_line(number, text, reason)

    def process_endofpipe(self) -> None:
        """Drain, then write the report and summary and set the exit status."""
        super().process_endofpipe()
        self.finish()

    def stop_now(self) -> None:
        """401/403: no further record can succeed; report and exit 1 at once."""
        self.finish()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: drain what is staged, write the report, then exit."""
        self.logger.info("Received termination signal %d; draining and reporting", signum)
        self.drain_all(is_endofpipe=True)
        self.finish()
        sys.exit(0)

    def finish(self) -> None:
        """Write the summary (once), log it, and exit non-zero when the run failed."""
        if self._finished:
            return
        self._finished = True
        runtime = self.runtime
        report = runtime.report
        client = runtime.client
        calls = {
            "total": client.call_count,
            "index_reads": runtime.index.calls,
            **{method: count for method, count in sorted(client.calls.items())},
        }
        try:
            budget_left: int | None = client.governor.remaining_today()
        except Exception:
            budget_left = None
        summary = report.summary(calls=calls, budget_left=budget_left)
        report.close(summary)
        self.logger.info(
            "Run summary: %s; calls %s; budget left today %s; report in %s",
            summary["totals"] or "no records",
            calls,
            budget_left,
            report.dir,
        )
        halt = runtime.upserter.halt
        failures = report.failures()
        runtime.close()
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
        if failures > self.target_settings.max_failures:
            self.logger.error(
                "%d records failed or were invalid (max_failures %d); see %s",
                failures,
                self.target_settings.max_failures,
                report.dir,
            )
            sys.exit(1)
