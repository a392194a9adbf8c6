"""Admin API protection and counters, clock, activity, touch, webhooks, data determinism."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
import requests
from precoro_client import registry
from precoro_sandbox.admin_client import AdminClient, AdminError
from precoro_sandbox.testing import START, WebhookReceiver, all_rows, client

# --- admin ---------------------------------------------------------------------------


def test_admin_api_needs_the_admin_token(sandbox):
    assert requests.get(f"{sandbox.url}/_sandbox/counters").status_code == 401
    assert (
        requests.get(f"{sandbox.url}/_sandbox/counters", headers=sandbox.headers).status_code == 401
    )
    assert (
        requests.get(
            f"{sandbox.url}/_sandbox/counters", headers={"X-Sandbox-Admin": "nope"}
        ).status_code
        == 401
    )
    with pytest.raises(AdminError) as failure:
        AdminClient(sandbox.url, "wrong").counters()
    assert failure.value.status == 401
    assert sandbox.admin.health()


def test_counters_and_request_log(sandbox, api):
    supplier = api.get(f"{sandbox.url}/suppliers").json()["data"][0]
    api.get(f"{sandbox.url}/suppliers/{supplier['id']}")
    api.get(f"{sandbox.url}/suppliers/1")
    api.get(f"{sandbox.url}/invoices/1")
    requests.get(f"{sandbox.url}/suppliers")
    sandbox.admin.info()  # admin calls are not counted
    counters = sandbox.admin.counters()
    assert counters.get("GET", "/suppliers", 200) == 1
    assert counters.get("GET", "/suppliers", 401) == 1
    assert counters.get("GET", "/suppliers/{id}") == 2
    assert counters.get("GET", "/suppliers/{id}", 404) == 1
    assert counters.get("GET", "/invoices/{idn}", 200) == 1
    assert counters.total == 5
    assert counters.by_route()["GET /suppliers/{id}"] == 2
    log = sandbox.admin.requests()
    assert [e["status"] for e in log] == [200, 200, 404, 200, 401]
    assert log[0]["company"] == 1
    assert log[-1]["company"] is None
    assert log[1]["path"] == f"/suppliers/{supplier['id']}"
    assert len(sandbox.admin.requests(limit=2)) == 2
    sandbox.admin.reset_counters()
    assert sandbox.admin.counters().total == 0
    assert sandbox.admin.requests() == []


def test_admin_errors_are_400_with_message(sandbox):
    with pytest.raises(AdminError) as failure:
        sandbox.admin.set_settings(order="sideways")
    assert failure.value.status == 400
    with pytest.raises(AdminError):
        sandbox.admin.set_faults([{"kind": "explode"}])
    with pytest.raises(AdminError):
        sandbox.admin.set_limits("per_hour=lots")


def test_reset_data_regenerates(sandbox, api):
    supplier = api.get(f"{sandbox.url}/suppliers").json()["data"][0]
    api.patch(f"{sandbox.url}/suppliers/{supplier['id']}", data={"externalId": "CHANGED"})
    sandbox.admin.reset_data()
    assert (
        api.get(f"{sandbox.url}/suppliers/{supplier['id']}").json()["externalId"]
        == supplier["externalId"]
    )
    assert sandbox.admin.counters().total == 1


# --- clock ---------------------------------------------------------------------------


def test_clock_moves_date_header_and_update_date(sandbox_factory):
    sb = sandbox_factory(clock_start=START, clock_frozen=True)
    api = client(sb)
    response = api.get(f"{sb.url}/taxes")
    assert parsedate_to_datetime(response.headers["Date"]) == START
    moved = sb.admin.set_clock(datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert moved == datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parsedate_to_datetime(api.get(f"{sb.url}/taxes").headers["Date"]) == moved
    sb.admin.advance_clock(60)
    supplier = api.get(f"{sb.url}/suppliers").json()["data"][0]
    sb.admin.touch("suppliers", [supplier["id"]])
    assert (
        api.get(f"{sb.url}/suppliers/{supplier['id']}").json()["updateDate"]
        == "2027-01-02T03:05:05+00:00"
    )
    assert sb.admin.clock() == datetime(2027, 1, 2, 3, 5, 5, tzinfo=UTC)


def test_touch_with_explicit_date_and_document_key(sandbox, api):
    sandbox.admin.touch("invoices", ["2"], update_date="2030-01-01T00:00:00+00:00")
    assert api.get(f"{sandbox.url}/invoices/2").json()["updateDate"] == "2030-01-01T00:00:00+00:00"
    rows = all_rows(api, f"{sandbox.url}/invoices", modifiedSince="2030-01-01T00:00:00")
    assert [r["idn"] for r in rows] == ["2"]


# --- activity ------------------------------------------------------------------------


def test_activity_during_paging_is_visible(sandbox, api):
    sandbox.admin.set_settings(order="updated_desc")
    first = api.get(f"{sandbox.url}/suppliers", params={"per_page": 10}).json()["data"]
    changes = sandbox.admin.activity(5, ["suppliers"], create_ratio=0.0)
    assert len(changes) == 5
    assert all(c["action"] == 1 for c in changes)
    changed = {c["id"] for c in changes}
    now_first = api.get(f"{sandbox.url}/suppliers", params={"per_page": 10}).json()["data"]
    assert changed <= {r["id"] for r in now_first}
    assert [r["id"] for r in now_first] != [r["id"] for r in first]


def test_activity_creates_and_fires_for_documents(sandbox, api):
    before = sandbox.admin.stats()
    changes = sandbox.admin.activity(
        12, ["invoices", "purchaseorders", "itemcustomfieldoptions"], create_ratio=1.0
    )
    assert {c["action"] for c in changes} == {0}
    after = sandbox.admin.stats()
    created = {
        name: after[name] - before[name]
        for name in ("invoices", "purchaseorders", "itemcustomfieldoptions")
    }
    assert sum(created.values()) == 12
    for change in changes:
        entity = registry.get(change["entity"])
        if entity.key == "idn":
            row = api.get(f"{sandbox.url}{entity.path}/{change['idn']}")
            assert row.status_code == 200


def test_activity_is_deterministic_per_seed_and_call(sandbox_factory):
    a = sandbox_factory(seed=3)
    b = sandbox_factory(seed=3)
    assert a.admin.activity(15) == b.admin.activity(15)
    assert a.admin.activity(15) == b.admin.activity(15)
    assert a.admin.activity(4, seed=99) == b.admin.activity(4, seed=99)


# --- webhooks ------------------------------------------------------------------------


@pytest.fixture
def receiver():
    with WebhookReceiver() as hook:
        yield hook


def test_webhooks_on_writes(sandbox, api, receiver):
    sandbox.admin.register_webhook(receiver.url)
    created = api.post(f"{sandbox.url}/suppliers", data={"name": "Hook GmbH"}).json()
    api.patch(f"{sandbox.url}/suppliers/{created['id']}", data={"externalId": "H-1"})
    api.post(
        f"{sandbox.url}/taxes", data={"name": "No hook", "percent": "1"}
    )  # taxes: no webhook type
    invoice = api.get(f"{sandbox.url}/invoices", params={"status[]": 2, "logicType[]": 0}).json()[
        "data"
    ][0]
    api.patch(f"{sandbox.url}/invoices/{invoice['idn']}", data={"externalId": "I-1"})
    field = api.get(f"{sandbox.url}/documentcustomfields").json()["data"][0]
    api.post(f"{sandbox.url}/documentcustomfields/{field['id']}/options", data={"name": "New"})
    assert sandbox.admin.flush_webhooks(10)
    assert receiver.bodies == [
        {"id": created["id"], "type": 7, "action": 0},
        {"id": created["id"], "type": 7, "action": 1},
        {"id": invoice["id"], "type": 3, "action": 1, "idn": int(invoice["idn"])},
        {"id": field["id"], "type": 10, "action": 1},
    ]
    state = sandbox.admin.webhooks()
    assert state["urls"] == [receiver.url]
    assert state["stats"]["delivered"] == 4


def test_webhooks_on_activity(sandbox, api, receiver):
    sandbox.admin.register_webhook(receiver.url)
    changes = sandbox.admin.activity(6, ["purchaseorders"])
    assert sandbox.admin.flush_webhooks(10)
    assert [(b["id"], b["action"], b["type"]) for b in receiver.bodies] == [
        (c["id"], c["action"], 2) for c in changes
    ]
    assert all(b["idn"] == int(c["idn"]) for b, c in zip(receiver.bodies, changes, strict=True))


def test_at_most_five_webhooks(sandbox):
    for k in range(5):
        sandbox.admin.register_webhook(f"http://127.0.0.1:9/{k}")
    with pytest.raises(AdminError):
        sandbox.admin.register_webhook("http://127.0.0.1:9/6")
    sandbox.admin.unregister_webhook("http://127.0.0.1:9/0")
    assert len(sandbox.admin.webhooks()["urls"]) == 4


# --- data ----------------------------------------------------------------------------


def _dump(sb):
    api = client(sb)
    return {
        entity.name: all_rows(api, sb.url + entity.path)
        for entity in registry.stored_collections()
        if entity.parent is None
    }


def test_data_is_deterministic_per_seed(sandbox_factory):
    same_a = _dump(sandbox_factory(seed=11, scale=12, clock_start=START))
    same_b = _dump(sandbox_factory(seed=11, scale=12, clock_start=START))
    other = _dump(sandbox_factory(seed=12, scale=12, clock_start=START))
    assert same_a == same_b
    assert same_a["suppliers"] != other["suppliers"]


def test_data_is_realistic_and_consistent(sandbox, api):
    suppliers = all_rows(api, f"{sandbox.url}/suppliers")
    names = {s["name"] for s in suppliers}
    assert {"Müller & Söhne GmbH", "Société Générale d'Équipement SARL"} <= names
    assert any(not s["enable"] for s in suppliers)
    assert any(s["enable"] for s in suppliers)
    assert any(s["externalId"] for s in suppliers)
    assert any(not s["externalId"] for s in suppliers)
    supplier_ids = {s["id"] for s in suppliers}
    assert all("@" in s["email"] for s in suppliers)
    assert any((s["internationalBankAccountNumber"] or "").startswith("DE") for s in suppliers)
    items = all_rows(api, f"{sandbox.url}/items")
    assert all(i["supplier"] is None or i["supplier"]["id"] in supplier_ids for i in items)
    pos = {p["id"]: p for p in all_rows(api, f"{sandbox.url}/purchaseorders")}
    invoices = all_rows(api, f"{sandbox.url}/invoices")
    assert all(i["purchaseOrder"] is None or i["purchaseOrder"]["id"] in pos for i in invoices)
    assert {1, 5} & {i["logicType"] for i in invoices}
    idns = {i["idn"] for i in invoices}
    children = [i for i in invoices if i["parentData"]]
    assert children
    assert all(c["parentData"]["idn"] in idns for c in children)
    by_id = {i["id"]: i for i in invoices}
    for payment in all_rows(api, f"{sandbox.url}/payments"):
        assert payment["invoice"]["id"] in by_id
        assert float(by_id[payment["invoice"]["id"]]["sumPaid"]) > 0
    for receipt in all_rows(api, f"{sandbox.url}/receipts"):
        assert receipt["purchaseOrder"]["id"] in pos
    field = api.get(f"{sandbox.url}/itemcustomfields").json()["data"][0]
    options = all_rows(api, f"{sandbox.url}/itemcustomfields/{field['id']}/options")
    assert options
    assert all(o["customFieldId"] == field["id"] for o in options)
    assert {o["id"] for o in options} == {o["id"] for o in field["options"]["data"]}


def test_scale_and_count_overrides(sandbox_factory):
    sb = sandbox_factory(scale=10, counts={"items": 7, "payments": 4})
    stats = sb.admin.stats()
    assert stats["suppliers"] == 10
    assert stats["items"] == 7
    assert stats["payments"] == 4
    assert stats["purchaseorders"] == 20
    assert stats["invoices"] == 20
    assert stats["receipts"] == 10


def test_kept_database_is_reused(tmp_path, sandbox_factory):
    path = str(tmp_path / "sandbox.sqlite3")
    first = sandbox_factory(db=path, scale=5, clock_start=START)
    rows = _dump(first)
    first.close()
    second = sandbox_factory(db=path, scale=5, clock_start=START)
    assert _dump(second) == rows
