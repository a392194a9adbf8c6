"""The sandbox serves every field production clients declare, where they read it.

`fixtures/precoro-api/fields-declared-by-production-clients.json` (a fact from outside
this project, see its README) names, per endpoint, the fields the production tap's
schemas declare that the sandbox once left out. Each must now be in every record the
endpoint serves (list rows for a list endpoint, the bare record for a detail).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from precoro_client import registry
from precoro_sandbox.server import SandboxServer
from precoro_sandbox.testing import all_rows

FIXTURE = (
    Path(__file__).parent
    / "fixtures"
    / "precoro-api"
    / "fields-declared-by-production-clients.json"
)
DECLARED: dict[str, list[str]] = json.loads(FIXTURE.read_text(encoding="utf-8"))["endpoints"]

NOT_SERVED = {"GET /items (list)": {"category"}}
"""Declared names the sandbox deliberately leaves out: Precoro removed the item
`category` object from every response (H-CAT, docs/precoro-api.md); the production tap
still declares it from before."""

ENDPOINT = re.compile(r"GET /(\w+)(?:/\{\w+\})? \((list|detail|credit note detail)\)")


def _records(sb: SandboxServer, api: requests.Session, endpoint: str) -> list[dict[str, Any]]:
    match = ENDPOINT.fullmatch(endpoint)
    assert match, endpoint
    path, kind = match.groups()
    entity = registry.get("creditnotes" if kind == "credit note detail" else path)
    params: dict[str, list[str]] = {}
    for key, value in entity.base_params:
        params.setdefault(key, []).append(value)
    url = sb.url + entity.list_path()
    rows = all_rows(api, url, **params)
    if kind == "list":
        return rows
    if entity.name == "invoices":
        rows = [row for row in rows if row["logicType"] == 0]
    return [api.get(f"{url}/{row[entity.key]}").json() for row in rows]


@pytest.mark.parametrize("endpoint", sorted(DECLARED))
def test_every_declared_field_is_served(sandbox, api, endpoint):
    wanted = set(DECLARED[endpoint]) - NOT_SERVED.get(endpoint, set())
    records = _records(sandbox, api, endpoint)
    assert records, f"nothing served at {endpoint}"
    for record in records:
        missing = wanted - set(record)
        assert not missing, f"{endpoint} record {record['id']} lacks {sorted(missing)}"


def test_supplier_list_rows_carry_what_the_production_tap_reads_from_them(sandbox, api):
    rows = all_rows(api, f"{sandbox.url}/suppliers")
    assert any(row["contacts"]["data"] for row in rows)
    assert any(row["paymentTerms"]["data"] for row in rows)
    assert all(isinstance(row["attachments"], list) for row in rows)


def test_created_suppliers_carry_the_declared_fields_too(sandbox, api):
    created = api.post(f"{sandbox.url}/suppliers", data={"name": "Fresh Supplier Ltd"})
    assert created.status_code in (200, 201), created.text
    row = next(
        r for r in all_rows(api, f"{sandbox.url}/suppliers") if r["id"] == created.json()["id"]
    )
    assert set(DECLARED["GET /suppliers (list)"]) <= set(row)
    assert row["accountHolderName"] == "Fresh Supplier Ltd"
    assert row["approvalSteps"] == {"data": []}
    assert row["isAllAccessLegalEntity"] is True
