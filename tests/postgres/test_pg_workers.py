"""Many workers, one Precoro account, one PostgreSQL ledger: separate processes that
share nothing else (their own state_dir, SQLite path, HOME) spend one budget exactly,
never write twice, and stop cleanly and resumably when the database goes away."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from tap_precoro.testing import catalog_selecting, parse_messages

TAP = [sys.executable, "-m", "tap_precoro"]
TARGET = [str(Path(sys.executable).with_name("target-precoro"))]
PREFIX = "PG"


def _records(ids: range) -> list[dict[str, Any]]:
    return [
        {"externalId": f"{PREFIX}-{i:03d}", "name": f"Shared Vendor {i}", "country": "France"}
        for i in ids
    ]


def singer(records: list[dict[str, Any]], state: Any) -> str:
    schema = {
        "type": "SCHEMA",
        "stream": "suppliers",
        "schema": {"type": "object", "properties": {"externalId": {"type": "string"}}},
        "key_properties": ["externalId"],
    }
    lines = [schema] + [{"type": "RECORD", "stream": "suppliers", "record": r} for r in records]
    lines.append({"type": "STATE", "value": state})
    return "".join(json.dumps(line) + "\n" for line in lines)


@dataclass
class Worker:
    """One process on its own "machine": a HOME, a state folder, a SQLite path of its own."""

    name: str
    folder: Path
    config: dict[str, Any]
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def stdout(self) -> Path:
        return self.folder / "stdout.txt"

    @property
    def log(self) -> Path:
        return self.folder / "stderr.txt"

    def start(self) -> Worker:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TAP_PRECORO_", "TARGET_PRECORO_", "XDG_"))
        }
        env["HOME"] = str(self.folder / "home")
        with self.stdout.open("wb") as out, self.log.open("wb") as err:  # the child's copies
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=err, env=env)
        return self

    def wait(self, timeout: float = 120) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def report(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        folder = max(Path(self.config["report_dir"]).iterdir(), key=lambda p: p.name)
        lines = [json.loads(x) for x in (folder / "report.jsonl").read_text().splitlines()]
        return lines, json.loads((folder / "summary.json").read_text())


def _base(sb: Any, folder: Path, pg_url: str, **overrides: Any) -> dict[str, Any]:
    (folder / "home").mkdir(parents=True)
    return {
        "auth_token": sb.token,
        "email": sb.email,
        "api_url": sb.url,
        "budget_ledger_path": str(folder / "home" / "ledger.sqlite3"),
        "state_backend_url": pg_url,
        "max_tries": 2,
        **overrides,
    }


def tap_worker(sb: Any, tmp_path: Path, pg_url: str, streams: list[str], **overrides: Any) -> Any:
    folder = tmp_path / "tap"
    config = _base(sb, folder, pg_url, page_size=10, fetch_details=False, **overrides)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "catalog.json").write_text(json.dumps(catalog_selecting(config, streams)))
    argv = [*TAP, "--config", str(folder / "config.json")]
    argv += ["--catalog", str(folder / "catalog.json")]
    return Worker("tap", folder, config, argv)


def target_worker(
    sb: Any, tmp_path: Path, pg_url: str, name: str, ids: range, **overrides: Any
) -> Worker:
    folder = tmp_path / name
    config = _base(
        sb,
        folder,
        pg_url,
        state_dir=str(folder / "state"),
        report_dir=str(folder / "reports"),
        match={"suppliers": []},
        **overrides,
    )
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "input.singer").write_text(singer(_records(ids), {"done": name}))
    argv = [
        *TARGET,
        *("--config", str(folder / "config.json")),
        *("--input", str(folder / "input.singer")),
    ]
    return Worker(name, folder, config, argv)


def _rows_per_external_id(sb: Any) -> Counter[str]:
    """Rows per test externalId, read straight from the sandbox (limits off first: the
    test's own reads must not spend the workers' budget)."""
    sb.admin.set_limits("off")
    counts: Counter[str] = Counter()
    page = 1
    while True:
        response = requests.get(
            f"{sb.url}/suppliers",
            params={"page": page, "per_page": 200},
            headers=sb.headers,
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        for row in body["data"]:
            ext = str(row.get("externalId") or "")
            if ext.startswith(PREFIX):
                counts[ext] += 1
        if not body["meta"]["pagination"]["has_next_page"]:
            return counts
        page += 1


def _poll(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


# --- one budget -------------------------------------------------------------------------

DAY = 40
"""The day's budget in these tests (Precoro's 3000, scaled down like the second)."""


def test_a_tap_and_a_target_on_two_machines_share_one_budget_exactly(
    sandbox_factory, tmp_path, pg_url, query
):
    # The sandbox at real limits, time-compressed: 5 calls/s instead of 1, a day of 40.
    sb = sandbox_factory(scale=40, limits=f"per_second=5,per_day={DAY},window=rolling")
    limits = {"max_requests_per_second": 4, "max_requests_per_day": DAY}
    tap = tap_worker(sb, tmp_path, pg_url, ["suppliers", "items", "invoices"], **limits)
    target = target_worker(sb, tmp_path, pg_url, "target", range(60), **limits)
    sb.admin.reset_counters()
    tap.start()
    target.start()
    assert tap.wait() == 0, tap.log.read_text()[-3000:]
    assert target.wait() == 0, target.log.read_text()[-3000:]

    counters = sb.admin.counters()
    assert counters.get(status=429) == 0  # the combined rate stayed under every limit
    assert counters.total == DAY  # the whole day, not one call more
    assert query(pg_url, "SELECT count(*) FROM precoro_ledger_calls") == [(DAY,)]
    _, summary = target.report()
    target_calls = summary["calls"]["total"]
    assert 0 < target_calls < DAY  # both workers had turns
    times = [at for (at,) in query(pg_url, "SELECT at_ms FROM precoro_ledger_calls ORDER BY 1")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 250  # 1/4 s between any two calls of either worker, at one clock
    # Both stopped cleanly: the tap's STATE, the target's unattempted records reported.
    assert parse_messages(tap.stdout.read_text()).states
    lines, summary = target.report()
    assert summary["unfinished_records"] == 60 - Counter(o["outcome"] for o in lines)["created"]
    assert summary["unfinished_records"] > 0
    assert set(_rows_per_external_id(sb).values()) <= {1}


# --- one writer -------------------------------------------------------------------------


def test_two_targets_on_two_machines_never_write_twice(sandbox, tmp_path, pg_url):
    # The first run's first POST stays in the sandbox for 2 s: the second starts while
    # the first is writing. Separate HOMEs, state dirs and SQLite paths: only
    # PostgreSQL is shared (with SQLite ledgers their file locks are two locks).
    rule = {"kind": "delay", "route": "/suppliers", "method": "POST", "delay_seconds": 2.0}
    sandbox.admin.set_faults([{**rule, "schedule": [1]}])
    sandbox.admin.reset_counters()
    fast = {"max_requests_per_second": 1000, "duplicate_get_interval_seconds": 0}
    first = target_worker(sandbox, tmp_path, pg_url, "first", range(30), **fast).start()
    second = target_worker(
        sandbox, tmp_path, pg_url, "second", range(30), lock_wait_seconds=120, **fast
    )
    _poll(
        lambda: sandbox.admin.faults()["rules"][0]["fired"] >= 1 or first.proc.poll() is not None,
        "the first run's first POST",
    )
    second.start()
    assert first.wait() == 0, first.log.read_text()[-3000:]
    assert second.wait() == 0, second.log.read_text()[-3000:]

    first_lines, _ = first.report()
    second_lines, second_summary = second.report()
    assert Counter(o["outcome"] for o in first_lines) == {"created": 30}
    assert Counter(o["outcome"] for o in second_lines) == {"unchanged": 30}
    assert second_summary["calls"]["total"] == 1  # it waited, then one look-up found all
    counts = _rows_per_external_id(sandbox)
    assert len(counts) == 30
    assert set(counts.values()) == {1}  # zero duplicates
    assert sandbox.admin.counters().get("POST") == 30


# --- the database goes away -------------------------------------------------------------


def test_postgres_killed_mid_write_stops_the_target_cleanly_and_the_rerun_finishes(
    sandbox, tmp_path, own_postgres, query
):
    url = own_postgres.create_database()
    # POST 5 is held in the sandbox while the database is killed: it is answered (201),
    # then the next admission finds no ledger and the run stops.
    rule = {"kind": "delay", "route": "/suppliers", "method": "POST", "delay_seconds": 1.0}
    sandbox.admin.set_faults([{**rule, "schedule": [5]}])
    sandbox.admin.reset_counters()
    fast = {"max_requests_per_second": 1000, "duplicate_get_interval_seconds": 0}
    run = target_worker(sandbox, tmp_path, url, "writer", range(20), **fast).start()
    _poll(
        lambda: sandbox.admin.faults()["rules"][0]["fired"] >= 1 or run.proc.poll() is not None,
        "POST 5",
    )
    own_postgres.kill()
    code = run.wait()
    lines, summary = run.report()
    log = run.log.read_text()
    assert "state_backend_url" in summary["halted"], log[-3000:]
    created = [o for o in lines if o["outcome"] == "created"]
    assert len(created) == 4
    # The POST in flight was answered (Precoro has it), but its result could not be
    # journalled: not final, and its intent stays open in the shared journal.
    in_flight = {o["external_id"]: o for o in lines}[f"{PREFIX}-004"]
    assert (in_flight["outcome"], in_flight["final"]) == ("failed", False), in_flight
    assert summary["unfinished_records"] == 16  # not attempted, in the dead-letter file
    states = [x for x in run.stdout.read_text().splitlines() if x.strip()]
    assert states == []  # STATE withheld: not everything before it is done
    assert sandbox.admin.counters().get("POST") == 5
    assert code == 75  # EX_TEMPFAIL: it stopped early for want of its ledger; retry later

    own_postgres.start()
    # Every call made had its ledger entry, committed before the call.
    assert query(url, "SELECT count(*) FROM precoro_ledger_calls") == [
        (sandbox.admin.counters().total,)
    ]
    assert run.start().wait() == 0, run.log.read_text()[-3000:]
    lines, _ = run.report()
    outcomes = Counter(o["outcome"] for o in lines)
    # The open POST is looked up, found and linked (`created`), never sent again.
    assert outcomes == {"created": 16, "unchanged": 4}
    assert json.loads(run.stdout.read_text().splitlines()[-1]) == {"done": "writer"}
    counts = _rows_per_external_id(sandbox)
    assert len(counts) == 20
    assert set(counts.values()) == {1}
    assert sandbox.admin.counters().get("POST") == 20  # nothing sent twice


def test_postgres_killed_mid_read_stops_the_tap_with_state_and_the_rerun_finishes(
    sandbox_factory, tmp_path, own_postgres
):
    url = own_postgres.create_database()
    streams = ["suppliers", "items"]
    sb = sandbox_factory(scale=30)
    sb.admin.set_faults([{"kind": "delay", "route": "/*", "delay_seconds": 0.05}])
    sb.admin.reset_counters()
    tap = tap_worker(sb, tmp_path, url, streams, max_requests_per_second=1000)
    tap.start()
    _poll(lambda: sb.admin.counters().total >= 3 or tap.proc.poll() is not None, "3 calls")
    own_postgres.kill()
    # EX_TEMPFAIL, after its STATE: an orchestrator retries the run once the database is back.
    assert tap.wait() == 75, tap.log.read_text()[-3000:]
    first = parse_messages(tap.stdout.read_text())
    assert first.states, "the tap emitted its STATE before stopping"
    calls_before = sb.admin.counters().total
    totals = {stream: sb.admin.stats()[stream] for stream in streams}
    assert sum(len(first.ids(s)) for s in streams) < sum(totals.values())

    own_postgres.start()
    (tap.folder / "state.json").write_text(json.dumps(first.state))
    tap.argv += ["--state", str(tap.folder / "state.json")]
    tap.stdout.rename(tap.folder / "first-stdout.txt")
    assert tap.start().wait() == 0, tap.log.read_text()[-3000:]
    second = parse_messages(tap.stdout.read_text())
    for stream in streams:
        emitted = set(first.ids(stream)) | set(second.ids(stream))
        assert len(emitted) == totals[stream], f"{stream}: a record was lost"
    assert sb.admin.counters().total > calls_before


def test_an_unreachable_database_at_start_makes_no_call(sandbox, tmp_path):
    url = "postgresql://ledger:Start-Pw-4242@127.0.0.1:1/precoro"  # nothing listens on 1
    sandbox.admin.reset_counters()
    target = target_worker(sandbox, tmp_path, url, "target", range(3)).start()
    assert target.wait() == 75  # EX_TEMPFAIL: nothing attempted, try again later
    lines, summary = target.report()
    assert {(o["outcome"], o.get("final", True)) for o in lines} == {("failed", False)}
    assert "state_backend_url" in summary["halted"]
    tap = tap_worker(sandbox, tmp_path, url, ["suppliers"]).start()
    assert tap.wait() == 75
    assert parse_messages(tap.stdout.read_text()).states  # STATE, for the next run
    assert sandbox.admin.counters().total == 0
    for worker in (target, tap):  # the password never reaches a log
        assert "Start-Pw-4242" not in worker.log.read_text()
