"""Benchmark: the webhook receiver and the tap's webhook mode.

1. Receiver throughput and p99 latency: 10,000 deliveries over loopback to a real
   `precoro-webhooks serve` process (waitress, SQLite inbox, synchronous=FULL), from
   16 client threads with keep-alive sessions. Aim: > 500 deliveries/s, p99 < 50 ms.
   The same again under a slow-client attack from loopback (150 silent sockets and
   50 sockets trickling one header byte a second, each reopened once the receiver
   closes it): at the default limits, and with `--connection-limit 100` so that the
   attack holds more sockets than the receiver allows. Aim: >= 99% of deliveries
   succeed, throughput within half of the quiet run's.
2. Fetch calls per change event: the sandbox fires 1,000 updates to 10 purchase
   orders at a receiver; the tap in webhook mode then makes at most 10 calls
   (one detail per changed entity), counted at the sandbox. For comparison, the same
   run in polling mode and an idle run in both modes.

Run: .venv/bin/python benchmarks/webhooks.py [--deliveries 10000]
Writes benchmarks/results/webhooks.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import requests
from precoro_sandbox.options import SandboxOptions
from precoro_sandbox.server import SandboxServer
from tap_precoro.tap import TapPrecoro
from tap_precoro.webhooks.inbox import SqliteInbox
from tap_precoro.webhooks.receiver import Receiver, ReceiverSettings
from tap_precoro.webhooks.testing import SlowClientAttack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "webhooks.json"

SECRET = "bench-secret-0123456789abcdef"
CLIENT_THREADS = 16
DOCS = "purchaseorders"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def bench_receiver(
    deliveries: int,
    workdir: Path,
    *,
    name: str = "quiet",
    attack: bool = False,
    serve_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Throughput and latency of the receiver process under concurrent deliveries,
    optionally while a slow-client attack holds sockets open against it."""
    port = free_port()
    inbox_path = workdir / f"receiver-inbox-{name}.sqlite3"
    env = {**os.environ, "PRECORO_WEBHOOK_SECRET": SECRET}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_precoro.webhooks.cli",
            "serve",
            "--inbox",
            str(inbox_path),
            "--port",
            str(port),
            "--log-level",
            "ERROR",
            *serve_args,
        ],
        env=env,
    )
    slow = SlowClientAttack("127.0.0.1", port, idle=150, trickle=50, reconnect_seconds=0.5)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        url = f"{base}/webhook?secret={SECRET}"
        local = threading.local()

        def send(i: int) -> tuple[int, float]:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            body = {"id": 1000 + i % 500, "type": 2, "action": 1, "idn": 1 + i % 500}
            started = time.perf_counter()
            try:
                status = session.post(url, json=body, timeout=10).status_code
            except requests.RequestException:
                status = 0
            return status, time.perf_counter() - started

        if attack:
            slow.__enter__()
            while slow.counts.bytes_trickled < 100:  # every trickling socket is in place
                time.sleep(0.05)
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:  # warm-up: connections, caches
            list(pool.map(send, range(200)))
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            results = list(pool.map(send, range(deliveries)))
        elapsed = time.perf_counter() - started
        guard = requests.get(f"{base}/health", timeout=10).json().get("connections", {})
    finally:
        if attack:
            slow.__exit__(None, None, None)
        server.terminate()
        server.wait(15)
    latencies = [seconds * 1000 for status, seconds in results if status == 200]
    ok = sum(status == 200 for status, _ in results)
    inbox = SqliteInbox(inbox_path)
    try:
        stored = inbox.depth()
    finally:
        inbox.close()
    figures: dict[str, Any] = {
        "deliveries": deliveries,
        "accepted": ok,
        "fraction_accepted": round(ok / deliveries, 4),
        "stored": stored - 200,
        "client_threads": CLIENT_THREADS,
        "serve_args": list(serve_args),
        "seconds": round(elapsed, 2),
        "deliveries_per_second": round(ok / elapsed),
        "latency_ms_p50": round(statistics.median(latencies), 2) if latencies else None,
        "latency_ms_p99": round(percentile(latencies, 0.99), 2) if latencies else None,
        "latency_ms_max": round(max(latencies), 2) if latencies else None,
        "guard": guard,
    }
    if attack:
        figures["attack"] = {
            "idle_sockets": slow.idle,
            "trickling_sockets": slow.trickle,
            "connects": slow.counts.connects,
            "closed_by_receiver": slow.counts.closed_by_server,
            "bytes_trickled": slow.counts.bytes_trickled,
        }
    return figures


def describe(label: str, figures: dict[str, Any]) -> str:
    return (
        f"{label}: {figures['accepted']}/{figures['deliveries']} deliveries accepted in "
        f"{figures['seconds']} s = {figures['deliveries_per_second']}/s; p50 "
        f"{figures['latency_ms_p50']} ms, p99 {figures['latency_ms_p99']} ms; stored "
        f"{figures['stored']}; guard {figures['guard']}"
    )


def run_tap(config: dict[str, Any], state: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    """Run the tap in-process with only purchase orders selected: (records, last state)."""
    tap = TapPrecoro(config=config, state=state or {}, validate_config=True)
    for name, stream in tap.streams.items():
        stream.selected = name == DOCS
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        tap.sync_all()
    records, last_state = 0, {}
    for line in buffer.getvalue().splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            records += 1
        elif message["type"] == "STATE":
            last_state = message["value"]
    return records, last_state


def bench_fetches(workdir: Path, updates: int = 1000, entities: int = 10) -> dict[str, Any]:
    """Sandbox calls the tap makes for `updates` webhook events on `entities` documents."""
    options = SandboxOptions(scale=30, limits="off", webhook_retry_delays=(0.05, 0.1))
    with SandboxServer(options) as sandbox:
        inbox_path = workdir / "tap-inbox.sqlite3"
        receiver = Receiver.open(inbox_path, ReceiverSettings(secret=SECRET), port=0).start()
        try:
            sandbox.admin.register_webhook(receiver.webhook_url())
            base = {
                "auth_token": sandbox.token,
                "email": sandbox.email,
                "api_url": sandbox.url,
                "budget_ledger_path": str(workdir / "ledger.sqlite3"),
                "max_requests_per_second": 1000,
                "duplicate_get_interval_seconds": 0,
            }
            hooks = {**base, "webhook_inbox": str(inbox_path)}
            _, hook_state = run_tap(hooks, None)  # first run: the initial (polled) sync
            _, poll_state = run_tap(base, None)
            idns = [str(i) for i in range(1, entities + 1)]
            sandbox.admin.advance_clock(600)
            started = time.perf_counter()
            for _ in range(updates // entities):
                sandbox.admin.touch(DOCS, idns)
            assert sandbox.admin.flush_webhooks(timeout=60)
            delivery_seconds = time.perf_counter() - started

            sandbox.admin.reset_counters()
            hook_records, hook_state = run_tap(hooks, hook_state)
            hook_calls = sandbox.admin.counters().total
            sandbox.admin.reset_counters()
            poll_records, poll_state = run_tap(base, poll_state)
            poll_calls = sandbox.admin.counters().total

            sandbox.admin.advance_clock(600)
            sandbox.admin.reset_counters()
            run_tap(hooks, hook_state)
            idle_hook_calls = sandbox.admin.counters().total
            sandbox.admin.reset_counters()
            run_tap(base, poll_state)
            idle_poll_calls = sandbox.admin.counters().total
        finally:
            receiver.close()
    return {
        "updates": updates,
        "entities": entities,
        "webhook_delivery_seconds": round(delivery_seconds, 2),
        "webhook_mode": {"records": hook_records, "calls": hook_calls},
        "polling_mode": {"records": poll_records, "calls": poll_calls},
        "fetch_calls_per_change_event": round(hook_calls / updates, 4),
        "idle_run_calls": {"webhook_mode": idle_hook_calls, "polling_mode": idle_poll_calls},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        receiver = bench_receiver(args.deliveries, workdir)
        print(describe("receiver", receiver) + " (aim > 500/s, p99 < 50 ms)", flush=True)
        attacked = bench_receiver(args.deliveries, workdir, name="attack", attack=True)
        print(describe("receiver under slow-client attack", attacked), flush=True)
        over_limit = bench_receiver(
            args.deliveries,
            workdir,
            name="attack-over-limit",
            attack=True,
            serve_args=("--connection-limit", "100"),
        )
        print(
            describe("receiver under attack, 200 sockets vs --connection-limit 100", over_limit),
            flush=True,
        )
        fetches = bench_fetches(workdir)
    print(
        f"tap webhook mode: {fetches['updates']} updates to {fetches['entities']} purchase "
        f"orders -> {fetches['webhook_mode']['calls']} calls "
        f"({fetches['fetch_calls_per_change_event']} per change event; aim <= 10 calls); "
        f"polling mode: {fetches['polling_mode']['calls']} calls"
    )
    print(
        f"idle run (one stream): webhook mode {fetches['idle_run_calls']['webhook_mode']} "
        f"calls, polling mode {fetches['idle_run_calls']['polling_mode']} calls"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "receiver": receiver,
                "receiver_under_attack": attacked,
                "receiver_under_attack_over_connection_limit": over_limit,
                "tap": fetches,
            },
            indent=2,
        )
        + "\n"
    )
    held = all(
        run["fraction_accepted"] >= 0.99
        and run["deliveries_per_second"] >= receiver["deliveries_per_second"] / 2
        for run in (attacked, over_limit)
    )
    ok = (
        receiver["accepted"] == receiver["deliveries"]
        and held
        and fetches["webhook_mode"]["calls"] <= fetches["entities"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
