from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from precoro_client.errors import BudgetExhausted
from precoro_client.governor import RateGovernor
from precoro_client.rate_limit import parse_rate_limit

URL = "https://api.precoro.com/suppliers?page=1&per_page=100"
FAST = {"max_requests_per_second": 1000}


def acquisitions(governor, clock, calls):
    """Acquire each (method, url) and return the fake-clock time each one was admitted."""
    times = []
    for method, url in calls:
        governor.acquire(method, url)
        times.append(clock.now)
    return times


def test_spacing_keeps_calls_more_than_a_second_apart(make_governor, clock):
    governor = make_governor()
    times = acquisitions(governor, clock, [("POST", f"{URL}&n={n}") for n in range(4)])
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 1.0 for gap in gaps), gaps
    assert all(gap <= 1.2 for gap in gaps), gaps


def test_identical_get_waits_for_the_duplicate_interval(make_governor, clock):
    governor = make_governor(**FAST)
    start = clock.now
    governor.acquire("GET", URL)
    # Same URL with the query in another order is the same GET for Precoro.
    governor.acquire("GET", "https://api.precoro.com/suppliers?per_page=100&page=1")
    assert clock.now - start == pytest.approx(66.0)  # 60 s plus the 10% margin
    # A different page, or a write to the same URL, does not wait for it.
    before = clock.now
    governor.acquire("GET", URL.replace("page=1", "page=2"))
    governor.acquire("PATCH", URL)
    assert clock.now - before < 1


def test_duplicate_interval_is_configurable(make_governor, clock):
    governor = make_governor(duplicate_get_interval_seconds=5, **FAST)
    start = clock.now
    governor.acquire("GET", URL)
    governor.acquire("GET", URL)
    assert clock.now - start == pytest.approx(5.5)


def test_hourly_window_sleeps_when_short_enough(make_governor, clock):
    governor = make_governor(max_requests_per_hour=3, max_wait_seconds=3700, **FAST)
    first = clock.now
    acquisitions(governor, clock, [("POST", f"{URL}&n={n}") for n in range(3)])
    governor.acquire("POST", URL)
    assert clock.now == pytest.approx(first + 3600, abs=0.01)


def test_hourly_wait_longer_than_max_wait_raises_with_reset_time(make_governor, clock):
    governor = make_governor(max_requests_per_hour=3, max_wait_seconds=900, **FAST)
    first = clock.now
    acquisitions(governor, clock, [("POST", f"{URL}&n={n}") for n in range(3)])
    slept = list(clock.sleeps)
    with pytest.raises(BudgetExhausted) as info:
        governor.acquire("POST", URL)
    # raised without waiting for the hour (at most the 1/rps spacing was slept)
    assert all(pause <= 0.01 for pause in clock.sleeps[len(slept) :])
    assert info.value.limit == "hourly"
    assert info.value.resets_at.tzinfo is not None
    assert info.value.resets_at.timestamp() == pytest.approx(first + 3600, abs=0.01)
    assert info.value.used_today == 3
    assert info.value.remaining_today == 2997


def test_daily_budget_raises_instead_of_sleeping(make_governor, clock):
    governor = make_governor(max_requests_per_day=5, **FAST)
    first = clock.now
    acquisitions(governor, clock, [("POST", f"{URL}&n={n}") for n in range(5)])
    assert governor.remaining_today() == 0
    with pytest.raises(BudgetExhausted) as info:
        governor.acquire("GET", URL)
    error = info.value
    assert error.limit == "daily"
    assert error.used_today == 5
    assert error.remaining_today == 0
    assert error.resets_at.timestamp() == pytest.approx(first + 86400, abs=0.01)
    assert "daily" in str(error)
    assert governor.next_available().timestamp() == pytest.approx(first + 86400, abs=0.01)
    # After the window rolls past the first call, one call is possible again.
    clock.advance(86400.01)
    governor.acquire("GET", URL)


def test_budget_reserve_keeps_calls_free(make_governor, clock):
    governor = make_governor(max_requests_per_day=5, budget_reserve=2, **FAST)
    acquisitions(governor, clock, [("POST", f"{URL}&n={n}") for n in range(3)])
    assert governor.calls_used_today() == 3
    assert governor.remaining_today() == 0
    with pytest.raises(BudgetExhausted):
        governor.acquire("POST", URL)


def test_two_processes_share_one_budget_through_the_ledger(make_governor, make_settings, clock):
    settings = make_settings(max_requests_per_day=4, **FAST)
    tap = make_governor(settings)
    target = make_governor(settings)
    tap.acquire("GET", URL)
    tap.acquire("POST", URL)
    assert target.calls_used_today() == 2
    # The duplicate-GET rule spans processes too.
    start = clock.now
    target.acquire("GET", URL)
    assert clock.now - start == pytest.approx(66.0, abs=0.01)
    target.acquire("PATCH", URL)
    with pytest.raises(BudgetExhausted):
        tap.acquire("PUT", URL)


def test_spacing_spans_processes(make_governor, make_settings, clock):
    settings = make_settings()
    first, second = make_governor(settings), make_governor(settings)
    first.acquire("POST", URL)
    start = clock.now
    second.acquire("POST", URL)
    assert clock.now - start >= 1.0


def test_ledger_is_keyed_by_hash_never_the_token(make_governor, make_settings, ledger, token):
    governor = make_governor(**FAST)
    governor.acquire("GET", URL)
    other = make_governor(make_settings(auth_token="another-token-9876543210", **FAST))
    assert other.calls_used_today() == 0
    governor.close()
    other.close()
    stored = b"".join(p.read_bytes() for p in Path(ledger).parent.iterdir() if p.is_file())
    assert token.encode() not in stored
    assert b"another-token-9876543210" not in stored
    assert oct(Path(ledger).parent.stat().st_mode & 0o777) == "0o700"


def _rate_limited(limit_type, retry_at, now):
    body = {"error": "Too many requests", "RateLimit-Type": limit_type, "RateLimit-Limit": 1}
    if retry_at is not None:
        body["RateLimit-Retry-After"] = retry_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return parse_rate_limit(json.dumps(body), {}, now=now)


def test_daily_429_marks_the_day_exhausted_for_every_process(make_governor, make_settings, clock):
    settings = make_settings(**FAST)
    tap, target = make_governor(settings), make_governor(settings)
    tap.acquire("GET", URL)
    retry_at = clock.datetime + timedelta(hours=5)
    with pytest.raises(BudgetExhausted) as info:
        tap.record_429(_rate_limited("Daily limiter", retry_at, clock.datetime), "GET", URL)
    assert info.value.limit == "daily"
    assert info.value.resets_at == retry_at
    assert target.remaining_today() == 0
    with pytest.raises(BudgetExhausted):
        target.acquire("POST", URL)
    clock.advance(5 * 3600 + 1)
    target.acquire("POST", URL)


def test_daily_429_without_retry_time_holds_until_midnight_utc(make_governor, clock):
    governor = make_governor(**FAST)
    with pytest.raises(BudgetExhausted) as info:
        governor.record_429(_rate_limited("Daily limiter", None, clock.datetime), "GET", URL)
    assert info.value.resets_at == datetime(2026, 1, 6, tzinfo=UTC)


def test_route_429_waits_exactly_until_retry_time(make_governor, clock):
    governor = make_governor(**FAST)
    governor.acquire("GET", URL)
    clock.advance(61)
    retry_at = clock.datetime + timedelta(seconds=30)
    wait = governor.record_429(
        _rate_limited("Route based limiter by minute", retry_at, clock.datetime), "GET", URL
    )
    assert wait == pytest.approx(30)
    governor.acquire("POST", URL)  # another route is not held
    governor.acquire("GET", URL)
    assert clock.datetime == retry_at


def test_429_without_retry_time_uses_the_fallback(make_governor, clock):
    governor = make_governor(**FAST)
    wait = governor.record_429(
        _rate_limited("??", None, clock.datetime), "GET", URL, fallback_seconds=4
    )
    assert wait == pytest.approx(4)
    start = clock.now
    governor.acquire("POST", "https://api.precoro.com/other")  # unknown kind holds every call
    assert clock.now - start == pytest.approx(4)


def test_long_hourly_429_raises(make_governor, clock):
    governor = make_governor(max_wait_seconds=600, **FAST)
    retry_at = clock.datetime + timedelta(minutes=40)
    with pytest.raises(BudgetExhausted) as info:
        governor.record_429(_rate_limited("Hourly limiter", retry_at, clock.datetime), "GET", URL)
    assert info.value.limit == "hourly"
    with pytest.raises(BudgetExhausted):
        governor.acquire("GET", URL)


def test_next_available_reports_the_earliest_slot(make_governor, clock):
    governor = make_governor(**FAST)
    assert governor.next_available() == clock.datetime
    governor.acquire("GET", URL)
    assert governor.next_available("GET", URL) == clock.datetime + timedelta(seconds=66)


def test_inconsistent_limits_are_reduced_to_the_binding_ones(make_governor, clock):
    # A reserve that makes the daily budget smaller than the hourly one still works.
    governor = make_governor(max_requests_per_day=10, budget_reserve=8, **FAST)
    governor.acquire("POST", URL)
    governor.acquire("POST", URL)
    with pytest.raises(BudgetExhausted):
        governor.acquire("POST", URL)


def test_governor_works_as_context_manager(make_settings, clock):
    with RateGovernor(make_settings(), clock=clock, sleep=clock.sleep) as governor:
        governor.acquire("GET", URL)
        assert governor.calls_used_today() == 1


CHILD = """
import sys
from precoro_client.errors import BudgetExhausted
from precoro_client.governor import RateGovernor
from precoro_client.settings import PrecoroSettings

settings = PrecoroSettings.from_config({
    "auth_token": sys.argv[1], "email": "a@b.c", "budget_ledger_path": sys.argv[2],
    "max_requests_per_second": 1000, "max_requests_per_day": 25,
    "duplicate_get_interval_seconds": 0,
})
admitted = 0
with RateGovernor(settings) as governor:
    for n in range(20):
        try:
            governor.acquire("POST", f"https://api.precoro.com/x?n={n}")
            admitted += 1
        except BudgetExhausted:
            pass
print(admitted)
"""


def test_real_processes_never_overspend_a_shared_budget(ledger, token):
    ledger.parent.mkdir(parents=True, exist_ok=True)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, token, str(ledger)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    admitted = [int(child.communicate(timeout=60)[0]) for child in children]
    assert sum(admitted) == 25


def test_spacing_keeps_a_small_margin_unless_the_answer_came_back_sooner(
    make_governor, make_settings, clock
):
    settings = make_settings()
    tap, target = make_governor(settings), make_governor(settings)
    tap.acquire("POST", URL)
    sent = clock.now
    target.acquire("POST", f"{URL}&n=2")  # nothing known about the first call's answer
    assert clock.now - sent == pytest.approx(1.025, abs=0.002)
    sent = clock.now
    clock.advance(0.004)  # answered 4 ms later: the server has certainly seen it
    target.settle("POST", f"{URL}&n=2")
    tap.acquire("POST", f"{URL}&n=3")  # another process spaces from that answer
    assert clock.now - sent == pytest.approx(1.006, abs=0.002)
    sent = clock.now
    clock.advance(0.3)  # a slow answer: the fixed margin is sooner
    tap.settle("POST", f"{URL}&n=3")
    tap.acquire("POST", f"{URL}&n=4")
    assert clock.now - sent == pytest.approx(1.025, abs=0.002)
    sent = clock.now
    clock.advance(0.001)
    tap.settle("POST", f"{URL}&n=4", answered=False)  # no answer: it may still be on its way
    tap.acquire("POST", f"{URL}&n=5")
    assert clock.now - sent == pytest.approx(1.025, abs=0.002)


def test_a_per_second_429_widens_the_margin(make_governor, clock):
    governor = make_governor(max_wait_seconds=60)
    governor.acquire("POST", URL)
    refusal = _rate_limited("Rate limiter by second", clock.datetime, clock.datetime)
    governor.record_429(refusal, "POST", URL)
    clock.advance(0.001)
    governor.settle("POST", URL)  # answered fast, but the shortcut is no longer trusted
    sent = clock.now
    governor.acquire("POST", f"{URL}&n=2")
    assert clock.now - sent == pytest.approx(1.05, abs=0.002)  # 50 ms after the first call


def test_an_answer_slower_than_usual_widens_the_next_gap_by_the_delay(make_governor, clock):
    governor = make_governor()
    for n in range(3):  # answers usually take 5 ms
        governor.acquire("POST", f"{URL}&n={n}")
        clock.advance(0.005)
        governor.settle("POST", f"{URL}&n={n}")
    governor.acquire("POST", f"{URL}&n=slow")
    sent = clock.now
    clock.advance(0.080)  # 75 ms slower: perhaps queued before the server's limiter
    governor.settle("POST", f"{URL}&n=slow")
    governor.acquire("POST", f"{URL}&n=next")
    assert clock.now - sent == pytest.approx(1.0 + 0.075 + 0.002, abs=0.002)
