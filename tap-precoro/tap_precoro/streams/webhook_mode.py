"""The drain of a stream in webhook mode (see `tap_precoro.webhook_sync` for the rules).

The inbox logic (what is pending, whether to reconcile, the `webhooks` state) is in
`webhook_sync`; here the stream fetches what the notifications name and emits it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tap_precoro.webhook_sync import Changed, WebhookProgress, reconcile_reason, scan

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_precoro.streams.base import PrecoroStream


def batched_current(
    stream: PrecoroStream, changed: list[Changed], context: Context | None
) -> dict[int, dict[str, Any] | None] | None:
    """Current records of the notified entities from one `modifiedSince` list read.

    Chosen per stream and run when it cannot cost more than one call per entity:
    master data (one list page holds `page_size` rows, one call each otherwise), and
    documents under list-level filters (the list's status tells which need their
    detail call; the others cost nothing more). Unfiltered documents need one detail
    call each anyway, so the list would only add calls: None (fetch each).

    The list starts at the oldest notification's arrival minus the look-back (an
    entity's `updateDate` is at or after its change, which came before the webhook)
    and is read without the status/enable filters, which are applied to the rows: an
    entity it does not list (deleted, or stamped earlier by a skewed clock) is
    fetched on its own by the caller, so nothing is lost. Rows it lists but filters
    out map to None: not emitted, as a poll would not.
    """
    entity = stream.entity
    details = entity.fetch_detail and stream.run.settings.fetch_details
    filtered = stream.base_params(context) != list(entity.base_params)
    if len(changed) < 2 or not entity.incremental or (details and not filtered):
        return None
    lookback = timedelta(minutes=stream.run.settings.lookback_minutes)
    oldest = datetime.fromtimestamp(min(item.first_seen_at for item in changed), UTC)
    # Arrival times are the receiver's (this machine's) clock; `modifiedSince` is
    # Precoro's: shift by the offset the responses so far showed (none yet: 0).
    offset = stream.run.client.server_now() - datetime.now(UTC)
    since = oldest + offset - lookback - timedelta(seconds=1)  # `Date` truncates
    return stream.list_current({item.entity_id for item in changed}, since, context)


def webhook_records(stream: PrecoroStream, context: Context | None) -> Iterator[dict[str, Any]]:
    """Records of one stream in webhook mode (the rules: `tap_precoro.webhook_sync`)."""
    inbox = stream.run.webhook_inbox
    type_code = stream.entity.webhook_type
    if inbox is None or type_code is None:  # pragma: no cover - guarded by the caller
        return
    state = stream.get_context_state(context)
    progress = WebhookProgress(state)
    info = inbox.info()
    position = progress.position if progress.raw.get("inbox") == info.inbox_id else 0
    found = scan(inbox, position, type_code)
    hours = stream.run.settings.reconcile_every_hours
    reason = reconcile_reason(
        progress, info, found, every=timedelta(hours=hours), now=datetime.now(UTC)
    )
    if reason is not None:
        stream.logger.info("%s: reconcile poll, because %s", stream.name, reason)
        head_seen = found.last_seen_at if found.last_position == info.head else None
        progress.begin_reconcile(info.head, head_seen or time.time(), reason)
        yield from stream.refresh(context)
        progress.complete_reconcile(info)
        stream.checkpoint()
        return
    if found.changed:
        stream.logger.info(
            "%s: %d changed entities from the webhook inbox", stream.name, len(found.changed)
        )
    listed = batched_current(stream, found.changed, context)
    since_checkpoint = 0
    for index, item in enumerate(found.changed):
        costly = listed is None or item.entity_id not in listed
        if listed is not None and item.entity_id in listed:
            record = listed[item.entity_id]
        else:
            record = stream.fetch_current(item.entity_id, item.idn)
        wanted = record is not None and stream.matches_filters(record, context)
        if record is not None and wanted and stream.first_emission(record):
            stream.note_delivered(record, context)
            yield record
        if index + 1 < len(found.changed):
            following = found.changed[index + 1]
            progress.advance(following.first_position - 1, following.first_seen_at, info.inbox_id)
        else:
            progress.advance(found.last_position, found.last_seen_at, info.inbox_id)
        since_checkpoint += 1
        # A record that cost a call is checkpointed at once (a crash must not pay for
        # it again); listed ones once a page, so STATE does not grow with the drain.
        if costly or since_checkpoint >= stream.page_size or index + 1 == len(found.changed):
            stream.checkpoint()
            since_checkpoint = 0
    if not found.changed and found.last_position > position:
        progress.advance(found.last_position, found.last_seen_at, info.inbox_id)
        stream.checkpoint()
