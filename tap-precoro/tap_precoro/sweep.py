"""The completeness sweep: a list-only re-read that finds the rows a pass skipped.

A pass that paged by page number over several pages may have skipped rows when rows
left its filtered result, or moved behind its cursor, while it paged (`list_order`
explains when; the pass is then *suspect*). Those rows were unchanged, so no later
`modifiedSince` pass reads them. The sweep re-reads the same window without the
status/enable filters (rows never leave an unfiltered `modifiedSince` result, so the
sweep itself cannot skip that way; the filters are applied to the rows instead) and
compares the ids it lists with the ids the pass read, then emits the missing ones.

What the pass read is kept in state as a `Sketch`: an invertible Bloom lookup table
of the ids (a fixed 120 cells, about 3 KB however many rows the pass read), not the ids
themselves, so the state stays small after a first sync of 100,000 records. The
sweep builds the same sketch over the rows it lists; subtracting the two leaves only
the ids on one side, and peeling the table recovers them as long as there are at most
about 60. Ids only the sweep lists are the skipped ones (emitted, one call each to
read them in full). Ids only the pass read left the filter or changed since (a later
pass read them); they are ignored. Both sides count only the rows that could have
been read by the pass: for a pass from the start of history, rows created before it
started; for an incremental pass, rows whose `updateDate` is still inside its window.

Cost: the sweep pays one list call per page of the window (a first sync of 10,000
records at 200 rows a page: 50 calls, plus one per missed row), in the run after the
suspect pass. A missed row therefore stays missing for one run interval. If more ids
differ than the table can recover, the sweep re-reads the window as a normal pass
(records already delivered may be sent again, none is lost) and says so in the log.

The periodic sweep (`completeness_sweep_hours`, weekly by default) is the same
machinery over the whole history of an unfiltered stream, against `DeliveredRecord`:
the net for holes no pass can notice (a record deleted while the tap paged). It costs
one full listing (50 calls per 10,000 records) per stream and period; a row it finds
had been missing for at most that period plus one run interval.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tap_precoro.bookmarks import parse_timestamp

CELLS = 120
"""Cells of a sketch; peeling recovers up to about 60 differing ids."""
HASHES = 3
_CHECK_BITS = 48


def _digest(key: int) -> bytes:
    return hashlib.blake2b(str(key).encode(), digest_size=16).digest()


def _check(key: int) -> int:
    return int.from_bytes(_digest(key)[:6], "big") & ((1 << _CHECK_BITS) - 1)


def _cells(key: int, size: int) -> list[int]:
    """HASHES distinct cells, one in each of HASHES equal slices of the table."""
    digest = _digest(key)
    width = size // HASHES
    return [
        slot * width + int.from_bytes(digest[6 + 3 * slot : 9 + 3 * slot], "big") % width
        for slot in range(HASHES)
    ]


@dataclass
class Sketch:
    """A set of ids under symmetric difference (XOR), recoverable when small."""

    keys: list[int] = field(default_factory=lambda: [0] * CELLS)
    checks: list[int] = field(default_factory=lambda: [0] * CELLS)

    def toggle(self, key: int) -> None:
        """Add `key` (or remove it: adding twice cancels)."""
        check = _check(key)
        for cell in _cells(key, len(self.keys)):
            self.keys[cell] ^= key
            self.checks[cell] ^= check

    def add_all(self, keys: Iterable[int]) -> None:
        """Add many keys."""
        for key in keys:
            self.toggle(key)

    def difference(self, other: Sketch) -> Sketch:
        """The sketch of the symmetric difference of the two sets."""
        return Sketch(
            [a ^ b for a, b in zip(self.keys, other.keys, strict=True)],
            [a ^ b for a, b in zip(self.checks, other.checks, strict=True)],
        )

    def peel(self) -> set[int] | None:
        """The keys of a small set (None when too many to recover)."""
        keys, checks = list(self.keys), list(self.checks)
        work = Sketch(keys, checks)
        found: set[int] = set()
        progress = True
        while progress:
            progress = False
            for cell in range(len(keys)):
                key = keys[cell]
                if key and checks[cell] == _check(key) and cell in _cells(key, len(keys)):
                    work.toggle(key)
                    found ^= {key}
                    progress = True
        if any(keys) or any(checks):
            return None
        return found

    def to_state(self) -> dict[str, Any]:
        """Serialise for the stream state (JSON-safe integers; empty: nothing)."""
        if not any(self.keys) and not any(self.checks):
            return {}
        return {"keys": list(self.keys), "checks": list(self.checks)}

    @classmethod
    def from_state(cls, raw: Any) -> Sketch:
        """Read back a saved sketch (a missing or malformed one is empty)."""
        if isinstance(raw, Mapping):
            keys, checks = raw.get("keys"), raw.get("checks")
            if (
                isinstance(keys, list)
                and isinstance(checks, list)
                and len(keys) == len(checks) == CELLS
            ):
                return cls([int(k) for k in keys], [int(c) for c in checks])
        return cls()


def sweep_counts(row: Mapping[str, Any], since: str | None, started_at: str | None) -> bool:
    """Whether a row belongs to a pass's sketch (the same test on both sides).

    A pass from the start of history could read every row created before it started;
    an incremental pass every row whose `updateDate` is inside its window (the list
    query already starts the window at `since`). Rows outside could not be compared.
    """
    if started_at is None:
        return True
    limit = parse_timestamp(started_at)
    try:
        created = row.get("createDate")
        if since is None and created:
            return parse_timestamp(str(created)) < limit
        return parse_timestamp(str(row.get("updateDate"))) < limit
    except ValueError:
        return True


def created_within(row: Mapping[str, Any], start: str | None, end: str | None) -> bool:
    """Whether a row's `createDate` is in [start, end) (None: unbounded).

    Rows without a readable `createDate` are never counted, on either side.
    """
    created = row.get("createDate")
    if not created:
        return False
    try:
        moment = parse_timestamp(str(created))
    except ValueError:
        return False
    if start is not None and moment < parse_timestamp(start):
        return False
    return end is None or moment < parse_timestamp(end)


@dataclass
class DeliveredRecord:
    """The periodic sweep's record of every id delivered, in one `Sketch`.

    Each pass adds the rows it read that were created since the previous pass
    started (each row is created inside exactly one pass's window), so the sketch
    holds the ids created in [created_from, created_until) that were read; the
    periodic sweep lists everything and emits the ids the sketch lacks. Kept for
    unfiltered streams only: a filtered stream first reads many rows long after
    their creation (when they enter the filter), which no creation window can tell.
    """

    sketch: Sketch = field(default_factory=Sketch)
    created_from: str | None = None
    created_until: str | None = None
    swept_at: str | None = None

    def after_pass(self, created: Sketch, started_at: str, *, full: bool) -> DeliveredRecord:
        """The record once a pass (its new ids in `created`) completed.

        A state from before this record existed starts it at this pass, unless the
        pass read the whole history.
        """
        if self.created_until is None:
            start = None if full else started_at
            added = created if full else Sketch()
            return DeliveredRecord(added, start, started_at, started_at)
        merged = self.sketch.difference(created)
        return DeliveredRecord(merged, self.created_from, started_at, self.swept_at)

    def to_state(self) -> dict[str, Any]:
        """Serialise for the stream state."""
        return {
            "sketch": self.sketch.to_state(),
            "created_from": self.created_from,
            "created_until": self.created_until,
            "swept_at": self.swept_at,
        }

    @classmethod
    def from_state(cls, raw: Any) -> DeliveredRecord:
        """Read back the record (none yet: an empty one)."""
        if not isinstance(raw, Mapping):
            return cls()

        def text(key: str) -> str | None:
            value = raw.get(key)
            return str(value) if value else None

        return cls(
            Sketch.from_state(raw.get("sketch")),
            text("created_from"),
            text("created_until"),
            text("swept_at"),
        )
