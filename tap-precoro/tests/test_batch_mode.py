"""Batch mode (`batch_config`): STATE never runs ahead of the BATCH message holding its
records, so a tap killed mid-sync and resumed from its last STATE loses nothing."""

from __future__ import annotations

import gzip
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from precoro_sandbox.testing import all_rows, client
from tap_precoro.testing import catalog_selecting

TAP = [sys.executable, "-m", "tap_precoro"]
SUPPLIERS = 1000
PAGE = 10
BATCH_ROWS = 50
"""Records per batch file in most cases: five pages, so file and page boundaries differ."""


@dataclass
class Output:
    """What one tap process wrote: messages in order, and the rows of its batch files."""

    messages: list[dict[str, Any]] = field(default_factory=list)

    def batch_rows(self, stream: str, before: int | None = None) -> list[dict[str, Any]]:
        """Rows of every BATCH file of `stream` announced before message index `before`."""
        rows: list[dict[str, Any]] = []
        for message in self.messages[:before]:
            if message["type"] == "BATCH" and message["stream"] == stream:
                for url in message["manifest"]:
                    with gzip.open(unquote(urlparse(url).path), "rt") as handle:
                        rows.extend(json.loads(line) for line in handle if line.strip())
        return rows

    def records(self, stream: str) -> list[dict[str, Any]]:
        """Rows sent as RECORD messages (non-batch mode)."""
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def states(self) -> list[tuple[int, dict[str, Any]]]:
        """(message index, value) of every STATE message."""
        return [(i, m["value"]) for i, m in enumerate(self.messages) if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, Any]:
        """The last STATE emitted (what Meltano stores and passes to the next run)."""
        states = self.states()
        return states[-1][1] if states else {}


def parse(lines: list[str]) -> Output:
    return Output([json.loads(line) for line in lines if line.strip()])


def batch_config(root: Path, batch_size: int | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": root.as_uri(), "prefix": "batch-"},
    }
    if batch_size is not None:
        config["batch_size"] = batch_size
    return config


def write_run_files(
    tmp_path: Path, name: str, config: dict[str, Any], streams: list[str], state: Any = None
) -> list[str]:
    """Config, catalog (and state) files for one tap process; returns its argv."""
    (tmp_path / f"{name}.config.json").write_text(json.dumps(config))
    (tmp_path / f"{name}.catalog.json").write_text(json.dumps(catalog_selecting(config, streams)))
    argv = [
        *TAP,
        "--config",
        str(tmp_path / f"{name}.config.json"),
        "--catalog",
        str(tmp_path / f"{name}.catalog.json"),
    ]
    if state is not None:
        (tmp_path / f"{name}.state.json").write_text(json.dumps(state))
        argv += ["--state", str(tmp_path / f"{name}.state.json")]
    return argv


def run_to_end(argv: list[str]) -> Output:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return parse(done.stdout.splitlines())


def run_and_kill_when_held(argv: list[str], sb: Any, how: signal.Signals) -> Output:
    """Start the tap; signal it while the sandbox holds the call the fault rule delays.

    SIGKILL is a crash; SIGTERM is how Meltano cancels a run (the SDK then writes a
    last STATE and exits 0).
    """
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []))
    reader.start()
    deadline = time.monotonic() + 60
    try:
        while not sb.admin.faults()["rules"][0]["fired"]:  # the held call reached the sandbox
            assert process.poll() is None, "the tap ended before the held call"
            assert time.monotonic() < deadline, "the held call never came"
            time.sleep(0.005)
    finally:
        process.send_signal(how)
        exit_code = process.wait(timeout=30)
        reader.join()
        if process.stdout is not None:
            process.stdout.close()
    assert exit_code == (0 if how == signal.SIGTERM else -how)
    return parse(lines)


def pages_done(state: dict[str, Any], stream: str) -> int | None:
    """Pages of the first pass that a STATE says are delivered (None: the pass is complete)."""
    bookmark = state.get("bookmarks", {}).get(stream, {})
    if "pass" in bookmark:
        return int(bookmark["pass"]["next_page"]) - 1
    if "replication_key_value" in bookmark:
        return None
    return 0


KILL_POINTS = [23, *(random.Random(seed).randint(2, 95) for seed in (1, 2))]
"""List pages served before the kill: the issue's 23, and two seeded points."""


@pytest.mark.parametrize(
    ("pages_before_kill", "batch_size", "how"),
    [
        *((pages, BATCH_ROWS, signal.SIGKILL) for pages in KILL_POINTS),
        (23, None, signal.SIGKILL),
        (23, BATCH_ROWS, signal.SIGTERM),
    ],
    ids=lambda value: value.name if isinstance(value, signal.Signals) else None,
)
def test_kill_in_batch_mode_then_resume_from_last_state_loses_no_supplier(
    sandbox_factory, make_config, tmp_path, *, pages_before_kill, batch_size, how
):
    sb = sandbox_factory(scale=SUPPLIERS)
    config = make_config(
        sb, page_size=PAGE, batch_config=batch_config(tmp_path / "batches", batch_size)
    )
    (tmp_path / "batches").mkdir()
    # The list call after `pages_before_kill` pages is held: the tap is waiting on it
    # (every earlier page fully handled) when it is killed.
    held = {"kind": "delay", "route": "/suppliers", "method": "GET", "delay_seconds": 30}
    sb.admin.set_faults([{**held, "then_drop": True, "schedule": [pages_before_kill + 1]}])

    first = run_and_kill_when_held(
        write_run_files(tmp_path, "first", config, ["suppliers"]), sb, how
    )
    sb.admin.clear_faults()

    truth = {
        int(r["id"]): str(r["updateDate"]) for r in all_rows(client(sb), f"{sb.url}/suppliers")
    }
    assert len(truth) == SUPPLIERS
    in_list_order = sorted(truth)  # the sandbox lists by id
    assert_no_state_ahead_of_batches(first, "suppliers", in_list_order)
    resumed_after = pages_done(first.last_state, "suppliers")
    assert resumed_after is not None, "the kill came mid-pass"
    # What the kill costs: the pages of the batch file being filled are read again, no
    # more (a batch file holds whole pages here).
    rows_per_file = batch_size or SUPPLIERS
    assert resumed_after == pages_before_kill * PAGE // rows_per_file * rows_per_file // PAGE
    sb.admin.reset_counters()

    second = run_to_end(
        write_run_files(tmp_path, "second", config, ["suppliers"], first.last_state)
    )
    assert sb.admin.counters().get("GET", "/suppliers", 200) == SUPPLIERS // PAGE - resumed_after

    delivered = {
        (int(r["id"]), str(r["updateDate"]))
        for r in first.batch_rows("suppliers") + second.batch_rows("suppliers")
    }
    assert set(truth.items()) <= delivered
    assert not second.records("suppliers"), "batch mode sends no RECORD messages"
    assert pages_done(second.last_state, "suppliers") is None


def test_batch_mode_makes_the_same_calls_and_delivers_the_same_records(
    sandbox_factory, make_config, tmp_path
):
    streams = ["suppliers", "items", "invoices", "taxes", "itemcustomfieldoptions"]
    sb = sandbox_factory(scale=40)
    plain_config = make_config(sb, page_size=PAGE)
    plain = run_to_end(write_run_files(tmp_path, "plain", plain_config, streams))
    plain_calls = Counter(sb.admin.counters().by_route())
    sb.admin.reset_counters()

    (tmp_path / "batches").mkdir()
    batch_mode = {**plain_config, "batch_config": batch_config(tmp_path / "batches", 25)}
    batched = run_to_end(write_run_files(tmp_path, "batched", batch_mode, streams))

    assert Counter(sb.admin.counters().by_route()) == plain_calls
    for stream in streams:
        expected = {(r["id"], r.get("updateDate")) for r in plain.records(stream)}
        assert expected, stream
        assert {(r["id"], r.get("updateDate")) for r in batched.batch_rows(stream)} == expected
    assert not any("pass" in s for s in batched.last_state["bookmarks"].values())


def assert_no_state_ahead_of_batches(run: Output, stream: str, in_list_order: list[int]) -> None:
    """Every STATE claims only rows of BATCH files announced before it."""
    for index, state in run.states():
        pages = pages_done(state, stream)
        claimed = in_list_order if pages is None else in_list_order[: pages * PAGE]
        batched = {int(r["id"]) for r in run.batch_rows(stream, before=index)}
        assert set(claimed) <= batched, f"STATE #{index} claims {len(claimed)} rows"


def test_budget_stop_in_batch_mode_saves_a_state_the_next_day_completes(
    sandbox_factory, make_config, tmp_path
):
    sb = sandbox_factory(scale=40)
    (tmp_path / "batches").mkdir()
    settings = {"page_size": PAGE, "batch_config": batch_config(tmp_path / "batches", 20)}
    stopped = run_to_end(
        write_run_files(
            tmp_path, "day1", make_config(sb, max_requests_per_day=3, **settings), ["suppliers"]
        )
    )
    truth = {
        int(r["id"]): str(r["updateDate"]) for r in all_rows(client(sb), f"{sb.url}/suppliers")
    }
    assert_no_state_ahead_of_batches(stopped, "suppliers", sorted(truth))
    assert pages_done(stopped.last_state, "suppliers") == 3  # every page read is delivered

    ledger = tmp_path / "day2"
    ledger.mkdir()
    day2 = make_config(sb, budget_ledger_path=str(ledger / "l.db"), **settings)
    resumed = run_to_end(write_run_files(tmp_path, "day2", day2, ["suppliers"], stopped.last_state))

    delivered = {
        (int(r["id"]), str(r["updateDate"]))
        for r in stopped.batch_rows("suppliers") + resumed.batch_rows("suppliers")
    }
    assert set(truth.items()) <= delivered
    assert len(stopped.batch_rows("suppliers")) + len(resumed.batch_rows("suppliers")) == 40
