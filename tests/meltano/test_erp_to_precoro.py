"""`meltano run tap-erp target-precoro`: the ERP's vendor master into Precoro, converging."""

from __future__ import annotations

from meltano_project import Project

WRITES = ("POST", "PUT", "PATCH")


def writes(project: Project) -> int:
    """Write calls the sandbox received since its counters were last reset."""
    by_route = project.sandbox.admin.counters().by_route()
    return sum(n for route, n in by_route.items() if route.split()[0] in WRITES)


def test_reverse_run_creates_updates_links_then_writes_nothing(project: Project) -> None:
    admin = project.sandbox.admin
    suppliers_before = admin.stats()["suppliers"]

    project.run("run", "tap-erp", "target-precoro")
    (first,) = project.summaries()
    # demo/erp/suppliers.jsonl at the demo's seed: 3 new vendors, 3 changed ones already
    # linked (plus 1 identical), 4 that Precoro holds without externalId.
    assert first["totals"] == {"created": 3, "updated": 3, "unchanged": 1, "linked": 4}
    assert admin.stats()["suppliers"] == suppliers_before + 3
    assert admin.record("suppliers", 10000001)["externalId"] == "V-10001"  # by registration no.
    assert admin.record("suppliers", 10000003)["externalId"] == "V-10003"  # by name + country
    assert admin.record("suppliers", 10000007)["externalId"] == "V-10007"  # by unique code
    assert admin.record("suppliers", 10000002)["phone"] == "+33 1 44 55 66 77"
    assert writes(project) == 3 + 3 + 4

    admin.reset_counters()
    project.run("run", "tap-erp", "target-precoro")
    second = project.summaries()[-1]
    assert second["totals"] == {"unchanged": 11}
    assert writes(project) == 0
    assert admin.stats()["suppliers"] == suppliers_before + 3


def test_round_trip_brings_erp_ids_back_to_the_erp(project: Project) -> None:
    project.run("run", "tap-precoro", "target-erp")
    assert project.erp_rows("select externalid from precoro.suppliers where id = 10000001") == [
        (None,)
    ]
    project.run("run", "tap-erp", "target-precoro")
    project.run("run", "tap-precoro", "target-erp")

    rows = project.erp_rows(
        "select externalid from precoro.suppliers where externalid like 'V-%' order by 1"
    )
    ids = {r[0] for r in rows}
    assert {"V-10001", "V-10003", "V-10007", "V-10031", "V-20001", "V-20002", "V-20003"} <= ids
    assert project.erp_counts()["suppliers"] == project.sandbox.admin.stats()["suppliers"]
