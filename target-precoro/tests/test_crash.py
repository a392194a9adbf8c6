"""Crash safety: lost responses and kill -9 never produce a second Precoro record."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from precoro_client.settings import PrecoroSettings
from target_helpers import api_records, make_config, run_target, singer
from target_precoro.settings import WRITE_SETTLE_SECONDS

TARGET = Path(sys.executable).with_name("target-precoro")
N_RECORDS = 500
PREFIX = "CRASH"
MAX_WAIT_SECONDS = PrecoroSettings.max_wait_seconds


def _records(n: int = N_RECORDS) -> list[dict]:
    return [
        {"externalId": f"{PREFIX}-{i:04d}", "name": f"Crash Test Vendor {i}", "country": "France"}
        for i in range(n)
    ]


def _per_external_id(sb) -> Counter[str]:
    rows = api_records(sb, "/suppliers")
    return Counter(
        r["externalId"] for r in rows if str(r.get("externalId") or "").startswith(PREFIX)
    )


def test_apply_then_fail_never_duplicates(sandbox, tmp_path, capsys):
    """Precoro applies the POST but the answer is a 500 or a dropped connection."""
    sandbox.admin.set_faults(
        [
            {"kind": "apply_then_fail", "route": "/suppliers", "method": "POST",
             "status": 500, "probability": 0.05},
            {"kind": "apply_then_fail", "route": "/suppliers", "method": "POST",
             "then_drop": True, "probability": 0.05},
        ]
    )  # fmt: skip
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    sandbox.admin.reset_counters()
    result = run_target(config, singer("suppliers", _records()), capsys)
    fired = sum(rule["fired"] for rule in sandbox.admin.faults()["rules"])
    counters = sandbox.admin.counters()
    assert fired > 10  # the faults really happened
    assert Counter(o["outcome"] for o in result.outcomes) == {"created": N_RECORDS}
    counts = _per_external_id(sandbox)
    assert len(counts) == N_RECORDS
    assert set(counts.values()) == {1}
    assert counters.get("POST") == N_RECORDS  # no POST was ever re-sent
    # One batched look-up per 200 ids, plus one single look-up per lost answer.
    assert counters.get("GET") == 3 + fired
    assert result.exit_code == 0


def _start(config_path: Path, input_path: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PRECORO_")}
    return subprocess.Popen(
        [str(TARGET), "--config", str(config_path), "--input", str(input_path)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env=env,
    )


def _wait_for_posts(sb, proc: subprocess.Popen[bytes], posts: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sb.admin.counters().get("POST") >= posts or proc.poll() is not None:
            return
        time.sleep(0.005)
    pytest.fail(f"target made fewer than {posts} POSTs in {timeout} s")


@pytest.mark.slow
def test_kill_9_at_random_points_leaves_one_record_per_external_id(sandbox, tmp_path):
    rng = random.Random(20240601)
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, max_failures=N_RECORDS)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    input_path = tmp_path / "input.singer"
    input_path.write_text(singer("suppliers", _records(), {"done": True}))
    log = tmp_path / "target.log"
    # Every POST lingers 30 ms inside the server: a kill often lands mid-request,
    # after Precoro applied the write and before the target heard back.
    sandbox.admin.set_faults(
        [{"kind": "delay", "route": "/suppliers", "method": "POST", "delay_seconds": 0.03}]
    )
    sandbox.admin.reset_counters()
    kills = 0
    for _ in range(4):
        done = sandbox.admin.counters().get("POST")
        stop_after = done + rng.randint(5, 60)
        proc = _start(config_path, input_path, log)
        _wait_for_posts(sandbox, proc, stop_after)
        time.sleep(rng.uniform(0, 0.03))  # somewhere inside the next request
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    assert kills == 4
    partial = _per_external_id(sandbox)
    assert 0 < len(partial) < N_RECORDS
    assert set(partial.values()) == {1}

    sandbox.admin.clear_faults()
    # A POST cut by a kill may still be applied by Precoro: it is re-sent only once the
    # settle period (counted from when it may have left the governor's queue) is over.
    sandbox.admin.advance_clock(WRITE_SETTLE_SECONDS + MAX_WAIT_SECONDS + 5)
    final = _start(config_path, input_path, log)
    assert final.wait(timeout=120) == 0, log.read_text()[-3000:]
    counts = _per_external_id(sandbox)
    assert len(counts) == N_RECORDS
    assert set(counts.values()) == {1}
    assert sandbox.admin.counters().get("POST") == N_RECORDS  # each record POSTed exactly once
    # Kills that landed after Precoro applied a POST were settled by look-up, not re-sent.
    final_report = max((tmp_path / "reports").iterdir(), key=lambda p: p.name)
    lines = [json.loads(x) for x in (final_report / "report.jsonl").read_text().splitlines()]
    recovered = [o for o in lines if "interrupted" in o.get("message", "")]
    assert recovered
    assert {o["outcome"] for o in recovered} == {"created"}
    assert Counter(o["outcome"] for o in lines)["failed"] == 0
