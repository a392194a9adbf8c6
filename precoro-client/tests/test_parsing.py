from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from precoro_client.errors import parse_error_body
from precoro_client.rate_limit import parse_precoro_time, parse_rate_limit
from precoro_client.secret import register_secret

# H-429 example, verbatim (precoro-sandbox/tests/fixtures/precoro-api/
# ratelimit-429-GET-response.json; docs/precoro-api.md, "Rate limits").
DOCUMENTED_429 = {
    "error": "Too many requests for this endpoint",
    "RateLimit-Type": "Route based limiter by minute",
    "RateLimit-Retry-After": "2025-12-16 09:00:49 UTC",
    "RateLimit-Limit": 1,
}
NOW = datetime(2025, 12, 16, 9, 0, 20, tzinfo=UTC)


def test_documented_429_body_gives_the_exact_retry_time():
    parsed = parse_rate_limit(json.dumps(DOCUMENTED_429), {}, now=NOW)
    assert parsed.retry_at == datetime(2025, 12, 16, 9, 0, 49, tzinfo=UTC)
    assert parsed.kind == "route"
    assert parsed.limit == 1
    assert parsed.limit_type == "Route based limiter by minute"


def test_server_date_corrects_a_skewed_local_clock():
    # Server says it is 09:00:40 and retry at 09:00:49: wait 9 s from *our* now.
    headers = {"Date": "Tue, 16 Dec 2025 09:00:40 GMT"}
    parsed = parse_rate_limit(json.dumps(DOCUMENTED_429), headers, now=NOW)
    assert parsed.retry_at == NOW + timedelta(seconds=9)


@pytest.mark.parametrize(
    ("limit_type", "kind"),
    [("Daily limiter", "daily"), ("Hourly limiter", "hourly"), ("whatever", "unknown")],
)
def test_limiter_kind_comes_from_ratelimit_type(limit_type, kind):
    body = {**DOCUMENTED_429, "RateLimit-Type": limit_type}
    assert parse_rate_limit(json.dumps(body), {}, now=NOW).kind == kind


def test_retry_after_header_in_seconds_and_http_date():
    seconds = parse_rate_limit("", {"Retry-After": "30"}, now=NOW)
    assert seconds.retry_at == NOW + timedelta(seconds=30)
    dated = parse_rate_limit("", {"retry-after": "Tue, 16 Dec 2025 09:01:00 GMT"}, now=NOW)
    assert dated.retry_at == datetime(2025, 12, 16, 9, 1, 0, tzinfo=UTC)


def test_ratelimit_fields_as_headers_and_latest_time_wins():
    headers = {
        "RateLimit-Type": "Hourly limiter",
        "RateLimit-Retry-After": "2025-12-16 09:30:00 UTC",
        "Retry-After": "60",
    }
    parsed = parse_rate_limit("not json", headers, now=NOW)
    assert parsed.kind == "hourly"
    assert parsed.retry_at == datetime(2025, 12, 16, 9, 30, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "<html><title>429 Too Many Requests</title></html>",
        json.dumps({"RateLimit-Retry-After": "soon", "RateLimit-Limit": "x"}),
        json.dumps({"RateLimit-Retry-After": "2025-13-45 99:00:00 UTC"}),
        json.dumps({"RateLimit-Retry-After": "2030-01-01 00:00:00 UTC"}),  # absurdly far
        json.dumps(["a", "list"]),
    ],
)
def test_garbage_429_yields_no_retry_time(body):
    parsed = parse_rate_limit(body, {"Retry-After": "later"}, now=NOW)
    assert parsed.retry_at is None
    assert parsed.limit is None


def test_past_retry_time_means_no_wait():
    body = {**DOCUMENTED_429, "RateLimit-Retry-After": "2025-12-16 09:00:00 UTC"}
    assert parse_rate_limit(json.dumps(body), {}, now=NOW).retry_at == NOW


def test_precoro_time_also_accepts_iso_with_offset():
    assert parse_precoro_time("2025-12-16T10:00:49+01:00") == datetime(
        2025, 12, 16, 9, 0, 49, tzinfo=UTC
    )
    assert parse_precoro_time("2025-12-16T10:00:49") == datetime(
        2025, 12, 16, 10, 0, 49, tzinfo=UTC
    )  # Precoro's own shape, with T
    assert parse_precoro_time(12345) is None


def test_precoro_validation_body_gives_per_field_messages():
    body = {"errors": {"errors": {"sumPaid": "The Invoice is already fully paid."}}}
    details = parse_error_body(json.dumps(body))
    assert details.field_errors == {"sumPaid": "The Invoice is already fully paid."}
    assert "sumPaid: The Invoice is already fully paid." in details.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": "Access denied"}, "Access denied"),
        ({"message": "Invalid credentials."}, "Invalid credentials."),
        ({"error": {"message": "nested"}}, "nested"),
        ({"errors": ["first", "second"]}, "first; second"),
        ({"errors": {"name": ["is blank", "too short"]}}, "name: is blank; too short"),
    ],
)
def test_error_and_message_fallbacks(body, expected):
    assert expected in parse_error_body(json.dumps(body)).message


def test_html_from_a_proxy_is_summarised_not_dumped():
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000 + "</body>"
    details = parse_error_body(page, "text/html")
    assert details.message == "HTML page: 502 Bad Gateway"
    untitled = parse_error_body("<!DOCTYPE html><html><body>" + "y" * 900 + "</body></html>")
    assert untitled.message.startswith("HTML page (")
    assert "yyyy" not in untitled.message


def test_long_text_is_cut_and_secrets_are_scrubbed():
    secret = "tok-echoed-by-proxy-123"
    register_secret(secret)
    details = parse_error_body(f"bad header X-AUTH-TOKEN: {secret} " + "z" * 1000)
    assert secret not in details.message
    assert "***" in details.message
    assert len(details.message) <= 300
    assert parse_error_body(None).message == "empty response body"
