"""`unresolved`: a POST awaiting its settle period is its own outcome, not a failure.

It is not final (STATE withheld, a later run looks it up), it is dead-lettered as
unfinished, counted apart in the summary, and does not count against `max_failures`;
a real failure in the same run still does.
"""

from __future__ import annotations

import pytest
from precoro_sandbox.testing import START
from target_precoro.testing import make_config, run_target, singer

PREFIX = "UNRES"


@pytest.fixture
def frozen(sandbox_factory):
    return sandbox_factory(limits="off", clock_start=START, clock_frozen=True)


def _records(n: int) -> list[dict]:
    return [
        {"externalId": f"{PREFIX}-{i}", "name": f"Unresolved Vendor {i}", "country": "France"}
        for i in range(n)
    ]


def _late_first_post(sb) -> None:
    sb.admin.set_faults(
        [{"kind": "apply_later", "route": "/suppliers", "method": "POST", "delay_seconds": 63,
          "schedule": [1]}]
    )  # fmt: skip


def test_unresolved_is_its_own_outcome_and_not_a_failure(frozen, tmp_path, capsys):
    _late_first_post(frozen)
    config = make_config(frozen, tmp_path, match={"suppliers": []}, max_failures=0)
    first = run_target(config, singer("suppliers", _records(3), {"done": True}), capsys)
    line = first.by_id()[f"{PREFIX}-0"]
    assert (line["outcome"], line["final"]) == ("unresolved", False)
    assert first.exit_code == 0  # max_failures 0, yet the run did not fail
    assert first.summary["totals"] == {"created": 2, "unresolved": 1}
    assert first.summary["unfinished_records"] == 1
    dead = [m for m in first.dead_letter() if m["type"] == "RECORD"]
    assert [(m["record"]["externalId"], m["error"]["outcome"]) for m in dead] == [
        (f"{PREFIX}-0", "unresolved")
    ]
    assert first.states == []

    # A re-run within the settle period: still unresolved, still not a failure.
    again = run_target(config, singer("suppliers", _records(3), {"done": True}), capsys)
    assert again.outcome_of(f"{PREFIX}-0") == "unresolved"
    assert again.exit_code == 0
    assert again.summary["totals"] == {"unchanged": 2, "unresolved": 1}


def test_a_real_failure_beside_an_unresolved_one_still_counts(frozen, tmp_path, capsys):
    _late_first_post(frozen)
    config = make_config(frozen, tmp_path, match={"suppliers": []}, max_failures=0)
    records = [*_records(2), {"externalId": f"{PREFIX}-bad", "country": "France"}]  # no name
    result = run_target(config, singer("suppliers", records, {"done": True}), capsys)
    assert result.outcome_of(f"{PREFIX}-0") == "unresolved"
    assert result.outcome_of(f"{PREFIX}-bad") == "invalid"
    assert result.exit_code == 1  # the invalid record exceeds max_failures 0
