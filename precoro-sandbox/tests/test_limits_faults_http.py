"""Rate limits (each 429 type) and every fault kind, end to end over HTTP."""

from __future__ import annotations

import json

import pytest
import requests
from precoro_sandbox.testing import START, client

SMALL = {"per_second": None, "duplicate_get_seconds": 2, "per_hour": 20, "per_day": 40}


@pytest.fixture
def limited(sandbox_factory):
    return sandbox_factory(limits="off", clock_start=START, clock_frozen=True)


def _assert_429(response, limit_type, limit):
    assert response.status_code == 429
    assert response.headers["Content-Type"] == "application/json"
    assert "Retry-After" not in response.headers
    body = response.json()
    assert set(body) == {"error", "RateLimit-Type", "RateLimit-Retry-After", "RateLimit-Limit"}
    assert body["RateLimit-Type"] == limit_type
    assert body["RateLimit-Limit"] == limit
    assert body["RateLimit-Retry-After"].endswith(" UTC")
    return body


def test_duplicate_get_429(limited):
    limited.admin.set_limits(**SMALL)
    api = client(limited)
    assert api.get(f"{limited.url}/suppliers?page=1").status_code == 200
    body = _assert_429(
        api.get(f"{limited.url}/suppliers?page=1"), "Route based limiter by minute", 1
    )
    assert body["error"] == "Too many requests for this endpoint"
    assert body["RateLimit-Retry-After"] == "2026-11-23 10:00:02 UTC"
    assert api.get(f"{limited.url}/suppliers?page=2").status_code == 200  # different target
    assert api.post(f"{limited.url}/taxes", data={"name": "a", "percent": "1"}).status_code == 201
    assert api.post(f"{limited.url}/taxes", data={"name": "a", "percent": "1"}).status_code == 201
    limited.admin.advance_clock(2)
    assert api.get(f"{limited.url}/suppliers?page=1").status_code == 200
    log = limited.admin.requests()
    assert [e["limiter"] for e in log if e["status"] == 429] == ["Route based limiter by minute"]


def test_per_second_429(limited):
    limited.admin.set_limits(
        per_second=1.0, duplicate_get_seconds=None, per_hour=None, per_day=None
    )
    api = client(limited)
    assert api.get(f"{limited.url}/taxes").status_code == 200
    response = api.get(f"{limited.url}/locations")
    assert response.status_code == 429
    assert "RateLimit-Type" in response.json()
    limited.admin.advance_clock(1)
    assert api.get(f"{limited.url}/locations").status_code == 200


def test_hourly_and_daily_429(limited):
    limited.admin.set_limits(**SMALL)
    api = client(limited)
    for page in range(1, 21):
        assert api.get(f"{limited.url}/items", params={"page": page}).status_code == 200
    _assert_429(api.get(f"{limited.url}/items", params={"page": 99}), "Hourly limiter", 20)
    limited.admin.advance_clock(3600)
    for page in range(21, 41):
        assert api.get(f"{limited.url}/items", params={"page": page}).status_code == 200
    body = _assert_429(api.get(f"{limited.url}/items", params={"page": 999}), "Daily limiter", 40)
    assert body["RateLimit-Retry-After"] == "2026-11-24 00:00:00 UTC"
    counters = limited.admin.counters()
    assert counters.get("GET", "/items", 200) == 40
    assert counters.get("GET", "/items", 429) == 2
    # tokens are limited separately; admin calls are never limited
    for _ in range(5):
        limited.admin.counters()


def test_unauthenticated_requests_are_not_rate_limited(limited):
    limited.admin.set_limits(**SMALL)
    for _ in range(3):
        assert requests.get(f"{limited.url}/suppliers").status_code == 401


# --- faults --------------------------------------------------------------------------


def test_status_fault_json_and_html(sandbox, api):
    sandbox.admin.set_faults([{"kind": "status", "route": "/suppliers", "status": 503, "times": 1}])
    response = api.get(f"{sandbox.url}/suppliers")
    assert response.status_code == 503
    assert response.json()["code"] == 503
    assert api.get(f"{sandbox.url}/suppliers").status_code == 200
    sandbox.admin.set_faults([{"kind": "status", "route": "/items*", "status": 502, "html": True}])
    page = api.get(f"{sandbox.url}/items/1")
    assert page.status_code == 502
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<html>" in page.text
    log = sandbox.admin.requests()
    assert log[-1]["fault"] == "status"
    assert log[-1]["status"] == 502


def test_delay_fault(sandbox, api):
    sandbox.admin.set_faults([{"kind": "delay", "route": "/taxes", "delay_seconds": 0.2}])
    assert api.get(f"{sandbox.url}/taxes").status_code == 200
    assert sandbox.admin.requests()[-1]["fault"] == "delay"
    assert sum(sandbox.admin.faults()["fired"].values()) == 1


def test_drop_fault(sandbox, api):
    sandbox.admin.set_faults([{"kind": "drop", "route": "/taxes", "times": 1}])
    with pytest.raises(requests.ConnectionError):
        api.get(f"{sandbox.url}/taxes")
    assert api.get(f"{sandbox.url}/taxes").status_code == 200
    assert sandbox.admin.counters().get("GET", "/taxes", 0) == 1


def test_truncate_fault(sandbox, api):
    sandbox.admin.set_faults([{"kind": "truncate", "route": "/suppliers", "times": 1}])
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        api.get(f"{sandbox.url}/suppliers").json()
    raw = requests.get(f"{sandbox.url}/suppliers", headers=sandbox.headers, stream=True)
    assert raw.status_code == 200  # rule used up: whole body again
    json.loads(raw.content)


def test_apply_then_fail_really_applies_the_write(sandbox, api):
    sandbox.admin.set_faults(
        [
            {
                "kind": "apply_then_fail",
                "route": "/suppliers",
                "method": "POST",
                "status": 500,
                "times": 1,
            }
        ]
    )
    response = api.post(f"{sandbox.url}/suppliers", data={"name": "Ghost Ltd", "externalId": "G-1"})
    assert response.status_code == 500
    found = api.get(f"{sandbox.url}/suppliers", params={"external_id[]": "G-1"}).json()["data"]
    assert [r["name"] for r in found] == ["Ghost Ltd"]


def test_apply_then_drop(sandbox, api):
    supplier = api.get(f"{sandbox.url}/suppliers").json()["data"][0]
    sandbox.admin.set_faults(
        [
            {
                "kind": "apply_then_fail",
                "route": "/suppliers/*",
                "method": "PATCH",
                "then_drop": True,
                "times": 1,
            }
        ]
    )
    with pytest.raises(requests.ConnectionError):
        api.patch(f"{sandbox.url}/suppliers/{supplier['id']}", data={"externalId": "D-1"})
    assert api.get(f"{sandbox.url}/suppliers/{supplier['id']}").json()["externalId"] == "D-1"


def test_faults_come_after_rate_limiting(limited):
    limited.admin.set_limits(**SMALL)
    limited.admin.set_faults([{"kind": "status", "route": "*", "status": 500}])
    api = client(limited)
    assert api.get(f"{limited.url}/taxes").status_code == 500
    assert api.get(f"{limited.url}/taxes").status_code == 429
    limited.admin.clear_faults()
    limited.admin.advance_clock(5)
    assert api.get(f"{limited.url}/taxes").status_code == 200
