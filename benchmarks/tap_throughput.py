"""Benchmark: the tap reading N suppliers from the sandbox (limits off).

Reports, per dataset size: records/s through the tap (aim >= 5,000/s), calls used
against the minimum (ceil(N/200) list calls), and the tap's peak memory (aim: flat
as N grows, under 200 MB). Then, apart, what a due periodic completeness sweep costs
on the next run (a full listing; nothing is missing, so nothing else) and the size of
the final STATE. The sandbox runs in its own process so its memory and CPU
are not counted as the tap's.

Run: .venv/bin/python benchmarks/tap_throughput.py [--suppliers 10000 50000 100000]
Writes benchmarks/results/tap_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from precoro_sandbox.admin_client import AdminClient
from tap_precoro.testing import catalog_selecting

RESULTS = Path(__file__).resolve().parent / "results" / "tap_throughput.json"
BIN = Path(sys.executable).parent
EMPTY = ("items", "purchaseorders", "invoices", "receipts", "expenses", "payments")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sandbox(suppliers: int, port: int) -> subprocess.Popen[str]:
    command = [
        str(BIN / "precoro-sandbox"),
        "serve",
        "--port",
        str(port),
        "--scale",
        str(suppliers),
        "--limits",
        "off",
        *[arg for name in EMPTY for arg in ("--count", f"{name}=0")],
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if re.search(r"https?://", line):
            return process
    msg = "the sandbox did not start"
    raise RuntimeError(msg)


def measure(suppliers: int) -> dict[str, Any]:
    port = free_port()
    build = time.perf_counter()
    sandbox = start_sandbox(suppliers, port)
    build_seconds = time.perf_counter() - build
    url = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = {
                "auth_token": "sandbox-token",
                "email": "sandbox@example.com",
                "api_url": url,
                "budget_ledger_path": str(folder / "ledger.sqlite3"),
                "max_requests_per_second": 1000,
                "max_requests_per_hour": 100000,
                "max_requests_per_day": 100000,
            }
            config_path = folder / "config.json"
            config_path.write_text(json.dumps(config))
            catalog = folder / "catalog.json"
            catalog.write_text(json.dumps(catalog_selecting(config, ["suppliers"])))
            admin = AdminClient(url)
            admin.reset_counters()
            # A wrapper process runs the tap as its only child, so RUSAGE_CHILDREN
            # is the tap's own peak memory.
            wrapper = (
                "import resource, subprocess, sys;"
                "p = subprocess.run(sys.argv[1:], stdout=sys.stdout);"
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)"
            )
            command = [
                sys.executable,
                "-c",
                wrapper,
                str(BIN / "tap-precoro"),
                "--config",
                str(config_path),
                "--catalog",
                str(catalog),
            ]
            started = time.perf_counter()
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "LOGLEVEL": "WARNING"},
            )
            records = 0
            last_state = ""
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith('{"type":"RECORD"') or '"type": "RECORD"' in line[:30]:
                    records += 1
                elif '"STATE"' in line[:30]:
                    last_state = line
            _, stderr = process.communicate()
            seconds = time.perf_counter() - started
            peak_kb = int(stderr.strip().splitlines()[-1])
            calls = admin.counters().total
            sweep_calls = measure_sweep(admin, last_state, folder, command)
    finally:
        sandbox.terminate()
        sandbox.wait()
    minimum = math.ceil(suppliers / 200)
    return {
        "suppliers": suppliers,
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_second": round(records / seconds),
        "calls": calls,
        "minimum_calls": minimum,
        "peak_memory_mb": round(peak_kb / 1024, 1),
        "sandbox_build_seconds": round(build_seconds, 1),
        "state_bytes": len(last_state),
        "sweep_list_calls": sweep_calls,
    }


def measure_sweep(admin: AdminClient, last_state: str, folder: Path, command: list[str]) -> int:
    """Calls of a due periodic sweep on the next run (less the pass's one list call)."""
    state = json.loads(last_state)["value"]
    state["bookmarks"]["suppliers"]["delivered"]["swept_at"] = "2000-01-01T00:00:00+00:00"
    state_path = folder / "state.json"
    state_path.write_text(json.dumps(state))
    admin.reset_counters()
    subprocess.run(
        [*command, "--state", str(state_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        env={**os.environ, "LOGLEVEL": "WARNING"},
    )
    return admin.counters().total - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suppliers", type=int, nargs="+", default=[10000, 50000, 100000])
    args = parser.parse_args()
    rows = []
    for size in args.suppliers:
        row = measure(size)
        rows.append(row)
        print(
            f"tap: {row['records']} suppliers in {row['seconds']} s = "
            f"{row['records_per_second']} records/s; calls {row['calls']} "
            f"(minimum {row['minimum_calls']}); peak memory {row['peak_memory_mb']} MB; "
            f"then a periodic sweep: {row['sweep_list_calls']} list calls; "
            f"STATE {row['state_bytes']} bytes"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
