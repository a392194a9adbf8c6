"""The target's journal, record versions and three-way bases on PostgreSQL.

Two "machines" share only the PostgreSQL database (`state_backend_url`): each has its
own HOME, `state_dir`, report folder and `budget_ledger_path` folder (where the SQLite
journal, versions and bases would live). What one machine left must still bind the
other: a POST whose answer was lost, a newer version written, the base of a field.
Runs are in-process (`run_target`); the sandbox's clock is frozen and moved by the
tests, so the settle period passes without sleeping.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from precoro_client.forms import encode_record
from precoro_client.registry import get
from precoro_sandbox.testing import START
from target_precoro.settings import WRITE_SETTLE_SECONDS
from target_precoro.testing import (
    RunResult,
    api_records,
    make_config,
    rows_per_external_id,
    run_target,
    singer,
    suppliers,
)

PREFIX = "PGS"
LATE = 63
"""Sandbox seconds after which the lost POST is applied (past the client's timeout)."""


@pytest.fixture
def frozen(sandbox_factory: Any) -> Any:
    return sandbox_factory(limits="off", clock_start=START, clock_frozen=True)


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TARGET_PRECORO_"):
            monkeypatch.delenv(name)


class Machine:
    """One worker: a HOME, a state folder and a ledger folder of its own; Postgres shared."""

    def __init__(self, sb: Any, root: Path, name: str, pg_url: str) -> None:
        self.pg_url = pg_url
        self.home = root / name / "home"
        self.home.mkdir(parents=True)
        self.config = make_config(
            sb,
            root / name,
            budget_ledger_path=str(self.home / "ledger" / "ledger.sqlite3"),
            state_backend_url=pg_url,
            match={"suppliers": []},
        )

    def run(
        self, text: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> RunResult:
        with monkeypatch.context() as env:
            env.setenv("HOME", str(self.home))
            return run_target(self.config, text, capsys)

    def local_state_files(self) -> list[str]:
        """SQLite files of the account state beside this machine's ledger path."""
        folder = self.home / "ledger"
        names = ("journal.sqlite3", "versions.sqlite3", "bases.sqlite3")
        return sorted(p.name for p in folder.glob("write-*") if p.name.endswith(names))


@pytest.fixture
def machines(tmp_path: Path, pg_url: str) -> Any:
    def make(sb: Any) -> tuple[Machine, Machine]:
        return Machine(sb, tmp_path, "a", pg_url), Machine(sb, tmp_path, "b", pg_url)

    return make


def _posts(sb: Any) -> int:
    return int(sb.admin.counters().get("POST"))


def test_a_post_whose_answer_was_lost_on_machine_a_is_not_sent_again_by_machine_b(
    frozen, machines, capsys, monkeypatch
):
    a, b = machines(frozen)
    records = suppliers(PREFIX, "Shared State", 3)
    text = singer("suppliers", records, {"done": True})
    # A's first POST: the connection drops (a timeout to the client) and the sandbox
    # applies it LATE seconds later, as a Precoro still busy after the client gave up.
    frozen.admin.set_faults(
        [{"kind": "apply_later", "route": "/suppliers", "method": "POST", "times": 1,
          "delay_seconds": LATE}]
    )  # fmt: skip
    first = a.run(text, capsys, monkeypatch)
    lost = first.by_id()[f"{PREFIX}-0"]
    assert (lost["outcome"], lost["final"]) == ("unresolved", False)
    assert first.exit_code == 0
    assert _posts(frozen) == 3
    assert rows_per_external_id(frozen, PREFIX) == {f"{PREFIX}-1": 1, f"{PREFIX}-2": 1}

    # Machine B, the same input: A's open POST is in the shared journal, so B holds
    # the record back (unresolved, STATE withheld) instead of POSTing it again.
    second = b.run(text, capsys, monkeypatch)
    held = second.by_id()[f"{PREFIX}-0"]
    assert (held["outcome"], held["final"]) == ("unresolved", False), held
    assert second.states == []
    assert _posts(frozen) == 3

    # Precoro applies A's POST; B's next run finds it by look-up and links it.
    frozen.admin.advance_clock(LATE + 1)
    third = b.run(text, capsys, monkeypatch)
    assert third.outcome_of(f"{PREFIX}-0") == "created"
    assert third.states == [{"done": True}]
    assert _posts(frozen) == 3
    assert rows_per_external_id(frozen, PREFIX) == {f"{PREFIX}-{i}": 1 for i in range(3)}
    # Nothing of the account's state was written on either machine's disk.
    assert a.local_state_files() == b.local_state_files() == []
    with psycopg.connect(a.pg_url) as conn:
        (open_entries,) = conn.execute(
            "SELECT count(*) FROM precoro_target_journal WHERE state IN ('intent', 'unknown')"
        ).fetchone() or (None,)
        dumped = [
            str(conn.execute(f"SELECT array_agg(t::text) FROM {table} t").fetchone())
            for table in ("precoro_target_journal", "precoro_target_versions",
                          "precoro_target_bases")
        ]  # fmt: skip
    assert open_entries == 0  # resolved by B's look-up
    assert frozen.token not in "".join(dumped)  # keyed by the account hash, never the token
    assert "PGS-0" in dumped[0]


def test_a_post_never_applied_is_sent_by_machine_b_only_after_the_settle_period(
    frozen, machines, capsys, monkeypatch
):
    a, b = machines(frozen)
    text = singer("suppliers", suppliers(PREFIX, "Never Applied", 1), {"done": True})
    frozen.admin.set_faults(
        [{"kind": "drop", "route": "/suppliers", "method": "POST", "times": 1}]
    )  # fmt: skip
    assert a.run(text, capsys, monkeypatch).by_id()[f"{PREFIX}-0"]["final"] is False
    early = b.run(text, capsys, monkeypatch)
    assert early.outcome_of(f"{PREFIX}-0") == "unresolved"
    assert _posts(frozen) == 1

    frozen.admin.advance_clock(WRITE_SETTLE_SECONDS + 2)
    late = b.run(text, capsys, monkeypatch)
    assert late.outcome_of(f"{PREFIX}-0") == "created"
    assert _posts(frozen) == 2  # the one re-send, after the settle period
    assert rows_per_external_id(frozen, PREFIX) == {f"{PREFIX}-0": 1}


def test_a_replay_on_machine_b_never_writes_an_older_version_over_machine_a(
    sandbox, machines, capsys, monkeypatch
):
    a, b = machines(sandbox)
    old = {"externalId": f"{PREFIX}-V", "name": "Versioned Vendor v1", "country": "France"}
    new = {**old, "name": "Versioned Vendor v2"}
    sandbox.admin.set_faults(
        [{"kind": "status", "route": "/suppliers", "method": "POST", "status": 422, "times": 1}]
    )
    refused = a.run(singer("suppliers", [old]), capsys, monkeypatch)
    assert refused.outcome_of(f"{PREFIX}-V") == "failed"  # dead-lettered with its origin
    sandbox.admin.clear_faults()
    assert (
        a.run(singer("suppliers", [new]), capsys, monkeypatch).outcome_of(f"{PREFIX}-V")
        == "created"
    )
    sandbox.admin.reset_counters()

    replay = b.run((refused.report_dir / "dead-letter.jsonl").read_text(), capsys, monkeypatch)
    assert replay.outcome_of(f"{PREFIX}-V") == "skipped"
    counters = sandbox.admin.counters()
    assert sum(counters.get(method=m) for m in ("POST", "PUT", "PATCH")) == 0
    (row,) = [
        r for r in api_records(sandbox, "/suppliers") if r.get("externalId") == old["externalId"]
    ]
    assert row["name"] == "Versioned Vendor v2"


def test_a_base_written_on_machine_a_keeps_a_person_edit_when_machine_b_runs(
    sandbox, machines, capsys, monkeypatch
):
    a, b = machines(sandbox)
    erp = [
        {**r, "email": f"orders{i}@vendor.example"}
        for i, r in enumerate(suppliers(PREFIX, "Base", 2))
    ]
    assert {
        o["outcome"] for o in a.run(singer("suppliers", erp), capsys, monkeypatch).outcomes
    } == {"created"}
    # A buyer fixes an email in Precoro (not through the target).
    (row,) = api_records(sandbox, "/suppliers", **{"external_id[]": f"{PREFIX}-0"})
    response = requests.put(
        f"{sandbox.url}/suppliers/{row['id']}",
        data=encode_record(get("suppliers"), {"email": "buyer.fixed@vendor.example"}),
        headers=sandbox.headers,
        timeout=30,
    )
    response.raise_for_status()
    sandbox.admin.reset_counters()

    # Machine B runs the ERP export: A's base says the ERP did not change the email,
    # Precoro did, so the buyer's edit is kept (no write), not reverted.
    result = b.run(singer("suppliers", erp), capsys, monkeypatch)
    line = result.by_id()[f"{PREFIX}-0"]
    assert line["outcome"] == "kept_precoro", line
    assert line["kept_precoro"]["email"]["base"] == "orders0@vendor.example"
    counters = sandbox.admin.counters()
    assert sum(counters.get(method=m) for m in ("POST", "PUT", "PATCH")) == 0
    (after,) = api_records(sandbox, "/suppliers", **{"external_id[]": f"{PREFIX}-0"})
    assert after["email"] == "buyer.fixed@vendor.example"


def test_round_trips_per_record_on_postgres(sandbox, machines, capsys, monkeypatch):
    """The account state's statements per POSTed record, by table (ledger not counted)."""
    from precoro_client.pg_backend import PostgresSession

    a, _ = machines(sandbox)
    sessions: list[PostgresSession] = []
    by_table: dict[str, int] = {}
    seconds = [0.0]
    original = PostgresSession.__init__

    def tracking(self: PostgresSession, settings: Any) -> None:
        original(self, settings)
        sessions.append(self)

    def counted(name: str) -> Any:
        method = getattr(PostgresSession, name)

        def wrapper(self: PostgresSession, query: str, *args: Any) -> Any:
            table = next(t for t in ("journal", "versions", "bases") if t in query)
            by_table[table] = by_table.get(table, 0) + 1
            started = time.perf_counter()
            try:
                return method(self, query, *args)
            finally:
                seconds[0] += time.perf_counter() - started

        return wrapper

    monkeypatch.setattr(PostgresSession, "__init__", tracking)
    for name in ("rows", "run", "run_many"):
        monkeypatch.setattr(PostgresSession, name, counted(name))
    n = 20
    created = a.run(singer("suppliers", suppliers(PREFIX, "Counted", n)), capsys, monkeypatch)
    assert {o["outcome"] for o in created.outcomes} == {"created"}
    # Per POST: the intent (INSERT ... RETURNING) and its result (UPDATE); plus one
    # open-writes read for the batch and the startup prune.
    assert by_table["journal"] == 2 * n + 2
    # Per created record: its base is read (none yet) and stored.
    assert by_table["bases"] == 2 * n
    # The versions written: one pipelined upsert per batch, as SQLite's one transaction.
    assert by_table["versions"] == 1
    per_record_ms = round(seconds[0] * 1000 / n, 2)  # includes the first connect
    print(json.dumps({"records": n, "statements": by_table, "ms_per_record": per_record_ms}))


def test_the_account_state_stops_cleanly_when_the_database_goes_away(
    sandbox, tmp_path, own_postgres
):
    """Every store raises `LedgerUnavailable` (naming the setting, not the password) once
    the database is gone, and keeps raising: the target's stop-and-exit-75 path."""
    from precoro_client.errors import LedgerUnavailable
    from precoro_client.settings import PrecoroSettings
    from target_precoro.account_state import AccountState

    url = own_postgres.create_database()
    config = make_config(sandbox, tmp_path, state_backend_url=url)
    state = AccountState(PrecoroSettings.from_config(config))
    journal = state.journal("run-1")
    seq = journal.intent("suppliers", 0, f"{PREFIX}-X", "POST", "/suppliers")
    assert f"{PREFIX}-X" in journal.open_writes("suppliers", 0)
    own_postgres.kill()
    with pytest.raises(LedgerUnavailable) as failed:
        journal.done(seq, 1)
    assert "state_backend_url" in str(failed.value)
    with pytest.raises(LedgerUnavailable):  # never reconnects within the run
        journal.open_writes("suppliers", 0)
    own_postgres.start()
    with pytest.raises(LedgerUnavailable):
        journal.open_writes("suppliers", 0)
    journal.close()
    # The next run sees the intent still open: it looks the record up before writing.
    again = AccountState(PrecoroSettings.from_config(config)).journal("run-2")
    assert again.open_writes("suppliers", 0)[f"{PREFIX}-X"].method == "POST"
    again.close()
    # A refused connection names the setting and hides the password.
    config["state_backend_url"] = "postgresql://precoro:s3cret-pw@127.0.0.1:1/precoro"
    broken = AccountState(PrecoroSettings.from_config(config))
    with pytest.raises(LedgerUnavailable) as refused:
        broken.journal("run-3").open_writes("suppliers", 0)
    assert "state_backend_url" in str(refused.value)
    assert "s3cret-pw" not in str(refused.value)


def test_switching_a_machine_to_postgres_moves_its_open_writes_versions_and_bases(
    frozen, machines, capsys, monkeypatch
):
    a, b = machines(frozen)
    text = singer("suppliers", suppliers(PREFIX, "Switch", 2), {"done": True})
    frozen.admin.set_faults(
        [{"kind": "apply_later", "route": "/suppliers", "method": "POST", "times": 1,
          "delay_seconds": LATE}]
    )  # fmt: skip
    alone = {k: v for k, v in a.config.items() if k != "state_backend_url"}
    with monkeypatch.context() as env:
        env.setenv("HOME", str(a.home))
        first = run_target(alone, text, capsys)  # SQLite files beside A's ledger
    assert first.outcome_of(f"{PREFIX}-0") == "unresolved"
    assert first.outcome_of(f"{PREFIX}-1") == "created"
    assert a.local_state_files() == sorted(
        f"{p.name}" for p in (a.home / "ledger").glob("write-*.sqlite3")
    )
    assert len(a.local_state_files()) == 3

    # A now runs with state_backend_url: its files move into PostgreSQL...
    switched = a.run(text, capsys, monkeypatch)
    assert switched.outcome_of(f"{PREFIX}-0") == "unresolved"
    assert switched.outcome_of(f"{PREFIX}-1") == "unchanged"
    assert len(list((a.home / "ledger").glob("write-*.adopted"))) == 2  # versions, bases
    with psycopg.connect(a.pg_url) as conn:
        (bases,) = conn.execute("SELECT count(*) FROM precoro_target_bases").fetchone() or (0,)
        (moved,) = conn.execute(
            "SELECT count(*) FROM precoro_target_journal WHERE external_id = %s",
            (f"{PREFIX}-0",),
        ).fetchone() or (0,)
    assert bases == 1  # PGS-1's base, written by A's SQLite run
    assert moved == 1  # the open POST, moved from A's journal file
    # ...so B, which never saw them, holds the open POST back and keeps A's base.
    second = b.run(text, capsys, monkeypatch)
    assert second.outcome_of(f"{PREFIX}-0") == "unresolved"
    assert _posts(frozen) == 2
    frozen.admin.advance_clock(LATE + 1)
    third = b.run(text, capsys, monkeypatch)
    assert third.outcome_of(f"{PREFIX}-0") == "created"
    assert _posts(frozen) == 2
    assert rows_per_external_id(frozen, PREFIX) == {f"{PREFIX}-0": 1, f"{PREFIX}-1": 1}


def test_machine_a_killed_after_its_post_was_lost_does_not_make_machine_b_post_again(
    frozen, machines, capsys, monkeypatch
):
    """A real kill -9 of machine A's process: its journal entry is all that is left."""
    import os
    import signal
    import subprocess
    import sys

    a, b = machines(frozen)
    text = singer("suppliers", suppliers(PREFIX, "Killed", 2), {"done": True})
    # A's first POST is dropped and applied LATE s later; A's look-up of it (GET 2,
    # after the batch's look-up) is held in the sandbox while A is killed -9.
    frozen.admin.set_faults(
        [{"kind": "apply_later", "route": "/suppliers", "method": "POST", "times": 1,
          "delay_seconds": LATE},
         {"kind": "delay", "route": "/suppliers", "method": "GET", "delay_seconds": 2.0,
          "schedule": [2]}]
    )  # fmt: skip
    folder = a.home.parent
    (folder / "config.json").write_text(json.dumps(a.config))
    (folder / "input.singer").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PRECORO_")}
    env["HOME"] = str(a.home)
    target = Path(sys.executable).with_name("target-precoro")
    with (folder / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            [str(target), "--config", str(folder / "config.json"), "--input",
             str(folder / "input.singer")],
            stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while frozen.admin.faults()["rules"][1]["fired"] < 1:
        assert proc.poll() is None, (folder / "stderr.log").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert _posts(frozen) == 1
    assert rows_per_external_id(frozen, PREFIX) == {}  # A's POST is not applied yet

    second = b.run(text, capsys, monkeypatch)
    held = second.by_id()[f"{PREFIX}-0"]
    assert (held["outcome"], held["final"]) == ("unresolved", False), held
    assert second.outcome_of(f"{PREFIX}-1") == "created"  # never sent by A
    assert _posts(frozen) == 2
    frozen.admin.advance_clock(LATE + 1)
    third = b.run(text, capsys, monkeypatch)
    assert third.outcome_of(f"{PREFIX}-0") == "created"
    assert third.states == [{"done": True}]
    assert _posts(frozen) == 2
    assert rows_per_external_id(frozen, PREFIX) == {f"{PREFIX}-0": 1, f"{PREFIX}-1": 1}
