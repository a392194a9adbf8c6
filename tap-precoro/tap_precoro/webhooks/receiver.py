"""The webhook receiver: a WSGI app served by waitress.

Why waitress: it is a production WSGI server (maintained by the Pylons project, pure
Python, no dependencies, also runs on Windows), it reads and buffers each request
body on its I/O thread before a worker thread runs the app (so a slow or malicious
sender cannot tie up workers), it caps body sizes itself (`max_request_body_size`),
and its worker threads fit the blocking, durable SQLite append the app must finish
before it answers. An ASGI server would need that blocking write moved to a thread
pool anyway. Its connection policy is hardened for the open internet in `guard.py`
(per-request deadlines, eviction at the connection limit).

Per delivery: authenticate (secret in `?secret=` or `X-Webhook-Secret`, compared in
constant time; 401 otherwise), cap the size (413), validate the body (400), append to
the inbox and answer 200 only after the append is durable (503 if storing failed, so
a retrying sender tries again). Nothing is stored for a rejected request, and logs
never contain a body or a secret.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from precoro_client.declared import (
    declare,
    declare_required,
    integer,
    number,
    number_rules,
    parse_numbers,
)
from precoro_client.numbers import NumberRule
from singer_sdk import typing as th

from tap_precoro.webhooks.guard import GuardStats, ServerLimits, create_guarded_server
from tap_precoro.webhooks.inbox import Inbox, SqliteInbox
from tap_precoro.webhooks.payload import InvalidNotification, parse_notification

logger = logging.getLogger("tap_precoro.webhooks")

SECRET_HEADER = "HTTP_X_WEBHOOK_SECRET"
MIN_SECRET_LENGTH = 16
WEBHOOK_PATH = "/webhook"
HEALTH_PATH = "/health"

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


@dataclass(frozen=True)
class ListenAddress:
    """Where the receiver listens.

    Each field is the setting's one declaration (`precoro_client.declared`), read by
    `Receiver` (its defaults) and by `precoro-webhooks serve` (its options).
    """

    host: str = declare(
        "127.0.0.1",
        kind=th.StringType,
        description="Address to listen on; the default serves only the reverse proxy on "
        "this machine (docs/webhooks-receiver.md).",
    )
    port: int = integer(
        8900, minimum=0, maximum=65_535, description="TCP port to listen on (0: any free one)."
    )

    def __post_init__(self) -> None:
        """Parse and range-check the port with the shared number parser."""
        parse_numbers(self)


@dataclass(frozen=True)
class ReceiverSettings:
    """How the receiver authenticates, validates and reports liveness.

    Each field is the setting's one declaration (`precoro_client.declared`): the
    `precoro-webhooks serve` options, their defaults and ranges are derived from it.
    """

    secret: str = declare_required(
        kind=th.StringType,
        secret=True,
        description=f"Shared secret Precoro sends (`?secret=` or `X-Webhook-Secret`); at "
        f"least {MIN_SECRET_LENGTH} characters.",
    )
    max_body_bytes: int = integer(
        4096,  # a notification is ~60 bytes; 4 KiB leaves room for undocumented keys
        minimum=64,
        maximum=1_048_576,
        description="Largest notification body accepted, in bytes (413 above it).",
    )
    heartbeat_seconds: float = number(
        60.0,
        minimum=0,
        maximum=86_400,
        description="Liveness marker interval; the tap reconciles after a longer silence "
        "(0: off, the tap then only sees restarts, not hangs).",
    )

    def __post_init__(self) -> None:
        """Refuse settings that would make the receiver unsafe."""
        if len(self.secret) < MIN_SECRET_LENGTH:
            msg = f"the webhook secret must be at least {MIN_SECRET_LENGTH} characters"
            raise ValueError(msg)
        parse_numbers(self)

    def __repr__(self) -> str:
        """Never show the secret."""
        return (
            f"ReceiverSettings(secret=<hidden>, max_body_bytes={self.max_body_bytes}, "
            f"heartbeat_seconds={self.heartbeat_seconds})"
        )


NUMBER_RULES: dict[str, NumberRule] = {
    **number_rules(ListenAddress),
    **number_rules(ReceiverSettings),
    **number_rules(ServerLimits),
}
"""Type and range of the receiver's numeric settings (from their declarations)."""


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


class WebhookApp:
    """The WSGI application: `POST /webhook` and `GET /health`."""

    def __init__(
        self, inbox: Inbox, settings: ReceiverSettings, guard: GuardStats | None = None
    ) -> None:
        """Serve deliveries into `inbox`; `guard` counts what the server closed."""
        self.inbox = inbox
        self.settings = settings
        self.guard = guard or GuardStats()
        self._secret = settings.secret.encode()
        self.accepted = 0
        self.rejected = 0

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Route one request."""
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if path == HEALTH_PATH:
            if method not in ("GET", "HEAD"):
                return _json(start_response, "405 Method Not Allowed", {"error": "use GET"})
            return self.health(start_response)
        if path != WEBHOOK_PATH:
            return _json(start_response, "404 Not Found", {"error": "not found"})
        if method != "POST":
            return _json(start_response, "405 Method Not Allowed", {"error": "use POST"})
        return self.deliver(environ, start_response)

    def _authenticated(self, environ: Environ) -> bool:
        """Constant-time check of the header or the `secret` query parameter."""
        candidates = [str(environ.get(SECRET_HEADER, ""))]
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        candidates.extend(query.get("secret", []))
        ok = False
        for candidate in candidates:
            # Every candidate is compared, so timing does not tell which one matched.
            ok |= hmac.compare_digest(candidate.encode(), self._secret)
        return ok

    def deliver(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Authenticate, cap, validate, store durably, then answer."""
        remote = environ.get("REMOTE_ADDR", "?")
        if not self._authenticated(environ):
            self.rejected += 1
            logger.warning("rejected delivery from %s: missing or wrong secret", remote)
            return _json(start_response, "401 Unauthorized", {"error": "unauthorized"})
        limit = self.settings.max_body_bytes
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = -1
        if declared < 0:
            self.rejected += 1
            logger.warning("rejected delivery from %s: bad Content-Length", remote)
            return _json(start_response, "400 Bad Request", {"error": "bad Content-Length"})
        body = environ["wsgi.input"].read(min(declared, limit + 1)) if declared else b""
        if declared > limit or len(body) > limit:
            self.rejected += 1
            logger.warning(
                "rejected delivery from %s: body of %d bytes exceeds %d", remote, declared, limit
            )
            return _json(start_response, "413 Content Too Large", {"error": "body too large"})
        try:
            notification = parse_notification(body)
        except InvalidNotification as exc:
            self.rejected += 1
            logger.warning("rejected delivery from %s (%d bytes): %s", remote, len(body), exc)
            return _json(start_response, "400 Bad Request", {"error": str(exc)})
        try:
            self.inbox.append(notification)
        except ValueError as exc:  # the inbox refused the values themselves: resending won't help
            self.rejected += 1
            logger.warning("rejected delivery from %s: %s", remote, exc)
            return _json(start_response, "400 Bad Request", {"error": "invalid notification"})
        except Exception:
            logger.exception("could not store a delivery (type %d)", notification.type)
            return _json(start_response, "503 Service Unavailable", {"error": "not stored"})
        self.accepted += 1
        logger.debug(
            "stored type=%d action=%d id=%d",
            notification.type,
            notification.action,
            notification.id,
        )
        return _json(start_response, "200 OK", {"stored": True})

    def health(self, start_response: StartResponse) -> Iterable[bytes]:
        """Liveness plus the inbox's head and depth (no secret needed, nothing private)."""
        try:
            info = self.inbox.info()
            depth = self.inbox.depth()
        except Exception:
            logger.exception("health check could not read the inbox")
            return _json(start_response, "503 Service Unavailable", {"status": "inbox unreadable"})
        return _json(
            start_response,
            "200 OK",
            {
                "status": "ok",
                "head": info.head,
                "depth": depth,
                "accepted": self.accepted,
                "connections": self.guard.as_dict(),
            },
        )


class Receiver:
    """The app on a waitress server, with lifecycle markers and heartbeats.

    `start()` serves on a background thread (tests, benchmarks); `serve_forever()`
    serves on the calling thread until SIGINT/SIGTERM (the CLI). Both write `started`
    before accepting and `stopped` after the last request.
    """

    def __init__(
        self,
        inbox: Inbox,
        settings: ReceiverSettings,
        *,
        host: str = ListenAddress.host,
        port: int = ListenAddress.port,
        limits: ServerLimits | None = None,
        owns_inbox: bool = False,
    ) -> None:
        """Bind the listening socket now (port 0 picks a free one)."""
        self.inbox = inbox
        self.settings = settings
        self.limits = limits or ServerLimits()
        self.guard = GuardStats()
        self.app = WebhookApp(inbox, settings, self.guard)
        self._owns_inbox = owns_inbox
        # waitress warns "Task queue depth is N" whenever requests wait for a worker:
        # normal under a burst of webhooks, and it would flood the log.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self.server = create_guarded_server(
            self.app,
            limits=self.limits,
            stats=self.guard,
            host=host,
            port=port,
            max_request_body_size=max(settings.max_body_bytes * 4, 65536),
            ident="precoro-webhooks",
            clear_untrusted_proxy_headers=True,
        )
        self.host = host
        self.port = int(self.server.effective_port)
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def open(cls, inbox_path: str | Path, settings: ReceiverSettings, **kwargs: Any) -> Receiver:
        """A receiver over a SQLite inbox at `inbox_path` (created if missing)."""
        inbox = SqliteInbox(inbox_path, create=True)
        try:
            return cls(inbox, settings, owns_inbox=True, **kwargs)
        except BaseException:  # e.g. the port is taken or the limits do not fit
            inbox.close()
            raise

    @property
    def url(self) -> str:
        """Base URL of the receiver (no secret)."""
        return f"http://{self.host}:{self.port}"

    def webhook_url(self, *, with_secret: bool = True) -> str:
        """The URL to register in Precoro (the secret travels in the query string)."""
        from urllib.parse import quote

        base = f"{self.url}{WEBHOOK_PATH}"
        return f"{base}?secret={quote(self.settings.secret, safe='')}" if with_secret else base

    def _begin(self) -> None:
        self.inbox.mark(
            "started",
            {"heartbeat_seconds": self.settings.heartbeat_seconds, "port": self.port},
        )
        if self.settings.heartbeat_seconds > 0:
            self._heartbeat = threading.Thread(
                target=self._beat, name="webhook-heartbeat", daemon=True
            )
            self._heartbeat.start()
        logger.info("receiving webhooks on %s%s", self.url, WEBHOOK_PATH)

    def _beat(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_seconds):
            try:
                self.inbox.mark("heartbeat")
            except Exception:
                logger.exception("could not write a heartbeat")

    def start(self) -> Receiver:
        """Serve on a background thread; returns once the socket accepts."""
        self._begin()
        self._thread = threading.Thread(target=self.server.run, name="webhook-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until KeyboardInterrupt/SystemExit, then close."""
        self._begin()
        try:
            self.server.run()  # returns after SIGINT/SIGTERM (see cli.py)
        finally:
            self.close()

    def close(self) -> None:
        """Stop serving, write `stopped`, close the inbox if owned (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self.server.request_stop()
            self._thread.join(10)
        self.server.close_all()
        if self._heartbeat is not None:
            self._heartbeat.join(5)
        try:
            self.inbox.mark("stopped", {"accepted": self.app.accepted})
        finally:
            if self._owns_inbox:
                self.inbox.close()
        logger.info("webhook receiver stopped after %d deliveries", self.app.accepted)

    def __enter__(self) -> Receiver:
        """Use as a context manager (starts on a background thread)."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Close on exit."""
        self.close()
