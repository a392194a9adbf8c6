"""Benchmark: the budget ledger's overhead per call, SQLite file vs PostgreSQL.

One admission is what every Precoro call pays before it leaves: `acquire` (one
transaction: blocks, duplicate-GET window, per-second/hourly/daily counts, the insert)
plus `settle` for a GET. A fake clock moves 2 s per call so nothing sleeps: only the
ledger's own work is timed. The ledger holds up to a day of calls at the end (the
counts scan them). PostgreSQL is a local server (Unix socket) from the `pgserver`
wheel; over a network add one round trip per statement.

Run: .venv/bin/python benchmarks/ledger.py [--calls 2000]
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

from precoro_client.governor import RateGovernor
from precoro_client.settings import PrecoroSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "postgres"))

from pg_server import temporary_server  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ledger.json"


class StepClock:
    """Wall clock that moves 2 s per reading pair, so no limit ever makes a call wait."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def measure(config: dict[str, Any], calls: int) -> dict[str, float]:
    clock = StepClock()
    settings = PrecoroSettings.from_config(config)
    timings: list[float] = []
    with RateGovernor(settings, clock=clock, sleep=clock.sleep) as governor:
        for n in range(calls):
            url = settings.url(f"/suppliers?page={n}")
            start = time.perf_counter()
            governor.acquire("GET", url)
            governor.settle("GET", url)
            timings.append(time.perf_counter() - start)
    timings.sort()
    return {
        "calls": calls,
        "mean_ms": round(statistics.fmean(timings) * 1000, 3),
        "p50_ms": round(timings[len(timings) // 2] * 1000, 3),
        "p99_ms": round(timings[int(len(timings) * 0.99)] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
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
        sqlite = {**base, "budget_ledger_path": str(Path(folder) / "ledger.sqlite3")}
        results["sqlite"] = measure(sqlite, args.calls)
    with temporary_server() as server:
        results["postgresql"] = measure(
            {**base, "state_backend_url": server.create_database()}, args.calls
        )
    for name, figures in results.items():
        print(
            f"ledger {name}: {figures['mean_ms']} ms per call (acquire + settle; "
            f"p50 {figures['p50_ms']}, p99 {figures['p99_ms']}) over {figures['calls']} calls"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
