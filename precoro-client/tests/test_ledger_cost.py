"""An admission costs the same with an empty ledger and with thousands of calls in it.

Measured in SQLite virtual-machine steps (a progress handler called on every step), not
in seconds: deterministic on a loaded machine. Counting the day's calls on every
admission (what pyrate-limiter's bucket did) grows with the calls recorded.
"""

from __future__ import annotations

from precoro_client.governor import RateGovernor

URL = "https://api.precoro.com/suppliers"
WIDE = {
    "max_requests_per_second": 1000,
    "max_requests_per_hour": 1_000_000,
    "max_requests_per_day": 2_000_000,
}


def steps_per_admission(governor: RateGovernor, calls: int) -> float:
    """SQLite VM steps one `acquire` takes, on average over `calls` admissions."""
    conn = governor._store._conn  # type: ignore[attr-defined]
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(tick, 1)
    try:
        for n in range(calls):
            governor.acquire("POST", f"{URL}?probe={n}")
    finally:
        conn.set_progress_handler(None, 1)
    return steps / calls


def test_admission_cost_is_flat_in_the_calls_recorded(make_governor):
    governor = make_governor(**WIDE)
    empty = steps_per_admission(governor, 20)
    for n in range(3000):
        governor.acquire("POST", f"{URL}?n={n}")
    assert governor.calls_used_today() == 3020
    full = steps_per_admission(governor, 20)
    # A scan of 3,000 rows would take tens of thousands of steps; an index lookup a few.
    assert full < empty * 1.5 + 200, (empty, full)


def test_counts_stay_exact_as_calls_leave_the_windows(make_governor, clock):
    governor = make_governor(**WIDE)
    for n in range(10):
        governor.acquire("POST", f"{URL}?n={n}")
        clock.advance(600)  # one call every 10 minutes
    # The last 24 h hold all 10; the last hour only the most recent ones.
    assert governor.calls_used_today() == 10
    clock.advance(86_400 - 6_000 + 1)  # the first call ages out
    assert governor.calls_used_today() == 9
    clock.advance(3 * 600)
    assert governor.calls_used_today() == 6
    clock.advance(86_400)
    assert governor.calls_used_today() == 0
    governor.acquire("POST", URL)
    assert governor.calls_used_today() == 1


def test_calls_recorded_by_the_previous_ledger_format_still_count(make_settings, clock):
    """A ledger written by pyrate-limiter's bucket (before this version) keeps its day."""
    import sqlite3

    settings = make_settings(**WIDE)
    settings.budget_ledger_path.parent.mkdir(parents=True, exist_ok=True)
    old = f"calls_{settings.ledger_key[:32]}"
    with sqlite3.connect(settings.budget_ledger_path) as conn:
        conn.execute(f"CREATE TABLE '{old}' (name VARCHAR, item_timestamp INTEGER)")
        conn.executemany(
            f"INSERT INTO '{old}' VALUES (?, ?)",
            [("GET", int((clock.now - 3600 * n) * 1000)) for n in range(5)],
        )
    with RateGovernor(settings, clock=clock, sleep=clock.sleep) as governor:
        assert governor.calls_used_today() == 5
        governor.acquire("POST", URL)
        assert governor.calls_used_today() == 6
    with sqlite3.connect(settings.budget_ledger_path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert old not in tables
