"""Two targets on one Precoro account: the account lock makes them take turns.

Without it, both look the same externalIds up, find nothing and both POST (issue 9
case 3: 88-97 of 100 ids duplicated). The overlap is made deterministic with SIGSTOP:
the first run is frozen while one of its POSTs is provably inside the sandbox (a slow
POST has arrived and not been answered), so it has made its decisions, holds the
account lock and no other lock (ledger, SQLite), and the second is started against it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from precoro_client.account_lock import WAITING_LOG, account_lock
from precoro_client.settings import PrecoroSettings
from target_precoro.run import EXIT_LOCKED
from target_precoro.testing import api_records, make_config, run_target, singer

TARGET = Path(sys.executable).with_name("target-precoro")
PREFIX = "LOCK"
WAITING = WAITING_LOG.split("%", 1)[0]
"""The start of the line a waiting run logs: the event the wait tests synchronise on."""
SLOW_POSTS = [10, 20, 30, 40]
"""POSTs the sandbox holds for a second: each is a chance to freeze the first run."""


def _records(ids: range) -> list[dict[str, Any]]:
    return [
        {"externalId": f"{PREFIX}-{i:03d}", "name": f"Lock Test Vendor {i}", "country": "France"}
        for i in ids
    ]


def _rows_per_external_id(sb: Any) -> Counter[str]:
    rows = api_records(sb, "/suppliers")
    return Counter(
        str(r["externalId"]) for r in rows if str(r.get("externalId") or "").startswith(PREFIX)
    )


@dataclass
class Run:
    """One target process and its files."""

    name: str
    config: dict[str, Any]
    input_path: Path
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "stderr.log"

    @property
    def stdout(self) -> Path:
        return self.folder / "stdout.jsonl"

    def start(self) -> Run:
        config_path = self.folder / "config.json"
        config_path.write_text(json.dumps(self.config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PRECORO_")}
        with self.stdout.open("wb") as out, self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(TARGET), "--config", str(config_path), "--input", str(self.input_path)],
                stdout=out,
                stderr=err,
                env=env,
            )
        return self

    def wait(self, timeout: float = 120) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def last_report(self) -> tuple[list[dict[str, Any]], dict[str, Any], Path]:
        folder = max(Path(self.config["report_dir"]).iterdir(), key=lambda p: p.name)
        lines = [json.loads(x) for x in (folder / "report.jsonl").read_text().splitlines()]
        return lines, json.loads((folder / "summary.json").read_text()), folder

    def states(self) -> list[Any]:
        """The STATE values the run emitted (the SDK writes one JSON value per line)."""
        return [json.loads(x) for x in self.stdout.read_text().splitlines() if x.strip()]


def _run(tmp_path: Path, sb: Any, name: str, ids: range, *, state: str, **overrides: Any) -> Run:
    """A run with its own report folder; `state` "shared" or "separate" picks state_dir."""
    folder = tmp_path / name
    folder.mkdir()
    config = make_config(
        sb,
        tmp_path,
        state_dir=str(tmp_path / "state" if state == "shared" else folder / "state"),
        report_dir=str(folder / "reports"),
        match={"suppliers": []},
        **overrides,
    )
    input_path = folder / "input.singer"
    input_path.write_text(singer("suppliers", _records(ids), {"done": name}))
    return Run(name, config, input_path, folder)


def _poll(condition: Any, what: str, timeout: float = 60) -> None:
    """Wait for an event observed outside the clock (a count, a file), with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}")


def _freeze_inside_a_post(sb: Any, run: Run) -> None:
    """SIGSTOP `run` while one of its slow POSTs is still unanswered in the sandbox."""
    proc = run.proc
    assert proc is not None
    for nth, ordinal in enumerate(SLOW_POSTS, start=1):

        def arrived(nth: int = nth) -> bool:
            fired = sb.admin.faults()["rules"][0]["fired"]
            return bool(fired >= nth) or proc.poll() is not None

        _poll(arrived, f"slow POST {ordinal} of {run.name}")
        assert proc.poll() is None, f"{run.name} ended before it could be frozen"
        proc.send_signal(signal.SIGSTOP)
        os.waitpid(proc.pid, os.WUNTRACED)  # returns once it is stopped
        if sb.admin.counters().get("POST") < ordinal:
            return  # frozen while waiting for that POST's answer
        proc.send_signal(signal.SIGCONT)
    pytest.fail(f"could not freeze {run.name} inside a POST")


@pytest.fixture
def slow_posts(sandbox: Any) -> Any:
    rule = {"kind": "delay", "route": "/suppliers", "method": "POST", "delay_seconds": 1.0}
    sandbox.admin.set_faults([{**rule, "schedule": SLOW_POSTS}])
    sandbox.admin.reset_counters()
    return sandbox


@pytest.mark.parametrize("state", ["separate", "shared"])
def test_second_run_stops_cleanly_while_the_first_writes(slow_posts, tmp_path, state):
    sb = slow_posts
    first = _run(tmp_path, sb, "first", range(60), state=state).start()
    second = _run(tmp_path, sb, "second", range(40, 100), state=state, lock_wait_seconds=0)
    try:
        _freeze_inside_a_post(sb, first)
        assert second.start().wait() == EXIT_LOCKED, second.log.read_text()[-3000:]
    finally:
        if first.proc is not None:
            first.proc.send_signal(signal.SIGCONT)
    assert first.wait() == 0, first.log.read_text()[-3000:]

    # The second run attempted nothing, said who was writing, and withheld STATE.
    lines, summary, folder = second.last_report()
    assert len(lines) == 60
    assert {(o["outcome"], o.get("final", True)) for o in lines} == {("failed", False)}
    assert summary["calls"]["total"] == 0
    assert summary["unfinished_records"] == 60
    assert f"-{first.proc.pid}" in summary["halted"]  # the holder's run id ends with its pid
    dead = [m for m in map(json.loads, (folder / "dead-letter.jsonl").read_text().splitlines())]
    assert sorted(m["record"]["externalId"] for m in dead if m["type"] == "RECORD") == [
        r["externalId"] for r in _records(range(40, 100))
    ]
    assert second.states() == []
    # The first run wrote everything it had, once.
    first_lines, _, _ = first.last_report()
    assert Counter(o["outcome"] for o in first_lines) == {"created": 60}
    assert first.states()[-1] == {"done": "first"}

    # The orchestrator's retry of the second run writes only what is missing.
    assert second.start().wait() == 0, second.log.read_text()[-3000:]
    retry_lines, _, _ = second.last_report()
    by_id = {o["external_id"]: o["outcome"] for o in retry_lines}
    assert Counter(by_id.values()) == {"unchanged": 20, "created": 40}
    assert all(by_id[f"{PREFIX}-{i:03d}"] == "unchanged" for i in range(40, 60))
    assert second.states()[-1] == {"done": "second"}

    counts = _rows_per_external_id(sb)
    assert len(counts) == 100
    assert set(counts.values()) == {1}
    assert sb.admin.counters().get("POST") == 100  # not one POST wasted


def test_second_run_waits_for_the_first_then_finds_everything_written(slow_posts, tmp_path):
    sb = slow_posts
    first = _run(tmp_path, sb, "first", range(60), state="separate").start()
    second = _run(tmp_path, sb, "second", range(60), state="separate", lock_wait_seconds=120)
    try:
        _freeze_inside_a_post(sb, first)
        second.start()
        assert second.proc is not None
        # The second run's one line saying it waits for the first (or its exit, without a lock).
        _poll(
            lambda: WAITING in second.log.read_text() or second.proc.poll() is not None,
            "the second run to wait for the account lock",
        )
        assert second.proc.poll() is None, "the second run did not wait for the first"
    finally:
        if first.proc is not None:
            first.proc.send_signal(signal.SIGCONT)
    assert first.wait() == 0, first.log.read_text()[-3000:]
    assert second.wait() == 0, second.log.read_text()[-3000:]

    first_lines, _, _ = first.last_report()
    second_lines, second_summary, _ = second.last_report()
    assert Counter(o["outcome"] for o in first_lines) == {"created": 60}
    assert Counter(o["outcome"] for o in second_lines) == {"unchanged": 60}
    assert second_summary["calls"]["total"] == 1  # one external_id[] look-up, no write
    assert second.states()[-1] == {"done": "second"}
    counts = _rows_per_external_id(sb)
    assert len(counts) == 60
    assert set(counts.values()) == {1}
    assert sb.admin.counters().get("POST") == 60


def test_a_killed_holder_does_not_block_the_next_run(sandbox, tmp_path):
    # The first run's look-up stays in the sandbox for a while: it holds the lock and has
    # no write in flight when it is killed.
    rule = {"kind": "delay", "route": "/suppliers", "method": "GET", "delay_seconds": 5.0}
    sandbox.admin.set_faults([{**rule, "times": 1}])
    sandbox.admin.reset_counters()
    first = _run(tmp_path, sandbox, "first", range(10), state="shared").start()
    assert first.proc is not None
    _poll(
        lambda: sandbox.admin.faults()["rules"][0]["fired"] == 1 or first.proc.poll() is not None,
        "the first run's look-up",
    )
    assert first.proc.poll() is None
    first.proc.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    second = _run(tmp_path, sandbox, "second", range(10), state="shared", lock_wait_seconds=0)
    assert second.start().wait() == 0, second.log.read_text()[-3000:]
    lines, _, _ = second.last_report()
    assert Counter(o["outcome"] for o in lines) == {"created": 10}
    counts = _rows_per_external_id(sandbox)
    assert len(counts) == 10
    assert set(counts.values()) == {1}


def test_sigterm_while_waiting_for_the_lock_stops_cleanly(sandbox, tmp_path):
    run = _run(tmp_path, sandbox, "waiter", range(5), state="separate", lock_wait_seconds=120)
    lock = _hold_lock(run.config)
    sandbox.admin.reset_counters()
    try:
        run.start()
        assert run.proc is not None
        _poll(
            lambda: WAITING in run.log.read_text() or run.proc.poll() is not None,
            "the run to wait for the account lock",
        )
        run.proc.send_signal(signal.SIGTERM)
        code = run.wait()
    finally:
        lock.release()
    # Interrupted, not locked out: the exit status names the signal (128 + 15).
    assert code == 128 + signal.SIGTERM, run.log.read_text()[-3000:]
    lines, summary, folder = run.last_report()
    assert {(o["outcome"], o.get("final", True)) for o in lines} == {("failed", False)}
    assert len(lines) == 5
    assert summary["calls"]["total"] == 0
    assert sandbox.admin.counters().total == 0
    assert len((folder / "dead-letter.jsonl").read_text().splitlines()) == 1 + 5  # SCHEMA + 5
    assert run.states() == []


# --- in-process: the lock held by the test itself -------------------------------------


def _hold_lock(config: dict[str, Any]) -> Any:
    lock = account_lock(PrecoroSettings.from_config(config), run_id="test-holder")
    lock.acquire(0)
    return lock


def test_locked_out_run_makes_no_call_and_dead_letters_everything(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, lock_wait_seconds=0, match={"suppliers": []})
    lock = _hold_lock(config)
    sandbox.admin.reset_counters()
    try:
        result = run_target(config, singer("suppliers", _records(range(5)), {"n": 5}), capsys)
    finally:
        lock.release()
    assert result.exit_code == EXIT_LOCKED
    assert sandbox.admin.counters().total == 0
    assert {o["outcome"] for o in result.outcomes} == {"failed"}
    assert len(result.outcomes) == 5
    assert "test-holder" in result.summary["halted"]
    assert [m["record"]["externalId"] for m in result.dead_letter() if m["type"] == "RECORD"] == [
        r["externalId"] for r in _records(range(5))
    ]
    assert result.states == []
    # Released: the same input now goes through.
    again = run_target(config, singer("suppliers", _records(range(5)), {"n": 5}), capsys)
    assert again.exit_code == 0
    assert Counter(o["outcome"] for o in again.outcomes) == {"created": 5}
    assert again.states[-1] == {"n": 5}


def test_run_releases_the_lock_when_it_ends(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    result = run_target(config, singer("suppliers", _records(range(2))), capsys)
    assert result.exit_code == 0
    lock = _hold_lock(config)  # would raise AccountLocked if the run had kept it
    lock.release()


def test_dry_run_and_empty_run_take_no_lock(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, lock_wait_seconds=0, match={"suppliers": []})
    lock = _hold_lock(config)
    try:
        dry = run_target({**config, "dry_run": True}, singer("suppliers", _records(range(3))))
        empty = run_target(config, singer("suppliers", [], {"n": 0}), capsys)
    finally:
        lock.release()
    assert dry.exit_code == 0
    assert Counter(o["outcome"] for o in dry.outcomes) == {"created": 3}
    assert empty.exit_code == 0
    assert empty.states[-1] == {"n": 0}
    assert _rows_per_external_id(sandbox) == Counter()


@pytest.mark.parametrize("value", [-1, "soon", True, float("inf"), [5]])
def test_lock_wait_seconds_is_validated(value):
    from precoro_client.errors import ConfigError
    from target_precoro.settings import TargetSettings

    with pytest.raises(ConfigError) as bad:
        TargetSettings.from_config({"lock_wait_seconds": value})
    assert bad.value.setting == "lock_wait_seconds"
    assert TargetSettings.from_config({}).lock_wait_seconds == 300
    assert TargetSettings.from_config({"lock_wait_seconds": 0}).lock_wait_seconds == 0
    assert TargetSettings.from_config({"lock_wait_seconds": "60"}).lock_wait_seconds == 60
