"""Streams Precoro filters by `modifiedSince`: resumable passes over what changed.

A pass lists everything changed since the bookmark, page by page, with a checkpoint
after each page (and after each detail call); how it moves from page to page so that
an edit made while it pages cannot hide a row is in `list_order`; what the state keeps
is in `bookmarks`; the completeness sweep it may leave due is in `streams.sweeping`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from precoro_client.client import Page
from precoro_client.registry import Entity
from singer_sdk import Tap
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_precoro.bookmarks import (
    RECENT_LIMIT,
    WEBHOOK_RECENT_LIMIT,
    IncrementalState,
    Pass,
    modified_since_param,
    newest,
    parse_timestamp,
    query_fingerprint,
    to_state_timestamp,
    whole_seconds,
)
from tap_precoro.list_order import ListOrder
from tap_precoro.run_context import RunContext
from tap_precoro.streams.base import Params, PrecoroStream
from tap_precoro.streams.sweeping import run_sweep
from tap_precoro.sweep import DeliveredRecord, Sketch, created_within, sweep_counts


class IncrementalStream(PrecoroStream):
    """A stream Precoro filters by `modifiedSince`; replication key `updateDate`."""

    replication_key = "updateDate"
    is_sorted = False

    def __init__(self, tap: Tap, entity: Entity, run: RunContext) -> None:
        """Also start the run's memory of delivered versions (see `refresh`)."""
        super().__init__(tap, entity, run)
        self._run_versions: dict[str, str] = {}
        """Every version this run delivered that a next pass lists again: the state
        keeps only `RECENT_LIMIT` of them, the closing pass uses them all."""
        self._held: dict[str, str] = {}
        """Webhook-delivered versions for the next reconcile poll (at most
        `WEBHOOK_RECENT_LIMIT`): held here during the run, so that every STATE written
        meanwhile carries only `RECENT_LIMIT` of them; the run's last STATE carries
        them all (`hold_delivered_versions`)."""
        self._closing = False

    def start_bookmark(self, tracker: IncrementalState) -> datetime | None:
        """Committed bookmark, else the stream's own start date, else `start_date`."""
        if tracker.bookmark is not None:
            return tracker.bookmark
        return self.configured_start()

    def configured_start(self) -> datetime | None:
        """The stream's own start date, else `start_date`, else None (everything)."""
        settings = self.run.settings
        start = settings.stream_start_dates.get(self.name) or settings.start_date
        return parse_timestamp(start) if start else None

    def restart_if_ahead(self, tracker: IncrementalState, lookback: timedelta) -> bool:
        """Replace a bookmark later than the server's clock; True if one was replaced.

        The server's `Date` (from any response of this run) is the only clock that
        counts. The stream then re-reads from its configured start: the one restart
        point that cannot skip a change made between the last real sync and now (a
        configured start that is itself ahead becomes the server's now minus the
        look-back).
        """
        server = self.run.client.last_server_date
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

    @override
    def note_delivered(self, record: Mapping[str, Any], context: Context | None) -> None:
        """Add (id, updateDate) to `recent`: the next pass skips that exact version.

        The STATE written now carries the newest `RECENT_LIMIT`; the rest is held
        until the run's end (`release_delivered_versions`), so a drain's STATE does not
        grow with the inbox.
        """
        state = self.get_context_state(context)
        recent = {**self._held, **dict(state.get("recent") or {})}
        recent.pop(str(record.get("id")), None)
        recent[str(record.get("id"))] = str(record.get("updateDate"))
        self._held = newest(recent, WEBHOOK_RECENT_LIMIT)
        state["recent"] = newest(self._held)

    @override
    def hold_delivered_versions(self) -> None:
        """At the run's start: keep a long `recent` in memory, the STATE its newest part.

        Only a webhook drain leaves more than `RECENT_LIMIT` versions (for the next
        reconcile poll, which skips them); carried by every STATE of the run, they
        would cost their size once per checkpoint.
        """
        saved = self.tap_state.get("bookmarks", {}).get(self.name)
        if not isinstance(saved, dict):
            return
        recent = saved.get("recent")
        if isinstance(recent, Mapping) and len(recent) > RECENT_LIMIT:
            self._held = {str(key): str(value) for key, value in recent.items()}
            saved["recent"] = newest(self._held)

    @override
    def release_delivered_versions(self) -> bool:
        """At the run's end: `recent` holds the held versions again; True if it changed.

        If the run dies before, the state keeps the newest `RECENT_LIMIT` only: the
        next reconcile poll then reads the others again (calls, never a loss).
        """
        if not self._held:
            return False
        state = self.get_context_state(None)
        current = {str(key): str(value) for key, value in (state.get("recent") or {}).items()}
        state["recent"] = newest({**self._held, **current}, WEBHOOK_RECENT_LIMIT)
        self._held = {}
        return bool(state["recent"] != current)

    @override
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
        lookback = timedelta(minutes=self.run.settings.lookback_minutes)
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
        delivered = {**self._held, **tracker.recent, **self._run_versions}
        closing = self._closing
        fetch = self.entity.fetch_detail and self.run.settings.fetch_details
        read: dict[str, str] = {}
        first_read: dict[str, int] = {}  # the page (of this run's pages) a row was first on
        pages_seen = 0
        numbered_from = 0  # rows first read before this page were passed by page number
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
                server_time = self.run.client.last_server_date
                progress.started_at = self.pass_start_time(server_time)
            if self.restart_if_ahead(tracker, lookback):  # the first response of the run
                yield from self.refresh(context)
                return
            pages_seen += 1
            if progress.next_page > 1:
                numbered_from = pages_seen
            already = set(progress.page_emitted)
            for index, row in enumerate(rows):
                self._left_on_page = len(rows) - index
                row_id = str(row.get("id"))
                updated = str(row.get("updateDate"))
                if row_id in progress.awaiting:
                    progress.awaiting.remove(row_id)
                if row_id in already:
                    continue
                if (
                    row_id in read
                    and read[row_id] != updated
                    and first_read[row_id] < numbered_from
                ):
                    # A newer version later in the same pass: the row moved behind the
                    # cursor, and a page number passed it since (it may have moved
                    # then), so a row at a page boundary may be skipped.
                    progress.suspect = True
                if delivered.get(row_id) == updated:
                    # Already delivered (by an earlier pass or a webhook): keep it known
                    # while the next pass still lists it, so it is not sent again then.
                    if self.next_pass_lists(updated, progress, lookback):
                        progress.recent[row_id] = updated
                    continue
                if not self.first_emission(row) and (
                    not closing or self.emitted_since(row_id, updated)
                ):
                    continue  # (the closing pass sends a version changed since)
                record = self.fetch_detail(row) if fetch else dict(row)
                version = str(record.get("updateDate", updated))
                self.note_emitted_version(row_id, version)
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
                    first_read[row_id] = pages_seen
                read[row_id] = str(row.get("updateDate"))
        if progress.awaiting:
            # The row the value cursor stood on never came back: the cursor jumped.
            progress.suspect = True
        tracker.complete_pass(progress, lookback)
        self._held = {}  # the pass read them all: its own `recent` is what counts now
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
        client = self.run.client
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
        hours = self.run.settings.completeness_sweep_hours
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
        """The completeness sweep that is due (see `streams.sweeping`)."""
        return run_sweep(self, context)

    def pass_params(self, base: Params, progress: Pass) -> Params:
        """The pass's list query: its filters and `modifiedSince`.

        `modifiedSince` is the value cursor when the pass pages by value, else its `since`.
        """
        since = progress.cursor or progress.since
        if not since:
            return list(base)
        timezone = self.run.settings.api_timezone
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
        pages = self.run.client.iter_pages(path, params, self.page_size, start_page=number)
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
