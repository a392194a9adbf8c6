"""Registry flags agree with the fields they summarise."""

from __future__ import annotations

from precoro_client.registry import ENTITIES


def test_fetch_detail_marks_exactly_the_entities_with_detail_only_fields() -> None:
    """A detail call is worth making only where the detail returns more than the list."""
    for entity in ENTITIES:
        assert entity.fetch_detail == bool(entity.detail_fields), entity.name
