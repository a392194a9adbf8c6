"""`server_now()`: Precoro's clock between responses (what the target's settle period uses)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from precoro_client.client import PrecoroClient


def test_server_now_is_the_last_date_header_plus_time_since(
    make_settings, make_governor, clock, raw_server, scripted
):
    settings = make_settings(api_url=raw_server.url)
    client = PrecoroClient(settings, governor=make_governor(settings))
    assert client.server_now() == clock.datetime  # no response yet: the local clock
    raw_server.actions = [
        scripted["respond"](200, {"id": 5}, headers={"Date": "Mon, 05 Jan 2026 09:59:58 GMT"})
    ]
    client.get_json("/suppliers/5")
    server = datetime(2026, 1, 5, 9, 59, 58, tzinfo=UTC)
    assert client.server_now() == server
    clock.advance(90)
    assert client.server_now() == server + timedelta(seconds=90)
    client.close()
