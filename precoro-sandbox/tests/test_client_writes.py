"""Writes production clients make that the registry does not model (issue 13): legal
entities on suppliers, creating invoices and purchase orders, linking options to legal
entities, cancelling payments."""

from __future__ import annotations

import pytest
from precoro_client import registry
from precoro_sandbox.entities import SANDBOX_ENTITIES
from precoro_sandbox.testing import all_rows


def _legal_entities(api, sb):
    return [r["id"] for r in all_rows(api, f"{sb.url}/legalentities")]


def test_supplier_legal_entity_ids_on_post_and_put(sandbox, api):
    first, second, *_ = _legal_entities(api, sandbox)
    form = {"name": "Hotglue vendor 3", "supplierLegalEntityIds[]": [str(first), str(second)]}
    created = api.post(f"{sandbox.url}/suppliers", data=form)
    assert created.status_code == 201
    supplier_id = created.json()["id"]
    assert sandbox.admin.links("suppliers", supplier_id) == {"legalentities": [first, second]}
    # one value, as TGT sends a single legal entity; a PUT replaces the list
    updated = api.put(
        f"{sandbox.url}/suppliers/{supplier_id}", data={"supplierLegalEntityIds[]": str(second)}
    )
    assert updated.status_code == 200
    assert sandbox.admin.links("suppliers", supplier_id) == {"legalentities": [second]}


def test_unknown_legal_entity_is_refused_and_nothing_is_created(sandbox, api):
    form = {"name": "Ghost LE vendor", "supplierLegalEntityIds[]": "999"}
    response = api.post(f"{sandbox.url}/suppliers", data=form)
    assert response.status_code == 400
    assert set(response.json()["errors"]["errors"]) == {"supplierLegalEntityIds"}
    assert all_rows(api, f"{sandbox.url}/suppliers", name="Ghost LE vendor") == []


@pytest.mark.parametrize("path", ["invoices", "purchaseorders"])
def test_create_documents(sandbox, api, path):
    supplier = api.get(f"{sandbox.url}/suppliers").json()["data"][0]
    form = {
        "supplier[id]": supplier["id"],
        "currency": "EUR",
        "customName": "From the ERP",
        "sum": "119.00",
        "netSum": "100.00",
        "externalId": f"ERP-{path}-1",
    }
    response = api.post(f"{sandbox.url}/{path}", data=form)
    assert response.status_code == 201
    doc = response.json()
    assert doc["idn"]
    assert isinstance(doc["id"], int)
    assert doc["supplier"] == {"id": supplier["id"], "name": supplier["name"]}
    assert (doc["sum"], doc["netSum"], doc["status"]) == (119.0, 100.0, 2)
    assert doc["items"] == []
    assert doc["approvalSteps"] == {"data": []}
    found = all_rows(api, f"{sandbox.url}/{path}", **{"external_id[]": f"ERP-{path}-1"})
    assert [r["idn"] for r in found] == [doc["idn"]]
    assert api.get(f"{sandbox.url}/{path}/{doc['idn']}").json() == doc
    missing = api.post(f"{sandbox.url}/{path}", data={"currency": "EUR"})
    assert missing.status_code == 400
    assert set(missing.json()["errors"]["errors"]) == {"supplier"}


def test_created_invoice_can_be_paid(sandbox, api):
    supplier = api.get(f"{sandbox.url}/suppliers").json()["data"][0]
    po = api.get(f"{sandbox.url}/purchaseorders").json()["data"][0]
    form = {"supplier[id]": supplier["id"], "sum": "50", "purchaseOrder[id]": po["id"]}
    invoice = api.post(f"{sandbox.url}/invoices", data=form).json()
    assert invoice["sumPaid"] == "0.00"
    assert invoice["purchaseOrder"] == {"id": po["id"], "idn": po["idn"]}
    pay = {"invoice[id]": invoice["id"], "sumPaid": "50", "payDate": "2024-01-01T00:00:00Z"}
    assert api.post(f"{sandbox.url}/payments", data=pay).status_code == 201
    assert api.get(f"{sandbox.url}/invoices/{invoice['idn']}").json()["status"] == 5


@pytest.mark.parametrize(
    ("field_path", "options", "param"),
    [
        ("itemcustomfields", "itemcustomfieldoptions", "item_custom_field_option_id"),
        ("documentcustomfields", "documentcustomfieldoptions", "document_custom_field_option_id"),
    ],
)
def test_depend_add_links_an_option_to_legal_entities(sandbox, api, field_path, options, param):
    first, second, third, *_ = _legal_entities(api, sandbox)
    field = api.get(f"{sandbox.url}/{field_path}").json()["data"][0]
    option = api.get(f"{sandbox.url}/{field_path}/{field['id']}/options").json()["data"][0]
    url = f"{sandbox.url}/{field_path}/options/depend_add"
    one = api.patch(
        url, data={param: str(option["id"]), "depend_type": "1", "entity_ids": str(first)}
    )
    assert one.status_code == 200
    assert one.json()["id"] == option["id"]
    many = {param: str(option["id"]), "depend_type": "1", "entity_ids": f"[{second}, {third}]"}
    assert api.patch(url, data=many).status_code == 200
    assert sandbox.admin.links(options, option["id"]) == {"legalentities": [first, second, third]}
    bad = api.patch(url, data={param: str(option["id"]), "depend_type": "1", "entity_ids": "999"})
    assert bad.status_code == 400
    assert set(bad.json()["errors"]["errors"]) == {"entity_ids"}
    unknown = api.patch(url, data={param: "1", "depend_type": "1", "entity_ids": str(first)})
    assert set(unknown.json()["errors"]["errors"]) == {param}
    assert api.get(url).status_code == 405


def test_cancel_payment_takes_it_off_its_invoice(sandbox, api):
    rows = all_rows(api, f"{sandbox.url}/invoices", **{"status[]": "2", "logicType[]": "0"})
    invoice = next(r for r in rows if float(r["sumPaid"]) == 0 and r["sum"] > 10)
    pay = {"invoice[id]": invoice["id"], "sumPaid": "10", "payDate": "2024-01-01T00:00:00Z"}
    payment = api.post(f"{sandbox.url}/payments", data=pay).json()
    assert api.get(f"{sandbox.url}/invoices/{invoice['idn']}").json()["status"] == 4
    sandbox.admin.reset_counters()
    canceled = api.post(f"{sandbox.url}/payments/{payment['idn']}/cancel")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == 8
    after = api.get(f"{sandbox.url}/invoices/{invoice['idn']}").json()
    assert (after["sumPaid"], after["status"]) == ("0.00", 2)
    assert payment["id"] not in {p["id"] for p in after["payments"]}
    again = api.post(f"{sandbox.url}/payments/{payment['idn']}/cancel")
    assert again.status_code == 200  # a retried cancel changes nothing
    assert api.get(f"{sandbox.url}/invoices/{invoice['idn']}").json()["sumPaid"] == "0.00"
    assert sandbox.admin.counters().get("POST", "/payments/{idn}/cancel", 200) == 2
    assert api.post(f"{sandbox.url}/payments/999999/cancel").status_code == 404


def test_sandbox_only_writes_do_not_duplicate_the_registry():
    """Once the registry models a write, the sandbox's stand-in must go (one home)."""
    for name, entry in SANDBOX_ENTITIES.items():
        entity = registry.get(name)
        if entry.create_fields:
            assert not entity.creatable, f"{name}: the registry now says POST; drop create_fields"
            for field in entry.create_fields:
                entity.field(field)
        writable = {spec.name for spec in entity.writable_fields}
        for spec, target in entry.write_only:
            assert spec.name not in writable
            assert target in SANDBOX_ENTITIES
