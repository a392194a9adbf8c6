"""`start_date` and per-stream `stream_start_dates` bound the first read."""

from __future__ import annotations

from precoro_sandbox.testing import all_rows, client
from tap_precoro.bookmarks import parse_timestamp


def _median_update(sb, stream: str) -> str:
    rows = all_rows(client(sb), f"{sb.url}/{stream}")
    dates = sorted(parse_timestamp(r["updateDate"]) for r in rows)
    return dates[len(dates) // 2].isoformat()


def test_stream_start_date_overrides_the_global_one(sandbox, make_config, run_tap):
    suppliers_from = _median_update(sandbox, "suppliers")
    items_from = _median_update(sandbox, "items")
    sandbox.admin.reset_counters()
    config = make_config(
        sandbox,
        start_date=items_from,
        stream_start_dates={"suppliers": suppliers_from},
        fetch_details=False,
    )
    run = run_tap(config, streams=["suppliers", "items"])

    for stream, start in (("suppliers", suppliers_from), ("items", items_from)):
        everything = all_rows(client(sandbox), f"{sandbox.url}/{stream}")
        expected = {
            r["id"]
            for r in everything
            if parse_timestamp(r["updateDate"]) >= parse_timestamp(start)
        }
        assert set(run.ids(stream)) == expected, stream
        assert 0 < len(expected) < len(everything)
