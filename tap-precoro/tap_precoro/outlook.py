"""What a stream still has to read, and how long that takes at the account's limits.

A first sync of 20,000 invoices is about 20,100 calls: a week of a 3,000-a-day key.
When Precoro's list response says how many rows the query has (`meta.pagination.total`,
or `total_pages`; whether current responses still carry them is not documented), the
stream knows after each page how many rows and calls are left: one list call per page
still to read, plus one detail call per document.

Without a total, nothing the tap has read says how long the list is (ids and dates are
not dense or ordered enough to extrapolate from). So the row count is found from the
list itself (`count_rows`): pages of the same query are asked for far ahead, doubling
until one comes back short, then halving the gap, and the short page's rows give the
exact total: about 2*log2(rows/200) calls (13 for 20,000 rows). Those calls are
spent only when they matter, when today's budget cannot finish the stream
(`worth_counting`): a sync that finishes today, however large, never pays for its
estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

MAX_COUNT_CALLS = 30
"""Most list calls `count_rows` may spend (enough for 200 * 2**14 rows)."""


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


def count_page_size(page_size: int) -> int:
    """Rows per counting call: 200 (Precoro's most), or 100 when the stream reads 200.

    So no counting call is the same GET as a page the tap will read.
    """
    return 100 if page_size == 200 else 200


def worth_counting(remaining_today: int, page_size: int, *, details: bool) -> bool:
    """Whether today's budget may end before the stream does (so an estimate matters).

    True when what is left cannot pay for this page's details, the counting itself and
    the next page with its details, but can pay for the counting: with less left, the
    last calls read rows rather than count them.
    """
    next_page = 1 + (page_size if details else 0)
    return MAX_COUNT_CALLS <= remaining_today < next_page * 2 + MAX_COUNT_CALLS


def count_rows(rows_on: Callable[[int], int], per_page: int, at_least: int) -> int | None:
    """Rows of a list query, exactly, from pages of `per_page` rows (`rows_on(page)`).

    `at_least`: rows the query is known to have (so that page needs no call when full
    pages are found beyond it). Gallops (pages p, 2p, 4p...) until a page is short,
    then bisects between the last full and the first empty page. None if that would
    take more than `MAX_COUNT_CALLS` calls.
    """
    calls = 0

    def rows(page: int) -> int:
        nonlocal calls
        calls += 1
        return rows_on(page)

    full = 0  # the last page known to be full (0: none)
    page = max(1, math.ceil(at_least / per_page))
    while True:  # gallop
        if calls >= MAX_COUNT_CALLS:
            return None
        found = rows(page)
        if 0 < found < per_page:
            return (page - 1) * per_page + found
        if found == 0:
            empty = page
            break
        full = page
        page *= 2
    while empty - full > 1:  # bisect: `full` is full (or 0), `empty` is empty
        if calls >= MAX_COUNT_CALLS:
            return None
        middle = (full + empty) // 2
        found = rows(middle)
        if 0 < found < per_page:
            return (middle - 1) * per_page + found
        if found == 0:
            empty = middle
        else:
            full = middle
    return full * per_page


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
