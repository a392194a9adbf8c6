"""Upsert by externalId against the sandbox: outcomes and the calls each one costs."""

from __future__ import annotations

import json

from target_precoro.settings import WRITE_SETTLE_SECONDS
from target_precoro.testing import api_records, make_config, run_target, singer


def _vendors(n: int, prefix: str = "ERP") -> list[dict]:
    return [
        {
            "externalId": f"{prefix}-{i}",
            "name": f"Brand New Vendor {prefix} {i}",
            "country": "Germany",
            "currencies": ["EUR"],
        }
        for i in range(n)
    ]


def _writes(sb) -> int:
    counters = sb.admin.counters()
    return sum(counters.get(method=m) for m in ("POST", "PUT", "PATCH"))


def test_new_changed_unchanged_cost_one_one_zero_calls(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    records = _vendors(4)
    sandbox.admin.reset_counters()
    first = run_target(config, singer("suppliers", records), capsys)
    assert [o["outcome"] for o in first.outcomes] == ["created"] * 4
    counters = sandbox.admin.counters()
    assert counters.get("POST", "/suppliers") == 4  # one call per new record
    assert counters.get("GET") == first.summary["calls"]["index_reads"] == 1  # one batched look-up
    created = api_records(sandbox, "/suppliers", **{"external_id[]": "ERP-0"})
    assert len(created) == 1
    assert created[0]["name"] == "Brand New Vendor ERP 0"

    records[1]["city"] = "Berlin"
    sandbox.admin.reset_counters()
    second = run_target(config, singer("suppliers", records), capsys)
    assert second.by_id()["ERP-1"]["outcome"] == "updated"
    assert second.by_id()["ERP-1"]["fields"] == ["city"]
    assert {second.outcome_of(x) for x in ("ERP-0", "ERP-2", "ERP-3")} == {"unchanged"}
    counters = sandbox.admin.counters()
    assert counters.get("PUT", "/suppliers/{id}") == 1  # one call for the changed record
    assert _writes(sandbox) == 1
    # The index is trusted for suppliers: one modifiedSince refresh, no look-ups.
    assert counters.get("GET") == second.summary["calls"]["index_reads"] == 1
    assert "modifiedSince" in sandbox.admin.requests()[0]["query"]

    sandbox.admin.reset_counters()
    third = run_target(config, singer("suppliers", records), capsys)
    assert {o["outcome"] for o in third.outcomes} == {"unchanged"}
    assert _writes(sandbox) == 0
    assert sandbox.admin.counters().get("GET") == third.summary["calls"]["index_reads"]


def test_dry_run_reports_the_plan_and_writes_nothing(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, dry_run=True, match={"suppliers": []})
    sandbox.admin.reset_counters()
    result = run_target(config, singer("suppliers", _vendors(3)), capsys)
    assert [o["outcome"] for o in result.outcomes] == ["created"] * 3
    assert all(o["dry_run"] for o in result.outcomes)
    assert _writes(sandbox) == 0
    assert sandbox.admin.counters().total == result.summary["calls"]["index_reads"]
    assert api_records(sandbox, "/suppliers", **{"external_id[]": "ERP-0"}) == []


def test_modes_skip_what_they_must_not_touch(sandbox, tmp_path, capsys):
    base = make_config(sandbox, tmp_path, match={"suppliers": []})
    run_target(base, singer("suppliers", _vendors(2)), capsys)
    changed = _vendors(2)
    changed[0]["city"] = "Hamburg"
    new = _vendors(1, prefix="NEW")
    sandbox.admin.reset_counters()
    upd = run_target({**base, "mode": "update_only"}, singer("suppliers", changed + new), capsys)
    assert upd.outcome_of("ERP-0") == "updated"
    assert upd.outcome_of("NEW-0") == "skipped"
    assert "update_only" in upd.by_id()["NEW-0"]["message"]
    assert sandbox.admin.counters().get("POST") == 0

    changed[1]["city"] = "Köln"
    sandbox.admin.reset_counters()
    ins = run_target({**base, "mode": "insert_only"}, singer("suppliers", changed + new), capsys)
    assert ins.outcome_of("ERP-1") == "skipped"
    assert ins.outcome_of("NEW-0") == "created"
    assert sandbox.admin.counters().get("PUT") == 0
    assert sandbox.admin.counters().get("POST") == 1


def test_list_merge_union_keeps_precoro_currencies(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    records = _vendors(2)
    records[0]["currencies"] = ["EUR", "USD"]
    records[1]["currencies"] = ["EUR", "USD"]
    run_target(config, singer("suppliers", records), capsys)
    records[0]["currencies"] = ["GBP"]
    records[1]["currencies"] = ["GBP"]
    run_target({**config, "list_merge": "union"}, singer("suppliers", records[:1]), capsys)
    run_target({**config, "list_merge": "replace"}, singer("suppliers", records[1:]), capsys)
    union = api_records(sandbox, "/suppliers", **{"external_id[]": "ERP-0"})[0]
    replace = api_records(sandbox, "/suppliers", **{"external_id[]": "ERP-1"})[0]
    assert sorted(union["currencies"]) == ["EUR", "GBP", "USD"]
    assert replace["currencies"] == ["GBP"]
    # Union already satisfied: nothing to send.
    sandbox.admin.reset_counters()
    again = run_target({**config, "list_merge": "union"}, singer("suppliers", records[:1]), capsys)
    assert again.outcome_of("ERP-0") == "unchanged"
    assert _writes(sandbox) == 0


def test_item_supplier_given_by_erp_vendor_id(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": [], "items": []})
    items = [
        {"externalId": "IT-1", "name": "Widget", "price": 9.5, "supplier": "ERP-0"},
        {"externalId": "IT-2", "name": "Gadget", "supplier": {"externalId": "ERP-1"}},
        {"externalId": "IT-3", "name": "Orphan", "supplier": "NO-SUCH-VENDOR"},
    ]
    # Items first in the input: the suppliers stream is still written before them.
    text = singer("items", items) + singer("suppliers", _vendors(2))
    result = run_target(config, text, capsys)
    assert result.outcome_of("IT-1") == "created"
    assert result.outcome_of("IT-2") == "created"
    assert result.outcome_of("IT-3") == "invalid"
    assert "NO-SUCH-VENDOR" in result.by_id()["IT-3"]["message"]
    vendor = api_records(sandbox, "/suppliers", **{"external_id[]": "ERP-0"})[0]
    item = api_records(sandbox, "/items", **{"external_id[]": "IT-1"})[0]
    assert item["supplier"]["id"] == vendor["id"]
    assert item["price"] == 9.5


def test_custom_field_options_by_field_name_or_id(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"itemcustomfieldoptions": []})
    fields = api_records(sandbox, "/itemcustomfields")
    gl = next(f for f in fields if f["name"] == "GL Account")
    records = [
        {"externalId": "GL-9000", "name": "Travel", "code": "9000", "customFieldId": "GL Account"},
        {"externalId": "GL-9001", "name": "Meals", "code": "9001", "customFieldId": gl["id"]},
        {"externalId": "GL-9002", "name": "Nowhere", "customFieldId": "No Such Field"},
    ]
    result = run_target(config, singer("itemcustomfieldoptions", records), capsys)
    assert result.outcome_of("GL-9000") == "created"
    assert result.outcome_of("GL-9001") == "created"
    assert result.outcome_of("GL-9002") == "invalid"
    options = api_records(sandbox, f"/itemcustomfields/{gl['id']}/options")
    assert {"GL-9000", "GL-9001"} <= {o["externalId"] for o in options}
    # Options are not filterable by date, so every run looks them up (not trusted).
    sandbox.admin.reset_counters()
    again = run_target(config, singer("itemcustomfieldoptions", records[:2]), capsys)
    assert {o["outcome"] for o in again.outcomes} == {"unchanged"}
    assert _writes(sandbox) == 0


def test_bad_input_is_named_and_kept(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    good = _vendors(1)
    bad = [
        {"name": "No id"},
        {"externalId": "T-1", "name": 42},
        {"externalId": "T-2", "name": "X", "colour": "blue"},
        {"externalId": "T-3", "country": "Germany"},
    ]
    text = singer("suppliers", good + bad)
    lines = text.splitlines()
    lines.insert(2, '{"type": "RECORD", "stream": "suppliers", "record": {broken')
    result = run_target(config, "\n".join(lines) + "\n", capsys)
    assert result.exit_code == 1  # 5 failures > max_failures 0, after the report
    by_id = result.by_id()
    assert by_id["ERP-0"]["outcome"] == "created"
    assert "externalId" in by_id[None]["message"]
    assert "T-1" in by_id["T-1"]["message"]
    assert "'name'" in by_id["T-1"]["message"]
    assert "'colour'" in by_id["T-2"]["message"]
    assert "'name'" in by_id["T-3"]["message"]
    assert "required" in by_id["T-3"]["message"]
    rejected = (result.report_dir / "rejected-lines.jsonl").read_text().splitlines()
    assert json.loads(rejected[0])["line"] == 3
    dead = result.dead_letter()
    assert dead[0]["type"] == "SCHEMA"
    assert {d["record"].get("externalId") for d in dead[1:]} == {None, "T-1", "T-2", "T-3"}
    assert result.summary["totals"]["invalid"] == 5

    lenient = {**config, "unknown_fields": "ignore", "max_failures": 10}
    again = run_target(lenient, singer("suppliers", bad[2:3]), capsys)
    assert again.exit_code == 0
    assert again.outcome_of("T-2") == "created"


def test_dead_letter_replays_after_fixing(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, max_failures=5)
    first = run_target(config, singer("suppliers", [{"externalId": "FIX-1", "name": 7}]), capsys)
    assert first.outcome_of("FIX-1") == "invalid"
    dead = (first.report_dir / "dead-letter.jsonl").read_text()
    text = dead.replace('"name": 7', '"name": "Fixed"')
    second = run_target(config, text, capsys)
    assert second.outcome_of("FIX-1") == "created"
    assert api_records(sandbox, "/suppliers", **{"external_id[]": "FIX-1"})[0]["name"] == "Fixed"


def test_precoro_4xx_fails_one_record_only_and_logs_it(sandbox, tmp_path, capsys):
    config = make_config(
        sandbox, tmp_path, match={"items": []}, write_error_log=True, max_failures=1
    )
    items = [
        {"externalId": "I-1", "name": "Good"},
        {"externalId": "I-2", "name": "Also good"},
    ]
    run_target(config, singer("items", items), capsys)
    items[0]["supplier"] = 999999999  # a Precoro id that does not exist
    items[1]["name"] = "Renamed"
    sandbox.admin.reset_counters()
    result = run_target(config, singer("items", items), capsys)
    failed = result.by_id()["I-1"]
    assert failed["outcome"] == "failed"
    # Precoro's validation status (400 or 422) is unknown: the sandbox's switch decides.
    assert failed["status"] == sandbox.admin.settings()["validation_status"]
    assert "supplier" in failed["message"]
    assert result.outcome_of("I-2") == "updated"
    assert result.exit_code == 0  # 1 failure is within max_failures 1
    # The failure was written back onto the Precoro item (write_error_log).
    assert sandbox.admin.counters().get("PATCH", "/items/{id}") == 1


def test_payments_create_once_and_report_precoro_errors(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, max_failures=5)
    invoices = api_records(sandbox, "/invoices", **{"status[]": "2"})
    open_invoice = next(i for i in invoices if float(i["sumPaid"] or 0) < float(i["sum"]) - 1)
    payments = [
        {"externalId": "PAY-1", "invoice": open_invoice["id"], "sumPaid": 1.0,
         "payDate": "2024-06-01T10:00:00Z"},
        {"externalId": "PAY-2", "invoice": open_invoice["id"], "sumPaid": 10**9,
         "payDate": "2024-06-01T10:00:00Z"},
    ]  # fmt: skip
    result = run_target(config, singer("payments", payments), capsys)
    assert result.outcome_of("PAY-1") == "created"
    assert result.by_id()["PAY-2"]["outcome"] == "failed"
    assert "sumPaid" in result.by_id()["PAY-2"]["message"]
    sandbox.admin.reset_counters()
    again = run_target(config, singer("payments", payments[:1]), capsys)
    assert again.outcome_of("PAY-1") == "unchanged"
    assert _writes(sandbox) == 0


def test_state_is_emitted_only_when_every_record_is_final(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, max_failures=100)
    ok = run_target(config, singer("suppliers", _vendors(2), {"pos": 1}), capsys)
    assert ok.states == [{"pos": 1}]
    sandbox.admin.set_faults([{"kind": "status", "status": 503, "method": "PUT"}])
    changed = _vendors(2)
    changed[0]["city"] = "Bonn"
    bad = run_target(config, singer("suppliers", changed, {"pos": 2}), capsys)
    assert bad.by_id()["ERP-0"]["outcome"] == "failed"
    assert bad.by_id()["ERP-0"]["final"] is False
    assert bad.states == []  # a re-run must resend ERP-0
    sandbox.admin.clear_faults()
    # The failed PUT may still land (a 502/504 proxy answer, a slow backend), so the record
    # waits for write_settle_seconds before it is written again (then over what landed).
    early = run_target(config, singer("suppliers", changed, {"pos": 2}), capsys)
    assert early.outcome_of("ERP-0") == "unresolved"
    assert early.states == []
    sandbox.admin.advance_clock(WRITE_SETTLE_SECONDS + 5)
    fixed = run_target(config, singer("suppliers", changed, {"pos": 2}), capsys)
    assert fixed.outcome_of("ERP-0") == "updated"
    assert fixed.states == [{"pos": 2}]


def test_refused_credentials_stop_at_once(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, auth_token="wrong-token")
    result = run_target(config, singer("suppliers", _vendors(3), {"pos": 1}), capsys)
    assert result.exit_code == 1
    assert sandbox.admin.counters().get(status=401) == 1  # stopped after the first refusal
    assert all(o["outcome"] == "failed" for o in result.outcomes)
    assert "not attempted" in result.outcomes[0]["message"]
    assert "auth_token" in result.summary["halted"]
    assert "wrong-token" not in (result.report_dir / "report.jsonl").read_text()
    assert result.states == []


def test_exhausted_budget_stops_cleanly_and_rerun_finishes(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, max_requests_per_day=3)
    result = run_target(config, singer("suppliers", _vendors(5), {"pos": 1}), capsys)
    outcomes = [o["outcome"] for o in result.outcomes]
    assert result.exit_code == 0  # a clean stop, not a failure
    assert outcomes.count("created") == 2  # 1 look-up + 2 POSTs = the 3 calls allowed
    assert result.summary["halted"]
    assert result.summary["unfinished_records"] == 3
    assert result.summary["budget_left_today"] == 0
    assert result.states == []
    assert len(result.dead_letter()) == 1 + 3
    rerun = run_target(
        {**config, "max_requests_per_day": 3000},
        singer("suppliers", _vendors(5), {"pos": 1}),
        capsys,
    )
    assert sorted(o["outcome"] for o in rerun.outcomes) == ["created"] * 3 + ["unchanged"] * 2
    assert rerun.states == [{"pos": 1}]


def test_unknown_stream_names_the_supported_ones(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    text = singer("suppliers", _vendors(2)) + singer("vendors", [{"externalId": "X"}], {"p": 1})
    result = run_target(config, text, capsys)
    assert result.exit_code == 1
    assert "vendors" in result.summary["halted"]
    assert "itemcustomfieldoptions" in result.summary["halted"]
    # The records read before the unknown stream are reported and dead-lettered, unsent.
    assert {o["external_id"]: o["final"] for o in result.outcomes} == {
        "ERP-0": False,
        "ERP-1": False,
    }
    assert [m["record"]["externalId"] for m in result.dead_letter()[1:]] == ["ERP-0", "ERP-1"]
    assert _writes(sandbox) == 0
    assert result.states == []
