"""Crash safety: lost responses and kill -9 never produce a second Precoro record."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from precoro_client.settings import PrecoroSettings
from precoro_sandbox.app import Reply
from target_precoro.settings import WRITE_SETTLE_SECONDS
from target_precoro.testing import make_config, rows_per_external_id, run_target, singer

TARGET = Path(sys.executable).with_name("target-precoro")
N_RECORDS = 500
PREFIX = "CRASH"
MAX_WAIT_SECONDS = PrecoroSettings.max_wait_seconds


def _records(n: int = N_RECORDS) -> list[dict]:
    return [
        {"externalId": f"{PREFIX}-{i:04d}", "name": f"Crash Test Vendor {i}", "country": "France"}
        for i in range(n)
    ]


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
    counts = rows_per_external_id(sandbox, PREFIX)
    assert len(counts) == N_RECORDS
    assert set(counts.values()) == {1}
    assert counters.get("POST") == N_RECORDS  # no POST was ever re-sent
    # One batched look-up per 200 ids, plus one single look-up per lost answer.
    assert counters.get("GET") == 3 + fired
    assert result.exit_code == 0


def _start(config_path: Path, input_path: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PRECORO_")}
    with log.open("ab") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [str(TARGET), "--config", str(config_path), "--input", str(input_path)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )


class PostTrap:
    """Holds one POST of the target inside the sandbox until the test has killed it.

    It wraps the sandbox's request entry point (`Sandbox.process`), so the kill lands at
    a point chosen by request count, not by timing: with `applied`, after Precoro applied
    the POST and before its answer left (the target never learns the outcome); without,
    before Precoro saw it (the request is dropped unapplied and uncounted).
    """

    def __init__(self, sb: Any, route: str) -> None:
        self._process = sb.sandbox.process
        self._route = route
        self._lock = threading.Lock()
        self._seen = 0
        self._point: tuple[int, bool] | None = None
        self.held: str | None = None
        """externalId of the held POST."""
        self.reached = threading.Event()
        self.release = threading.Event()
        sb.sandbox.process = self

    def arm(self, post: int, *, applied: bool) -> None:
        """Hold the `post`-th POST from now on."""
        with self._lock:
            self._seen, self._point, self.held = 0, (post, applied), None
        self.reached.clear()
        self.release.clear()

    def __call__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        if method != "POST" or not target.startswith(self._route):
            return self._process(method, target, headers, body)
        with self._lock:
            self._seen += 1
            point = self._point
            hit = point is not None and self._seen == point[0]
            if hit:
                self._point = None
        if not hit or point is None:
            return self._process(method, target, headers, body)
        self.held = parse_qs(body.decode())["externalId"][0]
        applied = point[1]
        reply = self._process(method, target, headers, body) if applied else None
        self.reached.set()
        self.release.wait(60)
        return reply if reply is not None else Reply(0, b"", action="drop")


def _hold_and_kill(trap: PostTrap, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait until the trap holds its POST, then kill -9 the target and let the POST go."""
    deadline = time.monotonic() + timeout
    while not trap.reached.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the target ended or stalled before it sent the POST to hold")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    trap.release.set()


@pytest.mark.slow
def test_kill_9_at_random_points_leaves_one_record_per_external_id(sandbox, tmp_path):
    rng = random.Random(20240601)
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, max_failures=N_RECORDS)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    input_path = tmp_path / "input.singer"
    input_path.write_text(singer("suppliers", _records(), {"done": True}))
    log = tmp_path / "target.log"
    trap = PostTrap(sandbox, "/suppliers")
    sandbox.admin.reset_counters()
    # Alternately: a POST that never reached Precoro, and one Precoro applied whose
    # answer the target never got. Each kill lands while that POST is held.
    held: dict[str, bool] = {}
    for applied in (False, True, False, True):
        trap.arm(rng.randint(5, 60), applied=applied)
        _hold_and_kill(trap, _start(config_path, input_path, log))
        assert trap.held is not None
        held[trap.held] = applied
    assert len(held) == 4
    partial = rows_per_external_id(sandbox, PREFIX)
    assert 0 < len(partial) < N_RECORDS
    assert set(partial.values()) == {1}
    lost = [ext for ext, applied in held.items() if not applied]
    assert not set(lost) & set(partial)  # the unapplied POSTs created nothing
    assert sandbox.admin.counters().get("POST") == len(partial)

    # A POST cut by a kill may still be applied by Precoro: it is re-sent only once the
    # settle period (counted from when it may have left the governor's queue) is over.
    sandbox.admin.advance_clock(WRITE_SETTLE_SECONDS + MAX_WAIT_SECONDS + 5)
    final = _start(config_path, input_path, log)
    assert final.wait(timeout=120) == 0, log.read_text()[-3000:]
    counts = rows_per_external_id(sandbox, PREFIX)
    assert len(counts) == N_RECORDS
    assert set(counts.values()) == {1}
    assert sandbox.admin.counters().get("POST") == N_RECORDS  # each record POSTed exactly once
    # An applied POST is settled by look-up in the next run, not re-sent (the last one
    # by this run); the unapplied ones were POSTed again only after the settle period.
    final_report = max((tmp_path / "reports").iterdir(), key=lambda p: p.name)
    lines = [json.loads(x) for x in (final_report / "report.jsonl").read_text().splitlines()]
    by_id = {o["external_id"]: o for o in lines}
    recovered = {o["external_id"] for o in lines if "interrupted" in o.get("message", "")}
    assert recovered == {list(held)[-1]}
    first_applied, last_applied = (ext for ext, applied in held.items() if applied)
    assert by_id[first_applied]["outcome"] == "unchanged"  # settled by the next run
    assert {by_id[ext]["outcome"] for ext in [*lost, last_applied]} == {"created"}
    assert Counter(o["outcome"] for o in lines)["failed"] == 0
