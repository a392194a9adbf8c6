"""A POST whose outcome is unknown is never re-sent before it has had time to settle.

Precoro may apply a POST after the client stopped waiting (a 63 s server delay against
the default 60 s read timeout). The sandbox's `apply_later` fault drops the connection
and applies the write only when its clock has moved on, so the tests move the sandbox
clock instead of sleeping, and count rows per externalId and calls.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from target_precoro.settings import WRITE_SETTLE_SECONDS
from target_precoro.testing import (
    make_config,
    rows_per_external_id,
    run_target,
    singer,
    suppliers,
)

PREFIX = "SETTLE"
MARGIN = 2
"""Seconds beyond the settle period: the `Date` header has whole seconds."""


def _records(n: int = 3) -> list[dict]:
    return suppliers(PREFIX, "Settle", n)


def _rows(sb) -> Counter[str]:
    return rows_per_external_id(sb, PREFIX)


def _calls(sb) -> tuple[int, int]:
    counters = sb.admin.counters()
    return counters.get("POST"), counters.get("GET")


def _first_post_fails(sb, kind: str, **rule) -> None:
    sb.admin.set_faults(
        [{"kind": kind, "route": "/suppliers", "method": "POST", "times": 1, **rule}]
    )


def test_post_applied_after_the_timeout_is_found_not_resent(frozen, tmp_path, capsys):
    _first_post_fails(frozen, "apply_later", delay_seconds=63)
    config = make_config(frozen, tmp_path, match={"suppliers": []})
    text = singer("suppliers", _records(), {"done": True})

    first = run_target(config, text, capsys)
    late = first.by_id()[f"{PREFIX}-0"]
    assert late["outcome"] == "unresolved"
    assert late["final"] is False  # unresolved, not a final failure
    assert [first.outcome_of(f"{PREFIX}-{i}") for i in (1, 2)] == ["created", "created"]
    assert first.states == []  # STATE withheld
    assert [d["record"]["externalId"] for d in first.dead_letter() if "record" in d] == [
        f"{PREFIX}-0"
    ]
    # 3 POSTs (none re-sent), 1 batched look-up + 1 look-up of the lost answer.
    assert _calls(frozen) == (3, 2)
    assert _rows(frozen) == {f"{PREFIX}-1": 1, f"{PREFIX}-2": 1}

    # A re-run within the settle period looks again, still sees nothing, sends nothing.
    frozen.admin.reset_counters()
    again = run_target(config, text, capsys)
    assert again.by_id()[f"{PREFIX}-0"]["final"] is False
    assert again.states == []
    assert _calls(frozen) == (0, 2)  # the modifiedSince refresh and one look-up

    # Precoro finishes the slow POST 63 s later: the next run finds it by look-up.
    frozen.admin.advance_clock(63)
    frozen.admin.reset_counters()
    third = run_target(config, text, capsys)
    assert third.outcome_of(f"{PREFIX}-0") == "created"
    assert third.by_id()[f"{PREFIX}-0"].get("final", True) is True
    assert third.states == [{"done": True}]
    assert _calls(frozen) == (0, 2)
    assert _rows(frozen) == {f"{PREFIX}-{i}": 1 for i in range(3)}

    frozen.admin.reset_counters()
    fourth = run_target(config, text, capsys)
    assert {o["outcome"] for o in fourth.outcomes} == {"unchanged"}
    assert _calls(frozen) == (0, 1)
    assert _rows(frozen) == {f"{PREFIX}-{i}": 1 for i in range(3)}


def test_post_never_applied_is_resent_only_after_the_settle_period(frozen, tmp_path, capsys):
    _first_post_fails(frozen, "drop")  # the sandbox drops it without applying it
    config = make_config(frozen, tmp_path, match={"suppliers": []})
    text = singer("suppliers", _records(1), {"done": True})

    first = run_target(config, text, capsys)
    assert first.by_id()[f"{PREFIX}-0"]["final"] is False
    assert _calls(frozen) == (1, 2)
    assert _rows(frozen) == {}

    frozen.admin.advance_clock(WRITE_SETTLE_SECONDS - 60)  # not yet
    frozen.admin.reset_counters()
    early = run_target(config, text, capsys)
    assert early.by_id()[f"{PREFIX}-0"]["final"] is False
    assert early.states == []
    assert _calls(frozen) == (0, 2)  # the refresh and one look-up, no POST

    frozen.admin.advance_clock(60 + MARGIN)  # the settle period has passed
    frozen.admin.reset_counters()
    late = run_target(config, text, capsys)
    assert late.outcome_of(f"{PREFIX}-0") == "created"
    assert late.states == [{"done": True}]
    assert _calls(frozen) == (1, 2)  # refresh, the deciding look-up, the one POST
    assert _rows(frozen) == {f"{PREFIX}-0": 1}


def test_write_settle_seconds_is_validated(tmp_path):
    from precoro_client.errors import ConfigError
    from target_precoro.settings import TargetSettings

    assert TargetSettings.from_config({}).write_settle_seconds == WRITE_SETTLE_SECONDS
    assert TargetSettings.from_config({"write_settle_seconds": 0}).write_settle_seconds == 0
    with pytest.raises(ConfigError, match="write_settle_seconds"):
        TargetSettings.from_config({"write_settle_seconds": -1})


def test_a_real_read_timeout_is_not_resent(sandbox, tmp_path, capsys):
    """The client gives up after 0.3 s; the sandbox applies the POST after 1 s."""
    _first_post_fails(sandbox, "delay", delay_seconds=1.0)
    config = make_config(
        sandbox, tmp_path, match={"suppliers": []}, read_timeout_seconds=0.3, max_failures=1
    )
    text = singer("suppliers", _records(1), {"done": True})
    before = sandbox.admin.stats()["suppliers"]
    first = run_target(config, text, capsys)
    deadline = time.monotonic() + 30
    # Wait for the server to finish the POST (it counts a request once it answered).
    while sandbox.admin.stats()["suppliers"] == before or not sandbox.admin.counters().get("POST"):
        assert time.monotonic() < deadline, "the delayed POST never landed"
        time.sleep(0.05)
    # Whether the look-up ran before or after Precoro applied it, nothing was re-sent.
    assert sandbox.admin.counters().get("POST") == 1
    again = run_target(config, text, capsys)
    assert again.outcome_of(f"{PREFIX}-0") == "created"
    assert first.states == [] or first.outcome_of(f"{PREFIX}-0") == "created"
    assert sandbox.admin.counters().get("POST") == 1
    assert _rows(sandbox) == {f"{PREFIX}-0": 1}
