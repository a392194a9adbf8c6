"""The tap reads an HTTPS sandbox when told to trust its CA, at the same cost as over HTTP."""

from __future__ import annotations

import math

import pytest
from precoro_client.errors import TransportError
from precoro_client.registry import ENTITIES

PAGE = 20


def test_full_run_over_https_with_the_sandbox_ca(
    sandbox_factory, make_config, run_tap, monkeypatch
):
    sb = sandbox_factory(scale=6, tls=True)
    assert sb.url.startswith("https://")
    assert sb.ca_path is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sb.ca_path)
    run = run_tap(make_config(sb, page_size=PAGE))
    assert run.exit_code == 0
    counters = sb.admin.counters()
    stored = sb.admin.stats()
    expected = 0
    for entity in ENTITIES:
        if entity.parent is not None or entity.view_of is not None:
            continue
        emitted = len(run.records[entity.name])
        assert emitted == stored[entity.name], entity.name
        pages = max(1, math.ceil(emitted / PAGE))
        assert counters.get("GET", entity.path) == pages, entity.name
        expected += pages + (emitted if entity.fetch_detail else 0)
    option_calls = sum(
        counters.get("GET", entity.path) for entity in ENTITIES if entity.parent is not None
    )
    assert option_calls == len(run.records["itemcustomfields"]) + len(
        run.records["documentcustomfields"]
    )
    assert counters.total == expected + option_calls
    assert counters.get(status=429) == 0


def test_https_sandbox_is_refused_without_its_ca(sandbox_factory, make_config, run_tap):
    """The system trust store does not know the sandbox's CA: the run fails, no call lands."""
    sb = sandbox_factory(scale=2, tls=True)
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        run_tap(make_config(sb, max_tries=1))
    assert sb.admin.counters().total == 0
