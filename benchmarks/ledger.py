"""Benchmark: the budget ledger's overhead per call, SQLite file vs PostgreSQL.

One admission is what every Precoro call pays before it leaves: `acquire` (one
transaction: blocks, duplicate-GET window, per-second/hourly/daily counts, the insert)
plus `settle` for a GET. A fake clock moves 2 s per call so nothing sleeps: only the
ledger's own work is timed. Each backend is measured on an empty ledger and on one
already holding `--recorded` calls (default 100,000) inside the last 24 h: the cost
per call must be flat (the windows keep running counts; nothing scans the day).
PostgreSQL is a local server (Unix socket) from the `pgserver` wheel; over a network
add one round trip per statement.

Run: .venv/bin/python benchmarks/ledger.py [--calls 2000] [--recorded 100000]
Writes benchmarks/results/ledger.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from precoro_client.governor import LedgerStore, RateGovernor
from precoro_client.settings import PrecoroSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "postgres"))

from pg_server import temporary_server  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ledger.json"


class StepClock:
    """Wall clock that moves 2 s per reading pair, so no limit ever makes a call wait."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        self.now += 1.0
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


START = 1_800_000_000.0


def seed(settings: PrecoroSettings, recorded: int) -> None:
    """Record `recorded` calls spread over the 24 h before the benchmark's clock starts."""
    if not recorded:
        return
    step_ms = 86_400_000 // (recorded + 1)
    start_ms = int(START * 1000) - 86_400_000
    rows = [(settings.ledger_key, start_ms + (n + 1) * step_ms, "GET") for n in range(recorded)]
    if settings.state_backend_url is not None:
        table = "precoro_ledger_calls"
        with psycopg.connect(settings.state_backend_url.reveal()) as conn:
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} (ledger_key, at_ms, method) VALUES (%s, %s, %s)", rows
                )
            conn.execute(
                "DELETE FROM precoro_ledger_windows WHERE ledger_key = %s", (settings.ledger_key,)
            )
        return
    import sqlite3

    with sqlite3.connect(settings.budget_ledger_path) as conn:
        conn.executemany(
            f"INSERT INTO {LedgerStore.CALLS} (ledger_key, at_ms, method) VALUES (?, ?, ?)", rows
        )
        conn.execute(
            f"DELETE FROM {LedgerStore.WINDOWS} WHERE ledger_key = ?", (settings.ledger_key,)
        )


def measure(config: dict[str, Any], calls: int, recorded: int) -> dict[str, float]:
    clock = StepClock()
    settings = PrecoroSettings.from_config(config)
    with RateGovernor(settings) as governor:
        governor.remaining_today()  # creates the tables
    seed(settings, recorded)
    timings: list[float] = []
    with RateGovernor(settings, clock=clock, sleep=clock.sleep) as governor:
        governor.remaining_today()  # the first use counts the seeded day once, exactly
        assert governor.calls_used_today() >= recorded - 10  # the clock moves 1 s a reading
        for n in range(calls):
            url = settings.url(f"/suppliers?page={n}")
            start = time.perf_counter()
            governor.acquire("GET", url)
            governor.settle("GET", url)
            timings.append(time.perf_counter() - start)
        assert governor.calls_used_today() >= calls  # the seeded calls age out as time moves
    timings.sort()
    return {
        "recorded_before": recorded,
        "calls": calls,
        "mean_ms": round(statistics.fmean(timings) * 1000, 3),
        "p50_ms": round(timings[len(timings) // 2] * 1000, 3),
        "p99_ms": round(timings[int(len(timings) * 0.99)] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--recorded", type=int, default=100_000)
    args = parser.parse_args()
    base = {
        "auth_token": "bench-token-0123456789",
        "email": "bench@example.com",
        "api_url": "https://api.example.test",
        "max_requests_per_hour": 10_000_000,
        "max_requests_per_day": 100_000_000,
    }
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for recorded in (0, args.recorded):
            path = Path(folder) / f"ledger-{recorded}.sqlite3"
            sqlite = {**base, "budget_ledger_path": str(path)}
            results[f"sqlite_{recorded}"] = measure(sqlite, args.calls, recorded)
    with temporary_server() as server:
        for recorded in (0, args.recorded):
            postgres = {**base, "state_backend_url": server.create_database()}
            results[f"postgresql_{recorded}"] = measure(postgres, args.calls, recorded)
    for name, figures in results.items():
        print(
            f"ledger {name.split('_')[0]} with {figures['recorded_before']:,} calls recorded: "
            f"{figures['mean_ms']} ms per call (acquire + settle; p50 {figures['p50_ms']}, "
            f"p99 {figures['p99_ms']}) over {figures['calls']} calls"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
