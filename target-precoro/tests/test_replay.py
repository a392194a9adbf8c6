"""Replaying a dead-letter file never writes an older version over a newer one."""

from __future__ import annotations

import json
from typing import Any

from target_precoro.testing import api_records, make_config, run_target, singer


def _vendor(ext: str, version: int) -> dict[str, Any]:
    return {"externalId": ext, "name": f"Replay Vendor {ext} v{version}", "country": "Italy"}


def _name_in_precoro(sb: Any, ext: str) -> str:
    (row,) = api_records(sb, "/suppliers", **{"external_id[]": ext})
    return str(row["name"])


def _replay_text(result: Any) -> str:
    return "".join(json.dumps(m) + "\n" for m in result.dead_letter())


def _writes(sb: Any) -> int:
    counters = sb.admin.counters()
    return sum(counters.get(method=m) for m in ("POST", "PUT", "PATCH"))


def test_superseded_records_are_not_dead_lettered(sandbox, tmp_path, capsys):
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    records = [_vendor("RP-1", 1), _vendor("RP-2", 1), _vendor("RP-1", 2), _vendor("RP-1", 3)]
    sandbox.admin.set_faults(
        [{"kind": "status", "status": 422, "route": "/suppliers", "method": "POST",
          "schedule": [1]}]
    )  # fmt: skip
    result = run_target(config, singer("suppliers", records), capsys)
    assert [o["outcome"] for o in result.outcomes if o["external_id"] == "RP-1"] == [
        "skipped",
        "skipped",
        "failed",  # v3 is refused once: dead-lettered, to be fixed and replayed
    ]
    dead = [m["record"] for m in result.dead_letter() if m["type"] == "RECORD"]
    assert dead == [_vendor("RP-1", 3)]  # not v1 or v2: they are final, replaying them reverts
    sandbox.admin.clear_faults()
    replay = run_target(config, _replay_text(result), capsys)
    assert replay.outcome_of("RP-1") == "created"
    assert _name_in_precoro(sandbox, "RP-1") == "Replay Vendor RP-1 v3"


def test_replaying_an_older_dead_letter_keeps_the_newer_values(sandbox, tmp_path, capsys):
    """v1 fails in one batch, v2 is written in a later batch and a later run: replay skips v1."""
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, batch_size_rows=2)
    sandbox.admin.set_faults(
        [{"kind": "status", "status": 422, "route": "/suppliers", "method": "POST",
          "schedule": [1, 2]}]
    )  # fmt: skip
    first = [_vendor("RO-1", 1), _vendor("RO-2", 1), _vendor("RO-3", 1), _vendor("RO-1", 2)]
    result = run_target(config, singer("suppliers", first), capsys)
    assert [o["outcome"] for o in result.outcomes] == ["failed", "failed", "created", "created"]
    sandbox.admin.clear_faults()
    later = run_target(config, singer("suppliers", [_vendor("RO-2", 2)]), capsys)
    assert later.outcome_of("RO-2") == "created"

    sandbox.admin.reset_counters()
    replay = run_target(config, _replay_text(result), capsys)
    assert replay.outcome_of("RO-1") == "skipped"
    assert replay.outcome_of("RO-2") == "skipped"
    assert "newer version" in replay.by_id()["RO-1"]["message"]
    assert _writes(sandbox) == 0
    assert _name_in_precoro(sandbox, "RO-1") == "Replay Vendor RO-1 v2"
    assert _name_in_precoro(sandbox, "RO-2") == "Replay Vendor RO-2 v2"
    assert replay.dead_letter() == []  # final: nothing left to replay
    assert replay.exit_code == 0
