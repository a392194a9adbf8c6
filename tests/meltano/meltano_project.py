"""Helpers for the end-to-end tests: real `meltano` commands on this repo's meltano.yml.

Each test gets its own sandbox (in-process, free port) and its own Meltano system
database, ERP database, ledger, target state and report folders (all under tmp_path,
passed as environment variables, which Meltano ranks above meltano.yml), so tests never
see each other's bookmarks. The plugins themselves are the project's `.meltano/`
install (`make install`), reused rather than reinstalled per test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
from precoro_sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".meltano-venv" / "bin" / "meltano"
PLUGINS_STAMP = ROOT / ".meltano" / ".plugins-installed"
FORWARD_STATE_ID = "sandbox:tap-precoro-to-target-erp"
DEMO_SEED = 42
"""The seed demo/erp/suppliers.jsonl was written for (see scripts/demo.py)."""
DEMO_SCALE = 40
"""Enough suppliers for every one the sample ERP file names (up to SUP-000038)."""
RUN_TIMEOUT = 240


@dataclass
class Project:
    """The repository's Meltano project, pointed at one sandbox and one tmp folder."""

    sandbox: SandboxServer
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    root: Path = ROOT
    """The project folder meltano runs in (a working copy, see `working_copy`)."""

    def __post_init__(self) -> None:
        """Environment for every meltano command of this test."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TAP_", "TARGET_", "MELTANO_", "PRECORO_"))
        }
        ledger = str(self.tmp / "ledger.sqlite3")
        self.env = {
            **base,
            "NO_COLOR": "1",
            "MELTANO_ENVIRONMENT": "sandbox",
            "MELTANO_DATABASE_URI": f"sqlite:///{self.tmp / 'meltano.db'}",
            "TAP_PRECORO_API_URL": self.sandbox.url,
            "TARGET_PRECORO_API_URL": self.sandbox.url,
            "TAP_PRECORO_BUDGET_LEDGER_PATH": ledger,
            "TARGET_PRECORO_BUDGET_LEDGER_PATH": ledger,
            "TARGET_PRECORO_STATE_DIR": str(self.tmp / "target-state"),
            "TARGET_PRECORO_REPORT_DIR": str(self.tmp / "reports"),
            "TARGET_ERP_PATH": str(self.erp_path),
        }

    @property
    def erp_path(self) -> Path:
        """The ERP (DuckDB) database target-erp writes."""
        return self.tmp / "erp.duckdb"

    def command(self, *args: str) -> list[str]:
        """A meltano command line."""
        return [str(MELTANO), *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run meltano to completion; on failure, show the end of its output."""
        result = subprocess.run(
            self.command(*args),
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            pytest.fail(f"meltano {' '.join(args)} exited {result.returncode}:\n{tail}")
        return result

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start meltano in its own process group (so a test can kill the whole run)."""
        with log.open("wb") as out:
            return subprocess.Popen(
                self.command(*args),
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def state(self, state_id: str = FORWARD_STATE_ID) -> dict[str, Any]:
        """`meltano state get`: the state Meltano's own store holds."""
        out = self.run("--log-level=warning", "state", "get", state_id).stdout
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    def erp_counts(self) -> dict[str, int]:
        """Rows per table in the ERP database."""
        with duckdb.connect(str(self.erp_path), read_only=True) as db:
            tables = [
                name
                for (name,) in db.execute(
                    "select table_name from information_schema.tables "
                    "where table_schema = 'precoro'"
                ).fetchall()
            ]
            return {t: self.erp_scalar(f'select count(*) from precoro."{t}"', db) for t in tables}

    def erp_distinct_ids(self, table: str) -> int:
        """Distinct primary keys in one ERP table (equal to its rows when nothing doubled)."""
        with duckdb.connect(str(self.erp_path), read_only=True) as db:
            return self.erp_scalar(f'select count(distinct id) from precoro."{table}"', db)

    def erp_rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query on the ERP database."""
        with duckdb.connect(str(self.erp_path), read_only=True) as db:
            return db.execute(sql).fetchall()

    @staticmethod
    def erp_scalar(sql: str, db: duckdb.DuckDBPyConnection) -> int:
        row = db.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def summaries(self) -> list[dict[str, Any]]:
        """target-precoro's summary.json of every run, oldest first."""
        runs = sorted((self.tmp / "reports").glob("*/summary.json"))
        return [json.loads(p.read_text()) for p in runs]


def working_copy(dest: Path) -> Path:
    """A second checkout of this project, as on another machine: its own meltano.yml,
    plugins/ and .meltano/ (run dirs, logs), so nothing but what the environment points
    at (the system database, the ledger) is shared with another copy.

    The local packages and demo files are symlinks, and the plugin venvs link to the
    project's `make install`, so a copy costs no `meltano install` (the venvs are what
    that command would build from the same pip_urls).
    """
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "meltano.yml", dest / "meltano.yml")
    shutil.copytree(ROOT / "plugins", dest / "plugins")
    for name in ("precoro-client", "tap-precoro", "target-precoro", "demo"):
        (dest / name).symlink_to(ROOT / name)
    (dest / ".meltano").mkdir()
    for kind in ("extractors", "loaders"):
        (dest / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind)
    return dest


def kill_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    """Send a signal to a whole meltano run (meltano, tap, target) and reap it."""
    os.killpg(process.pid, sig)
    return process.wait(timeout=60)
