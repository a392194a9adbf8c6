"""Pagination, ordering, every filter kind, modifiedSince semantics and time zones."""

from __future__ import annotations

from datetime import datetime

import pytest
from precoro_sandbox.testing import START, all_rows, client

# --- pagination ----------------------------------------------------------------------


def test_has_next_page_walk_returns_every_record_once(sandbox, api):
    expected = sandbox.admin.stats()["items"]
    seen = []
    page = 1
    while True:
        body = api.get(f"{sandbox.url}/items", params={"page": page, "per_page": 50}).json()
        assert set(body["meta"]["pagination"]) == {"has_next_page"}
        seen.extend(row["id"] for row in body["data"])
        if not body["meta"]["pagination"]["has_next_page"]:
            break
        assert len(body["data"]) == 50
        page += 1
    assert len(seen) == len(set(seen)) == expected
    beyond = api.get(f"{sandbox.url}/items", params={"page": page + 5}).json()
    assert beyond["data"] == []
    assert beyond["meta"]["pagination"]["has_next_page"] is False


def test_default_page_size_is_a_setting(sandbox, api):
    assert len(api.get(f"{sandbox.url}/items").json()["data"]) == 20
    sandbox.admin.set_settings(page_size=50)
    assert len(api.get(f"{sandbox.url}/items").json()["data"]) == 50


def test_legacy_pagination_adds_totals(sandbox, api):
    sandbox.admin.set_settings(pagination="legacy")
    total = sandbox.admin.stats()["items"]
    body = api.get(f"{sandbox.url}/items", params={"page": 2, "per_page": 10}).json()
    assert body["meta"]["pagination"] == {
        "total": total,
        "count": 10,
        "per_page": 10,
        "current_page": 2,
        "total_pages": -(-total // 10),
        "has_next_page": True,
    }


@pytest.mark.parametrize("per_page", ["5", "25", "500", "abc", "0"])
def test_per_page_outside_allowed_values_is_400(sandbox, api, per_page):
    response = api.get(f"{sandbox.url}/suppliers", params={"per_page": per_page})
    assert response.status_code == 400
    assert set(response.json()["errors"]["errors"]) == {"per_page"}


@pytest.mark.parametrize("per_page", [10, 20, 50, 100, 200])
def test_allowed_per_page_values(sandbox, api, per_page):
    rows = api.get(f"{sandbox.url}/items", params={"per_page": per_page}).json()["data"]
    assert len(rows) == min(per_page, sandbox.admin.stats()["items"])


def test_bad_page_is_400(sandbox, api):
    response = api.get(f"{sandbox.url}/suppliers", params={"page": "0"})
    assert response.status_code == 400
    assert "page" in response.json()["errors"]["errors"]


# --- ordering ------------------------------------------------------------------------


def _ids(api, url, **params):
    return [r["id"] for r in all_rows(api, url, **params)]


def test_order_id_ascending_by_default(sandbox, api):
    ids = _ids(api, f"{sandbox.url}/items")
    assert ids == sorted(ids)


def test_order_updated_desc(sandbox, api):
    sandbox.admin.set_settings(order="updated_desc")
    rows = all_rows(api, f"{sandbox.url}/items")
    stamps = [datetime.fromisoformat(r["updateDate"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)


def test_order_shuffle_is_stable_and_seeded(sandbox_factory):
    first = sandbox_factory(order="shuffle", seed=7)
    second = sandbox_factory(order="shuffle", seed=7)
    ids_a = _ids(client(first), f"{first.url}/items")
    assert ids_a != sorted(ids_a)
    assert ids_a == _ids(client(first), f"{first.url}/items")
    assert ids_a == _ids(client(second), f"{second.url}/items")


# --- filters -------------------------------------------------------------------------


def test_in_filter_status(sandbox, api):
    every = all_rows(api, f"{sandbox.url}/purchaseorders")
    approved = all_rows(api, f"{sandbox.url}/purchaseorders", **{"status[]": 2})
    assert approved
    assert all(r["status"] == 2 for r in approved)
    assert len(approved) == sum(r["status"] == 2 for r in every)
    two = all_rows(api, f"{sandbox.url}/purchaseorders", **{"status[]": [1, 2]})
    assert len(two) == sum(r["status"] in (1, 2) for r in every)


def test_invoices_logic_type_filter_gives_credit_notes(sandbox, api):
    every = all_rows(api, f"{sandbox.url}/invoices")
    notes = all_rows(api, f"{sandbox.url}/invoices", **{"logicType[]": [1, 5]})
    assert notes
    assert all(r["logicType"] in (1, 5) for r in notes)
    assert len(notes) == sum(r["logicType"] in (1, 5) for r in every)


def test_eq_filter_id(sandbox, api):
    invoice = api.get(f"{sandbox.url}/invoices").json()["data"][3]
    rows = api.get(f"{sandbox.url}/invoices", params={"id": invoice["id"]}).json()["data"]
    assert [r["idn"] for r in rows] == [invoice["idn"]]
    assert api.get(f"{sandbox.url}/invoices", params={"id": "x"}).status_code == 400


def test_in_filter_supplier_on_items(sandbox, api):
    item = next(r for r in all_rows(api, f"{sandbox.url}/items") if r["supplier"])
    supplier_id = item["supplier"]["id"]
    rows = all_rows(api, f"{sandbox.url}/items", **{"supplier[]": supplier_id})
    assert rows
    assert all(r["supplier"]["id"] == supplier_id for r in rows)


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("true", True), ("0", False), ("false", False)]
)
def test_bool_filter_enable(sandbox, api, raw, expected):
    every = all_rows(api, f"{sandbox.url}/suppliers")
    rows = all_rows(api, f"{sandbox.url}/suppliers", enable=raw)
    assert rows
    assert all(r["enable"] is expected for r in rows)
    assert len(rows) == sum(r["enable"] is expected for r in every)


def test_bool_filter_rejects_garbage(sandbox, api):
    assert api.get(f"{sandbox.url}/suppliers", params={"enable": "yes"}).status_code == 400


@pytest.mark.parametrize(
    ("path", "param"), [("/suppliers", "externalIntegrated"), ("/invoices", "sent_to_external")]
)
def test_has_filters_on_external_id(sandbox, api, path, param):
    every = all_rows(api, sandbox.url + path)
    unlinked = all_rows(api, sandbox.url + path, **{param: 0})
    linked = all_rows(api, sandbox.url + path, **{param: 1})
    assert unlinked
    assert linked
    assert all(r["externalId"] is None for r in unlinked)
    assert all(r["externalId"] is not None for r in linked)
    assert len(unlinked) + len(linked) == len(every)


def test_external_id_filter_and_its_200_limit(sandbox, api):
    linked = all_rows(api, f"{sandbox.url}/suppliers", externalIntegrated=1)
    wanted = [r["externalId"] for r in linked[:3]]
    rows = api.get(f"{sandbox.url}/suppliers", params={"external_id[]": [*wanted, "nope"]}).json()[
        "data"
    ]
    assert sorted(r["externalId"] for r in rows) == sorted(wanted)
    ok = api.get(f"{sandbox.url}/suppliers", params={"external_id[]": [str(i) for i in range(200)]})
    assert ok.status_code == 200
    too_many = api.get(
        f"{sandbox.url}/suppliers", params={"external_id[]": [str(i) for i in range(201)]}
    )
    assert too_many.status_code == 400
    assert "external_id[]" in too_many.json()["errors"]["errors"]


def test_approval_date_ranges_both_spellings(sandbox, api):
    rows = [r for r in all_rows(api, f"{sandbox.url}/purchaseorders") if r["approvalDate"]]
    day = datetime.fromisoformat(rows[0]["approvalDate"]).date()
    dotted = day.strftime("%d.%m.%Y")
    same_day = all_rows(
        api,
        f"{sandbox.url}/purchaseorders",
        **{"approvalDate[left_date]": dotted, "approvalDate[right_date]": dotted},
    )
    assert rows[0]["id"] in {r["id"] for r in same_day}
    assert all(datetime.fromisoformat(r["approvalDate"]).date() == day for r in same_day)
    exact = rows[0]["approvalDate"][:19]
    iso = all_rows(
        api, f"{sandbox.url}/purchaseorders", approvalLeftDate=exact, approvalRightDate=exact
    )
    assert rows[0]["id"] in {r["id"] for r in iso}
    after = all_rows(api, f"{sandbox.url}/purchaseorders", approvalLeftDate=exact)
    assert all(r["approvalDate"][:19] >= exact for r in after)
    bad = api.get(f"{sandbox.url}/purchaseorders", params={"approvalDate[left_date]": "2024-01-01"})
    assert bad.status_code == 400


def test_create_date_range(sandbox, api):
    rows = all_rows(api, f"{sandbox.url}/invoices")
    day = datetime.fromisoformat(rows[0]["createDate"]).date().strftime("%d.%m.%Y")
    hits = all_rows(
        api,
        f"{sandbox.url}/invoices",
        **{"createDate[left_date]": day, "createDate[right_date]": day},
    )
    assert rows[0]["id"] in {r["id"] for r in hits}


def test_unknown_and_undeclared_params_are_ignored(sandbox, api):
    every = len(all_rows(api, f"{sandbox.url}/taxes"))
    assert len(all_rows(api, f"{sandbox.url}/taxes", foo="bar")) == every
    # taxes are not incremental: modifiedSince is silently ignored there
    future = "2099-01-01T00:00:00"
    assert len(all_rows(api, f"{sandbox.url}/taxes", modifiedSince=future)) == every
    assert all_rows(api, f"{sandbox.url}/suppliers", modifiedSince=future) == []


# --- modifiedSince -------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["2024-01-01", "2024-01-01 00:00:00", "2024-1-1T00:00:00", "yesterday", "2024-01-01T00:00:00Z"],
)
def test_strict_modified_since_refuses_all_but_the_documented_form(sandbox_factory, bad):
    sb = sandbox_factory(modified_since="strict")
    response = client(sb).get(f"{sb.url}/suppliers", params={"modifiedSince": bad})
    assert response.status_code == 400
    assert set(response.json()["errors"]["errors"]) == {"modifiedSince"}


@pytest.mark.parametrize("bad", ["2024-1-1T00:00:00", "yesterday", "2024-13-01", "1700000000"])
def test_malformed_modified_since_is_400(sandbox, api, bad):
    response = api.get(f"{sandbox.url}/suppliers", params={"modifiedSince": bad})
    assert response.status_code == 400
    assert set(response.json()["errors"]["errors"]) == {"modifiedSince"}


@pytest.mark.parametrize(("zone", "offset"), [("UTC", "+00:00"), ("Europe/Kyiv", "+02:00")])
def test_modified_since_inclusive_in_company_zone(sandbox_factory, zone, offset):
    sb = sandbox_factory(timezone=zone, clock_start=START, clock_frozen=True)
    api = client(sb)
    supplier = api.get(f"{sb.url}/suppliers").json()["data"][4]
    sb.admin.touch("suppliers", [supplier["id"]])  # updateDate = sandbox now = START
    row = api.get(f"{sb.url}/suppliers/{supplier['id']}").json()
    assert row["updateDate"].endswith(offset)
    local = row["updateDate"][:19]  # the same instant, written in the company zone
    hits = {r["id"] for r in all_rows(api, f"{sb.url}/suppliers", modifiedSince=local)}
    assert supplier["id"] in hits  # inclusive
    one_later = local[:-2] + f"{int(local[-2:]) + 1:02d}"
    later = {r["id"] for r in all_rows(api, f"{sb.url}/suppliers", modifiedSince=one_later)}
    assert supplier["id"] not in later
    if zone != "UTC":
        # the UTC spelling of the same instant is two hours earlier in Kyiv: it matches more
        utc_text = START.strftime("%Y-%m-%dT%H:%M:%S")
        assert supplier["id"] in {
            r["id"] for r in all_rows(api, f"{sb.url}/suppliers", modifiedSince=utc_text)
        }
        assert local != utc_text


def test_date_style_naive(sandbox, api):
    sandbox.admin.set_settings(date_style="naive", timezone="Europe/Kyiv")
    row = api.get(f"{sandbox.url}/suppliers").json()["data"][0]
    assert len(row["updateDate"]) == 19
    assert "+" not in row["updateDate"]
