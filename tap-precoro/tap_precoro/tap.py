"""tap-precoro: every Precoro entity, incremental by modifiedSince, inside the limits."""

from __future__ import annotations

import io
import json
import sys
from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from precoro_client.errors import EXIT_TEMPFAIL, BudgetExhausted, ConfigError, LedgerUnavailable
from precoro_client.plugin_config import PrecoroPlugin
from precoro_client.registry import ENTITIES, Entity
from precoro_client.settings import PrecoroSettings
from precoro_client.singer_settings import CONNECTION_PROPERTIES
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from typing_extensions import override

from tap_precoro.batches import HeldStateWriter
from tap_precoro.bookmarks import parse_timestamp, state_problems
from tap_precoro.outlook import Outlook
from tap_precoro.run_context import RunContext
from tap_precoro.settings import TAP_PROPERTIES, TapSettings
from tap_precoro.streams import PrecoroStream, stream_for

STREAM_NAMES = [entity.name for entity in ENTITIES]


class TapPrecoro(PrecoroPlugin, Tap):
    """Singer tap for the Precoro REST API."""

    name = "tap-precoro"
    config_jsonschema = th.PropertiesList(
        *CONNECTION_PROPERTIES,
        *TAP_PROPERTIES,
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Validate the config fully before any request; the run context follows."""
        self.precoro_settings: PrecoroSettings | None = None
        self._tap_settings: TapSettings | None = None
        self._run: RunContext | None = None
        super().__init__(*args, **kwargs)
        self._state_writer = self.run.state_writer

    @property
    def run(self) -> RunContext:
        """What this run shares with its streams, created once (when the streams are).

        The config is validated by then (the SDK validates before it builds streams).
        """
        if self._run is None:
            self._run = RunContext(
                self.precoro_settings,
                self.tap_settings if self.precoro_settings is not None else self._lenient(),
                HeldStateWriter(self.message_writer),
                self.logger,
            )
        return self._run

    @property
    def tap_settings(self) -> TapSettings:
        """The tap's own settings, parsed once from the validated config."""
        if self._tap_settings is None:
            self._tap_settings = TapSettings.from_config(self.config)
        return self._tap_settings

    def _lenient(self) -> TapSettings:
        """Settings for a config that did not validate (discovery, `--about`).

        The parsed ones if the tap's own part is fine, else the defaults. No request
        is made with them (the run context refuses to open a client).
        """
        try:
            return self.tap_settings
        except ConfigError:
            return TapSettings()

    @property
    def budget_stop(self) -> BudgetExhausted | None:
        """The run's budget stop, if it had one."""
        return self.run.budget_stop

    # --- configuration --------------------------------------------------------------------

    @override
    def check_settings(self) -> list[str]:
        """The settings the schema cannot express (numbers are already parsed)."""
        problems: list[str] = []
        try:
            self.precoro_settings = PrecoroSettings.from_config(self.config)
        except ConfigError as exc:
            problems.append(str(exc))
        for key in ("start_date",):
            value = self.config.get(key)
            if value and not _is_timestamp(value):
                problems.append(f"{key} {value!r} is not an ISO 8601 date-time")
        for stream, value in (self.config.get("stream_start_dates") or {}).items():
            if stream not in STREAM_NAMES:
                problems.append(f"stream_start_dates names unknown stream {stream!r}")
            elif not _is_timestamp(value):
                problems.append(f"stream_start_dates.{stream} {value!r} is not a date-time")
        for stream in self.config.get("status_filters") or {}:
            if stream not in STREAM_NAMES:
                problems.append(f"status_filters names unknown stream {stream!r}")
        timezone = self.config.get("api_timezone", TapSettings.api_timezone)
        if not _is_timezone(timezone):
            problems.append(f"api_timezone {timezone!r} is not an IANA time zone name")
        return problems

    # --- state ----------------------------------------------------------------------------

    @classmethod
    @override
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: Any = None,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
    ) -> None:
        """Like the SDK's, but a state file that is not a JSON object is a one-line error."""
        if state is not None:
            text = state.read()
            try:
                parsed: Any = json.loads(text)
            except ValueError as exc:
                msg = f"the state file is not valid JSON ({exc})"
                raise StateError(msg, errors=[msg]) from None
            if not isinstance(parsed, dict):
                msg = f"the state file must hold a JSON object, not {type(parsed).__name__}"
                raise StateError(msg, errors=[msg])
            state = io.StringIO(text)
        super().invoke(
            about=about, about_format=about_format, config=config, state=state, catalog=catalog
        )

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        """Refuse a corrupt state before any request, naming the stream (see bookmarks)."""
        kinds = {entity.name: _state_kind(entity) for entity in ENTITIES}
        problems = state_problems(state, kinds)
        if problems:
            raise StateError(problems[0], errors=problems)
        super().load_state(_plain_numbers(state))

    # --- streams ------------------------------------------------------------------------

    @override
    def discover_streams(self) -> list[Stream]:
        """One stream per registry entity that has a list endpoint."""
        return [stream_for(self, entity, self.run) for entity in ENTITIES]

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        """Registry order, not the SDK's alphabetical one: custom fields before options."""
        loaded = super().streams
        if list(loaded) != [name for name in STREAM_NAMES if name in loaded]:
            ordered = {name: loaded[name] for name in STREAM_NAMES if name in loaded}
            loaded.clear()
            loaded.update(ordered)
        return loaded

    # --- run ----------------------------------------------------------------------------

    @override  # type: ignore[misc]  # SDK final, no end hook: SDK_SURFACE.md
    def sync_all(self) -> None:
        """The SDK's run of every stream, then the end of the run (explicit, here).

        Webhook-delivered versions are held out of every STATE but the run's last
        (`hold_delivered_versions`). Logs the run summary; exits 75 (EX_TEMPFAIL) when
        the shared ledger went away (the STATE is out and the run is to be retried,
        unlike a spent budget, which exits 0, or 1 with `on_budget_exhausted: fail`,
        since the next scheduled run resumes it anyway). The SDK marks `sync_all`
        final and has no run start or end hook; this calls it unchanged.
        """
        self._warn_unmatched_selection()
        for stream in self._precoro_streams():
            if stream.selected:
                stream.hold_delivered_versions()
        try:
            super().sync_all()
        finally:
            self.run.close()
        released = [s.release_delivered_versions() for s in self._precoro_streams()]
        if any(released):  # the run's last STATE: what the next reconcile poll skips
            self.state_writer.write_state(self.state)
        self._log_summary()
        if isinstance(self.budget_stop, LedgerUnavailable):
            sys.exit(EXIT_TEMPFAIL)
        if self.budget_stop is not None and self.tap_settings.on_budget_exhausted == "fail":
            sys.exit(1)

    def _warn_unmatched_selection(self) -> None:
        """A catalog naming a stream this tap lacks, or selecting nothing, is a WARNING.

        The SDK ignores both silently: a mistyped `meltano select` pattern or catalog
        entry would read nothing without a word.
        """
        catalog = self.input_catalog
        if catalog is not None:
            for name in sorted(set(catalog) - set(self.streams)):
                self.logger.warning(
                    "The catalog names stream %r, which tap-precoro does not have; it is "
                    "ignored. Streams: %s",
                    name,
                    ", ".join(STREAM_NAMES),
                )
        if not any(s.selected or s.has_selected_descendents for s in self.streams.values()):
            self.logger.warning(
                "No stream is selected: this run reads nothing. Check the catalog or "
                "`meltano select` patterns against: %s",
                ", ".join(STREAM_NAMES),
            )

    def _log_summary(self) -> None:
        records = Counter({s.name: s.emitted_count for s in self._precoro_streams()})
        client = self.run.opened_client
        calls = client.call_count if client else 0
        try:
            left = client.governor.remaining_today() if client else None
        except LedgerUnavailable:  # the run stopped because the shared ledger went away
            left = None
        if client is not None and client.call_count:
            client.report_budget()  # the budget METRIC points, as the run ends
        per_stream = ", ".join(f"{name}={count}" for name, count in sorted(records.items()))
        self.logger.info(
            "Run summary: records %s; API calls used %d; budget left today %s",
            per_stream or "none",
            calls,
            "unknown" if left is None else left,
        )
        if self.budget_stop is not None:
            pending = [s for s in self._precoro_streams() if s.selected and not s.finished]
            outlooks = {s.name: s.outlook() for s in pending}
            known = sum(o.calls for o in outlooks.values() if o.calls is not None)
            unknown = sum(1 for o in outlooks.values() if o.calls is None)
            returns = self.budget_stop.resets_at
            if unknown:
                more = f"at least {known + unknown} calls (Precoro gave no total)"
            else:
                more = f"~{known} calls, {self.run.time_for(known)} at the limits"
            self.logger.warning(
                "Stopped early: %s. Still to read: %s; %s. "
                "Budget returns at %s; the next run resumes where this one stopped.",
                self.budget_stop.limit,
                ", ".join(_left_text(name, o) for name, o in outlooks.items()) or "nothing",
                more,
                returns.isoformat() if isinstance(returns, datetime) else "unknown",
            )

    def outlook(self) -> dict[str, Outlook]:
        """Rows and calls each selected stream still has to read (the run summary's)."""
        return {s.name: s.outlook() for s in self._precoro_streams() if s.selected}

    def _precoro_streams(self) -> list[PrecoroStream]:
        return [s for s in self.streams.values() if isinstance(s, PrecoroStream)]


def _left_text(name: str, left: Outlook) -> str:
    if left.rows is None:
        return f"{name} (count unknown)"
    return f"{name} (~{left.rows} rows, ~{left.calls} calls)"


class StateError(ConfigValidationError):
    """The incoming state cannot be used; the run stops (exit 1) before any request.

    A `ConfigValidationError`, so the SDK's command line prints each problem and exits 1.
    """


def _plain_numbers(value: Any) -> Any:
    """The state with the SDK's JSON `Decimal`s as int/float, as the tap wrote them.

    A state file is read with `parse_float=Decimal`; code that checks
    `isinstance(x, float)` (the webhook receiver's `seen_at`) would see none.
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def _state_kind(entity: Entity) -> str:
    """How a stream keeps its state: by bookmark, or by content hashes (see `_stream_for`)."""
    return "incremental" if entity.incremental and entity.parent is None else "reference"


def _is_timestamp(value: Any) -> bool:
    try:
        parse_timestamp(str(value))
    except ValueError:
        return False
    return True


def _is_timezone(name: Any) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
