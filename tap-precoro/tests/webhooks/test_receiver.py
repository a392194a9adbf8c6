"""The receiver over real HTTP: authentication, validation, durability, health, CLI."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from tap_precoro.webhooks.cli import main as cli_main
from tap_precoro.webhooks.inbox import Notification, SqliteInbox
from tap_precoro.webhooks.receiver import Receiver, ReceiverSettings
from tap_precoro.webhooks.testing import TEST_SECRET as SECRET

VALID = {"id": 123456, "type": 2, "action": 0, "idn": 5}


@pytest.fixture
def receiver(tmp_path: Path):
    with Receiver.open(tmp_path / "inbox.sqlite3", ReceiverSettings(secret=SECRET), port=0) as rx:
        yield rx


def stored(receiver: Receiver) -> int:
    return receiver.inbox.depth()


def test_valid_delivery_is_stored_with_the_documented_keys_only(receiver):
    url = receiver.webhook_url()
    extra = {**VALID, "company": 7, "user": {"id": 1}}
    assert requests.post(url, json=extra, timeout=5).status_code == 200
    assert requests.post(url, json={"id": 9, "type": 7, "action": 1}, timeout=5).status_code == 200
    assert requests.post(url, json={**VALID, "idn": "PO-7"}, timeout=5).status_code == 200
    entries = [e for e in receiver.inbox.read_after(0, 10) if e.notification]
    assert [e.notification for e in entries] == [
        Notification(id=123456, type=2, action=0, idn="5"),
        Notification(id=9, type=7, action=1, idn=None),
        Notification(id=123456, type=2, action=0, idn="PO-7"),
    ]


def test_secret_is_accepted_in_a_header_too(receiver):
    url = receiver.webhook_url(with_secret=False)
    response = requests.post(url, json=VALID, headers={"X-Webhook-Secret": SECRET}, timeout=5)
    assert response.status_code == 200
    assert stored(receiver) == 1


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", {}),
        ("?secret=wrong-secret-0123456789", {}),
        ("?secret=", {}),
        ("", {"X-Webhook-Secret": "wrong-secret-0123456789"}),
        ("?secret=" + SECRET[:-1], {}),
    ],
)
def test_missing_or_wrong_secret_gets_401_and_stores_nothing(receiver, caplog, query, headers):
    caplog.set_level(logging.INFO)
    url = receiver.webhook_url(with_secret=False) + query
    response = requests.post(url, json=VALID, headers=headers, timeout=5)
    assert response.status_code == 401
    assert stored(receiver) == 0
    assert SECRET[:12] not in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2, 3]",
        b'"a string"',
        b"{}",
        json.dumps({"type": 2, "action": 0}).encode(),
        json.dumps({**VALID, "id": "123"}).encode(),
        json.dumps({**VALID, "id": True}).encode(),
        json.dumps({**VALID, "id": 1.5}).encode(),
        json.dumps({**VALID, "id": -4}).encode(),
        json.dumps({**VALID, "type": 12}).encode(),
        json.dumps({**VALID, "type": None}).encode(),
        json.dumps({**VALID, "action": 2}).encode(),
        json.dumps({**VALID, "idn": {"x": 1}}).encode(),
        json.dumps({**VALID, "idn": "../../suppliers"}).encode(),
        b"",
    ],
)
def test_malformed_body_gets_400_is_not_stored_and_not_logged(receiver, caplog, body):
    caplog.set_level(logging.DEBUG, logger="tap_precoro.webhooks")
    response = requests.post(receiver.webhook_url(), data=body, timeout=5)
    assert response.status_code == 400
    assert stored(receiver) == 0
    if len(body) > 4:
        assert body.decode("utf-8", "replace") not in caplog.text


def test_oversized_body_is_refused_before_parsing(receiver):
    padded = json.dumps({**VALID, "pad": "x" * 5000}).encode()
    response = requests.post(receiver.webhook_url(), data=padded, timeout=5)
    assert response.status_code == 413
    chunked = requests.post(receiver.webhook_url(), data=iter([padded[:3000], padded[3000:]]))
    assert chunked.status_code == 413
    huge = requests.post(receiver.webhook_url(), data=b"x" * 2_000_000, timeout=10)
    assert huge.status_code == 413  # waitress itself refuses it before the app runs
    assert stored(receiver) == 0


def test_other_paths_and_methods_store_nothing(receiver):
    assert requests.get(receiver.webhook_url(), timeout=5).status_code == 405
    assert requests.post(receiver.url + "/other", json=VALID, timeout=5).status_code == 404
    assert stored(receiver) == 0


def test_health_reports_inbox_depth(receiver):
    requests.post(receiver.webhook_url(), json=VALID, timeout=5)
    health = requests.get(receiver.url + "/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["depth"] == 1
    assert health.json()["status"] == "ok"


def test_concurrent_deliveries_all_get_distinct_positions(receiver):
    url = receiver.webhook_url()

    def send(i: int) -> int:
        return requests.post(
            url, json={"id": i + 1, "type": 7, "action": 1}, timeout=10
        ).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, range(400)))
    assert codes == [200] * 400
    entries = [e for e in receiver.inbox.read_after(0, 1000) if e.notification]
    assert sorted(e.notification.id for e in entries if e.notification) == list(range(1, 401))
    assert len({e.position for e in entries}) == 400


def test_prune_keeps_positions_increasing_and_the_latest_start_marker(tmp_path):
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3", create=True)
    try:
        inbox.mark("started", {"heartbeat_seconds": 60})
        last = 0
        for i in range(5):
            last = inbox.append(Notification(id=i + 1, type=7, action=1))
        assert inbox.prune(last) == 5  # the started marker is kept
        assert inbox.depth() == 0
        info = inbox.info()
        assert (info.head, info.pruned_upto, info.heartbeat_seconds) == (last, last, 60)
        assert inbox.append(Notification(id=9, type=7, action=1)) == last + 1  # never reused
    finally:
        inbox.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_cli_receiver(inbox: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PRECORO_WEBHOOK_SECRET": SECRET}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_precoro.webhooks.cli",
            "serve",
            "--inbox",
            str(inbox),
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    process.communicate(timeout=10)
    raise AssertionError("receiver did not start")


def test_cli_receiver_killed_hard_keeps_every_acknowledged_delivery(tmp_path, capsys):
    inbox_path = tmp_path / "inbox.sqlite3"
    port = free_port()
    process = start_cli_receiver(inbox_path, port)
    url = f"http://127.0.0.1:{port}/webhook?secret={SECRET}"
    session = requests.Session()
    acknowledged = sum(
        session.post(
            url, json={"id": i + 1, "type": 3, "action": 1, "idn": i + 1}, timeout=5
        ).status_code
        == 200
        for i in range(50)
    )
    process.kill()  # SIGKILL: no shutdown code runs
    process.communicate(timeout=10)  # reaps it and closes its pipes
    assert acknowledged == 50

    assert cli_main(["status", "--inbox", str(inbox_path)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["depth"] == 50
    assert status["last_started"] is not None

    # Prune what a tap state says it consumed.
    state = {"bookmarks": {"invoices": {"webhooks": {"position": 21}}}}
    state_path = tmp_path / "state.json"
    state_path.write_text(json.dumps(state))
    assert cli_main(["prune", "--inbox", str(inbox_path), "--state", str(state_path)]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 20  # 20 notifications, 1 kept marker


def test_cli_receiver_stops_cleanly_on_sigterm(tmp_path):
    inbox_path = tmp_path / "inbox.sqlite3"
    port = free_port()
    process = start_cli_receiver(inbox_path, port)
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    inbox = SqliteInbox(inbox_path)
    try:
        assert [e.kind for e in inbox.read_after(0, 10)] == ["started", "stopped"]
    finally:
        inbox.close()
    _, err = process.communicate()
    assert SECRET not in err


def test_cli_refuses_to_serve_without_a_strong_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("PRECORO_WEBHOOK_SECRET", raising=False)
    inbox = str(tmp_path / "inbox.sqlite3")
    assert cli_main(["serve", "--inbox", inbox]) == 2
    assert cli_main(["serve", "--inbox", inbox, "--secret", "short"]) == 2
    assert not Path(inbox).exists()


def _waitress_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("waitress-")}


def _closed_by_peer(sock: socket.socket) -> bool:
    """The other end closed (EOF) or reset the connection; a live one would time out."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_close_with_open_connections_frees_port_threads_and_marks_stopped(tmp_path):
    """close() from another thread: the loop ends, connections close, the port is free."""
    before = _waitress_threads()
    inbox_path = tmp_path / "inbox.sqlite3"
    port = 0
    for round_ in range(20):
        receiver = Receiver.open(inbox_path, ReceiverSettings(secret=SECRET), port=port).start()
        port = receiver.port
        session = requests.Session()  # keeps its connection open after the delivery
        body = {**VALID, "id": round_ + 1}
        assert session.post(receiver.webhook_url(), json=body, timeout=5).status_code == 200
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)  # sends nothing
        receiver.close()
        assert receiver._thread is not None
        assert not receiver._thread.is_alive()
        assert _closed_by_peer(idle)
        idle.close()
        session.close()
    assert _waitress_threads() <= before
    with socket.create_server(("127.0.0.1", port)):  # the port is released
        pass
    inbox = SqliteInbox(inbox_path)
    try:
        kinds = [e.kind for e in inbox.read_after(0, 100)]
    finally:
        inbox.close()
    assert kinds.count("stopped") == 20


def test_a_receiver_closed_without_serving_leaves_no_worker_thread(tmp_path):
    before = _waitress_threads()
    receiver = Receiver.open(tmp_path / "inbox.sqlite3", ReceiverSettings(secret=SECRET), port=0)
    receiver.close()
    assert _waitress_threads() <= before
