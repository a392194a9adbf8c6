"""Two-way sync without reverting a person's edit: a three-way compare per field.

The reverse job (ERP -> Precoro) sees two values per field: the ERP's (incoming) and
Precoro's (the index row, already read for the diff). Two values cannot tell "the ERP
changed it" from "a buyer changed it in Precoro", so the target also keeps a third, the
**base**: per Precoro record and field, the value it last wrote or last saw equal on
both sides (in the index file, no API call). Per field, with `field_ownership`:

- `erp`: the ERP always wins (written whenever the two differ).
- `precoro`: written only while Precoro holds no value; once it holds one, kept.
- `conflict` (default), the three-way rule:
  ERP == Precoro: nothing to write, the base moves to it;
  only the ERP changed since the base: written;
  only Precoro changed: kept (`kept_precoro`), so the forward job carries it to the ERP;
  both changed, differently: `conflict`, not written, both values and the base reported;
  no base yet (a record linked now, or first seen since it carried its externalId):
  the ERP's value is written once, as at linking, and becomes the base.

A base moves only on what Precoro confirmed: fields seen equal, and fields a write
returned 2xx for (after the journal marked it done). A run killed before or during a
write leaves the old base, and the next run decides again from Precoro's values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from precoro_client.registry import Entity

from target_precoro.diff import incoming_value, same

Owner = Literal["erp", "precoro", "conflict"]
OWNERS: tuple[str, ...] = ("erp", "precoro", "conflict")
DEFAULT_OWNER: Owner = "conflict"
"""The three-way rule: never silently reverts a Precoro edit, costs no call."""
ANY = "*"
"""Ownership key for every stream / every other field."""


@dataclass(frozen=True)
class FieldState:
    """The three values of a field that was not written."""

    base: Any
    erp: Any
    precoro: Any

    def to_json(self) -> dict[str, Any]:
        """For the report line: what was synced last, what each side holds now."""
        return {"base": self.base, "erp": self.erp, "precoro": self.precoro}


@dataclass
class Decision:
    """What to do with one existing Precoro record, field by field."""

    write: dict[str, Any] = field(default_factory=dict)
    """Fields to send, with their values (a partial PUT)."""
    kept: dict[str, FieldState] = field(default_factory=dict)
    """Fields Precoro changed (or owns): not written."""
    conflicts: dict[str, FieldState] = field(default_factory=dict)
    """Fields both sides changed differently: not written."""
    agreed: dict[str, Any] = field(default_factory=dict)
    """Fields equal on both sides now: their base moves here without a write."""

    def base_after_write(self) -> dict[str, Any]:
        """The base once the write succeeded: agreed fields plus those written."""
        return {**self.agreed, **self.write}


def _has_value(entity: Entity, name: str, value: Any) -> bool:
    return not same(entity.field(name), None, value)


def decide(
    entity: Entity,
    wanted: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    base: Mapping[str, Any] | None,
    owner_of: Callable[[str], Owner],
    list_merge: str,
) -> Decision:
    """Compare ERP (`wanted`), Precoro (`current`) and the base, per field.

    With `list_merge: union` the ERP side of a list is the merged list (Precoro's
    entries plus the incoming ones), as the plain diff sends it.
    """
    decision = Decision()
    known = base or {}
    for name, value in wanted.items():
        if name == "externalId":
            continue
        spec = entity.field(name)
        now = current.get(name)
        target = incoming_value(spec, value, now, list_merge)
        if same(spec, target, now):
            decision.agreed[name] = target
            continue
        owner = owner_of(name)
        state = FieldState(known.get(name), target, now)
        if owner == "erp":
            decision.write[name] = target
        elif owner == "precoro":
            if _has_value(entity, name, now):
                decision.kept[name] = state
            else:
                decision.write[name] = target
        elif name not in known:
            decision.write[name] = target  # no base yet: aligned once, as at linking
        elif same(spec, target, known[name]):
            decision.kept[name] = state  # only Precoro changed
        elif same(spec, now, known[name]):
            decision.write[name] = target  # only the ERP changed
        else:
            decision.conflicts[name] = state
    return decision


def describe(decision: Decision) -> str:
    """The part of a report message about fields not written."""
    parts = []
    if decision.kept:
        names = ", ".join(sorted(decision.kept))
        parts.append(f"kept Precoro's {names} (changed in Precoro since the last sync)")
    for name in sorted(decision.conflicts):
        state = decision.conflicts[name]
        parts.append(
            f"conflict in {name}: ERP {state.erp!r}, Precoro {state.precoro!r}, "
            f"last synced {state.base!r} (not written)"
        )
    return "; ".join(parts)
