"""The completeness sweep of an incremental stream (the rules are in `tap_precoro.sweep`).

Lists the window without the status/enable filters (applied to the rows instead),
builds the sketch of the ids that should have been read, and emits the ones the saved
sketch lacks, one call each. Resumable: the listing saves its progress per page, then
the ids still to emit are saved before each one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from singer_sdk.helpers.types import Context

from tap_precoro.bookmarks import Pass, parse_timestamp, to_state_timestamp
from tap_precoro.sweep import DeliveredRecord, Sketch, created_within, sweep_counts

if TYPE_CHECKING:
    from tap_precoro.streams.incremental import IncrementalStream


def run_sweep(stream: IncrementalStream, context: Context | None) -> Iterator[dict[str, Any]]:
    """Run (or resume) the sweep the stream's state holds as due (see the module doc)."""
    state = stream.get_context_state(context)
    due = dict(state["sweep"])
    until = str(due.get("started_at") or "") or None
    periodic = due.get("kind") == "periodic"
    created_from = str(due["created_from"]) if due.get("created_from") else None
    calls = stream.run.client.call_count
    if not isinstance(due.get("missing"), list):
        found = sweep_listing(stream, context, due)
        if found is None:
            return
        due = {key: value for key, value in due.items() if key != "progress"}
        due.update(found)
        state["sweep"] = due
        stream.checkpoint()
    missing = [int(key) for key in due["missing"]]
    history = DeliveredRecord.from_state(state.get("delivered"))
    emitted: list[int] = []
    idns = {int(k): str(v) for k, v in (due.get("idns") or {}).items()}
    for key in list(missing):
        record = stream.fetch_current(key, idns.get(key))
        changed = (
            record is not None
            and not periodic
            and until is not None
            and parse_timestamp(str(record.get("updateDate"))) >= parse_timestamp(until)
        )
        keep = record is not None and not changed and stream.matches_filters(record, context)
        if record is not None and keep and stream.first_emission(record):
            emitted.append(key)
            if created_within(record, history.created_from, history.created_until):
                history.sketch.toggle(key)  # delivered now: the periodic sweep knows
            yield record
        missing.remove(key)
        state["sweep"] = {**due, "missing": list(missing)}
        if isinstance(state.get("delivered"), Mapping):
            state["delivered"] = history.to_state()
        stream.checkpoint()
    state.pop("sweep", None)
    listed = Sketch.from_state(due.get("listed"))
    if periodic:  # the record now holds what the list holds
        state["delivered"] = DeliveredRecord(
            listed, created_from, until, to_state_timestamp(datetime.now(UTC))
        ).to_state()
    elif due.get("suspect"):
        # A row moved while the sweep paged, so the sweep may have skipped a row
        # too; only a row the pass had also skipped could stay missing. Sweeping
        # again would meet the same edits, so the periodic sweep is the net.
        stream.logger.warning(
            "%s: rows moved while the sweep paged; a row skipped by both the pass and "
            "the sweep is left to the periodic sweep",
            stream.name,
        )
    stream.logger.info(
        "%s: completeness sweep: %d calls, %d skipped rows found and emitted",
        stream.name,
        stream.run.client.call_count - calls,
        len(emitted),
    )
    stream.checkpoint()


def sweep_listing(
    stream: IncrementalStream, context: Context | None, due: Mapping[str, Any]
) -> dict[str, Any] | None:
    """List the sweep's window; return the ids to emit (None: re-read as a pass)."""
    state = stream.get_context_state(context)
    since = str(due["since"]) if due.get("since") else None
    until = str(due.get("started_at") or "") or None
    periodic = due.get("kind") == "periodic"
    created_from = str(due["created_from"]) if due.get("created_from") else None
    raw = due.get("progress")
    progress = (
        Pass.from_state(raw)
        if isinstance(raw, Mapping)
        else Pass(since=since, started_at=until, next_page=1, query="sweep")
    )
    listed = Sketch.from_state(progress.sketch)
    versions: dict[int, tuple[str | None, str]] = {}
    seen: dict[int, str] = {}

    def save() -> None:
        progress.sketch = listed.to_state()
        state["sweep"] = {**due, "progress": progress.to_state()}
        stream.checkpoint()

    def counts(row: Mapping[str, Any]) -> bool:
        if periodic:
            return created_within(row, created_from, until)
        return sweep_counts(row, since, until)

    base = list(stream.entity.base_params)
    for _page, rows in stream.pages_of(
        stream.list_path(context), base, progress, save, filtered=False, by_value=False
    ):
        for row in rows:
            try:
                row_id = int(row.get("id"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
            updated = str(row.get("updateDate"))
            if row_id in seen:
                if seen[row_id] != updated and progress.cursor is None:
                    progress.suspect = True
                continue
            seen[row_id] = updated
            if stream.matches_filters(row, context) and counts(row):
                listed.toggle(row_id)
                idn = row.get("idn")
                versions[row_id] = (str(idn) if idn is not None else None, updated)
    differing = Sketch.from_state(due.get("sketch")).difference(listed).peel()
    if differing is None:
        stream.logger.warning(
            "%s: the sweep found more differences than it can name; re-reading the "
            "window from %s as a pass (records may be sent again, none is lost)",
            stream.name,
            since or "the start",
        )
        for key in ("sweep", "pass"):
            state.pop(key, None)
        if since is not None:
            state["replication_key_value"] = since
        else:
            state.pop("replication_key_value", None)
        stream.checkpoint()
        return None

    def missed(key: int) -> bool:
        if key not in versions:
            return key not in seen  # listed before a resume: look it up
        listed_version = versions[key][1]
        return (
            periodic or until is None or parse_timestamp(listed_version) < parse_timestamp(until)
        )  # else it changed since the pass: a later pass delivered it

    missing = sorted(key for key in differing if missed(key))
    return {
        "missing": missing,
        "idns": {str(k): versions[k][0] for k in missing if versions.get(k, (None,))[0]},
        "listed": listed.to_state(),
        "suspect": progress.suspect,
    }
