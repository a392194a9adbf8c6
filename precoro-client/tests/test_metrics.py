"""SDK-style METRIC points: per request (endpoint, status, duration) and for the budget.

Points are read back as a log pipeline reads them: the JSON after `METRIC: ` in each
record of singer-sdk's metrics logger.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from precoro_client.client import PrecoroClient
from precoro_client.errors import NotFound
from precoro_client.metrics import LEFT, USED, endpoint, read_points
from singer_sdk.metrics import METRICS_LOGGER_NAME

FAST = {"max_requests_per_second": 1000, "duplicate_get_interval_seconds": 0}


def points(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return read_points(caplog.records)


@pytest.fixture
def metric_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=METRICS_LOGGER_NAME)
    return caplog


def test_every_attempt_and_the_budget_are_metric_points(
    make_settings, make_governor, raw_server, scripted, metric_log
):
    caplog = metric_log
    respond = scripted["respond"]
    raw_server.actions = [
        respond(200, {"id": 5}),
        respond(503, {"message": "busy"}),
        respond(200, {"data": []}),
        respond(404, {"message": "no such supplier"}),
    ]
    settings = make_settings(api_url=raw_server.url, max_tries=2, **FAST)
    client = PrecoroClient(settings, governor=make_governor(settings), jitter=lambda _: 0.0)
    client.get_json("/suppliers/5")
    client.get_json("/suppliers", {"page": 2})  # 503, then retried: 200
    with pytest.raises(NotFound):
        client.get_json("/suppliers/6")
    client.close()

    found = points(caplog)
    timers = [p for p in found if p["metric"] == "http_request_duration"]
    assert [p["type"] for p in timers] == ["timer"] * 4
    assert [(p["tags"]["endpoint"], p["tags"]["http_status_code"]) for p in timers] == [
        ("/suppliers/{id}", 200),
        ("/suppliers", 503),
        ("/suppliers", 200),
        ("/suppliers/{id}", 404),
    ]
    assert all(isinstance(p["value"], float) and p["value"] >= 0 for p in timers)
    assert [p["tags"]["status"] for p in timers] == ["succeeded", "failed", "succeeded", "failed"]
    counts = [p for p in found if p["metric"] == "http_request_count"]
    assert [(p["type"], p["value"]) for p in counts] == [("counter", 1)] * 4
    assert [p["tags"] for p in counts] == [p["tags"] for p in timers]

    (used,) = [p for p in found if p["metric"] == USED]
    (left,) = [p for p in found if p["metric"] == LEFT]
    assert (used["type"], used["value"]) == ("counter", 4)
    assert (left["type"], left["value"]) == ("counter", 2996)
    first_call = datetime.fromtimestamp(client.governor.now(), UTC)  # sub-second spacing only
    reset = datetime.fromisoformat(used["tags"]["next_reset"])
    assert abs(reset - (first_call + timedelta(days=1))) < timedelta(seconds=1)
    shown = json.dumps(found)
    assert settings.auth_token.reveal() not in shown
    assert "api@example.com" not in shown
    assert "127.0.0.1" not in shown


def test_an_unanswered_attempt_has_status_zero(make_settings, make_governor, caplog):
    caplog.set_level(logging.INFO, logger=METRICS_LOGGER_NAME)
    settings = make_settings(api_url="http://127.0.0.1:9", max_tries=1, **FAST)  # discard port
    client = PrecoroClient(settings, governor=make_governor(settings))
    with pytest.raises(Exception):  # noqa: B017, PT011 - the transport error's type is not the point
        client.get_json("/items/77")
    client.close()
    (timer,) = [p for p in points(caplog) if p["metric"] == "http_request_duration"]
    assert timer["tags"] == {
        "endpoint": "/items/{id}",
        "method": "GET",
        "http_status_code": 0,
        "status": "failed",
    }


def test_endpoints_hide_ids_and_queries():
    assert endpoint("/suppliers/123/contacts/9?x=1") == "/suppliers/{id}/contacts/{id}"
    assert endpoint("/itemcustomfields/4/options") == "/itemcustomfields/{id}/options"
