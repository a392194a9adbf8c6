"""Every field of a delivery is checked against what SQLite and Precoro allow (400, not
503), and one row that cannot be stored never fails the commit other deliveries share."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from tap_precoro.webhooks.inbox import MAX_ENTITY_ID, Notification, SqliteInbox
from tap_precoro.webhooks.receiver import Receiver, ReceiverSettings
from tap_precoro.webhooks.testing import TEST_SECRET as SECRET

VALID = {"id": 123456, "type": 2, "action": 0, "idn": 5}


@pytest.fixture
def receiver(tmp_path: Path):
    with Receiver.open(tmp_path / "inbox.sqlite3", ReceiverSettings(secret=SECRET), port=0) as rx:
        yield rx


def notifications(inbox: SqliteInbox) -> list[Notification]:
    return [e.notification for e in inbox.read_after(0, 10_000) if e.notification]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({**VALID, "id": 2**63}).encode(),
        json.dumps({**VALID, "id": 2**64 + 7}).encode(),
        json.dumps({**VALID, "id": 0}).encode(),
        json.dumps({**VALID, "idn": 2**63}).encode(),
        json.dumps({**VALID, "idn": -5}).encode(),
        json.dumps({**VALID, "idn": 0}).encode(),
        json.dumps({**VALID, "idn": "x" * 65}).encode(),
        json.dumps({**VALID, "idn": "   "}).encode(),
        json.dumps({**VALID, "idn": "\ud800"}).encode(),  # a lone surrogate: not storable text
        json.dumps({**VALID, "idn": "PO\n7"}).encode(),
        json.dumps({**VALID, "type": 2**63}).encode(),
        json.dumps({**VALID, "action": -(2**63) - 1}).encode(),
        json.dumps({**VALID, "id": 1e3}).encode(),
        json.dumps({**VALID, "id": float("nan")}).encode(),  # `NaN`: Python's json accepts it
        b"[" * 2000 + b"]" * 2000,  # nesting deeper than the JSON decoder's recursion limit
        b'{"id": ' + b"9" * 4000 + b', "type": 2, "action": 0}',  # a 4,000-digit id
    ],
)
def test_out_of_range_or_hostile_fields_get_400_and_nothing_is_stored(receiver, body):
    response = requests.post(receiver.webhook_url(), data=body, timeout=10)
    assert response.status_code == 400
    assert receiver.inbox.depth() == 0


def test_the_largest_ids_sqlite_can_hold_are_stored_exactly(receiver):
    body = {"id": MAX_ENTITY_ID, "type": 3, "action": 1, "idn": MAX_ENTITY_ID}
    assert requests.post(receiver.webhook_url(), json=body, timeout=10).status_code == 200
    assert notifications(receiver.inbox) == [
        Notification(id=MAX_ENTITY_ID, type=3, action=1, idn=str(MAX_ENTITY_ID))
    ]


def test_concurrent_good_and_bad_deliveries_good_all_stored_bad_all_400(receiver):
    """Bad deliveries race the good ones into the same group commits."""
    url = receiver.webhook_url()
    bad_bodies = [
        {**VALID, "id": 2**63},
        {**VALID, "id": 2**64},
        {**VALID, "idn": 2**63 + 1},
        {**VALID, "idn": "\udfff"},
    ]

    def send(i: int) -> tuple[str, int, int]:
        if i % 4 == 3:  # every 4th is bad
            body = bad_bodies[(i // 4) % len(bad_bodies)]
            kind = "bad"
        else:
            body = {"id": i + 1, "type": 7, "action": 1}
            kind = "good"
        return kind, i + 1, requests.post(url, json=body, timeout=20).status_code

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(200)))
    good = [(entity, status) for kind, entity, status in results if kind == "good"]
    bad = [status for kind, _, status in results if kind == "bad"]
    assert [status for _, status in good] == [200] * 150
    assert bad == [400] * 50
    stored = sorted(n.id for n in notifications(receiver.inbox))
    assert stored == sorted(entity for entity, _ in good)


def test_a_row_the_database_refuses_fails_alone_not_its_whole_batch(tmp_path):
    """A batch of 20 appends, one of which SQLite aborts: the 19 others are stored."""
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3", create=True)
    side = sqlite3.connect(tmp_path / "inbox.sqlite3")
    side.execute(  # a storage-level failure of one row (as an overflow or a bad text would be)
        "CREATE TRIGGER refuse_666 BEFORE INSERT ON entries WHEN NEW.entity_id = 666"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    side.commit()
    side.close()
    ids = [*range(1, 11), 666, *range(11, 20)]
    outcome: dict[int, int | BaseException] = {}

    def append(entity_id: int) -> None:
        try:
            outcome[entity_id] = inbox.append(Notification(id=entity_id, type=7, action=1))
        except Exception as exc:
            outcome[entity_id] = exc

    try:
        # Hold the write lock so that all 20 appends queue up and share one commit.
        with inbox._write_lock:
            threads = [threading.Thread(target=append, args=(i,)) for i in ids]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while len(inbox._queue) < len(ids) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(inbox._queue) == len(ids)
        for thread in threads:
            thread.join(30)
        assert isinstance(outcome.pop(666), sqlite3.IntegrityError)
        assert all(isinstance(position, int) and position > 0 for position in outcome.values())
        assert len(set(outcome.values())) == len(ids) - 1
        stored = {n.id: None for n in notifications(inbox)}
        assert sorted(stored) == sorted(outcome)
        for entity_id, position in outcome.items():  # each waiter got its own row's position
            assert inbox.read_after(int(position) - 1, 1)[0].notification == Notification(
                id=entity_id, type=7, action=1
            )
    finally:
        inbox.close()


def test_the_inbox_refuses_a_notification_it_cannot_hold_before_any_batch(tmp_path):
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3", create=True)
    try:
        for bad in (
            Notification(id=2**63, type=2, action=0),
            Notification(id=0, type=2, action=0),
            Notification(id=5, type=2, action=0, idn="\ud800"),
            Notification(id=5, type=2, action=0, idn="x" * 65),
        ):
            with pytest.raises(ValueError, match="cannot store notification"):
                inbox.append(bad)
        assert inbox.append(Notification(id=5, type=2, action=0, idn="5")) > 0
        assert inbox.depth() == 1
    finally:
        inbox.close()
