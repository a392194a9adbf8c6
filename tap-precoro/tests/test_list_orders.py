"""No id and no version is lost whatever the list order, when rows change, appear or
leave a filtered result while the tap pages (the sandbox makes each change right
after the k-th list page it serves, so every case is deterministic)."""

from __future__ import annotations

from typing import Any

import pytest
from precoro_sandbox.testing import all_rows, client

ORDERS = ["id", "id_desc", "updated_asc", "updated_desc", "created", "shuffle"]
PAGE = 10


def latest_emitted(*runs: Any, stream: str) -> dict[int, str]:
    """Last updateDate emitted per id across runs (later runs win)."""
    latest: dict[int, str] = {}
    for run in runs:
        for record in run.records.get(stream, []):
            latest[int(record["id"])] = str(record["updateDate"])
    return latest


def stored_versions(sb: Any, stream: str, **params: Any) -> dict[int, str]:
    """What Precoro holds now (read after the counted part): updateDate per id."""
    rows = all_rows(client(sb), f"{sb.url}/{stream}", **params)
    return {int(row["id"]): str(row["updateDate"]) for row in rows}


def assert_nothing_lost(stored: dict[int, str], emitted: dict[int, str]) -> None:
    missing = sorted(set(stored) - set(emitted))
    stale = sorted(i for i in stored if i in emitted and emitted[i] != stored[i])
    assert not missing, f"ids never emitted: {missing}"
    assert not stale, f"ids whose latest version was never emitted: {stale}"


def assert_each_run_emits_a_record_once(*runs: Any) -> None:
    for run in runs:
        for stream, records in run.records.items():
            ids = [r["id"] for r in records]
            assert len(ids) == len(set(ids)), f"{stream} emitted a record twice in one run"


def two_runs(sb: Any, config: dict[str, Any], streams: list[str]) -> tuple[Any, Any]:
    """A run during which the armed changes happen, then the next run."""
    first = _run(config, None, streams)
    plan = sb.admin.paging_mutations()
    assert not plan["rules"], f"changes armed but never made: {plan['rules']}"
    sb.admin.set_paging_mutations([])
    sb.admin.advance_clock(60)
    second = _run(config, first.state, streams)
    return first, second


def _run(config: dict[str, Any], state: dict[str, Any] | None, streams: list[str]) -> Any:
    from tap_precoro.testing import run_tap

    return run_tap(config, state=state, streams=streams)


@pytest.mark.parametrize("order", ORDERS)
def test_an_edit_while_paging_loses_nothing(sandbox_factory, make_config, order):
    """Edits of rows already read: under updateDate-ascending order the row moves to
    the end and the row at the next page boundary shifts onto a page already read."""
    sb = sandbox_factory(order=order)
    sb.admin.set_paging_mutations(
        [
            {"entity": "suppliers", "after_page": 1, "row": 2},
            {"entity": "suppliers", "after_page": 2, "row": 0},
            {"entity": "suppliers", "after_page": 2, "action": "insert"},
        ]
    )
    config = make_config(sb, page_size=PAGE, fetch_details=False, lookback_minutes=0)
    first, second = two_runs(sb, config, ["suppliers"])
    assert_each_run_emits_a_record_once(first, second)
    assert_nothing_lost(
        stored_versions(sb, "suppliers"), latest_emitted(first, second, stream="suppliers")
    )
