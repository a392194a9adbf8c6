"""The estimate of what a budget-stopped first sync still has to read (issue 16, 4)."""

from __future__ import annotations

import io
import math
from contextlib import redirect_stdout
from datetime import timedelta
from typing import Any

import pytest
from tap_precoro.outlook import (
    MAX_COUNT_CALLS,
    count_rows,
    duration,
    left_after_page,
    pagination_total,
    worth_counting,
)
from tap_precoro.tap import TapPrecoro
from tap_precoro.testing import parse_messages

INVOICES = 120
PAGE = 10


def run(config: dict[str, Any], state: dict[str, Any] | None = None) -> tuple[TapPrecoro, Any]:
    """Run only `invoices`; return the tap (for its outlook) and its messages."""
    tap = TapPrecoro(config=config, state=state or {}, validate_config=True)
    for name, stream in tap.streams.items():
        stream.selected = name == "invoices"
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        tap.sync_all()
    return tap, parse_messages(buffer.getvalue())


@pytest.mark.parametrize("pagination", ["legacy", "has_next_page"])
def test_the_estimate_after_a_budget_stop_is_within_ten_percent(
    sandbox_factory, make_config, pagination
):
    sb = sandbox_factory(counts={"invoices": INVOICES}, pagination=pagination)
    stopped_config = make_config(sb, page_size=PAGE, max_requests_per_day=40)
    tap, first = run(stopped_config)
    assert tap.budget_stop is not None
    left = tap.outlook()["invoices"]
    assert left.rows is not None
    assert left.calls is not None

    sb.admin.reset_counters()
    rest_config = make_config(sb, page_size=PAGE, max_requests_per_day=10_000)
    _, second = run(rest_config, first.state)
    actual = sb.admin.counters().total
    assert abs(left.calls - actual) <= 0.1 * actual, (left, actual)
    done = {int(r["id"]) for r in [*first.records["invoices"], *second.records["invoices"]]}
    assert len(done) == INVOICES
    assert abs(left.rows - len(second.records["invoices"])) <= 0.1 * INVOICES


@pytest.mark.parametrize(("scale", "budget"), [(200, 300), (1000, 1200)])
def test_without_totals_the_estimate_is_within_ten_percent_at_scale(
    sandbox_factory, make_config, scale, budget
):
    """The demo's data (scale 200, seed 42) and scale 1000; `has_next_page` only."""
    sb = sandbox_factory(scale=scale, seed=42)
    tap, first = run(make_config(sb, max_requests_per_day=budget, max_requests_per_hour=100_000))
    assert tap.budget_stop is not None
    left = tap.outlook()["invoices"]
    assert left.rows is not None
    assert left.calls is not None
    spent = sb.admin.counters().total
    assert spent <= budget

    sb.admin.reset_counters()
    rest = make_config(sb, max_requests_per_day=100_000, max_requests_per_hour=100_000)
    rest_tap, second = run(rest, first.state)
    assert rest_tap.budget_stop is None
    actual = sb.admin.counters().total
    assert abs(left.calls - actual) <= 0.1 * actual, (left, actual)
    assert abs(left.rows - len(second.records["invoices"])) <= 0.1 * len(second.records["invoices"])


def test_a_sync_that_fits_in_the_budget_never_counts(sandbox_factory, make_config):
    sb = sandbox_factory(counts={"invoices": INVOICES})  # has_next_page only
    tap, _ = run(make_config(sb, page_size=PAGE))
    assert tap.budget_stop is None
    pages = -(-INVOICES // PAGE)
    assert sb.admin.counters().total == pages + INVOICES  # the minimum: no counting calls


def test_counting_rows_gallops_then_bisects():
    for total in (0, 1, 199, 200, 201, 20_000, 20_001, 123_456):
        asked: list[int] = []

        def rows_on(page: int, total: int = total, asked: list[int] = asked) -> int:
            asked.append(page)
            return max(0, min(200, total - (page - 1) * 200))

        assert count_rows(rows_on, 200, min(total, 150)) == total
        assert len(asked) <= 2 * max(1, math.ceil(math.log2(max(2, total / 200)))) + 2
        assert len(set(asked)) == len(asked)  # no page asked twice


def test_pagination_totals_and_left_after_a_page():
    assert pagination_total({"meta": {"pagination": {"total": 95}}}, 10) == 95
    assert pagination_total({"meta": {"pagination": {"total_pages": 3}}}, 10) == 30
    assert pagination_total({"meta": {"pagination": {"has_next_page": True}}}, 10) is None
    left = left_after_page(95, 3, 10, 4, details=True)
    assert (left.rows, left.calls) == (65 + 4, 7 + 65 + 4)
    assert left_after_page(95, 3, 10, 0, details=False).calls == 7


def test_duration_spends_each_hour_and_day_in_full():
    assert duration(0, 1.0, 1500, 3000) == timedelta(0)
    assert duration(1500, 1.0, 1500, 3000) == timedelta(seconds=1500)
    assert duration(1501, 1.0, 1500, 3000) == timedelta(hours=1, seconds=1)
    assert duration(20_100, 1.0, 1500, 3000) == timedelta(days=6, hours=1, seconds=600)


def test_counting_only_when_the_budget_ends_soon_but_can_pay_for_it():
    assert not worth_counting(3000, 200, details=True)  # the budget outlasts the next pages
    assert worth_counting(400, 200, details=True)
    assert not worth_counting(MAX_COUNT_CALLS - 1, 200, details=True)  # the last calls read
    assert worth_counting(MAX_COUNT_CALLS, 200, details=False)
    assert not worth_counting(MAX_COUNT_CALLS + 2, 200, details=False)
