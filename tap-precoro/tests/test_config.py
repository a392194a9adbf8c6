"""Bad configuration fails before any request, with a line that names the setting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

TAP = [sys.executable, "-m", "tap_precoro"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"auth_token": None}, "auth_token"),
        ({"start_date": "last tuesday"}, "start_date"),
        ({"region": "eu"}, "region"),
        ({"page_size": 7}, "page_size"),
        ({"api_url": "http://precoro.example.com"}, "api_url"),
        ({"api_timezone": "Mars/Olympus"}, "api_timezone"),
        ({"stream_start_dates": {"vendors": "2025-01-01T00:00:00Z"}}, "stream_start_dates"),
        ({"lookback_minutes": -60}, "lookback_minutes"),
        ({"max_tries": 2.5}, "max_tries"),
        ({"max_requests_per_second": 0}, "max_requests_per_second"),
        ({"duplicate_get_interval_seconds": -1}, "duplicate_get_interval_seconds"),
        ({"read_timeout_seconds": 86400}, "read_timeout_seconds"),
    ],
    ids=[
        "missing-token",
        "bad-start-date",
        "unknown-region",
        "page-size-7",
        "plain-http",
        "bad-timezone",
        "unknown-stream",
        "negative-lookback",
        "fractional-max-tries",
        "zero-rate",
        "negative-duplicate-interval",
        "absurd-timeout",
    ],
)
def test_bad_config_fails_before_any_request(sandbox, make_config, tmp_path, change, named):
    config = {k: v for k, v in {**make_config(sandbox), **change}.items() if v is not None}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))

    result = subprocess.run(
        [*TAP, "--config", str(path)], check=False, capture_output=True, text=True
    )

    assert result.returncode != 0
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if named in line]
    assert errors, result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox.admin.counters().total == 0
    assert sandbox.token not in result.stderr


def test_about_documents_every_setting():
    result = subprocess.run(
        [*TAP, "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    about = json.loads(result.stdout)
    properties = about["settings"]["properties"]
    for name in (
        "auth_token",
        "email",
        "api_url",
        "region",
        "page_size",
        "start_date",
        "lookback_minutes",
        "api_timezone",
        "fetch_details",
        "budget_ledger_path",
        "max_requests_per_day",
        "budget_reserve",
        "on_budget_exhausted",
    ):
        assert properties[name].get("description"), name
    assert properties["auth_token"].get("secret") is True


def test_every_schema_property_has_a_description():
    from tap_precoro.tap import TapPrecoro

    tap = TapPrecoro(config={}, validate_config=False)
    for stream in tap.streams.values():
        for name, prop in stream.schema["properties"].items():
            assert prop.get("description"), f"{stream.name}.{name}"


def test_tap_settings_are_parsed_from_the_validated_config(tmp_path):
    from decimal import Decimal

    from tap_precoro.tap import TapPrecoro

    config = {
        "auth_token": "tok-Settings-0123456789",
        "email": "api@example.com",
        "api_url": "http://127.0.0.1:9",
        "budget_ledger_path": str(tmp_path / "ledger.sqlite3"),
        "page_size": Decimal("50.0"),
        "lookback_minutes": "2.5",
        "on_budget_exhausted": "fail",
    }
    settings = TapPrecoro(config=config, validate_config=True).tap_settings
    assert settings.page_size == 50
    assert settings.lookback_minutes == 2.5
    assert settings.on_budget_exhausted == "fail"
    assert settings.api_timezone == "UTC"  # the declared default
    assert settings.completeness_sweep_hours == 168
