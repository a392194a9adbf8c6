from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from precoro_client.client import PrecoroClient, has_next_page
from precoro_client.errors import (
    AuthenticationError,
    BudgetExhausted,
    InvalidResponse,
    NotFound,
    PrecoroError,
    ServerError,
    TransportError,
    ValidationFailed,
    WriteOutcomeUnknown,
)
from werkzeug import Response


def no_jitter(value: float) -> float:
    return value


@pytest.fixture
def make_client(make_settings, make_governor, httpserver):
    clients = []

    def make(api_url=None, **overrides):
        overrides.setdefault("max_tries", 3)
        settings = make_settings(
            api_url=api_url or httpserver.url_for("/").rstrip("/"), **overrides
        )
        client = PrecoroClient(settings, governor=make_governor(settings), jitter=no_jitter)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def test_get_json_sends_auth_headers_and_reads_the_date(make_client, raw_server, scripted, token):
    raw_server.actions = [
        scripted["respond"](200, {"id": 5}, headers={"Date": "Mon, 05 Jan 2026 09:59:58 GMT"})
    ]
    client = make_client(api_url=raw_server.url)
    assert client.get_json("/suppliers/5") == {"id": 5}
    request = raw_server.requests[0].decode()
    assert f"X-AUTH-TOKEN: {token}" in request
    assert "email: api@example.com" in request
    assert client.last_server_date == datetime(2026, 1, 5, 9, 59, 58, tzinfo=UTC)
    assert client.calls == {"GET": 1}
    assert client.call_count == 1


def test_get_is_retried_after_5xx_and_waits_like_an_identical_get(make_client, httpserver, clock):
    httpserver.expect_ordered_request("/items").respond_with_data("oops", status=503)
    httpserver.expect_ordered_request("/items").respond_with_json({"data": []})
    client = make_client()
    start = clock.now
    assert client.get_json("/items", {"supplier[]": [1, 2]}) == {"data": []}
    assert len(httpserver.log) == 2
    assert clock.now - start >= 66  # the duplicate-GET rule (plus its margin) holds the retry
    assert httpserver.log[1][0].query_string == b"supplier%5B%5D=1&supplier%5B%5D=2"


def test_persistent_5xx_gives_up_after_max_tries(make_client, httpserver):
    httpserver.expect_request("/items").respond_with_data("<h1>down</h1>", status=502)
    client = make_client(max_tries=3)
    with pytest.raises(ServerError) as info:
        client.get("/items")
    assert len(httpserver.log) == 3
    assert info.value.status == 502


def test_401_fails_at_once_naming_the_settings_without_the_token(
    make_client, httpserver, token, caplog
):
    httpserver.expect_request("/suppliers").respond_with_json(
        {"message": f"Invalid token {token}"}, status=401
    )
    client = make_client()
    with (
        caplog.at_level(logging.DEBUG, logger="precoro_client"),
        pytest.raises(AuthenticationError) as info,
    ):
        client.get_json("/suppliers")
    message = str(info.value)
    assert len(httpserver.log) == 1
    for setting in ("auth_token", "email", "api_url", "region"):
        assert setting in message
    assert token not in message
    assert token not in caplog.text


def test_403_is_an_authentication_error_too(make_client, httpserver):
    httpserver.expect_request("/suppliers").respond_with_data("Forbidden", status=403)
    with pytest.raises(AuthenticationError):
        make_client().get("/suppliers")


def test_404_and_422_carry_the_parsed_message(make_client, httpserver):
    httpserver.expect_request("/invoices/77").respond_with_json({"error": "Not found"}, status=404)
    body = {"errors": {"errors": {"sumPaid": "The Invoice is already fully paid."}}}
    httpserver.expect_request("/payments", method="POST").respond_with_json(body, status=422)
    client = make_client()
    with pytest.raises(NotFound, match="Not found"):
        client.get_json("/invoices/77")
    with pytest.raises(ValidationFailed) as info:
        client.post_form("/payments", [("invoice[id]", "7"), ("sumPaid", "10")])
    assert info.value.field_errors == {"sumPaid": "The Invoice is already fully paid."}
    assert info.value.status == 422
    assert len(httpserver.log) == 2


def retry_body(limit_type: str, retry_at: datetime) -> dict[str, object]:
    return {
        "error": "Too many requests for this endpoint",
        "RateLimit-Type": limit_type,
        "RateLimit-Retry-After": retry_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "RateLimit-Limit": 1,
    }


def test_route_429_waits_exactly_until_the_retry_time(make_client, raw_server, scripted, clock):
    retry_at = clock.datetime + timedelta(seconds=90)
    raw_server.actions = [
        scripted["respond"](
            429,
            retry_body("Route based limiter by minute", retry_at),
            headers={"Date": http_date(clock.datetime)},
        ),
        scripted["respond"](200, {"data": [{"id": 1}]}),
    ]
    client = make_client(api_url=raw_server.url)
    assert client.get_json("/taxes") == {"data": [{"id": 1}]}
    assert clock.datetime == retry_at
    assert len(raw_server.requests) == 2


def test_429_wait_follows_the_server_clock(make_client, raw_server, scripted, clock):
    # The server's clock is 20 s ahead of ours: wait its 30 s, not 50 s.
    server_now = clock.datetime + timedelta(seconds=20)
    raw_server.actions = [
        scripted["respond"](
            429,
            retry_body("Route based limiter by minute", server_now + timedelta(seconds=30)),
            headers={"Date": http_date(server_now)},
        ),
        scripted["respond"](200, []),
    ]
    start = clock.now
    make_client(api_url=raw_server.url).post_form("/x", [])
    assert clock.now - start == pytest.approx(30)


def test_daily_429_stops_without_doomed_calls(make_client, raw_server, scripted, clock):
    raw_server.actions = [
        scripted["respond"](
            429,
            retry_body("Daily limiter", clock.datetime + timedelta(hours=9)),
            headers={"Date": http_date(clock.datetime)},
        )
    ]
    client = make_client(api_url=raw_server.url)
    with pytest.raises(BudgetExhausted) as info:
        client.get_json("/invoices")
    assert info.value.limit == "daily"
    assert info.value.resets_at == clock.datetime + timedelta(hours=9)
    for n in range(5):  # the remaining records: no request leaves
        with pytest.raises(BudgetExhausted):
            client.post_form("/payments", [("n", str(n))])
    assert len(raw_server.requests) == 1


def test_long_hourly_429_raises_budget_exhausted(make_client, raw_server, scripted, clock):
    raw_server.actions = [
        scripted["respond"](
            429,
            retry_body("Hourly limiter", clock.datetime + timedelta(hours=1)),
            headers={"Date": http_date(clock.datetime)},
        )
    ]
    with pytest.raises(BudgetExhausted) as info:
        make_client(api_url=raw_server.url, max_wait_seconds=900).get("/items")
    assert info.value.limit == "hourly"
    assert len(raw_server.requests) == 1


def test_post_is_not_retried_after_5xx(make_client, httpserver):
    httpserver.expect_request("/suppliers", method="POST").respond_with_data("boom", status=500)
    client = make_client()
    with pytest.raises(WriteOutcomeUnknown) as info:
        client.post_form("/suppliers", [("name", "Acme")])
    assert isinstance(info.value.cause, ServerError)
    assert len(httpserver.log) == 1


def test_post_after_429_is_retried(make_client, httpserver, clock):
    body = {"RateLimit-Type": "Route based limiter by minute", "RateLimit-Limit": 1}
    httpserver.expect_ordered_request("/taxes", method="POST").respond_with_json(
        body, status=429, headers={"Retry-After": "3"}
    )
    httpserver.expect_ordered_request("/taxes", method="POST").respond_with_json(
        {"id": 9}, status=201
    )
    client = make_client()
    assert client.post_form("/taxes", {"name": "VAT", "percent": "20"}) == {"id": 9}
    assert httpserver.log[1][0].form.to_dict() == {"name": "VAT", "percent": "20"}
    assert client.calls == {"POST": 2}


def test_put_is_retried_after_5xx(make_client, httpserver):
    httpserver.expect_ordered_request("/suppliers/4", method="PUT").respond_with_data(
        "", status=504
    )
    httpserver.expect_ordered_request("/suppliers/4", method="PUT").respond_with_json({"id": 4})
    client = make_client()
    assert client.put_form("/suppliers/4", [("currencies[]", "USD"), ("currencies[]", "EUR")]) == {
        "id": 4
    }
    assert httpserver.log[1][0].form.getlist("currencies[]") == ["USD", "EUR"]


def test_invalid_json_on_get_is_retried(make_client, httpserver):
    httpserver.expect_ordered_request("/taxes").respond_with_data(
        '{"data": [', content_type="application/json"
    )
    httpserver.expect_ordered_request("/taxes").respond_with_json({"data": []})
    assert make_client().get_json("/taxes") == {"data": []}
    assert len(httpserver.log) == 2


def test_credentials_never_leave_the_configured_host(make_client):
    with pytest.raises(ValueError, match="refusing"):
        make_client().get("https://evil.example.com/steal")


# --- pagination ------------------------------------------------------------------------


def test_pages_follow_has_next_page(make_client, httpserver):
    for page, more in ((1, True), (2, False)):
        httpserver.expect_ordered_request(
            "/suppliers",
            query_string={
                "modifiedSince": "2025-01-01T00:00:00",
                "page": str(page),
                "per_page": "10",
            },
        ).respond_with_json(
            {"data": [{"id": page}], "meta": {"pagination": {"has_next_page": more}}}
        )
    client = make_client()
    pages = list(client.iter_pages("/suppliers", {"modifiedSince": "2025-01-01T00:00:00"}, 10))
    assert [p.number for p in pages] == [1, 2]
    assert [r["id"] for p in pages for r in p.records] == [1, 2]


def test_pages_fall_back_to_legacy_current_and_total_pages(make_client, httpserver):
    for page in (1, 2, 3):
        httpserver.expect_ordered_request(
            "/invoices", query_string={"page": str(page), "per_page": "20"}
        ).respond_with_json(
            {
                "data": [{"id": page}],
                "meta": {"pagination": {"current_page": page, "total_pages": 3}},
            }
        )
    records = list(make_client().iter_records("/invoices", page_size=20))
    assert [r["id"] for r in records] == [1, 2, 3]
    assert len(httpserver.log) == 3


def test_page_size_must_be_one_precoro_accepts(make_client):
    with pytest.raises(ValueError, match="10, 20, 50, 100, 200"):
        next(make_client().iter_pages("/items", page_size=25))


def test_has_next_page_without_metadata():
    assert has_next_page({"data": [1, 2]}, [1, 2], 2) is True
    assert has_next_page({"data": [1]}, [1], 2) is False
    assert (
        has_next_page({"data": [], "meta": {"pagination": {"has_next_page": True}}}, [], 2) is False
    )


# --- transport failures (raw socket server) --------------------------------------------


def test_dropped_connection_on_get_is_retried(make_client, raw_server, scripted):
    raw_server.actions = [scripted["drop"](), scripted["respond"](200, b'{"ok": true}')]
    client = make_client(api_url=raw_server.url)
    assert client.get_json("/items") == {"ok": True}
    assert len(raw_server.requests) == 2


def test_truncated_body_on_get_is_retried(make_client, raw_server, scripted):
    raw_server.actions = [
        scripted["respond"](200, b'{"data": [{"id": 1}', declared_length=500),
        scripted["respond"](200, b'{"data": []}'),
    ]
    client = make_client(api_url=raw_server.url)
    assert client.get_json("/items") == {"data": []}
    assert len(raw_server.requests) == 2


def test_read_timeout_on_get_is_retried(make_client, raw_server, scripted):
    raw_server.actions = [scripted["stall"](1.0), scripted["respond"](200, b"[]")]
    client = make_client(api_url=raw_server.url, read_timeout_seconds=0.2)
    assert client.get_json("/items") == []
    assert len(raw_server.requests) == 2


def test_dropped_post_is_not_resent(make_client, raw_server, scripted):
    raw_server.actions = [scripted["drop"](), scripted["respond"](201, b'{"id": 1}')]
    client = make_client(api_url=raw_server.url)
    with pytest.raises(WriteOutcomeUnknown) as info:
        client.post_form("/suppliers", [("name", "Acme")])
    assert isinstance(info.value.cause, TransportError)
    assert len(raw_server.requests) == 1


def test_garbled_post_reply_is_an_unknown_outcome(make_client, raw_server, scripted):
    raw_server.actions = [scripted["respond"](201, b'{"id": ')]
    client = make_client(api_url=raw_server.url)
    with pytest.raises(WriteOutcomeUnknown) as info:
        client.post_form("/suppliers", [("name", "Acme")])
    assert isinstance(info.value.cause, InvalidResponse)
    assert len(raw_server.requests) == 1


def test_refused_connection_may_resend_a_post(make_client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(api_url=f"http://127.0.0.1:{port}", max_tries=2)
    with pytest.raises(TransportError) as info:
        client.post_form("/suppliers", [("name", "Acme")])
    assert info.value.never_sent is True
    assert client.calls == {"POST": 2}


def test_write_bodies_are_not_logged_at_info(make_client, httpserver, caplog):
    httpserver.expect_request("/suppliers", method="POST").respond_with_json({"id": 1})
    with caplog.at_level(logging.INFO, logger="precoro_client"):
        make_client().post_form("/suppliers", [("name", "Very Private Supplier")])
    assert "Very Private Supplier" not in caplog.text


def test_empty_write_reply_is_an_empty_dict(make_client, httpserver):
    httpserver.expect_request("/suppliers/3", method="PATCH").respond_with_response(
        Response(status=204)
    )
    assert make_client().patch_form("/suppliers/3", [("externalId", "X-1")]) == {}
    assert json.loads("{}") == {}


def test_redirects_are_not_followed(make_client, raw_server, scripted):
    raw_server.actions = [
        scripted["respond"](301, b"", headers={"Location": "https://elsewhere.example.com/x"})
    ]
    client = make_client(api_url=raw_server.url)
    with pytest.raises(PrecoroError, match="redirect"):
        client.get_json("/items")
    assert len(raw_server.requests) == 1
