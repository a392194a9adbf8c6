"""List orders and the changes a test can make while a client pages."""

from __future__ import annotations

from datetime import datetime

import pytest
from precoro_sandbox.testing import all_rows, client


def _rows(sb, path, **params):
    return all_rows(client(sb), f"{sb.url}/{path}", **params)


@pytest.mark.parametrize(
    ("order", "key", "reverse"),
    [
        ("id", "id", False),
        ("id_desc", "id", True),
        ("updated_asc", "updateDate", False),
        ("updated_desc", "updateDate", True),
        ("created", "createDate", False),
    ],
)
def test_each_order_sorts_by_its_key(sandbox, order, key, reverse):
    sandbox.admin.set_settings(order=order)
    rows = _rows(sandbox, "suppliers")
    values = [datetime.fromisoformat(r[key]) if key != "id" else r["id"] for r in rows]
    assert values == sorted(values, reverse=reverse)


def _page(sb, path, page, per_page=10, **params):
    response = client(sb).get(
        f"{sb.url}/{path}", params={"page": page, "per_page": per_page, **params}, timeout=10
    )
    response.raise_for_status()
    return response.json()["data"]


def test_an_edit_after_page_one_moves_the_row_to_the_end_under_updated_asc(sandbox):
    sandbox.admin.set_settings(order="updated_asc")
    before = [r["id"] for r in _rows(sandbox, "suppliers")]
    sandbox.admin.set_paging_mutations([{"entity": "suppliers", "after_page": 1, "row": 2}])
    first = _page(sandbox, "suppliers", 1)
    second = _page(sandbox, "suppliers", 2)
    fired = sandbox.admin.paging_mutations()["fired"]
    assert [f["id"] for f in fired] == [first[2]["id"]]
    # Everything behind the edited row shifted one place: before[10] is on neither page.
    assert [r["id"] for r in second] == before[11:21]
    assert _rows(sandbox, "suppliers")[-1]["id"] == first[2]["id"]


@pytest.mark.parametrize(
    ("action", "params", "field", "value"),
    [
        ("disable", {"enable": 1}, "enable", False),
        ("status", {"status[]": 2}, "status", 3),
    ],
)
def test_a_row_leaving_a_filtered_result_shifts_the_rows_behind_it(
    sandbox, action, params, field, value
):
    path = "suppliers" if action == "disable" else "purchaseorders"
    before = [r["id"] for r in _rows(sandbox, path, **params)]
    rule = {"entity": path, "after_page": 1, "row": 0, "action": action}
    if action == "status":
        rule["status"] = 3
    sandbox.admin.set_paging_mutations([rule])
    first = _page(sandbox, path, 1, **params)
    second = _page(sandbox, path, 2, **params)
    assert [r["id"] for r in second] == before[11:21]
    record = sandbox.admin.record(path, str(first[0]["id" if path == "suppliers" else "idn"]))
    assert record[field] == value


def test_an_insert_after_a_page_adds_a_record(sandbox):
    count = len(_rows(sandbox, "suppliers"))
    sandbox.admin.set_paging_mutations(
        [{"entity": "suppliers", "after_page": 1, "action": "insert"}]
    )
    _page(sandbox, "suppliers", 1)
    assert len(_rows(sandbox, "suppliers")) == count + 1


def test_a_bad_plan_is_refused_naming_the_field(sandbox):
    from precoro_sandbox.admin_client import AdminError

    with pytest.raises(AdminError, match="after_page"):
        sandbox.admin.set_paging_mutations([{"entity": "suppliers", "after_page": 0}])
