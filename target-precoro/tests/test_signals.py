"""SIGTERM/SIGINT: the write in flight ends, nothing more is sent, nothing is lost.

Real signals to a real target subprocess, at moments chosen by a seed and placed by
sandbox events (a POST held inside the server by a scheduled delay, or a POST count).
Between runs the test keeps STATE as Meltano does: the last STATE the target emitted
is the tap's bookmark for the next run.
"""

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
from typing import Any

import pytest
from target_precoro.testing import api_records, make_config, schema_line

TARGET = Path(sys.executable).with_name("target-precoro")
N_RECORDS = 300
PREFIX = "SIG"


def _ext(i: int) -> str:
    return f"{PREFIX}-{i:04d}"


def _tap_output(bookmark: dict[str, Any] | None) -> str:
    """What a tap sends: every record after the bookmark, each followed by its STATE."""
    start = 0 if bookmark is None else int(bookmark["pos"]) + 1
    lines = [schema_line("suppliers")]
    for i in range(start, N_RECORDS):
        record = {"externalId": _ext(i), "name": f"Signal Vendor {i}", "country": "France"}
        lines.append(json.dumps({"type": "RECORD", "stream": "suppliers", "record": record}))
        lines.append(json.dumps({"type": "STATE", "value": {"pos": i}}))
    return "\n".join(lines) + "\n"


def _rows_per_external_id(sb: Any) -> Counter[str]:
    rows = api_records(sb, "/suppliers")
    return Counter(
        r["externalId"] for r in rows if str(r.get("externalId") or "").startswith(PREFIX)
    )


class Run:
    """One target subprocess reading `text` (from a file, or a pipe left open)."""

    def __init__(self, tmp_path: Path, config: dict[str, Any], text: str, *, pipe: bool) -> None:
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PRECORO_")}
        args = [str(TARGET), "--config", str(config_path)]
        if not pipe:
            input_path = tmp_path / "input.singer"
            input_path.write_text(text)
            args += ["--input", str(input_path)]
        self.log = tmp_path / "target.log"
        self.reports = Path(config["report_dir"])
        self.before = set(self.reports.iterdir()) if self.reports.exists() else set()
        with self.log.open("ab") as err:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )
        if pipe:
            assert self.proc.stdin is not None
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()  # and left open: the tap is still "running"

    def wait_until(self, condition: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition() or self.proc.poll() is not None:
                return
            time.sleep(0.005)
        pytest.fail(f"condition not reached in {timeout} s")

    def finish(self) -> tuple[int, list[Any]]:
        out, _ = self.proc.communicate(timeout=60)
        states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        return self.proc.returncode, states

    def report(self) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
        (folder,) = set(self.reports.iterdir()) - self.before
        lines = (folder / "report.jsonl").read_text().splitlines()
        summary = json.loads((folder / "summary.json").read_text())
        dead_path = folder / "dead-letter.jsonl"
        dead = (
            [json.loads(x) for x in dead_path.read_text().splitlines()]
            if dead_path.exists()
            else []
        )
        return [json.loads(x) for x in lines], summary, [m for m in dead if m["type"] == "RECORD"]


def _check_agreement(
    sb: Any, outcomes: list[dict[str, Any]], dead: list[dict[str, Any]], states: list[Any]
) -> None:
    """Report, dead-letter, STATE and Precoro tell the same story."""
    present = _rows_per_external_id(sb)
    unfinished = {o["external_id"] for o in outcomes if not o["final"]}
    assert {m["record"]["externalId"] for m in dead} == unfinished
    assert len(dead) == len(unfinished)
    for o in outcomes:
        if o["final"]:
            assert o["outcome"] in ("created", "unchanged"), o
            assert present[o["external_id"]] == 1, o
        else:
            assert "not attempted: interrupted by" in o["message"], o
            assert o["external_id"] not in present, o
    if states:
        done = int(states[-1]["pos"])
        assert all(present[_ext(i)] == 1 for i in range(done + 1))  # STATE is never ahead


def test_sigterm_then_sigint_then_rerun_lose_and_duplicate_nothing(sandbox, tmp_path):
    rng = random.Random(90210)
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, max_failures=N_RECORDS)
    bookmark: dict[str, Any] | None = None  # what Meltano keeps between runs

    # 1. SIGTERM while the k-th POST is held inside the server: it must complete.
    k = rng.randint(20, 120)
    sandbox.admin.set_faults(
        [{"kind": "delay", "route": "/suppliers", "method": "POST", "delay_seconds": 1.0,
          "schedule": [k]}]
    )  # fmt: skip
    sandbox.admin.reset_counters()
    run = Run(tmp_path, config, _tap_output(bookmark), pipe=False)
    run.wait_until(lambda: sandbox.admin.faults()["rules"][0]["fired"] == 1)
    run.proc.send_signal(signal.SIGTERM)
    code, states = run.finish()
    outcomes, summary, dead = run.report()
    assert code == 128 + signal.SIGTERM, run.log.read_text()[-3000:]
    assert sandbox.admin.counters().get("POST") == k  # the write in flight, then nothing
    assert Counter(o["outcome"] for o in outcomes) == {"created": k, "failed": N_RECORDS - k}
    assert summary["unfinished_records"] == N_RECORDS - k
    assert summary["halted"] == "interrupted by SIGTERM"
    assert states == [{"pos": k - 1}]  # the STATE of the last record written, not of the input
    _check_agreement(sandbox, outcomes, dead, states)
    bookmark = states[-1]
    posts = k

    # 2. Re-runs stopped by SIGINT or SIGTERM at seeded random points between or
    #    during writes (no fault: wherever the signal lands).
    sandbox.admin.clear_faults()
    for _ in range(3):
        signum = rng.choice([signal.SIGINT, signal.SIGTERM])
        sandbox.admin.reset_counters()
        after = rng.randint(1, 40)
        run = Run(tmp_path, config, _tap_output(bookmark), pipe=False)
        run.wait_until(lambda: sandbox.admin.counters().get("POST") >= after)  # noqa: B023
        run.proc.send_signal(signum)
        code, states = run.finish()
        outcomes, summary, dead = run.report()
        assert code == 128 + signum, run.log.read_text()[-3000:]
        assert summary["unfinished_records"] == len(dead) > 0
        _check_agreement(sandbox, outcomes, dead, states)
        bookmark = states[-1] if states else bookmark
        posts += sandbox.admin.counters().get("POST")

    # 3. An uninterrupted re-run from the saved STATE finishes the job.
    sandbox.admin.reset_counters()
    run = Run(tmp_path, config, _tap_output(bookmark), pipe=False)
    code, states = run.finish()
    outcomes, summary, dead = run.report()
    assert code == 0, run.log.read_text()[-3000:]
    assert states == [{"pos": N_RECORDS - 1}]
    assert dead == []
    counts = _rows_per_external_id(sandbox)
    assert len(counts) == N_RECORDS  # 0 lost
    assert set(counts.values()) == {1}  # 0 duplicated
    assert posts + sandbox.admin.counters().get("POST") == N_RECORDS  # no POST wasted


def test_sigterm_while_waiting_for_input_stops_at_once(sandbox, tmp_path):
    """The tap is still running (stdin open): the target must not wait for it to end."""
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, batch_size_rows=5)
    text = _tap_output(None).splitlines(keepends=True)
    sandbox.admin.reset_counters()
    run = Run(tmp_path, config, "".join(text[: 1 + 2 * 5 + 2]), pipe=True)  # 6 records
    run.wait_until(lambda: sandbox.admin.counters().get("POST") == 5)
    run.proc.send_signal(signal.SIGTERM)
    code, states = run.finish()
    outcomes, _, dead = run.report()
    assert code == 128 + signal.SIGTERM
    assert sandbox.admin.counters().get("POST") == 5
    assert [o["outcome"] for o in outcomes[:5]] == ["created"] * 5
    # {"pos": 3} when the signal lands before the STATE after the 5th record is read.
    assert states in ([{"pos": 3}], [{"pos": 4}])
    # The 6th record is not sent: reported and dead-lettered as not attempted (if it was read).
    assert [m["record"]["externalId"] for m in dead] == [o["external_id"] for o in outcomes[5:]]
    _check_agreement(sandbox, outcomes, dead, states)


def test_state_stops_before_the_first_unfinished_record_across_streams(sandbox, tmp_path, capsys):
    """STATE at line n promises every record before n is final, whichever stream it is in."""
    from target_precoro.testing import run_target

    def line(kind: str, **body: Any) -> str:
        return json.dumps({"type": kind, **body})

    text = "\n".join(
        [
            schema_line("taxes"),
            schema_line("suppliers"),
            line(
                "RECORD", stream="taxes", record={"externalId": "ST-T0", "name": "T0", "percent": 5}
            ),
            line("STATE", value={"pos": 0}),
            line("RECORD", stream="suppliers", record={"externalId": "ST-S0", "name": "S0"}),
            line("STATE", value={"pos": 1}),
            line(
                "RECORD", stream="taxes", record={"externalId": "ST-T1", "name": "T1", "percent": 7}
            ),
            line("STATE", value={"pos": 2}),
        ]
    )
    sandbox.admin.set_faults(
        [{"kind": "status", "status": 503, "route": "/suppliers", "method": "POST"}]
    )
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, max_failures=1)
    result = run_target(config, text + "\n", capsys)
    assert result.outcome_of("ST-T0") == result.outcome_of("ST-T1") == "created"
    assert result.by_id()["ST-S0"]["final"] is False
    assert result.states == [{"pos": 0}]  # not pos 1 or 2: ST-S0 (line 5) must be resent
    sandbox.admin.clear_faults()
    # A 503 leaves the POST's outcome unknown: it is settled only after the settle period.
    from target_precoro.settings import WRITE_SETTLE_SECONDS

    sandbox.admin.advance_clock(WRITE_SETTLE_SECONDS + 5)
    rerun = run_target(config, text + "\n", capsys)
    assert rerun.outcome_of("ST-S0") == "created"
    assert rerun.states == [{"pos": 2}]
