"""Streams Precoro cannot filter by date: re-read on a schedule, only changes emitted.

Each refresh lists the whole endpoint and compares every row's content hash with the
one saved in the state (`bookmarks.ReferenceState`). Custom-field options are read per
field, one partition each (`OptionsStream`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from precoro_client.errors import BudgetExhausted
from precoro_client.registry import get as get_entity
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_precoro.bookmarks import (
    Pass,
    ReferenceState,
    content_hash,
    query_fingerprint,
    to_state_timestamp,
)
from tap_precoro.streams.base import PARTITION_KEY, PrecoroStream


class ReferenceStream(PrecoroStream):
    """A stream Precoro cannot filter by date: re-read on a schedule, changes emitted."""

    @override
    def poll(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Refresh when due (`reference_refresh_hours`); else nothing, from the cache."""
        tracker = ReferenceState(self.get_context_state(context))
        hours = self.run.settings.reference_refresh_hours
        if not tracker.is_due(datetime.now(UTC), timedelta(hours=hours)):
            self.logger.info("%s: cached, refreshed less than %g h ago", self.name, hours)
            return iter(())
        return self.refresh(context)

    @override
    def note_delivered(self, record: Mapping[str, Any], context: Context | None) -> None:
        """Store the record's content hash: the next refresh emits it only if it changed."""
        state = self.get_context_state(context)
        hashes = dict(state.get("hashes") or {})
        hashes[str(record.get("id"))] = content_hash(record)
        state["hashes"] = hashes

    @override
    def refresh(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Re-read the whole list; emit only records whose content changed since last time."""
        tracker = ReferenceState(self.get_context_state(context))
        now = datetime.now(UTC)
        path = self.list_path(context)
        base = self.base_params(context)
        query = query_fingerprint(path, base, self.page_size)
        progress = tracker.current_pass()
        seen: dict[str, str]
        if progress is None or progress.query != query:
            progress = Pass(since=None, started_at=None, next_page=1, query=query)
            seen = {}
        else:
            seen = tracker.pass_hashes()
        progress.started_at = progress.started_at or to_state_timestamp(now)
        previous = tracker.hashes
        for page, rows in self.read_pages(path, base, progress):
            for row in rows:
                row_id = str(row.get("id"))
                digest = content_hash(row)
                seen[row_id] = digest
                if previous.get(row_id) != digest and self.first_emission(row):
                    yield dict(row)
            progress.next_page = page + 1
            tracker.save_pass(progress, seen)
            self.checkpoint()
        tracker.complete_pass(progress, seen)
        self.checkpoint()
        self.on_refreshed(seen)

    def on_refreshed(self, seen: Mapping[str, str]) -> None:
        """Publish the ids this refresh saw (the option streams page per custom field)."""
        self.run.refreshed_ids[self.name] = [int(key) for key in seen]


class OptionsStream(ReferenceStream):
    """Options of each custom field, read per field (`/{fields}/{id}/options`).

    One partition (with its own state) per custom field. The field ids come from the
    custom-field stream when it refreshed in this run, else from the partitions this
    stream saved last time, else from reading the custom-field list now.
    """

    @property
    @override
    def partitions(self) -> list[dict[str, Any]] | None:
        """The SDK's hook: `field_partitions()`, which may make list calls (HTTP)."""
        return self.field_partitions()

    def field_partitions(self) -> list[dict[str, Any]]:
        """One partition per custom field; reads the field list if no run or state knows it.

        The read (`RunContext.list_field_ids`, one call per page of fields) happens
        at most once per run: its ids are kept in `RunContext.refreshed_ids`.
        """
        parent = self.entity.parent or ""
        ids = self.run.refreshed_ids.get(parent)
        if ids is None:
            known = super().partitions
            if known:
                return known
            if self.run.budget_stop is not None:
                return []
            try:
                ids = self.run.list_field_ids(get_entity(parent).list_path(), self.page_size)
            except BudgetExhausted as exc:
                self.run.stop_for_budget(self.name, exc)
                return []
            self.run.refreshed_ids[parent] = ids
        return [{PARTITION_KEY: parent_id} for parent_id in ids]
