"""The optional HTTPS listener: a fresh CA per start, trusted only by clients given it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from precoro_sandbox.cli import build_parser
from precoro_sandbox.testing import all_rows, client


def test_https_sandbox_serves_clients_that_trust_its_ca(sandbox_factory):
    sb = sandbox_factory(scale=5, tls=True)
    assert sb.url.startswith("https://127.0.0.1:")
    assert sb.ca_path is not None
    assert Path(sb.ca_path).is_file()
    session = client(sb)  # verifies against the sandbox's CA
    rows = all_rows(session, f"{sb.url}/suppliers")
    assert len(rows) == 5
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{sb.url}/suppliers", headers=sb.headers, timeout=10)  # system CAs only
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(sb.url.replace("https:", "http:") + "/suppliers", timeout=10)
    # Refused handshakes never reach the API: only the trusted list call counted.
    assert sb.admin.counters().get("GET", "/suppliers") == 1
    assert sb.admin.counters().total == 1


def test_temporary_certificate_goes_with_the_sandbox(sandbox_factory):
    sb = sandbox_factory(scale=1, tls=True)
    directory = Path(sb.ca_path or "").parent
    sb.close()
    assert not directory.exists()


def test_given_tls_dir_is_kept(sandbox_factory, tmp_path):
    sb = sandbox_factory(scale=1, tls=True, tls_dir=str(tmp_path / "tls"))
    assert sb.ca_path == str(tmp_path / "tls" / "ca.pem")
    sb.close()
    assert (tmp_path / "tls" / "ca.pem").is_file()
    assert ((tmp_path / "tls" / "server.pem").stat().st_mode & 0o077) == 0


def test_parser_tls_is_off_by_default():
    args = build_parser().parse_args(["serve"])
    assert (args.tls, args.tls_dir) == (False, None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_tls_prints_the_ca_path(tmp_path):
    port = _free_port()
    tls_dir = tmp_path / "certs"
    cmd = [sys.executable, "-m", "precoro_sandbox.cli", "serve", "--port", str(port),
           "--scale", "2", "--limits", "off", "--tls-dir", str(tls_dir)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        output = "".join(lines)
        ca = tls_dir / "ca.pem"
        assert f"https://127.0.0.1:{port}" in output
        assert f"REQUESTS_CA_BUNDLE={ca}" in output
        response = requests.get(
            f"https://127.0.0.1:{port}/suppliers",
            headers={"X-AUTH-TOKEN": "sandbox-token", "email": "sandbox@example.com"},
            verify=str(ca),
            timeout=10,
        )
        assert response.status_code == 200
        assert len(response.json()["data"]) == 2
    finally:
        proc.terminate()
        proc.communicate(timeout=20)  # reaps it and closes its pipe
