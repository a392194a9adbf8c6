"""The index heals itself: records Precoro lost are re-created, not reported `unchanged`.

The sandbox's data reset stands for an account reset or restore: every record the
target created is gone while its index still vouches for them.
"""

from __future__ import annotations

from collections import Counter

from precoro_sandbox.testing import client
from target_precoro.settings import INDEX_RECHECK_HOURS
from target_precoro.testing import (
    api_records,
    make_config,
    rows_per_external_id,
    run_target,
    singer,
    suppliers,
)

PREFIX = "RECHECK"


def _records(n: int = 3) -> list[dict]:
    return suppliers(PREFIX, "Recheck", n)


def _rows(sb) -> Counter[str]:
    return rows_per_external_id(sb, PREFIX)


def _calls(sb) -> dict[str, int]:
    counters = sb.admin.counters()
    return {m: counters.get(m) for m in ("GET", "POST", "PUT", "PATCH") if counters.get(m)}


ALL = {f"{PREFIX}-{i}": 1 for i in range(3)}


def test_lost_records_are_recreated_once_the_recheck_is_due(frozen, tmp_path, capsys):
    config = make_config(frozen, tmp_path, match={"suppliers": []})
    text = singer("suppliers", _records())
    first = run_target(config, text, capsys)
    assert {o["outcome"] for o in first.outcomes} == {"created"}
    frozen.admin.reset_data()  # the account is reset: the three records are gone
    assert _rows(frozen) == {}

    # Within index_recheck_hours the index still vouches for them: no look-up, no write
    # (the price of 0 calls for unchanged records).
    frozen.admin.reset_counters()
    early = run_target(config, text, capsys)
    assert {o["outcome"] for o in early.outcomes} == {"unchanged"}
    assert _calls(frozen) == {"GET": 1}  # the modifiedSince refresh only

    frozen.admin.advance_clock(INDEX_RECHECK_HOURS * 3600 + 2)
    frozen.admin.reset_counters()
    due = run_target(config, text, capsys)
    assert {o["outcome"] for o in due.outcomes} == {"created"}
    assert _calls(frozen) == {"GET": 2, "POST": 3}  # refresh, one look-up for 3 ids
    assert _rows(frozen) == ALL

    frozen.admin.reset_counters()
    after = run_target(config, text, capsys)
    assert {o["outcome"] for o in after.outcomes} == {"unchanged"}
    assert _calls(frozen) == {"GET": 1}
    assert _rows(frozen) == ALL


def test_index_recheck_hours_0_rechecks_every_record_now(frozen, tmp_path, capsys):
    config = make_config(frozen, tmp_path, match={"suppliers": []})
    text = singer("suppliers", _records())
    run_target(config, text, capsys)
    frozen.admin.reset_data()
    frozen.admin.reset_counters()
    forced = run_target({**config, "index_recheck_hours": 0}, text, capsys)
    assert {o["outcome"] for o in forced.outcomes} == {"created"}
    assert _calls(frozen) == {"GET": 2, "POST": 3}
    assert _rows(frozen) == ALL


def test_put_answering_404_recreates_the_record(frozen, tmp_path, capsys):
    config = make_config(frozen, tmp_path, match={"suppliers": []})
    records = _records()
    run_target(config, singer("suppliers", records), capsys)
    frozen.admin.reset_data()
    records[1]["city"] = "Lyon"  # a change: the target PUTs to the lost record
    frozen.admin.reset_counters()
    second = run_target(config, singer("suppliers", records), capsys)
    assert second.outcome_of(f"{PREFIX}-1") == "created"
    # refresh, the look-up after the 404; the PUT that found nothing; the re-creating POST
    assert _calls(frozen) == {"GET": 2, "PUT": 1, "POST": 1}
    assert frozen.admin.counters().get("PUT", status=404) == 1
    assert _rows(frozen) == {f"{PREFIX}-1": 1}
    stored = api_records(frozen, "/suppliers", **{"external_id[]": f"{PREFIX}-1"})
    assert stored[0]["city"] == "Lyon"
    assert second.by_id()[f"{PREFIX}-1"]["precoro_id"] == stored[0]["id"]


def test_lost_record_is_relinked_when_precoro_has_it_without_externalid(frozen, tmp_path, capsys):
    config = make_config(frozen, tmp_path)  # the registry's linking rules
    text = singer("suppliers", _records(1))
    run_target(config, text, capsys)
    frozen.admin.reset_data()  # restored from a backup taken before the export...
    restored = client(frozen).post(
        f"{frozen.url}/suppliers", data={"name": "Recheck Vendor 0", "country": "France"}
    )  # ...where the record exists, without externalId
    assert restored.status_code == 201
    frozen.admin.advance_clock(INDEX_RECHECK_HOURS * 3600 + 2)
    frozen.admin.reset_counters()
    due = run_target(config, text, capsys)
    assert due.outcome_of(f"{PREFIX}-0") == "linked"
    assert due.by_id()[f"{PREFIX}-0"]["precoro_id"] == restored.json()["id"]
    assert _calls(frozen) == {"GET": 2, "PATCH": 1}  # refresh, look-up, the link
    assert _rows(frozen) == {f"{PREFIX}-0": 1}


def test_a_daily_run_rechecks_every_day_despite_schedule_jitter(frozen, tmp_path, capsys):
    """Rows count as confirmed at their run's start; 5% tolerance absorbs an early start."""
    config = make_config(frozen, tmp_path, match={"suppliers": []})
    text = singer("suppliers", _records())
    run_target(config, text, capsys)
    # Day 1's refresh re-reads day 0's writes (lookback_minutes): that confirms them.
    # Days 2 and 3, each started 30 s earlier than the day before, re-check the 3 ids.
    for day, gets in ((1, 1), (2, 2), (3, 2)):
        frozen.admin.advance_clock(INDEX_RECHECK_HOURS * 3600 - 30 * day)
        frozen.admin.reset_counters()
        daily = run_target(config, text, capsys)
        assert {o["outcome"] for o in daily.outcomes} == {"unchanged"}
        assert _calls(frozen) == {"GET": gets}, day
    frozen.admin.advance_clock(3600)  # an extra run an hour later: nothing is due
    frozen.admin.reset_counters()
    run_target(config, text, capsys)
    assert _calls(frozen) == {"GET": 1}


def test_a_failed_look_up_after_a_404_leaves_the_record_for_the_next_run(frozen, tmp_path, capsys):
    config = make_config(frozen, tmp_path, match={"suppliers": []})
    records = _records(1)
    run_target(config, singer("suppliers", records), capsys)
    frozen.admin.reset_data()
    records[0]["city"] = "Lyon"
    text = singer("suppliers", records, {"done": True})
    # The refresh (GET 1) works; both tries of the look-up after the 404 get a 503.
    frozen.admin.set_faults(
        [{"kind": "status", "status": 503, "route": "/suppliers", "method": "GET",
          "schedule": [2, 3]}]
    )  # fmt: skip
    second = run_target(config, text, capsys)
    assert second.by_id()[f"{PREFIX}-0"]["outcome"] == "failed"
    assert second.by_id()[f"{PREFIX}-0"]["final"] is False
    assert second.states == []
    assert _rows(frozen) == {}
    frozen.admin.clear_faults()
    frozen.admin.reset_counters()
    third = run_target(config, text, capsys)
    assert third.outcome_of(f"{PREFIX}-0") == "created"
    assert _calls(frozen) == {"GET": 2, "POST": 1}  # the index forgot the lost record
    assert _rows(frozen) == {f"{PREFIX}-0": 1}
