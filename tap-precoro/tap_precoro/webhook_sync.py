"""Webhook mode of a stream: what the inbox holds for it, and when to reconcile.

The drain itself (fetching the notified entities and emitting them) is stream code:
`tap_precoro.streams.webhook_mode`. This module only reads the inbox and the stream's
`webhooks` state; it knows nothing of streams, the client or the tap.

Per stream, after the inbox position kept in its state:

1. Scan the notifications of the stream's webhook type and the receiver's markers.
2. Reconcile (a normal poll pass of the stream) when it never ran in webhook mode,
   when `reconcile_every_hours` passed, when the receiver restarted or went silent
   (so webhooks may have been lost), or when the inbox was replaced or pruned past the
   position. A complete reconcile covers every notification up to the inbox head taken
   before it started, so the position jumps there.
3. Otherwise coalesce the notifications per entity and fetch each changed entity once
   (the current state, so arrival order does not matter), emitting it like a polled
   record. The position only moves past a notification once the record it names was
   emitted; a crash re-delivers (at-least-once), never loses.

State kept next to the stream's bookmark fields::

    "webhooks": {"inbox": "<inbox id>", "position": 812, "seen_at": <unix time>,
                 "reconciled_at": "<UTC ISO>",
                 "reconcile": {"head": 900, "started_at": "...", "reason": "..."}}
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tap_precoro.bookmarks import parse_timestamp, to_state_timestamp
from tap_precoro.webhooks.inbox import Entry, Inbox, InboxInfo

SCAN_BATCH = 5000
"""Inbox rows read per query while scanning."""
SILENCE_HEARTBEATS = 3
"""Missed heartbeats after which the receiver counts as having been down."""
SILENCE_SLACK_SECONDS = 30.0


@dataclass
class Changed:
    """One entity named by at least one pending notification."""

    entity_id: int
    idn: str | None
    first_position: int
    first_seen_at: float


@dataclass
class Scan:
    """What the inbox holds for one stream after its position."""

    changed: list[Changed]
    """Entities in order of their first notification."""
    markers: list[Entry]
    last_position: int
    last_seen_at: float | None


class WebhookProgress:
    """The `webhooks` section of a stream's state (mutated in place)."""

    def __init__(self, state: MutableMapping[str, Any]) -> None:
        """Wrap the stream's writable state."""
        raw = state.get("webhooks")
        if not isinstance(raw, MutableMapping):
            raw = {}
            state["webhooks"] = raw
        self.raw = raw

    @property
    def position(self) -> int:
        """Last inbox position whose notification is covered by emitted records."""
        return int(self.raw.get("position", 0))

    @property
    def seen_at(self) -> float | None:
        """Receiver time of the entry at the position (for silence detection)."""
        value = self.raw.get("seen_at")
        return float(value) if isinstance(value, int | float) else None

    @property
    def reconciled_at(self) -> datetime | None:
        """When the last complete reconcile started (local clock)."""
        value = self.raw.get("reconciled_at")
        return parse_timestamp(value) if value else None

    @property
    def reconcile(self) -> Mapping[str, Any] | None:
        """The reconcile in progress (a poll pass a budget stop interrupted)."""
        value = self.raw.get("reconcile")
        return value if isinstance(value, Mapping) else None

    def advance(self, position: int, seen_at: float | None, inbox_id: str) -> None:
        """Move the position forward (never backwards)."""
        if position > self.position:
            self.raw["position"] = position
            if seen_at is not None:
                self.raw["seen_at"] = seen_at
        self.raw["inbox"] = inbox_id

    def begin_reconcile(self, head: int, seen_at: float | None, reason: str) -> None:
        """Remember the head a reconcile will cover (kept if a budget stop interrupts it)."""
        if self.reconcile is None:
            self.raw["reconcile"] = {
                "head": head,
                "seen_at": seen_at,
                "started_at": to_state_timestamp(datetime.now(UTC)),
                "reason": reason,
            }

    def complete_reconcile(self, info: InboxInfo) -> None:
        """The poll pass finished: every notification up to the head is covered."""
        done = dict(self.reconcile or {})
        self.raw.pop("reconcile", None)
        head = int(done.get("head", 0))
        if self.raw.get("inbox") != info.inbox_id:
            self.raw["position"] = 0  # a new inbox: old positions mean nothing
        self.advance(head, done.get("seen_at") or time.time(), info.inbox_id)
        self.raw["reconciled_at"] = done.get("started_at") or to_state_timestamp(datetime.now(UTC))


def scan(inbox: Inbox, position: int, type_code: int) -> Scan:
    """Read every pending notification of one type, coalesced per entity."""
    changed: dict[int, Changed] = {}
    markers: list[Entry] = []
    last_position, last_seen = position, None
    while True:
        batch = inbox.read_after(last_position, SCAN_BATCH, types=[type_code])
        for entry in batch:
            note = entry.notification
            if note is None:
                markers.append(entry)
            elif note.id in changed:
                changed[note.id].idn = note.idn or changed[note.id].idn
            else:
                changed[note.id] = Changed(note.id, note.idn, entry.position, entry.received_at)
            last_position, last_seen = entry.position, entry.received_at
        if len(batch) < SCAN_BATCH:
            break
    ordered = sorted(changed.values(), key=lambda item: item.first_position)
    return Scan(ordered, markers, last_position, last_seen)


def outage(
    markers: list[Entry], seen_at: float | None, now: float, heartbeat: float | None
) -> str | None:
    """Why webhooks may have been lost since `seen_at`, or None.

    A `started` marker means the receiver (re)started: whatever Precoro sent while it
    was down is gone. With heartbeats on, a silence longer than a few heartbeats
    (between entries, or from the last entry until now) means it hung or is down.
    """
    for marker in markers:
        if marker.kind == "started":
            return f"the receiver restarted at {_stamp(marker.received_at)}"
    if not heartbeat:
        return None
    allowed = heartbeat * SILENCE_HEARTBEATS + SILENCE_SLACK_SECONDS
    times = [t for t in (seen_at, *(m.received_at for m in markers)) if t is not None]
    times.append(now)
    for before, after in itertools.pairwise(times):
        if after - before > allowed:
            return f"the receiver was silent from {_stamp(before)} to {_stamp(after)}"
    return None


def _stamp(epoch: float) -> str:
    return to_state_timestamp(datetime.fromtimestamp(epoch, UTC))


def reconcile_reason(
    progress: WebhookProgress,
    info: InboxInfo,
    found: Scan,
    *,
    every: timedelta,
    now: datetime,
) -> str | None:
    """Why this run must poll the stream instead of (only) draining, or None."""
    if progress.reconcile is not None:
        return "resuming an interrupted reconcile"
    if progress.reconciled_at is None:
        return "first run in webhook mode"
    if progress.raw.get("inbox") != info.inbox_id:
        return "the inbox was replaced"
    if progress.position > info.head:
        return "the inbox is behind the state"
    if info.pruned_upto > progress.position:
        return "the inbox was pruned past this stream's position"
    if progress.reconciled_at > now:  # a clock mistake would postpone every reconcile
        return "the last reconcile time is ahead of the clock"
    if now - progress.reconciled_at >= every:
        return f"reconcile_every_hours ({every.total_seconds() / 3600:g} h) passed"
    return outage(found.markers, progress.seen_at, now.timestamp(), info.heartbeat_seconds)
