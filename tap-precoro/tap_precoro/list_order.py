"""Paging so that a change made while the tap pages cannot hide a row.

What the rows of a pass say about Precoro's (undocumented) list order decides how
the pass pages.

Paging by page number reads offsets: page k+1 starts `k * page_size` rows into the
result *as it is when page k+1 is asked for*. A row is skipped exactly when a row the
tap has already passed (or the one it is standing on) moves behind the cursor or
leaves the result: every row behind it shifts one place earlier, and the row at the
page boundary lands on a page already read. Rows that enter the result before the
cursor shift the others later, so they are read twice (the run emits them once).
Order by order, for an unfiltered `modifiedSince` query (rows never leave it: an
edit only raises `updateDate`, and Precoro's API deletes nothing):

- id ascending or descending, creation order, a stable shuffle: an edit does not
  move a row; new rows enter anywhere. Nothing is skipped.
- `updateDate` descending: an edit moves the row to the front (before the cursor):
  later rows shift later, read twice. Nothing is skipped.
- `updateDate` ascending: an edit moves the row to the end, from before the cursor to
  behind it: one row is skipped per edit. Page numbers are unsafe here, so the tap
  pages by value instead: the next request asks `modifiedSince` = the `updateDate`
  of the last row read, page 1. The filter is inclusive, so the rows of that second
  are read again (the run emits them once); an edited row reappears at the end, and
  nothing an edit does can hide a row, since the cursor is a value, not an offset.
  When a whole page shares the cursor's second, the value cannot move, so the tap
  takes the next page of that same query.
- A filtered query (`status_filters`, `include_disabled: false`): a status change or
  a disable makes a row *leave* the result. Under `updateDate` ascending the value
  cursor is immune; under any other order one row is skipped per row that leaves
  from before the cursor. The tap cannot see a row that left, so such a pass is
  marked *suspect* (see `Pass.suspect`), and the completeness sweep closes it.
- Any other order (by name, by status...) may move an edited row behind the cursor.
  That row is then read again later in the same pass with a newer `updateDate`: the
  tap notices and marks the pass suspect.

The order is learnt from the rows themselves: `updateDate` never decreasing while
ids are neither ascending nor descending is taken as `updateDate` ascending, once
that cannot be chance. Rows that share a second are no evidence: under an order
unrelated to `updateDate` (a shuffle, by name), nine rows of one bulk edit and a
later row at the end of a page look sorted one time in ten, and a value cursor taken
there would jump over the rest of the bulk edit, unseen. So the rows read must be
sorted against odds of at least 10^`ORDER_EVIDENCE` (`evidence`): ten distinct
seconds give 10!, not enough; twenty, or 200 rows of a default page, are. Until then
page numbers are kept. While ids are monotonic too (a few rows, or rows never
edited), the data cannot tell the orders apart and page numbers are kept as well: a
value cursor under an id order would skip rows with a later id and an earlier
`updateDate`. Should a later page refute the
order (an `updateDate` lower than the one before), the value cursor may have jumped
over rows: the pass goes on by page number and is marked suspect. A single-page pass
is one query, hence one consistent snapshot, and cannot skip at all; so is an empty one.

The value cursor also expects the row it stands on back (the filter is inclusive):
if it never comes back, the cursor jumped (e.g. `api_timezone` is not the zone Precoro
compares in) and the pass is marked suspect. Not visible to any of this: a record
deleted (in Precoro's UI) while the tap pages; the periodic sweep
(`completeness_sweep_hours`) is the net for that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tap_precoro.bookmarks import parse_timestamp, to_state_timestamp

ORDER_EVIDENCE = 9.0
"""log10 of the odds against chance before the rows are taken as `updateDate`
ascending: an order unrelated to `updateDate` passes for it once in 10^9 passes."""


@dataclass
class ListOrder:
    """Evidence, from the rows of one pass in the order served, about the list order."""

    updated_ascending: bool = True
    ids_ascending: bool = True
    ids_descending: bool = True
    last_updated: str | None = None
    last_id: int | None = None
    rows: int = 0
    run: int = 0
    """Rows read, and how many of the last ones share the last `updateDate`."""
    evidence: float = 0.0
    """log10 of the arrangements of the rows read (n! over the factorials of the
    runs of equal `updateDate`): one in that many orders unrelated to `updateDate`
    would have served them sorted."""

    def observe(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Take in one page of rows (in the order Precoro served them)."""
        for row in rows:
            try:
                updated = to_state_timestamp(parse_timestamp(str(row.get("updateDate"))))
                row_id = int(row.get("id"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                self.updated_ascending = False
                continue
            same = updated == self.last_updated
            if self.last_updated is not None and self.last_id is not None:
                if parse_timestamp(updated) < parse_timestamp(self.last_updated):
                    self.updated_ascending = False
                if row_id <= self.last_id:
                    self.ids_ascending = False
                if row_id >= self.last_id:
                    self.ids_descending = False
            self.rows += 1
            self.run = self.run + 1 if same else 1
            # n!/prod(run!) grows by n/run with each row (the multinomial, row by row).
            self.evidence += math.log10(self.rows / self.run)
            self.last_updated, self.last_id = updated, row_id

    @property
    def by_updated_ascending(self) -> bool:
        """True when the rows can only be in `updateDate`-ascending order."""
        return (
            self.updated_ascending
            and not self.ids_ascending
            and not self.ids_descending
            and self.last_updated is not None
            and self.evidence >= ORDER_EVIDENCE
        )

    def to_state(self) -> dict[str, Any]:
        """Serialise for the pass state."""
        return {
            "updated_ascending": self.updated_ascending,
            "ids_ascending": self.ids_ascending,
            "ids_descending": self.ids_descending,
            "last_updated": self.last_updated,
            "last_id": self.last_id,
            "rows": self.rows,
            "run": self.run,
            "evidence": round(self.evidence, 6),
        }

    @classmethod
    def from_state(cls, raw: Any) -> ListOrder:
        """Read back saved evidence (none saved: no evidence yet)."""
        if not isinstance(raw, Mapping):
            return cls()
        last_id = raw.get("last_id")
        last_updated = raw.get("last_updated")
        return cls(
            updated_ascending=bool(raw.get("updated_ascending", True)),
            ids_ascending=bool(raw.get("ids_ascending", True)),
            ids_descending=bool(raw.get("ids_descending", True)),
            last_updated=str(last_updated) if last_updated else None,
            last_id=int(last_id) if last_id is not None else None,
            rows=_count(raw.get("rows")),
            run=_count(raw.get("run")),
            evidence=_evidence(raw.get("evidence")),
        )


def _count(raw: Any) -> int:
    """A saved count (missing or malformed: 0, as if nothing had been read)."""
    try:
        return max(int(raw), 0)
    except (TypeError, ValueError):
        return 0


def _evidence(raw: Any) -> float:
    """Saved evidence (missing, malformed or not finite: none, so page numbers)."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0
