"""The common part of every stream: one Precoro list endpoint, read page by page.

Requests go through the run's one `PrecoroClient` (the governor, ledger, 429 and retry
handling the target uses too) rather than the SDK's RESTStream loop, because the
tap checkpoints after every page and the RESTStream pagination loop never says when
a page's records have all been emitted.

Everything a run shares (the client, the budget stop, the caches, the webhook inbox)
comes from the `RunContext` the tap hands to each stream; a stream never reaches back
into the tap object.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from precoro_client.client import Page
from precoro_client.errors import BudgetExhausted, NotFound
from precoro_client.registry import PARENT_ID_FIELD, Entity
from precoro_client.schemas import record_schema
from singer_sdk import Stream, Tap
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_precoro.batches import checkpointed_batches
from tap_precoro.bookmarks import (
    Pass,
    modified_since_param,
    parse_timestamp,
    to_state_timestamp,
)
from tap_precoro.outlook import (
    Outlook,
    count_page_size,
    count_rows,
    left_after_page,
    pagination_total,
    worth_counting,
)
from tap_precoro.run_context import RunContext
from tap_precoro.streams.webhook_mode import webhook_records

if TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig

Params = list[tuple[str, str]]

PARTITION_KEY = PARENT_ID_FIELD
"""Context key of option partitions: the option records' own field naming their custom
field, so the SDK's habit of copying context keys into records adds nothing to them."""


class PrecoroStream(Stream):
    """One Precoro list endpoint, read page by page with a checkpoint after each."""

    primary_keys = ("id",)
    entity: Entity

    def __init__(self, tap: Tap, entity: Entity, run: RunContext) -> None:
        """Build the stream's name and schema from its registry entry.

        `tap` is only the SDK's (config, state, logging); `run` is what the run shares.
        """
        self.entity = entity
        self.run = run
        include_detail = entity.fetch_detail and run.settings.fetch_details
        super().__init__(
            tap=tap,
            name=entity.name,
            schema=record_schema(entity, include_detail=include_detail),
        )
        self.selected_by_default = entity.view_of is None
        self._emitted: set[str] = set()
        self._emitted_versions: dict[str, str] = {}
        self.finished = False
        self._page_seen: tuple[int | None, int, bool] | None = None
        """(query total, page number, details) of the last list page of a pass."""
        self._left_on_page = 0
        self._list_query: tuple[str, Params] | None = None
        """(path, params) of the last list page read, for `count_rows`."""
        self._counted: tuple[str, int] | None = None
        """(query, rows) once `count_rows` counted a query without a total."""

    # --- query --------------------------------------------------------------------------

    @property
    def page_size(self) -> int:
        """Rows per list call (Precoro accepts 10, 20, 50, 100 or 200)."""
        return self.run.settings.page_size

    def base_params(self, context: Context | None) -> Params:
        """Filters sent on every list call of this stream (not the page or the bookmark)."""
        del context
        params: Params = list(self.entity.base_params)
        filters = {f.param for f in self.entity.filters}
        statuses = self.run.settings.status_filters.get(self.name)
        if statuses and "status[]" in filters:
            params.extend(("status[]", str(code)) for code in statuses)
        if not self.run.settings.include_disabled and "enable" in filters:
            params.append(("enable", "1"))
        return params

    def list_path(self, context: Context | None) -> str:
        """Path of the list endpoint (nested entities take their parent from context)."""
        parent_id = context.get(PARTITION_KEY) if context else None
        return str(self.entity.list_path(parent_id))

    # --- paging -------------------------------------------------------------------------

    def read_pages(
        self, path: str, params: Params, progress: Pass
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """Yield (page number, rows) from `progress.next_page` to the last page."""
        pages = self.run.client.iter_pages(
            path, params, self.page_size, start_page=progress.next_page
        )
        for page in pages:
            yield page.number, [row for row in page.records if isinstance(row, dict)]

    def pass_start_time(self, server_time: datetime | None) -> str | None:
        """Start of a pass as the server saw it (one second earlier: `Date` truncates)."""
        if server_time is None:
            return None
        return to_state_timestamp(server_time - timedelta(seconds=1))

    def fetch_detail(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Full document (lines, taxes, ...) merged over its list row."""
        key = row.get(self.entity.key)
        if key is None or not self.run.settings.fetch_details:
            return dict(row)
        try:
            detail = self.run.client.get_json(self.entity.detail_path(key), [])
        except NotFound:
            self.logger.warning(
                "%s %s=%s vanished between list and detail; emitting the list row",
                self.name,
                self.entity.key,
                key,
            )
            return dict(row)
        return {**row, **detail}

    def checkpoint(self) -> None:
        """Emit a STATE message now (the page's records are already written).

        In batch mode it is held until the BATCH message of those records (`batches`).
        """
        self.state_manager.is_flushed = False
        self._write_state_message()

    # --- SDK hooks ----------------------------------------------------------------------

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Batch files, each followed by the last STATE its records allow (`batches`)."""
        return checkpointed_batches(self, self.run.state_writer, batch_config, context)

    @override
    def _increment_stream_state(self, latest_record: Any, *, context: Any = None) -> None:
        """Bookmarks are moved per pass by `bookmarks`, never from record values.

        The SDK's default would bookmark the greatest updateDate seen, which loses
        records when Precoro's list order is not by updateDate.
        """
        del latest_record, context

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Read the stream unless the run already ran out of budget."""
        if self.run.budget_stop is not None:
            return
        try:
            yield from self.read_records(context)
        except BudgetExhausted as exc:
            self.run.stop_for_budget(self.name, exc)
            self.checkpoint()
            return
        self.finished = True

    def note_page(self, page: Page, rows: int, *, details: bool) -> None:
        """Remember where the pass is, for the estimate (`outlook`); log its progress."""
        total = pagination_total(page.body, self.page_size)
        if total is None and not page.has_next:  # the last page: the query's rows are known
            total = (page.number - 1) * self.page_size + rows
        elif total is None:
            total = self._count_query(page, rows, details=details)
        self._page_seen = (total, page.number, details)
        self._left_on_page = rows
        if total is not None and page.has_next:
            left = self.outlook()
            self.logger.info(
                "%s: page %d of ~%d; ~%s rows and ~%s calls still to read (%s)",
                self.name,
                page.number,
                math.ceil(total / self.page_size),
                left.rows,
                left.calls,
                self.run.time_for(left.calls or 0),
            )

    def _count_query(self, page: Page, rows: int, *, details: bool) -> int | None:
        """The current list query's rows, counted (`outlook.count_rows`) when it matters."""
        if self._list_query is None:
            return None
        path, params = self._list_query
        key = repr((path, params))
        if self._counted is not None and self._counted[0] == key:
            return self._counted[1]
        client = self.run.client
        try:
            left_today = client.governor.remaining_today()
            if not worth_counting(left_today, self.page_size, details=details):
                return None
            per_page = count_page_size(self.page_size)

            def rows_on(number: int) -> int:
                listed = client.iter_pages(path, params, per_page, start_page=number)
                return len(next(iter(listed)).records)

            at_least = (page.number - 1) * self.page_size + rows
            total = count_rows(rows_on, per_page, at_least)
        except BudgetExhausted:
            return None  # the next call stops the stream the usual way
        if total is not None:
            self._counted = (key, total)
            self.logger.info("%s: %d rows to read in this pass (counted)", self.name, total)
        return total

    def outlook(self) -> Outlook:
        """Rows and calls this stream still has to read in its current pass."""
        if self.finished:
            return Outlook.done()
        if self._page_seen is None:
            return Outlook(None, None)
        total, number, details = self._page_seen
        return left_after_page(total, number, self.page_size, self._left_on_page, details=details)

    @property
    def emitted_count(self) -> int:
        """Records emitted by this run."""
        return len(self._emitted)

    def read_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Drain webhooks for entities that have them when `webhook_inbox` is set; else poll."""
        if self.webhook_mode:
            return webhook_records(self, context)
        return self.poll(context)

    def poll(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """One scheduled read in polling mode (a pass, when one is due)."""
        return self.refresh(context)

    @abc.abstractmethod
    def refresh(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """One full pass over the list endpoint (stream-kind specific)."""

    # --- webhook mode ---------------------------------------------------------------------

    @property
    def webhook_mode(self) -> bool:
        """True when this stream drains the webhook inbox instead of polling."""
        return (
            self.run.webhook_inbox is not None
            and self.entity.webhook_type is not None
            and self.entity.parent is None
        )

    def fetch_current(self, entity_id: int, idn: str | None) -> dict[str, Any] | None:
        """Current state of one entity a webhook named (None if it is gone).

        Fetched at most once per run across streams (invoices and credit notes share
        a webhook type), shaped like the polled record.
        """
        cache = self.run.webhook_fetches
        key = (self.entity.collection, entity_id)
        if key not in cache:
            cache[key] = self._fetch_current(entity_id, idn)
        record = cache[key]
        return dict(record) if record is not None else None

    def _fetch_current(self, entity_id: int, idn: str | None) -> dict[str, Any] | None:
        client = self.run.client
        details = self.entity.fetch_detail and self.run.settings.fetch_details
        if details and idn:  # one detail call: the document with its lines
            try:
                body = client.get_json(self.entity.detail_path(quote(idn, safe="")), [])
            except NotFound:
                return None
            return body if isinstance(body, dict) and body.get("id") == entity_id else None
        # Master data (and documents without an idn): the list filtered by id, one call,
        # which returns exactly the polled row.
        body = client.get_json(self.entity.list_path(), [("id", str(entity_id))])
        rows = body.get("data") if isinstance(body, dict) else body
        row = next(
            (r for r in rows or [] if isinstance(r, dict) and r.get("id") == entity_id), None
        )
        if row is None or not details:
            return row
        return self.fetch_detail(row)

    def list_current(
        self, wanted: set[int], since: datetime, context: Context | None
    ) -> dict[int, dict[str, Any] | None]:
        """The wanted entities listed since `since`, shaped like polled records.

        Unfiltered list (the stream's filters are applied to the rows, so a row
        filtered out is known as such: None, and costs no detail call). Paging stops
        once every wanted entity was listed.
        """
        timezone = self.run.settings.api_timezone
        params = [
            *self.entity.base_params,
            ("modifiedSince", modified_since_param(since, timezone)),
        ]
        details = self.entity.fetch_detail and self.run.settings.fetch_details
        found: dict[int, dict[str, Any] | None] = {}
        for row in self.run.client.iter_records(self.entity.list_path(), params, self.page_size):
            key = row.get("id") if isinstance(row, dict) else None
            if not isinstance(key, int) or key not in wanted or key in found:
                continue
            if not self.matches_filters(row, context):
                found[key] = None
                continue
            cache = self.run.webhook_fetches
            cached = cache.get((self.entity.collection, key))
            record = dict(cached) if cached else (self.fetch_detail(row) if details else dict(row))
            cache[(self.entity.collection, key)] = record
            found[key] = record
            if len(found) == len(wanted):
                break  # every notified entity is in hand: later pages are not needed
        return found

    def matches_filters(self, record: Mapping[str, Any], context: Context | None) -> bool:
        """Whether the record passes this stream's own list filters (status, logicType...).

        A polled stream gets these from Precoro; a webhook names any entity of the type.
        """
        wanted: dict[str, set[str]] = {}
        for param, value in self.base_params(context):
            wanted.setdefault(param, set()).add(str(value))
        for flt in self.entity.filters:
            values = wanted.get(flt.param)
            if values is None:
                continue
            actual = record.get(flt.field)
            if flt.op == "in" and str(actual) not in values:
                return False
            if flt.op == "bool" and bool(actual) != (values & {"1", "true"} != set()):
                return False
        return True

    def note_delivered(self, record: Mapping[str, Any], context: Context | None) -> None:
        """Remember a webhook-delivered version so the reconcile poll does not re-send it."""
        del record, context

    def hold_delivered_versions(self) -> None:
        """At the run's start: move what only the run's last STATE needs into memory."""

    def release_delivered_versions(self) -> bool:
        """At the run's end: put it back into the state; True if the state changed."""
        return False

    def first_emission(self, record: Mapping[str, Any]) -> bool:
        """True the first time this run sees a record id (each record once per run)."""
        record_id = str(record.get("id"))
        if record_id in self._emitted:
            return False
        self._emitted.add(record_id)
        self._emitted_versions[record_id] = str(record.get("updateDate"))
        return True

    def emitted_since(self, record_id: str, version: str) -> bool:
        """Whether this run already emitted the record at `version` or a later one.

        A closing pass re-sends only versions newer than what the run sent: a row it
        lists twice (rows shifted while it paged) is sent once.
        """
        emitted = self._emitted_versions.get(record_id)
        if emitted is None:
            return False
        try:
            return parse_timestamp(emitted) >= parse_timestamp(version)
        except ValueError:
            return emitted == version

    def note_emitted_version(self, record_id: str, version: str) -> None:
        """Remember the version a record was emitted with (its detail may be newer)."""
        self._emitted_versions[record_id] = version
