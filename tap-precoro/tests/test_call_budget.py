"""What a full and an incremental read cost, counted by the sandbox."""

from __future__ import annotations

import math
from urllib.parse import unquote

from precoro_client.registry import ENTITIES, get

PAGE = 10  # small pages so the small sandbox dataset spans several of them

INCREMENTAL_MASTER = ["suppliers", "items", "payments"]
DOCUMENTS = ["purchaseorders", "invoices", "receipts", "expenses"]


def expected_list_calls(rows: int, page_size: int) -> int:
    """One call per page; an empty result still costs the call that says so."""
    return max(1, math.ceil(rows / page_size))


def test_full_read_costs_one_call_per_page_plus_one_per_document(sandbox, make_config, run_tap):
    run = run_tap(make_config(sandbox, page_size=PAGE))
    counters = sandbox.admin.counters()
    stored = sandbox.admin.stats()

    for entity in ENTITIES:
        if entity.parent is not None or entity.view_of is not None:
            continue
        emitted = len(run.records[entity.name])
        assert emitted == stored[entity.name], entity.name
        assert counters.get("GET", entity.path) == expected_list_calls(emitted, PAGE), entity.name
        detail_calls = counters.get("GET", f"{entity.path}/{{{entity.key}}}")
        assert detail_calls == (emitted if entity.fetch_detail else 0), entity.name

    for options in ("itemcustomfieldoptions", "documentcustomfieldoptions"):
        route = get(options).path
        fields = len(run.records[get(options).parent or ""])
        assert counters.get("GET", route) >= fields
        assert len(run.records[options]) == stored[options]
    assert counters.get(status=429) == 0
    # Credit notes are read through their own stream only when selected.
    assert "creditnotes" not in run.records


def test_incremental_run_costs_ceil_k_over_page_size(sandbox, make_config, run_tap):
    config = make_config(sandbox, page_size=PAGE)
    first = run_tap(config)
    sandbox.admin.advance_clock(600)

    changed = 13
    for name in [*INCREMENTAL_MASTER, *DOCUMENTS]:
        keys = [r[get(name).key] for r in first.records[name][:changed]]
        sandbox.admin.touch(name, keys)
    sandbox.admin.reset_counters()

    second = run_tap(config, state=first.state)
    counters = sandbox.admin.counters()
    for name in [*INCREMENTAL_MASTER, *DOCUMENTS]:
        entity = get(name)
        assert len(second.records[name]) == changed, name
        assert counters.get("GET", entity.path) == math.ceil(changed / PAGE), name
        detail = counters.get("GET", f"{entity.path}/{{{entity.key}}}")
        assert detail == (changed if entity.fetch_detail else 0), name
    # Reference data is cached for reference_refresh_hours: no call at all.
    for name in ("taxes", "paymentterms", "locations", "legalentities", "users", "budgets"):
        assert counters.get("GET", get(name).path) == 0, name
        assert not second.records.get(name)


def test_unchanged_incremental_run_costs_one_call_per_stream(sandbox, make_config, run_tap):
    config = make_config(sandbox, page_size=PAGE)
    first = run_tap(config)
    sandbox.admin.advance_clock(600)
    sandbox.admin.reset_counters()

    second = run_tap(config, state=first.state)
    counters = sandbox.admin.counters()
    incremental = [e for e in ENTITIES if e.incremental and e.view_of is None]
    assert counters.total == len(incremental)
    assert sum(len(rows) for rows in second.records.values()) == 0


def test_lookback_overlap_is_not_emitted_or_fetched_again(sandbox, make_config, run_tap):
    """A change inside the look-back window is listed again but costs no detail call."""
    config = make_config(sandbox, page_size=PAGE)
    first = run_tap(config)
    sandbox.admin.advance_clock(60)
    idn = first.records["invoices"][0]["idn"]
    sandbox.admin.touch("invoices", [idn])
    second = run_tap(config, state=first.state)
    assert [r["idn"] for r in second.records["invoices"]] == [idn]

    sandbox.admin.advance_clock(60)  # still inside the 5-minute look-back
    sandbox.admin.reset_counters()
    third = run_tap(config, state=second.state)
    counters = sandbox.admin.counters()
    assert not third.records.get("invoices")
    assert counters.get("GET", "/invoices/{idn}") == 0


def test_reference_refresh_emits_only_changed_records(sandbox, make_config, run_tap):
    config = make_config(sandbox, reference_refresh_hours=0)
    first = run_tap(config, streams=["taxes"])
    assert len(first.records["taxes"]) == sandbox.admin.stats()["taxes"]
    tax_id = first.records["taxes"][0]["id"]
    sandbox.admin.touch("taxes", [tax_id])
    sandbox.admin.reset_counters()

    second = run_tap(config, state=first.state, streams=["taxes"])
    assert second.ids("taxes") == [tax_id]
    assert sandbox.admin.counters().get("GET", "/taxes") == 1


def test_disabled_records_are_excluded_only_when_asked(sandbox, make_config, run_tap):
    everything = run_tap(make_config(sandbox), streams=["suppliers"])
    disabled = [r for r in everything.records["suppliers"] if r["enable"] is False]
    assert disabled, "the sandbox seeds some disabled suppliers"

    sandbox.admin.reset_counters()
    enabled_only = run_tap(make_config(sandbox, include_disabled=False), streams=["suppliers"])
    assert all(r["enable"] for r in enabled_only.records["suppliers"])
    assert len(enabled_only.records["suppliers"]) == len(everything.records["suppliers"]) - len(
        disabled
    )


def test_status_filter_is_sent_to_precoro(sandbox, make_config, run_tap):
    config = make_config(sandbox, status_filters={"invoices": [2]}, fetch_details=False)
    run = run_tap(config, streams=["invoices"])
    assert run.records["invoices"]
    assert {r["status"] for r in run.records["invoices"]} == {2}
    queries = [unquote(r["query"]) for r in sandbox.admin.requests()]
    assert queries
    assert all("status[]=2" in query for query in queries)


def test_credit_notes_stream_reads_logic_types_1_and_5(sandbox, make_config, run_tap):
    run = run_tap(make_config(sandbox, fetch_details=False), streams=["creditnotes"])
    assert run.records["creditnotes"]
    assert {r["logicType"] for r in run.records["creditnotes"]} <= {1, 5}
