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


def field_schema(spec: Field) -> dict[str, Any]:
    """JSON schema of one field, nullable, with the field's description."""
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
