"""One BatchSink per Precoro stream; the work itself is done by the shared `Upserter`.

Batches let the look-ups that precede writes be shared: one `external_id[]` call
answers for up to 200 records of the batch. A sink never reaches back into the
target: what the run shares comes from its `RunContext` (see `sink_class_for`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

from precoro_client.errors import LedgerUnavailable
from singer_sdk import Target
from singer_sdk.sinks import BatchSink
from typing_extensions import override

from target_precoro.run import RunContext
from target_precoro.upsert import Item
from target_precoro.writable import SUPPORTED_STREAMS


class PrecoroSink(BatchSink):
    """Collects a stream's records and hands each batch to the upserter."""

    MAX_SIZE_DEFAULT = 2000
    """Records per batch (overridden by `batch_size_rows`); also the span in which
    two records claiming one Precoro record are seen together."""
    run: ClassVar[RunContext]
    """The run this sink writes for (set on the class `sink_class_for` makes)."""

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        """The SDK's arguments; `target` serves only the SDK (config, logging, STATE)."""
        super().__init__(target, stream_name, schema, key_properties)
        self.staged: list[Item] = []
        """Records read but not yet given an outcome, in input order (for STATE and stops)."""

    @override
    def get_validator(self) -> None:
        """No SDK schema validation; `validate.py` reports problems per record.

        The registry-based check names stream, externalId and field and ends one
        record as `invalid` instead of ending the run.
        """
        return

    @override
    def _validate_and_parse(self, record: dict[str, Any]) -> dict[str, Any]:
        """Keep values exactly as sent (no datetime parsing that could end the run)."""
        return record

    @override
    def _singer_validate_message(self, record: dict[str, Any]) -> None:
        """A record without its key (externalId) is reported `invalid`, not fatal."""

    @override
    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Stage the record with its input line number."""
        item = Item(copy.deepcopy(record), self.run.current_line)
        context.setdefault("records", []).append(item)
        self.staged.append(item)

    @property
    def first_open_line(self) -> int | None:
        """Input line of the earliest staged record without an outcome."""
        for item in self.staged:
            if not item.done:
                return item.line or 0
        return None

    @override
    def process_batch(self, context: dict[str, Any]) -> None:
        """Upsert the batch; stop the run at once after a 401/403 or an unexpected error."""
        items: list[Item] = context.get("records", [])
        run = self.run
        try:
            self.run_items(items)
        except Exception as exc:  # not the input line's fault: never reported as one
            run.fail(exc)
        self.tally_record_written(sum(1 for item in items if item.done))
        halt = run.halt
        if halt is not None and halt.fatal:
            run.stop_now()

    def abandon(self) -> None:
        """Give every staged record `not attempted` (the run is stopping; halt is set)."""
        pending = [item for item in self.staged if not item.done]
        if pending:
            upserter = self.run.runtime.upserter
            upserter.run_batch(SUPPORTED_STREAMS[self.stream_name], pending)
        self.staged = []

    def run_items(self, items: list[Item]) -> None:
        """Hand records to the upserter; every one ends with an outcome, whatever happens.

        An unexpected exception is a bug, not a property of the data: it halts the run
        (exit 1) and the records without an outcome are dead-lettered as not attempted.
        """
        run = self.run
        upserter = run.runtime_for_writes().upserter
        entity = SUPPORTED_STREAMS[self.stream_name]
        try:
            upserter.run_batch(entity, run.drop_stale(self.stream_name, items))
        except LedgerUnavailable as exc:  # the shared state's database: stop, exit 75
            upserter.stop_for(exc)
            upserter.run_batch(entity, items)
        except Exception as exc:
            run.internal_error(exc)
            upserter.run_batch(entity, items)
        finally:
            self.staged = [item for item in self.staged if not item.done]
        try:
            run.versions.flush()
        except LedgerUnavailable as exc:
            upserter.stop_for(exc)


def sink_class_for(run: RunContext) -> type[PrecoroSink]:
    """`PrecoroSink` bound to one run.

    The SDK constructs each sink itself (`Target.add_sink`) with only its own four
    arguments; returning this class from `get_sink_class` hands every sink the run's
    context without the sink reaching back into the target.
    """
    return type("PrecoroSink", (PrecoroSink,), {"run": run, "__doc__": PrecoroSink.__doc__})
