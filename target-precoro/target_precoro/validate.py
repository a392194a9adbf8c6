"""Checking one incoming record against the registry, before any request.

The record's keys are Precoro field names. Writable fields are type-checked; read-only
Precoro fields (`id`, `createDate`...) are ignored; anything else is an unknown field
(`unknown_fields: error|ignore`). Every problem names the stream, the externalId and
the field, so the person fixing the ERP data knows where to look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from precoro_client.registry import PARENT_ID_FIELD, Entity, Field


class InvalidRecord(ValueError):
    """The record cannot be written as given; `field` names the culprit (or None)."""

    def __init__(
        self, stream: str, external_id: str | None, field_name: str | None, why: str
    ) -> None:
        """Build one line naming stream, externalId and field."""
        self.stream = stream
        self.external_id = external_id
        self.field = field_name
        where = f"{stream} record externalId={external_id!r}" if external_id else f"{stream} record"
        text = f"{where}: field {field_name!r} {why}" if field_name else f"{where}: {why}"
        super().__init__(text)


@dataclass(frozen=True)
class Ref:
    """A reference to another entity, by Precoro id or by that entity's externalId."""

    entity: str
    precoro_id: int | None = None
    external_id: str | None = None


@dataclass
class Incoming:
    """A validated record: writable values in Precoro field names, references unresolved."""

    stream: str
    external_id: str
    values: dict[str, Any]
    refs: dict[str, Ref | None] = field(default_factory=dict)
    parent: str | None = None
    """Options only: custom field id or name as given."""
    ignored: list[str] = field(default_factory=list)
    """Fields dropped (read-only or unknown with `unknown_fields: ignore`)."""
    keys: dict[str, Any] = field(default_factory=dict)
    """Every Precoro field the record carries (read-only ones too), for linking."""


def _type_error(spec: Field, value: Any) -> str:
    expected = spec.items if spec.type == "array" and spec.items else spec.type
    return f"must be {expected}, got {type(value).__name__} {value!r}"[:200]


def _check_scalar(kind: str, value: Any) -> Any:
    """The value if it fits `kind`, else raise TypeError."""
    if isinstance(value, Decimal):
        # The SDK parses JSON numbers as Decimal.
        value = int(value) if value == value.to_integral_value() else float(value)
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError
        if not math.isfinite(value):
            raise TypeError
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise TypeError
        return value
    if kind == "date-time":
        if isinstance(value, datetime):
            return value.isoformat()
        if not isinstance(value, str):
            raise TypeError
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise TypeError from None
        return value
    if kind == "date":
        if isinstance(value, date):
            return value.isoformat()
        if not isinstance(value, str):
            raise TypeError
        try:
            date.fromisoformat(value)
        except ValueError:
            raise TypeError from None
        return value
    if not isinstance(value, str):
        raise TypeError
    return value


def _ref(spec: Field, value: Any) -> Ref:
    """`{"id": 5}` or 5 is a Precoro id; `{"externalId": "V-1"}` or "V-1" an externalId."""
    target = spec.ref or ""
    if isinstance(value, dict):
        if value.get("id") not in (None, ""):
            value = value["id"]
        elif value.get("externalId") not in (None, ""):
            return Ref(target, external_id=str(value["externalId"]))
        else:
            raise TypeError
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, int):
        return Ref(target, precoro_id=value)
    if isinstance(value, str) and value.strip():
        return Ref(target, external_id=value.strip())
    raise TypeError


def validate_record(entity: Entity, record: dict[str, Any], *, unknown_fields: str) -> Incoming:
    """Check one record; raise `InvalidRecord` naming the first problem."""
    stream = entity.name
    raw_id = record.get("externalId")
    if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
        raise InvalidRecord(stream, None, "externalId", "is missing: every record needs one")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        raise InvalidRecord(stream, None, "externalId", "must be a string or an integer")
    external_id = str(raw_id).strip()
    incoming = Incoming(stream, external_id, {})
    fields = {spec.name: spec for spec in entity.fields}
    for name, value in record.items():
        if name == "externalId" or name.startswith("_sdc_"):
            continue
        if name == PARENT_ID_FIELD and entity.parent is not None:
            if value not in (None, ""):
                if isinstance(value, bool) or not isinstance(value, int | str):
                    why = "must be the custom field's id or name"
                    raise InvalidRecord(stream, external_id, name, why)
                incoming.parent = str(value)
            continue
        spec = fields.get(name)
        if spec is None:
            if unknown_fields == "ignore":
                incoming.ignored.append(name)
                continue
            why = "is not a Precoro field of this stream (set unknown_fields: ignore to drop it)"
            raise InvalidRecord(stream, external_id, name, why)
        incoming.keys[name] = value
        if not spec.writable:
            incoming.ignored.append(name)
            continue
        if value is None:
            if spec.required:
                raise InvalidRecord(stream, external_id, name, "is required and may not be null")
            if spec.ref is not None:
                incoming.refs[name] = None
            else:
                incoming.values[name] = [] if spec.type == "array" else None
            continue
        try:
            if spec.ref is not None:
                incoming.refs[name] = _ref(spec, value)
            elif spec.type == "array":
                if not isinstance(value, list):
                    raise TypeError
                incoming.values[name] = [_check_scalar(spec.items or "string", v) for v in value]
            elif spec.type == "object":
                raise TypeError
            else:
                incoming.values[name] = _check_scalar(spec.type, value)
        except TypeError:
            if spec.ref is not None:
                why = (
                    f"must reference a {spec.ref} record by Precoro id (integer or "
                    f'{{"id": ...}}) or by externalId (string or {{"externalId": ...}}), '
                    f"got {value!r}"
                )[:240]
            else:
                why = _type_error(spec, value)
            raise InvalidRecord(stream, external_id, name, why) from None
        text = incoming.values.get(name)
        if spec.required and isinstance(text, str) and not text.strip():
            raise InvalidRecord(stream, external_id, name, "is required and may not be blank")
    return incoming


def missing_required(entity: Entity, incoming: Incoming) -> str | None:
    """The first required field a create would lack, or None."""
    for spec in entity.writable_fields:
        if spec.required and spec.name not in incoming.values and spec.name not in incoming.refs:
            return str(spec.name)
    return None
