"""Transient failures are retried, rate limits are obeyed, and every record arrives."""

from __future__ import annotations

import pytest

STREAMS = ["suppliers", "invoices"]


def assert_complete(sb, run) -> None:
    for stream in STREAMS:
        assert len(set(run.ids(stream))) == sb.admin.stats()[stream], stream


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 503, "schedule": [2, 3]},
        {"kind": "status", "status": 502, "html": True, "schedule": [2]},
        {"kind": "status", "status": 500, "schedule": [3]},
        {"kind": "status", "status": 504, "schedule": [1]},
        {"kind": "drop", "schedule": [3]},
        {"kind": "truncate", "schedule": [2]},
        {"kind": "delay", "delay_seconds": 1.5, "schedule": [2]},
    ],
    ids=["503", "502-html", "500", "504", "dropped", "truncated-json", "read-timeout"],
)
def test_transient_failures_are_retried_and_nothing_is_lost(sandbox, make_config, run_tap, fault):
    sandbox.admin.set_faults([{"route": "/suppliers", **fault}])
    config = make_config(sandbox, page_size=10, read_timeout_seconds=0.5)
    run = run_tap(config, streams=STREAMS)
    assert run.exit_code == 0
    assert_complete(sandbox, run)
    fired = sum(sandbox.admin.faults()["fired"].values())
    assert fired == len(fault.get("schedule", [])), "the fault really happened"


def test_limits_at_their_real_values_scaled_down_never_see_a_429(
    sandbox_factory, make_config, run_tap
):
    """Server and client share Precoro's limit structure, scaled down.

    Spacing is scaled only 2x (500 ms): the governor's 10% margin (50 ms) must stay
    larger than the scheduling jitter of a sandbox running in the same process on a
    loaded 2-core machine (at 4x, a 25 ms margin met one 429 in a full run under load).
    """
    sb = sandbox_factory(limits="per_second=2,duplicate_get_seconds=3,per_hour=60,per_day=120")
    config = make_config(
        sb,
        page_size=10,
        fetch_details=False,
        max_requests_per_second=2,
        duplicate_get_interval_seconds=3,
        max_requests_per_hour=60,
        max_requests_per_day=120,
    )
    run = run_tap(config, streams=STREAMS)
    assert_complete(sb, run)
    counters = sb.admin.counters()
    assert counters.get(status=429) == 0
    assert counters.total >= 9


def test_per_second_429_is_waited_out(sandbox_factory, make_config, run_tap):
    sb = sandbox_factory(limits="off,per_second=25")
    run = run_tap(make_config(sb, page_size=10, fetch_details=False), streams=STREAMS)
    assert_complete(sb, run)
    limiters = {e["limiter"] for e in sb.admin.requests() if e["status"] == 429}
    assert limiters == {"Rate limiter by second"}


def test_duplicate_get_429_waits_until_retry_after(sandbox_factory, make_config, run_tap):
    """A retried page is an identical GET; Precoro refuses it for a while."""
    sb = sandbox_factory(limits="off,duplicate_get_seconds=1")
    sb.admin.set_faults([{"kind": "status", "status": 503, "route": "/suppliers", "schedule": [1]}])
    run = run_tap(make_config(sb, page_size=10, fetch_details=False), streams=STREAMS)
    assert_complete(sb, run)
    limiters = [e["limiter"] for e in sb.admin.requests() if e["status"] == 429]
    assert limiters == ["Route based limiter by minute"]


def test_hourly_429_longer_than_max_wait_stops_cleanly(sandbox_factory, make_config, run_tap):
    sb = sandbox_factory(limits="off,per_hour=2")
    config = make_config(sb, page_size=10, fetch_details=False, max_wait_seconds=30)
    run = run_tap(config, streams=STREAMS)
    assert run.exit_code == 0
    assert sb.admin.counters().get(status=429) == 1  # one call learns it; no doomed calls
    assert run.state["bookmarks"]["suppliers"]["pass"]["next_page"] == 3


def test_daily_429_stops_cleanly_with_state(sandbox_factory, make_config, run_tap):
    sb = sandbox_factory(limits="off,per_day=2")
    run = run_tap(make_config(sb, page_size=10, fetch_details=False), streams=STREAMS)
    assert run.exit_code == 0
    assert sb.admin.counters().get(status=429) == 1
    assert run.state["bookmarks"]["suppliers"]["pass"]["next_page"] == 3
    # A second run on the same day makes no call at all: the ledger remembers.
    sb.admin.reset_counters()
    again = run_tap(make_config(sb, page_size=10, fetch_details=False), state=run.state)
    assert again.exit_code == 0
    assert sb.admin.counters().total == 0


def test_wrong_token_stops_at_once_without_echoing_it(sandbox, make_config, run_tap, caplog):
    config = make_config(sandbox, auth_token="wrong-secret-token-123")
    with pytest.raises(Exception, match="auth_token") as excinfo:
        run_tap(config, streams=STREAMS)
    assert "wrong-secret-token-123" not in str(excinfo.value)
    assert "wrong-secret-token-123" not in caplog.text
    assert sandbox.admin.counters().total == 1
