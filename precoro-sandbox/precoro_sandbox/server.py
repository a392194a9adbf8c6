"""The sandbox's HTTP server: stdlib `ThreadingHTTPServer`, HTTP/1.1 keep-alive.

Why the standard library and not a WSGI/ASGI framework: fault injection must control
the socket itself — close a connection without any response, or announce a full
`Content-Length` and then send only part of the body before closing. Frameworks hide
the socket behind their own response handling, so they cannot do either faithfully.

Each response is written with a single `write` (status line, headers and body in one
buffer) and `TCP_NODELAY` set, so keep-alive clients never wait on Nagle/delayed-ACK.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from typing_extensions import override

from precoro_sandbox.admin_client import AdminClient
from precoro_sandbox.app import ADMIN_PREFIX, Reply, Sandbox
from precoro_sandbox.faults import truncate
from precoro_sandbox.options import SandboxOptions
from precoro_sandbox.tls import Certificate, make_certificate

_REASONS = {code: message for code, (message, _) in BaseHTTPRequestHandler.responses.items()}


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, asks the Sandbox for a Reply, and writes it to the socket."""

    protocol_version = "HTTP/1.1"
    server_version = "precoro-sandbox/0.1"
    timeout = 120
    server: _Server

    @override
    def setup(self) -> None:
        """Disable Nagle (no delayed small responses) and finish any TLS handshake.

        The handshake runs here, in the connection's own thread, not in the accept loop.
        """
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    @override
    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the sandbox keeps its own request log."""

    @override
    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header follows the sandbox clock, not the wall clock."""
        if timestamp is None:
            timestamp = self.server.sandbox.clock.now().timestamp()
        return formatdate(timestamp, usegmt=True)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            # The client went away mid-body (killed while sending). The web server in
            # front of Precoro buffers the whole body before the application sees it, so
            # such a request is never applied, counted or answered.
            self.close_connection = True
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        sandbox = self.server.sandbox
        try:
            if self.path.startswith(ADMIN_PREFIX):
                reply = sandbox.admin(self.command, self.path, headers, body)
            else:
                reply = sandbox.process(self.command, self.path, headers, body)
        except Exception as exc:  # pragma: no cover - a sandbox bug must still answer
            reply = Reply(500, f'{{"error": "sandbox error: {type(exc).__name__}"}}'.encode())
        self._emit(reply)

    def _emit(self, reply: Reply) -> None:
        if reply.action == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        head = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
        ]
        body = reply.body
        if reply.action == "truncate":
            head.append("Connection: close")
            body = truncate(reply.body)
            self.close_connection = True
        elif self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        with contextlib.suppress(OSError):
            self.wfile.write(data)
            self.wfile.flush()
        if reply.action == "truncate":
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_PATCH = _handle
    do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], sandbox: Sandbox, tls: ssl.SSLContext | None = None
    ) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)
        if tls is not None:
            # The handshake runs in the handler thread (`_Handler.setup`), so a slow or
            # refusing client never holds up the accept loop.
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    @override
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up or refuses the certificate is no sandbox error."""
        if isinstance(request, ssl.SSLSocket):
            return
        super().handle_error(request, client_address)


class SandboxServer:
    """A running sandbox: `with SandboxServer(SandboxOptions(...)) as sb: sb.url ...`."""

    def __init__(self, options: SandboxOptions | None = None, **overrides: Any) -> None:
        """Build the dataset now; the socket opens on `start()` / `__enter__`."""
        base = options or SandboxOptions()
        if overrides:
            base = SandboxOptions(**{**base.__dict__, **overrides})
        self.options = base
        self.sandbox = Sandbox(base)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.certificate: Certificate | None = None
        """The TLS files when `options.tls` is on (made on first start)."""

    # --- lifecycle -------------------------------------------------------------------

    def _bind(self) -> _Server:
        tls = None
        if self.options.tls:
            if self.certificate is None:
                self.certificate = make_certificate(self.options.host, self.options.tls_dir)
            tls = self.certificate.server_context()
        return _Server((self.options.host, self.options.port), self.sandbox, tls)

    def start(self) -> SandboxServer:
        """Open the socket and serve in a background thread."""
        if self._server is None:
            self._server = self._bind()
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="precoro-sandbox",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI)."""
        if self._server is None:
            self._server = self._bind()
        self._server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        """Stop serving and release data, threads and sockets."""
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(timeout=5)
            self._server.server_close()
            self._server = None
        if self.certificate is not None:
            self.certificate.remove()
        self.sandbox.close()

    def __enter__(self) -> SandboxServer:
        """Start serving."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.close()

    # --- what clients need -----------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the emulated API, e.g. `http://127.0.0.1:8800` (https with TLS)."""
        scheme = "https" if self.options.tls else "http"
        return f"{scheme}://{self.options.host}:{self.port}"

    @property
    def ca_path(self) -> str | None:
        """The CA file clients must trust when serving HTTPS (None on plain HTTP)."""
        return None if self.certificate is None else str(self.certificate.ca_path)

    @property
    def token(self) -> str:
        """X-AUTH-TOKEN of company 1."""
        return self.options.token

    @property
    def email(self) -> str:
        """`email` header of company 1."""
        return self.options.email

    @property
    def headers(self) -> dict[str, str]:
        """Both auth headers of company 1, ready for `requests`."""
        return {"X-AUTH-TOKEN": self.token, "email": self.email}

    def credentials(self, company: int = 1) -> tuple[str, str]:
        """(token, email) of company number `company`."""
        found = self.sandbox.company_by_index(company)
        return found.token, found.email

    def company_headers(self, company: int) -> dict[str, str]:
        """Auth headers of company number `company`."""
        token, email = self.credentials(company)
        return {"X-AUTH-TOKEN": token, "email": email}

    @property
    def admin(self) -> AdminClient:
        """Typed client of the `/_sandbox/` admin API."""
        return AdminClient(self.url, self.options.admin_token, ca_file=self.ca_path)
