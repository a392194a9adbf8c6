"""Resume after a kill or a budget stop: no completed page read twice, nothing lost."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from tap_precoro.testing import catalog_selecting

TAP = [sys.executable, "-m", "tap_precoro"]
SELECTED = ["suppliers", "items", "invoices"]


def list_requests(sb: Any, stream_path: str) -> list[dict[str, str]]:
    """Query parameters of every list call to one path, oldest first."""
    return [
        dict(parse_qsl(entry["query"]))
        for entry in sb.admin.requests()
        if entry["path"] == stream_path and entry["status"] == 200
    ]


def write_catalog(config: dict[str, Any], selected: list[str], tmp_path: Path) -> Path:
    """A catalog file selecting only some streams (the CLI way)."""
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog_selecting(config, selected)))
    return path


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_at_a_random_page_then_rerun_reads_no_completed_page_twice(
    sandbox_factory, make_config, run_tap, tmp_path, seed
):
    sb = sandbox_factory(scale=40)
    config = make_config(sb, page_size=10, fetch_details=False)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    catalog = write_catalog(config, SELECTED, tmp_path)
    sb.admin.set_faults([{"kind": "delay", "route": "/*", "delay_seconds": 0.03}])
    kill_after = random.Random(seed).randint(3, 14)  # list calls served before the kill

    process = subprocess.Popen(
        [*TAP, "--config", str(config_path), "--catalog", str(catalog)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []))
    reader.start()
    deadline = time.monotonic() + 60
    while sb.admin.counters().total < kill_after and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    process.wait()
    reader.join()
    if process.stdout is not None:
        process.stdout.close()
    states = [json.loads(x)["value"] for x in lines if '"type":"STATE"' in x.replace(" ", "")]
    first_ids = {
        (m["stream"], m["record"]["id"])
        for m in (json.loads(x) for x in lines if x.strip())
        if m["type"] == "RECORD"
    }
    assert states, "the tap checkpoints after its first page"
    saved = states[-1]
    sb.admin.clear_faults()
    sb.admin.reset_counters()

    second = run_tap(config, state=saved, streams=SELECTED)

    for stream in SELECTED:
        bookmark = saved.get("bookmarks", {}).get(stream, {})
        resumed_from = bookmark.get("pass", {}).get("next_page")
        pages = [int(q.get("page", 1)) for q in list_requests(sb, f"/{stream}")]
        if resumed_from is not None:
            assert min(pages) == resumed_from, stream
        elif "replication_key_value" in bookmark:
            assert all("modifiedSince" in q for q in list_requests(sb, f"/{stream}")), stream
        total = sb.admin.stats()[stream]
        emitted = {i for s, i in first_ids if s == stream} | set(second.ids(stream))
        assert len(emitted) == total, f"{stream}: a record was lost"


def test_budget_stop_then_next_day_completes_the_sync(
    sandbox_factory, make_config, run_tap, tmp_path
):
    """Precoro's daily limit stops the run cleanly; later days finish the first sync."""
    sb = sandbox_factory(scale=40, limits="off,per_day=9")
    totals = {stream: sb.admin.stats()[stream] for stream in SELECTED}
    state: dict[str, Any] = {}
    emitted: dict[str, set[int]] = {stream: set() for stream in SELECTED}
    days = 0
    while True:
        days += 1
        assert days < 20, "the sync never completed"
        # A new local ledger per day: the governor's 24-hour window follows the real
        # clock, which a test cannot move; the sandbox's clock is moved instead.
        ledger = tmp_path / f"day{days}"
        ledger.mkdir()
        config = make_config(
            sb, page_size=10, fetch_details=True, budget_ledger_path=str(ledger / "l.db")
        )
        run = run_tap(config, state=state, streams=SELECTED)
        assert run.exit_code == 0
        for stream in SELECTED:
            emitted[stream].update(run.ids(stream))
        state = run.state
        in_progress = [s for s in SELECTED if "pass" in state["bookmarks"].get(s, {})]
        if not in_progress and all(emitted[s] for s in SELECTED):
            break
        sb.admin.advance_clock(24 * 3600)

    assert days > 2
    assert {s: len(ids) for s, ids in emitted.items()} == totals
    counters = sb.admin.counters()
    rejected = counters.get(status=429)
    assert rejected <= days  # at most the one call per day that learnt the budget is gone
    for stream in SELECTED:
        pages = math.ceil(totals[stream] / 10)
        assert counters.get("GET", f"/{stream}", 200) <= pages + days, stream
    assert counters.get("GET", "/invoices/{idn}", 200) == totals["invoices"]


def test_local_budget_stop_exits_zero_and_fail_mode_exits_one(sandbox, make_config, run_tap):
    stop = run_tap(make_config(sandbox, max_requests_per_day=3), streams=SELECTED)
    assert stop.exit_code == 0
    assert sandbox.admin.counters().total == 3
    assert "pass" in stop.state["bookmarks"]["invoices"] or not stop.records.get("invoices")

    sandbox.admin.reset_counters()
    fail = run_tap(
        make_config(sandbox, max_requests_per_day=3, on_budget_exhausted="fail"),
        streams=SELECTED,
    )
    assert fail.exit_code == 1
    assert sandbox.admin.counters().total == 0  # the shared ledger already says: no budget
