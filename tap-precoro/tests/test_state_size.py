"""STATE stays bounded during a pass after a bulk update (issue 16, part 2).

The SDK writes the whole state after every document, so anything in it that grows with
the records already emitted makes a pass cost the square of its size in STATE bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

from precoro_sandbox.testing import all_rows, client
from tap_precoro.bookmarks import RECENT_LIMIT

DOCUMENTS = 400
PAGE = 50


def state_bytes(states: list[dict[str, Any]]) -> int:
    """What a run's STATE messages cost on the wire."""
    return sum(len(json.dumps(state)) for state in states)


def setup(sandbox_factory: Any, make_config: Any, run_tap: Any, **config: Any) -> Any:
    """A synced invoice stream, then a normal incremental pass of every invoice."""
    sb = sandbox_factory(counts={"invoices": DOCUMENTS})
    budget = {"max_requests_per_hour": 10_000, "max_requests_per_day": 10_000}
    cfg = make_config(sb, page_size=PAGE, **budget, **config)
    first = run_tap(cfg, streams=["invoices"])
    idns = [r["idn"] for r in first.records["invoices"]]
    sb.admin.advance_clock(7200)
    # Changed an hour ago: outside the look-back of the next pass (a normal pass).
    sb.admin.touch("invoices", idns, update_date=sb.admin.clock() - timedelta(hours=1))
    normal = run_tap(cfg, state=first.state, streams=["invoices"])
    assert len(normal.records["invoices"]) == DOCUMENTS
    sb.admin.advance_clock(3600)
    return sb, cfg, normal, idns


def versions(run: Any) -> dict[int, str]:
    """Delivered updateDate per invoice id (the last one wins)."""
    return {int(r["id"]): str(r["updateDate"]) for r in run.records["invoices"]}


def test_a_bulk_update_read_by_a_long_pass_costs_no_more_state_and_no_resend(
    sandbox_factory, make_config, run_tap
):
    """Every invoice changed just before the run, all inside the look-back.

    The pass outlasts the look-back (a slow last detail call, as 400 detail calls at
    Precoro's 1/s would), so the closing pass settles what the state cannot keep: the
    next run sends nothing again and pays one list call.
    """
    sb, cfg, normal, idns = setup(sandbox_factory, make_config, run_tap, lookback_minutes=0.02)
    sb.admin.touch("invoices", idns)  # now: inside the 1.2 s look-back of the pass
    sb.admin.set_faults(
        [{"kind": "delay", "route": "/invoices/*", "delay_seconds": 3.5, "schedule": [DOCUMENTS]}]
    )
    sb.admin.reset_counters()
    bulk = run_tap(cfg, state=normal.state, streams=["invoices"])
    sb.admin.clear_faults()

    assert state_bytes(bulk.states) < 2 * state_bytes(normal.states)
    largest = max(len(json.dumps(state)) for state in bulk.states)
    assert largest < 2 * max(len(json.dumps(state)) for state in normal.states)
    counts = Counter(int(r["id"]) for r in bulk.records["invoices"])
    assert len(counts) == DOCUMENTS
    assert set(counts.values()) == {1}
    for record in bulk.records["invoices"]:
        assert sb.admin.record("invoices", record["idn"])["updateDate"] == record["updateDate"]
    pages = -(-DOCUMENTS // PAGE)
    # The pass (pages + one detail call each), then the closing pass (pages).
    assert sb.admin.counters().total == pages + DOCUMENTS + pages

    sb.admin.advance_clock(1)
    sb.admin.reset_counters()
    after = run_tap(cfg, state=bulk.state, streams=["invoices"])
    assert not after.records.get("invoices")
    assert sb.admin.counters().total == 1


def test_a_bulk_update_read_by_a_quick_pass_keeps_state_bounded_and_loses_nothing(
    sandbox_factory, make_config, run_tap
):
    """A pass shorter than the look-back cannot settle: the next pass reads the versions
    the state could not keep again (sent twice, never lost); STATE stays bounded."""
    sb, cfg, normal, idns = setup(sandbox_factory, make_config, run_tap)
    sb.admin.touch("invoices", idns)
    bulk = run_tap(cfg, state=normal.state, streams=["invoices"])

    assert state_bytes(bulk.states) < 2 * state_bytes(normal.states)
    assert len(bulk.state["bookmarks"]["invoices"]["recent"]) == RECENT_LIMIT
    assert len(versions(bulk)) == DOCUMENTS

    sb.admin.advance_clock(60)  # still inside the 5-minute look-back
    sb.admin.reset_counters()
    after = run_tap(cfg, state=bulk.state, streams=["invoices"])
    assert len(after.records["invoices"]) == DOCUMENTS - RECENT_LIMIT
    for key, version in versions(after).items():
        assert versions(bulk)[key] == version  # the same versions, nothing newer lost


def test_a_quick_pass_waits_out_the_look_back_when_that_beats_the_calls_it_saves(
    sandbox_factory, make_config, run_tap
):
    """At 50 calls/s the pass takes about 8 s, less than the 10.5 s look-back: rather than
    leave 300 detail calls (6 s at that rate) to the next run, the tap waits the rest of
    the look-back out (or not at all, on a slow machine) and settles them."""
    sb, cfg, normal, idns = setup(sandbox_factory, make_config, run_tap, lookback_minutes=0.175)
    sb.admin.touch("invoices", idns)
    sb.admin.reset_counters()
    bulk = run_tap({**cfg, "max_requests_per_second": 50}, state=normal.state, streams=["invoices"])

    pages = -(-DOCUMENTS // PAGE)
    assert sb.admin.counters().total == pages + DOCUMENTS + pages
    assert len(versions(bulk)) == DOCUMENTS
    sb.admin.advance_clock(1)
    sb.admin.reset_counters()
    after = run_tap(cfg, state=bulk.state, streams=["invoices"])
    assert not after.records.get("invoices")
    assert sb.admin.counters().total == 1


def test_the_closing_pass_sends_a_changed_version_once_even_when_it_lists_it_twice(
    sandbox_factory, make_config, run_tap
):
    """A supplier edited after the pass sent it is sent again by the closing pass, once.

    Suppliers listed newest id first; 400 of them changed inside the look-back; the
    pass outlasts the look-back (a slow last page), so a closing pass settles. The
    sandbox edits the last row of page 2 right after serving it (the pass sends the
    version it read), and inserts a supplier right after the closing pass's page 2,
    so that row is listed again at the top of page 3: its new version was sent twice.
    """
    sb = sandbox_factory(counts={"suppliers": DOCUMENTS}, order="id_desc")
    budget = {"max_requests_per_hour": 10_000, "max_requests_per_day": 10_000}
    cfg = make_config(sb, page_size=PAGE, fetch_details=False, lookback_minutes=0.05, **budget)
    first = run_tap(cfg, streams=["suppliers"])
    sb.admin.advance_clock(3600)
    # Two seconds ago (inside the look-back): the edit below lands in a later second.
    changed = sb.admin.clock().replace(microsecond=0) - timedelta(seconds=2)
    sb.admin.touch(
        "suppliers", [int(r["id"]) for r in first.records["suppliers"]], update_date=changed
    )
    pages = -(-DOCUMENTS // PAGE)
    sb.admin.set_faults(
        [{"kind": "delay", "route": "/suppliers", "delay_seconds": 5.5, "schedule": [pages]}]
    )
    sb.admin.set_paging_mutations(
        [
            {"entity": "suppliers", "after_page": 2, "row": PAGE - 1},
            {"entity": "suppliers", "after_page": pages + 2, "action": "insert"},
        ]
    )
    bulk = run_tap(cfg, state=first.state, streams=["suppliers"])
    sb.admin.clear_faults()
    assert not sb.admin.paging_mutations()["rules"], "the closing pass did not run"

    sent = Counter((int(r["id"]), str(r["updateDate"])) for r in bulk.records["suppliers"])
    assert [pair for pair, times in sent.items() if times > 1] == []
    inserted = sb.admin.paging_mutations()["fired"][1]["id"]  # the next run's to read
    latest = {int(r["id"]): str(r["updateDate"]) for r in bulk.records["suppliers"]}
    stored = {
        int(r["id"]): str(r["updateDate"]) for r in all_rows(client(sb), f"{sb.url}/suppliers")
    }
    del stored[inserted]
    assert {key: latest.get(key) for key in stored} == stored
