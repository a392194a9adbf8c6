"""Auth, company isolation, and every registry-generated list/detail route."""

from __future__ import annotations

import pytest
import requests
from precoro_client import registry
from precoro_sandbox.testing import all_rows, client

STORED = list(registry.stored_collections())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-AUTH-TOKEN": "sandbox-token"},
        {"email": "sandbox@example.com"},
        {"X-AUTH-TOKEN": "wrong", "email": "sandbox@example.com"},
        {"X-AUTH-TOKEN": "sandbox-token", "email": "someone@example.com"},
    ],
)
def test_missing_or_wrong_credentials_get_401_json(sandbox, headers):
    response = requests.get(f"{sandbox.url}/suppliers", headers=headers)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"error": "Invalid credentials", "code": 401}


def test_email_header_is_case_insensitive_in_value(sandbox):
    headers = {"X-AUTH-TOKEN": sandbox.token, "email": sandbox.email.upper()}
    assert requests.get(f"{sandbox.url}/taxes", headers=headers).status_code == 200


def test_companies_are_isolated(sandbox_factory):
    sb = sandbox_factory(companies=2)
    one, two = client(sb, 1), client(sb, 2)
    ids_one = {r["id"] for r in all_rows(one, f"{sb.url}/suppliers")}
    ids_two = {r["id"] for r in all_rows(two, f"{sb.url}/suppliers")}
    assert ids_one
    assert ids_two
    assert not ids_one & ids_two
    some_id = next(iter(ids_one))
    assert one.get(f"{sb.url}/suppliers/{some_id}").status_code == 200
    assert two.get(f"{sb.url}/suppliers/{some_id}").status_code == 404
    # idns are per company: the same number opens a different invoice in each company
    inv_one = one.get(f"{sb.url}/invoices/1").json()
    inv_two = two.get(f"{sb.url}/invoices/1").json()
    assert inv_one["id"] != inv_two["id"]
    # a PATCH through company 2 cannot touch company 1's records
    assert two.patch(f"{sb.url}/suppliers/{some_id}", data={"externalId": "X"}).status_code == 404


def test_admin_added_company_has_its_own_data(sandbox):
    index = sandbox.admin.add_company("second-token", "second@example.com", scale=5)
    assert index == 2
    headers = {"X-AUTH-TOKEN": "second-token", "email": "second@example.com"}
    rows = requests.get(f"{sandbox.url}/suppliers?per_page=50", headers=headers).json()["data"]
    assert len(rows) == 5


def _list_url(sb, entity, session):
    if entity.parent is None:
        return sb.url + entity.path
    parent = session.get(f"{sb.url}/{entity.parent}").json()["data"][0]
    return sb.url + entity.list_path(parent["id"])


@pytest.mark.parametrize("entity", STORED, ids=lambda e: e.name)
def test_list_and_detail_routes(sandbox, api, entity):
    url = _list_url(sandbox, entity, api)
    response = api.get(url)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "meta"}
    assert body["data"], f"{entity.name} has no generated records"
    list_names = {f.name for f in entity.list_fields}
    detail_names = {f.name for f in entity.detail_fields}
    for row in body["data"]:
        assert set(row) == list_names, entity.name
    key = body["data"][0][entity.key]
    detail = api.get(f"{url}/{key}")
    assert detail.status_code == 200
    record = detail.json()
    assert "data" not in record or entity.name.endswith("customfields") is False
    assert set(record) == list_names | detail_names
    assert record["id"] == body["data"][0]["id"]
    missing = api.get(f"{url}/999999999")
    assert missing.status_code == 404
    assert missing.json()["code"] == 404


def test_documents_are_addressed_by_idn_and_master_data_by_id(api, sandbox):
    invoice = api.get(f"{sandbox.url}/invoices").json()["data"][0]
    assert isinstance(invoice["idn"], str)
    assert api.get(f"{sandbox.url}/invoices/{invoice['idn']}").json()["id"] == invoice["id"]
    assert api.get(f"{sandbox.url}/invoices/{invoice['id']}").status_code == 404
    supplier = api.get(f"{sandbox.url}/suppliers").json()["data"][0]
    assert api.get(f"{sandbox.url}/suppliers/{supplier['id']}").json()["name"] == supplier["name"]


def test_nested_relations_are_wrapped_in_data(api, sandbox):
    field = api.get(f"{sandbox.url}/itemcustomfields").json()["data"][0]
    assert isinstance(field["options"]["data"], list)
    assert field["options"]["data"]
    item = api.get(f"{sandbox.url}/items").json()["data"][0]
    assert isinstance(item["dataItemCustomFields"]["data"], list)
    supplier = api.get(
        f"{sandbox.url}/suppliers/{item['supplier']['id'] if item['supplier'] else 0}"
    )
    if supplier.status_code == 200:
        assert isinstance(supplier.json()["contacts"]["data"], list)
    po = api.get(f"{sandbox.url}/purchaseorders/1").json()
    assert isinstance(po["approvalSteps"]["data"], list)
    assert isinstance(po["dataDocumentCustomFields"]["data"], list)


def test_options_of_an_unknown_custom_field_are_404(api, sandbox):
    assert api.get(f"{sandbox.url}/itemcustomfields/123/options").status_code == 404
    assert api.get(f"{sandbox.url}/itemcustomfields/abc/options").status_code == 404


def test_unknown_route_and_method(api, sandbox):
    assert api.get(f"{sandbox.url}/nothing-here").status_code == 404
    assert api.delete(f"{sandbox.url}/suppliers/1").status_code == 405
    assert api.post(f"{sandbox.url}/receipts", data={"x": "1"}).status_code == 405
    # credit notes are a view of /invoices, not a route of their own
    assert api.get(f"{sandbox.url}/creditnotes").status_code == 404
