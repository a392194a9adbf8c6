"""target-precoro: idempotent upsert by externalId into Precoro, with a report per run.

The target is what the SDK drives: it reads the input (`reader`), keeps STATE until
it is safe, orders the drains and turns signals into a stop request. What a run
shares (the runtime, stale replays, stops and the end of the run) is its
`RunContext` (`run`), created once and handed to every sink.

The singer-sdk private members this target and `precoro_client.plugin_config` override
or use, each with its reason, are listed in `target-precoro/SDK.md`.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterable
from types import FrameType
from typing import Any, ClassVar

from precoro_client.errors import ConfigError
from precoro_client.plugin_config import PrecoroPlugin
from precoro_client.settings import PrecoroSettings
from precoro_client.singer_settings import CONNECTION_PROPERTIES
from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.helpers.capabilities import CapabilitiesEnum, TargetCapabilities
from singer_sdk.sinks import Sink
from typing_extensions import override

from target_precoro.reader import LineNumberReader
from target_precoro.run import RunContext
from target_precoro.settings import TARGET_PROPERTIES, TargetSettings
from target_precoro.sinks import PrecoroSink, sink_class_for
from target_precoro.versions import Origin
from target_precoro.writable import (
    DRAIN_RANK,
    SUPPORTED_STREAMS,
    UnknownStreamError,
    supported_names,
)


class TargetPrecoro(PrecoroPlugin, Target):
    """Singer target writing ERP master data to Precoro by externalId."""

    name = "target-precoro"
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
        self.run = RunContext(
            self.logger,
            schema_of=self._schema_of,
            sinks=self._precoro_sinks,
            emit_safe_state=self.emit_safe_state,
            states_held=lambda: bool(self._states),
        )
        """What the run shares, handed to every sink (created first: the settings check
        and the signal handler, both set up by the SDK's constructor, use it)."""
        self._states: deque[tuple[int, Any]] = deque()
        """STATE messages read and not yet emitted, with their input line."""
        self._emitted_state: Any = None
        self._last_record_line = 0
        self._sink_class = sink_class_for(self.run)
        super().__init__(*args, **kwargs)
        self.max_parallelism = 1
        if isinstance(self.message_reader, LineNumberReader):
            self.run.reader = self.message_reader
            self.message_reader.on_bad_line = self.run.reject_line
            self.message_reader.on_failure = self.run.fail
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
        if not problems:
            self.run.configure(self.precoro_settings, self.target_settings)
        return problems

    # --- the run ----------------------------------------------------------------------

    def _announce(self) -> None:
        """Before the first input line: a dry run says so, so nobody takes it for a real one."""
        if self.target_settings.dry_run:
            self.logger.warning(
                "Dry run (dry_run is true): nothing will be written to Precoro; reads "
                "still count against the budget. Outcomes go to the run report."
            )

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
        return self._sink_class

    @override
    def _drain_all(self, sink_list: Iterable[Sink], parallelism: int) -> None:
        """Drain referenced streams first, so an item's supplier exists before the item."""
        ordered = sorted(sink_list, key=lambda s: DRAIN_RANK.get(s.stream_name, 0))
        super()._drain_all(ordered, 1)

    # --- STATE: never ahead of what is durably done ----------------------------------

    @override
    def _process_record_message(self, message_dict: dict[str, Any]) -> None:
        self._last_record_line = self.run.current_line or 0
        origin = Origin.from_json(message_dict.get("origin"))
        if origin is not None:
            self.run.origins[self._last_record_line] = origin
        super()._process_record_message(message_dict)

    @override
    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        """Keep each STATE with its line: it may be emitted once every record before it is final."""
        self._assert_line_requires(message_dict, requires={"value"})
        state = message_dict["value"]
        line = self.run.current_line or 0
        if self._states and self._states[-1][1] == state:
            return
        if self._states and self._states[-1][0] > self._last_record_line:
            self._states.pop()  # no record in between: the newer STATE says all the older did
        self._states.append((line, state))
        self._latest_state = state

    def _open_line(self) -> int | None:
        """Input line of the earliest record that has no final outcome (None: all final)."""
        lines = [sink.first_open_line for sink in self._precoro_sinks()]
        runtime = self.run.opened_runtime
        if runtime is not None:
            lines.append(runtime.report.first_unfinished_line)
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

    @override
    def process_endofpipe(self) -> None:
        """Drain, then write the report and summary and set the exit status."""
        try:
            if self.run.stop_reason is not None:
                self.logger.warning(
                    "%s: no new record is taken; the rest is reported as not attempted",
                    self.run.stop_reason,
                )
                self.run.runtime_for_writes()
            super().process_endofpipe()
        except Exception as exc:
            self.run.fail(exc)
        self.run.finish()

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: only note it; the run stops at the next safe point.

        Draining or exiting here would cut a write in flight, or report records as done
        that are not. Instead the write in flight finishes, no further call starts, the
        staged records end `not attempted` (dead-lettered, final false), STATE stops
        before the first of them, and the exit status is 128 + the signal number.
        """
        self.run.request_stop(signum)
