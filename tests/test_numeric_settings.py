"""Every numeric setting of tap, target and webhook receiver, in every shape it arrives in.

JSON config files give `Decimal` for fractional numbers (the SDK's JSON reader), Python
callers give `int`/`float`, Meltano gives text in environment variables. The settings
are enumerated from the declared schemas (SDK built-ins included), so a new numeric
setting is covered without touching this file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from precoro_client.errors import ConfigError
from precoro_client.numbers import NumberRule, number_rules
from precoro_client.plugin_config import PrecoroPlugin
from singer_sdk.exceptions import ConfigValidationError
from tap_precoro.tap import TapPrecoro
from tap_precoro.testing import catalog_selecting, parse_messages
from tap_precoro.webhooks import cli as webhook_cli
from tap_precoro.webhooks.receiver import NUMBER_RULES as RECEIVER_RULES
from tap_precoro.webhooks.receiver import ReceiverSettings
from target_precoro.target import TargetPrecoro

TAP = [sys.executable, "-m", "tap_precoro"]
TARGET = [str(Path(sys.executable).with_name("target-precoro"))]
PLUGINS: dict[str, type[PrecoroPlugin]] = {"tap": TapPrecoro, "target": TargetPrecoro}


def _rules(plugin: type[PrecoroPlugin]) -> dict[str, tuple[NumberRule, dict[str, Any]]]:
    schema = plugin.config_jsonschema
    plugin.append_builtin_config(schema)
    props = schema["properties"]
    return {name: (rule, props[name]) for name, rule in number_rules(schema).items()}


SETTINGS = [(kind, name) for kind, plugin in PLUGINS.items() for name in _rules(plugin)]


def _whole_value(rule: NumberRule, prop: dict[str, Any]) -> int:
    """A whole number the setting accepts (its default when it has one)."""
    default = prop.get("default")
    if isinstance(default, int) and not isinstance(default, bool):
        return default
    allowed = prop.get("enum")
    if allowed:
        return int(allowed[0])
    low = rule.minimum if rule.minimum is not None else (rule.exclusive_minimum or 0) + 1
    return max(low, 1) if rule.maximum is None or rule.maximum >= 1 else low


def _fraction(rule: NumberRule, prop: dict[str, Any]) -> str:
    """A fractional value inside the setting's range, as JSON text."""
    whole = _whole_value(rule, prop)
    if rule.maximum is not None and whole + 0.5 > rule.maximum:
        return f"{whole - 1}.5"
    return f"{whole}.5"


def _build(kind: str, config: dict[str, Any], *, env: bool = False) -> PrecoroPlugin:
    return PLUGINS[kind](config=config, parse_env_config=env, validate_config=True)


def _effective(plugin: PrecoroPlugin, name: str) -> Any:
    """What the code will use: the settings object's field when there is one."""
    for holder in ("precoro_settings", "target_settings"):
        settings = getattr(plugin, holder, None)
        if settings is not None and hasattr(settings, name):
            return getattr(settings, name)
    return plugin.config[name]


def _shapes(rule: NumberRule, prop: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(shape, value as given, value expected) for accepted inputs of one setting."""
    whole = _whole_value(rule, prop)
    if rule.integer:
        return [
            ("int", whole, whole),
            ("decimal", Decimal(f"{whole}.0"), whole),
            ("float", float(whole), whole),
            ("env", f"{whole}.0", whole),
        ]
    text = _fraction(rule, prop)
    return [
        ("int", whole, float(whole)),
        ("decimal", Decimal(text), float(text)),
        ("float", float(text), float(text)),
        ("env", text, float(text)),
    ]


def _set_env(monkeypatch: pytest.MonkeyPatch, kind: str, name: str, value: str) -> None:
    prefix = PLUGINS[kind]._env_var_prefix
    monkeypatch.setenv(prefix + name.upper(), value)


@pytest.mark.parametrize("shape", ["int", "decimal", "float", "env"])
@pytest.mark.parametrize(("kind", "name"), SETTINGS)
def test_numeric_setting_accepts_every_shape(kind, name, shape, offline_plugin_config, monkeypatch):
    rule, prop = _rules(PLUGINS[kind])[name]
    given, expected = next((g, e) for s, g, e in _shapes(rule, prop) if s == shape)
    config = dict(offline_plugin_config)
    if shape == "env":
        _set_env(monkeypatch, kind, name, given)
        plugin = _build(kind, config, env=True)
    else:
        plugin = _build(kind, {**config, name: given})
    value = _effective(plugin, name)
    assert value == expected
    assert type(value) is type(expected)


def _refusal_cases() -> list[tuple[str, str, str]]:
    """(kind, name, shape) of every bad value a setting can be given.

    A fraction is bad only for an integer setting, a value below the range only where
    the range has a lower bound; the other pairs are not generated at all.
    """
    cases = []
    for kind, name in SETTINGS:
        rule, _ = _rules(PLUGINS[kind])[name]
        shapes = ["text"]
        if rule.minimum is not None or rule.exclusive_minimum is not None:
            shapes.append("negative")
        if rule.integer:
            shapes += ["decimal", "float", "env"]
        cases += [(kind, name, shape) for shape in shapes]
    return cases


@pytest.mark.parametrize(("kind", "name", "shape"), _refusal_cases())
def test_numeric_setting_refuses_bad_values_naming_it(
    kind, name, shape, offline_plugin_config, monkeypatch
):
    rule, prop = _rules(PLUGINS[kind])[name]
    whole = _whole_value(rule, prop)
    bad: Any
    if shape == "negative":
        bad = (rule.minimum if rule.minimum is not None else rule.exclusive_minimum or 0) - 1
    elif shape == "text":
        bad = "soon"
    elif shape == "decimal":
        bad = Decimal(f"{whole}.5")
    elif shape == "float":
        bad = whole + 0.5
    else:
        bad = f"{whole}.5"
    config = dict(offline_plugin_config)
    from_env = shape in ("env", "text")
    if from_env:
        _set_env(monkeypatch, kind, name, str(bad))
    else:
        config[name] = bad
    with pytest.raises(ConfigValidationError) as info:
        _build(kind, config, env=from_env)
    assert info.value.errors
    assert all(name in error for error in info.value.errors), info.value.errors


@pytest.mark.parametrize("name", sorted(RECEIVER_RULES))
def test_receiver_numbers_use_the_same_parser(name):
    rule = RECEIVER_RULES[name]
    low = rule.minimum if rule.minimum is not None else 0
    parser = webhook_cli.build_parser()
    args = ["serve", "--inbox", "x.sqlite3", f"--{name.replace('_', '-')}"]
    parsed = parser.parse_args([*args, f"{max(low, 64)}.0" if rule.integer else "2.5"])
    value = getattr(parsed, name)
    assert value == (max(low, 64) if rule.integer else 2.5)
    with pytest.raises(SystemExit):
        parser.parse_args([*args, str(low - 1)])
    if rule.integer:
        with pytest.raises(SystemExit):
            parser.parse_args([*args, "64.5"])
    if name in ("max_body_bytes", "heartbeat_seconds"):
        secret = "s" * 20
        given: list[Any] = [Decimal("100.0"), 100.0, "100"]
        for raw in given:
            settings = ReceiverSettings(secret=secret, **{name: raw})
            assert getattr(settings, name) == 100
        with pytest.raises(ConfigError, match=name):
            ReceiverSettings(secret=secret, **{name: -1})


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=False, capture_output=True, text=True, **kwargs)


def test_cli_runs_with_fractional_numbers_in_the_config_file(
    sandbox, tmp_path, offline_plugin_config
):
    """The reported case: 2.5 and 0.5 in a JSON file, tap and target, real commands."""
    config = {
        **offline_plugin_config,
        "api_url": sandbox.url,
        "auth_token": sandbox.token,
        "email": sandbox.email,
        "duplicate_get_interval_seconds": 2.5,
        "max_requests_per_second": 0.5,  # one call: the spacing never waits
        "lookback_minutes": 0.5,
        "max_tries": 3.0,
        "page_size": 200.0,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(catalog_selecting(config, ["suppliers"])))

    tap = _run([*TAP, "--config", str(path), "--catalog", str(catalog)])
    assert tap.returncode == 0, tap.stderr
    run = parse_messages(tap.stdout)
    ids = run.ids("suppliers")
    assert len(ids) == len(set(ids)) == sandbox.admin.stats()["suppliers"]
    calls = sandbox.admin.counters()
    assert calls.total == 1  # one page of 200 holds every supplier of the small sandbox

    target = _run([*TARGET, "--config", str(path)], input="")
    assert target.returncode == 0, target.stderr
    assert sandbox.admin.counters().total == calls.total  # no input, no call


def test_numbers_inside_object_settings_are_parsed_too(offline_plugin_config, monkeypatch):
    """`status_filters` holds integers in arrays; from a file or the environment alike."""
    config = dict(offline_plugin_config)
    tap = _build("tap", {**config, "status_filters": {"invoices": [Decimal("2.0"), 5]}})
    assert tap.config["status_filters"] == {"invoices": [2, 5]}
    with pytest.raises(ConfigValidationError) as info:
        _build("tap", {**config, "status_filters": {"invoices": [Decimal("2.5")]}})
    assert "status_filters" in info.value.errors[0]
    monkeypatch.setenv("TAP_PRECORO_STATUS_FILTERS", '{"invoices": [2.0, 5]}')
    assert _build("tap", config, env=True).config["status_filters"] == {"invoices": [2, 5]}
