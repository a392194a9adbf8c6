"""Two workers of one Meltano project on PostgreSQL: Meltano's system database (so its
state) and the budget ledger live on one server, and a run on either working copy
resumes where the other stopped, as under an orchestrator whose tasks land on
different machines."""

from __future__ import annotations

import time

import psycopg
from meltano_project import FORWARD_STATE_ID, Project, working_copy
from pg_server import Postgres, temporary_server

INCREMENTAL = ("suppliers", "items", "purchaseorders", "invoices", "receipts", "expenses")


def meltano_database(postgres: Postgres) -> tuple[str, str]:
    """A fresh database: its URL for Meltano (SQLAlchemy's psycopg 3 driver) and as is."""
    url = postgres.create_database()
    return url.replace("postgresql://", "postgresql+psycopg://", 1), url


def worker(project: Project, name: str, system_db: str, ledger: str) -> Project:
    """One machine: a working copy of its own, its own ERP file, folders and HOME; only
    the PostgreSQL URLs are shared."""
    folder = project.tmp / name
    copy = Project(sandbox=project.sandbox, tmp=folder, root=working_copy(folder / "project"))
    copy.env.update(
        HOME=str(folder / "home"),
        MELTANO_DATABASE_URI=system_db,
        TAP_PRECORO_STATE_BACKEND_URL=ledger,
        TARGET_PRECORO_STATE_BACKEND_URL=ledger,
    )
    return copy


def test_worker_b_resumes_the_state_worker_a_left_in_postgres(
    project: Project, postgres: Postgres
) -> None:
    admin = project.sandbox.admin
    system_db, _ = meltano_database(postgres)
    _, ledger = meltano_database(postgres)
    a = worker(project, "a", system_db, ledger)
    b = worker(project, "b", system_db, ledger)

    a.run("run", "tap-precoro", "target-erp")
    assert a.erp_counts() == admin.stats()
    first_calls = admin.counters().total
    # B's copy sees A's bookmarks before it ever ran: Meltano's state is in PostgreSQL,
    # not in a meltano.db of either copy.
    state_a = b.state()["singer_state"]["bookmarks"]
    assert state_a == a.state()["singer_state"]["bookmarks"]
    assert set(INCREMENTAL) <= set(state_a)
    for copy in (a, b):
        assert not (copy.root / ".meltano" / "meltano.db").exists()
    with psycopg.connect(system_db.replace("+psycopg", "")) as conn:
        (state_ids,) = zip(*conn.execute("SELECT state_id FROM state").fetchall(), strict=True)
    assert state_ids == (FORWARD_STATE_ID,)

    admin.advance_clock(3600)
    changes = admin.activity(12, entities=["suppliers", "invoices"], seed=7)
    admin.reset_counters()
    b.run("run", "tap-precoro", "target-erp")

    # B read only what changed since A's run: one list call per incremental stream, one
    # detail per changed invoice, no reference data (A read it under 24 hours ago).
    counters = admin.counters()
    changed = {
        entity: {c["id"] for c in changes if c["entity"] == entity}
        for entity in ("suppliers", "invoices")
    }
    assert counters.get("GET", "/invoices/{idn}") == len(changed["invoices"])
    assert counters.get("GET", "/purchaseorders/{idn}") == 0
    assert counters.get("GET", "/suppliers") == 1
    assert counters.total <= len(INCREMENTAL) + 1 + len(changed["invoices"])
    assert counters.total < first_calls / 10
    # B's own ERP (a file on its machine) holds exactly the changed records.
    loaded = {table: n for table, n in b.erp_counts().items() if n}
    assert all(changed.values())
    assert set(loaded) == set(changed)
    for entity, ids in changed.items():
        assert {row[0] for row in b.erp_rows(f"select id from precoro.{entity}")} == ids
    # Meltano moved the shared bookmark on, and both runs spent one ledger.
    state_b = a.state()["singer_state"]["bookmarks"]
    for stream in INCREMENTAL:
        assert state_b[stream]["replication_key_value"] > state_a[stream]["replication_key_value"]
    with psycopg.connect(ledger) as conn:
        calls = conn.execute("SELECT count(*) FROM precoro_ledger_calls").fetchall()
    assert calls == [(first_calls + counters.total,)]


def test_a_ledger_outage_fails_the_meltano_run_with_its_state_saved_and_the_retry_resumes(
    project: Project,
) -> None:
    admin = project.sandbox.admin
    total_invoices = admin.stats()["invoices"]
    # The 30th invoice detail is held in the sandbox while the ledger's server is killed:
    # it is answered, then the tap's next admission finds no ledger.
    hold = {"kind": "delay", "route": "/invoices/*", "delay_seconds": 3.0, "schedule": [30]}
    admin.set_faults([hold])
    project.env["TARGET_ERP_BATCH_SIZE_ROWS"] = "10"  # state reaches Meltano often
    with temporary_server() as server:
        ledger = server.create_database()
        project.env["TAP_PRECORO_STATE_BACKEND_URL"] = ledger
        run = project.start("run", "tap-precoro", "target-erp", log=project.tmp / "outage.log")
        deadline = time.monotonic() + 120
        while admin.faults()["rules"][0]["fired"] < 1:
            assert run.poll() is None, (project.tmp / "outage.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never reached invoice 30"
            time.sleep(0.01)
        server.kill()
        # Non-zero, so an orchestrator retries: the tap exits 75 (EX_TEMPFAIL) after its
        # STATE, and Meltano reports any plugin's failure as 1.
        assert run.wait(timeout=120) == 1, (project.tmp / "outage.log").read_text()[-3000:]
        calls = admin.counters()
        assert calls.get("GET", "/invoices/{idn}") == 30  # no call after the outage

        # Meltano kept what the target confirmed: the streams done before the outage.
        saved = project.state()["singer_state"]["bookmarks"]
        assert {"suppliers", "items", "purchaseorders"} <= set(saved)

        server.start()
        # Every call made had its ledger entry, committed before the call.
        with psycopg.connect(ledger) as conn:
            recorded = conn.execute("SELECT count(*) FROM precoro_ledger_calls").fetchall()
        assert recorded == [(calls.total,)]
        admin.clear_faults()
        admin.reset_counters()
        project.run("run", "tap-precoro", "target-erp")  # the retry: no --force needed

    # Nothing lost, nothing doubled; resumed, not restarted.
    assert project.erp_counts() == admin.stats()
    for table in ("invoices", "purchaseorders", "suppliers"):
        assert project.erp_distinct_ids(table) == admin.stats()[table]
    retry = admin.counters()
    assert retry.get("GET", "/purchaseorders/{idn}") == 0
    assert retry.get("GET", "/invoices/{idn}") < total_invoices


def test_a_second_worker_cannot_start_the_job_the_first_is_running(
    project: Project, postgres: Postgres
) -> None:
    admin = project.sandbox.admin
    system_db, _ = meltano_database(postgres)
    _, ledger = meltano_database(postgres)
    a = worker(project, "a", system_db, ledger)
    b = worker(project, "b", system_db, ledger)
    # A's first call is held in the sandbox: A's run is surely under way when B starts.
    admin.set_faults([{"kind": "delay", "route": "/*", "delay_seconds": 5.0, "schedule": [1]}])
    run = a.start("run", "tap-precoro", "target-erp", log=a.tmp / "run.log")
    deadline = time.monotonic() + 120
    while admin.faults()["rules"][0]["fired"] < 1:
        assert run.poll() is None, (a.tmp / "run.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "worker A never made its first call"
        time.sleep(0.01)

    # Meltano finds A's run in the shared system database and refuses B's before any
    # plugin starts (no --force): B's ERP is never created.
    refused = b.run("run", "tap-precoro", "target-erp", check=False)
    assert refused.returncode == 1
    assert not b.erp_path.exists()
    assert run.wait(timeout=120) == 0, (a.tmp / "run.log").read_text()[-3000:]
    assert a.erp_counts() == admin.stats()
