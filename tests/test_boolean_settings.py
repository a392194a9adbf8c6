"""Every boolean setting of tap and target from an environment variable (`--config=ENV`,
as Meltano and containers pass settings): the usual words are read, a typo is refused
by name instead of quietly turning the setting off."""

from __future__ import annotations

from typing import Any

import pytest
from precoro_client.plugin_config import PrecoroPlugin
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers._typing import is_boolean_type
from tap_precoro.tap import TapPrecoro
from target_precoro.target import TargetPrecoro

PLUGINS: dict[str, type[PrecoroPlugin]] = {"tap": TapPrecoro, "target": TargetPrecoro}


def _booleans(plugin: type[PrecoroPlugin]) -> list[str]:
    schema = plugin.config_jsonschema
    plugin.append_builtin_config(schema)
    return [name for name, prop in schema["properties"].items() if is_boolean_type(prop)]


SETTINGS = [(kind, name) for kind, plugin in PLUGINS.items() for name in _booleans(plugin)]


def _build(kind: str, name: str, text: str, config: dict[str, Any], monkeypatch: Any) -> Any:
    monkeypatch.setenv(PLUGINS[kind]._env_var_prefix + name.upper(), text)
    config = {**config, "flattening_max_depth": 1}  # flattening_enabled needs it
    return PLUGINS[kind](config=config, parse_env_config=True, validate_config=True)


def test_there_are_boolean_settings_to_check():
    assert ("tap", "fetch_details") in SETTINGS
    assert ("target", "dry_run") in SETTINGS


TRUE_WORDS = ("true", "TRUE", "1", "yes", "on")
FALSE_WORDS = ("false", "False", "0", "no", "off")


@pytest.mark.parametrize("text", TRUE_WORDS + FALSE_WORDS)
@pytest.mark.parametrize(("kind", "name"), SETTINGS)
def test_a_boolean_setting_reads_the_usual_words(
    kind, name, text, offline_plugin_config, monkeypatch
):
    plugin = _build(kind, name, text, offline_plugin_config, monkeypatch)
    assert plugin.config[name] is (text in TRUE_WORDS)


@pytest.mark.parametrize("text", ["flase", "maybe", "2", "enabled"])
@pytest.mark.parametrize(("kind", "name"), SETTINGS)
def test_a_typo_in_a_boolean_setting_is_refused_by_name(
    kind, name, text, offline_plugin_config, monkeypatch
):
    with pytest.raises(ConfigValidationError) as info:
        _build(kind, name, text, offline_plugin_config, monkeypatch)
    assert any(name in error for error in info.value.errors), info.value.errors
