"""Look-ups fit any externalId length: batched by URL budget, too-long ids are `invalid`.

The sandbox answers 414 to request targets over 8192 bytes, as nginx does by default.
"""

from __future__ import annotations

import math
from collections import Counter
from urllib.parse import urlencode

from target_precoro.index import MAX_LOOKUP_QUERY_BYTES, PAGING_BYTES
from target_precoro.testing import api_records, make_config, run_target, singer

PREFIX = "LONG"
N = 200
ID_LENGTH = 400


def _records() -> list[dict]:
    return [
        {
            "externalId": f"{PREFIX}-{i:03d}-".ljust(ID_LENGTH, "x"),
            "name": f"Long Id Vendor {i}",
            "country": "Spain",
        }
        for i in range(N)
    ]


def test_two_hundred_long_ids_are_looked_up_within_the_url_budget(sandbox, tmp_path, capsys):
    records = _records()
    too_long = {"externalId": "HUGE-" + "y" * 9000, "name": "Huge Id", "country": "Spain"}
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, max_failures=1)
    sandbox.admin.reset_counters()
    result = run_target(config, singer("suppliers", [*records, too_long]), capsys)

    outcomes = result.by_id()
    assert Counter(o["outcome"] for o in result.outcomes) == {"created": N, "invalid": 1}
    huge = outcomes[too_long["externalId"]]
    assert huge["outcome"] == "invalid"
    assert "too long to look up" in huge["message"]
    assert [d["record"]["name"] for d in result.dead_letter() if "record" in d] == ["Huge Id"]
    assert result.exit_code == 0  # within max_failures: the run went on

    counters = sandbox.admin.counters()
    assert counters.get(status=414) == 0
    # As few look-ups as the URL budget allows: every id costs the same bytes here.
    per_id = len(urlencode([("external_id[]", records[0]["externalId"])])) + 1
    minimum = math.ceil(N * per_id / (MAX_LOOKUP_QUERY_BYTES - PAGING_BYTES))
    assert counters.get("GET") == minimum == 12
    assert counters.get("POST") == N
    longest = max(len(e["path"]) + 1 + len(e["query"]) for e in sandbox.admin.requests())
    assert longest < 8192

    rows = Counter(
        r["externalId"] for r in api_records(sandbox, "/suppliers") if r.get("externalId")
    )
    assert all(rows[r["externalId"]] == 1 for r in records)
    assert rows[too_long["externalId"]] == 0

    sandbox.admin.reset_counters()
    again = run_target(config, singer("suppliers", records), capsys)
    assert {o["outcome"] for o in again.outcomes} == {"unchanged"}
    assert sandbox.admin.counters().get("GET") == 1  # the refresh; the index vouches


def test_a_server_with_a_lower_url_limit_gets_smaller_look_ups(sandbox_factory, tmp_path, capsys):
    """Precoro's real limit is unknown: a 414 halves the budget instead of ending the run."""
    sb = sandbox_factory(limits="off", max_url_bytes=3000)
    records = [
        {"externalId": f"MID-{i:03d}-".ljust(100, "m"), "name": f"Mid {i}", "country": "Spain"}
        for i in range(N)
    ]
    refused = {"externalId": "BIG-" + "b" * 3500, "name": "Big Id", "country": "Spain"}
    config = make_config(sb, tmp_path, match={"suppliers": []}, max_failures=1)
    result = run_target(config, singer("suppliers", [*records, refused]), capsys)
    assert Counter(o["outcome"] for o in result.outcomes) == {"created": N, "invalid": 1}
    assert "HTTP 414" in result.by_id()[refused["externalId"]]["message"]
    counters = sb.admin.counters()
    assert counters.get("POST") == N  # the refused id is not created blindly
    # [big id + 30 ids] -> 414, budget halved; [big id] alone -> 414, refused;
    # [29 ids] -> 414, budget halved again; then 14 ids per call: 15 look-ups.
    assert counters.get("GET", status=414) == 3
    assert counters.get("GET", status=200) == math.ceil(N / 14) == 15
    rows = Counter(r["externalId"] for r in api_records(sb, "/suppliers") if r.get("externalId"))
    assert all(rows[r["externalId"]] == 1 for r in records)
    assert rows[refused["externalId"]] == 0
