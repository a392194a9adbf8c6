from __future__ import annotations

import hashlib
import pickle
from dataclasses import fields
from pathlib import Path

import pytest
from precoro_client import limits
from precoro_client.errors import ConfigError
from precoro_client.secret import Secret
from precoro_client.settings import PrecoroSettings, default_ledger_path, validate_settings
from precoro_client.singer_settings import CONNECTION_PROPERTIES

TOKEN = "tok-S3cret-0123456789abcdef"


def config(**overrides):
    base = {"auth_token": TOKEN, "email": "api@example.com"}
    base.update(overrides)
    return base


def test_defaults_point_at_the_international_server():
    settings = validate_settings(config())
    assert settings.api_url == "https://api.precoro.com"
    assert settings.timeout == (10.0, 60.0)
    assert settings.max_requests_per_hour == 1500
    assert settings.max_requests_per_day == 3000
    assert settings.auth_headers() == {"X-AUTH-TOKEN": TOKEN, "email": "api@example.com"}


def test_region_us_is_a_shortcut_for_the_us_host():
    assert validate_settings(config(region="us")).api_url == "https://api.precoro.us"
    # The Singer schema default fills api_url; the region still wins over that default.
    settings = validate_settings(config(region="US", api_url="https://api.precoro.com/"))
    assert settings.api_url == "https://api.precoro.us"
    assert validate_settings(config(region="com")).api_url == "https://api.precoro.com"


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"auth_token": None}, "auth_token"),
        ({"auth_token": "   "}, "auth_token"),
        ({"auth_token": TOKEN + " "}, "auth_token"),
        ({"auth_token": "abc\ndef-ghi"}, "auth_token"),
        ({"email": ""}, "email"),
        ({"email": "not-an-address"}, "email"),
        ({"region": "eu"}, "region"),
        ({"region": "us", "api_url": "https://example.com"}, "region"),
        ({"api_url": "api.precoro.com"}, "api_url"),
        ({"api_url": "ftp://api.precoro.com"}, "api_url"),
        ({"api_url": "https://"}, "api_url"),
        ({"api_url": "https://user:pw@api.precoro.com"}, "api_url"),
        ({"api_url": "https://api.precoro.com/?x=1"}, "api_url"),
        ({"api_url": "https://api.precoro.com:99999"}, "api_url"),
        ({"api_url": "http://api.precoro.com"}, "api_url"),
        ({"api_url": "http://10.0.0.5:8080"}, "api_url"),
        ({"read_timeout_seconds": 0}, "read_timeout_seconds"),
        ({"connect_timeout_seconds": "soon"}, "connect_timeout_seconds"),
        ({"max_requests_per_day": 2.5}, "max_requests_per_day"),
        ({"max_requests_per_second": -1}, "max_requests_per_second"),
        ({"max_tries": 0}, "max_tries"),
        ({"budget_reserve": 3000}, "budget_reserve"),
        ({"max_wait_seconds": True}, "max_wait_seconds"),
    ],
)
def test_each_bad_setting_fails_with_one_line_naming_it(overrides, setting):
    with pytest.raises(ConfigError) as info:
        validate_settings(config(**overrides))
    message = str(info.value)
    assert info.value.setting == setting
    assert setting in message
    assert "\n" not in message
    assert TOKEN not in message
    assert "abc\ndef-ghi" not in message


def test_ledger_directory_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="budget_ledger_path"):
        validate_settings(config(budget_ledger_path=str(tmp_path)))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.10.20.30",
        "http://[::1]:8080",
        "http://localhost:5000/",
        "https://sandbox.example.com/api",
    ],
)
def test_plain_http_is_allowed_only_for_loopback(url):
    assert validate_settings(config(api_url=url)).api_url == url.rstrip("/")


def test_token_never_shows_in_repr_str_or_pickle():
    settings = validate_settings(config())
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert TOKEN not in f"{settings.auth_token}"
    assert str(settings.auth_token) == "***"
    assert settings.auth_token.reveal() == TOKEN
    with pytest.raises(TypeError):
        pickle.dumps(settings)


def test_ledger_key_is_a_hash_of_token_and_url():
    com = validate_settings(config())
    us = validate_settings(config(region="us"))
    expected = hashlib.sha256(f"{TOKEN}\nhttps://api.precoro.com".encode()).hexdigest()
    assert com.ledger_key == expected
    assert us.ledger_key != com.ledger_key
    assert TOKEN not in com.ledger_key


def test_ledger_path_respects_xdg_state_home(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_ledger_path() == tmp_path / "precoro" / "ledger.sqlite3"
    assert validate_settings(config()).budget_ledger_path == tmp_path / "precoro" / "ledger.sqlite3"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_ledger_path() == Path.home() / ".local" / "state" / "precoro" / "ledger.sqlite3"


def test_from_config_ignores_other_keys_and_reads_numeric_strings():
    settings = PrecoroSettings.from_config(
        config(start_date="2025-01-01", max_requests_per_day="2000", read_timeout_seconds="30")
    )
    assert settings.max_requests_per_day == 2000
    assert settings.read_timeout_seconds == 30.0


def test_direct_construction_wraps_a_plain_token():
    settings = PrecoroSettings(auth_token=Secret(TOKEN), email="a@b.c")
    assert isinstance(settings.auth_token, Secret)
    assert settings.url("/suppliers") == "https://api.precoro.com/suppliers"


def test_singer_schema_carries_secrets_requirements_choices_and_ranges():
    schema = CONNECTION_PROPERTIES.to_dict()
    properties = schema["properties"]
    assert list(properties) == [field.name for field in fields(PrecoroSettings)]
    assert properties["auth_token"]["secret"] is True
    assert properties["auth_token"]["writeOnly"] is True
    assert properties["state_backend_url"]["secret"] is True
    assert set(schema["required"]) == {"auth_token", "email"}
    assert properties["region"]["enum"] == ["com", "us"]
    assert properties["max_tries"]["minimum"] == 1
    assert properties["max_tries"]["maximum"] == 20
    assert properties["read_timeout_seconds"]["exclusiveMinimum"] == 0
    assert "default" not in properties["budget_ledger_path"]  # run-time default


def test_limit_defaults_and_texts_come_from_the_limits_module():
    schema = CONNECTION_PROPERTIES.to_dict()["properties"]
    defaults = validate_settings(config())
    assert defaults.max_requests_per_second == limits.REQUESTS_PER_SECOND
    assert defaults.max_requests_per_hour == limits.REQUESTS_PER_HOUR
    assert defaults.max_requests_per_day == limits.REQUESTS_PER_DAY
    assert defaults.duplicate_get_interval_seconds == limits.DUPLICATE_GET_SECONDS
    assert schema["max_requests_per_hour"]["default"] == limits.REQUESTS_PER_HOUR
    assert str(limits.REQUESTS_PER_HOUR) in schema["max_requests_per_hour"]["description"]
    assert str(limits.REQUESTS_PER_DAY) in schema["max_requests_per_day"]["description"]
