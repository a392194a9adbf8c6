"""A real PostgreSQL server on the binaries the `pgserver` wheel ships (requirements-dev.txt).

Used by the shared-ledger tests (tests/postgres/) and `make bench` (benchmarks/ledger.py):
a fresh machine with python3 and make runs both; no apt-get, no mock.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from pgserver import _commands as commands
from pgserver import utils

_databases = itertools.count(1)


class Postgres:
    """One server on the binaries `pgserver` ships: fresh databases, an outage on demand.

    pgserver's own start-up (`pg_ctl -w` under a 10 s timeout) was seen to time out on
    a loaded machine although the server was up, so only its `initdb` is used; the
    postmaster is this object's child, killed and restarted at will.
    """

    def __init__(self, data: Path) -> None:
        self.data = data
        self.user: str | None = None
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # postgres refuses to run as root (CI and this machine)
            self.user = "pgserver"
            utils.ensure_user_exists(self.user)
            utils.ensure_prefix_permissions(data)
            entry = pwd.getpwnam(self.user)
            os.chown(data, entry.pw_uid, entry.pw_gid)
        commands.initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres", "--no-sync"],
            pgdata=data,
            user=self.user,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def get_uri(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.data}"

    def start(self) -> None:
        """Start the postmaster (after a kill, crash recovery replays the WAL) and wait."""
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        with (self.data / "server.log").open("ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [
                    *(str(commands.POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data)),
                    *("-h", "", "-k", str(self.data), "-c", "fsync=off"),
                ],
                stdout=log,
                stderr=log,
                user=self.user,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(self.get_uri(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def create_database(self) -> str:
        """A new empty database; its URL (a Unix socket in the data folder, no password)."""
        name = f"ledger_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.get_uri(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.get_uri(name)

    def kill(self) -> None:
        """An outage: SIGKILL the postmaster and every backend (no clean shutdown)."""
        assert self.proc is not None
        group = self.proc.pid
        os.killpg(group, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
        # The postmaster is reaped; its backends die on their own schedule, and one still
        # running could answer a statement on a connection it already holds. Wait until
        # none is left (a zombie counts as gone), so the outage is real when this returns.
        deadline = time.monotonic() + 30
        while _live_members(group) and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None


@contextlib.contextmanager
def temporary_server() -> Iterator[Postgres]:
    """A server in a private temp folder (pytest's shared base folder is pruned by other
    sessions of the same user), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="precoro-pg-"))
    try:
        server = Postgres(folder / "data")
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _live_members(group: int) -> list[int]:
    """Pids of the process group's members that are not zombies (from /proc)."""
    live = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # after "(comm)": state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == group and fields[0] != "Z":
            live.append(int(entry.name))
    return live
