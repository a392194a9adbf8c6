"""Where Precoro is silent, the sandbox reads it permissively and offers the strict reading
as a switch (issue 13): modifiedSince formats, response-field filters, uniqueCode, payment
errors, the default page size."""

from __future__ import annotations

import pytest
from precoro_client.registry import PAGE_SIZES
from precoro_sandbox.testing import START, all_rows, client

# --- modifiedSince -------------------------------------------------------------------


@pytest.fixture
def kyiv(sandbox_factory):
    """A Kyiv company with one supplier touched at START (10:00 UTC, 12:00 Kyiv); every
    other record predates START's midnight."""
    sb = sandbox_factory(timezone="Europe/Kyiv", clock_start=START, clock_frozen=True)
    api = client(sb)
    supplier = api.get(f"{sb.url}/suppliers").json()["data"][3]
    sb.admin.touch("suppliers", [supplier["id"]])
    return sb, api, supplier["id"]


@pytest.mark.parametrize(
    ("since", "included"),
    [
        ("2026-11-23T10:00:00Z", True),  # Z converts
        ("2026-11-23T10:00:01Z", False),
        ("2026-11-23T10:00:00+00:00", True),  # an offset converts
        ("2026-11-23T12:00:00+02:00", True),
        ("2026-11-23T12:00:01+02:00", False),
        ("2026-11-23T09:00:00.500-01:00", False),  # fractional: 10:00:00.5 UTC
        ("2026-11-23T12:00:00", True),  # no offset: company zone (Kyiv)
        ("2026-11-23T12:00:01", False),
        ("2026-11-23", True),  # a bare date: midnight in the company zone
        ("2026-11-24", False),
    ],
)
def test_modified_since_accepts_offsets_and_dates(kyiv, since, included):
    sb, api, supplier_id = kyiv
    rows = all_rows(api, f"{sb.url}/suppliers", modifiedSince=since)
    assert [r["id"] for r in rows] == ([supplier_id] if included else [])


def test_modified_since_with_an_unencoded_plus(kyiv):
    sb, api, supplier_id = kyiv
    raw = f"{sb.url}/suppliers?per_page=200&modifiedSince=2026-11-23T10:00:00+00:00"
    response = api.get(raw)
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["data"]] == [supplier_id]


@pytest.mark.parametrize(
    "since", ["2026-11-23T10:00:00Z", "2026-11-23", "2026-11-23T12:00:00+02:00"]
)
def test_strict_modified_since_switch(kyiv, since):
    sb, api, _ = kyiv
    sb.admin.set_settings(modified_since="strict")
    response = api.get(f"{sb.url}/suppliers", params={"modifiedSince": since})
    assert response.status_code == 400
    assert set(response.json()["errors"]["errors"]) == {"modifiedSince"}
    assert api.get(f"{sb.url}/suppliers", params={"modifiedSince": since[:10] + "T00:00:00"}).ok


# --- filters on response fields ------------------------------------------------------


def test_equality_filters_on_response_fields(sandbox, api):
    everything = all_rows(api, f"{sandbox.url}/suppliers")
    country = everything[0]["country"]
    by_country = all_rows(api, f"{sandbox.url}/suppliers", country=country)
    assert by_country == [r for r in everything if r["country"] == country]
    assert 0 < len(by_country) < len(everything)
    target = everything[5]
    for field in ("name", "uniqueCode"):
        found = all_rows(api, f"{sandbox.url}/suppliers", **{field: target[field]})
        assert [r["id"] for r in found] == [target["id"]]
    status_plain = all_rows(api, f"{sandbox.url}/suppliers", status="2")
    assert status_plain == all_rows(api, f"{sandbox.url}/suppliers", **{"status[]": "2"})
    assert {r["status"] for r in status_plain} == {2}
    two = [everything[1]["name"], everything[2]["name"]]
    found = all_rows(api, f"{sandbox.url}/suppliers", **{"name[]": two})
    assert [r["id"] for r in found] == [everything[1]["id"], everything[2]["id"]]


def test_boolean_and_number_response_field_filters(sandbox, api):
    items = all_rows(api, f"{sandbox.url}/items")
    hidden = all_rows(api, f"{sandbox.url}/items", hiddenInCatalog="true")
    assert hidden == [r for r in items if r["hiddenInCatalog"] is True]
    price = items[0]["price"]
    assert items[0] in all_rows(api, f"{sandbox.url}/items", price=str(price))
    bad = api.get(f"{sandbox.url}/suppliers", params={"status": "approved"})
    assert bad.status_code == 400
    assert set(bad.json()["errors"]["errors"]) == {"status"}


def test_unknown_filters_are_ignored_by_default_and_refused_by_switch(sandbox, api):
    url = f"{sandbox.url}/purchaseorders"
    every = all_rows(api, url)
    assert all_rows(api, url, sent_to_external="0") == every  # not a PO filter or field
    sandbox.admin.set_settings(unknown_filters="reject")
    refused = api.get(url, params={"sent_to_external": "0"})
    assert refused.status_code == 400
    assert set(refused.json()["errors"]["errors"]) == {"sent_to_external"}
    # undeclared-but-documented elsewhere: modifiedSince on a non-incremental entity
    taxes = api.get(f"{sandbox.url}/taxes", params={"modifiedSince": "2024-01-01T00:00:00"})
    assert taxes.status_code == 400
    # declared filters, response fields and paging still work
    assert all_rows(api, url, **{"status[]": "2"}) == [r for r in every if r["status"] == 2]
    assert all_rows(api, url, currency=every[0]["currency"])


# --- uniqueCode, payment messages ----------------------------------------------------


def _suppliers_with_code(api, sb, code):
    return all_rows(api, f"{sb.url}/suppliers", uniqueCode=code)


def test_duplicate_unique_code_is_accepted_by_default(sandbox, api):
    code = api.get(f"{sandbox.url}/suppliers").json()["data"][0]["uniqueCode"]
    response = api.post(f"{sandbox.url}/suppliers", data={"name": "Twin", "uniqueCode": code})
    assert response.status_code == 201
    assert len(_suppliers_with_code(api, sandbox, code)) == 2


def test_unique_code_switch_refuses_duplicates_on_post_and_put(sandbox, api):
    sandbox.admin.set_settings(unique_supplier_code=True)
    first, second = api.get(f"{sandbox.url}/suppliers").json()["data"][:2]
    code = first["uniqueCode"]
    response = api.post(f"{sandbox.url}/suppliers", data={"name": "Twin", "uniqueCode": code})
    assert response.status_code == 400
    assert response.json() == {"errors": {"errors": {"uniqueCode": "This value is already used."}}}
    moved = api.put(f"{sandbox.url}/suppliers/{second['id']}", data={"uniqueCode": code})
    assert moved.status_code == 400
    assert [r["id"] for r in _suppliers_with_code(api, sandbox, code)] == [first["id"]]
    same = api.put(f"{sandbox.url}/suppliers/{first['id']}", data={"uniqueCode": code})
    assert same.status_code == 200
    fresh = api.post(f"{sandbox.url}/suppliers", data={"name": "New", "uniqueCode": "NEW-1"})
    assert fresh.status_code == 201


def _paid_invoice(api, sb):
    rows = all_rows(api, f"{sb.url}/invoices", **{"status[]": "5"})
    return next(r for r in rows if r["logicType"] == 0)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("already_paid", "The Invoice is already fully paid."),
        ("not_exceed", "The amount must be greater than 0 and not exceed 0"),
    ],
)
def test_fully_paid_invoice_message_switch(sandbox, api, setting, message):
    sandbox.admin.set_settings(fully_paid_error=setting)
    invoice = _paid_invoice(api, sandbox)
    form = {"invoice[id]": invoice["id"], "sumPaid": "1", "payDate": "2024-01-01T00:00:00Z"}
    response = api.post(f"{sandbox.url}/payments", data=form)
    assert response.status_code == 400
    assert response.json() == {"errors": {"errors": {"sumPaid": message}}}


@pytest.mark.parametrize("amount", ["0", "-5"])
def test_payment_amount_must_be_positive(sandbox, api, amount):
    rows = all_rows(api, f"{sandbox.url}/invoices", **{"status[]": "2", "logicType[]": "0"})
    invoice = next(r for r in rows if float(r["sumPaid"]) == 0 and r["sum"] > 0)
    form = {"invoice[id]": invoice["id"], "sumPaid": amount, "payDate": "2024-01-01T00:00:00Z"}
    response = api.post(f"{sandbox.url}/payments", data=form)
    message = response.json()["errors"]["errors"]["sumPaid"]
    assert message.startswith("The amount must be greater than 0 and not exceed ")
    assert api.get(f"{sandbox.url}/invoices/{invoice['idn']}").json()["sumPaid"] == "0.00"


# --- the default page size -----------------------------------------------------------


@pytest.mark.parametrize("default", PAGE_SIZES)
def test_a_client_sending_per_page_costs_the_same_under_any_default(sandbox, api, default):
    sandbox.admin.set_settings(page_size=default)
    sandbox.admin.reset_counters()
    rows = all_rows(api, f"{sandbox.url}/items")  # sends per_page=200
    pages = -(-len(rows) // 200) + (len(rows) % 200 == 0)
    assert sandbox.admin.counters().get("GET", "/items") == pages
    assert len(api.get(f"{sandbox.url}/items").json()["data"]) == min(default, len(rows))


# --- externalId as a number ----------------------------------------------------------


def test_numeric_external_ids_switch(sandbox, api):
    """Text by default; with the switch an all-digit id comes as a number everywhere it is
    served (list, detail, write answers, nested copies), still found by `external_id[]`."""
    url = f"{sandbox.url}/suppliers"
    first, second = api.get(url).json()["data"][:2]
    assert api.patch(f"{url}/{first['id']}", data={"externalId": "4711"}).status_code == 200
    assert api.patch(f"{url}/{second['id']}", data={"externalId": "00815"}).status_code == 200
    assert api.get(f"{url}/{first['id']}").json()["externalId"] == "4711"

    sandbox.admin.set_settings(numeric_external_ids=True)
    assert api.get(f"{url}/{first['id']}").json()["externalId"] == 4711
    found = api.get(url, params={"external_id[]": "4711"}).json()["data"]
    assert [(row["id"], row["externalId"]) for row in found] == [(first["id"], 4711)]
    # A leading zero has no exact number: it stays text.
    assert api.get(f"{url}/{second['id']}").json()["externalId"] == "00815"
    answer = api.patch(f"{url}/{first['id']}", data={"externalId": "4712"}).json()
    assert answer["externalId"] == 4712
    text_ids = [row for row in all_rows(api, url) if isinstance(row["externalId"], str)]
    assert text_ids, "ids such as V-00002 stay text"
    assert all(not row["externalId"].isdigit() or row["externalId"][0] == "0" for row in text_ids)

    sandbox.admin.set_settings(numeric_external_ids=False)
    assert api.get(f"{url}/{first['id']}").json()["externalId"] == "4712"
