"""The sandbox fires webhooks at a real receiver; the tap in webhook mode drains them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from singer_sdk.exceptions import ConfigValidationError
from tap_precoro.bookmarks import to_state_timestamp
from tap_precoro.tap import TapPrecoro
from tap_precoro.testing import TapRun, run_tap
from tap_precoro.webhook_sync import outage
from tap_precoro.webhooks.inbox import Entry, InboxMissing

from .conftest import Rig

DOCS = "purchaseorders"
WEBHOOK_STREAMS = ["purchaseorders", "suppliers", "invoices", "creditnotes", "budgets"]


def first_sync(rig: Rig, streams: list[str], **config: Any) -> TapRun:
    """The first run in webhook mode is a full poll (the initial sync)."""
    run = run_tap(rig.config(**config), streams=streams)
    assert run.exit_code == 0
    for name in streams:
        assert run.records[name], name
        assert run.state["bookmarks"][name]["webhooks"]["reconciled_at"]
    return run


def depth(rig: Rig) -> int:
    inbox = rig.inbox()
    try:
        return inbox.depth()
    finally:
        inbox.close()


def test_changed_entities_are_fetched_once_each_and_emitted(rig):
    first = first_sync(rig, WEBHOOK_STREAMS)
    pos = first.records[DOCS][:4]
    suppliers = first.ids("suppliers")[:3]
    rig.sandbox.admin.touch(DOCS, [r["idn"] for r in pos])
    rig.sandbox.admin.touch("suppliers", suppliers)
    rig.flush()
    rig.sandbox.admin.reset_counters()

    run = run_tap(rig.config(), state=first.state, streams=WEBHOOK_STREAMS)
    counters = rig.sandbox.admin.counters()
    assert sorted(run.ids(DOCS)) == sorted(r["id"] for r in pos)
    assert sorted(run.ids("suppliers")) == sorted(suppliers)
    # Documents: one detail call each (lines included); master data: one
    # `modifiedSince` list read for all three (issue 16).
    assert counters.get("GET", "/purchaseorders/{idn}") == 4
    assert all("items" in record for record in run.records[DOCS])
    assert counters.get("GET", "/suppliers") == 1
    assert counters.total == 5  # no webhook stream polled
    assert not run.records.get("invoices")
    # The emitted records are the current state, shaped like polled ones.
    for record in run.records[DOCS]:
        stored = rig.sandbox.admin.record(DOCS, record["idn"])
        assert record["updateDate"] == stored["updateDate"]
    assert set(run.records["suppliers"][0]) == set(first.records["suppliers"][0])

    rig.sandbox.admin.reset_counters()
    idle = run_tap(rig.config(), state=run.state, streams=WEBHOOK_STREAMS)
    assert rig.sandbox.admin.counters().total == 0  # nothing new: no call at all
    assert sum(len(rows) for rows in idle.records.values()) == 0


def test_thousand_updates_to_ten_entities_cost_ten_fetches(rig):
    first = first_sync(rig, [DOCS])
    idns = [r["idn"] for r in first.records[DOCS][:10]]
    for _ in range(100):
        rig.sandbox.admin.touch(DOCS, idns)
    rig.flush()
    assert depth(rig) == 1000
    rig.sandbox.admin.reset_counters()

    run = run_tap(rig.config(), state=first.state, streams=[DOCS])
    counters = rig.sandbox.admin.counters()
    assert len(run.records[DOCS]) == 10
    assert counters.total == 10
    assert counters.get("GET", "/purchaseorders/{idn}") == 10


def test_duplicate_deliveries_are_emitted_and_fetched_once(rig):
    # A second registered URL for the same receiver: every change arrives twice.
    rig.sandbox.admin.register_webhook(rig.receiver.webhook_url() + "&copy=2")
    first = first_sync(rig, ["suppliers"])
    suppliers = first.ids("suppliers")[:5]
    rig.sandbox.admin.touch("suppliers", suppliers)
    rig.sandbox.admin.touch("suppliers", suppliers)
    rig.flush()
    assert depth(rig) == 20
    rig.sandbox.admin.reset_counters()

    run = run_tap(rig.config(), state=first.state, streams=["suppliers"])
    assert sorted(run.ids("suppliers")) == sorted(suppliers)
    assert rig.sandbox.admin.counters().total == 1  # one list read for the five


def test_invoices_and_credit_notes_share_one_fetch_and_keep_their_filters(rig):
    first = first_sync(rig, ["invoices", "creditnotes"])
    credit = first.records["creditnotes"][0]
    plain = next(r for r in first.records["invoices"] if r["logicType"] == 0)
    rig.sandbox.admin.touch("invoices", [credit["idn"], plain["idn"]])
    rig.flush()
    rig.sandbox.admin.reset_counters()

    run = run_tap(rig.config(), state=first.state, streams=["invoices", "creditnotes"])
    assert sorted(run.ids("invoices")) == sorted([credit["id"], plain["id"]])
    assert run.ids("creditnotes") == [credit["id"]]
    assert rig.sandbox.admin.counters().get("GET", "/invoices/{idn}") == 2


def test_receiver_restart_keeps_notifications_and_triggers_a_reconcile(rig):
    first = first_sync(rig, ["suppliers"])
    before = first.ids("suppliers")[:3]
    rig.sandbox.admin.touch("suppliers", before)
    rig.flush()
    rig.stop_receiver()
    rig.start_receiver()  # same inbox, same port: deliveries continue
    after = first.ids("suppliers")[3:5]
    rig.sandbox.admin.touch("suppliers", after)
    rig.flush()
    assert depth(rig) == 5  # what was acknowledged before the restart is still there
    rig.sandbox.admin.reset_counters()

    run = run_tap(rig.config(), state=first.state, streams=["suppliers"])
    assert sorted(run.ids("suppliers")) == sorted(before + after)
    # A restart means webhooks may have been missed: a modifiedSince poll ran.
    queries = [r["query"] for r in rig.sandbox.admin.requests() if r["path"] == "/suppliers"]
    assert any("modifiedSince" in q for q in queries)
    # ...and it covered the inbox: the next run has nothing to do.
    rig.sandbox.admin.reset_counters()
    again = run_tap(rig.config(), state=run.state, streams=["suppliers"])
    assert not again.records.get("suppliers")
    assert rig.sandbox.admin.counters().total == 0


def test_changes_while_the_receiver_was_down_are_caught_by_the_reconcile_poll(rig):
    first = first_sync(rig, [DOCS, "suppliers"])
    rig.stop_receiver()
    lost_pos = first.records[DOCS][:3]
    lost_suppliers = first.ids("suppliers")[:2]
    rig.sandbox.admin.touch(DOCS, [r["idn"] for r in lost_pos])
    rig.sandbox.admin.touch("suppliers", lost_suppliers)
    rig.flush()
    stats = rig.sandbox.admin.webhooks()["stats"]
    assert stats["given_up"] == 5  # Precoro-like sender: retried, then dropped
    assert depth(rig) == 0
    rig.start_receiver()

    run = run_tap(rig.config(), state=first.state, streams=[DOCS, "suppliers"])
    assert sorted(run.ids(DOCS)) == sorted(r["id"] for r in lost_pos)
    assert sorted(run.ids("suppliers")) == sorted(lost_suppliers)
    counters = rig.sandbox.admin.counters()
    assert counters.get("GET", "/purchaseorders/{idn}") >= 3


def test_reconcile_runs_when_reconcile_every_hours_passed(rig):
    first = first_sync(rig, ["suppliers"])
    state = first.state
    old = to_state_timestamp(datetime.now(UTC) - timedelta(hours=25))
    state["bookmarks"]["suppliers"]["webhooks"]["reconciled_at"] = old
    rig.sandbox.admin.reset_counters()
    run = run_tap(rig.config(), state=state, streams=["suppliers"])
    assert rig.sandbox.admin.counters().get("GET", "/suppliers") == 1  # the poll, no changes
    assert run.state["bookmarks"]["suppliers"]["webhooks"]["reconciled_at"] > old

    rig.sandbox.admin.reset_counters()
    run_tap(rig.config(), state=run.state, streams=["suppliers"])
    assert rig.sandbox.admin.counters().total == 0  # not due again


def test_inbox_position_moves_only_with_emitted_records(rig):
    """A run cut short (crash) after k records: rerunning from the last STATE re-sends,
    never loses, and every STATE covers only records already emitted."""
    first = first_sync(rig, [DOCS])
    rows = first.records[DOCS][:6]
    rig.sandbox.admin.touch(DOCS, [r["idn"] for r in rows])
    rig.flush()
    full = run_tap(rig.config(), state=first.state, streams=[DOCS])
    assert len(full.records[DOCS]) == 6
    positions = [s["bookmarks"][DOCS]["webhooks"]["position"] for s in full.states]
    assert positions == sorted(positions)

    # Crash after the 3rd record: the process only got to write the STATEs before it.
    crash_state = full.states[3]
    resumed = run_tap(rig.config(), state=crash_state, streams=[DOCS])
    delivered = set(full.ids(DOCS)[:3]) | set(resumed.ids(DOCS))
    assert delivered == {r["id"] for r in rows}
    assert len(resumed.records[DOCS]) >= 3


def test_budget_stop_in_a_drain_keeps_state_and_the_next_run_finishes(rig):
    first = first_sync(rig, [DOCS])
    rows = first.records[DOCS][:8]
    rig.sandbox.admin.touch(DOCS, [r["idn"] for r in rows])
    rig.flush()
    day_two = str(rig.ledger_dir / "day-two.sqlite3")  # a fresh daily budget of 5 calls
    config = rig.config(max_requests_per_day=5, budget_ledger_path=day_two)
    stopped = run_tap(config, state=first.state, streams=[DOCS])
    assert stopped.exit_code == 0
    assert len(stopped.records[DOCS]) == 5
    fresh = rig.ledger_dir / "day-three.sqlite3"
    rest = run_tap(rig.config(budget_ledger_path=str(fresh)), state=stopped.state, streams=[DOCS])
    assert set(stopped.ids(DOCS)) | set(rest.ids(DOCS)) == {r["id"] for r in rows}
    assert len(rest.records[DOCS]) == 3


def test_silence_longer_than_three_heartbeats_counts_as_an_outage():
    def beat(at: float) -> Entry:
        return Entry(position=int(at), received_at=at, kind="heartbeat")

    steady = [beat(t) for t in (1060.0, 1120.0, 1180.0)]
    assert outage(steady, 1000.0, 1200.0, heartbeat=60) is None
    gap = [beat(1060.0), beat(1600.0)]
    assert "silent" in (outage(gap, 1000.0, 1610.0, heartbeat=60) or "")
    assert "silent" in (outage(steady, 1000.0, 2000.0, heartbeat=60) or "")  # down now
    restarted = [*steady, Entry(position=2000, received_at=1190.0, kind="started")]
    assert "restarted" in (outage(restarted, 1000.0, 1200.0, heartbeat=60) or "")
    assert outage(gap, 1000.0, 1610.0, heartbeat=None) is None


def test_missing_inbox_fails_the_run_with_a_clear_message(rig, tmp_path):
    config = rig.config(webhook_inbox=str(tmp_path / "nowhere.sqlite3"))
    with pytest.raises(InboxMissing, match="precoro-webhooks serve"):
        run_tap(config, streams=["suppliers"])
    assert rig.sandbox.admin.counters().total == 0


def test_negative_reconcile_period_is_rejected(rig):
    with pytest.raises(ConfigValidationError, match="reconcile_every_hours"):
        TapPrecoro(config=rig.config(reconcile_every_hours=-1), validate_config=True)
