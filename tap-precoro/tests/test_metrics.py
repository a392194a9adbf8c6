"""A tap run's METRIC points match what the sandbox counted (issue 12).

Points are read as a log pipeline reads them: the JSON after `METRIC: `.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

import pytest
from precoro_client.metrics import read_points
from singer_sdk.metrics import METRICS_LOGGER_NAME
from tap_precoro.testing import run_tap


def points(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return read_points(caplog.records)


def test_a_run_reports_each_call_and_the_budget_left(sandbox_factory, make_config, caplog):
    caplog.set_level(logging.INFO, logger=METRICS_LOGGER_NAME)
    sb = sandbox_factory(counts={"invoices": 25})
    run_tap(make_config(sb, page_size=10), streams=["suppliers", "invoices"])
    found = points(caplog)
    served = sb.admin.counters()

    calls = Counter(
        (p["tags"]["endpoint"], p["tags"]["http_status_code"])
        for p in found
        if p["metric"] == "http_request_count"
    )
    # The sandbox names its routes by pattern (`/invoices/{key}`); ids are `{id}` here.
    expected: Counter[tuple[str, int]] = Counter()
    for _, route, status, count in served.rows:
        expected[re.sub(r"\{[^}]+\}", "{id}", route), status] += count
    assert calls == expected
    assert ("/invoices/{id}", 200) in calls
    assert sum(calls.values()) == served.total
    used = [p for p in found if p["metric"] == "precoro_budget_calls_used"]
    left = [p for p in found if p["metric"] == "precoro_budget_calls_left"]
    assert used[-1]["value"] == served.total
    assert left[-1]["value"] == 3000 - served.total
    assert used[-1]["tags"]["next_reset"] is not None
