"""`meltano run tap-precoro target-erp-postgres`: the ERP on a real PostgreSQL database
(meltanolabs-target-postgres), where documents' lines become rows a finance user can
query through the views of docs/erp-postgres.sql."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from meltano_project import MELTANO, ROOT, Project
from pg_server import Postgres

VIEWS = ROOT / "docs" / "erp-postgres.sql"


@pytest.fixture(scope="module")
def target_postgres(meltano_installed: Path) -> None:
    """target-postgres is installed by `make install`; a tree installed before it was
    added to meltano.yml gets it here (about a second from the package cache)."""
    if not (ROOT / ".meltano" / "loaders" / "target-postgres" / "venv").exists():
        subprocess.run(
            [str(MELTANO), "--log-level=warning", "install", "loader", "target-postgres"],
            cwd=ROOT,
            check=True,
            timeout=600,
        )


def erp_query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def erp_counts(url: str) -> dict[str, int]:
    """Rows per table of the `precoro` schema."""
    tables = erp_query(
        url,
        "select table_name from information_schema.tables"
        " where table_schema = 'precoro' and table_type = 'BASE TABLE'",
    )
    return {t: erp_query(url, f'select count(*) from precoro."{t}"')[0][0] for (t,) in tables}


TABLES = {
    "purchaseorders": "purchase order",
    "invoices": "invoice",
    "receipts": "receipt",
    "expenses": "expense",
}
CREDIT_NOTE = '"logicType" in (1, 5)'


def document_keys(erp: str) -> set[tuple[str, int]]:
    """(document_type, id) of every stored document with lines."""
    keys: set[tuple[str, int]] = set()
    for table, kind in TABLES.items():
        for doc_id, credit in erp_query(
            erp,
            f"select id, {CREDIT_NOTE if table == 'invoices' else 'false'} from precoro.{table}"
            " where items is not null and items <> '[]'",
        ):
            keys.add(("credit note" if credit else kind, doc_id))
    return keys


def lines_of(erp: str, document_type: str, idn: str) -> list[tuple[Any, ...]]:
    return erp_query(
        erp,
        "select line_number, line_id, item_sku, description, quantity, unit_price, line_total,"
        " currency, supplier_name from precoro.document_lines"
        f" where document_type = '{document_type}' and document_idn = '{idn}'"
        " order by line_number",
    )


def lines_in_precoro(stored: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The same columns, from the sandbox's stored record (numbers exact, as numeric)."""
    return [
        (
            n,
            line["id"],
            (line["item"] or {}).get("sku"),
            line["name"],
            Decimal(str(line["quantity"])),
            Decimal(str(line["price"])),
            Decimal(str(line["sum"])),
            line["currency"],
            (stored["supplier"] or {}).get("name"),
        )
        for n, line in enumerate(stored["items"], start=1)
    ]


def test_documents_lines_land_as_rows_in_postgres(
    project: Project, postgres: Postgres, target_postgres: None
) -> None:
    admin = project.sandbox.admin
    erp = postgres.create_database()
    project.env["TARGET_ERP_POSTGRES_SQLALCHEMY_URL"] = erp.replace(
        "postgresql://", "postgresql+psycopg://", 1
    )
    project.run("run", "tap-precoro", "target-erp-postgres")
    assert erp_counts(erp) == admin.stats()  # every record, table for table
    with psycopg.connect(erp) as conn:
        conn.execute(VIEWS.read_text())

    # Every document's lines are rows, and they add up to the document's net sum.
    per_document = erp_query(
        erp,
        "select document_type, document_id, round(sum(line_total), 2)"
        " from precoro.document_lines group by 1, 2",
    )
    assert {(kind, doc) for kind, doc, _ in per_document} == document_keys(erp)
    net = dict(erp_query(erp, f'select id, "netSum" from precoro.invoices where not {CREDIT_NOTE}'))
    assert net
    assert {doc: total for kind, doc, total in per_document if kind == "invoice"} == net
    # A document's lines as Precoro holds them.
    ((idn,),) = erp_query(erp, f"select min(idn) from precoro.invoices where not {CREDIT_NOTE}")
    assert lines_of(erp, "invoice", idn) == lines_in_precoro(admin.record("invoices", idn))

    # A later run: changed documents replace their rows (upsert), their lines follow.
    admin.advance_clock(3600)
    changes = admin.activity(12, entities=["invoices", "purchaseorders"], seed=7)
    project.run("run", "tap-precoro", "target-erp-postgres")
    assert erp_counts(erp) == admin.stats()
    for table in TABLES:
        assert erp_query(erp, f"select count(distinct id) = count(*) from precoro.{table}") == [
            (True,)
        ]
    changed = [c for c in changes if c["entity"] in {"invoices", "purchaseorders"}]
    assert changed
    for change in changed:
        stored = admin.record(change["entity"], change["idn"])
        kind = TABLES[change["entity"]]
        if change["entity"] == "invoices" and stored.get("logicType") in (1, 5):
            kind = "credit note"
        assert lines_of(erp, kind, change["idn"]) == lines_in_precoro(stored), change
