"""Benchmark: target-precoro upserting 10,000 suppliers against the sandbox, limits off.

Mix: half unchanged, a quarter changed, a quarter new (the issue's scenario). The
7,500 existing records are loaded first by the target itself (not timed), then one
settling run lets the index catch up with its own writes, so the measured run starts
from a warm index as a daily run would. A cold-index run (empty state_dir) of the same
input is measured too. Calls come from the sandbox's admin counters.

The periodic index re-check (`index_recheck_hours`, default 24) is priced apart: the
same input is run again (an hour later, it reads back the measured run's writes; an
hour after that, nothing is due: the steady cost of an unchanged run) and again a
re-check period later (every record due); the difference is what the re-check costs,
stated per 10,000 records per day.

Run: .venv/bin/python benchmarks/target_upsert.py [--records 10000]
Writes benchmarks/results/target_upsert.json.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from precoro_sandbox.options import SandboxOptions
from precoro_sandbox.server import SandboxServer
from target_precoro.settings import INDEX_RECHECK_HOURS
from target_precoro.target import TargetPrecoro

RESULTS = Path(__file__).resolve().parent / "results" / "target_upsert.json"
LOOKUP_IDS_PER_CALL = 200


def _records(total: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(existing records to preload, the measured input)."""
    existing = [
        {
            "externalId": f"BENCH-{i:06d}",
            "name": f"Bench Vendor {i}",
            "country": "Germany",
            "city": "Berlin",
            "currencies": ["EUR"],
        }
        for i in range(total * 3 // 4)
    ]
    unchanged = [dict(r) for r in existing[: total // 2]]
    changed = [{**r, "city": "Hamburg"} for r in existing[total // 2 :]]
    new = [
        {"externalId": f"BENCH-NEW-{i:06d}", "name": f"New Vendor {i}", "country": "France"}
        for i in range(total - len(unchanged) - len(changed))
    ]
    return existing, unchanged + changed + new


def _singer(records: list[dict[str, Any]]) -> str:
    schema = {
        "type": "SCHEMA",
        "stream": "suppliers",
        "schema": {"type": "object", "properties": {"externalId": {"type": "string"}}},
        "key_properties": ["externalId"],
    }
    lines = [json.dumps(schema)]
    lines += [json.dumps({"type": "RECORD", "stream": "suppliers", "record": r}) for r in records]
    return "\n".join(lines) + "\n"


def _run(sb: SandboxServer, config: dict[str, Any], text: str) -> dict[str, Any]:
    sb.admin.reset_counters()
    target = TargetPrecoro(config=config, parse_env_config=False)
    started = time.perf_counter()
    target.listen(io.StringIO(text))
    seconds = time.perf_counter() - started
    runtime = target.run.opened_runtime
    assert runtime is not None
    summary = json.loads((runtime.report.dir / "summary.json").read_text())
    counters = sb.admin.counters()
    return {
        "seconds": round(seconds, 2),
        "outcomes": summary["totals"],
        "calls": {m: counters.get(method=m) for m in ("GET", "POST", "PUT", "PATCH")},
        "calls_total": counters.total,
    }


def _scenario(total: int, *, cold: bool) -> dict[str, Any]:
    """Preload, settle, then measure; runs are an hour apart on the sandbox clock."""
    existing, measured = _records(total)
    work = Path(tempfile.mkdtemp(prefix="bench-target-"))
    with SandboxServer(SandboxOptions(scale=30, limits="off")) as sb:
        config = {
            "auth_token": sb.token,
            "email": sb.email,
            "api_url": sb.url,
            "max_requests_per_second": 1000,  # the highest the setting accepts
            "max_requests_per_hour": 10**7,
            "max_requests_per_day": 10**7,
            "duplicate_get_interval_seconds": 0,
            "budget_ledger_path": str(work / "ledger.sqlite3"),
            "state_dir": str(work / "state"),
            "report_dir": str(work / "reports"),
            "match": {"suppliers": []},
            "batch_size_rows": 5000,
        }
        _run(sb, config, _singer(existing))
        sb.admin.advance_clock(3600)
        _run(sb, config, _singer(existing))  # settle: the index reads back its own writes
        sb.admin.advance_clock(3600)
        if cold:
            config["state_dir"] = str(work / "cold")
        result = _run(sb, config, _singer(measured))
        if not cold:
            result["index_recheck"] = _recheck(sb, config, _singer(measured), total)
    outcomes = Counter(result["outcomes"])
    writes = outcomes["created"] + outcomes["updated"]
    checked = total if cold else outcomes["created"]
    # Writes are irreducible; ids the index cannot vouch for are looked up, 200 per call.
    result["minimum_calls"] = writes + math.ceil(checked / LOOKUP_IDS_PER_CALL)
    result["records_per_second"] = round(total / result["seconds"], 1)
    return result


def _recheck(sb: SandboxServer, config: dict[str, Any], text: str, total: int) -> dict[str, Any]:
    """Calls of an unchanged run with nothing due, and a re-check period later (all due).

    The first run after the measured one also pages through the measured run's own
    writes (the `modifiedSince` refresh, 1 call per 200 writes); it is counted apart
    (`read_back_extra_calls`, see "Reading back its own writes" in target-precoro's README).
    """
    sb.admin.advance_clock(3600)
    read_back = _run(sb, config, text)
    sb.admin.advance_clock(3600)
    steady = _run(sb, config, text)
    sb.admin.advance_clock(INDEX_RECHECK_HOURS * 3600)
    due = _run(sb, config, text)
    extra = due["calls_total"] - steady["calls_total"]
    per_day = extra * 10_000 / total * 24 / INDEX_RECHECK_HOURS
    return {
        "index_recheck_hours": INDEX_RECHECK_HOURS,
        "calls_next_run_reading_back_writes": read_back["calls_total"],
        "read_back_extra_calls": read_back["calls_total"] - steady["calls_total"],
        "calls_unchanged_run": steady["calls_total"],
        "calls_unchanged_run_all_due": due["calls_total"],
        "minimum_recheck_calls": math.ceil(total / LOOKUP_IDS_PER_CALL),
        "recheck_calls_per_10000_records_per_day": round(per_day, 1),
        "share_of_daily_budget": round(per_day / 3000, 4),
        "outcomes_all_due": due["outcomes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    total = args.records
    result = {
        "benchmark": "target_upsert",
        "records": total,
        "mix": {"unchanged": total // 2, "changed": total // 4, "new": total - 3 * total // 4},
        "warm_index": _scenario(total, cold=False),
        "cold_index": _scenario(total, cold=True),
        "limits": "off (sandbox and client governor)",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for name in ("warm_index", "cold_index"):
        part = result[name]
        print(
            f"target_upsert {name}: {total} records in {part['seconds']} s "
            f"({part['records_per_second']} records/s); calls {part['calls_total']} "
            f"{part['calls']} vs minimum {part['minimum_calls']}; outcomes {part['outcomes']}"
        )
    recheck = result["warm_index"]["index_recheck"]
    warm = result["warm_index"]
    writes = warm["outcomes"].get("created", 0) + warm["outcomes"].get("updated", 0)
    print(
        f"target_upsert read-back of its own writes: the next run pays "
        f"{recheck['read_back_extra_calls']} extra refresh pages for {writes} writes "
        f"({recheck['read_back_extra_calls'] / max(1, warm['calls_total']):.2%} of the "
        f"writing run's {warm['calls_total']} calls)"
    )
    print(
        f"target_upsert index re-check (every {recheck['index_recheck_hours']} h): an unchanged "
        f"run costs {recheck['calls_unchanged_run']} calls, "
        f"{recheck['calls_unchanged_run_all_due']} when every record is due "
        f"(minimum {recheck['minimum_recheck_calls']} look-ups): "
        f"{recheck['recheck_calls_per_10000_records_per_day']} calls per 10,000 records per day "
        f"({recheck['share_of_daily_budget']:.1%} of a 3,000-call day)"
    )


if __name__ == "__main__":
    main()
