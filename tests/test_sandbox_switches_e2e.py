"""The plugins do the same whichever reading of Precoro's unknowns the sandbox takes.

Every sandbox switch (docs/precoro-api.md, precoro-sandbox/README.md) defaults to the most
permissive plausible reading of something Precoro does not publish. Issue 13's promise is
that the plugins pass against both settings of every switch. Here one representative
target run (create, update, link by key, a lost-answer POST, a refused payment, a re-run
with nothing to do) and one representative tap sync (every stream, then an incremental
re-run) are played against a default sandbox and against one with every switch at its
other setting at once; what they leave in Precoro, what they emit, and the calls each
step costs (counted by the sandbox) must be equal.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from precoro_sandbox.options import SandboxOptions, Settings
from precoro_sandbox.server import SandboxServer
from precoro_sandbox.testing import START
from tap_precoro.testing import run_tap
from target_precoro.testing import api_records, make_config, run_target, singer

SCALE = 10
"""Suppliers per company: every stream spans more than one 10-row tap page."""

TAP_PAGE = 10

DEFAULT_SWITCHES: dict[str, Any] = {
    "modified_since": "lenient",
    "unknown_filters": "ignore",
    "unique_supplier_code": False,
    "fully_paid_error": "already_paid",
    "numeric_external_ids": False,
    "page_size": 20,
    "pagination": "has_next_page",
    "validation_status": 400,
    "patch_any_field": False,
    "tls": False,
}
"""Every switch at its default, given explicitly so PRECORO_SANDBOX_SETTINGS cannot move
the reference run."""

OTHER_SWITCHES: dict[str, Any] = {
    "modified_since": "strict",
    "unknown_filters": "reject",
    "unique_supplier_code": True,
    "fully_paid_error": "not_exceed",
    "numeric_external_ids": True,
    "page_size": 100,
    "pagination": "legacy",
    "validation_status": 422,
    "patch_any_field": True,
    "tls": True,
}
"""Every switch at its other setting, all at once."""

CHANGE_WHAT_PRECORO_SERVES = {"order", "timezone", "date_style"}
"""Switches whose other setting changes the served data itself (order of rows, dates in
another zone or without offset), so the output cannot be equal; their own tests cover
them (tap-precoro/tests/test_list_orders.py, test_start_dates.py, precoro-sandbox tests)."""

MULLER = 10000001
"""A generated supplier without externalId that the ERP's registration number links."""

LOST_ANSWER_POST = 2
"""The POST (1-based, on /suppliers) that Precoro applies while its answer is lost."""


def test_every_runtime_switch_is_played_here_or_named_as_changing_the_data():
    """A new switch must join this test (or say why its output differs)."""
    switches = {f.name for f in dataclasses.fields(Settings)}
    assert switches - CHANGE_WHAT_PRECORO_SERVES <= set(OTHER_SWITCHES)
    assert set(OTHER_SWITCHES) == set(DEFAULT_SWITCHES)
    assert all(OTHER_SWITCHES[k] != DEFAULT_SWITCHES[k] for k in OTHER_SWITCHES)


def _text_ids(value: Any) -> Any:
    """A copy with every `externalId` as text: the schema takes text or a number, and
    `numeric_external_ids` serves all-digit ones as numbers."""
    if isinstance(value, dict):
        return {
            k: (str(v) if k == "externalId" and isinstance(v, int) else _text_ids(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_text_ids(v) for v in value]
    return value


WALL_CLOCK_KEYS = {"refreshed_at", "swept_at"}
"""STATE values the tap takes from its own clock (when it last read reference data or
swept for undelivered ids): the two runs happen seconds apart."""


def _without_wall_clock(state: Any) -> Any:
    """A STATE without the tap's wall-clock times; every other value comes from Precoro."""
    if isinstance(state, dict):
        return {k: _without_wall_clock(v) for k, v in state.items() if k not in WALL_CLOCK_KEYS}
    if isinstance(state, list):
        return [_without_wall_clock(v) for v in state]
    return state


def _costs(sb: SandboxServer) -> dict[str, Any]:
    """Calls per `METHOD /route`, and how many were answered with an error."""
    counters = sb.admin.counters()
    errors = sum(n for _, _, status, n in counters.rows if status >= 400 or status == 0)
    return {"calls": counters.by_route(), "errors": errors}


def _unlinked_supplier(sb: SandboxServer, after: int) -> dict[str, Any]:
    """The first generated supplier after id `after` that has no externalId yet."""
    for supplier_id in range(after + 1, after + SCALE):
        record = sb.admin.record("suppliers", supplier_id)
        if record["externalId"] is None and record["enable"]:
            return record
    raise AssertionError("no unlinked supplier in the generated data")


def _target_steps(sb: SandboxServer, tmp_path: Path, coded: dict[str, Any]) -> dict[str, Any]:
    """Create, link, lost answer and a refused payment; an update; a run with nothing to do."""
    muller = sb.admin.record("suppliers", MULLER)
    suppliers = [
        {"externalId": "10041", "name": "Numeric Vendor 41", "country": "France"},
        {"externalId": "10042", "name": "Numeric Vendor 42", "country": "France"},
        {"externalId": "ERP-A", "name": "Text Vendor A", "country": "Spain",
         "uniqueCode": "ERP-A-CODE"},
        {"externalId": "ERP-MUL", "name": muller["name"], "country": "Germany",
         "businessRegistrationNumber": muller["businessRegistrationNumber"]},
        {"externalId": "ERP-UC", "name": "Renamed By The ERP", "country": "Austria",
         "uniqueCode": coded["uniqueCode"]},
    ]  # fmt: skip
    items = [{"externalId": "IT-1", "name": "Widget", "price": 9.5, "supplier": "10041"}]
    invoices = api_records(sb, "/invoices")
    open_invoice = next(
        i for i in invoices if i["status"] == 2 and float(i["sumPaid"] or 0) < float(i["sum"]) - 1
    )
    paid_invoice = next(i for i in invoices if i["status"] == 5)
    payments = [
        {"externalId": "20001", "invoice": open_invoice["id"], "sumPaid": 1.0,
         "payDate": "2026-11-20T10:00:00Z"},
        {"externalId": "REFUSED-PAY", "invoice": paid_invoice["id"], "sumPaid": 1.0,
         "payDate": "2026-11-20T10:00:00Z"},
    ]  # fmt: skip
    config = make_config(sb, tmp_path / "target", max_failures=1)

    def run(step: str) -> dict[str, Any]:
        sb.admin.reset_counters()
        text = singer("suppliers", suppliers) + singer("items", items)
        result = run_target(config, text + singer("payments", payments))
        assert result.exit_code == 0, step
        outcomes = {o["external_id"]: o["outcome"] for o in result.outcomes}
        return {"outcomes": outcomes, **_costs(sb)}

    sb.admin.set_faults(
        [{"kind": "apply_then_fail", "route": "/suppliers", "method": "POST", "status": 500,
          "schedule": [LOST_ANSWER_POST]}]
    )  # fmt: skip
    first = run("first")
    assert sum(rule["fired"] for rule in sb.admin.faults()["rules"]) == 1
    sb.admin.clear_faults()
    suppliers[1]["city"] = "Lyon"
    second = run("update")
    third = run("nothing to do")
    return {"first": first, "update": second, "nothing to do": third}


def _precoro_rows(sb: SandboxServer, coded: int) -> dict[str, Any]:
    """What the target left in Precoro: rows per externalId, and the linked records."""
    ours = ("10041", "10042", "ERP-", "IT-", "20001", "REFUSED-")
    rows: dict[str, Any] = {}
    for path in ("/suppliers", "/items", "/payments"):
        seen = Counter(str(r["externalId"]) for r in api_records(sb, path))
        rows[path] = {ext: n for ext, n in seen.items() if ext.startswith(ours)}
    rows["linked"] = {
        key: sb.admin.record("suppliers", key)["externalId"] for key in (MULLER, coded)
    }
    return rows


def _tap_runs(sb: SandboxServer, tmp_path: Path) -> dict[str, Any]:
    """A full sync of every stream, then an incremental run after a few changes."""
    config = {
        "auth_token": sb.token,
        "email": sb.email,
        "api_url": sb.url,
        "budget_ledger_path": str(tmp_path / "tap-ledger.sqlite3"),
        "max_requests_per_second": 1000,
        "duplicate_get_interval_seconds": 0,
        "page_size": TAP_PAGE,
    }
    sb.admin.reset_counters()
    full = run_tap(config)
    assert full.exit_code == 0
    full_costs = _costs(sb)
    sb.admin.advance_clock(600)
    for stream in ("suppliers", "items", "invoices", "purchaseorders"):
        key = "idn" if stream in ("invoices", "purchaseorders") else "id"
        sb.admin.touch(stream, [r[key] for r in full.records[stream][:3]])
    sb.admin.reset_counters()
    again = run_tap(config, state=full.state)
    assert again.exit_code == 0
    return {
        "full": {
            "records": _text_ids(dict(full.records)),
            "state": _without_wall_clock(full.state),
            **full_costs,
        },
        "incremental": {
            "records": _text_ids(dict(again.records)),
            "state": _without_wall_clock(again.state),
            **_costs(sb),
        },
        "numeric ids served": sorted(
            r["externalId"]
            for r in full.records["suppliers"]
            if isinstance(r.get("externalId"), int)
        ),
    }


def _play(sb: SandboxServer, tmp_path: Path) -> dict[str, Any]:
    """The whole scenario against one sandbox: what it did, cost and left behind."""
    coded = _unlinked_supplier(sb, MULLER)
    played: dict[str, Any] = {"target": _target_steps(sb, tmp_path, coded)}
    played["precoro"] = _precoro_rows(sb, coded["id"])
    played["tap"] = _tap_runs(sb, tmp_path)
    return played


def _sandbox(switches: dict[str, Any]) -> SandboxServer:
    """Same seed, size and frozen clock for both runs, so their data are identical."""
    options = SandboxOptions(
        scale=SCALE, limits="off", clock_start=START, clock_frozen=True, **switches
    )
    return SandboxServer(options)


@pytest.fixture(scope="module")
def played(tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scenario against a default sandbox and against one with every switch flipped
    (played once for the module's tests)."""
    with _sandbox(DEFAULT_SWITCHES) as sb:
        default = _play(sb, tmp_path_factory.mktemp("default"))
    with _sandbox(OTHER_SWITCHES) as sb, pytest.MonkeyPatch.context() as env:
        assert sb.url.startswith("https://")
        assert sb.ca_path is not None
        env.setenv("REQUESTS_CA_BUNDLE", sb.ca_path)  # the plugins trust its CA
        other = _play(sb, tmp_path_factory.mktemp("other"))
    return default, other


def test_target_writes_and_costs_the_same_under_every_switch(played):
    default, other = played
    first = default["target"]["first"]
    assert first["outcomes"] == {
        "10041": "created",
        "10042": "created",
        "ERP-A": "created",
        "ERP-MUL": "linked",
        "ERP-UC": "linked",
        "IT-1": "created",
        "20001": "created",
        "REFUSED-PAY": "failed",
    }
    assert first["calls"]["POST /suppliers"] == 3  # the lost answer was looked up, not re-sent
    assert default["target"]["update"]["outcomes"]["10042"] == "updated"
    nothing = default["target"]["nothing to do"]
    assert set(nothing["outcomes"].values()) - {"failed"} == {"unchanged"}
    assert not any(route.split()[0] in ("PUT", "PATCH") for route in nothing["calls"])
    assert other["target"] == default["target"]


def test_precoro_holds_the_same_rows_under_every_switch(played):
    default, other = played
    assert default["precoro"]["/suppliers"] == {"10041": 1, "10042": 1, "ERP-A": 1,
                                                "ERP-MUL": 1, "ERP-UC": 1}  # fmt: skip
    assert default["precoro"]["/items"] == {"IT-1": 1}
    assert default["precoro"]["/payments"] == {"20001": 1}
    assert other["precoro"] == default["precoro"]


def test_tap_emits_and_costs_the_same_under_every_switch(played):
    default, other = played
    assert other["tap"]["numeric ids served"] == [10041, 10042]  # the switch really served them
    assert default["tap"]["numeric ids served"] == []
    for run in ("full", "incremental"):
        assert default["tap"][run]["errors"] == 0, run
        assert other["tap"][run] == default["tap"][run], run
    assert len(default["tap"]["incremental"]["records"]["suppliers"]) == 3
