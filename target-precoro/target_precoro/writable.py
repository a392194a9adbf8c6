"""Which Singer streams the target accepts, and what each may do, from the registry.

A stream is named after a Precoro entity that accepts `externalId`. What the target
may do with it follows from the registry flags: `creatable` allows creating,
`updatable` updating, and an entity with neither (purchase orders, invoices) can only
be linked.
"""

from __future__ import annotations

from precoro_client.registry import ENTITIES, Entity

SUPPORTED_STREAMS: dict[str, Entity] = {
    entity.name: entity
    for entity in ENTITIES
    if entity.external_id and entity.view_of is None and (entity.creatable or entity.fetch_detail)
}
"""Stream name -> entity: every entity an ERP can create, update or link."""


class UnknownStreamError(ValueError):
    """A stream that is not a Precoro entity the target can write."""


def supported_names() -> str:
    """Comma-separated supported stream names, for error messages."""
    return ", ".join(sorted(SUPPORTED_STREAMS))


def can_create(entity: Entity) -> bool:
    """POST is possible."""
    return bool(entity.creatable)


def can_update(entity: Entity) -> bool:
    """PUT is possible (payments are create-only; documents link-only)."""
    return bool(entity.updatable)


def dependencies(entity: Entity) -> set[str]:
    """Entities this one refers to in writable fields (written before it)."""
    return {
        spec.ref
        for spec in entity.writable_fields
        if spec.ref is not None and spec.ref != entity.name
    }


def _dependency_rank() -> dict[str, int]:
    """Suppliers before items, invoices before payments: referenced streams drain first."""
    rank: dict[str, int] = {}

    def visit(name: str, seen: frozenset[str]) -> int:
        if name in rank:
            return rank[name]
        deps = [d for d in dependencies(SUPPORTED_STREAMS[name]) if d in SUPPORTED_STREAMS]
        value = 1 + max((visit(d, seen | {name}) for d in deps if d not in seen), default=0)
        rank[name] = value
        return value

    for name in SUPPORTED_STREAMS:
        visit(name, frozenset())
    return rank


DRAIN_RANK = _dependency_rank()
"""Stream name -> drain order (lower first): a stream drains after those it refers to."""
