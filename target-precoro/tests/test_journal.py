"""The journal forgets finished writes after a while, never open ones."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

from target_precoro.journal import Journal


def test_prune_keeps_open_entries_and_drops_old_finished_ones(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3", "run-1")
    done = journal.intent("suppliers", 0, "ERP-1", "POST", "/suppliers")
    journal.done(done, 10000001)
    open_seq = journal.intent("suppliers", 0, "ERP-2", "POST", "/suppliers")

    assert journal.prune(time.time() - 3600) == 0  # both are recent
    assert journal.prune(time.time() + 1) == 1  # only the finished one goes
    journal.close()
    with closing(sqlite3.connect(tmp_path / "journal.sqlite3")) as db:
        states = [row[0] for row in db.execute("SELECT seq FROM journal")]
    assert states == [open_seq]
