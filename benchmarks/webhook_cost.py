"""Benchmark: calls of webhook mode against polling for the same changes (issue 16).

For each scenario, k records of one stream change (sandbox `touch`) and the receiver's
inbox gets one notification each (written directly, as the receiver stores them);
then the same tap state is run once in webhook mode and once polling, and the calls
are counted at the sandbox; a last line mixes 500 changes over four streams in one
run. `minimum` is what polling must pay at least: one list call per 200 changed rows
it emits, plus one detail call per emitted document. Webhook mode must be at or below
polling on every line.

Run: .venv/bin/python benchmarks/webhook_cost.py
Writes benchmarks/results/webhook_cost.json.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from precoro_client.registry import get
from precoro_sandbox.options import SandboxOptions
from precoro_sandbox.server import SandboxServer
from tap_precoro.testing import run_tap
from tap_precoro.webhooks.inbox import Notification, SqliteInbox

RESULTS = Path(__file__).resolve().parent / "results" / "webhook_cost.json"
PAGE = 200
SCENARIOS: list[tuple[str, int, dict[str, Any]]] = [
    ("suppliers", 1, {}),
    ("suppliers", 25, {}),
    ("suppliers", 500, {}),
    ("suppliers", 500, {"include_disabled": False}),
    ("purchaseorders", 100, {}),
    ("purchaseorders", 100, {"status_filters": {"purchaseorders": [2]}}),
    ("invoices", 100, {"status_filters": {"invoices": [2, 3]}}),
]


def config(sb: SandboxServer, folder: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "auth_token": sb.token,
        "email": sb.email,
        "api_url": sb.url,
        "budget_ledger_path": str(folder / "ledger.sqlite3"),
        "max_requests_per_second": 1000,
        "max_requests_per_hour": 1_000_000,
        "max_requests_per_day": 1_000_000,
        "duplicate_get_interval_seconds": 0,
        "page_size": PAGE,
        **overrides,
    }


def scenario(sb: SandboxServer, folder: Path, stream: str, k: int, extra: dict[str, Any]) -> Any:
    """Calls of one scenario in both modes (fresh inbox and states)."""
    inbox_path = folder / f"inbox-{stream}-{k}-{len(extra)}.sqlite3"
    SqliteInbox(inbox_path, create=True).close()
    webhook = config(sb, folder, webhook_inbox=str(inbox_path), **extra)
    polling = config(sb, folder, **extra)
    every = run_tap(config(sb, folder), streams=[stream]).records[stream]
    base_w = run_tap(webhook, streams=[stream])  # first webhook run: the reconcile poll
    base_p = run_tap(polling, streams=[stream])
    sb.admin.advance_clock(600)
    rows = every[:k]
    entity = get(stream)
    sb.admin.touch(stream, [r[entity.key] for r in rows])
    inbox = SqliteInbox(inbox_path)
    for row in rows:
        inbox.append(Notification(int(row["id"]), entity.webhook_type or 0, 1, row.get("idn")))
    inbox.close()
    line: dict[str, Any] = {"stream": stream, "changed": k, "config": extra}
    emitted: dict[str, list[int]] = {}
    for mode, cfg, base in (("webhook", webhook, base_w), ("polling", polling, base_p)):
        sb.admin.reset_counters()
        run = run_tap(cfg, state=base.state, streams=[stream])
        line[mode] = sb.admin.counters().total
        emitted[mode] = sorted(run.ids(stream))
    line["emitted"] = len(emitted["polling"])
    line["same_records"] = emitted["webhook"] == emitted["polling"]
    documents = line["emitted"] if entity.fetch_detail else 0
    line["minimum"] = max(1, math.ceil(line["emitted"] / PAGE)) + documents
    line["ok"] = line["same_records"] and line["webhook"] <= line["polling"]
    return line


MIXED = {"suppliers": 250, "purchaseorders": 100, "invoices": 100, "receipts": 50}


def mixed(sb: SandboxServer, folder: Path) -> dict[str, Any]:
    """500 changes over four streams in one run, both modes (the issue's mixed run)."""
    streams = list(MIXED)
    inbox_path = folder / "inbox-mixed.sqlite3"
    SqliteInbox(inbox_path, create=True).close()
    webhook = config(sb, folder, webhook_inbox=str(inbox_path))
    polling = config(sb, folder)
    every = run_tap(config(sb, folder), streams=streams).records
    base_w = run_tap(webhook, streams=streams)
    base_p = run_tap(polling, streams=streams)
    sb.admin.advance_clock(600)
    inbox = SqliteInbox(inbox_path)
    for stream, k in MIXED.items():
        entity = get(stream)
        rows = every[stream][:k]
        sb.admin.touch(stream, [r[entity.key] for r in rows])
        for row in rows:
            code = entity.webhook_type or 0
            inbox.append(Notification(int(row["id"]), code, 1, row.get("idn")))
    inbox.close()
    line: dict[str, Any] = {"stream": "+".join(streams), "changed": sum(MIXED.values())}
    emitted: dict[str, dict[str, list[int]]] = {}
    for mode, cfg, base in (("webhook", webhook, base_w), ("polling", polling, base_p)):
        sb.admin.reset_counters()
        run = run_tap(cfg, state=base.state, streams=streams)
        line[mode] = sb.admin.counters().total
        emitted[mode] = {name: sorted(run.ids(name)) for name in streams}
    line["emitted"] = sum(len(ids) for ids in emitted["polling"].values())
    line["same_records"] = emitted["webhook"] == emitted["polling"]
    line["minimum"] = sum(
        max(1, math.ceil(len(emitted["polling"][name]) / PAGE))
        + (len(emitted["polling"][name]) if get(name).fetch_detail else 0)
        for name in streams
    )
    line["config"] = {}
    line["ok"] = line["same_records"] and line["webhook"] <= line["polling"]
    return line


def main() -> int:
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        options = SandboxOptions(scale=600, limits="off")
        with SandboxServer(options).start() as sb:
            for stream, k, extra in [*SCENARIOS, ("mixed", sum(MIXED.values()), {})]:
                if stream == "mixed":
                    line = mixed(sb, Path(tmp))
                else:
                    line = scenario(sb, Path(tmp), stream, k, extra)
                lines.append(line)
                filters = ",".join(extra) or "no filters"
                print(
                    f"{stream:15} k={k:<4} {filters:16} webhook {line['webhook']:4}  "
                    f"polling {line['polling']:4}  minimum {line['minimum']:4}  "
                    f"emitted {line['emitted']:4}  {'ok' if line['ok'] else 'WORSE'}",
                    flush=True,
                )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"scenarios": lines}, indent=2) + "\n")
    return 0 if all(line["ok"] for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
