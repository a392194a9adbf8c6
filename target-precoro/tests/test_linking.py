"""Initial linking: ERP records meet Precoro records that have no externalId yet."""

from __future__ import annotations

import requests
from target_precoro.testing import api_records, make_config, run_target, singer

# Generated sandbox suppliers (seed 42) without externalId, as the sandbox builds them.
MULLER = 10000001  # "Müller & Söhne GmbH", Germany, BRN 11936868
OBRIEN = 10000003  # "O'Brien & Daughters Ltd", United Kingdom
CENTRAL = 10000009  # "Central Freight AB", Sweden
ALPINE_DISABLED = 10000018  # "Alpine Paper S.A.", Poland, disabled


def _writes(sb) -> dict[str, int]:
    counters = sb.admin.counters()
    return {m: counters.get(method=m) for m in ("POST", "PUT", "PATCH")}


def _record(sb, supplier_id: int) -> dict:
    return sb.admin.record("suppliers", supplier_id)


def test_exact_key_links_with_one_patch_then_costs_nothing(sandbox, tmp_path, capsys):
    muller = _record(sandbox, MULLER)
    assert muller["externalId"] is None
    incoming = {
        "externalId": "ERP-MUL",
        "name": muller["name"],
        "businessRegistrationNumber": muller["businessRegistrationNumber"],
        "country": "Germany",
    }
    config = make_config(sandbox, tmp_path)
    sandbox.admin.reset_counters()
    result = run_target(config, singer("suppliers", [incoming]), capsys)
    linked = result.by_id()["ERP-MUL"]
    assert linked["outcome"] == "linked"
    assert linked["precoro_id"] == MULLER
    assert "businessRegistrationNumber" in linked["message"]
    assert _writes(sandbox) == {"POST": 0, "PUT": 0, "PATCH": 1}
    assert _record(sandbox, MULLER)["externalId"] == "ERP-MUL"

    sandbox.admin.reset_counters()
    again = run_target(config, singer("suppliers", [incoming]), capsys)
    assert again.outcome_of("ERP-MUL") == "unchanged"
    assert _writes(sandbox) == {"POST": 0, "PUT": 0, "PATCH": 0}


def test_normalised_name_and_country_link_and_update_in_one_call(sandbox, tmp_path, capsys):
    incoming = {
        "externalId": "ERP-OBR",
        "name": "O\u2019BRIEN  &  Daughters, LTD.",
        "country": "United Kingdom",
        "phone": "+44 20 7946 0000",
    }
    sandbox.admin.reset_counters()
    result = run_target(make_config(sandbox, tmp_path), singer("suppliers", [incoming]), capsys)
    linked = result.by_id()["ERP-OBR"]
    assert linked["outcome"] == "linked"
    assert linked["precoro_id"] == OBRIEN
    assert "name+country" in linked["message"]
    # externalId and the changed fields travel together in one PUT.
    assert _writes(sandbox) == {"POST": 0, "PUT": 1, "PATCH": 0}
    stored = _record(sandbox, OBRIEN)
    assert stored["externalId"] == "ERP-OBR"
    assert stored["phone"] == "+44 20 7946 0000"
    assert stored["name"] == "O\u2019BRIEN  &  Daughters, LTD."


def test_disabled_precoro_supplier_is_linked_not_recreated(sandbox, tmp_path, capsys):
    disabled = _record(sandbox, ALPINE_DISABLED)
    assert disabled["enable"] is False
    assert disabled["externalId"] is None
    incoming = {"externalId": "ERP-ALP", "name": "ALPINE PAPER SA", "country": "Poland"}
    sandbox.admin.reset_counters()
    result = run_target(make_config(sandbox, tmp_path), singer("suppliers", [incoming]), capsys)
    assert result.outcome_of("ERP-ALP") == "linked"
    assert result.by_id()["ERP-ALP"]["precoro_id"] == ALPINE_DISABLED
    assert _writes(sandbox)["POST"] == 0
    assert _record(sandbox, ALPINE_DISABLED)["externalId"] == "ERP-ALP"


def test_two_precoro_candidates_are_ambiguous_and_untouched(sandbox, tmp_path, capsys):
    for city in ("Berlin", "Bonn"):
        response = requests.post(
            f"{sandbox.url}/suppliers",
            data={"name": "Twin Trading GmbH", "country": "Germany", "city": city},
            headers=sandbox.headers,
            timeout=10,
        )
        response.raise_for_status()
    incoming = {"externalId": "ERP-TWIN", "name": "twin trading", "country": "Germany"}
    sandbox.admin.reset_counters()
    result = run_target(
        make_config(sandbox, tmp_path, max_failures=5), singer("suppliers", [incoming]), capsys
    )
    ambiguous = result.by_id()["ERP-TWIN"]
    assert ambiguous["outcome"] == "ambiguous"
    assert "2 Precoro records match" in ambiguous["message"]
    assert _writes(sandbox) == {"POST": 0, "PUT": 0, "PATCH": 0}
    assert result.dead_letter()[1]["error"]["outcome"] == "ambiguous"


def test_one_candidate_claimed_twice_is_a_conflict(sandbox, tmp_path, capsys):
    records = [
        {"externalId": "ERP-C1", "name": "Central Freight AB", "country": "Sweden"},
        {"externalId": "ERP-C2", "name": "CENTRAL FREIGHT", "country": "sweden"},
    ]
    sandbox.admin.reset_counters()
    result = run_target(make_config(sandbox, tmp_path), singer("suppliers", records), capsys)
    assert result.outcome_of("ERP-C1") == "conflict"
    assert result.outcome_of("ERP-C2") == "conflict"
    assert str(CENTRAL) in result.by_id()["ERP-C1"]["message"]
    assert _writes(sandbox) == {"POST": 0, "PUT": 0, "PATCH": 0}
    assert _record(sandbox, CENTRAL)["externalId"] is None


def test_dry_run_links_on_paper_only(sandbox, tmp_path, capsys):
    incoming = {"externalId": "ERP-C1", "name": "Central Freight", "country": "Sweden"}
    sandbox.admin.reset_counters()
    result = run_target(
        make_config(sandbox, tmp_path, dry_run=True), singer("suppliers", [incoming]), capsys
    )
    assert result.outcome_of("ERP-C1") == "linked"
    assert _writes(sandbox) == {"POST": 0, "PUT": 0, "PATCH": 0}
    assert _record(sandbox, CENTRAL)["externalId"] is None


def test_purchase_orders_are_linked_by_idn(sandbox, tmp_path, capsys):
    orders = api_records(sandbox, "/purchaseorders")
    unlinked = next(o for o in orders if not o["externalId"])
    records = [
        {"externalId": "ERP-PO-77", "idn": unlinked["idn"]},
        {"externalId": "ERP-PO-78", "idn": "NO-SUCH-IDN"},
    ]
    config = make_config(sandbox, tmp_path, max_failures=1)
    sandbox.admin.reset_counters()
    result = run_target(config, singer("purchaseorders", records), capsys)
    assert result.outcome_of("ERP-PO-77") == "linked"
    assert result.outcome_of("ERP-PO-78") == "failed"
    assert "cannot create purchaseorders" in result.by_id()["ERP-PO-78"]["message"]
    assert _writes(sandbox) == {"POST": 0, "PUT": 0, "PATCH": 1}
    stored = sandbox.admin.record("purchaseorders", unlinked["idn"])
    assert stored["externalId"] == "ERP-PO-77"

    sandbox.admin.reset_counters()
    again = run_target(config, singer("purchaseorders", records[:1]), capsys)
    assert again.outcome_of("ERP-PO-77") == "unchanged"
    assert _writes(sandbox) == {"POST": 0, "PUT": 0, "PATCH": 0}


def test_name_normalisation_folds_connectors_and_legal_suffixes():
    from target_precoro.normalise import normalise_name

    same = [
        "O'BRIEN AND DAUGHTERS LIMITED",
        "O\u2019Brien & Daughters Ltd.",
        "o'brien  &  daughters",
    ]
    assert len({normalise_name(name) for name in same}) == 1
    assert normalise_name("Müller & Söhne GmbH") == normalise_name("MULLER UND SOHNE")
    assert normalise_name("Apex Components S.A.") == normalise_name("apex components sa")
    assert normalise_name("Apex Components") != normalise_name("Apex Component Works")


def test_each_field_is_compared_the_way_the_registry_says():
    from precoro_client.registry import ENTITIES, get
    from target_precoro.matcher import Matcher
    from target_precoro.normalise import NORMALISERS
    from target_precoro.validate import Incoming

    assert {spec.match_as for entity in ENTITIES for spec in entity.fields} <= set(NORMALISERS)
    suppliers = get("suppliers")
    assert suppliers.field("name").match_as == "name"
    assert suppliers.field("city").match_as == "text"
    assert suppliers.field("businessRegistrationNumber").match_as == "code"
    candidates = [
        {"id": 1, "name": "Acme GmbH", "city": "Saint-Étienne", "businessRegistrationNumber": "x"},
        {"id": 2, "name": "Other", "city": "Lyon", "businessRegistrationNumber": "DE 123-45"},
    ]
    rules = [("businessRegistrationNumber",), ("name", "city")]
    matcher = Matcher(suppliers, rules, candidates)
    by_code = Incoming("suppliers", "E-1", {}, keys={"businessRegistrationNumber": "de12345"})
    by_name = Incoming("suppliers", "E-2", {}, keys={"name": "ACME", "city": "saint etienne"})
    assert matcher.match_one(by_code).candidate_ids == [2]
    assert matcher.match_one(by_name).candidate_ids == [1]
