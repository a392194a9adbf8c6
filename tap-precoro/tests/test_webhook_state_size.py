"""STATE stays bounded during a webhook drain, whatever the inbox holds (issue 16, 2).

A drain checkpoints after every document it fetches; the versions it delivers are kept
for the next reconcile poll (which then skips them, one detail call saved each). Carried
by every STATE, they made a drain of n documents cost n² STATE bytes.
"""

from __future__ import annotations

import json
from typing import Any

from tap_precoro.bookmarks import RECENT_LIMIT
from tap_precoro.testing import notify
from tap_precoro.webhooks.inbox import SqliteInbox

DOCUMENTS = 3 * RECENT_LIMIT
PAGE = 100


def size(state: dict[str, Any]) -> int:
    return len(json.dumps(state))


def test_a_drain_writes_bounded_state_and_the_next_reconcile_skips_what_it_sent(
    sandbox_factory, make_config, run_tap, tmp_path
):
    sb = sandbox_factory(counts={"invoices": DOCUMENTS})
    inbox_path = tmp_path / "inbox.sqlite3"
    SqliteInbox(inbox_path, create=True).close()
    budget = {"max_requests_per_hour": 10_000, "max_requests_per_day": 10_000}
    config = make_config(sb, webhook_inbox=str(inbox_path), page_size=PAGE, **budget)
    first = run_tap(config, streams=["invoices"])  # the first reconcile poll
    assert len(first.records["invoices"]) == DOCUMENTS
    normal = max(size(state) for state in first.states)

    sb.admin.advance_clock(600)
    rows = first.records["invoices"]
    sb.admin.touch("invoices", [r["idn"] for r in rows])
    notify(inbox_path, "invoices", rows)
    drain = run_tap(config, state=first.state, streams=["invoices"])
    assert len(drain.records["invoices"]) == DOCUMENTS
    during = drain.states[:-1]
    assert len(during) >= DOCUMENTS  # a checkpoint per fetched document
    # Every STATE of the drain but its last is no bigger than a normal run's.
    assert max(size(state) for state in during) <= 1.2 * normal
    recent = drain.state["bookmarks"]["invoices"]["recent"]
    assert len(recent) == DOCUMENTS  # the last STATE keeps every delivered version
    assert recent == {str(r["id"]): r["updateDate"] for r in drain.records["invoices"]}

    # The next reconcile poll lists the changes and sends none of them again.
    sb.admin.advance_clock(600)
    sb.admin.reset_counters()
    reconcile = run_tap(
        {**config, "reconcile_every_hours": 0}, state=drain.state, streams=["invoices"]
    )
    assert reconcile.records.get("invoices", []) == []
    assert sb.admin.counters().total == DOCUMENTS // PAGE  # list pages only
