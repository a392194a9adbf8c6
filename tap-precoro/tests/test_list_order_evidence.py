"""When the rows read are taken as `updateDate` ascending (the value cursor's evidence)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from tap_precoro.list_order import ORDER_EVIDENCE, ListOrder


def rows(*pairs: tuple[int, int]) -> list[dict[str, Any]]:
    """(id, second of the minute) -> list rows."""
    return [{"id": i, "updateDate": f"2026-01-01T10:00:{s:02d}+00:00"} for i, s in pairs]


def test_ten_distinct_seconds_are_not_enough_twenty_are():
    order = ListOrder()
    order.observe(rows(*[(100 - k * 7 % 50, k) for k in range(10)]))
    assert order.evidence == pytest.approx(math.log10(math.factorial(10)))
    assert not order.by_updated_ascending
    order.observe(rows(*[(300 - k * 7 % 50, 10 + k) for k in range(10)]))
    assert order.evidence >= ORDER_EVIDENCE
    assert order.by_updated_ascending


def test_a_bulk_edit_with_one_later_row_is_one_chance_in_ten():
    order = ListOrder()
    order.observe(rows(*[(id_, 5) for id_ in (7, 3, 9, 1, 8, 2, 6, 4, 5)], (10, 6)))
    assert order.evidence == pytest.approx(1.0)
    assert not order.by_updated_ascending


def test_the_evidence_survives_the_state_and_a_damaged_one_counts_nothing():
    order = ListOrder()
    order.observe(rows(*[(100 - k * 7 % 50, k) for k in range(25)]))
    again = ListOrder.from_state(order.to_state())
    assert again.by_updated_ascending
    assert again.rows == 25
    assert again.run == 1
    for bad in ("x", None, float("nan"), float("inf"), -5, [1]):
        damaged = ListOrder.from_state({**order.to_state(), "evidence": bad})
        assert damaged.evidence == 0.0
        assert not damaged.by_updated_ascending
    old = {k: v for k, v in order.to_state().items() if k not in ("rows", "run", "evidence")}
    assert not ListOrder.from_state(old).by_updated_ascending  # a pass saved before this
