"""The write journal is the account's: runs from separate state_dirs see each other's open POSTs.

Two pipelines share the account lock (it lives beside the budget ledger) but each has
its own `state_dir`. When the lock holder is killed (or merely ends) with a POST whose
outcome is unknown, and Precoro applies that POST later, the next writer, whichever
`state_dir` it uses, must not POST the record again before the settle period.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from precoro_client.settings import PrecoroSettings
from precoro_sandbox.testing import START
from target_precoro.journal import Journal, journal_path
from target_precoro.testing import api_records, make_config, run_target, singer

TARGET = Path(sys.executable).with_name("target-precoro")
PREFIX = "SHJ"
N = 6
APPLY_LATER = 90


def _records() -> list[dict[str, Any]]:
    return [
        {"externalId": f"{PREFIX}-{i}", "name": f"Shared Journal Vendor {i}", "country": "France"}
        for i in range(N)
    ]


def _rows(sb: Any) -> Counter[str]:
    rows = api_records(sb, "/suppliers")
    return Counter(r["externalId"] for r in rows if str(r.get("externalId")).startswith(PREFIX))


def _config(sb: Any, tmp_path: Path, name: str) -> dict[str, Any]:
    return make_config(
        sb,
        tmp_path,
        state_dir=str(tmp_path / name / "state"),
        report_dir=str(tmp_path / name / "reports"),
        match={"suppliers": []},
    )


@pytest.fixture
def frozen(sandbox_factory: Any) -> Any:
    return sandbox_factory(limits="off", clock_start=START, clock_frozen=True)


def test_killed_holder_with_a_late_post_in_flight_is_not_duplicated_from_another_state_dir(
    frozen, tmp_path, capsys
):
    sb = frozen
    # POST 2 is applied only 90 s (sandbox clock) after the client gave up; POST 4 is
    # held inside the server while the holder is killed -9 (Precoro applies it anyway).
    sb.admin.set_faults(
        [
            {"kind": "apply_later", "route": "/suppliers", "method": "POST",
             "delay_seconds": APPLY_LATER, "schedule": [2]},
            {"kind": "delay", "route": "/suppliers", "method": "POST", "delay_seconds": 1.0,
             "schedule": [4]},
        ]
    )  # fmt: skip
    sb.admin.reset_counters()
    first = _config(sb, tmp_path, "first")
    folder = tmp_path / "first"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(first))
    (folder / "input.singer").write_text(singer("suppliers", _records(), {"done": True}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PRECORO_")}
    with (folder / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            [str(TARGET), "--config", str(folder / "config.json"), "--input",
             str(folder / "input.singer")],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while sb.admin.faults()["rules"][1]["fired"] < 1:
        assert proc.poll() is None, (folder / "stderr.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    while sb.admin.counters().get("POST") < 4:  # the held POST is answered (to no one)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert _rows(sb) == {f"{PREFIX}-{i}": 1 for i in (0, 2, 3)}  # POST 2 not applied yet

    # The other pipeline (its own state_dir) takes the lock: it re-sends neither the
    # late POST nor the one cut by the kill (found by look-up).
    second = _config(sb, tmp_path, "second")
    again = run_target(second, singer("suppliers", _records(), {"done": True}), capsys)
    late = again.by_id()[f"{PREFIX}-1"]
    assert (late["outcome"], late["final"]) == ("unresolved", False), late
    assert again.states == []
    assert sb.admin.counters().get("POST") == N  # 4 by the first run, SHJ-4 and SHJ-5
    assert again.outcome_of(f"{PREFIX}-3") == "created"  # the POST cut by the kill

    # Precoro applies the late POST; the next run finds it and sends nothing.
    sb.admin.advance_clock(APPLY_LATER + 1)
    third = run_target(second, singer("suppliers", _records(), {"done": True}), capsys)
    assert third.outcome_of(f"{PREFIX}-1") == "created"
    assert third.states == [{"done": True}]
    assert sb.admin.counters().get("POST") == N
    assert _rows(sb) == {f"{PREFIX}-{i}": 1 for i in range(N)}


def test_journal_lives_beside_the_account_lock_and_adopts_an_old_one(sandbox, tmp_path, capsys):
    config = _config(sandbox, tmp_path, "one")
    settings = PrecoroSettings.from_config(config)
    shared = journal_path(settings.budget_ledger_path, settings.ledger_key)
    assert shared.parent == settings.budget_ledger_path.parent
    assert shared.name.startswith("write-")  # beside write-<key>.lock
    # A journal an older version left in state_dir, with one POST still open.
    from target_precoro.settings import TargetSettings

    account = TargetSettings.from_config(config).account_dir(settings.ledger_key)
    legacy = Journal(account / "journal.sqlite3", "old-run")
    legacy.intent("suppliers", 0, f"{PREFIX}-0", "POST", "/suppliers", sent_by=time.time())
    legacy.close()
    result = run_target(config, singer("suppliers", _records()[:1]), capsys)
    entry = result.by_id()[f"{PREFIX}-0"]
    assert (entry["outcome"], entry["final"]) == ("unresolved", False)  # not re-sent
    assert _rows(sandbox) == {}
    with sqlite3.connect(account / "journal.sqlite3") as old:
        assert [r[0] for r in old.execute("SELECT state FROM journal")] == ["moved"]
    with sqlite3.connect(shared) as new:
        states = [r[0] for r in new.execute("SELECT state FROM journal WHERE run='old-run'")]
    assert states == ["intent"]


def test_a_dead_letter_replayed_through_another_state_dir_never_reverts(sandbox, tmp_path, capsys):
    """Record versions are the account's too: any pipeline's replay sees every newer write."""
    manual, scheduled = _config(sandbox, tmp_path, "manual"), _config(sandbox, tmp_path, "sched")
    old = {"externalId": f"{PREFIX}-V", "name": "Versioned Vendor v1", "country": "France"}
    new = {**old, "name": "Versioned Vendor v2"}
    sandbox.admin.set_faults(
        [{"kind": "status", "route": "/suppliers", "method": "POST", "status": 422, "times": 1}]
    )
    first = run_target(manual, singer("suppliers", [old]), capsys)
    assert first.outcome_of(f"{PREFIX}-V") == "failed"  # refused: dead-lettered
    sandbox.admin.clear_faults()
    second = run_target(manual, singer("suppliers", [new]), capsys)  # a later run: newer
    assert second.outcome_of(f"{PREFIX}-V") == "created"
    replay = run_target(scheduled, (first.report_dir / "dead-letter.jsonl").read_text(), capsys)
    assert replay.outcome_of(f"{PREFIX}-V") == "skipped"
    (row,) = [
        r for r in api_records(sandbox, "/suppliers") if r.get("externalId") == old["externalId"]
    ]
    assert row["name"] == "Versioned Vendor v2"


def test_record_versions_of_an_old_state_dir_are_adopted(sandbox, tmp_path, capsys):
    from target_precoro.settings import TargetSettings
    from target_precoro.versions import Origin, VersionStore

    config = _config(sandbox, tmp_path, "one")
    key = PrecoroSettings.from_config(config).ledger_key
    legacy_path = TargetSettings.from_config(config).account_dir(key) / "versions.sqlite3"
    legacy = VersionStore(legacy_path)
    legacy.written("suppliers", f"{PREFIX}-0", Origin(2_000_000_000.0, 7, "a-later-run"))
    legacy.close()
    record = {**_records()[0]}
    message = {
        "type": "RECORD",
        "stream": "suppliers",
        "record": record,
        "origin": {"run": "an-older-run", "started": 1_000_000_000.0, "line": 3},
    }
    text = singer("suppliers", []) + json.dumps(message) + "\n"
    result = run_target(config, text, capsys)
    assert result.outcome_of(f"{PREFIX}-0") == "skipped"  # the adopted newer version wins
    assert _rows(sandbox) == {}
    assert not legacy_path.exists()
    assert legacy_path.with_name("versions.sqlite3.adopted").exists()
