"""Per-record outcomes, the run report, the summary and the dead-letter file.

Every record ends with one outcome. `report.jsonl` has one line per record;
`summary.json` counts outcomes per stream plus calls used and budget left;
`dead-letter.jsonl` holds every record that was not written (or has a field in
conflict, see `threeway`), as Singer messages
(SCHEMA first, then RECORD with extra `error` and `origin` keys), so after fixing the
data it replays with `target-precoro --input dead-letter.jsonl`; `origin` (run and
line the record was first read from) keeps a replay from writing it over a newer
version. A record superseded by a newer version is final and not dead-lettered.
Lines that cannot be used go to `rejected-lines.jsonl` with their line number (they
cannot be replayed as-is).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from precoro_client.registry import Entity

from target_precoro.versions import Origin

logger = logging.getLogger("target_precoro")

Outcome = Literal[
    "created",
    "updated",
    "linked",
    "unchanged",
    "kept_precoro",
    "skipped",
    "invalid",
    "ambiguous",
    "conflict",
    "failed",
    "unresolved",
]
"""`unresolved`: a write whose outcome is unknown and that has not settled yet; never
final (a later run looks it up once it has settled), dead-lettered as unfinished, not a
failure against `max_failures`."""
WRITTEN = frozenset({"created", "updated", "linked", "unchanged", "kept_precoro"})
"""Outcomes where Precoro holds the record as sent, or newer values of some fields
(`kept_precoro`: a person's edit in Precoro, which the forward job carries to the ERP)."""
COUNTED_AS_FAILURE = frozenset({"failed", "invalid"})


@dataclass
class RecordOutcome:
    """What happened to one record."""

    stream: str
    external_id: str | None
    kind: Outcome
    """What happened (the report's `outcome` key)."""
    precoro_id: int | None = None
    key: str | None = None
    fields: list[str] = field(default_factory=list)
    """Fields sent (created/updated/linked) or that would be sent (dry run)."""
    status: int | None = None
    """HTTP status of a refused write."""
    message: str = ""
    line: int | None = None
    final: bool = True
    """False when a re-run must retry it (not attempted, outcome unknown, transient)."""
    dry_run: bool = False
    superseded: str | None = None
    """Which newer version replaced this record (then it is final and not dead-lettered:
    replaying it would revert the newer one)."""
    kept_precoro: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Fields not written because Precoro changed (or owns) them: field -> base, erp, precoro."""
    conflicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Fields both sides changed differently since the last sync, not written:
    field -> base (last synced), erp, precoro."""
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Fields sent (or, in a dry run, that would be sent): field -> old (Precoro's value
    before the write, null for a new record) and new (the value sent)."""

    def to_json(self) -> dict[str, Any]:
        """The report line."""
        data = asdict(self)
        return {
            ("outcome" if k == "kind" else k): v
            for k, v in data.items()
            if v not in (None, [], "", {})
        }


def field_changes(
    entity: Entity, values: Mapping[str, Any], row: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Old -> new per field a write sends; references by id, as they are compared."""
    changed: dict[str, dict[str, Any]] = {}
    for name, new in sorted(values.items()):
        old = None if row is None else row.get(name)
        if entity.field(name).ref is not None and isinstance(old, Mapping):
            old = old.get("id")
        changed[name] = {"old": old, "new": new}
    return changed


MAX_TIMELINE_POINTS = 400
"""Most (seconds, records, calls) points kept for the run's calls chart (summary.json)."""

RUN_FOLDER = re.compile(r"^(\d{8}T\d{6})\d{6}Z-\d+$")
"""A run folder's name: the run id (UTC start, microseconds, `-<pid>`, see `target`)."""


def prune_reports(report_dir: Path, retention_days: float, now: datetime) -> list[str]:
    """Delete run folders started more than `retention_days` before `now`; 0 keeps all.

    Only folders named like a run id are touched (anything else in the directory is
    the user's); their age is the start time in the name, not a file time that a
    copy or a backup could reset. Returns the deleted folder names.
    """
    if retention_days <= 0 or not report_dir.is_dir():
        return []
    cutoff = now - timedelta(days=retention_days)
    deleted: list[str] = []
    for folder in sorted(report_dir.iterdir()):
        match = RUN_FOLDER.match(folder.name)
        if match is None or not folder.is_dir() or folder.is_symlink():
            continue
        started = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        if started < cutoff:
            shutil.rmtree(folder)
            deleted.append(folder.name)
    return deleted


def _summary_text(summary: dict[str, Any]) -> str:
    """`summary.json` indented, but the calls chart's points one per line, not per number."""
    rest = {k: v for k, v in summary.items() if k != "calls_over_run"}
    text = json.dumps(rest, indent=2)
    points = summary.get("calls_over_run")
    if points is None:
        return text + "\n"
    lines = ",\n".join(f"    {json.dumps(point)}" for point in points)
    body = f'  "calls_over_run": [\n{lines}\n  ]' if points else '  "calls_over_run": []'
    return f"{text[:-2]},\n{body}\n}}\n" if rest else f"{{\n{body}\n}}\n"


class RunReport:
    """Collects outcomes and writes the report files of one run."""

    def __init__(self, report_dir: Path, run_id: str, *, dry_run: bool) -> None:
        """Files are created on first use in `report_dir/<run_id>/`."""
        self.dir = report_dir / run_id
        self.run_id = run_id
        self.dry_run = dry_run
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.conflicted: Counter[str] = Counter()
        """Records with at least one field in conflict (outcome `conflict`, or `updated`
        with other fields written), per stream: each is in the dead-letter file."""
        self.started = time.time()
        self._report: Any = None
        self._dead: Any = None
        self._rejected: Any = None
        self._dead_schemas: set[str] = set()
        self.halted: str | None = None
        self.unfinished = 0
        self._unfinished_failures = 0
        self.first_unfinished_line: int | None = None
        """Input line of the earliest record a re-run must retry: STATE stops before it."""
        self.origins: dict[int, Origin] = {}
        """Origin of replayed records (from their dead-letter `origin`), by input line."""
        self.on_written: Callable[[RecordOutcome, Origin], None] | None = None
        """Told of every record Precoro now holds, with the version it holds."""
        self.calls_now: Callable[[], int] | None = None
        """Calls this run has made so far (set by the target): sampled per outcome."""
        self.budget_at_start: int | None = None
        """Budget left today when the run started (set by the target; no call made)."""
        self.records = 0
        self.timeline: list[tuple[float, int, int]] = [(0.0, 0, 0)]
        """(seconds since start, outcomes so far, calls so far), when the calls changed;
        thinned to at most `MAX_TIMELINE_POINTS` by sampling every `_calls_step` calls."""
        self._calls_step = 1

    def origin_of(self, line: int | None) -> Origin:
        """Where the record on this input line first came from (this run, unless replayed)."""
        number = line or 0
        return self.origins.get(number) or Origin(self.started, number, self.run_id)

    def _open(self, name: str) -> Any:
        self.dir.mkdir(parents=True, exist_ok=True)
        return (self.dir / name).open("a", encoding="utf-8")

    def add(
        self,
        outcome: RecordOutcome,
        record: dict[str, Any] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> None:
        """Count and write one outcome; dead-letter the record if it was not written."""
        outcome.dry_run = self.dry_run
        self.counts[outcome.stream][outcome.kind] += 1
        self.records += 1
        self._sample()
        if not outcome.final:
            self.unfinished += 1
            self._unfinished_failures += int(outcome.kind in COUNTED_AS_FAILURE)
            line = outcome.line or 0
            if self.first_unfinished_line is None or line < self.first_unfinished_line:
                self.first_unfinished_line = line
        if self._report is None:
            self._report = self._open("report.jsonl")
        self._report.write(json.dumps(outcome.to_json(), default=str) + "\n")
        if outcome.kind in WRITTEN and self.on_written is not None and not self.dry_run:
            self.on_written(outcome, self.origin_of(outcome.line))
        if outcome.conflicts:
            self.conflicted[outcome.stream] += 1
        unwritten = outcome.kind not in WRITTEN or bool(outcome.conflicts)
        if unwritten and outcome.superseded is None and record is not None:
            self._dead_letter(outcome, record, schema)

    def _sample(self) -> None:
        """Note the calls made so far, if they moved by a step since the last point."""
        if self.calls_now is None:
            return
        calls = self.calls_now()
        if calls - self.timeline[-1][2] < self._calls_step:
            return
        self.timeline.append((round(time.time() - self.started, 3), self.records, calls))
        if len(self.timeline) > MAX_TIMELINE_POINTS:
            self.timeline = self.timeline[::2]
            self._calls_step *= 2

    def _dead_letter(
        self, outcome: RecordOutcome, record: dict[str, Any], schema: dict[str, Any] | None
    ) -> None:
        if self._dead is None:
            self._dead = self._open("dead-letter.jsonl")
        if outcome.stream not in self._dead_schemas:
            message = {
                "type": "SCHEMA",
                "stream": outcome.stream,
                "schema": schema or {"type": "object", "properties": {}},
                "key_properties": ["externalId"],
            }
            self._dead.write(json.dumps(message, default=str) + "\n")
            self._dead_schemas.add(outcome.stream)
        reason: dict[str, Any] = {"outcome": outcome.kind, "reason": outcome.message}
        if outcome.status is not None:
            reason["status"] = outcome.status
        message = {
            "type": "RECORD",
            "stream": outcome.stream,
            "record": record,
            "error": reason,
            "origin": self.origin_of(outcome.line).to_json(),
        }
        self._dead.write(json.dumps(message, default=str) + "\n")

    def reject_line(self, line_number: int, text: str, reason: str) -> None:
        """Keep an input line that could not be parsed."""
        self.counts["(input)"]["invalid"] += 1
        if self._rejected is None:
            self._rejected = self._open("rejected-lines.jsonl")
        entry = {"line": line_number, "reason": reason, "text": text[:10000]}
        self._rejected.write(json.dumps(entry) + "\n")

    def failures(self) -> int:
        """Failed plus invalid records, not counting those a halt left unattempted.

        A budget stop is a clean stop (as in the tap): its unattempted records are
        reported and dead-lettered, and a re-run sends them; they do not fail the run.
        Nor do `unresolved` records (not a failure: a later run settles them).
        """
        failed = sum(c[o] for c in self.counts.values() for o in COUNTED_AS_FAILURE)
        return failed - self._unfinished_failures

    def summary(self, *, calls: dict[str, int], budget_left: int | None) -> dict[str, Any]:
        """Counts per stream and outcome, totals, calls and budget."""
        totals: Counter[str] = Counter()
        for counter in self.counts.values():
            totals.update(counter)
        seconds = round(time.time() - self.started, 3)
        timeline = [*self.timeline, (seconds, self.records, calls.get("total", 0))]
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "streams": {s: dict(sorted(c.items())) for s, c in sorted(self.counts.items())},
            "totals": dict(sorted(totals.items())),
            "records_with_conflicts": dict(sorted(self.conflicted.items())),
            "calls": calls,
            "budget_left_today": budget_left,
            "budget_left_at_start": self.budget_at_start,
            "halted": self.halted,
            "unfinished_records": self.unfinished,
            "seconds": seconds,
            "report_dir": os.fspath(self.dir),
            "calls_over_run": [list(point) for point in timeline],
        }

    def close(self, summary: dict[str, Any]) -> None:
        """Write `summary.json`, close every file, then write `report.html` from them.

        `summary.json` keeps its long `calls_over_run` list last, one point a line.
        The HTML page is a view of the other two files: failing to write it is logged
        and does not change the run's outcome.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "summary.json").write_text(_summary_text(summary))
        for handle in (self._report, self._dead, self._rejected):
            if handle is not None:
                handle.close()
        self._report = self._dead = self._rejected = None
        from target_precoro.html_report import write_html

        try:
            write_html(self.dir, summary)
        except Exception as exc:
            logger.error("Could not write %s: %s", self.dir / "report.html", exc)

    def flush(self) -> None:
        """Push buffered lines to disk (so a kill loses as little as possible)."""
        for handle in (self._report, self._dead, self._rejected):
            if handle is not None:
                handle.flush()
