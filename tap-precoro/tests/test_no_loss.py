"""No record or update is lost, whatever order Precoro lists rows in and whatever
changes while the tap pages."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from precoro_sandbox.testing import all_rows, client

STREAMS = ["suppliers", "invoices"]


def latest_emitted(*runs: Any, stream: str) -> dict[int, str]:
    """Last updateDate emitted per id across runs (later runs win)."""
    latest: dict[int, str] = {}
    for run in runs:
        for record in run.records.get(stream, []):
            latest[int(record["id"])] = str(record["updateDate"])
    return latest


def stored_versions(sb: Any, stream: str) -> dict[int, str]:
    """What Precoro holds now: updateDate per id (read after the counted part)."""
    rows = all_rows(client(sb), f"{sb.url}/{stream}")
    return {int(row["id"]): str(row["updateDate"]) for row in rows}


def assert_each_run_emits_a_record_once(*runs: Any) -> None:
    for run in runs:
        for stream, records in run.records.items():
            ids = [r["id"] for r in records]
            assert len(ids) == len(set(ids)), f"{stream} emitted a record twice in one run"


@pytest.mark.parametrize(
    "order",
    ["id", "updated_desc", "shuffle"],
)
def test_no_update_lost_while_records_change_during_paging(
    sandbox_factory, make_config, run_tap, order
):
    sb = sandbox_factory(scale=60, order=order)
    # Slow every list page a little so the activity below interleaves with paging.
    sb.admin.set_faults([{"kind": "delay", "route": "/*", "delay_seconds": 0.02}])
    config = make_config(sb, page_size=10, fetch_details=False, lookback_minutes=0)

    stop = threading.Event()

    def people_working_in_precoro() -> None:
        while not stop.wait(0.01):
            sb.admin.activity(2, entities=STREAMS, create_ratio=0.3)

    worker = threading.Thread(target=people_working_in_precoro)
    worker.start()
    try:
        first = run_tap(config, streams=STREAMS)
    finally:
        stop.set()
        worker.join()
    sb.admin.clear_faults()
    sb.admin.advance_clock(1)
    second = run_tap(config, state=first.state, streams=STREAMS)

    assert_each_run_emits_a_record_once(first, second)
    for stream in STREAMS:
        assert latest_emitted(first, second, stream=stream) == stored_versions(sb, stream)


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Kyiv", "America/New_York"])
def test_incremental_reads_are_exact_in_the_company_time_zone(
    sandbox_factory, make_config, run_tap, timezone
):
    sb = sandbox_factory(timezone=timezone)
    config = make_config(sb, api_timezone=timezone, fetch_details=False)
    first = run_tap(config, streams=["suppliers"])
    sb.admin.advance_clock(3600)
    touched = first.ids("suppliers")[:4]
    sb.admin.touch("suppliers", touched)

    second = run_tap(config, state=first.state, streams=["suppliers"])
    assert sorted(second.ids("suppliers")) == sorted(touched)
    assert latest_emitted(first, second, stream="suppliers") == stored_versions(sb, "suppliers")


def test_change_at_the_bookmark_second_is_not_lost(sandbox, make_config, run_tap):
    """modifiedSince is inclusive and the bookmark trails the pass start."""
    config = make_config(sandbox, fetch_details=False, lookback_minutes=0)
    first = run_tap(config, streams=["suppliers"])
    bookmark = first.state["bookmarks"]["suppliers"]["replication_key_value"]
    target = first.ids("suppliers")[0]
    sandbox.admin.touch("suppliers", [target], update_date=bookmark)

    second = run_tap(config, state=first.state, streams=["suppliers"])
    assert second.ids("suppliers") == [target]
