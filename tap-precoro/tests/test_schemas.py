"""Every record the sandbox serves fits the tap's published schema, and reaches its output.

The sandbox carries the fields production clients declare (see `docs/precoro-api.md`,
"Record fields"), polymorphic ones included. Both checks below would miss a field the
schema leaves out (its `additionalProperties` accepts anything), so each also asserts
that every field served is declared, and that the tap emits it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import jsonschema
import pytest
import requests
from precoro_client import registry
from precoro_sandbox.server import SandboxServer
from precoro_sandbox.testing import all_rows, client
from tap_precoro.tap import TapPrecoro
from tap_precoro.testing import TapRun

Record = dict[str, Any]
ALL_STREAMS = [entity.name for entity in registry.ENTITIES]


def _checker() -> jsonschema.FormatChecker:
    """Formats checked, `date-time` included (jsonschema skips it without extra packages)."""
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def is_datetime(value: object) -> bool:
        if isinstance(value, str):
            datetime.fromisoformat(value)
        return True

    return checker


FORMATS = _checker()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SandboxServer, dict[str, list[tuple[Record, Record]]]]]:
    """A small sandbox and, per stream, every (list row, detail) it serves."""
    server = SandboxServer(scale=8, limits="off").start()
    try:
        session = client(server)
        records: dict[str, list[tuple[Record, Record]]] = {}
        for entity in registry.ENTITIES:
            records[entity.name] = list(_served(server, session, entity))
        yield server, records
    finally:
        server.close()


def _served(
    server: SandboxServer, session: requests.Session, entity: registry.Entity
) -> Iterator[tuple[Record, Record]]:
    if entity.parent is None:
        list_urls = [server.url + entity.list_path()]
    else:
        parents = all_rows(session, server.url + registry.get(entity.parent).list_path())
        list_urls = [server.url + entity.list_path(parent["id"]) for parent in parents]
    params: dict[str, list[str]] = {}
    for key, value in entity.base_params:
        params.setdefault(key, []).append(value)
    for url in list_urls:
        for row in all_rows(session, url, **params):
            response = session.get(f"{url}/{row[entity.key]}")
            assert response.status_code == 200, response.text
            yield row, response.json()


def _tap_schema(config: dict[str, Any], stream: str) -> dict[str, Any]:
    schema: dict[str, Any] = TapPrecoro(config=config, validate_config=False).streams[stream].schema
    return schema


def _errors(schema: dict[str, Any], record: Record) -> list[str]:
    validator = jsonschema.Draft7Validator(schema, format_checker=FORMATS)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(record)
    ]


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_every_served_record_validates_against_the_tap_schema(
    served: tuple[SandboxServer, dict[str, list[tuple[Record, Record]]]],
    make_config: Callable[..., dict[str, Any]],
    stream: str,
) -> None:
    server, records = served
    entity = registry.get(stream)
    schema = _tap_schema(make_config(server), stream)
    declared = set(schema["properties"])
    assert records[stream], f"the sandbox serves no {stream}"
    for row, detail in records[stream]:
        shapes = [("list row", row)]
        if entity.fetch_detail:
            shapes.append(("detail", detail))
        for shape, record in shapes:
            label = f"{stream} {shape} {record[entity.key]}"
            assert not set(record) - declared, f"{label}: undeclared fields"
            assert not _errors(schema, record), f"{label}: {_errors(schema, record)}"


def test_polymorphic_fields_are_served_in_every_shape(
    served: tuple[SandboxServer, dict[str, list[tuple[Record, Record]]]],
) -> None:
    """A small dataset already serves each shape a client must accept."""
    _, records = served
    for stream in ("suppliers", "invoices", "expenses"):
        shapes = {type(detail["approvingWay"]).__name__ for _, detail in records[stream]}
        assert shapes == {"str", "dict", "list"}, stream
    net_suite = {type(row["netSuiteId"]).__name__ for row, _ in records["suppliers"]}
    taxes = {type(row["qboId"]).__name__ for row, _ in records["taxes"]}
    assert "int" in taxes | net_suite


def test_suppliers_carry_contacts_and_terms_in_list_rows(
    served: tuple[SandboxServer, dict[str, list[tuple[Record, Record]]]],
) -> None:
    """TAP reads `contacts`, `paymentTerms` and `attachments` from list rows alone."""
    _, records = served
    for row, detail in records["suppliers"]:
        for name in ("contacts", "paymentTerms", "attachments"):
            assert row[name] == detail[name]


def test_the_tap_emits_every_served_field(
    served: tuple[SandboxServer, dict[str, list[tuple[Record, Record]]]],
    make_config: Callable[..., dict[str, Any]],
    run_tap: Callable[..., TapRun],
) -> None:
    """One full run: each record emitted is the detail the sandbox serves (lists for
    entities without details), nothing dropped as undeclared, nothing retyped."""
    server, records = served
    run = run_tap(make_config(server), streams=ALL_STREAMS)
    assert run.exit_code == 0
    for stream in ALL_STREAMS:
        entity = registry.get(stream)
        expected = {
            int(detail["id"]): detail if entity.fetch_detail else row
            for row, detail in records[stream]
        }
        emitted = {int(record["id"]): record for record in run.records[stream]}
        assert emitted.keys() == expected.keys(), stream
        for record_id, record in emitted.items():
            assert record == expected[record_id], f"{stream} {record_id}"
