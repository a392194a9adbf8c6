"""What reading back the target's own writes costs (issue 16, part 5).

A write's answer (id, fields, `updateDate`) is stored in the index as the record's
state, so a run never reads a record back after writing it. The next run's
`modifiedSince` refresh still returns what the run wrote (those records changed after
the run started, where the next refresh begins): one page per 200 records written, on
top of the one page every refresh pays. Calls are counted by the sandbox.
"""

from __future__ import annotations

from collections import Counter

from target_precoro.testing import make_config, run_target, singer, suppliers

WRITTEN = 250
"""Records written: two `external_id[]` look-ups, then two refresh pages (200 a page)."""


def _calls(sb) -> dict[str, int]:
    counters = sb.admin.counters()
    return {m: counters.get(m) for m in ("GET", "POST", "PUT", "PATCH") if counters.get(m)}


def test_writes_are_not_read_back_and_the_next_refresh_pays_a_page_per_200(
    frozen, tmp_path, capsys
):
    config = make_config(frozen, tmp_path, match={"suppliers": []})
    records = suppliers("READBACK", "Read Back", WRITTEN)
    text = singer("suppliers", records)

    frozen.admin.reset_counters()
    first = run_target(config, text, capsys)
    assert Counter(o["outcome"] for o in first.outcomes) == {"created": WRITTEN}
    assert _calls(frozen) == {"GET": 2, "POST": WRITTEN}  # the look-ups; no GET after a write

    frozen.admin.advance_clock(3600)
    frozen.admin.reset_counters()
    second = run_target(config, text, capsys)
    assert Counter(o["outcome"] for o in second.outcomes) == {"unchanged": WRITTEN}
    assert _calls(frozen) == {"GET": 2}  # the refresh pages through the first run's writes

    frozen.admin.advance_clock(3600)
    frozen.admin.reset_counters()
    third = run_target(config, text, capsys)
    assert Counter(o["outcome"] for o in third.outcomes) == {"unchanged": WRITTEN}
    assert _calls(frozen) == {"GET": 1}  # nothing written since: the page paid anyway
