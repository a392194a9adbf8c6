"""`make demo`: the Precoro sandbox, a few real API calls, and the tap syncing it.

Everything runs locally against the sandbox (nobody here can reach the real API);
nothing is left running afterwards.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path

import requests
from precoro_sandbox.server import SandboxServer
from tap_precoro.tap import TapPrecoro


def show(title: str, response: requests.Response) -> None:
    body = response.text if len(response.text) < 400 else response.text[:400] + " ..."
    print(f"\n$ {response.request.method} {response.request.path_url}  ->  {response.status_code}")
    print(f"  ({title})")
    print(f"  {body}")


def run_tap(config: dict[str, object], state: dict[str, object]) -> tuple[Counter[str], dict]:
    tap = TapPrecoro(config=config, state=state)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        tap.sync_all()
    counts: Counter[str] = Counter()
    final_state: dict = {}
    for line in buffer.getvalue().splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            counts[message["stream"]] += 1
        elif message["type"] == "STATE":
            final_state = message["value"]
    return counts, final_state


def main() -> None:
    print("Starting the Precoro sandbox (seed 42, 200 suppliers, Precoro's real limits)...")
    with (
        SandboxServer(seed=42, scale=200, limits="real") as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"Sandbox at {sb.url}  token={sb.token}  email={sb.email}")
        session = requests.Session()
        session.headers.update(sb.headers)

        print("\n== 1. Speaking Precoro's dialect")
        show("no credentials: 401", requests.get(f"{sb.url}/suppliers", timeout=10))
        sb.admin.advance_clock(2)
        show(
            "a page of suppliers",
            session.get(f"{sb.url}/suppliers", params={"per_page": 10}, timeout=10),
        )
        show(
            "the same GET again within a minute: Precoro's 429",
            session.get(f"{sb.url}/suppliers", params={"per_page": 10}, timeout=10),
        )
        sb.admin.advance_clock(2)
        show(
            "per_page must be 10/20/50/100/200",
            session.get(f"{sb.url}/items", params={"per_page": 7}, timeout=10),
        )
        sb.admin.advance_clock(2)
        created = session.post(
            f"{sb.url}/suppliers",
            data=[("name", "Demo Supplies Ltd"), ("currencies[]", "EUR"), ("externalId", "ERP-1")],
            timeout=10,
        )
        show("create a supplier with its externalId (form-encoded)", created)

        print("\n== 2. tap-precoro: first full sync (limits relaxed 1000x for the demo)")
        config = {
            "auth_token": sb.token,
            "email": sb.email,
            "api_url": sb.url,
            "budget_ledger_path": str(Path(tmp) / "ledger.sqlite3"),
            "max_requests_per_second": 1000,
            "duplicate_get_interval_seconds": 0,
        }
        sb.admin.set_limits("off")
        sb.admin.reset_counters()
        counts, state = run_tap(config, {})
        for stream, n in sorted(counts.items()):
            print(f"  {stream:28} {n:6} records")
        print(f"  API calls used: {sb.admin.counters().total}")

        print("\n== 3. People work in Precoro; the next run reads only what changed")
        sb.admin.advance_clock(600)
        changes = sb.admin.activity(25, entities=["suppliers", "invoices", "purchaseorders"])
        print(f"  {len(changes)} records created or changed in Precoro")
        sb.admin.reset_counters()
        counts, state = run_tap(config, state)
        for stream, n in sorted(counts.items()):
            print(f"  {stream:28} {n:6} records")
        print(f"  API calls used: {sb.admin.counters().total}")
    print("\nSandbox stopped; nothing left running.")


if __name__ == "__main__":
    main()
