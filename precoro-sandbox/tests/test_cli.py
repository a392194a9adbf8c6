"""`precoro-sandbox serve` starts, prints its URL and credentials, and serves."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import requests
from precoro_sandbox.cli import build_parser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_parser_defaults():
    args = build_parser().parse_args(["serve"])
    assert (args.port, args.seed, args.scale, args.limits) == (8800, 42, 1000, "real")
    assert (args.token, args.email, args.admin_token) == (
        "sandbox-token",
        "sandbox@example.com",
        "sandbox-admin",
    )
    assert (args.order, args.pagination, args.page_size, args.timezone) == (
        "id",
        "has_next_page",
        20,
        "UTC",
    )
    assert (args.modified_since, args.unknown_filters, args.unique_supplier_code) == (
        "lenient",
        "ignore",
        False,
    )
    assert args.fully_paid_error == "already_paid"
    strict = build_parser().parse_args(
        ["serve", "--modified-since", "strict", "--unknown-filters", "reject"]
    )
    assert (strict.modified_since, strict.unknown_filters) == ("strict", "reject")


def test_serve_prints_url_and_credentials():
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "precoro_sandbox.cli",
        "serve",
        "--port",
        str(port),
        "--scale",
        "5",
        "--limits",
        "off",
        "--timezone",
        "Europe/Kyiv",
        "--companies",
        "2",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line:
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output
        assert "X-AUTH-TOKEN=sandbox-token email=sandbox@example.com" in output
        assert "sandbox-token-2" in output
        headers = {"X-AUTH-TOKEN": "sandbox-token", "email": "sandbox@example.com"}
        row = requests.get(
            f"http://127.0.0.1:{port}/suppliers", headers=headers, timeout=10
        ).json()["data"][0]
        assert row["updateDate"][-6:] in ("+02:00", "+03:00")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)  # reaps it and closes its pipe
