"""`report.html` beside report.jsonl and summary.json (issue 12): counts, changes, escaping."""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from target_helpers import make_config, run_target, singer
from target_precoro.html_report import write_html, write_html_to
from target_precoro.report import RUN_FOLDER, prune_reports


class Page(HTMLParser):
    """What a reader of the page sees: count cells, record rows, scripts and links."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.counts: dict[tuple[str, str], str] = {}
        self.rows: list[dict[str, Any]] = []
        self.calls: dict[str, str] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._cell: tuple[str, str] | None = None
        self._row: dict[str, Any] | None = None
        self._in_records = False
        self._in_calls = False
        self._th = ""
        self._text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._in_records = a.get("id") == "records"
            self._in_calls = a.get("id") == "calls"
        if tag == "td" and "data-outcome" in a and not self._in_records:
            self._cell = (a["data-stream"] or "", a["data-outcome"] or "")
            self._text = []
        if tag == "tr" and self._in_records and "data-outcome" in a:
            self._row = {"outcome": a["data-outcome"], "stream": a["data-stream"], "cells": []}
        if tag == "td" and self._row is not None:
            self._text = []
        if tag in ("th", "td") and self._in_calls:
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.counts[self._cell] = "".join(self._text).strip()
            self._cell = None
        elif tag == "td" and self._row is not None:
            self._row["cells"].append("".join(self._text).strip())
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == "th" and self._in_calls:
            self._th = "".join(self._text).strip()
        elif tag == "td" and self._in_calls:
            self.calls[self._th] = "".join(self._text).strip()
        elif tag == "table":
            self._in_records = self._in_calls = False

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def page_of(run_dir: Path) -> Page:
    return Page((run_dir / "report.html").read_text(encoding="utf-8"))


def _vendors(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {"externalId": f"{prefix}-{i}", "name": f"Html Vendor {i}", "country": "France"}
        for i in range(n)
    ]


def test_the_page_shows_the_counts_per_stream_and_each_records_change(sandbox, tmp_path):
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    vendors = _vendors("HTML", 3)
    first = run_target(config, singer("suppliers", vendors))
    assert first.exit_code == 0
    vendors[1]["name"] = "Html Vendor One Renamed"
    invalid = {"externalId": "HTML-BAD", "name": "No country", "country": 17}
    second = run_target(config, singer("suppliers", [*vendors, invalid]))

    page = page_of(second.report_dir)
    streams = second.summary["streams"]
    assert streams["suppliers"] == {"unchanged": 2, "updated": 1, "invalid": 1}
    for outcome, n in streams["suppliers"].items():
        assert page.counts[("suppliers", outcome)] == str(n)
        assert page.counts[("", outcome)] == str(second.summary["totals"][outcome])
    assert page.counts[("suppliers", "")] == "4"
    # One row per report line, in order, with its outcome.
    assert [r["outcome"] for r in page.rows] == [o["outcome"] for o in second.outcomes]
    updated = next(r for r in page.rows if r["outcome"] == "updated")
    assert updated["cells"][2] == "HTML-1"
    assert updated["cells"][5] == "name: Html Vendor 1 → Html Vendor One Renamed"
    bad = next(r for r in page.rows if r["outcome"] == "invalid")
    assert "country" in bad["cells"][6]  # the reason names the field
    # The report line carries the same change (old -> new) the page shows.
    line = second.by_id()["HTML-1"]
    assert line["changes"] == {"name": {"old": "Html Vendor 1", "new": "Html Vendor One Renamed"}}
    # Calls: what summary.json says, and the budget before and after.
    calls = second.summary["calls"]
    assert page.calls["calls made by this run"] == str(calls["total"])
    assert page.calls["PUT requests"] == "1"
    start, end = second.summary["budget_left_at_start"], second.summary["budget_left_today"]
    assert start - end == calls["total"]  # this run is the only one on its ledger
    assert page.calls["budget used during the run (every process on this budget)"] == str(
        calls["total"]
    )
    assert second.summary["calls_over_run"][-1][1:] == [4, calls["total"]]
    # Created records show each field sent, from nothing.
    created = page_of(first.report_dir).rows[0]
    assert "externalId: none → HTML-0" in created["cells"][5]


def test_record_values_are_escaped_and_secrets_stay_out(sandbox, tmp_path):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    record = {"externalId": 'XSS-"><b>1', "name": hostile, "country": "France"}
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, dry_run=True)
    result = run_target(config, singer("suppliers", [record]))
    text = (result.report_dir / "report.html").read_text(encoding="utf-8")
    page = Page(text)

    # Only the page's own script, no element from the record, no external resource.
    assert [t for t, _ in page.tags if t == "script"] == ["script"]
    assert not [t for t, _ in page.tags if t in ("img", "b", "link", "iframe")]
    assert not [a for _, a in page.tags if "src" in a or "onerror" in a]
    assert "http://" not in text
    assert "https://" not in text
    # The text a reader sees is the value itself.
    row = page.rows[0]
    assert row["cells"][2] == 'XSS-"><b>1'
    assert hostile in row["cells"][5]
    assert sandbox.token not in text
    assert 'id="dry-run"' in text


def _report_lines(run_dir: Path, n: int) -> None:
    run_dir.mkdir(parents=True)
    with (run_dir / "report.jsonl").open("w") as out:
        for i in range(n):
            line = {
                "stream": "suppliers",
                "external_id": f"S-{i}",
                "outcome": "updated" if i % 2 else "failed",
                "changes": {"name": {"old": f"old {i} " * 5, "new": f"new {i} " * 5}},
                "message": "" if i % 2 else "HTTP 422: name is too long " * 3,
                "line": i + 2,
            }
            out.write(json.dumps(line) + "\n")


def test_rows_are_streamed_from_report_jsonl_not_held_in_memory(tmp_path):
    run_dir = tmp_path / "run"
    n = 20_000
    _report_lines(run_dir, n)
    summary = {"run_id": "r", "streams": {"suppliers": {"updated": n // 2, "failed": n // 2}}}
    summary["totals"] = summary["streams"]["suppliers"]
    sink = io.StringIO()
    write_html_to(sink, run_dir, summary)  # warm-up (imports, caches)

    class Discard(io.TextIOBase):
        written = 0

        def write(self, text: str) -> int:
            self.written += len(text)
            return len(text)

    out = Discard()
    tracemalloc.start()
    write_html_to(out, run_dir, summary)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = (run_dir / "report.jsonl").stat().st_size
    assert out.written > size  # every row was written ...
    assert peak < size / 10  # ... without holding the report (or the page) in memory
    assert sink.getvalue().count("<tr data-outcome=") == n


def test_a_damaged_report_line_is_shown_not_fatal(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "report.jsonl").write_text('{"stream": "suppliers", "outcome": "created"}\n{oops\n')
    page = Page(write_html(run_dir, {"run_id": "r"}).read_text())
    assert [r["outcome"] for r in page.rows] == ["created", "?"]
    assert "line 2 is damaged" in page.rows[1]["cells"][6]


def test_the_page_is_pruned_with_its_run(sandbox, tmp_path):
    config = make_config(sandbox, tmp_path, report_retention_days=1)
    first = run_target(config, singer("suppliers", _vendors("PRUNE", 1)))
    assert (first.report_dir / "report.html").exists()
    # The same run, as if it had started two days ago.
    match = RUN_FOLDER.match(first.report_dir.name)
    assert match is not None
    old = datetime.now(UTC) - timedelta(days=2)
    aged = first.report_dir.with_name(old.strftime("%Y%m%dT%H%M%S%fZ") + "-4242")
    first.report_dir.rename(aged)

    second = run_target(config, singer("suppliers", _vendors("PRUNE", 1)))
    assert not aged.exists()
    assert (second.report_dir / "report.html").exists()
    assert prune_reports(tmp_path / "reports", 1, datetime.now(UTC)) == []
