"""Webhook mode never costs more calls than polling for the same changes (issue 16, 1).

The inbox is written directly (what the receiver would store), so the test counts only
the tap's calls at the sandbox.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from precoro_client.registry import get
from tap_precoro.testing import notify
from tap_precoro.webhooks.inbox import SqliteInbox

CHANGED = 30


def costs(
    sandbox: Any, make_config: Any, run_tap: Any, tmp_path: Path, entity: str, **config: Any
) -> tuple[dict[str, int], dict[str, int]]:
    """Calls (and records) for CHANGED changes, in webhook mode and in polling mode."""
    inbox_path = tmp_path / "inbox.sqlite3"
    SqliteInbox(inbox_path, create=True).close()
    webhook = make_config(sandbox, webhook_inbox=str(inbox_path), **config)
    polling = make_config(sandbox, **config)
    everything = run_tap(make_config(sandbox), streams=[entity])  # unfiltered rows
    base_w = run_tap(webhook, streams=[entity])  # first run: the reconcile poll
    base_p = run_tap(polling, streams=[entity])
    sandbox_rows(base_w, base_p, entity)
    sandbox.admin.advance_clock(600)
    rows = list(everything.records[entity])[:CHANGED]
    sandbox.admin.touch(entity, [r[get(entity).key] for r in rows])
    notify(inbox_path, entity, rows)
    calls: dict[str, int] = {}
    emitted: dict[str, int] = {}
    for mode, cfg, base in (("webhook", webhook, base_w), ("polling", polling, base_p)):
        sandbox.admin.reset_counters()
        run = run_tap(cfg, state=base.state, streams=[entity])
        calls[mode] = sandbox.admin.counters().total
        emitted[mode] = len(run.records.get(entity, []))
        ids = sorted(int(r["id"]) for r in run.records.get(entity, []))
        emitted[f"{mode}_ids"] = hash(tuple(ids))
    return calls, emitted


def sandbox_rows(first: Any, second: Any, entity: str) -> None:
    """Both first runs delivered the same records."""
    assert len(first.records[entity]) == len(second.records[entity])


@pytest.mark.parametrize(
    ("entity", "config"),
    [
        ("suppliers", {}),
        ("suppliers", {"include_disabled": False}),
        ("receipts", {}),
        ("invoices", {}),
        ("invoices", {"status_filters": {"invoices": [2]}}),
        ("purchaseorders", {"status_filters": {"purchaseorders": [2, 3]}}),
    ],
)
def test_webhook_mode_costs_no_more_than_polling(
    sandbox, make_config, run_tap, tmp_path, *, entity, config
):
    calls, emitted = costs(sandbox, make_config, run_tap, tmp_path, entity, **config)
    assert emitted["webhook"] == emitted["polling"]
    assert emitted["webhook_ids"] == emitted["polling_ids"]
    assert calls["webhook"] <= calls["polling"], calls
    if config:  # the filters leave some notified entities out
        assert emitted["webhook"] < CHANGED


def test_a_notified_entity_the_list_misses_is_fetched_on_its_own(
    sandbox, make_config, run_tap, tmp_path
):
    """A change stamped before the list's `modifiedSince` (a skewed clock, a late
    delivery) is not lost: it is fetched by id after the list read."""
    inbox_path = tmp_path / "inbox.sqlite3"
    SqliteInbox(inbox_path, create=True).close()
    config = make_config(sandbox, webhook_inbox=str(inbox_path))
    base = run_tap(config, streams=["suppliers"])
    rows = base.records["suppliers"][:4]
    sandbox.admin.advance_clock(600)
    sandbox.admin.touch("suppliers", [r["id"] for r in rows[:2]])
    # Stamped an hour before the notification arrives: outside the list read.
    early = sandbox.admin.clock() - timedelta(hours=1)
    sandbox.admin.touch("suppliers", [r["id"] for r in rows[2:]], update_date=early)
    notify(inbox_path, "suppliers", rows)
    sandbox.admin.reset_counters()

    run = run_tap(config, state=base.state, streams=["suppliers"])
    assert sorted(run.ids("suppliers")) == sorted(int(r["id"]) for r in rows)
    assert sandbox.admin.counters().total == 1 + 2  # the list, then one call per miss
