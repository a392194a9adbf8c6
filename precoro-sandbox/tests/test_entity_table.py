"""The sandbox's entity table covers every registry entity, and the limits are the client's."""

from __future__ import annotations

from collections import Counter

import pytest
from precoro_client import registry
from precoro_client.settings import PrecoroSettings
from precoro_sandbox.datagen import Generator, Sequences
from precoro_sandbox.entities import SANDBOX_ENTITIES, facts, generate, plan_counts
from precoro_sandbox.limits import LimitConfig
from precoro_sandbox.store import FILTER_COLUMNS

STORED = [entity.name for entity in registry.stored_collections()]
VIEWS = [entity for entity in registry.ENTITIES if entity.view_of is not None]


def test_every_stored_registry_entity_has_exactly_one_entry():
    assert sorted(SANDBOX_ENTITIES) == sorted(STORED)


@pytest.mark.parametrize("view", VIEWS, ids=lambda e: e.name)
def test_views_use_their_storage_entry(view):
    assert view.name not in SANDBOX_ENTITIES
    assert facts(view) is SANDBOX_ENTITIES[view.view_of]


@pytest.mark.parametrize("name", STORED)
def test_entry_is_consistent_with_the_registry(name):
    entity = registry.get(name)
    entry = SANDBOX_ENTITIES[name]
    field_names = {spec.name for spec in entity.fields}
    assert set(entry.ref_keys) <= field_names
    for wrapped in entry.wrapped:
        spec = entity.field(wrapped)
        assert spec.type == "object"
        assert spec.ref is None
    if entry.emitted_by is None:
        assert entry.stream is not None or entry.build is not None, "nothing generates it"
    else:
        owner = SANDBOX_ENTITIES[entry.emitted_by]
        assert owner.stream is not None, f"{entry.emitted_by} must stream {name}"
        assert owner.emitted_by is None
    assert entry.activity_weight > 0
    for flt in entity.filters:
        assert flt.field in FILTER_COLUMNS, f"{name} filter {flt.param} has no column"


def test_referents_are_generated_before_the_records_pointing_at_them():
    order = list(SANDBOX_ENTITIES)
    for name in order:
        entity = registry.get(name)
        for spec in entity.fields:
            if spec.ref is not None and spec.ref != name and spec.ref in SANDBOX_ENTITIES:
                assert order.index(spec.ref) < order.index(name), (name, spec.ref)


def test_a_dataset_has_the_planned_count_of_every_entity():
    counts = plan_counts(7, {"items": 5})
    gen = Generator(1, 1, 1_700_000_000, counts, Sequences())
    produced = Counter(name for name, _ in generate(gen))
    assert dict(produced) == {name: count for name, count in counts.items() if count}


def test_unknown_collection_in_counts_is_refused():
    with pytest.raises(ValueError, match="creditnotes"):
        plan_counts(1, {"creditnotes": 3})


def test_default_limits_are_the_clients():
    config = LimitConfig()
    client = {spec.name: spec.default for spec in PrecoroSettings.__dataclass_fields__.values()}
    assert config.per_second == client["max_requests_per_second"]
    assert config.duplicate_get_seconds == client["duplicate_get_interval_seconds"]
    assert config.per_hour == client["max_requests_per_hour"]
    assert config.per_day == client["max_requests_per_day"]
