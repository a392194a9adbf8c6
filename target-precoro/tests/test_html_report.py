"""`report.html` beside report.jsonl and summary.json (issue 12): counts, changes, escaping."""

from __future__ import annotations

import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from target_precoro.html_report import write_html, write_html_to
from target_precoro.report import RUN_FOLDER, prune_reports
from target_precoro.testing import make_config, run_target, singer


class Page(HTMLParser):
    """What the page holds: count cells, calls table, tags, and the records' JSON block."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.counts: dict[tuple[str, str], str] = {}
        self.calls: dict[str, str] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: dict[str, str] = {}
        self._cell: tuple[str, str] | None = None
        self._script: str | None = None
        self._in_calls = False
        self._th = ""
        self._text: list[str] = []
        self.feed(text)
        self.close()
        self.rows = [
            {
                "line": r[0],
                "stream": r[1],
                "external_id": r[2],
                "outcome": r[3],
                "precoro_id": r[4],
                "written": r[5],
                "changes": r[6],
                "details": r[7],
                "reason": r[8],
            }
            for r in json.loads(self.scripts["rows"])
        ]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        self._text = []
        if tag == "table":
            self._in_calls = a.get("id") == "calls"
        if tag == "td" and "data-outcome" in a:
            self._cell = (a["data-stream"] or "", a["data-outcome"] or "")
        if tag == "script":
            self._script = a.get("id") or "(code)"

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text).strip()
        if tag == "td" and self._cell is not None:
            self.counts[self._cell] = text
            self._cell = None
        elif tag == "th" and self._in_calls:
            self._th = text
        elif tag == "td" and self._in_calls:
            self.calls[self._th] = text
        elif tag == "table":
            self._in_calls = False
        elif tag == "script" and self._script is not None:
            self.scripts[self._script] = "".join(self._text)
            self._script = None

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
    assert updated["external_id"] == "HTML-1"
    assert updated["changes"] == [["name", "Html Vendor 1", "Html Vendor One Renamed"]]
    assert updated["written"] == 1
    bad = next(r for r in page.rows if r["outcome"] == "invalid")
    assert "country" in bad["reason"]  # the reason names the field
    assert bad["written"] == 0
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
    assert ["externalId", None, "HTML-0"] in created["changes"]


def test_record_values_are_escaped_and_secrets_stay_out(sandbox, tmp_path):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    record = {"externalId": 'XSS-"><b>1', "name": hostile, "country": "France"}
    config = make_config(sandbox, tmp_path, match={"suppliers": []}, dry_run=True)
    result = run_target(config, singer("suppliers", [record]))
    text = (result.report_dir / "report.html").read_text(encoding="utf-8")
    page = Page(text)

    # The page's data block and its own script; no element from the record, no
    # external resource, and nothing in the data can end its block.
    assert [a.get("id") for t, a in page.tags if t == "script"] == ["rows", None]
    assert not [t for t, _ in page.tags if t in ("img", "b", "link", "iframe")]
    assert not [a for _, a in page.tags if "src" in a or "onerror" in a]
    assert "<" not in page.scripts["rows"]
    assert "http://" not in text
    assert "https://" not in text
    # The values the script shows are the record's own, unchanged.
    row = page.rows[0]
    assert row["external_id"] == 'XSS-"><b>1'
    assert ["name", None, hostile] in row["changes"]
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
    assert len(Page(sink.getvalue()).rows) == n
    assert out.written == len(sink.getvalue())  # the whole page, every row, was written ...
    assert peak < size / 10  # ... without holding the report (or the page) in memory


def test_a_damaged_report_line_is_shown_not_fatal(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "report.jsonl").write_text('{"stream": "suppliers", "outcome": "created"}\n{oops\n')
    page = Page(write_html(run_dir, {"run_id": "r"}).read_text())
    assert [r["outcome"] for r in page.rows] == ["created", "?"]
    assert "line 2 is damaged" in page.rows[1]["reason"]


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


def test_a_run_without_records_still_has_its_page(sandbox, tmp_path):
    result = run_target(make_config(sandbox, tmp_path), singer("suppliers", []))
    page = page_of(result.report_dir)
    assert result.summary["totals"] == {}
    assert page.rows == []
    assert "No records." in (result.report_dir / "report.html").read_text()


def test_the_page_of_an_earlier_run_can_be_rewritten(tmp_path, capsys):
    from target_precoro.html_report import main

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "report.jsonl").write_text('{"stream": "taxes", "outcome": "created"}\n')
    totals = {"created": 1}
    (run_dir / "summary.json").write_text(
        json.dumps({"run_id": "old", "streams": {"taxes": totals}, "totals": totals})
    )
    assert main([str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    page = page_of(run_dir)
    assert page.counts[("taxes", "created")] == "1"
    assert [r["stream"] for r in page.rows] == ["taxes"]
    assert not (run_dir / "report.html.partial").exists()
