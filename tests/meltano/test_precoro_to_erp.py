"""`meltano run tap-precoro target-erp`: Meltano keeps the bookmarks, runs resume."""

from __future__ import annotations

import signal
import time

import pytest
from meltano_project import Project, kill_group

INCREMENTAL = ("suppliers", "items", "purchaseorders", "invoices", "receipts", "expenses")


def test_second_run_reads_only_what_changed(project: Project) -> None:
    admin = project.sandbox.admin
    project.run("run", "tap-precoro", "target-erp")

    # The ERP holds exactly what Precoro holds, table for table.
    assert project.erp_counts() == admin.stats()
    first_calls = admin.counters().total
    first = project.state()["singer_state"]["bookmarks"]
    assert set(INCREMENTAL) <= set(first)

    admin.advance_clock(3600)
    changes = admin.activity(12, entities=["suppliers", "invoices"], seed=7)
    admin.reset_counters()
    project.run("run", "tap-precoro", "target-erp")

    counters = admin.counters()
    changed_invoices = {c["idn"] for c in changes if c["entity"] == "invoices"}
    # One list call per incremental stream, one detail per changed document, nothing else
    # (reference data is not due again for 24 hours).
    assert counters.get("GET", "/invoices/{idn}") == len(changed_invoices)
    assert counters.get("GET", "/purchaseorders/{idn}") == 0
    assert counters.get("GET", "/suppliers") == 1
    assert counters.total <= len(INCREMENTAL) + 1 + len(changed_invoices)
    assert counters.total < first_calls / 10

    # The changes arrived, nothing was doubled, and Meltano moved the bookmark on.
    assert project.erp_counts() == admin.stats()
    assert project.erp_distinct_ids("suppliers") == admin.stats()["suppliers"]
    for change in (c for c in changes if c["entity"] == "suppliers"):
        stored = admin.record("suppliers", change["id"])
        rows = project.erp_rows(
            f"select name, email, phone, enable from precoro.suppliers where id = {change['id']}"
        )
        assert rows == [(stored["name"], stored["email"], stored["phone"], stored["enable"])]
    second = project.state()["singer_state"]["bookmarks"]
    for stream in INCREMENTAL:
        assert second[stream]["replication_key_value"] > first[stream]["replication_key_value"]


@pytest.mark.parametrize(
    ("sig", "rerun_flags"),
    [
        # An orchestrator's stop: Meltano ends the job itself, the next run just starts.
        pytest.param(signal.SIGTERM, (), id="sigterm"),
        # A crash (kill -9 of everything): Meltano's job row still says "running" for up
        # to 5 minutes, so the re-run passes --force, as an operator would.
        pytest.param(signal.SIGKILL, ("--force",), id="sigkill"),
    ],
)
def test_killed_run_resumes_without_loss(
    project: Project, sig: signal.Signals, rerun_flags: tuple[str, ...]
) -> None:
    admin = project.sandbox.admin
    total_invoices = admin.stats()["invoices"]
    # Slow invoice details, and small target batches so state reaches Meltano often.
    admin.set_faults([{"kind": "delay", "route": "/invoices/*", "delay_seconds": 0.1}])
    project.env["TARGET_ERP_BATCH_SIZE_ROWS"] = "10"

    run = project.start("run", "tap-precoro", "target-erp", log=project.tmp / "killed.log")
    deadline = time.monotonic() + 120
    while admin.counters().get("GET", "/invoices/{idn}") < 30:
        assert run.poll() is None, (project.tmp / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the run never reached the invoices"
        time.sleep(0.05)
    time.sleep(0.3)  # let the records already fetched reach the target
    assert kill_group(run, sig) != 0

    # Meltano stored the state the target confirmed before the kill.
    saved = project.state()["singer_state"]["bookmarks"]
    assert {"suppliers", "items", "purchaseorders"} <= set(saved)

    admin.clear_faults()
    admin.reset_counters()
    project.run("run", *rerun_flags, "tap-precoro", "target-erp")

    # Nothing lost, nothing doubled.
    assert project.erp_counts() == admin.stats()
    for table in ("invoices", "purchaseorders", "suppliers"):
        assert project.erp_distinct_ids(table) == admin.stats()[table]
    # Resumed, not restarted: finished streams cost one list call, and the invoices
    # the target had confirmed were not fetched again.
    counters = admin.counters()
    assert counters.get("GET", "/purchaseorders/{idn}") == 0
    assert counters.get("GET", "/invoices/{idn}") < total_invoices
