"""Precoro's write encoding: form fields with bracketed keys.

`supplier[id]=5` for a reference, `currencies[]=USD&currencies[]=EUR` for a list,
plain `name=value` otherwise. The target encodes with `encode_record`; the sandbox
decodes with `decode_form`, so both sides read the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from precoro_client.registry import Entity

FormPairs = list[tuple[str, str]]


def form_value(value: Any) -> str:
    """Render one scalar as Precoro reads it (booleans as 1/0, None as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def encode_record(entity: Entity, values: Mapping[str, Any]) -> FormPairs:
    """Encode record values (Precoro field names) as form pairs for a write.

    A reference may be given as an object with `id` or as the bare id. Keys that are
    not fields of the entity raise KeyError naming the field.
    """
    pairs: FormPairs = []
    for name, value in values.items():
        spec = entity.field(name)
        if spec.ref is not None:
            ref_id = value.get("id") if isinstance(value, Mapping) else value
            pairs.append((spec.form_key, form_value(ref_id)))
        elif spec.type == "array":
            pairs.extend((spec.form_key, form_value(item)) for item in (value or []))
        else:
            pairs.append((spec.form_key, form_value(value)))
    return pairs


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode form pairs into field values: `x[]` to a list, `x[id]` to `{"id": ...}`."""
    decoded: dict[str, Any] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            decoded.setdefault(key[:-2], []).append(value)
        elif key.endswith("]") and "[" in key:
            name, _, sub = key[:-1].partition("[")
            nested = decoded.setdefault(name, {})
            if isinstance(nested, dict):
                nested[sub] = value
        else:
            decoded[key] = value
    return decoded
