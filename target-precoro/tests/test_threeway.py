"""Two-way sync: a person's edit in Precoro is never reverted by the reverse job.

Each test syncs ERP suppliers into the sandbox, then edits one side or both (a buyer's
edit is a PUT straight to the sandbox) and counts the writes the next runs send.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from precoro_client.errors import ConfigError
from precoro_client.forms import encode_record
from precoro_client.registry import get
from target_precoro.settings import TargetSettings
from target_precoro.testing import api_records, make_config, run_target, singer

SUPPLIERS = get("suppliers")


def _erp() -> list[dict[str, Any]]:
    return [
        {
            "externalId": f"TW-{i}",
            "name": f"Two Way Vendor {i}",
            "country": "Germany",
            "email": f"orders{i}@vendor.example",
            "phone": f"+49 30 {i:04d}",
        }
        for i in range(3)
    ]


def _precoro(sb: Any, ext: str) -> dict[str, Any]:
    rows = api_records(sb, "/suppliers", **{"external_id[]": ext})
    assert len(rows) == 1
    return rows[0]


def _buyer_edits(sb: Any, ext: str, **values: Any) -> None:
    """A person changes the supplier in Precoro (not through the target)."""
    row = _precoro(sb, ext)
    response = requests.put(
        f"{sb.url}/suppliers/{row['id']}",
        data=encode_record(SUPPLIERS, values),
        headers=sb.headers,
        timeout=30,
    )
    response.raise_for_status()


def _puts(sb: Any) -> list[dict[str, Any]]:
    """Write requests the sandbox received since its counters were reset."""
    return [r for r in sb.admin.requests() if r["method"] in ("PUT", "PATCH", "POST")]


def _writes(sb: Any) -> int:
    counters = sb.admin.counters()
    return sum(counters.get(method=m) for m in ("POST", "PUT", "PATCH"))


@pytest.fixture
def synced(sandbox: Any, tmp_path: Any, capsys: Any) -> dict[str, Any]:
    """Three ERP suppliers created in Precoro (the base is what was written)."""
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    first = run_target(config, singer("suppliers", _erp()), capsys)
    assert {o["outcome"] for o in first.outcomes} == {"created"}
    return config


def test_precoro_edit_survives_any_number_of_reverse_runs(sandbox, synced, capsys):
    _buyer_edits(sandbox, "TW-0", email="buyer.fixed@vendor.example")
    for _ in range(3):
        sandbox.admin.reset_counters()
        result = run_target(synced, singer("suppliers", _erp()), capsys)
        line = result.by_id()["TW-0"]
        assert line["outcome"] == "kept_precoro"
        assert line["kept_precoro"]["email"] == {
            "base": "orders0@vendor.example",
            "erp": "orders0@vendor.example",
            "precoro": "buyer.fixed@vendor.example",
        }
        assert {result.outcome_of("TW-1"), result.outcome_of("TW-2")} == {"unchanged"}
        assert _writes(sandbox) == 0  # neither the kept field nor the unchanged records cost
        # ...and no extra read: the one modifiedSince refresh the index makes anyway.
        assert sandbox.admin.counters().total == result.summary["calls"]["index_reads"] == 1
        assert result.summary["streams"]["suppliers"] == {"kept_precoro": 1, "unchanged": 2}
        assert result.dead_letter() == []
    assert _precoro(sandbox, "TW-0")["email"] == "buyer.fixed@vendor.example"


def test_erp_edit_is_written_once_beside_a_kept_precoro_edit(sandbox, synced, capsys, monkeypatch):
    from precoro_client.client import PrecoroClient

    sent: list[list[str]] = []
    original = PrecoroClient.put_form

    def recording(self: PrecoroClient, path: str, pairs: Any) -> Any:
        sent.append([key for key, _ in pairs])
        return original(self, path, pairs)

    monkeypatch.setattr(PrecoroClient, "put_form", recording)
    _buyer_edits(sandbox, "TW-0", email="buyer.fixed@vendor.example")
    records = _erp()
    records[0]["phone"] = "+49 30 9999"  # the ERP changed another field
    sandbox.admin.reset_counters()
    result = run_target(synced, singer("suppliers", records), capsys)
    assert sent == [["phone"]]  # a partial PUT: the kept e-mail is not in it
    line = result.by_id()["TW-0"]
    assert line["outcome"] == "updated"
    assert line["fields"] == ["phone"]
    assert list(line["kept_precoro"]) == ["email"]
    puts = _puts(sandbox)
    assert len(puts) == 1
    assert _writes(sandbox) == 1
    row = _precoro(sandbox, "TW-0")
    assert (row["email"], row["phone"]) == ("buyer.fixed@vendor.example", "+49 30 9999")

    sandbox.admin.reset_counters()
    again = run_target(synced, singer("suppliers", records), capsys)
    assert again.outcome_of("TW-0") == "kept_precoro"
    assert _writes(sandbox) == 0  # written once: the base moved with the PUT


def test_edits_on_both_sides_give_a_conflict_and_no_write(sandbox, synced, capsys):
    _buyer_edits(sandbox, "TW-1", email="buyer@vendor.example")
    records = _erp()
    records[1]["email"] = "erp@vendor.example"
    for _ in range(2):
        sandbox.admin.reset_counters()
        result = run_target(synced, singer("suppliers", records), capsys)
        line = result.by_id()["TW-1"]
        assert line["outcome"] == "conflict"
        assert line["conflicts"] == {
            "email": {
                "base": "orders1@vendor.example",
                "erp": "erp@vendor.example",
                "precoro": "buyer@vendor.example",
            }
        }
        assert _writes(sandbox) == 0  # a conflict costs no write
        assert sandbox.admin.counters().total == result.summary["calls"]["index_reads"] == 1
        assert result.summary["records_with_conflicts"] == {"suppliers": 1}
        assert result.exit_code == 0  # a conflict waits for a person; it is not a failure
        dead = [m for m in result.dead_letter() if m["type"] == "RECORD"]
        assert [m["record"]["externalId"] for m in dead] == ["TW-1"]
    assert _precoro(sandbox, "TW-1")["email"] == "buyer@vendor.example"


def test_both_sides_changed_to_the_same_value_moves_the_base(sandbox, synced, capsys):
    _buyer_edits(sandbox, "TW-2", email="same@vendor.example")
    records = _erp()
    records[2]["email"] = "same@vendor.example"
    sandbox.admin.reset_counters()
    first = run_target(synced, singer("suppliers", records), capsys)
    assert first.outcome_of("TW-2") == "unchanged"
    # The base is now same@...: a later buyer edit is kept, a later ERP edit written.
    _buyer_edits(sandbox, "TW-2", email="later@vendor.example")
    sandbox.admin.reset_counters()
    second = run_target(synced, singer("suppliers", records), capsys)
    assert second.outcome_of("TW-2") == "kept_precoro"
    assert second.by_id()["TW-2"]["kept_precoro"]["email"]["base"] == "same@vendor.example"
    assert _writes(sandbox) == 0


def test_a_conflict_is_resolved_by_editing_either_side(sandbox, synced, capsys):
    _buyer_edits(sandbox, "TW-1", email="buyer@vendor.example")
    records = _erp()
    records[1]["email"] = "erp@vendor.example"
    assert run_target(synced, singer("suppliers", records), capsys).outcome_of("TW-1") == (
        "conflict"
    )
    _buyer_edits(sandbox, "TW-1", email="erp@vendor.example")  # the buyer agrees
    sandbox.admin.reset_counters()
    agreed = run_target(synced, singer("suppliers", records), capsys)
    assert agreed.outcome_of("TW-1") == "unchanged"
    records[1]["email"] = "erp2@vendor.example"  # from now on the ERP's edits go through
    sandbox.admin.reset_counters()
    written = run_target(synced, singer("suppliers", records), capsys)
    assert written.outcome_of("TW-1") == "updated"
    assert _writes(sandbox) == 1


OWNERSHIP_CASES = {
    # owner: outcome of (Precoro-only edit, edits on both sides, ERP-only edit), writes
    "erp": (("updated", "updated", "updated"), 3),  # the ERP always wins (as before)
    "precoro": (("kept_precoro", "kept_precoro", "kept_precoro"), 0),  # never overwritten
    "conflict": (("kept_precoro", "conflict", "updated"), 1),  # three-way rule (default)
}


@pytest.mark.parametrize("owner", sorted(OWNERSHIP_CASES))
def test_ownership_changes_each_case(sandbox, tmp_path, capsys, owner):
    config = make_config(
        sandbox,
        tmp_path,
        match={"suppliers": []},
        field_ownership={"suppliers": {"email": owner, "*": "erp"}},
    )
    run_target(config, singer("suppliers", _erp()), capsys)
    _buyer_edits(sandbox, "TW-0", email="buyer0@vendor.example")  # Precoro only
    _buyer_edits(sandbox, "TW-1", email="buyer1@vendor.example")  # both sides
    records = _erp()
    records[1]["email"] = "erp1@vendor.example"
    records[2]["email"] = "erp2@vendor.example"  # ERP only: written under every owner
    sandbox.admin.reset_counters()
    result = run_target(config, singer("suppliers", records), capsys)
    outcomes, writes = OWNERSHIP_CASES[owner]
    assert tuple(result.outcome_of(f"TW-{i}") for i in range(3)) == outcomes
    assert _writes(sandbox) == writes
    emails = [_precoro(sandbox, f"TW-{i}")["email"] for i in range(3)]
    if owner == "erp":
        assert emails == ["orders0@vendor.example", "erp1@vendor.example", "erp2@vendor.example"]
    elif owner == "precoro":
        assert emails == [
            "buyer0@vendor.example",
            "buyer1@vendor.example",
            "orders2@vendor.example",
        ]
    else:
        assert emails == ["buyer0@vendor.example", "buyer1@vendor.example", "erp2@vendor.example"]


def test_precoro_owned_field_is_filled_while_precoro_holds_no_value(sandbox, tmp_path, capsys):
    owners = {"suppliers": {"phone": "precoro"}}
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, field_ownership=owners)
    records = _erp()
    del records[0]["phone"]
    run_target(config, singer("suppliers", records), capsys)
    records[0]["phone"] = "+49 30 1111"
    sandbox.admin.reset_counters()
    filled = run_target(config, singer("suppliers", records), capsys)
    assert filled.outcome_of("TW-0") == "updated"
    assert _precoro(sandbox, "TW-0")["phone"] == "+49 30 1111"
    records[0]["phone"] = "+49 30 2222"
    sandbox.admin.reset_counters()
    held = run_target(config, singer("suppliers", records), capsys)
    assert held.outcome_of("TW-0") == "kept_precoro"
    assert _writes(sandbox) == 0


def test_ownership_setting_is_validated():
    good = TargetSettings.from_config(
        {"field_ownership": {"suppliers": {"email": "precoro", "*": "erp"}, "*": {"*": "erp"}}}
    )
    assert good.owner("suppliers", "email") == "precoro"
    assert good.owner("suppliers", "name") == "erp"
    assert good.owner("items", "name") == "erp"
    assert TargetSettings.from_config({}).owner("suppliers", "email") == "conflict"
    bad = [
        {"field_ownership": {"nosuch": {"*": "erp"}}},
        {"field_ownership": {"suppliers": {"nosuchfield": "erp"}}},
        {"field_ownership": {"suppliers": {"email": "ERP-wins"}}},
        {"field_ownership": {"suppliers": ["email"]}},
        {"field_ownership": {"*": {"email": "erp"}}},
    ]
    for config in bad:
        with pytest.raises(ConfigError) as caught:
            TargetSettings.from_config(config)
        assert caught.value.setting == "field_ownership"


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs, only what is on disk survives."""


def _run_killed_at_put(config: dict[str, Any], text: str, *, after_apply: bool) -> None:
    """Run the target until its first PUT, then die (before or after Precoro applied it)."""
    import io

    from precoro_client.client import PrecoroClient
    from target_precoro.target import TargetPrecoro

    original = PrecoroClient.put_form

    def dying(self: PrecoroClient, path: str, pairs: Any) -> Any:
        if after_apply:
            original(self, path, pairs)
        raise Killed

    target = TargetPrecoro(config=config, parse_env_config=False)
    PrecoroClient.put_form = dying  # type: ignore[method-assign]
    try:
        with pytest.raises(Killed):
            target.listen(io.StringIO(text))  # type: ignore[arg-type]
    finally:
        PrecoroClient.put_form = original  # type: ignore[method-assign]
        assert target.run.opened_runtime is not None
        target.run.opened_runtime.close()  # the process is gone: its files and lock are released


@pytest.mark.parametrize("after_apply", [False, True], ids=["before-send", "after-apply"])
def test_a_kill_between_reading_and_writing_loses_no_base(sandbox, synced, capsys, after_apply):
    _buyer_edits(sandbox, "TW-0", email="buyer.fixed@vendor.example")
    records = _erp()
    records[0]["phone"] = "+49 30 9999"  # the ERP's edit, to be PUT when the run dies
    _run_killed_at_put(synced, singer("suppliers", records), after_apply=after_apply)
    assert (_precoro(sandbox, "TW-0")["phone"] == "+49 30 9999") is after_apply

    # The killed PUT's outcome is unknown: nothing is written until it has settled.
    sandbox.admin.reset_counters()
    waiting = run_target(synced, singer("suppliers", records), capsys)
    assert waiting.outcome_of("TW-0") == "unresolved"
    assert _writes(sandbox) == 0
    from precoro_client.settings import PrecoroSettings
    from target_precoro.settings import WRITE_SETTLE_SECONDS

    sandbox.admin.advance_clock(WRITE_SETTLE_SECONDS + PrecoroSettings.max_wait_seconds + 5)

    sandbox.admin.reset_counters()
    result = run_target(synced, singer("suppliers", records), capsys)
    line = result.by_id()["TW-0"]
    # The ERP's edit is not mistaken for a Precoro one (the base did not run ahead of
    # the write), and the buyer's edit is still recognised (the base was not lost).
    assert line["outcome"] == ("kept_precoro" if after_apply else "updated")
    assert list(line["kept_precoro"]) == ["email"]
    assert _writes(sandbox) == (0 if after_apply else 1)
    row = _precoro(sandbox, "TW-0")
    assert (row["email"], row["phone"]) == ("buyer.fixed@vendor.example", "+49 30 9999")

    sandbox.admin.reset_counters()
    settled = run_target(synced, singer("suppliers", records), capsys)
    assert settled.outcome_of("TW-0") == "kept_precoro"
    assert _writes(sandbox) == 0


MULLER = 10000001  # a generated sandbox supplier without externalId (seed 42)


@pytest.mark.parametrize("owner", ["conflict", "precoro"])
def test_linking_has_no_base_the_erp_aligns_fields_precoro_does_not_own(
    sandbox, tmp_path, capsys, owner
):
    muller = sandbox.admin.record("suppliers", MULLER)
    assert muller["externalId"] is None
    assert muller["phone"]
    incoming = {
        "externalId": "ERP-MUL",
        "name": muller["name"],
        "businessRegistrationNumber": muller["businessRegistrationNumber"],
        "phone": "+49 89 0000",
    }
    owners = {"suppliers": {"phone": owner}}
    config = make_config(sandbox, tmp_path, field_ownership=owners)
    sandbox.admin.reset_counters()
    linked = run_target(config, singer("suppliers", [incoming]), capsys).by_id()["ERP-MUL"]
    assert linked["outcome"] == "linked"
    if owner == "conflict":  # no base yet: the ERP's value is written once, then the base
        assert linked["fields"] == ["externalId", "phone"]
        assert sandbox.admin.record("suppliers", MULLER)["phone"] == "+49 89 0000"
    else:  # Precoro holds a phone and owns it: only the link is written
        assert linked["fields"] == ["externalId"]
        assert list(linked["kept_precoro"]) == ["phone"]
        assert sandbox.admin.record("suppliers", MULLER)["phone"] == muller["phone"]
    assert _writes(sandbox) == 1
    # From the link on, a buyer's edit is kept.
    _buyer_edits(sandbox, "ERP-MUL", phone="+49 89 1234")
    sandbox.admin.reset_counters()
    again = run_target(config, singer("suppliers", [incoming]), capsys)
    assert again.outcome_of("ERP-MUL") == "kept_precoro"
    assert _writes(sandbox) == 0


def test_a_conflict_replayed_from_the_dead_letter_with_erp_ownership_is_written(
    sandbox, synced, capsys
):
    _buyer_edits(sandbox, "TW-1", email="buyer@vendor.example")
    records = _erp()
    records[1]["email"] = "erp@vendor.example"
    result = run_target(synced, singer("suppliers", records), capsys)
    assert result.outcome_of("TW-1") == "conflict"
    dead_letter = result.report_dir / "dead-letter.jsonl"
    decided = {**synced, "field_ownership": {"suppliers": {"email": "erp"}}}
    sandbox.admin.reset_counters()
    replay = run_target(decided, dead_letter.read_text(), capsys)
    assert replay.outcome_of("TW-1") == "updated"
    assert _writes(sandbox) == 1
    assert _precoro(sandbox, "TW-1")["email"] == "erp@vendor.example"
    sandbox.admin.reset_counters()
    settled = run_target(synced, singer("suppliers", records), capsys)  # default ownership
    assert settled.outcome_of("TW-1") == "unchanged"
    assert _writes(sandbox) == 0


def test_dry_run_reports_the_decision_and_moves_no_base(sandbox, synced, capsys):
    _buyer_edits(sandbox, "TW-1", email="buyer@vendor.example")
    records = _erp()
    records[1]["email"] = "buyer@vendor.example"  # would move the base to buyer@...
    records[2]["phone"] = "+49 30 7777"  # would be written
    dry = run_target({**synced, "dry_run": True}, singer("suppliers", records), capsys)
    assert dry.outcome_of("TW-1") == "unchanged"
    assert dry.outcome_of("TW-2") == "updated"
    records[1]["email"] = "orders1@vendor.example"  # the ERP goes back to the old value
    sandbox.admin.reset_counters()
    real = run_target(synced, singer("suppliers", records), capsys)
    assert real.outcome_of("TW-1") == "kept_precoro"  # the base is still orders1@...
    assert real.outcome_of("TW-2") == "updated"
    assert _writes(sandbox) == 1


def test_numbers_and_references_compare_as_precoro_stores_them(sandbox, synced, capsys):
    items = [
        {"externalId": "IT-1", "name": "Widget", "price": 9.5, "supplier": "TW-0"},
        {"externalId": "IT-2", "name": "Gadget", "price": 12, "supplier": "TW-1"},
    ]
    config = {**synced, "match": {"suppliers": [], "items": []}}
    text = singer("suppliers", _erp()) + singer("items", items)
    run_target(config, text, capsys)
    item = api_records(sandbox, "/items", **{"external_id[]": "IT-1"})[0]
    response = requests.put(
        f"{sandbox.url}/items/{item['id']}",
        data=encode_record(get("items"), {"price": 10.25, "supplier": _precoro(sandbox, "TW-1")}),
        headers=sandbox.headers,
        timeout=30,
    )
    response.raise_for_status()
    items[1]["price"] = 13  # the ERP's edit
    sandbox.admin.reset_counters()
    result = run_target(config, singer("suppliers", _erp()) + singer("items", items), capsys)
    assert result.outcome_of("IT-1") == "kept_precoro"
    assert sorted(result.by_id()["IT-1"]["kept_precoro"]) == ["price", "supplier"]
    assert result.outcome_of("IT-2") == "updated"
    assert result.by_id()["IT-2"]["fields"] == ["price"]
    assert _writes(sandbox) == 1


def test_union_lists_take_the_merged_list_as_the_erp_side():
    from target_precoro.threeway import decide

    def owner(_: str) -> Any:
        return "conflict"

    base = {"currencies": ["EUR", "USD"]}

    def run(erp: list[str], precoro: list[str]) -> Any:
        return decide(
            SUPPLIERS,
            {"currencies": erp},
            {"currencies": precoro},
            base=base,
            owner_of=owner,
            list_merge="union",
        )

    removed = run(["EUR", "USD"], ["EUR"])  # a person removed USD in Precoro: kept
    assert list(removed.kept) == ["currencies"]
    assert not removed.write
    added = run(["EUR", "USD"], ["EUR", "USD", "CHF"])  # a person added CHF: equal
    assert added.agreed == {"currencies": ["EUR", "USD", "CHF"]}
    erp_added = run(["EUR", "USD", "GBP"], ["EUR", "USD"])  # the ERP added GBP: written
    assert erp_added.write == {"currencies": ["EUR", "USD", "GBP"]}
    both = run(["EUR", "USD", "GBP"], ["EUR"])  # both changed: conflict
    assert list(both.conflicts) == ["currencies"]


def test_a_write_whose_answer_was_lost_is_not_taken_for_a_person_edit(sandbox, synced, capsys):
    """Our PUT landed but its answer was lost (kill after apply): the base never moved.

    Once it has settled, Precoro's value equals what the journal says we sent, so the
    ERP's next edit of that field is written (not a `conflict` with our own write).
    """
    from precoro_client.settings import PrecoroSettings
    from target_precoro.settings import WRITE_SETTLE_SECONDS

    records = _erp()
    records[0]["phone"] = "+49 30 1111"
    _run_killed_at_put(synced, singer("suppliers", records), after_apply=True)
    assert _precoro(sandbox, "TW-0")["phone"] == "+49 30 1111"
    sandbox.admin.advance_clock(WRITE_SETTLE_SECONDS + PrecoroSettings.max_wait_seconds + 5)

    records[0]["phone"] = "+49 30 2222"  # the ERP moves on
    sandbox.admin.reset_counters()
    line = run_target(synced, singer("suppliers", records), capsys).by_id()["TW-0"]
    assert line["outcome"] == "updated"
    assert line["fields"] == ["phone"]
    assert not line.get("conflicts")
    assert _writes(sandbox) == 1
    assert _precoro(sandbox, "TW-0")["phone"] == "+49 30 2222"


def test_a_write_from_another_state_dir_is_not_taken_for_a_person_edit(
    sandbox, synced, tmp_path, capsys
):
    """Two pipelines on one account with separate state_dirs share one base.

    Pipeline B writes the ERP's new phone; pipeline A, whose index never saw that
    write, then gets a newer phone: it is written, not a `conflict` with B's write.
    """
    other = {**synced, "state_dir": str(tmp_path / "state-b")}
    records = _erp()
    records[0]["phone"] = "+49 30 3333"
    by_b = run_target(other, singer("suppliers", records), capsys).by_id()["TW-0"]
    assert by_b["outcome"] == "updated"

    records[0]["phone"] = "+49 30 4444"
    sandbox.admin.reset_counters()
    line = run_target(synced, singer("suppliers", records), capsys).by_id()["TW-0"]
    assert line["outcome"] == "updated"
    assert not line.get("conflicts")
    assert _writes(sandbox) == 1
    assert _precoro(sandbox, "TW-0")["phone"] == "+49 30 4444"
