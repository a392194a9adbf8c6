"""A refused connection or an unknown host names the `api_url` setting and how to check it."""

from __future__ import annotations

import socket

import pytest
from precoro_client.client import PrecoroClient
from precoro_client.errors import TransportError

FAST = {"max_requests_per_second": 1000}


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("api_url", "problem"),
    [
        (f"http://127.0.0.1:{closed_port()}", "refused"),
        ("https://no-such-host.invalid", "does not resolve"),
    ],
)
def test_an_unreachable_host_names_api_url(make_settings, make_governor, api_url, problem):
    settings = make_settings(api_url=api_url, max_tries=2, **FAST)
    client = PrecoroClient(settings, governor=make_governor(settings), jitter=lambda _: 0.0)
    with pytest.raises(TransportError) as info:
        client.get_json("/suppliers", {"token_like": "q-S3cret"})
    client.close()
    error = info.value
    assert error.setting == "api_url"
    assert error.never_sent  # nothing reached a server: even a POST may be re-sent
    assert client.call_count == 2  # retried once (it may be a blip), then stopped
    text = str(error)
    assert "api_url" in text
    assert problem in text
    assert api_url in text  # where it tried, so a typo shows
    assert "curl" in text  # how to check it
    for secret in (settings.auth_token.reveal(), "api@example.com", "q-S3cret"):
        assert secret not in text
