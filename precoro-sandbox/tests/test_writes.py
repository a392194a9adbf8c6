"""POST/PUT/PATCH with form encoding, validation, references, and payment rules."""

from __future__ import annotations

import pytest
from precoro_client import registry
from precoro_client.forms import encode_record
from precoro_sandbox.testing import START, all_rows, client


def test_post_supplier_form_encoded_and_readable_back(sandbox, api):
    supplier = registry.get("suppliers")
    pairs = encode_record(
        supplier,
        {
            "name": "Müller & Söhne GmbH",
            "currencies": ["EUR", "USD"],
            "externalId": "ERP-1",
            "enable": True,
        },
    )
    response = api.post(f"{sandbox.url}/suppliers", data=pairs)
    assert response.status_code == 201
    created = response.json()
    assert created["name"] == "Müller & Söhne GmbH"
    assert created["currencies"] == ["EUR", "USD"]
    assert created["externalId"] == "ERP-1"
    assert created["enable"] is True
    assert isinstance(created["id"], int)
    assert "contacts" in created  # write responses have the detail shape
    fetched = api.get(f"{sandbox.url}/suppliers/{created['id']}").json()
    assert fetched == created
    found = api.get(f"{sandbox.url}/suppliers", params={"external_id[]": "ERP-1"}).json()["data"]
    assert [r["id"] for r in found] == [created["id"]]


def test_post_item_with_supplier_reference(sandbox, api):
    supplier = api.get(f"{sandbox.url}/suppliers").json()["data"][0]
    form = {
        "sku": "COLDGLUE124",
        "name": "Coldglue 2oz",
        "freeOfCharge": "0",
        "price": "12.57",
        "supplier[id]": str(supplier["id"]),
    }
    created = api.post(f"{sandbox.url}/items", data=form).json()
    assert created["supplier"] == {"id": supplier["id"], "name": supplier["name"]}
    assert created["price"] == 12.57
    assert created["freeOfCharge"] is False


def test_put_updates_only_sent_fields_and_replaces_lists(sandbox, api):
    row = next(r for r in all_rows(api, f"{sandbox.url}/suppliers") if len(r["currencies"]) > 1)
    response = api.put(
        f"{sandbox.url}/suppliers/{row['id']}", data=[("currencies[]", "CHF"), ("city", "Zürich")]
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["currencies"] == ["CHF"]
    assert updated["city"] == "Zürich"
    assert updated["name"] == row["name"]
    assert updated["uniqueCode"] == row["uniqueCode"]
    assert updated["updateDate"] >= row["updateDate"]


def test_patch_external_id_and_log(sandbox, api):
    invoice = api.get(f"{sandbox.url}/invoices", params={"sent_to_external": 0}).json()["data"][0]
    response = api.patch(
        f"{sandbox.url}/invoices/{invoice['idn']}",
        data={"externalId": "BILL-77", "externalIntegrationLog": "exported"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["externalId"] == "BILL-77"
    assert body["externalIntegrationLog"] == "exported"
    assert (
        api.get(f"{sandbox.url}/invoices", params={"external_id[]": "BILL-77"}).json()["data"][0][
            "idn"
        ]
        == invoice["idn"]
    )
    # an empty externalId unlinks
    api.patch(f"{sandbox.url}/invoices/{invoice['idn']}", data={"externalId": ""})
    assert api.get(f"{sandbox.url}/invoices/{invoice['idn']}").json()["externalId"] is None


def test_patch_other_fields_is_400_unless_switched_on(sandbox, api):
    supplier = api.get(f"{sandbox.url}/suppliers").json()["data"][0]
    response = api.patch(f"{sandbox.url}/suppliers/{supplier['id']}", data={"name": "Renamed"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"errors": {"name": "This field was not expected."}}}
    sandbox.admin.set_settings(patch_any_field=True)
    ok = api.patch(f"{sandbox.url}/suppliers/{supplier['id']}", data={"name": "Renamed"})
    assert ok.status_code == 200
    assert ok.json()["name"] == "Renamed"


def test_patch_only_on_external_id_entities(sandbox, api):
    assert api.patch(f"{sandbox.url}/receipts/1", data={"externalId": "x"}).status_code == 405
    assert api.put(f"{sandbox.url}/purchaseorders/1", data={"externalId": "x"}).status_code == 405


def test_put_payments_refused(sandbox, api):
    payment = api.get(f"{sandbox.url}/payments").json()["data"][0]
    response = api.put(f"{sandbox.url}/payments/{payment['idn']}", data={"sumPaid": "1"})
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/json"
    assert (
        api.patch(
            f"{sandbox.url}/payments/{payment['idn']}", data={"externalId": "P-1"}
        ).status_code
        == 200
    )


def test_validation_errors_name_every_bad_field(sandbox, api):
    response = api.post(
        f"{sandbox.url}/taxes",
        data={"percent": "abc", "colour": "red", "isWithholdingTax": "maybe"},
    )
    assert response.status_code == 400
    errors = response.json()["errors"]["errors"]
    assert set(errors) == {"name", "percent", "colour", "isWithholdingTax"}
    assert errors["colour"] == "This field was not expected."
    assert errors["name"] == "This value should not be blank."


def test_validation_status_is_a_setting(sandbox, api):
    sandbox.admin.set_settings(validation_status=422)
    response = api.post(f"{sandbox.url}/taxes", data={"percent": "5"})
    assert response.status_code == 422
    assert "name" in response.json()["errors"]["errors"]


def test_reference_must_exist(sandbox, api):
    response = api.post(f"{sandbox.url}/items", data={"name": "X", "supplier[id]": "1"})
    assert response.status_code == 400
    assert set(response.json()["errors"]["errors"]) == {"supplier"}
    plain = api.post(f"{sandbox.url}/items", data={"name": "X", "supplier": "1"})
    assert set(plain.json()["errors"]["errors"]) == {"supplier"}


def test_type_checks(sandbox, api):
    for form, name in [
        ({"name": "T", "percent": "x"}, "percent"),
        ({"name": "T", "percent": "5", "isWithholdingTax": "2"}, "isWithholdingTax"),
    ]:
        assert set(api.post(f"{sandbox.url}/taxes", data=form).json()["errors"]["errors"]) == {name}
    ok = api.post(
        f"{sandbox.url}/taxes",
        data={"name": "TAX6", "value": "6", "percent": "6", "isWithholdingTax": "true"},
    )
    assert ok.status_code == 201
    assert ok.json()["isWithholdingTax"] is True
    assert ok.json()["percent"] == 6


def test_custom_field_options_post_put_and_embedding(sandbox, api):
    field = api.get(f"{sandbox.url}/itemcustomfields").json()["data"][1]
    created = api.post(
        f"{sandbox.url}/itemcustomfields/{field['id']}/options",
        data={"name": "account hotglue", "code": "80976"},
    )
    assert created.status_code == 201
    option = created.json()
    assert option["customFieldId"] == field["id"]
    embedded = api.get(f"{sandbox.url}/itemcustomfields/{field['id']}").json()["options"]["data"]
    assert option["id"] in {o["id"] for o in embedded}
    renamed = api.put(
        f"{sandbox.url}/itemcustomfields/{field['id']}/options/{option['id']}",
        data={"name": "Renamed", "parent[id]": ""},
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Renamed"
    other = api.get(f"{sandbox.url}/itemcustomfields").json()["data"][2]
    assert (
        api.get(f"{sandbox.url}/itemcustomfields/{other['id']}/options/{option['id']}").status_code
        == 404
    )
    bad_parent = api.post(
        f"{sandbox.url}/itemcustomfields/{field['id']}/options",
        data={"name": "x", "parent[id]": "5"},
    )
    assert set(bad_parent.json()["errors"]["errors"]) == {"parent"}


def test_writes_stamp_update_date_from_sandbox_clock(sandbox_factory):
    sb = sandbox_factory(clock_start=START, clock_frozen=True)
    api = client(sb)
    created = api.post(f"{sb.url}/taxes", data={"name": "T", "percent": "5"}).json()
    assert created["createDate"] == created["updateDate"] == "2026-11-23T10:00:00+00:00"
    sb.admin.advance_clock(3600)
    updated = api.put(f"{sb.url}/taxes/{created['id']}", data={"percent": "7"}).json()
    assert updated["updateDate"] == "2026-11-23T11:00:00+00:00"
    assert updated["createDate"] == created["createDate"]


# --- payments ------------------------------------------------------------------------


def _open_invoice(api, sb):
    for row in all_rows(api, f"{sb.url}/invoices"):
        if float(row["sumPaid"]) == 0 and row["sum"] > 10 and row["logicType"] == 0:
            return row
    raise AssertionError("no open invoice")


def test_payment_updates_invoice(sandbox, api):
    invoice = _open_invoice(api, sandbox)
    response = api.post(
        f"{sandbox.url}/payments",
        data={
            "invoice[id]": invoice["id"],
            "sumPaid": "1.0",
            "logicType": "0",
            "payDate": "2023-12-01T20:00:00Z",
        },
    )
    assert response.status_code == 201
    payment = response.json()
    assert payment["invoice"] == {"id": invoice["id"], "idn": invoice["idn"]}
    assert payment["idn"]
    assert payment["sumPaid"] == 1.0
    assert payment["payDate"] == "2023-12-01T20:00:00+00:00"
    after = api.get(f"{sandbox.url}/invoices/{invoice['idn']}").json()
    assert after["sumPaid"] == "1.00"
    assert after["status"] == 4
    assert payment["id"] in {p["id"] for p in after["payments"]}
    assert after["updateDate"] >= invoice["updateDate"]


def test_payment_rules(sandbox, api):
    invoice = _open_invoice(api, sandbox)
    url = f"{sandbox.url}/payments"
    base = {"invoice[id]": invoice["id"], "payDate": "2024-01-01T00:00:00Z", "logicType": "0"}
    remaining = invoice["sum"]
    too_much = api.post(url, data={**base, "sumPaid": str(remaining + 1)})
    assert too_much.status_code == 400
    message = too_much.json()["errors"]["errors"]["sumPaid"]
    assert message.startswith("The amount must be greater than 0 and not exceed ")
    assert float(message.rsplit(" ", 1)[1]) == pytest.approx(remaining)
    zero = api.post(url, data={**base, "sumPaid": "0"})
    assert "sumPaid" in zero.json()["errors"]["errors"]
    full = api.post(url, data={**base, "sumPaid": f"{remaining:.2f}"})
    assert full.status_code == 201
    paid = api.get(f"{sandbox.url}/invoices/{invoice['idn']}").json()
    assert paid["status"] == 5
    assert float(paid["sumPaid"]) == pytest.approx(remaining)
    again = api.post(url, data={**base, "sumPaid": "1"})
    assert again.json() == {"errors": {"errors": {"sumPaid": "The Invoice is already fully paid."}}}
    missing = api.post(url, data={"sumPaid": "1"})
    assert set(missing.json()["errors"]["errors"]) == {"invoice", "payDate"}
    unknown_invoice = api.post(url, data={**base, "invoice[id]": "1", "sumPaid": "1"})
    assert set(unknown_invoice.json()["errors"]["errors"]) == {"invoice"}
