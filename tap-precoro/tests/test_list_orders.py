"""No id and no version is lost whatever the list order, when rows change, appear or
leave a filtered result while the tap pages (the sandbox makes each change right
after the k-th list page it serves, so every case is deterministic)."""

from __future__ import annotations

from typing import Any

import pytest
from precoro_sandbox.testing import all_rows, client

ORDERS = ["id", "id_desc", "updated_asc", "updated_desc", "created", "shuffle"]
PAGE = 10


def latest_emitted(*runs: Any, stream: str) -> dict[int, str]:
    """Last updateDate emitted per id across runs (later runs win)."""
    latest: dict[int, str] = {}
    for run in runs:
        for record in run.records.get(stream, []):
            latest[int(record["id"])] = str(record["updateDate"])
    return latest


def stored_versions(sb: Any, stream: str, **params: Any) -> dict[int, str]:
    """What Precoro holds now (read after the counted part): updateDate per id."""
    rows = all_rows(client(sb), f"{sb.url}/{stream}", **params)
    return {int(row["id"]): str(row["updateDate"]) for row in rows}


def assert_nothing_lost(stored: dict[int, str], emitted: dict[int, str]) -> None:
    missing = sorted(set(stored) - set(emitted))
    stale = sorted(i for i in stored if i in emitted and emitted[i] != stored[i])
    assert not missing, f"ids never emitted: {missing}"
    assert not stale, f"ids whose latest version was never emitted: {stale}"


def assert_each_run_emits_a_record_once(*runs: Any) -> None:
    for run in runs:
        for stream, records in run.records.items():
            ids = [r["id"] for r in records]
            assert len(ids) == len(set(ids)), f"{stream} emitted a record twice in one run"


def two_runs(sb: Any, config: dict[str, Any], streams: list[str]) -> tuple[Any, Any]:
    """A run during which the armed changes happen, then the next run."""
    first = _run(config, None, streams)
    plan = sb.admin.paging_mutations()
    assert not plan["rules"], f"changes armed but never made: {plan['rules']}"
    sb.admin.set_paging_mutations([])
    sb.admin.advance_clock(60)
    second = _run(config, first.state, streams)
    return first, second


def _run(config: dict[str, Any], state: dict[str, Any] | None, streams: list[str]) -> Any:
    from tap_precoro.testing import run_tap

    return run_tap(config, state=state, streams=streams)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("stream", ["suppliers", "invoices"])
def test_an_edit_while_paging_loses_nothing(sandbox_factory, make_config, order, stream):
    """Edits of rows already read, and inserts: under updateDate-ascending order an
    edited row moves to the end and the row at the next page boundary shifts onto a
    page already read. Invoices are read with their details (a checkpoint per record)."""
    sb = sandbox_factory(order=order)
    sb.admin.set_paging_mutations(
        [
            {"entity": stream, "after_page": 1, "row": 2},
            {"entity": stream, "after_page": 2, "row": 0},
            {"entity": stream, "after_page": 2, "action": "insert"},
        ]
    )
    config = make_config(sb, page_size=PAGE, fetch_details=stream == "invoices", lookback_minutes=0)
    first, second = two_runs(sb, config, [stream])
    assert_each_run_emits_a_record_once(first, second)
    assert_nothing_lost(stored_versions(sb, stream), latest_emitted(first, second, stream=stream))


FILTERED = [
    # (stream, config, filter the list query sends, the change that makes a row leave)
    ("suppliers", {"include_disabled": False}, {"enable": 1}, {"action": "disable"}),
    (
        "invoices",
        {"status_filters": {"invoices": [2]}},
        {"status[]": 2},
        {"action": "status", "status": 3},
    ),
]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("case", FILTERED, ids=["disable", "status"])
def test_a_row_leaving_a_filtered_result_while_paging_loses_nothing(
    sandbox_factory, make_config, order, case
):
    """A row of page 1 leaves the filtered result after page 1 is served: the rows
    behind it shift one place earlier, and (except under the value cursor) the first
    row of page 2 is never served. The next run's sweep finds and emits it."""
    stream, settings, query, change = case
    sb = sandbox_factory(order=order, scale=60)
    sb.admin.set_paging_mutations(
        [
            {"entity": stream, "after_page": 1, "row": 0, **change},
            {"entity": stream, "after_page": 2, "row": 3, **change},
        ]
    )
    config = make_config(sb, page_size=PAGE, fetch_details=False, lookback_minutes=0, **settings)
    first, second = two_runs(sb, config, [stream])
    assert_each_run_emits_a_record_once(first, second)
    assert_nothing_lost(
        stored_versions(sb, stream, **query), latest_emitted(first, second, stream=stream)
    )


def test_the_sweep_costs_one_list_call_per_page_and_one_call_per_skipped_row(
    sandbox_factory, make_config
):
    """Counted apart from the pass: the sweep lists the window once without the status
    filter and reads in full only the rows the pass skipped (here two documents)."""
    sb = sandbox_factory(scale=60)
    change = {"action": "status", "status": 3}
    sb.admin.set_paging_mutations(
        [
            {"entity": "invoices", "after_page": 1, "row": 0, **change},
            {"entity": "invoices", "after_page": 2, "row": 3, **change},
        ]
    )
    config = make_config(sb, page_size=PAGE, status_filters={"invoices": [2]})
    first = _run(config, None, ["invoices"])
    assert "sweep" in first.state["bookmarks"]["invoices"]
    sb.admin.set_paging_mutations([])
    sb.admin.reset_counters()

    second = _run(config, first.state, ["invoices"])
    counters = sb.admin.counters()
    every_invoice = len(stored_versions(sb, "invoices"))
    sweep_calls = -(-every_invoice // PAGE)
    pass_calls = 1  # nothing changed inside the filter since: one empty page
    assert counters.get("GET", "/invoices") == sweep_calls + pass_calls
    assert counters.get("GET", "/invoices/{idn}") == 2 == len(second.records["invoices"])
    assert "sweep" not in second.state["bookmarks"]["invoices"]
    assert_nothing_lost(
        stored_versions(sb, "invoices", **{"status[]": 2}),
        latest_emitted(first, second, stream="invoices"),
    )

    sb.admin.reset_counters()
    third = _run(config, second.state, ["invoices"])
    assert sb.admin.counters().get("GET", "/invoices") == 1  # no sweep without a suspect pass
    assert not third.records.get("invoices")


@pytest.mark.parametrize("order", ORDERS)
def test_a_first_sync_still_costs_the_minimum_and_leaves_no_sweep(
    sandbox_factory, make_config, order
):
    """Unfiltered and unchanged: ceil(n/page) list calls (one more under updateDate
    ascending, whose value cursor re-reads the last row of each page) and no sweep."""
    sb = sandbox_factory(order=order, scale=60)
    config = make_config(sb, page_size=PAGE, fetch_details=False)
    run = _run(config, None, ["suppliers"])
    rows = len(run.records["suppliers"])
    calls = sb.admin.counters().get("GET", "/suppliers")
    minimum = -(-rows // PAGE)
    if order == "updated_asc":
        assert calls == 1 + -(-(rows - PAGE) // (PAGE - 1))
    else:
        assert calls == minimum
    assert "sweep" not in run.state["bookmarks"]["suppliers"]


def test_the_periodic_sweep_emits_an_id_that_was_never_delivered(sandbox_factory, make_config):
    """A hole the tap could not see (here: a row removed from what the state says
    was delivered): the weekly full listing finds it and emits it, and nothing else."""
    from tap_precoro.sweep import Sketch

    sb = sandbox_factory(scale=60)
    config = make_config(sb, page_size=PAGE, fetch_details=False)
    first = _run(config, None, ["suppliers"])
    delivered = first.state["bookmarks"]["suppliers"]["delivered"]
    lost = first.ids("suppliers")[17]
    sketch = Sketch.from_state(delivered["sketch"])
    sketch.toggle(lost)
    delivered["sketch"] = sketch.to_state()
    delivered["swept_at"] = "2000-01-01T00:00:00+00:00"
    sb.admin.reset_counters()

    second = _run(config, first.state, ["suppliers"])
    rows = len(first.records["suppliers"])
    sweep_calls = -(-rows // PAGE) + 1  # the full listing, then the lost row by id
    assert second.ids("suppliers") == [lost]
    assert sb.admin.counters().get("GET", "/suppliers") == sweep_calls + 1  # + the pass
    assert "sweep" not in second.state["bookmarks"]["suppliers"]

    sb.admin.reset_counters()
    third = _run(config, second.state, ["suppliers"])
    assert not third.records.get("suppliers")
    assert sb.admin.counters().get("GET", "/suppliers") == 1  # swept: not due for a week


def test_the_periodic_sweep_is_off_at_zero(sandbox_factory, make_config):
    sb = sandbox_factory()
    config = make_config(sb, page_size=PAGE, fetch_details=False, completeness_sweep_hours=0)
    first = _run(config, None, ["suppliers"])
    first.state["bookmarks"]["suppliers"]["delivered"]["swept_at"] = "2000-01-01T00:00:00+00:00"
    sb.admin.reset_counters()
    _run(config, first.state, ["suppliers"])
    assert sb.admin.counters().get("GET", "/suppliers") == 1


@pytest.mark.parametrize("order", ORDERS)
def test_a_due_periodic_sweep_after_changes_while_paging_emits_nothing_twice(
    sandbox_factory, make_config, order
):
    """The delivered record stays exact through edits and inserts made while paging:
    the sweep finds nothing missing and sends nothing again."""
    sb = sandbox_factory(order=order, scale=60)
    sb.admin.set_paging_mutations(
        [
            {"entity": "suppliers", "after_page": 1, "row": 2},
            {"entity": "suppliers", "after_page": 2, "action": "insert"},
            {"entity": "suppliers", "after_page": 3, "action": "insert"},
        ]
    )
    config = make_config(sb, page_size=PAGE, fetch_details=False, lookback_minutes=0)
    first, second = two_runs(sb, config, ["suppliers"])
    second.state["bookmarks"]["suppliers"]["delivered"]["swept_at"] = "2000-01-01T00:00:00+00:00"
    sb.admin.advance_clock(60)
    sb.admin.reset_counters()
    third = _run(config, second.state, ["suppliers"])
    calls = sb.admin.counters().get("GET", "/suppliers")
    assert not third.records.get("suppliers")
    stored = stored_versions(sb, "suppliers")
    assert calls == -(-len(stored) // PAGE) + 1  # the full listing, then the pass
    assert_nothing_lost(stored, latest_emitted(first, second, third, stream="suppliers"))


def _suspect_first_run(sb: Any, config: dict[str, Any]) -> Any:
    """A first sync of approved invoices during which two approved rows leave."""
    change = {"action": "status", "status": 3}
    sb.admin.set_paging_mutations(
        [
            {"entity": "invoices", "after_page": 1, "row": 0, **change},
            {"entity": "invoices", "after_page": 2, "row": 3, **change},
        ]
    )
    first = _run(config, None, ["invoices"])
    sb.admin.set_paging_mutations([])
    assert "sweep" in first.state["bookmarks"]["invoices"]
    return first


def test_a_sweep_stopped_by_the_budget_resumes_where_it_stopped(
    sandbox_factory, make_config, tmp_path
):
    from urllib.parse import parse_qs

    sb = sandbox_factory(scale=60)
    settings = {"page_size": PAGE, "fetch_details": False, "status_filters": {"invoices": [2]}}
    first = _suspect_first_run(sb, make_config(sb, **settings))
    sb.admin.reset_counters()
    day_two = make_config(
        sb, **settings, max_requests_per_day=4, budget_ledger_path=str(tmp_path / "2.db")
    )
    second = _run(day_two, first.state, ["invoices"])
    assert "progress" in second.state["bookmarks"]["invoices"]["sweep"]
    stopped_after = sb.admin.counters().get("GET", "/invoices")
    sb.admin.reset_counters()
    day_three = make_config(sb, **settings, budget_ledger_path=str(tmp_path / "3.db"))
    third = _run(day_three, second.state, ["invoices"])
    pages = [
        int(parse_qs(r["query"]).get("page", ["1"])[0])
        for r in sb.admin.requests()
        if r["path"] == "/invoices" and "modifiedSince" not in r["query"]
    ]
    assert pages[0] == stopped_after + 1  # no completed sweep page is read again
    assert "sweep" not in third.state["bookmarks"]["invoices"]
    assert_nothing_lost(
        stored_versions(sb, "invoices", **{"status[]": 2}),
        latest_emitted(first, second, third, stream="invoices"),
    )


def test_a_sweep_that_cannot_name_the_differences_re_reads_the_window(sandbox_factory, make_config):
    """More differences than the sketch can recover: the window is read again as a pass
    (records may be sent twice), and still nothing is lost."""
    from tap_precoro.sweep import Sketch

    sb = sandbox_factory(scale=60)
    config = make_config(sb, page_size=PAGE, fetch_details=False, status_filters={"invoices": [2]})
    first = _suspect_first_run(sb, config)
    sweep = first.state["bookmarks"]["invoices"]["sweep"]
    sketch = Sketch.from_state(sweep["sketch"])
    sketch.add_all(range(1, 200))  # 199 ids the listing will not have
    sweep["sketch"] = sketch.to_state()
    second = _run(config, first.state, ["invoices"])
    # The window was read again from the start: a paged, filtered pass, hence swept next.
    third = _run(config, second.state, ["invoices"])
    assert "sweep" not in third.state["bookmarks"]["invoices"]
    assert not third.records.get("invoices")
    assert_nothing_lost(
        stored_versions(sb, "invoices", **{"status[]": 2}),
        latest_emitted(first, second, third, stream="invoices"),
    )


def test_a_row_found_by_the_sweep_of_a_pass_is_not_sent_again_by_the_periodic_sweep(
    sandbox_factory, make_config
):
    from tap_precoro.sweep import Sketch

    sb = sandbox_factory(scale=60)
    config = make_config(sb, page_size=PAGE, fetch_details=False)
    first = _run(config, None, ["suppliers"])
    stream_state = first.state["bookmarks"]["suppliers"]
    lost = first.ids("suppliers")[23]
    sketch = Sketch.from_state(stream_state["delivered"]["sketch"])
    sketch.toggle(lost)  # as if the first sync had skipped it
    stream_state["delivered"]["sketch"] = sketch.to_state()
    stream_state["sweep"] = {
        "since": None,
        "started_at": stream_state["delivered"]["created_until"],
        "sketch": sketch.to_state(),
    }
    second = _run(config, first.state, ["suppliers"])
    assert second.ids("suppliers") == [lost]
    second.state["bookmarks"]["suppliers"]["delivered"]["swept_at"] = "2000-01-01T00:00:00+00:00"
    third = _run(config, second.state, ["suppliers"])
    assert not third.records.get("suppliers")


def test_a_sweep_stopped_while_emitting_keeps_the_rows_still_to_emit(
    sandbox_factory, make_config, tmp_path
):
    sb = sandbox_factory(scale=60)
    settings = {"page_size": PAGE, "status_filters": {"invoices": [2]}}
    first = _suspect_first_run(sb, make_config(sb, **settings))
    listing = -(-len(stored_versions(sb, "invoices")) // PAGE)
    day_two = make_config(
        sb, **settings, max_requests_per_day=listing + 1, budget_ledger_path=str(tmp_path / "2")
    )
    second = _run(day_two, first.state, ["invoices"])
    sweep = second.state["bookmarks"]["invoices"]["sweep"]
    assert len(second.records["invoices"]) == 1
    assert len(sweep["missing"]) == 1  # listed, one of two emitted: the other is kept
    sb.admin.reset_counters()
    third = _run(
        make_config(sb, **settings, budget_ledger_path=str(tmp_path / "3")),
        second.state,
        ["invoices"],
    )
    assert sb.admin.counters().get("GET", "/invoices/{idn}") == 1  # no listing again
    assert "sweep" not in third.state["bookmarks"]["invoices"]
    assert_nothing_lost(
        stored_versions(sb, "invoices", **{"status[]": 2}),
        latest_emitted(first, second, third, stream="invoices"),
    )


def test_a_value_cursor_that_jumps_over_rows_is_swept(sandbox_factory, make_config):
    """`api_timezone` 9 hours ahead of the zone Precoro compares in: each value cursor
    asks for rows from 9 hours after the last row read, so rows are jumped over. The
    row the cursor stood on does not come back, the pass is swept, nothing is lost."""
    from datetime import UTC, datetime, timedelta

    sb = sandbox_factory(order="updated_asc", scale=60)
    ids = sorted(stored_versions(sb, "suppliers"))[:30]
    start = datetime.now(UTC) - timedelta(days=2)
    for minute, key in enumerate(ids):  # 30 rows a minute apart: inside one jump
        sb.admin.touch("suppliers", [key], update_date=start + timedelta(minutes=minute))
    config = make_config(sb, page_size=PAGE, fetch_details=False, api_timezone="Asia/Tokyo")
    first = _run(config, None, ["suppliers"])
    assert "sweep" in first.state["bookmarks"]["suppliers"]
    second = _run(config, first.state, ["suppliers"])
    assert_each_run_emits_a_record_once(first, second)
    assert_nothing_lost(
        stored_versions(sb, "suppliers"), latest_emitted(first, second, stream="suppliers")
    )


@pytest.mark.parametrize("order", ORDERS)
def test_rows_that_share_a_second_do_not_pass_for_an_updatedate_order(
    sandbox_factory, make_config, order
):
    """Under a shuffle, a page of rows from one second with one later row at its end
    looks like `updateDate` ascending (it happens once in ten such pages). A value
    cursor taken from that page would jump over the rest of the second: the rows that
    share a second are no evidence of the order, so the pass keeps to page numbers.
    (The shuffle is the case that failed; no other order may lose either.)"""
    from datetime import timedelta

    sb = sandbox_factory(order=order, scale=60)
    config = make_config(sb, page_size=PAGE, fetch_details=False, lookback_minutes=0)
    first = _run(config, None, ["suppliers"])
    sb.admin.advance_clock(60)
    listed = [int(row["id"]) for row in all_rows(client(sb), f"{sb.url}/suppliers")]
    now = sb.admin.clock().replace(microsecond=0)
    bulk = listed[:9] + listed[10:30]  # one bulk edit: 29 rows in one second
    sb.admin.touch("suppliers", bulk, update_date=now)
    sb.admin.touch("suppliers", [listed[9]], update_date=now + timedelta(seconds=1))
    sb.admin.advance_clock(60)

    second = _run(config, first.state, ["suppliers"])
    assert sorted(second.ids("suppliers")) == sorted([*bulk, listed[9]])
    assert_nothing_lost(
        stored_versions(sb, "suppliers"), latest_emitted(first, second, stream="suppliers")
    )
