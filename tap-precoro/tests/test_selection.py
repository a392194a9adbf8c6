"""A catalog or selection that matches no stream is a WARNING, not silence (issue 12)."""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stdout
from typing import Any

import pytest
from tap_precoro.tap import TapPrecoro
from tap_precoro.testing import TapRun, catalog_selecting, parse_messages


def run_with_catalog(config: dict[str, Any], catalog: dict[str, Any]) -> TapRun:
    tap = TapPrecoro(config=config, catalog=catalog, state={}, validate_config=True)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        tap.sync_all()
    return parse_messages(buffer.getvalue())


def tap_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("tap-")]


def test_a_catalog_entry_for_an_unknown_stream_is_a_warning_and_the_rest_runs(
    sandbox, make_config, caplog
):
    config = make_config(sandbox)
    catalog = catalog_selecting(config, ["taxes"])
    catalog["streams"].append(
        {
            "tap_stream_id": "taxs",
            "stream": "taxs",
            "schema": {"type": "object", "properties": {}},
            "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}],
        }
    )
    with caplog.at_level(logging.WARNING):
        run = run_with_catalog(config, catalog)
    assert [r.args[0] for r in tap_warnings(caplog) if r.args] == ["taxs"]
    assert run.records["taxes"]
    assert set(run.records) == {"taxes"}


def test_a_catalog_selecting_nothing_is_a_warning_and_costs_no_call(sandbox, make_config, caplog):
    config = make_config(sandbox)
    sandbox.admin.reset_counters()
    with caplog.at_level(logging.WARNING):
        run = run_with_catalog(config, catalog_selecting(config, []))
    assert len(tap_warnings(caplog)) == 1
    assert not run.records
    assert sandbox.admin.counters().total == 0


def test_a_matching_selection_warns_of_nothing(sandbox, make_config, caplog):
    config = make_config(sandbox)
    with caplog.at_level(logging.WARNING):
        run = run_with_catalog(config, catalog_selecting(config, ["taxes"]))
    assert tap_warnings(caplog) == []
    assert run.records["taxes"]
