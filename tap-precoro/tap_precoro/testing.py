"""Run the tap in-process and collect its Singer messages (for tests and scripts).

Shared by the tap's own tests and the repository's end-to-end tests, so the way a run
is captured (stdout, exit code, last STATE) is written once.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Collection
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from precoro_client.registry import get

from tap_precoro.tap import TapPrecoro
from tap_precoro.webhooks.inbox import Notification, SqliteInbox


@dataclass
class TapRun:
    """Messages of one tap run."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    states: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int = 0

    @property
    def state(self) -> dict[str, Any]:
        """The last STATE the run emitted (what Meltano would store)."""
        return self.states[-1] if self.states else {}

    def ids(self, stream: str) -> list[int]:
        """Ids emitted for a stream, in order."""
        return [int(r["id"]) for r in self.records.get(stream, [])]


def parse_messages(text: str) -> TapRun:
    """Read Singer messages (one JSON object per line)."""
    run = TapRun()
    for line in text.splitlines():
        if not line.strip():
            continue
        message = json.loads(line)
        if message["type"] == "RECORD":
            run.records[message["stream"]].append(message["record"])
        elif message["type"] == "STATE":
            run.states.append(message["value"])
    return run


def run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    streams: list[str] | None = None,
) -> TapRun:
    """Run the tap in-process (only `streams` selected, if given) and parse its output."""
    tap = TapPrecoro(config=config, state=state or {}, validate_config=True)
    if streams is not None:
        for name, stream in tap.streams.items():
            stream.selected = name in streams
    buffer = io.StringIO()
    exit_code = 0
    with redirect_stdout(buffer):
        try:
            tap.sync_all()
        except SystemExit as exc:
            exit_code = int(exc.code or 0)
    run = parse_messages(buffer.getvalue())
    run.exit_code = exit_code
    return run


def catalog_selecting(config: dict[str, Any], streams: Collection[str] | None) -> dict[str, Any]:
    """The tap's discovered catalog with exactly `streams` selected (None: every stream).

    Discovery is local (schemas come from the registry), so this costs no API call.
    """
    catalog: dict[str, Any] = TapPrecoro(config=config, validate_config=False).catalog_dict
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = streams is None or entry["tap_stream_id"] in streams
    return catalog


def notify(inbox_path: Path, entity: str, records: list[dict[str, Any]]) -> None:
    """Append one update notification per record to an inbox, as the receiver would."""
    inbox = SqliteInbox(inbox_path, create=True)
    code = get(entity).webhook_type
    if code is None:
        msg = f"Precoro sends no webhooks for {entity}"
        raise ValueError(msg)
    try:
        for record in records:
            inbox.append(Notification(int(record["id"]), code, 1, record.get("idn")))
    finally:
        inbox.close()
