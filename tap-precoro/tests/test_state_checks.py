"""An incoming state that cannot be right never silently loses data.

- A bookmark later than the server's clock is replaced (the stream re-reads from its
  configured start), so records are still delivered and later changes still travel.
- A corrupt state stops the run before any request, naming the stream.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from precoro_client.registry import get
from tap_precoro.bookmarks import parse_timestamp
from tap_precoro.tap import StateError, TapPrecoro

FUTURE = "2099-01-01T00:00:00+00:00"
TAP = [sys.executable, "-m", "tap_precoro"]


def _state(**streams: dict[str, Any]) -> dict[str, Any]:
    return {"bookmarks": streams}


def _future(stream: str) -> dict[str, Any]:
    return {"replication_key": "updateDate", "replication_key_value": FUTURE}


def _all_ids(sb: Any, stream: str) -> int:
    return int(sb.admin.stats()[stream])


def test_future_bookmarks_are_replaced_and_every_record_is_read(sandbox, make_config, run_tap):
    config = make_config(sandbox, page_size=200, fetch_details=False)
    streams = ["suppliers", "invoices"]
    state = _state(suppliers=_future("suppliers"), invoices=_future("invoices"))

    run = run_tap(config, state=state, streams=streams)

    assert run.exit_code == 0
    for stream in streams:
        ids = run.ids(stream)
        assert len(ids) == len(set(ids)) == _all_ids(sandbox, stream), stream
    counters = sandbox.admin.counters()
    # suppliers runs first: its first list call is the one that tells the server's
    # time, so it is repeated with the replaced bookmark; invoices knows the time
    # before its first call and wastes none.
    assert counters.get("GET", get("suppliers").path) == 2
    assert counters.get("GET", get("invoices").path) == 1
    server_now = sandbox.admin.clock()
    for stream in streams:
        saved = run.state["bookmarks"][stream]["replication_key_value"]
        assert parse_timestamp(saved) <= server_now, stream

    # Later changes travel again.
    changed = run.ids("suppliers")[:3]
    sandbox.admin.advance_clock(600)
    sandbox.admin.touch("suppliers", changed)
    sandbox.admin.reset_counters()
    second = run_tap(config, state=run.state, streams=["suppliers"])
    assert sorted(second.ids("suppliers")) == sorted(changed)
    assert sandbox.admin.counters().get("GET", get("suppliers").path) == 1


def test_a_future_bookmark_falls_back_to_the_configured_start(sandbox, make_config, run_tap):
    """The re-read starts at stream_start_dates, not at the beginning of time."""
    first = run_tap(make_config(sandbox, page_size=200), streams=["suppliers"])
    dates = sorted(parse_timestamp(r["updateDate"]) for r in first.records["suppliers"])
    start = dates[len(dates) // 2]
    expected = {
        r["id"] for r in first.records["suppliers"] if parse_timestamp(r["updateDate"]) >= start
    }
    config = make_config(
        sandbox, page_size=200, stream_start_dates={"suppliers": start.isoformat()}
    )

    run = run_tap(config, state=_state(suppliers=_future("suppliers")), streams=["suppliers"])

    assert set(run.ids("suppliers")) == expected


def test_a_reference_refresh_time_in_the_future_does_not_postpone_refreshes(
    sandbox, make_config, run_tap
):
    state = _state(taxes={"refreshed_at": FUTURE, "hashes": {}})
    run = run_tap(make_config(sandbox), state=state, streams=["taxes"])
    assert len(run.ids("taxes")) == _all_ids(sandbox, "taxes") > 0


CORRUPT = {
    "bookmark-not-a-date": ("suppliers", _state(suppliers={"replication_key_value": "yesterday"})),
    "bookmark-a-number": ("suppliers", _state(suppliers={"replication_key_value": 20250101})),
    "recent-a-list": ("invoices", _state(invoices={"recent": ["1", "2"]})),
    "pass-page-text": ("items", _state(items={"pass": {"next_page": "three", "query": "x"}})),
    "pass-since-garbled": ("payments", _state(payments={"pass": {"since": "2025-13-45"}})),
    "stream-state-a-string": ("suppliers", _state(suppliers="2025-01-01")),
    "hashes-a-list": ("taxes", _state(taxes={"hashes": ["a"]})),
    "refreshed-at-garbled": ("taxes", _state(taxes={"refreshed_at": "soon"})),
    "partition-without-context": (
        "itemcustomfieldoptions",
        _state(itemcustomfieldoptions={"partitions": [{"hashes": {}}]}),
    ),
    "webhook-position-negative": ("suppliers", _state(suppliers={"webhooks": {"position": -4}})),
    "bookmarks-a-list": ("bookmarks", {"bookmarks": ["suppliers"]}),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_state_is_refused_naming_the_stream(sandbox, make_config, case):
    named, state = CORRUPT[case]
    with pytest.raises(StateError) as info:
        TapPrecoro(config=make_config(sandbox), state=state, validate_config=True)
    assert info.value.errors
    assert named in info.value.errors[0]
    assert sandbox.admin.counters().total == 0


def test_corrupt_state_file_stops_the_cli_before_any_request(sandbox, make_config, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(make_config(sandbox)))
    state = tmp_path / "state.json"
    for text, named in (
        ('{"bookmarks": {"suppliers": {"replication_key_value": "yesterday"}', "state file"),
        (json.dumps(_state(suppliers={"replication_key_value": "yesterday"})), "suppliers"),
        ("[1, 2, 3]", "state"),
    ):
        state.write_text(text)
        result = subprocess.run(
            [*TAP, "--config", str(config), "--state", str(state)],
            check=False,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        assert named in result.stderr
        assert "Traceback" not in result.stderr
    assert sandbox.admin.counters().total == 0


def test_the_tap_accepts_its_own_state(sandbox, make_config, run_tap):
    """Every shape the tap writes (passes, partitions, hashes) passes the check."""
    config = make_config(sandbox, page_size=10)
    first = run_tap(config)
    assert first.exit_code == 0
    mid_run = [s for s in first.states if any("pass" in b for b in s.get("bookmarks", {}).values())]
    assert mid_run, "some STATE was written inside a pass"
    for state in [mid_run[0], first.state]:
        TapPrecoro(config=config, state=json.loads(json.dumps(state)), validate_config=True)


def test_state_file_numbers_are_plain_numbers(sandbox, make_config):
    """The SDK reads a state file's floats as Decimal; the tap keeps them as it wrote them."""
    from decimal import Decimal

    from tap_precoro.webhook_sync import WebhookProgress

    state = _state(suppliers={"webhooks": {"position": 12, "seen_at": Decimal("1764579600.25")}})
    tap = TapPrecoro(config=make_config(sandbox), state=state, validate_config=True)
    saved = tap.state["bookmarks"]["suppliers"]
    assert WebhookProgress(saved).seen_at == 1764579600.25
    assert WebhookProgress(saved).position == 12


def test_a_reconcile_time_in_the_future_does_not_postpone_reconciles():
    from tap_precoro.webhook_sync import Scan, WebhookProgress, reconcile_reason
    from tap_precoro.webhooks.inbox import InboxInfo

    now = parse_timestamp("2026-06-01T12:00:00+00:00")
    progress = WebhookProgress({"webhooks": {"inbox": "i", "position": 3, "reconciled_at": FUTURE}})
    info = InboxInfo(inbox_id="i", head=3, pruned_upto=0)
    found = Scan([], [], 3, None)
    reason = reconcile_reason(progress, info, found, every=timedelta(hours=24), now=now)
    assert reason is not None
