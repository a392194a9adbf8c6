"""`report.html`: the run report as one self-contained page, for people.

Written at the end of every run beside `report.jsonl` and `summary.json`, from those
two files: outcome counts per stream, calls and budget over the run, and a filterable
table with one row per record (outcome, fields changed old -> new, why anything was
not written). Everything is inline (no network, no CDN), so the file opens anywhere and
is pruned with its run folder (`report_retention_days`).

The records travel as a JSON block that the page's script shows a page of rows at a
time, so a run of 100k records opens in a second or two and filters instantly (a
table of 100k static rows took minutes to lay out). The block is written one row at a
time while `report.jsonl` is read, so the page costs no more memory than a run of ten.
Record values come from the ERP and from Precoro: the counts and headings are
HTML-escaped, the JSON block escapes `<`, `>` and `&` (so nothing in it can end the
block), and the script puts values into the page as text only (`textContent`), never
as markup. Regenerate a run's page with `python -m target_precoro.html_report <run>`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from html import escape
from pathlib import Path
from typing import IO, Any

from target_precoro.report import WRITTEN

MAX_VALUE_CHARS = 200
"""Longest value shown in a table cell; the full value stays in `report.jsonl`."""
NOT_WRITTEN = "(not written)"
"""The outcome filter's choice for every outcome Precoro does not hold as sent."""

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:3px 6px;
vertical-align:top;text-align:left}th{background:#f2f2f2}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em;margin:.5em 0}
.halt{background:#f8d7da;border:1px solid #d08080;padding:.5em 1em;margin:.5em 0}
.meta{color:#555}code{font-size:.95em}.old{color:#a33}.new{color:#262}
.o{font-weight:600}.o-failed,.o-invalid,.o-ambiguous,.o-conflict{color:#b00}
.o-unresolved,.o-skipped,.o-kept_precoro{color:#a60}.o-created,.o-updated,.o-linked{color:#070}
a.f{color:inherit}#filters{margin:.5em 0}#filters label{margin-right:1em}
#records td{max-width:40em;overflow-wrap:anywhere}#pager{margin:.4em 0}
svg text{font-size:11px;fill:#555}
"""

SCRIPT = """
(function () {
  var rows = JSON.parse(document.getElementById('rows').textContent);
  var body = document.querySelector('#records tbody');
  var outcome = document.getElementById('f-outcome');
  var stream = document.getElementById('f-stream');
  var text = document.getElementById('f-text');
  var shown = document.getElementById('shown');
  var range = document.getElementById('range');
  var prev = document.getElementById('prev');
  var next = document.getElementById('next');
  var PAGE = 500, page = 0, matching = [], timer = null;
  function add(parent, tag, value, cls) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (value === null) {
      node.appendChild(document.createElement('i')).textContent = 'none';
    } else if (value !== undefined) {
      node.textContent = String(value);
    }
    parent.appendChild(node);
    return node;
  }
  function haystack(r) {
    if (r.h === undefined) {
      var parts = [r[1], r[2], r[3], r[8]].concat(r[7]);
      for (var i = 0; i < r[6].length; i++) { parts = parts.concat(r[6][i]); }
      r.h = parts.join(' ').toLowerCase();
    }
    return r.h;
  }
  function render() {
    body.textContent = '';
    var last = Math.min(matching.length, (page + 1) * PAGE);
    for (var i = page * PAGE; i < last; i++) {
      var r = matching[i], tr = document.createElement('tr');
      tr.dataset.outcome = r[3];
      tr.dataset.stream = r[1];
      add(tr, 'td', r[0], 'n');
      add(tr, 'td', r[1]);
      add(tr, 'td', r[2]);
      add(tr, 'td', r[3], 'o o-' + r[3]);
      add(tr, 'td', r[4], 'n');
      var changed = add(tr, 'td');
      if (!r[5] && r[6].length) { add(add(changed, 'div'), 'i', 'not written:'); }
      for (var c = 0; c < r[6].length; c++) {
        var line = add(changed, 'div');
        add(line, 'code', r[6][c][0]);
        line.appendChild(document.createTextNode(': '));
        add(line, 'span', r[6][c][1], 'old');
        line.appendChild(document.createTextNode(' \u2192 '));
        add(line, 'span', r[6][c][2], 'new');
      }
      for (var d = 0; d < r[7].length; d++) { add(changed, 'div', r[7][d]); }
      add(tr, 'td', r[8]);
      body.appendChild(tr);
    }
    shown.textContent = String(matching.length);
    range.textContent = matching.length
      ? (page * PAGE + 1) + '\u2013' + last + ' of ' + matching.length : 'none';
    prev.disabled = page === 0;
    next.disabled = last >= matching.length;
  }
  function apply() {
    var o = outcome.value, s = stream.value, q = text.value.toLowerCase();
    matching = rows.filter(function (r) {
      return (!o || (o === '__unwritten__' ? !r[5] : r[3] === o))
        && (!s || r[1] === s) && (!q || haystack(r).indexOf(q) >= 0);
    });
    page = 0;
    render();
  }
  outcome.addEventListener('change', apply);
  stream.addEventListener('change', apply);
  text.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(apply, 200);
  });
  prev.addEventListener('click', function () { page--; render(); });
  next.addEventListener('click', function () { page++; render(); });
  var links = document.querySelectorAll('a.f');
  for (var i = 0; i < links.length; i++) {
    links[i].addEventListener('click', function () {
      outcome.value = this.dataset.outcome || '';
      stream.value = this.dataset.stream || '';
      apply();
    });
  }
  apply();
})();
"""


def _e(value: Any) -> str:
    """Escaped text of any value (attribute-safe: quotes are escaped too)."""
    return escape(str(value), quote=True)


def _shown(value: Any) -> str | None:
    """A record value as short text for a cell (None stays None: shown as "none")."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + "…"
    return text


def _records(path: Path) -> Iterator[dict[str, Any]]:
    """The report lines one at a time (a damaged line is shown as such, not fatal)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                entry = {"outcome": "?", "message": f"report.jsonl line {number} is damaged"}
            yield entry


def _counts(summary: Mapping[str, Any]) -> str:
    streams: dict[str, dict[str, int]] = summary.get("streams") or {}
    totals: dict[str, int] = summary.get("totals") or {}
    if not totals:
        return "<p>No records.</p>"
    outcomes = sorted(totals)
    head = "".join(f"<th>{_e(o)}</th>" for o in outcomes)
    out = [f'<table id="counts"><tr><th>stream</th>{head}<th>total</th></tr>']

    def row(name: str, counts: Mapping[str, int], stream: str) -> str:
        cells = []
        for o in outcomes:
            n = counts.get(o, 0)
            link = (
                f'<a class="f" href="#records" data-outcome="{_e(o)}" '
                f'data-stream="{_e(stream)}">{n}</a>'
                if n
                else "0"
            )
            cells.append(
                f'<td class="n" data-stream="{_e(stream)}" data-outcome="{_e(o)}">{link}</td>'
            )
        total = sum(counts.values())
        return (
            f"<tr><th>{_e(name)}</th>{''.join(cells)}"
            f'<td class="n" data-stream="{_e(stream)}" data-outcome="">{total}</td></tr>'
        )

    for name, counts in sorted(streams.items()):
        out.append(row(name, counts, name))
    out.append(row("all streams", totals, ""))
    out.append("</table>")
    return "".join(out)


def _chart(points: list[list[float]]) -> str:
    """Calls made against seconds into the run, as an inline SVG line."""
    if len(points) < 2 or points[-1][2] == 0:
        return ""
    width, height, pad = 560, 160, 40
    end_s = max(p[0] for p in points) or 1.0
    top = max(p[2] for p in points) or 1
    xy = " ".join(
        f"{pad + (width - 2 * pad) * p[0] / end_s:.1f},"
        f"{height - pad / 2 - (height - pad) * p[2] / top:.1f}"
        for p in points
    )
    return (
        f'<svg id="calls-chart" width="{width}" height="{height}" role="img" '
        f'aria-label="calls made over the run">'
        f'<polyline fill="none" stroke="#36c" stroke-width="2" points="{xy}"/>'
        f'<text x="{pad}" y="{height - 4}">0 s</text>'
        f'<text x="{width - pad}" y="{height - 4}" text-anchor="end">{end_s:g} s</text>'
        f'<text x="2" y="{pad / 2 + 4}">{top:g} calls</text></svg>'
        '<p class="meta">Calls made by this run, by seconds since it started.</p>'
    )


def _calls(summary: Mapping[str, Any]) -> str:
    calls: dict[str, int] = summary.get("calls") or {}
    start = summary.get("budget_left_at_start")
    end = summary.get("budget_left_today")
    rows = [
        ("calls made by this run", calls.get("total", 0)),
        *((f"{name} requests", n) for name, n in calls.items() if name.isupper()),
        ("of which index reads", calls.get("index_reads", 0)),
        ("budget left today at the start", "unknown" if start is None else start),
        ("budget left today at the end", "unknown" if end is None else end),
    ]
    if isinstance(start, int) and isinstance(end, int):
        rows.append(("budget used during the run (every process on this budget)", start - end))
    cells = "".join(f'<tr><th>{_e(k)}</th><td class="n">{_e(v)}</td></tr>' for k, v in rows)
    return f'<table id="calls">{cells}</table>' + _chart(summary.get("calls_over_run") or [])


def _changes(entry: Mapping[str, Any]) -> list[list[str | None]]:
    """[field, old, new] per field sent (or that a dry run or a refused write would send)."""
    changes: dict[str, Any] = entry.get("changes") or {}
    return [
        [str(name), _shown(change.get("old")), _shown(change.get("new"))]
        for name, change in changes.items()
        if isinstance(change, Mapping)
    ]


def _details(entry: Mapping[str, Any]) -> list[str]:
    """Fields kept or in conflict (with the three values), or the bare field names."""
    parts = []
    if not entry.get("changes") and entry.get("fields"):
        parts.append("fields: " + ", ".join(map(str, entry["fields"])))
    for label, states in (("kept Precoro's", "kept_precoro"), ("conflict in", "conflicts")):
        for name, state in (entry.get(states) or {}).items():
            if isinstance(state, Mapping):
                parts.append(
                    f"{label} {name}: ERP {_shown(state.get('erp'))}, "
                    f"Precoro {_shown(state.get('precoro'))}, "
                    f"last synced {_shown(state.get('base'))}"
                )
    return parts


def _reason(entry: Mapping[str, Any]) -> str:
    parts = []
    if entry.get("status") is not None:
        parts.append(f"HTTP {entry['status']}: ")
    parts.append(str(entry.get("message", "")))
    if entry.get("final") is False:
        parts.append(" (not final: a re-run retries it)")
    return "".join(parts)


def _row(entry: Mapping[str, Any]) -> list[Any]:
    """One record as the page's script reads it (see `SCRIPT`, r[0] .. r[8])."""
    outcome = str(entry.get("outcome", "?"))
    precoro = entry.get("precoro_id")
    line = entry.get("line")
    return [
        "" if line is None else line,
        str(entry.get("stream", "")),
        str(entry.get("external_id") or ""),
        outcome,
        "" if precoro is None else precoro,
        int(outcome in WRITTEN),
        _changes(entry),
        _details(entry),
        _reason(entry),
    ]


_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
"""JSON inside a script element: nothing in a value can close the element."""


def _json(row: list[Any]) -> str:
    # ensure_ascii also escapes U+2028/U+2029; surrogates stay escaped, never raw.
    return json.dumps(row, default=str).translate(_SCRIPT_SAFE)


def _filters(summary: Mapping[str, Any]) -> str:
    totals: dict[str, int] = summary.get("totals") or {}
    streams = sorted((summary.get("streams") or {}).keys())
    outcome_options = "".join(f'<option value="{_e(o)}">{_e(o)}</option>' for o in sorted(totals))
    stream_options = "".join(f'<option value="{_e(s)}">{_e(s)}</option>' for s in streams)
    return (
        '<div id="filters">'
        '<label>Outcome <select id="f-outcome"><option value="">all</option>'
        f'<option value="__unwritten__">{_e(NOT_WRITTEN)}</option>{outcome_options}</select>'
        "</label>"
        '<label>Stream <select id="f-stream"><option value="">all</option>'
        f"{stream_options}</select></label>"
        '<label>Text <input id="f-text" type="search" placeholder="externalId, field, reason">'
        '</label><span><span id="shown"></span> matching rows</span></div>'
        '<div id="pager"><button id="prev" type="button">previous</button> '
        '<span id="range"></span> <button id="next" type="button">next</button></div>'
    )


def _head(summary: Mapping[str, Any], files: list[str]) -> str:
    run_id = summary.get("run_id", "")
    dry = bool(summary.get("dry_run"))
    title = f"target-precoro run {run_id}" + (" (dry run)" if dry else "")
    parts = [
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(summary.get("seconds", 0))} s; '
        f"{_e(sum((summary.get('totals') or {}).values()))} records; "
        f"files beside this page: {_e(', '.join(files))}</p>",
    ]
    if dry:
        parts.append(
            '<p class="banner" id="dry-run">Dry run: nothing was written to Precoro. '
            "Outcomes and changes are what a real run would do.</p>"
        )
    if summary.get("halted"):
        parts.append(f'<p class="halt" id="halted">Stopped early: {_e(summary["halted"])}</p>')
    unfinished = summary.get("unfinished_records") or 0
    if unfinished:
        parts.append(
            f'<p class="halt">{_e(unfinished)} records are not final: they are in '
            "dead-letter.jsonl and a re-run resends them.</p>"
        )
    parts += [
        "<h2>Outcomes per stream</h2>",
        _counts(summary),
        "<h2>Calls and budget</h2>",
        _calls(summary),
        "<h2>Records</h2>",
        _filters(summary),
        '<table id="records"><thead><tr><th>line</th><th>stream</th><th>externalId</th>'
        "<th>outcome</th><th>Precoro id</th><th>fields changed (old → new)</th>"
        "<th>reason</th></tr></thead><tbody></tbody></table>",
        "<noscript><p>The record table needs JavaScript; the same records are in "
        "report.jsonl.</p></noscript>\n",
        '<script type="application/json" id="rows">[\n',
    ]
    return "".join(parts)


def write_html_to(out: IO[str], run_dir: Path, summary: Mapping[str, Any]) -> None:
    """The page for one run, rows streamed from `run_dir/report.jsonl` into its JSON block."""
    files = sorted(p.name for p in run_dir.glob("*.json*"))
    out.write(_head(summary, files))
    separator = ""
    for entry in _records(run_dir / "report.jsonl"):
        out.write(separator + _json(_row(entry)))
        separator = ",\n"
    out.write(f"\n]</script><script>{SCRIPT}</script></body></html>\n")


def write_html(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write `run_dir/report.html` (whole or not at all: a temporary file, then renamed)."""
    path = run_dir / "report.html"
    partial = run_dir / "report.html.partial"
    with partial.open("w", encoding="utf-8") as out:
        write_html_to(out, run_dir, summary)
    partial.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Rewrite the page of one or more run folders from their report files."""
    folders = sys.argv[1:] if argv is None else argv
    if not folders:
        print("usage: python -m target_precoro.html_report RUN_FOLDER...", file=sys.stderr)
        return 2
    for folder in map(Path, folders):
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        print(write_html(folder, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
