"""WebhookDispatcher against real local HTTP receivers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from precoro_sandbox.webhooks import WebhookDispatcher

FAST = (0.01, 0.01, 0.01)


class Receiver:
    """A local webhook endpoint that can fail its first N requests."""

    def __init__(self, fail_first: int = 0, fail_status: int = 500) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.requests: list[dict] = []
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(
                        {"path": self.path, "type": self.headers.get("Content-Type"), "raw": raw}
                    )
                    fail = len(receiver.requests) <= receiver.fail_first
                    if not fail:
                        receiver.received.append(json.loads(raw))
                self.send_response(receiver.fail_status if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


@pytest.fixture
def dispatchers() -> Iterator[list[WebhookDispatcher]]:
    made: list[WebhookDispatcher] = []
    yield made
    for dispatcher in made:
        dispatcher.close()


def new_receiver(receivers: list[Receiver], **kwargs) -> Receiver:
    receiver = Receiver(**kwargs)
    receivers.append(receiver)
    return receiver


def new_dispatcher(dispatchers: list[WebhookDispatcher], **kwargs) -> WebhookDispatcher:
    kwargs.setdefault("retry_delays", FAST)
    kwargs.setdefault("timeout", 2.0)
    dispatcher = WebhookDispatcher(**kwargs)
    dispatchers.append(dispatcher)
    return dispatcher


def refused_url() -> str:
    """A URL on a port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead"


def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_delivers_json_post(receivers, dispatchers):
    receiver = new_receiver(receivers)
    dispatcher = new_dispatcher(dispatchers)
    dispatcher.register(receiver.url)
    payload = {"id": 123, "type": 2, "action": 0, "idn": 5}
    dispatcher.publish(payload)
    assert dispatcher.flush(10)
    assert receiver.received == [payload]
    request = receiver.requests[0]
    assert request["path"] == "/hook"
    assert request["type"] == "application/json"
    assert request["raw"] == b'{"id":123,"type":2,"action":0,"idn":5}'
    assert dispatcher.stats() == {
        "delivered": 1,
        "failed_attempts": 0,
        "given_up": 0,
        "dropped": 0,
        "pending": 0,
    }
    (entry,) = dispatcher.deliveries()
    assert entry["url"] == receiver.url
    assert entry["payload"] == payload
    assert entry["status"] == 200
    assert entry["error"] is None
    assert entry["attempt"] == 1
    assert entry["time"]


def test_fifo_order_per_url(receivers, dispatchers):
    receiver = new_receiver(receivers)
    dispatcher = new_dispatcher(dispatchers)
    dispatcher.register(receiver.url)
    for i in range(20):
        dispatcher.publish({"id": i, "type": 7, "action": 1})
    assert dispatcher.flush(10)
    assert [m["id"] for m in receiver.received] == list(range(20))


def test_every_registered_url_gets_every_message(receivers, dispatchers):
    first, second = new_receiver(receivers), new_receiver(receivers)
    dispatcher = new_dispatcher(dispatchers)
    dispatcher.register(first.url)
    dispatcher.register(second.url)
    dispatcher.publish({"id": 1, "type": 3, "action": 0})
    dispatcher.publish({"id": 2, "type": 3, "action": 1})
    assert dispatcher.flush(10)
    assert [m["id"] for m in first.received] == [1, 2]
    assert [m["id"] for m in second.received] == [1, 2]
    assert dispatcher.stats()["delivered"] == 4


def test_retries_until_success(receivers, dispatchers):
    receiver = new_receiver(receivers, fail_first=2, fail_status=503)
    dispatcher = new_dispatcher(dispatchers)
    dispatcher.register(receiver.url)
    dispatcher.publish({"id": 9, "type": 2, "action": 0})
    assert dispatcher.flush(10)
    assert len(receiver.requests) == 3
    assert receiver.received == [{"id": 9, "type": 2, "action": 0}]
    stats = dispatcher.stats()
    assert (stats["delivered"], stats["failed_attempts"], stats["given_up"]) == (1, 2, 0)
    log = dispatcher.deliveries()
    assert [(e["attempt"], e["status"], e["ok"]) for e in log] == [
        (1, 503, False),
        (2, 503, False),
        (3, 200, True),
    ]


def test_non_2xx_is_a_failure_and_gives_up(receivers, dispatchers):
    receiver = new_receiver(receivers, fail_first=100, fail_status=302)
    dispatcher = new_dispatcher(dispatchers, retry_delays=(0.01, 0.01))
    dispatcher.register(receiver.url)
    dispatcher.publish({"id": 1, "type": 7, "action": 0})
    assert dispatcher.flush(10)
    assert len(receiver.requests) == 3
    stats = dispatcher.stats()
    assert (stats["delivered"], stats["failed_attempts"], stats["given_up"]) == (0, 3, 1)


def test_connection_errors_are_retried_then_given_up(dispatchers):
    dispatcher = new_dispatcher(dispatchers)
    url = refused_url()
    dispatcher.register(url)
    dispatcher.publish({"id": 1, "type": 7, "action": 0})
    dispatcher.publish({"id": 2, "type": 7, "action": 0})
    assert dispatcher.flush(10)
    stats = dispatcher.stats()
    assert stats["given_up"] == 2
    assert stats["failed_attempts"] == 2 * (1 + len(FAST))
    assert stats["pending"] == 0
    log = dispatcher.deliveries()
    assert all(e["status"] is None and e["error"] for e in log)
    assert max(e["attempt"] for e in log) == 1 + len(FAST)


def test_dead_url_does_not_delay_live_one(receivers, dispatchers):
    live = new_receiver(receivers)
    dispatcher = new_dispatcher(dispatchers, retry_delays=(30, 30))
    dispatcher.register(refused_url())
    dispatcher.register(live.url)
    for i in range(3):
        dispatcher.publish({"id": i, "type": 2, "action": 0})
    assert wait_until(lambda: len(live.received) == 3)
    assert [m["id"] for m in live.received] == [0, 1, 2]
    # The receiver has the messages before the dispatcher has read its answers and
    # counted them (read at once, it failed a full run under load).
    assert wait_until(lambda: dispatcher.stats()["delivered"] == 3)
    stats = dispatcher.stats()
    assert stats["given_up"] == 0  # the dead URL is still waiting for its retries
    assert stats["pending"] == 3
    assert not dispatcher.flush(0.05)


def test_hanging_url_does_not_delay_live_one(receivers, dispatchers):
    live = new_receiver(receivers)
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)  # accepts connections at the TCP level, never answers
    try:
        dispatcher = new_dispatcher(dispatchers, retry_delays=(), timeout=0.3)
        dispatcher.register(f"http://127.0.0.1:{hang.getsockname()[1]}/")
        dispatcher.register(live.url)
        dispatcher.publish({"id": 1, "type": 2, "action": 0})
        dispatcher.publish({"id": 2, "type": 2, "action": 0})
        assert wait_until(lambda: len(live.received) == 2)
        assert dispatcher.stats()["given_up"] == 0
        assert dispatcher.flush(10)
        assert dispatcher.stats()["given_up"] == 2
    finally:
        dispatcher.close()
        hang.close()


def test_register_rules(dispatchers):
    dispatcher = new_dispatcher(dispatchers)
    urls = [f"http://127.0.0.1:{9000 + i}/hook" for i in range(5)]
    for url in urls:
        dispatcher.register(url)
    assert dispatcher.urls() == urls
    with pytest.raises(ValueError, match="at most 5"):
        dispatcher.register("https://example.com/sixth")
    with pytest.raises(ValueError, match="already registered"):
        dispatcher.register(urls[0])
    dispatcher.unregister(urls[0])
    with pytest.raises(ValueError, match="http"):
        dispatcher.register("ftp://example.com/hook")
    with pytest.raises(ValueError, match="http"):
        dispatcher.register("example.com/hook")
    with pytest.raises(ValueError, match="http"):
        dispatcher.register("http:///nohost")
    dispatcher.register("https://example.com/hook")
    assert len(dispatcher.urls()) == 5
    with pytest.raises(ValueError, match="not registered"):
        dispatcher.unregister(urls[0])


def test_max_urls_is_configurable(dispatchers):
    dispatcher = new_dispatcher(dispatchers, max_urls=1)
    dispatcher.register("http://127.0.0.1:9/a")
    with pytest.raises(ValueError, match="at most 1"):
        dispatcher.register("http://127.0.0.1:9/b")


def test_publish_without_urls_is_a_no_op(dispatchers):
    dispatcher = new_dispatcher(dispatchers)
    dispatcher.publish({"id": 1, "type": 2, "action": 0})
    assert dispatcher.flush(0.1)
    assert dispatcher.stats()["pending"] == 0


def test_unregister_drops_backlog(dispatchers):
    dispatcher = new_dispatcher(dispatchers, retry_delays=(30,))
    url = refused_url()
    dispatcher.register(url)
    dispatcher.publish({"id": 1, "type": 2, "action": 0})
    assert wait_until(lambda: dispatcher.stats()["failed_attempts"] == 1)
    dispatcher.unregister(url)
    assert dispatcher.flush(1)
    assert dispatcher.stats()["dropped"] == 1
    assert dispatcher.urls() == []


def test_close_is_idempotent_and_stops_workers(receivers):
    receiver = new_receiver(receivers)
    dispatcher = WebhookDispatcher(retry_delays=FAST)
    dispatcher.register(receiver.url)
    dispatcher.publish({"id": 1, "type": 2, "action": 0})
    assert dispatcher.flush(10)
    dispatcher.close()
    dispatcher.close()
    assert not any(t.is_alive() for t in dispatcher._threads)
    dispatcher.publish({"id": 2, "type": 2, "action": 0})  # ignored after close
    assert dispatcher.stats()["pending"] == 0
    with pytest.raises(RuntimeError):
        dispatcher.register(receiver.url)


def test_log_is_bounded(receivers, dispatchers, monkeypatch):
    from collections import deque

    receiver = new_receiver(receivers)
    dispatcher = new_dispatcher(dispatchers)
    dispatcher._log = deque(maxlen=5)
    dispatcher.register(receiver.url)
    for i in range(12):
        dispatcher.publish({"id": i, "type": 2, "action": 0})
    assert dispatcher.flush(10)
    assert [e["payload"]["id"] for e in dispatcher.deliveries()] == [7, 8, 9, 10, 11]
