"""Helpers for tests that talk to a sandbox.

Used by the sandbox's own contract tests and available to the tap and target tests.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import requests
from typing_extensions import override

from precoro_sandbox.server import SandboxServer

START = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
"""A fixed sandbox clock start (an hour boundary) for reproducible tests."""


def client(sb: SandboxServer, company: int = 1) -> requests.Session:
    """A keep-alive session carrying a company's Precoro auth headers.

    It trusts the sandbox's CA when the sandbox serves HTTPS.
    """
    session = requests.Session()
    session.headers.update(sb.company_headers(company))
    if sb.ca_path is not None:
        # requests lets REQUESTS_CA_BUNDLE (set system-wide on many machines) override a
        # session's `verify`; this session must trust the sandbox's CA whatever the env.
        session.trust_env = False
        session.verify = sb.ca_path
    return session


def all_rows(session: requests.Session, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a list, walking `has_next_page` with 200 rows per page."""
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        response = session.get(url, params={**params, "page": page, "per_page": 200})
        if response.status_code != 200:
            raise AssertionError(f"{response.status_code}: {response.text}")
        body = response.json()
        rows.extend(body["data"])
        if not body["meta"]["pagination"]["has_next_page"]:
            return rows
        page += 1


class WebhookReceiver:
    """A local HTTP endpoint that records the JSON body of every webhook POST (answers 200).

    `with WebhookReceiver() as hook: sb.admin.register_webhook(hook.url) ... hook.bodies`
    """

    def __init__(self) -> None:
        """Listen on a free local port, in a background thread."""
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            @override
            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WebhookReceiver:
        """The running receiver."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop listening."""
        self.close()
