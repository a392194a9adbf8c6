"""Bookmarks and resumable passes, kept in the stream's Singer state.

A *pass* reads every page of one list query (`modifiedSince` = the bookmark). Its
progress (next page, the server time it started at, the records already emitted) is
saved after every page, so a killed or budget-stopped run resumes at the first page
that was not completed. The bookmark moves only when a pass completes, to the
server's time when the pass started minus the look-back: whatever the list order,
a record changed during or after the pass is then read again by the next pass.

State layout of an incremental stream::

    {"replication_key": "updateDate",
     "replication_key_value": "<bookmark, UTC ISO>",
     "recent": {"<id>": "<updateDate>"},        # emitted at/after the bookmark
     "pass": {"since": ..., "started_at": ..., "next_page": 3, "query": "<hash>",
              "page_emitted": ["<id>", ...], "recent": {...},
              "cursor": "<modifiedSince when paging by value>", "order": {...},
              "suspect": false, "sketch": {...}},
     "sweep": {"since": ..., "started_at": ..., "sketch": {...}, "progress": {...}},
     "delivered": {"sketch": {...}, "created_from": ..., "created_until": ...,
                   "swept_at": ...}}

`sweep` is left by a suspect pass for the next run: see `tap_precoro.sweep`.

How a pass pages (by page number, or by a `modifiedSince` value under an
`updateDate`-ascending order) is decided from the rows it reads: see `list_order`.

`recent` lets the next pass skip records it already delivered inside the look-back
window (same id, same updateDate), so overlap costs no detail call. Every STATE keeps
at most `RECENT_LIMIT` of them (the newest versions), in the bookmark and in the pass
alike: the SDK writes the whole state after every document, so an unbounded `recent`
made a bulk update of n documents cost n² in STATE bytes. The stream keeps the rest in
memory for the run and settles them with a closing pass (`IncrementalStream.refresh`).
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from precoro_client.registry import MODIFIED_SINCE_FORMAT

RECENT_LIMIT = 100
"""Most look-back entries a STATE carries per stream (about 35 bytes each): a bound on
what every STATE costs. Versions beyond it are re-read by the next pass (safe) unless
the run settles them first (see `IncrementalStream.refresh`)."""


WEBHOOK_RECENT_LIMIT = 5000
"""Most webhook-delivered versions kept for the next reconcile poll (which skips them,
one detail call saved each): they pile up between reconciles, not within a pass. Only
the run's last STATE carries them all; during a run they are held in memory and every
other STATE carries `RECENT_LIMIT` (`IncrementalStream.hold_delivered_versions`)."""


def newest(versions: Mapping[str, str], limit: int = RECENT_LIMIT) -> dict[str, str]:
    """The `limit` entries with the latest versions (they stay in later windows longest).

    Compared as text: one API writes every `updateDate` of a stream in the same ISO
    form, and this runs at every checkpoint, so it must stay cheap.
    """
    if len(versions) <= limit:
        return dict(versions)
    return dict(heapq.nlargest(limit, versions.items(), key=lambda item: item[1]))


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO timestamp from Precoro or from state; naive values are UTC."""
    parsed = datetime.fromisoformat(value)  # Python 3.11 reads a "Z" suffix itself
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def whole_seconds(value: datetime) -> datetime:
    """Floor to the second (what state and `modifiedSince` keep of a time)."""
    return value.replace(microsecond=0)


def to_state_timestamp(value: datetime) -> str:
    """Render a timestamp for state: UTC, ISO 8601, whole seconds."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def modified_since_param(bookmark: datetime, api_timezone: str) -> str:
    """Render a bookmark as Precoro's `modifiedSince` (local time of the API, no zone).

    Seconds are floored: the filter is inclusive, so flooring can only re-read.
    """
    local = bookmark.astimezone(ZoneInfo(api_timezone))
    return local.strftime(MODIFIED_SINCE_FORMAT)


def query_fingerprint(path: str, params: list[tuple[str, str]], page_size: int) -> str:
    """Identify a pass's query, so a resumed pass only continues the same query."""
    payload = json.dumps([path, sorted(params), page_size])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class Pass:
    """Progress of one read of a list query."""

    since: str | None
    started_at: str | None
    next_page: int
    query: str
    page_emitted: list[str] = field(default_factory=list)
    recent: dict[str, str] = field(default_factory=dict)
    """Versions delivered (or found delivered) that the next pass lists again; the
    state keeps the newest `RECENT_LIMIT`, this run keeps them all."""
    cursor: str | None = None
    """`modifiedSince` of the current query when paging by value (`list_order`):
    `next_page` is then a page of that query. None: pages of the `since` query."""
    order: dict[str, Any] = field(default_factory=dict)
    """Evidence about the list order from the rows read so far (`ListOrder`)."""
    suspect: bool = False
    """The pass paged by page number over more than one page where a row may have
    left the result or moved behind the cursor: the completeness sweep checks it."""
    sketch: dict[str, Any] = field(default_factory=dict)
    """Compact record of the ids read so far (`tap_precoro.sweep.Sketch`)."""
    created: dict[str, Any] = field(default_factory=dict)
    """Sketch of the ids read that were created since the previous pass started."""
    awaiting: list[str] = field(default_factory=list)
    """Ids the value cursor stands on: `modifiedSince` is inclusive, so each must be
    read again; one that never is means the cursor jumped (a wrong `api_timezone`)."""

    def to_state(self) -> dict[str, Any]:
        """Serialise for the stream state."""
        return {
            "since": self.since,
            "started_at": self.started_at,
            "next_page": self.next_page,
            "query": self.query,
            "page_emitted": list(self.page_emitted),
            "recent": newest(self.recent),
            "cursor": self.cursor,
            "order": dict(self.order),
            "suspect": self.suspect,
            "sketch": dict(self.sketch),
            "created": dict(self.created),
            "awaiting": list(self.awaiting),
        }

    @classmethod
    def from_state(cls, raw: Mapping[str, Any]) -> Pass:
        """Read back a saved pass."""
        return cls(
            since=raw.get("since"),
            started_at=raw.get("started_at"),
            next_page=int(raw.get("next_page", 1)),
            query=str(raw.get("query", "")),
            page_emitted=[str(x) for x in raw.get("page_emitted", [])],
            recent={str(k): str(v) for k, v in (raw.get("recent") or {}).items()},
            cursor=str(raw["cursor"]) if raw.get("cursor") else None,
            order=dict(raw["order"]) if isinstance(raw.get("order"), Mapping) else {},
            suspect=bool(raw.get("suspect", False)),
            sketch=dict(raw["sketch"]) if isinstance(raw.get("sketch"), Mapping) else {},
            created=dict(raw["created"]) if isinstance(raw.get("created"), Mapping) else {},
            awaiting=[str(x) for x in raw.get("awaiting") or []],
        )


class IncrementalState:
    """Reads and writes an incremental stream's bookmark and pass in its state dict."""

    def __init__(self, state: MutableMapping[str, Any], replication_key: str) -> None:
        """Wrap the SDK's writable stream state (mutated in place)."""
        self.state = state
        self.replication_key = replication_key
        self.overflow = 0
        """Versions the last `complete_pass` could not keep in `recent`."""

    @property
    def bookmark(self) -> datetime | None:
        """The committed bookmark, if any."""
        value = self.state.get("replication_key_value")
        return parse_timestamp(value) if value else None

    @property
    def recent(self) -> dict[str, str]:
        """Records delivered at or after the bookmark by the last completed pass."""
        return {str(k): str(v) for k, v in (self.state.get("recent") or {}).items()}

    def current_pass(self) -> Pass | None:
        """The pass in progress, if a previous run stopped inside one."""
        raw = self.state.get("pass")
        return Pass.from_state(raw) if isinstance(raw, Mapping) else None

    def save_pass(self, progress: Pass) -> None:
        """Record pass progress (called after every completed page).

        A `recent` from an older state (which kept up to 5,000) is cut to the bound
        too; the pass still holds it all in memory.
        """
        self.state["pass"] = progress.to_state()
        if len(self.state.get("recent") or {}) > RECENT_LIMIT:
            self.state["recent"] = newest(self.recent)

    def ahead_of(self, server_now: datetime) -> datetime | None:
        """The bookmark or pass start later than the server's clock, if any.

        Nothing can have changed after the server's "now", so such a value is a clock
        mistake or a hand edit; kept, it would hide every later change for ever.
        """
        progress = self.current_pass()
        since = parse_timestamp(progress.since) if progress and progress.since else None
        ahead = [value for value in (self.bookmark, since) if value and value > server_now]
        return max(ahead) if ahead else None

    def restart_from(self, start: datetime | None) -> None:
        """Replace a bookmark that is ahead of the server: the next pass reads from `start`.

        The pass in progress is dropped (its `since` was the bad bookmark); `recent` is
        kept, so versions already delivered are still not sent again.
        """
        self.state.pop("pass", None)
        if start is None:
            self.state.pop("replication_key_value", None)
        else:
            self.state["replication_key"] = self.replication_key
            self.state["replication_key_value"] = to_state_timestamp(start)

    def complete_pass(self, progress: Pass, lookback: timedelta) -> datetime | None:
        """Commit a finished pass: move the bookmark to its start minus the look-back.

        The bookmark never moves backwards, and is unchanged when the server time is
        unknown (no response carried a `Date`). `recent` keeps the newest
        `RECENT_LIMIT` versions the next pass lists again (`overflow` says how many
        more there were).
        """
        self.state.pop("pass", None)
        if progress.started_at is None:
            return self.bookmark
        # Whole seconds, as stored: `recent` is then cut at the bookmark the next pass
        # really lists from (a fractional look-back would otherwise drop versions the
        # next pass still lists, and send them again).
        candidate = whole_seconds(parse_timestamp(progress.started_at) - lookback)
        previous = parse_timestamp(progress.since) if progress.since else None
        new_bookmark = max(candidate, previous) if previous else candidate
        self.state["replication_key"] = self.replication_key
        self.state["replication_key_value"] = to_state_timestamp(new_bookmark)
        kept = {
            key: value
            for key, value in progress.recent.items()
            if parse_timestamp(value) >= new_bookmark
        }
        self.state["recent"] = newest(kept)
        self.overflow = len(kept) - len(self.state["recent"])
        return new_bookmark


class ReferenceState:
    """State of a stream Precoro cannot filter by date: content hashes and refresh time."""

    def __init__(self, state: MutableMapping[str, Any]) -> None:
        """Wrap the SDK's writable stream state (mutated in place)."""
        self.state = state

    @property
    def refreshed_at(self) -> datetime | None:
        """When the last complete refresh started."""
        value = self.state.get("refreshed_at")
        return parse_timestamp(value) if value else None

    def is_due(self, now: datetime, refresh_every: timedelta) -> bool:
        """Whether a refresh is due (a pass in progress is always finished first)."""
        if self.state.get("pass"):
            return True
        last = self.refreshed_at
        # A refresh time ahead of the clock (a clock mistake, a hand edit) would
        # postpone every refresh until that date: refresh now instead.
        return last is None or last > now or now - last >= refresh_every

    @property
    def hashes(self) -> dict[str, str]:
        """Content hash per record id from the last refresh."""
        return {str(k): str(v) for k, v in (self.state.get("hashes") or {}).items()}

    def current_pass(self) -> Pass | None:
        """The refresh in progress, if a previous run stopped inside one."""
        raw = self.state.get("pass")
        return Pass.from_state(raw) if isinstance(raw, Mapping) else None

    def save_pass(self, progress: Pass, hashes: Mapping[str, str]) -> None:
        """Record refresh progress with the hashes of every record seen so far."""
        self.state["pass"] = progress.to_state()
        self.state["pass"]["hashes"] = dict(hashes)

    def pass_hashes(self) -> dict[str, str]:
        """Hashes collected by the refresh in progress."""
        raw = self.state.get("pass") or {}
        return {str(k): str(v) for k, v in (raw.get("hashes") or {}).items()}

    def complete_pass(self, progress: Pass, hashes: Mapping[str, str]) -> None:
        """Commit a finished refresh: records not seen this time are forgotten.

        `refreshed_at` is the local clock at the start of the refresh: the refresh
        schedule is the user's, so it follows the machine the tap runs on.
        """
        self.state.pop("pass", None)
        self.state["hashes"] = dict(hashes)
        self.state["refreshed_at"] = progress.started_at


def content_hash(record: Mapping[str, Any]) -> str:
    """Stable short hash of a record's content (key order independent)."""
    payload = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# --- checking an incoming state --------------------------------------------------------


def _timestamp_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"must be an ISO 8601 date-time string, got {type(value).__name__}"
    try:
        parse_timestamp(value)
    except ValueError:
        return f"{value[:40]!r} is not an ISO 8601 date-time"
    return None


def _check(problems: list[str], where: str, key: str, problem: str | None) -> None:
    if problem is not None:
        problems.append(f"{where}: {key} {problem}")


def _versions_problem(value: Any) -> str | None:
    """`recent`: record id -> updateDate (compared as text, so any string will do)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        return "must be an object of id -> updateDate"
    return None


def _hashes_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        return "must be an object of id -> content hash"
    return None


def _pass_problems(problems: list[str], where: str, raw: Any, *, reference: bool) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: pass must be an object, got {type(raw).__name__}")
        return
    for key in ("since", "started_at"):
        _check(problems, where, f"pass.{key}", _timestamp_problem(raw.get(key)))
    page = raw.get("next_page", 1)
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        problems.append(f"{where}: pass.next_page must be a page number >= 1, got {page!r}")
    if not isinstance(raw.get("query", ""), str):
        problems.append(f"{where}: pass.query must be a string")
    emitted = raw.get("page_emitted", [])
    if not isinstance(emitted, list):
        problems.append(f"{where}: pass.page_emitted must be a list of ids")
    _check(problems, where, "pass.recent", _versions_problem(raw.get("recent")))
    if reference:
        _check(problems, where, "pass.hashes", _hashes_problem(raw.get("hashes")))


def _webhook_problems(problems: list[str], where: str, raw: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: webhooks must be an object, got {type(raw).__name__}")
        return
    position = raw.get("position", 0)
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        problems.append(f"{where}: webhooks.position must be a whole number >= 0")
    _check(problems, where, "webhooks.reconciled_at", _timestamp_problem(raw.get("reconciled_at")))


def _stream_problems(problems: list[str], where: str, raw: Any, kind: str) -> None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be an object, got {type(raw).__name__}")
        return
    if kind == "incremental":
        _check(
            problems,
            where,
            "replication_key_value",
            _timestamp_problem(raw.get("replication_key_value")),
        )
        _check(problems, where, "recent", _versions_problem(raw.get("recent")))
    else:
        _check(problems, where, "refreshed_at", _timestamp_problem(raw.get("refreshed_at")))
        _check(problems, where, "hashes", _hashes_problem(raw.get("hashes")))
    _pass_problems(problems, where, raw.get("pass"), reference=kind != "incremental")
    _webhook_problems(problems, where, raw.get("webhooks"))
    partitions = raw.get("partitions")
    if partitions is None:
        return
    if not isinstance(partitions, list):
        problems.append(f"{where}: partitions must be a list")
        return
    for index, partition in enumerate(partitions):
        inner = f"{where} partition {index}"
        if not isinstance(partition, Mapping) or not isinstance(partition.get("context"), Mapping):
            problems.append(f"{inner}: must be an object with a context object")
            continue
        _stream_problems(problems, inner, partition, kind)


def state_problems(state: Any, kinds: Mapping[str, str]) -> list[str]:
    """What makes an incoming Singer state unusable, one line per problem naming the stream.

    `kinds` maps stream names to "incremental" or "reference". Checked before any
    request: a corrupt state stops the run (exit 1) rather than being ignored, because
    ignoring a stream's state could only re-read (cost) or, with a later start date,
    skip records; the user decides. Streams the tap does not know are left alone.
    """
    if not isinstance(state, Mapping):
        return [f"the state must be a JSON object, got {type(state).__name__}"]
    bookmarks = state.get("bookmarks")
    if bookmarks is None:
        return []
    if not isinstance(bookmarks, Mapping):
        return [f"state bookmarks must be an object, got {type(bookmarks).__name__}"]
    problems: list[str] = []
    for name, raw in bookmarks.items():
        kind = kinds.get(str(name))
        if kind is not None:
            _stream_problems(problems, f"state of stream {name!r}", raw, kind)
    return problems
