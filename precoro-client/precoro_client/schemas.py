"""JSON schemas derived from the entity registry.

The tap publishes these as stream schemas and the target validates incoming records
against them, so a field's type and description are written once, in the registry.
"""

from __future__ import annotations

from typing import Any

from precoro_client.registry import Entity, Field, FieldType, get

_SCALAR_TYPES: dict[str, dict[str, Any]] = {
    "integer": {"type": ["integer", "null"]},
    "number": {"type": ["number", "null"]},
    "string": {"type": ["string", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "date-time": {"type": ["string", "null"], "format": "date-time"},
    "date": {"type": ["string", "null"], "format": "date"},
}


def _scalar(kind: FieldType) -> dict[str, Any]:
    return dict(_SCALAR_TYPES[kind])


def _reference_schema(spec: Field) -> dict[str, Any]:
    target = get(spec.ref) if spec.ref else None
    label = target.name if target else "record"
    properties: dict[str, Any] = {
        "id": {**_scalar("integer"), "description": f"Precoro id of the {label} record."},
        "name": {**_scalar("string"), "description": f"Display name of the {label} record."},
    }
    if target is not None and target.key == "idn":
        properties["idn"] = {**_scalar("string"), "description": f"Document number ({label})."}
    return {
        "type": ["object", "null"],
        "description": spec.description,
        "properties": properties,
        "additionalProperties": True,
    }


_VARIANT_ORDER: tuple[FieldType, ...] = (
    "string",
    "number",
    "integer",
    "boolean",
    "date-time",
    "date",
    "object",
    "array",
)
"""Order of a polymorphic field's `anyOf`: text first, so a loader that makes one column
of the first type (target-duckdb, pipelinewise loaders) makes a text column, which holds
every variant; an object or array first would make a JSON column that refuses a bare
label."""


def _variant(kind: FieldType) -> dict[str, Any]:
    if kind == "object":
        return {"type": "object", "additionalProperties": True}
    if kind == "array":
        return {"type": "array", "items": {}}
    schema = _scalar(kind)
    schema["type"] = kind if kind in ("integer", "number", "boolean") else "string"
    return schema


def _polymorphic_schema(spec: Field) -> dict[str, Any]:
    kinds = sorted({spec.type, *spec.variants}, key=_VARIANT_ORDER.index)
    return {
        "description": spec.description,
        "anyOf": [*(_variant(kind) for kind in kinds), {"type": "null"}],
    }


def field_schema(spec: Field) -> dict[str, Any]:
    """JSON schema of one field, nullable, with the field's description.

    A field with `variants` (Precoro sends it as more than one JSON type) is an `anyOf`
    of every type it comes as.
    """
    if spec.variants:
        return _polymorphic_schema(spec)
    if spec.ref is not None:
        return _reference_schema(spec)
    if spec.type == "array":
        items: dict[str, Any] = (
            _scalar(spec.items)
            if spec.items
            else {"type": ["object", "null"], "properties": {}, "additionalProperties": True}
        )
        return {"type": ["array", "null"], "description": spec.description, "items": items}
    if spec.type == "object":
        return {
            "type": ["object", "null"],
            "description": spec.description,
            "additionalProperties": True,
        }
    return {**_scalar(spec.type), "description": spec.description}


def record_schema(entity: Entity, *, include_detail: bool = True) -> dict[str, Any]:
    """Schema of an entity's records (list fields, plus detail-only fields if asked)."""
    fields = entity.fields if include_detail else entity.list_fields
    return {
        "type": "object",
        "description": entity.description,
        "properties": {spec.name: field_schema(spec) for spec in fields},
        "additionalProperties": True,
    }
