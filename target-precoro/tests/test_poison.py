"""Lines the reader cannot use are rejected one by one; the rest of the input is written.

Each poison line sits between two valid records: both must reach Precoro, the poison
line must be in `rejected-lines.jsonl` with its line number and reason, the report and
summary must be written, and STATE must pass (a rejected line is kept aside, final).
"""

from __future__ import annotations

import json

import pytest
from target_precoro.reader import MAX_LINE_CHARS, MAX_NESTING
from target_precoro.testing import api_records, make_config, run_target, schema_line


def _record(ext: str, name: str = "Valid Vendor") -> str:
    record = {"externalId": ext, "name": f"{name} {ext}", "country": "France"}
    return json.dumps({"type": "RECORD", "stream": "suppliers", "record": record})


def _poison_record(name_json: str) -> str:
    return (
        '{"type": "RECORD", "stream": "suppliers", "record": '
        f'{{"externalId": "P-BAD", "name": {name_json}, "country": "France"}}}}'
    )


POISON: dict[str, tuple[bytes, str]] = {
    "lone_surrogate": (_poison_record('"Bad \\ud800 name"').encode(), "lone surrogate"),
    "deep_nesting": (_poison_record("[" * 5000 + "]" * 5000).encode(), "nested too deeply"),
    "nesting_over_limit": (
        _poison_record("[" * (MAX_NESTING + 5) + "]" * (MAX_NESTING + 5)).encode(),
        f"nested deeper than {MAX_NESTING}",
    ),
    "oversize_line": (
        _poison_record(json.dumps("x" * MAX_LINE_CHARS)).encode(),
        "longer than",
    ),
    "invalid_utf8": (_poison_record('"Bad \xff\xfe name"').encode("latin-1"), "invalid UTF-8"),
    "record_before_schema": (
        b'{"type": "RECORD", "stream": "taxes", "record": {"externalId": "T-1"}}',
        "before a corresponding schema",
    ),
    "unknown_type": (b'{"type": "GREETING", "text": "hello"}', "unknown Singer message type"),
    "type_not_string": (b'{"type": ["RECORD"]}', "needs a 'type'"),
    "json_array": (b"[1, 2, 3]", "a JSON list, not an object"),
    "json_string": (b'"RECORD"', "a JSON str, not an object"),
    "not_json": (b'{"type": "RECORD", "stream": ', "not JSON"),
    "schema_not_object": (b'{"type": "SCHEMA", "stream": "taxes", "schema": 5}', "TypeError"),
}


@pytest.mark.parametrize("kind", sorted(POISON))
def test_a_poison_line_is_rejected_and_later_records_are_written(sandbox, tmp_path, capsys, kind):
    poison, reason = POISON[kind]
    text = b"\n".join(
        [
            schema_line("suppliers").encode(),
            _record("PZ-0").encode(),
            poison,
            _record("PZ-1").encode(),
            b'{"type": "STATE", "value": {"pos": 1}}',
            b"",
        ]
    )
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, max_failures=1)
    result = run_target(config, text, capsys)
    assert result.exit_code == 0
    (rejected,) = result.rejected()
    assert rejected["line"] == 3
    assert reason in rejected["reason"], rejected["reason"]
    assert len(rejected["text"]) <= 10000
    assert result.summary["totals"] == {"created": 2, "invalid": 1}
    assert result.states == [{"pos": 1}]
    for ext in ("PZ-0", "PZ-1"):
        (row,) = api_records(sandbox, "/suppliers", **{"external_id[]": ext})
        assert row["name"] == f"Valid Vendor {ext}"
    assert api_records(sandbox, "/suppliers", **{"external_id[]": "P-BAD"}) == []


def test_an_unexpected_error_still_writes_the_report_and_exits_1(
    sandbox, tmp_path, capsys, monkeypatch
):
    """Last resort: a bug inside a batch halts the run, but nothing is lost silently."""
    from target_precoro.upsert import Upserter

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Upserter, "_run_group", broken)
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    text = "\n".join([schema_line("suppliers"), _record("UE-0"), _record("UE-1")]) + "\n"
    text += '{"type": "STATE", "value": {"pos": 1}}\n'
    result = run_target(config, text, capsys)
    assert result.exit_code == 1
    assert "ZeroDivisionError: a bug" in result.summary["halted"]
    assert {o["external_id"]: o["final"] for o in result.outcomes} == {"UE-0": False, "UE-1": False}
    assert [m["record"]["externalId"] for m in result.dead_letter()[1:]] == ["UE-0", "UE-1"]
    assert result.states == []


def test_an_error_outside_any_record_still_writes_the_report(
    sandbox, tmp_path, capsys, monkeypatch
):
    from target_precoro.target import TargetPrecoro

    def broken(self: TargetPrecoro, *args: object, **kwargs: object) -> None:
        raise MemoryError("out of memory")

    monkeypatch.setattr(TargetPrecoro, "_drain_all", broken)
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    text = "\n".join([schema_line("suppliers"), _record("UO-0")]) + "\n"
    result = run_target(config, text, capsys)
    assert result.exit_code == 1
    assert "MemoryError" in result.summary["halted"]
    assert [o["external_id"] for o in result.outcomes if not o["final"]] == ["UO-0"]


def test_an_error_while_draining_is_not_blamed_on_the_input_line(
    sandbox, tmp_path, capsys, monkeypatch
):
    import sqlite3

    from target_precoro.versions import VersionStore

    def broken(self: VersionStore) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(VersionStore, "flush", broken)
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, batch_size_rows=1)
    text = "\n".join([schema_line("suppliers"), _record("DE-0"), _record("DE-1")]) + "\n"
    result = run_target(config, text, capsys)
    assert result.exit_code == 1
    assert "OperationalError: disk I/O error" in result.summary["halted"]
    assert result.rejected() == []  # the lines were fine
    assert [(o["external_id"], o["outcome"]) for o in result.outcomes] == [("DE-0", "created")]


def test_reading_leaves_the_callers_input_stream_open():
    """The UTF-8 re-decoding layer is taken off after the run, not left to close stdin."""
    import io

    from target_precoro.reader import LineNumberReader

    raw = io.BytesIO(b'{"type": "STATE", "value": {}}\n')
    source = io.TextIOWrapper(raw, encoding="utf-8")
    seen: list[dict] = []
    stats = LineNumberReader().process_lines(source, {"STATE": seen.append})
    assert stats == {"STATE": 1}
    assert seen == [{"type": "STATE", "value": {}}]
    assert not raw.closed
    source.close()
