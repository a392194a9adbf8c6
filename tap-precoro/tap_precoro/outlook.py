"""What a stream still has to read, and how long that takes at the account's limits.

A first sync of 20,000 invoices is about 20,100 calls: a week of a 3,000-a-day key.
When Precoro's list response says how many rows the query has (`meta.pagination.total`,
or `total_pages`; whether current responses still carry them is not documented), the
stream knows after each page how many rows and calls are left: one list call per page
still to read, plus one detail call per document. Without a total only "at least one
more page" is known, and the estimate says so rather than guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Outlook:
    """Rows and calls a stream still has to read (None: Precoro sent no total)."""

    rows: int | None
    calls: int | None

    @classmethod
    def done(cls) -> Outlook:
        """Nothing left."""
        return cls(0, 0)


def pagination_total(body: Any, page_size: int) -> int | None:
    """Rows of the whole query from `meta.pagination` (`total`, else `total_pages`)."""
    meta = body.get("meta") if isinstance(body, dict) else None
    pagination = meta.get("pagination") if isinstance(meta, dict) else None
    if not isinstance(pagination, dict):
        return None
    total = pagination.get("total")
    if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
        return total
    pages = pagination.get("total_pages")
    if isinstance(pages, int) and not isinstance(pages, bool) and pages >= 0:
        return pages * page_size  # an upper bound: the last page may be short
    return None


def left_after_page(
    total: int | None, page: int, page_size: int, left_on_page: int, *, details: bool
) -> Outlook:
    """What is left once page `page` of a query of `total` rows is read.

    `left_on_page`: rows of that page not yet handled (each may need its detail call).
    """
    pending = left_on_page if details else 0
    if total is None:
        return Outlook(None, None)
    after = max(0, total - page * page_size)
    calls = math.ceil(after / page_size) + (after if details else 0) + pending
    return Outlook(after + left_on_page, calls)


def duration(calls: int, per_second: float, per_hour: int, per_day: int) -> timedelta:
    """Time to make `calls` at the limits, spending each day's and hour's budget in full.

    The lower bound a schedule can reach: the tap running whenever budget is back.
    """
    if calls <= 0:
        return timedelta(0)
    days, rest = divmod(calls - 1, per_day)  # the last day's calls: 1..per_day
    hours, rest = divmod(rest, per_hour)
    return timedelta(days=days, hours=hours, seconds=(rest + 1) / per_second)


def describe(delta: timedelta) -> str:
    """A short human duration: "2.3 days", "5.1 hours", "12 minutes"."""
    seconds = delta.total_seconds()
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f} days"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.1f} hours"
    return f"{max(1, round(seconds / 60))} minutes"
