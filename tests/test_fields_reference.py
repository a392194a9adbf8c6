"""docs/fields.md is exactly what scripts/fields_reference.py renders from the registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from precoro_client.registry import get
from target_precoro.writable import SUPPORTED_STREAMS

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location(
        "fields_reference", ROOT / "scripts" / "fields_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_field_reference_matches_the_registry():
    committed = (ROOT / "docs" / "fields.md").read_text(encoding="utf-8")
    assert _generator().render() == committed, (
        "docs/fields.md is stale: run .venv/bin/python scripts/fields_reference.py"
    )


def test_every_target_stream_and_writable_field_is_listed():
    page = _generator().render()
    for name, entity in SUPPORTED_STREAMS.items():
        assert f"\n## {name}\n" in page
        section = page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for spec in entity.writable_fields:
            required = "yes" if spec.required or spec.name == "externalId" else ""
            assert f"| `{spec.name}` | " in section
            row = next(line for line in section.splitlines() if line.startswith(f"| `{spec.name}`"))
            assert row.split(" | ")[2:4] == ["yes", required]
    supplier_ref = next(
        line for line in page.split("\n## items\n", 1)[1].splitlines() if "| `supplier`" in line
    )
    assert get("items").field("supplier").ref == "suppliers"
    assert "[suppliers](#suppliers)" in supplier_ref
