"""On PostgreSQL too, an admission reads the same few rows however many calls are recorded.

Counted in rows the server read from the calls table (`pg_stat_user_tables` and
`pg_stat_user_indexes`: sequential and index tuple reads), not in seconds: deterministic
on a loaded machine. Counting the day's calls on every admission (as before) read 6,060
rows per admission with 3,020 recorded; the running counts read none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from precoro_client.governor import RateGovernor
from precoro_client.settings import PrecoroSettings

URL = "https://api.example.test"
WIDE = {
    "max_requests_per_second": 1000,
    "max_requests_per_hour": 1_000_000,
    "max_requests_per_day": 2_000_000,
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def rows_read(governor: RateGovernor, pg_url: str) -> int:
    """Rows read from the calls table and its index so far (statistics flushed first)."""
    conn: Any = governor._store._c()  # type: ignore[attr-defined]
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.commit()
    conn.execute("SELECT 1")  # the flush happens when the session next goes idle
    conn.commit()
    with psycopg.connect(pg_url) as reader:
        reader.execute("SELECT pg_stat_clear_snapshot()")
        row = reader.execute(
            "SELECT coalesce(t.seq_tup_read, 0) + coalesce(sum(i.idx_tup_read), 0) "
            "FROM pg_stat_user_tables t LEFT JOIN pg_stat_user_indexes i USING (relid) "
            "WHERE t.relname = 'precoro_ledger_calls' GROUP BY t.seq_tup_read"
        ).fetchone()
    return int(row[0]) if row else 0


def admissions(governor: RateGovernor, pg_url: str, calls: int) -> float:
    before = rows_read(governor, pg_url)
    for n in range(calls):
        governor.acquire("POST", f"{URL}/items?probe={n}")
    return (rows_read(governor, pg_url) - before) / calls


def test_admission_reads_are_flat_in_the_calls_recorded(pg_url, tmp_path: Path):
    config = {
        "auth_token": "tok-PgCost-0123456789",
        "email": "api@example.com",
        "api_url": URL,
        "budget_ledger_path": str(tmp_path / "ledger.sqlite3"),
        "state_backend_url": pg_url,
        **WIDE,
    }
    clock = Clock()
    with RateGovernor(PrecoroSettings.from_config(config), clock=clock, sleep=clock.sleep) as gov:
        empty = admissions(gov, pg_url, 20)
        for n in range(3000):
            gov.acquire("POST", f"{URL}/items?n={n}")
        assert gov.calls_used_today() == 3020
        full = admissions(gov, pg_url, 20)
    # Reading the 3,000 rows of the day on each admission would be thousands per call.
    assert full < empty * 2 + 20, (empty, full)
