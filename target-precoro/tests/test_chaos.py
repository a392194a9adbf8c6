"""Chaos: everything that happens to a real run, mixed with a seed, loses and duplicates nothing.

An ERP (an append-only change log of supplier versions) feeds two pipelines, as a
scheduled `meltano run` and a manual one would: each has its own `state_dir` and its
own bookmark, which is the last STATE its target emitted (what Meltano keeps), and
both write to one Precoro account (shared budget ledger, hence one account lock).
Each round the ERP edits some records, the sandbox gets a seeded mix of faults
(apply-then-fail with a 500 or a dropped connection, POSTs applied only after the
client gave up (`apply_later`), POSTs dropped or refused (503) unapplied, truncated
answers, dropped and refused look-ups) and the
holder of the account lock is stopped by SIGTERM or kill -9 at a point chosen by a
seed and placed by a sandbox event (its k-th supplier call of the round, held inside
the server for a second), while the other pipeline's target waits for the lock. The sandbox clock is
frozen and moved by the test (past the settle period where needed), never slept on.

Afterwards both pipelines are re-run until every record is final. Then Precoro holds
exactly one supplier per externalId with the newest values of the change log, every
report line naming a Precoro id names that one, each record's last final line agrees
with Precoro, and no POST was sent beyond one per record plus one per POST the sandbox
dropped without applying it.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from precoro_client.account_lock import LockHolder, account_lock
from precoro_client.settings import PrecoroSettings
from precoro_sandbox.testing import START
from target_precoro.report import WRITTEN
from target_precoro.settings import WRITE_SETTLE_SECONDS
from target_precoro.testing import api_records, make_config, run_target, schema_line

TARGET = Path(sys.executable).with_name("target-precoro")
PREFIX = "CHAOS"
N_RECORDS = 520
SEED = int(os.environ.get("CHAOS_SEED", "20261201"))
"""Another seed reproduces another mix: CHAOS_SEED=7 pytest ...test_chaos.py"""
SETTLE = WRITE_SETTLE_SECONDS + PrecoroSettings.max_wait_seconds + 5
"""Sandbox-clock seconds after which every unknown POST of a run has settled."""
APPLY_LATER_SECONDS = 90
"""Sandbox-clock delay of `apply_later` writes (inside the settle period)."""
TIMEOUT = 120


def _ext(i: int) -> str:
    return f"{PREFIX}-{i:04d}"


@dataclass
class Erp:
    """The source: an append-only log of record versions (what the tap reads from)."""

    rng: random.Random
    log: list[dict[str, Any]] = field(default_factory=list)
    version: Counter[str] = field(default_factory=Counter)

    def write(self, i: int) -> None:
        ext = _ext(i)
        self.version[ext] += 1
        v = self.version[ext]
        city = self.rng.choice(["Lyon", "Paris", "Nantes", "Lille", "Nice"])
        self.log.append(
            {
                "externalId": ext,
                "name": f"Chaos Vendor {i} v{v}",
                "country": "France",
                "city": city,
                "phone": f"+33 1 {i:04d} {v:04d}",
            }
        )

    def newest(self) -> dict[str, dict[str, Any]]:
        return {r["externalId"]: r for r in self.log}

    def tap_output(self, bookmark: int) -> str:
        """Every version after the bookmark, each followed by its STATE (seq = log index)."""
        lines = [schema_line("suppliers")]
        for seq in range(bookmark + 1, len(self.log)):
            record = self.log[seq]
            lines.append(json.dumps({"type": "RECORD", "stream": "suppliers", "record": record}))
            lines.append(json.dumps({"type": "STATE", "value": {"seq": seq}}))
        return "\n".join(lines) + "\n"


@dataclass
class Pipeline:
    """One Meltano pipeline: its own state_dir and reports, and the STATE Meltano kept."""

    name: str
    folder: Path
    config: dict[str, Any]
    bookmark: int = -1
    runs: int = 0
    reports: list[Path] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, erp: Erp) -> None:
        self.runs += 1
        run_dir = self.folder / f"run{self.runs}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps(self.config))
        (run_dir / "input.singer").write_text(erp.tap_output(self.bookmark))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PRECORO_")}
        args = [str(TARGET), "--config", str(run_dir / "config.json")]
        with (
            (run_dir / "stdout.jsonl").open("wb") as out,
            (run_dir / "stderr.log").open("wb") as err,
        ):
            self.proc = subprocess.Popen(
                [*args, "--input", str(run_dir / "input.singer")], stdout=out, stderr=err, env=env
            )
        self._run_dir = run_dir
        self._before = set(self._reports_dir.iterdir()) if self._reports_dir.exists() else set()

    @property
    def _reports_dir(self) -> Path:
        return Path(self.config["report_dir"])

    def finish(self) -> int:
        """Wait for the run; keep its last STATE as Meltano does; return the exit status."""
        assert self.proc is not None
        code = self.proc.wait(timeout=TIMEOUT)
        self.proc = None
        out = (self._run_dir / "stdout.jsonl").read_text().splitlines()
        states = [json.loads(x) for x in out if x.strip()]
        if states:
            assert int(states[-1]["seq"]) >= self.bookmark  # STATE never goes back
            self.bookmark = int(states[-1]["seq"])
        new = (
            sorted(set(self._reports_dir.iterdir()) - self._before)
            if self._reports_dir.exists()
            else []
        )
        self.reports.extend(new)
        return code

    def log_tail(self) -> str:
        return (self._run_dir / "stderr.log").read_text()[-4000:]

    def last_summary(self) -> dict[str, Any]:
        return json.loads((self.reports[-1] / "summary.json").read_text())


def _rows(sb: Any) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in api_records(sb, "/suppliers"):
        ext = str(row.get("externalId") or "")
        if ext.startswith(PREFIX):
            rows.setdefault(ext, []).append(row)
    return rows


def _holder_pid(config: dict[str, Any]) -> int | None:
    lock = account_lock(PrecoroSettings.from_config(config), run_id="chaos-test")
    holder: LockHolder | None = lock.holder()  # type: ignore[attr-defined]
    return None if holder is None else holder.pid


def _poll(condition: Any, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}")


def _faults(rng: random.Random, hold_at: int | None) -> list[dict[str, Any]]:
    """This round's faults on supplier writes and look-ups (seeded by the sandbox)."""
    route = "/suppliers*"
    rules: list[dict[str, Any]] = []
    if hold_at is not None:  # the call a signal lands in: held 1 s inside the server
        rules.append({"kind": "delay", "route": route, "delay_seconds": 1.0,
                      "schedule": [hold_at]})  # fmt: skip
    p = rng.uniform(0.01, 0.03)
    rules += [
        {"kind": "apply_then_fail", "route": route, "method": "POST", "status": 500,
         "probability": p},
        {"kind": "apply_then_fail", "route": route, "method": "POST", "then_drop": True,
         "probability": p},
        {"kind": "apply_later", "route": route, "method": "POST",
         "delay_seconds": APPLY_LATER_SECONDS, "probability": p},
        {"kind": "drop", "route": route, "method": "POST", "probability": p / 2},
        {"kind": "apply_then_fail", "route": route, "method": "PUT", "status": 502,
         "probability": p},
        {"kind": "status", "route": route, "method": "POST", "status": 503,
         "probability": p / 2},
        {"kind": "truncate", "route": route, "method": "POST", "probability": p / 2},
        {"kind": "truncate", "route": route, "method": "PUT", "probability": p / 2},
        {"kind": "drop", "route": route, "method": "GET", "probability": p},
        {"kind": "status", "route": route, "method": "GET", "status": 503, "probability": p},
    ]  # fmt: skip
    return rules


def _dropped_posts(snapshot: list[dict[str, Any]]) -> int:
    """POSTs the sandbox refused or dropped without applying them (each needs one more)."""
    unapplied = ("drop", "status")
    return sum(r["fired"] for r in snapshot if r["kind"] in unapplied and r["method"] == "POST")


@pytest.mark.slow
def test_chaos_leaves_one_newest_record_per_external_id(sandbox_factory, tmp_path):
    rng = random.Random(SEED)
    sb = sandbox_factory(limits="off", clock_start=START, clock_frozen=True, faults_seed=SEED)
    erp = Erp(random.Random(SEED + 1))
    for i in range(N_RECORDS):
        erp.write(i)
        if i % 9 == 8:  # a few edits while the first versions are still being sent
            erp.write(rng.randrange(i))

    pipelines = []
    for name in ("scheduled", "manual"):
        folder = tmp_path / name
        config = make_config(
            sb,
            tmp_path,
            state_dir=str(folder / "state"),
            report_dir=str(folder / "reports"),
            match={"suppliers": []},
            batch_size_rows=100,
            lock_wait_seconds=TIMEOUT,
            # ~2,000 calls in a minute of wall-clock time: the budget is another test's.
            max_requests_per_hour=10**6,
            max_requests_per_day=10**7,
        )
        pipelines.append(Pipeline(name, folder, config))
    by_pid: dict[int, Pipeline] = {}
    dropped = 0
    held = 0
    interruptions: Counter[str] = Counter()
    sb.admin.reset_counters()

    plan = ["kill9", "kill9", "kill9", "sigterm", "sigterm", "none"]
    rng.shuffle(plan)
    for round_no, how in enumerate(plan):
        if round_no:
            for _ in range(rng.randint(10, 40)):  # the ERP edits records between runs
                erp.write(rng.randrange(N_RECORDS))
        at = rng.randint(2, 400 if round_no == 0 else 12)  # the at-th supplier call
        sb.admin.set_faults(_faults(rng, None if how == "none" else at))
        order = list(pipelines) if rng.random() < 0.5 else list(reversed(pipelines))
        running = order if rng.random() < 0.7 else order[:1]  # often both at once
        for pipeline in running:
            pipeline.start(erp)
            assert pipeline.proc is not None
            by_pid[pipeline.proc.pid] = pipeline
        if how != "none":

            def reached() -> bool:
                if all(p.proc is None or p.proc.poll() is not None for p in pipelines):
                    return True
                # The call held inside the server has arrived: the signal lands mid-call.
                return bool(sb.admin.faults()["rules"][0]["fired"] >= 1)

            _poll(reached, f"the {how} point")
            pid = _holder_pid(pipelines[0].config)
            victim = by_pid.get(pid or -1)
            if victim is not None and victim.proc is not None and victim.proc.poll() is None:
                victim.proc.send_signal(signal.SIGKILL if how == "kill9" else signal.SIGTERM)
                interruptions[how] += 1
        for pipeline in running:
            code = pipeline.finish()
            expected = {0, -signal.SIGKILL, 128 + signal.SIGTERM}
            assert code in expected, f"{pipeline.name} exit {code}: {pipeline.log_tail()}"
        snapshot = sb.admin.faults()["rules"]
        dropped += _dropped_posts(snapshot)
        held += sum(r["fired"] for r in snapshot if r["kind"] == "delay")
        sb.admin.clear_faults()
        # A call held for a killed run is still inside Precoro: let it end before the
        # clock moves on (a write busy for longer than the settle period is out of scope).
        _poll(
            lambda: sum(r["fault"] == "delay" for r in sb.admin.requests()) >= held,  # noqa: B023
            "the held call to be answered",
        )
        # Some rounds end long enough after the last POST for unknown ones to settle.
        sb.admin.advance_clock(rng.choice([0, APPLY_LATER_SECONDS + 5, SETTLE]))
        rows = _rows(sb)
        duplicates = {x: len(r) for x, r in rows.items() if len(r) > 1}
        assert duplicates == {}, f"round {round_no}: duplicated {duplicates}"
        for pipeline in pipelines:  # STATE is never ahead of what Precoro holds
            # (a version superseded by a later line of the same batch is done when that
            # line is: if the later one is after the STATE, the next run resends it)
            later = {r["externalId"] for r in erp.log[pipeline.bookmark + 1 :]}
            covered = {r["externalId"] for r in erp.log[: pipeline.bookmark + 1]}
            behind = covered - set(rows) - later
            assert behind == set(), f"round {round_no}: {pipeline.name} STATE ahead of {behind}"

    assert interruptions["kill9"] >= 2
    assert interruptions["sigterm"] >= 1

    # Re-runs without faults until both pipelines report every record final.
    sb.admin.advance_clock(SETTLE)
    for pipeline in pipelines:
        for _ in range(3):
            pipeline.start(erp)
            code = pipeline.finish()
            assert code == 0, pipeline.log_tail()
            if pipeline.last_summary()["unfinished_records"] == 0:
                break
            sb.admin.advance_clock(SETTLE)
        assert pipeline.last_summary()["unfinished_records"] == 0, pipeline.name
        assert pipeline.bookmark == len(erp.log) - 1, pipeline.name

    rows = _rows(sb)
    newest = erp.newest()
    assert sorted(rows) == sorted(newest)  # nothing lost
    assert {x: len(r) for x, r in rows.items() if len(r) != 1} == {}  # nothing duplicated
    for ext, record in newest.items():
        (row,) = rows[ext]
        got = {k: row.get(k) for k in ("name", "city", "phone")}
        assert got == {k: record[k] for k in ("name", "city", "phone")}, ext

    # Every report line agrees with Precoro; each record's last final line says where it is.
    last_final: dict[str, dict[str, Any]] = {}
    outcomes: Counter[str] = Counter()
    for pipeline in pipelines:
        for folder in pipeline.reports:
            report = folder / "report.jsonl"
            lines = report.read_text().splitlines() if report.exists() else []
            for line in map(json.loads, lines):
                ext = line["external_id"]
                outcomes[line["outcome"]] += 1
                if line.get("precoro_id") is not None:
                    assert line["precoro_id"] == rows[ext][0]["id"], line
                if line.get("final", True) and not line.get("superseded"):
                    last_final[ext] = line
    assert sorted(last_final) == sorted(newest)
    for ext, line in last_final.items():
        assert line["outcome"] in WRITTEN, line
        assert line["precoro_id"] == rows[ext][0]["id"], line

    counters = sb.admin.counters()
    calls = {m: counters.get(m) for m in ("GET", "POST", "PUT", "PATCH")}
    print(
        f"chaos: {len(erp.log)} versions of {N_RECORDS} records, calls {calls}, dropped "
        f"POSTs {dropped}, interruptions {dict(interruptions)}, outcomes {dict(outcomes)}"
    )
    assert calls["POST"] == N_RECORDS + dropped  # no POST re-sent that Precoro had applied
    assert calls["PATCH"] == 0

    # Replaying every dead-letter file, through either pipeline's config, writes nothing:
    # each of its records has since been written from a newer version.
    replayed = 0
    for pipeline in pipelines:
        for folder in list(pipeline.reports):
            dead = folder / "dead-letter.jsonl"
            if not dead.exists():
                continue
            for through in pipelines:
                result = run_target(through.config, dead.read_text())
                assert result.exit_code == 0, result.summary
                wrote = [o for o in result.outcomes if o["outcome"] not in ("skipped", "unchanged")]
                assert wrote == [], f"{folder.name} replayed through {through.name}"
                replayed += len(result.outcomes)
    after = sb.admin.counters()
    assert (after.get("POST"), after.get("PUT")) == (calls["POST"], calls["PUT"])
    assert replayed > 0
    assert {x: r[0]["name"] for x, r in _rows(sb).items()} == {
        x: v["name"] for x, v in newest.items()
    }
