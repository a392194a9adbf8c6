"""The target's settings: one declaration gives the schema, the defaults and the parsing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from precoro_client.errors import ConfigError
from target_precoro.settings import TARGET_PROPERTIES, TargetSettings, default_state_dir


def test_defaults_are_the_declared_ones_with_their_types():
    settings = TargetSettings.from_config({})
    schema = TARGET_PROPERTIES.to_dict()["properties"]
    assert settings.mode == schema["mode"]["default"] == "upsert"
    assert settings.report_dir == Path(schema["report_dir"]["default"])
    assert settings.state_dir == default_state_dir()
    assert "default" not in schema["state_dir"]  # computed at run time
    for name in ("lock_wait_seconds", "write_settle_seconds", "index_recheck_hours"):
        assert type(getattr(settings, name)) is float
        assert getattr(settings, name) == schema[name]["default"]
    assert settings.lookup_batch_size == schema["lookup_batch_size"]["maximum"] == 200


def test_values_are_parsed_by_their_declaration():
    settings = TargetSettings.from_config(
        {
            "mode": "",  # empty text: the default
            "max_failures": Decimal("3.0"),
            "lookback_minutes": "2.5",
            "report_dir": "~/reports",
            "dry_run": True,
            "match": {"suppliers": [["name"]]},
        }
    )
    assert settings.mode == "upsert"
    assert settings.max_failures == 3
    assert type(settings.max_failures) is int
    assert settings.lookback_minutes == 2.5
    assert settings.report_dir == Path.home() / "reports"
    assert settings.dry_run is True
    assert settings.match == {"suppliers": (("name",),)}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("mode", "merge"),
        ("list_merge", "append"),
        ("unknown_fields", "warn"),
        ("lookup_batch_size", 201),
        ("max_failures", -1),
        ("match", {"vendors": [["name"]]}),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(name, value):
    with pytest.raises(ConfigError) as info:
        TargetSettings.from_config({name: value})
    assert info.value.setting == name
    assert TARGET_PROPERTIES.to_dict()["properties"][name]


def test_the_external_id_cap_has_one_home():
    from precoro_client import limits
    from precoro_sandbox import lists
    from target_precoro.settings import MAX_LOOKUP_IDS

    assert lists.MAX_EXTERNAL_IDS == MAX_LOOKUP_IDS == limits.MAX_EXTERNAL_IDS
    lookup = TARGET_PROPERTIES.to_dict()["properties"]["lookup_batch_size"]
    assert lookup["maximum"] == limits.MAX_EXTERNAL_IDS
