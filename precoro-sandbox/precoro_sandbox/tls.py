"""HTTPS for the sandbox: a throwaway certificate authority and a server certificate.

Some clients insist on `https://` (ours refuse plain http except on loopback hosts, so a
sandbox on another machine or container needs TLS). At start the sandbox makes a fresh
self-signed CA with `trustme` and a certificate it signs for the sandbox's host names,
writes both as PEM files and serves TLS with them. A client trusts the sandbox by taking
the CA file as its bundle (`REQUESTS_CA_BUNDLE=<dir>/ca.pem`, `requests`' `verify=`, or
`ssl.create_default_context(cafile=...)`). Nothing is ever trusted system-wide; the
private keys exist only in that directory, which is removed on close unless the caller
chose it.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

CA_FILE = "ca.pem"
"""The CA certificate clients trust (no key)."""
SERVER_FILE = "server.pem"
"""The server's private key and certificate chain (what the listener loads)."""

_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True)
class Certificate:
    """The PEM files of one sandbox's TLS identity."""

    directory: Path
    names: tuple[str, ...]
    """Host names and addresses the server certificate is valid for."""
    temporary: bool
    """The directory was made for this sandbox and goes with it."""

    @property
    def ca_path(self) -> Path:
        """CA bundle to give clients (e.g. as `REQUESTS_CA_BUNDLE`)."""
        return self.directory / CA_FILE

    @property
    def server_path(self) -> Path:
        """Key and chain the listener serves."""
        return self.directory / SERVER_FILE

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context serving this certificate (TLS 1.2 or later)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_path)
        return context

    def remove(self) -> None:
        """Delete the files if the sandbox made the directory."""
        if self.temporary:
            shutil.rmtree(self.directory, ignore_errors=True)


def host_names(host: str) -> tuple[str, ...]:
    """Names a client may use to reach a sandbox bound to `host` (loopback always)."""
    names = ["localhost", "127.0.0.1", "::1"]
    if host in _WILDCARD_HOSTS:
        names.append(socket.gethostname())
    elif host not in names:
        names.insert(0, host)
    return tuple(dict.fromkeys(names))


def make_certificate(host: str, directory: str | Path | None = None) -> Certificate:
    """A fresh CA and a server certificate for `host`, written to `directory`.

    None: a new temporary directory, removed with the sandbox.
    """
    if directory is None:
        path = Path(tempfile.mkdtemp(prefix="precoro-sandbox-tls-"))
        temporary = True
    else:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        temporary = False
    names = host_names(host)
    authority = trustme.CA(organization_name="precoro-sandbox")
    server = authority.issue_cert(*names, organization_name="precoro-sandbox")
    authority.cert_pem.write_to_path(str(path / CA_FILE))
    server.private_key_and_cert_chain_pem.write_to_path(str(path / SERVER_FILE))
    (path / SERVER_FILE).chmod(0o600)
    return Certificate(path, names, temporary)
