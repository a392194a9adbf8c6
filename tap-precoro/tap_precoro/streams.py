"""Streams generated from the entity registry.

Requests go through the shared `PrecoroClient` (the governor, ledger, 429 and retry
handling the target uses too) rather than the SDK's RESTStream loop, because the
tap checkpoints after every page and the RESTStream pagination loop never says when
a page's records have all been emitted.
"""

from __future__ import annotations

import abc
import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from precoro_client.client import Page
from precoro_client.errors import BudgetExhausted, NotFound
from precoro_client.registry import Entity
from precoro_client.registry import get as get_entity
from precoro_client.schemas import record_schema
from singer_sdk import Stream
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_precoro.batches import checkpointed_batches
from tap_precoro.bookmarks import (
    RECENT_LIMIT,
    WEBHOOK_RECENT_LIMIT,
    IncrementalState,
    Pass,
    ReferenceState,
    content_hash,
    modified_since_param,
    newest,
    parse_timestamp,
    query_fingerprint,
    to_state_timestamp,
    whole_seconds,
)
from tap_precoro.list_order import ListOrder
from tap_precoro.outlook import (
    Outlook,
    count_page_size,
    count_rows,
    left_after_page,
    pagination_total,
    worth_counting,
)
from tap_precoro.sweep import DeliveredRecord, Sketch, created_within, sweep_counts
from tap_precoro.webhook_sync import webhook_records

if TYPE_CHECKING:
    from tap_precoro.tap import TapPrecoro

Params = list[tuple[str, str]]

PARTITION_KEY = "customFieldId"
"""Context key of option partitions; also a field of option records, so the SDK's
habit of copying context keys into records adds nothing to them."""


class PrecoroStream(Stream):
    """One Precoro list endpoint, read page by page with a checkpoint after each."""

    primary_keys = ("id",)
    entity: Entity

    def __init__(self, tap: TapPrecoro, entity: Entity) -> None:
        """Build the stream's name and schema from its registry entry."""
        self.entity = entity
        self.precoro_tap = tap
        include_detail = entity.document and bool(tap.config.get("fetch_details", True))
        super().__init__(
            tap=tap,
            name=entity.name,
            schema=record_schema(entity, include_detail=include_detail),
        )
        self.selected_by_default = entity.storage is None
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
        return int(self.config.get("page_size", 200))

    def base_params(self, context: Context | None) -> Params:
        """Filters sent on every list call of this stream (not the page or the bookmark)."""
        del context
        params: Params = list(self.entity.base_params)
        filters = {f.param for f in self.entity.filters}
        statuses = (self.config.get("status_filters") or {}).get(self.name)
        if statuses and "status[]" in filters:
            params.extend(("status[]", str(code)) for code in statuses)
        if not self.config.get("include_disabled", True) and "enable" in filters:
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
        pages = self.precoro_tap.client.iter_pages(
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
        if key is None or not self.config.get("fetch_details", True):
            return dict(row)
        try:
            detail = self.precoro_tap.client.get_json(self.entity.detail_path(key), [])
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
        writer = self.precoro_tap.batch_state_writer
        return checkpointed_batches(self, writer, batch_config, context)

    def _increment_stream_state(self, latest_record: Any, *, context: Any = None) -> None:
        """Bookmarks are moved per pass by `bookmarks`, never from record values.

        The SDK's default would bookmark the greatest updateDate seen, which loses
        records when Precoro's list order is not by updateDate.
        """
        del latest_record, context

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Read the stream unless the run already ran out of budget."""
        if self.precoro_tap.budget_stop is not None:
            return
        try:
            yield from self.read_records(context)
        except BudgetExhausted as exc:
            self.precoro_tap.stop_for_budget(self, exc)
            self.checkpoint()
            return
        self.finished = True

    def log_sync_costs(self) -> None:
        """Also close the run when the SDK reaches the last stream (see `finish_run`)."""
        super().log_sync_costs()
        if list(self.precoro_tap.streams)[-1] == self.name:
            self.precoro_tap.finish_run()

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
                self.precoro_tap.time_for(left.calls or 0),
            )

    def _count_query(self, page: Page, rows: int, *, details: bool) -> int | None:
        """The current list query's rows, counted (`outlook.count_rows`) when it matters."""
        if self._list_query is None:
            return None
        path, params = self._list_query
        key = repr((path, params))
        if self._counted is not None and self._counted[0] == key:
            return self._counted[1]
        client = self.precoro_tap.client
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
            self.precoro_tap.webhook_inbox is not None
            and self.entity.webhook_type is not None
            and self.entity.parent is None
        )

    def fetch_current(self, entity_id: int, idn: str | None) -> dict[str, Any] | None:
        """Current state of one entity a webhook named (None if it is gone).

        Fetched at most once per run across streams (invoices and credit notes share
        a webhook type), shaped like the polled record.
        """
        cache = self.precoro_tap.webhook_fetches
        key = (self.entity.collection, entity_id)
        if key not in cache:
            cache[key] = self._fetch_current(entity_id, idn)
        record = cache[key]
        return dict(record) if record is not None else None

    def _fetch_current(self, entity_id: int, idn: str | None) -> dict[str, Any] | None:
        client = self.precoro_tap.client
        details = self.entity.document and bool(self.config.get("fetch_details", True))
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
        timezone = str(self.config.get("api_timezone", "UTC"))
        params = [
            *self.entity.base_params,
            ("modifiedSince", modified_since_param(since, timezone)),
        ]
        details = self.entity.document and bool(self.config.get("fetch_details", True))
        found: dict[int, dict[str, Any] | None] = {}
        for row in self.precoro_tap.client.iter_records(
            self.entity.list_path(), params, self.page_size
        ):
            key = row.get("id") if isinstance(row, dict) else None
            if not isinstance(key, int) or key not in wanted or key in found:
                continue
            if not self.matches_filters(row, context):
                found[key] = None
                continue
            cache = self.precoro_tap.webhook_fetches
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

    def first_emission(self, record: Mapping[str, Any]) -> bool:
        """True the first time this run sees a record id (each record once per run)."""
        record_id = str(record.get("id"))
        if record_id in self._emitted:
            return False
        self._emitted.add(record_id)
        self._emitted_versions[record_id] = str(record.get("updateDate"))
        return True

    def emitted_version(self, record_id: str) -> str | None:
        """The `updateDate` this run first emitted the record with (None: not emitted)."""
        return self._emitted_versions.get(record_id)


class IncrementalStream(PrecoroStream):
    """A stream Precoro filters by `modifiedSince`; replication key `updateDate`."""

    replication_key = "updateDate"
    is_sorted = False

    def __init__(self, tap: TapPrecoro, entity: Entity) -> None:
        """Also start the run's memory of delivered versions (see `refresh`)."""
        super().__init__(tap, entity)
        self._run_versions: dict[str, str] = {}
        """Every version this run delivered that a next pass lists again: the state
        keeps only `RECENT_LIMIT` of them, the closing pass uses them all."""
        self._closing = False

    def start_bookmark(self, tracker: IncrementalState) -> datetime | None:
        """Committed bookmark, else the stream's own start date, else `start_date`."""
        if tracker.bookmark is not None:
            return tracker.bookmark
        return self.configured_start()

    def configured_start(self) -> datetime | None:
        """The stream's own start date, else `start_date`, else None (everything)."""
        overrides = self.config.get("stream_start_dates") or {}
        start = overrides.get(self.name) or self.config.get("start_date")
        return parse_timestamp(start) if start else None

    def restart_if_ahead(self, tracker: IncrementalState, lookback: timedelta) -> bool:
        """Replace a bookmark later than the server's clock; True if one was replaced.

        The server's `Date` (from any response of this run) is the only clock that
        counts. The stream then re-reads from its configured start: the one restart
        point that cannot skip a change made between the last real sync and now (a
        configured start that is itself ahead becomes the server's now minus the
        look-back).
        """
        server = self.precoro_tap.client.last_server_date
        ahead = tracker.ahead_of(server) if server is not None else None
        if server is None or ahead is None:
            return False
        start = self.configured_start()
        if start is not None and start > server:
            start = server - lookback
        self.logger.warning(
            "%s: the bookmark %s is later than the server's clock (%s); re-reading from %s",
            self.name,
            to_state_timestamp(ahead),
            to_state_timestamp(server),
            to_state_timestamp(start) if start else "the beginning",
        )
        tracker.restart_from(start)
        return True

    def note_delivered(self, record: Mapping[str, Any], context: Context | None) -> None:
        """Add (id, updateDate) to `recent`: the next pass skips that exact version."""
        state = self.get_context_state(context)
        recent = dict(state.get("recent") or {})
        recent.pop(str(record.get("id")), None)
        recent[str(record.get("id"))] = str(record.get("updateDate"))
        state["recent"] = newest(recent, WEBHOOK_RECENT_LIMIT)

    def refresh(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Run (or resume) one pass over everything changed since the bookmark.

        A completeness sweep left due by the previous pass runs first (`sweep`).
        """
        state = self.get_context_state(context)
        base = self.base_params(context)
        filtered = base != list(self.entity.base_params)
        if not isinstance(state.get("sweep"), Mapping) and not filtered:
            self.arm_periodic_sweep(state)
        if isinstance(state.get("sweep"), Mapping):
            yield from self.sweep(context)
        tracker = IncrementalState(state, "updateDate")
        lookback = timedelta(minutes=float(self.config.get("lookback_minutes", 5)))
        self.restart_if_ahead(tracker, lookback)  # when an earlier response gave the time
        path = self.list_path(context)
        query = query_fingerprint(path, base, self.page_size)
        progress = tracker.current_pass()
        if progress is None or progress.query != query:
            since = self.start_bookmark(tracker)
            progress = Pass(
                since=to_state_timestamp(since) if since else None,
                started_at=None,
                next_page=1,
                query=query,
            )
        else:
            self.logger.info("%s: resuming at page %d", self.name, progress.next_page)
        delivered = {**tracker.recent, **self._run_versions}
        closing = self._closing
        fetch = self.entity.document and bool(self.config.get("fetch_details", True))
        read: dict[str, str] = {}
        sketch = Sketch.from_state(progress.sketch)
        history = DeliveredRecord.from_state(state.get("delivered"))
        created = Sketch.from_state(progress.created)
        track_created = not filtered  # the delivered record is for unfiltered streams

        def save() -> None:
            progress.sketch = sketch.to_state()
            progress.created = created.to_state()
            tracker.save_pass(progress)
            self.checkpoint()

        for page, rows in self.pages_of(path, base, progress, save, filtered=filtered):
            self.note_page(page, len(rows), details=fetch)
            if progress.started_at is None:
                server_time = self.precoro_tap.client.last_server_date
                progress.started_at = self.pass_start_time(server_time)
            if self.restart_if_ahead(tracker, lookback):  # the first response of the run
                yield from self.refresh(context)
                return
            already = set(progress.page_emitted)
            for index, row in enumerate(rows):
                self._left_on_page = len(rows) - index
                row_id = str(row.get("id"))
                updated = str(row.get("updateDate"))
                if row_id in progress.awaiting:
                    progress.awaiting.remove(row_id)
                if row_id in already:
                    continue
                if row_id in read and read[row_id] != updated and progress.cursor is None:
                    # A newer version later in the same pass: the row moved behind the
                    # page-number cursor, so a row at a page boundary may be skipped.
                    progress.suspect = True
                if delivered.get(row_id) == updated:
                    # Already delivered (by an earlier pass or a webhook): keep it known
                    # while the next pass still lists it, so it is not sent again then.
                    if self.next_pass_lists(updated, progress, lookback):
                        progress.recent[row_id] = updated
                    continue
                if not self.first_emission(row) and (
                    not closing or self.emitted_version(row_id) == updated
                ):
                    continue  # (the closing pass sends a version changed since)
                record = self.fetch_detail(row) if fetch else dict(row)
                version = str(record.get("updateDate", updated))
                if self.next_pass_lists(version, progress, lookback):
                    progress.recent[row_id] = version
                yield record
                if fetch:
                    progress.page_emitted.append(row_id)
                    save()
            self._left_on_page = 0
            for row in rows:
                row_id = str(row.get("id"))
                if row_id not in read:
                    if sweep_counts(row, progress.since, progress.started_at):
                        sketch.toggle(int(row_id))
                    if track_created and created_within(
                        row, history.created_until, progress.started_at
                    ):
                        created.toggle(int(row_id))
                read[row_id] = str(row.get("updateDate"))
        if progress.awaiting:
            # The row the value cursor stood on never came back: the cursor jumped.
            progress.suspect = True
        tracker.complete_pass(progress, lookback)
        if not filtered and progress.started_at is not None:
            state["delivered"] = history.after_pass(
                created, progress.started_at, full=progress.since is None
            ).to_state()
        if progress.suspect:
            state["sweep"] = {
                "since": progress.since,
                "started_at": progress.started_at,
                "sketch": sketch.to_state(),
            }
            self.logger.warning(
                "%s: rows may have left the result or moved while it was paged; "
                "the next run sweeps this pass's window for skipped rows",
                self.name,
            )
        self.checkpoint()
        self._run_versions.update(progress.recent)
        if (
            tracker.overflow
            and not closing
            and self.closing_pass_settles(progress, lookback, tracker.overflow, details=fetch)
        ):
            # More versions to remember than a STATE carries: list the window again
            # now, while this run still knows them all. The look-back has passed for
            # most of them, so the new bookmark leaves them behind; the next run's
            # list read of the window is paid now instead.
            self.logger.info(
                "%s: %d delivered versions inside the look-back exceed what the state "
                "keeps; a closing pass settles them",
                self.name,
                tracker.overflow,
            )
            self._closing = True
            try:
                yield from self.refresh(context)
            finally:
                self._closing = False
        elif tracker.overflow:
            self.logger.info(
                "%s: %d delivered versions inside the look-back exceed what the state "
                "keeps; the next pass reads them again",
                self.name,
                tracker.overflow,
            )

    def closing_pass_settles(
        self, progress: Pass, lookback: timedelta, overflow: int, *, details: bool
    ) -> bool:
        """Whether a pass started now would remember few enough versions to keep them all.

        A pass started now re-lists only versions from `now - lookback`: worth it when
        this pass ran longer than the look-back (a bulk update of documents, read one
        call each). After a quicker pass it waits for the look-back to pass when that
        is quicker than the detail calls the next run would spend on the `overflow`
        versions instead (at `max_requests_per_second`, within `max_wait_seconds`);
        master data costs no call to re-send, so it never waits.
        """
        client = self.precoro_tap.client
        if client.last_server_date is None:
            return False
        latest = heapq.nlargest(RECENT_LIMIT + 1, progress.recent.values())
        if len(latest) <= RECENT_LIMIT:
            return True
        try:
            # A pass starting after this instant leaves all but RECENT_LIMIT behind:
            # its start is its first `Date` (truncated) less a second, and its
            # bookmark is floored to the second, so three seconds of margin.
            clear = parse_timestamp(latest[-1]) + lookback + timedelta(seconds=3)
        except ValueError:
            return False
        wait = (clear - client.server_now()).total_seconds()
        if wait <= 0:
            return True
        settings = client.settings
        saved_seconds = overflow / settings.max_requests_per_second if details else 0.0
        if wait >= saved_seconds or wait > settings.max_wait_seconds:
            return False
        self.logger.info(
            "%s: waiting %.0f s for the look-back to pass before the closing pass "
            "(instead of %d detail calls on the next run)",
            self.name,
            wait,
            overflow,
        )
        client.governor.sleep(wait)
        return True

    def arm_periodic_sweep(self, state: dict[str, Any]) -> None:
        """Leave the periodic sweep due when `completeness_sweep_hours` have passed."""
        hours = float(self.config.get("completeness_sweep_hours", 168))
        record = DeliveredRecord.from_state(state.get("delivered"))
        if hours <= 0 or record.created_until is None or record.swept_at is None:
            return
        if datetime.now(UTC) - parse_timestamp(record.swept_at) < timedelta(hours=hours):
            return
        state["sweep"] = {
            "kind": "periodic",
            "since": None,
            "created_from": record.created_from,
            "started_at": record.created_until,
            "sketch": record.sketch.to_state(),
        }

    def pages_of(
        self,
        path: str,
        base: Params,
        progress: Pass,
        save: Callable[[], None],
        *,
        filtered: bool,
        by_value: bool = True,
    ) -> Iterator[tuple[Page, list[dict[str, Any]]]]:
        """Yield (page, rows) of a pass, moving to each next page as `next_query` says.

        The caller handles a page's rows before asking for the next one; `save` then
        records the progress (a checkpoint). The sweep pages by number only
        (`by_value=False`): its value cursor would depend on `api_timezone` as well.
        """
        order = ListOrder.from_state(progress.order)
        while True:
            page = self.list_page(path, self.pass_params(base, progress), progress.next_page)
            rows = [row for row in page.records if isinstance(row, dict)]
            yield page, rows
            order.observe(rows)
            progress.order = order.to_state()
            progress.page_emitted = []
            if not page.has_next:
                return
            if by_value:
                self.next_query(progress, order, filtered=filtered)
            else:
                progress.next_page += 1
            save()

    def sweep(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """The completeness sweep that is due (see `tap_precoro.sweep`).

        Lists the window without the status/enable filters (applied to the rows
        instead), builds the sketch of the ids that should have been read, and emits
        the ones the saved sketch lacks, one call each. Resumable: the listing saves
        its progress per page, then the ids still to emit are saved before each one.
        """
        state = self.get_context_state(context)
        due = dict(state["sweep"])
        until = str(due.get("started_at") or "") or None
        periodic = due.get("kind") == "periodic"
        created_from = str(due["created_from"]) if due.get("created_from") else None
        calls = self.precoro_tap.client.call_count
        if not isinstance(due.get("missing"), list):
            found = self.sweep_listing(context, due)
            if found is None:
                return
            due = {key: value for key, value in due.items() if key != "progress"}
            due.update(found)
            state["sweep"] = due
            self.checkpoint()
        missing = [int(key) for key in due["missing"]]
        history = DeliveredRecord.from_state(state.get("delivered"))
        emitted: list[int] = []
        idns = {int(k): str(v) for k, v in (due.get("idns") or {}).items()}
        for key in list(missing):
            record = self.fetch_current(key, idns.get(key))
            changed = (
                record is not None
                and not periodic
                and until is not None
                and parse_timestamp(str(record.get("updateDate"))) >= parse_timestamp(until)
            )
            keep = record is not None and not changed and self.matches_filters(record, context)
            if record is not None and keep and self.first_emission(record):
                emitted.append(key)
                if created_within(record, history.created_from, history.created_until):
                    history.sketch.toggle(key)  # delivered now: the periodic sweep knows
                yield record
            missing.remove(key)
            state["sweep"] = {**due, "missing": list(missing)}
            if isinstance(state.get("delivered"), Mapping):
                state["delivered"] = history.to_state()
            self.checkpoint()
        state.pop("sweep", None)
        listed = Sketch.from_state(due.get("listed"))
        if periodic:  # the record now holds what the list holds
            state["delivered"] = DeliveredRecord(
                listed, created_from, until, to_state_timestamp(datetime.now(UTC))
            ).to_state()
        elif due.get("suspect"):
            # A row moved while the sweep paged, so the sweep may have skipped a row
            # too; only a row the pass had also skipped could stay missing. Sweeping
            # again would meet the same edits, so the periodic sweep is the net.
            self.logger.warning(
                "%s: rows moved while the sweep paged; a row skipped by both the pass and "
                "the sweep is left to the periodic sweep",
                self.name,
            )
        self.logger.info(
            "%s: completeness sweep: %d calls, %d skipped rows found and emitted",
            self.name,
            self.precoro_tap.client.call_count - calls,
            len(emitted),
        )
        self.checkpoint()

    def sweep_listing(
        self, context: Context | None, due: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """List the sweep's window; return the ids to emit (None: re-read as a pass)."""
        state = self.get_context_state(context)
        since = str(due["since"]) if due.get("since") else None
        until = str(due.get("started_at") or "") or None
        periodic = due.get("kind") == "periodic"
        created_from = str(due["created_from"]) if due.get("created_from") else None
        raw = due.get("progress")
        progress = (
            Pass.from_state(raw)
            if isinstance(raw, Mapping)
            else Pass(since=since, started_at=until, next_page=1, query="sweep")
        )
        listed = Sketch.from_state(progress.sketch)
        versions: dict[int, tuple[str | None, str]] = {}
        seen: dict[int, str] = {}

        def save() -> None:
            progress.sketch = listed.to_state()
            state["sweep"] = {**due, "progress": progress.to_state()}
            self.checkpoint()

        def counts(row: Mapping[str, Any]) -> bool:
            if periodic:
                return created_within(row, created_from, until)
            return sweep_counts(row, since, until)

        base = list(self.entity.base_params)
        for _page, rows in self.pages_of(
            self.list_path(context), base, progress, save, filtered=False, by_value=False
        ):
            for row in rows:
                try:
                    row_id = int(row.get("id"))  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    continue
                updated = str(row.get("updateDate"))
                if row_id in seen:
                    if seen[row_id] != updated and progress.cursor is None:
                        progress.suspect = True
                    continue
                seen[row_id] = updated
                if self.matches_filters(row, context) and counts(row):
                    listed.toggle(row_id)
                    idn = row.get("idn")
                    versions[row_id] = (str(idn) if idn is not None else None, updated)
        differing = Sketch.from_state(due.get("sketch")).difference(listed).peel()
        if differing is None:
            self.logger.warning(
                "%s: the sweep found more differences than it can name; re-reading the "
                "window from %s as a pass (records may be sent again, none is lost)",
                self.name,
                since or "the start",
            )
            for key in ("sweep", "pass"):
                state.pop(key, None)
            if since is not None:
                state["replication_key_value"] = since
            else:
                state.pop("replication_key_value", None)
            self.checkpoint()
            return None

        def missed(key: int) -> bool:
            if key not in versions:
                return key not in seen  # listed before a resume: look it up
            listed_version = versions[key][1]
            return (
                periodic
                or until is None
                or parse_timestamp(listed_version) < parse_timestamp(until)
            )  # else it changed since the pass: a later pass delivered it

        missing = sorted(key for key in differing if missed(key))
        return {
            "missing": missing,
            "idns": {str(k): versions[k][0] for k in missing if versions.get(k, (None,))[0]},
            "listed": listed.to_state(),
            "suspect": progress.suspect,
        }

    def pass_params(self, base: Params, progress: Pass) -> Params:
        """The pass's list query: its filters and `modifiedSince`.

        `modifiedSince` is the value cursor when the pass pages by value, else its `since`.
        """
        since = progress.cursor or progress.since
        if not since:
            return list(base)
        timezone = str(self.config.get("api_timezone", "UTC"))
        return [*base, ("modifiedSince", modified_since_param(parse_timestamp(since), timezone))]

    def next_query(self, progress: Pass, order: ListOrder, *, filtered: bool) -> None:
        """Move the pass to its next page in the way its list order cannot skip under.

        See `list_order`: under `updateDate` ascending the next query starts at the
        last row's `updateDate` (page 1), unless that value cannot move; otherwise the
        next page number, and a filtered query paged by number is suspect.
        """
        last = order.last_updated
        if order.by_updated_ascending and last is not None:
            current = progress.cursor or progress.since
            if current is None or parse_timestamp(last) > parse_timestamp(current):
                progress.cursor = last
                progress.next_page = 1
                if order.last_id is not None:
                    progress.awaiting.append(str(order.last_id))
                return
            # A whole page in the cursor's second: an edit there moves a row out of it.
            progress.suspect = True
        elif filtered or progress.cursor is not None:
            # Rows may leave a filtered result; or rows the value cursor passed over
            # refute `updateDate` ascending, so it may have jumped over rows.
            progress.suspect = True
        progress.next_page += 1

    def list_page(self, path: str, params: Params, number: int) -> Page:
        """One list call: page `number` of the query."""
        self._list_query = (path, params)
        pages = self.precoro_tap.client.iter_pages(path, params, self.page_size, start_page=number)
        return next(iter(pages))

    @staticmethod
    def next_pass_lists(version: str, progress: Pass, lookback: timedelta) -> bool:
        """Whether the next pass will list this version again (inside the look-back).

        Only those need remembering; keeping every record would make the state, which
        is written after every page, grow with the size of a first sync.
        """
        if progress.started_at is None:
            return True
        try:
            updated = parse_timestamp(version)
        except ValueError:
            return True
        return updated >= whole_seconds(parse_timestamp(progress.started_at) - lookback)


class ReferenceStream(PrecoroStream):
    """A stream Precoro cannot filter by date: re-read on a schedule, changes emitted."""

    def poll(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Refresh when due (`reference_refresh_hours`); else nothing, from the cache."""
        tracker = ReferenceState(self.get_context_state(context))
        hours = float(self.config.get("reference_refresh_hours", 24))
        if not tracker.is_due(datetime.now(UTC), timedelta(hours=hours)):
            self.logger.info("%s: cached, refreshed less than %g h ago", self.name, hours)
            return iter(())
        return self.refresh(context)

    def note_delivered(self, record: Mapping[str, Any], context: Context | None) -> None:
        """Store the record's content hash: the next refresh emits it only if it changed."""
        state = self.get_context_state(context)
        hashes = dict(state.get("hashes") or {})
        hashes[str(record.get("id"))] = content_hash(record)
        state["hashes"] = hashes

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
        self.precoro_tap.refreshed_ids[self.name] = [int(key) for key in seen]


class OptionsStream(ReferenceStream):
    """Options of each custom field, read per field (`/{fields}/{id}/options`).

    The field ids come from the custom-field stream when it refreshed in this run,
    else from the partitions this stream saved last time, else from one list call.
    """

    @property
    def partitions(self) -> list[dict[str, Any]] | None:
        """One partition (with its own state) per custom field."""
        parent = self.entity.parent or ""
        ids = self.precoro_tap.refreshed_ids.get(parent)
        if ids is None:
            known = super().partitions
            if known:
                return known
            if self.precoro_tap.budget_stop is not None:
                return []
            try:
                ids = [
                    int(row["id"])
                    for row in self.precoro_tap.client.iter_records(
                        get_entity(parent).list_path(), None, self.page_size
                    )
                ]
            except BudgetExhausted as exc:
                self.precoro_tap.stop_for_budget(self, exc)
                return []
            self.precoro_tap.refreshed_ids[parent] = ids
        return [{PARTITION_KEY: parent_id} for parent_id in ids]
