"""`apply_later` (a write Precoro applies after the client gave up) and 414 for long URLs."""

from __future__ import annotations

import pytest
import requests
from precoro_sandbox.testing import START, client


@pytest.fixture
def frozen(sandbox_factory):
    return sandbox_factory(limits="off", clock_start=START, clock_frozen=True)


def _carrying(sb, external_id: str) -> list[dict]:
    response = client(sb).get(f"{sb.url}/suppliers", params={"external_id[]": external_id})
    assert response.status_code == 200
    return response.json()["data"]


def test_apply_later_drops_now_and_applies_when_the_clock_says(frozen):
    frozen.admin.set_faults(
        [{"kind": "apply_later", "route": "/suppliers", "method": "POST",
          "delay_seconds": 63, "times": 1}]
    )  # fmt: skip
    api = client(frozen)
    form = {"name": "Late Vendor", "country": "France", "externalId": "LATE-1"}
    with pytest.raises(requests.ConnectionError):
        api.post(f"{frozen.url}/suppliers", data=form)
    assert _carrying(frozen, "LATE-1") == []  # accepted, not applied yet
    frozen.admin.advance_clock(62)
    assert _carrying(frozen, "LATE-1") == []
    frozen.admin.advance_clock(1)
    rows = _carrying(frozen, "LATE-1")
    assert [r["name"] for r in rows] == ["Late Vendor"]
    assert frozen.admin.counters().get("POST", "/suppliers", 0) == 1  # dropped = status 0


def test_url_longer_than_max_url_bytes_is_414(sandbox_factory):
    sb = sandbox_factory(limits="off", max_url_bytes=1000)
    api = client(sb)
    short = api.get(f"{sb.url}/suppliers", params={"external_id[]": ["x" * 100]})
    assert short.status_code == 200
    long = api.get(f"{sb.url}/suppliers", params={"external_id[]": ["x" * 100] * 10})
    assert long.status_code == 414
    assert "414" in long.text
    assert sb.admin.counters().get("GET", "/suppliers", 414) == 1


def test_reset_discards_writes_still_pending(frozen):
    frozen.admin.set_faults(
        [{"kind": "apply_later", "route": "/suppliers", "method": "POST", "delay_seconds": 5}]
    )
    with pytest.raises(requests.ConnectionError):
        client(frozen).post(
            f"{frozen.url}/suppliers",
            data={"name": "Late Vendor", "country": "France", "externalId": "LATE-2"},
        )
    frozen.admin.reset_data()
    frozen.admin.advance_clock(10)
    assert _carrying(frozen, "LATE-2") == []


@pytest.mark.parametrize("sent", [0, 31])
def test_a_body_cut_short_by_the_client_is_not_applied(sandbox, sent):
    """A client killed while sending a POST leaves a body shorter than its Content-Length.

    http.client sends the headers and the body in two writes, so a kill between them
    leaves no body at all (`sent` 0: once answered 400 and counted), or part of it (31:
    once created a supplier without externalId). The web server in front of Precoro
    never hands such a request to the application (nginx buffers the whole body first):
    nothing is created and no call is counted, so a kill -9 test counts no extra POST.
    """
    import socket
    from urllib.parse import urlsplit

    before = sandbox.admin.stats()["suppliers"]
    body = b"name=Half+Vendor&country=France&externalId=CUT-1"
    url = urlsplit(sandbox.url)
    head = (
        "POST /suppliers HTTP/1.1\r\nHost: sandbox\r\n"
        f"X-AUTH-TOKEN: {sandbox.token}\r\nemail: {sandbox.email}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(head + body[:sent])  # at 31 the name and country arrive, no externalId
        conn.shutdown(socket.SHUT_WR)  # the client is gone
        assert conn.recv(1000) == b""  # closed without an answer
    assert sandbox.admin.stats()["suppliers"] == before
    assert sandbox.admin.counters().total == 0
    # The connection's thread is done with it: a normal request is served as before.
    response = client(sandbox).post(f"{sandbox.url}/suppliers", data={"name": "Whole"})
    assert response.status_code == 201
