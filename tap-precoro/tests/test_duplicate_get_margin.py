"""A retried GET never meets Precoro's duplicate-GET rule (no identical GET within a minute).

The sandbox runs Precoro's limits compressed (the duplicate window 2 s instead of 60 s)
and the tap is configured with the same numbers, as it would be with the real ones: the
governor's own margin, not a generous setting, must keep the retry out of the window.
"""

from __future__ import annotations

import pytest

STREAMS = ["suppliers", "invoices"]
WINDOW = 2  # seconds; the real rule is 60


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503, "schedule": [1]},
        {"kind": "status", "status": 502, "schedule": [2, 3]},
        {"kind": "truncate", "schedule": [1]},
    ],
    ids=["503-first-page", "502-twice", "truncated"],
)
def test_retried_gets_wait_out_the_duplicate_window(sandbox_factory, make_config, run_tap, fault):
    sb = sandbox_factory(limits=f"off,per_second=20,duplicate_get_seconds={WINDOW}")
    sb.admin.set_faults([{"route": "/suppliers", "method": "GET", **fault}])
    config = make_config(
        sb,
        page_size=10,
        fetch_details=False,
        max_requests_per_second=10,
        duplicate_get_interval_seconds=WINDOW,
    )

    run = run_tap(config, streams=STREAMS)

    assert run.exit_code == 0
    for stream in STREAMS:
        ids = run.ids(stream)
        assert len(ids) == len(set(ids)) == sb.admin.stats()[stream], stream
    counters = sb.admin.counters()
    assert counters.get(status=429) == 0
    assert sum(sb.admin.faults()["fired"].values()) == len(fault["schedule"])
    # Every call is a page read or its one retry: nothing was wasted on a 429.
    pages = sum(-(-sb.admin.stats()[s] // 10) for s in STREAMS)
    assert counters.total == pages + len(fault["schedule"])
