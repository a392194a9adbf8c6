"""Comparing an incoming record with Precoro's current values, field by field.

Only fields that differ are sent, so a record identical to what Precoro holds costs
nothing. Values are compared the way Precoro stores them: references by id, numbers
numerically, lists as multisets (`list_merge: union` keeps Precoro's entries),
empty strings equal to null.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from precoro_client.forms import form_value
from precoro_client.registry import Entity, Field


def _ref_id(value: Any) -> str:
    if isinstance(value, Mapping):
        value = value.get("id")
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _instant(value: Any) -> str:
    if value in (None, ""):
        return ""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return parsed.isoformat() if parsed.tzinfo is None else str(parsed.timestamp())


def same(spec: Field, wanted: Any, current: Any) -> bool:
    """Whether Precoro's `current` value already equals `wanted` for this field."""
    if spec.ref is not None:
        return _ref_id(wanted) == _ref_id(current)
    if spec.type == "array":
        ours = Counter(form_value(v) for v in wanted or [])
        theirs = Counter(form_value(v) for v in current or [])
        return ours == theirs
    if spec.type in ("number", "integer"):
        a, b = _number(wanted), _number(current)
        if a is None or b is None:
            return a is None and b is None
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if spec.type == "date-time":
        return _instant(wanted) == _instant(current)
    return bool(form_value(wanted) == form_value(current))


def merged_list(wanted: list[Any], current: list[Any] | None) -> list[Any]:
    """`union`: Precoro's entries first, then the incoming ones it lacks."""
    result = list(current or [])
    seen = {form_value(v) for v in result}
    for value in wanted:
        if form_value(value) not in seen:
            result.append(value)
            seen.add(form_value(value))
    return result


def changes(
    entity: Entity, wanted: Mapping[str, Any], current: Mapping[str, Any], list_merge: str
) -> dict[str, Any]:
    """The fields (and values to send) that differ from Precoro's current record."""
    diff: dict[str, Any] = {}
    for name, value in wanted.items():
        if name == "externalId":
            continue
        spec = entity.field(name)
        target = incoming_value(spec, value, current.get(name), list_merge)
        if not same(spec, target, current.get(name)):
            diff[name] = target
    return diff


def incoming_value(spec: Field, value: Any, now: Any, list_merge: str) -> Any:
    """The value the ERP side asks for: with `list_merge: union`, a list merged into Precoro's."""
    if spec.type == "array" and list_merge == "union":
        return merged_list(list(value or []), now)
    return value


def record_key(entity: Entity, row: Mapping[str, Any]) -> str:
    """What addresses a Precoro record in detail/write paths (id or idn)."""
    return str(row[entity.key])
