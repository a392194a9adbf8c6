"""`make demo`: the whole product, through Meltano, against a local Precoro sandbox.

1. `meltano run tap-precoro target-erp`: first full sync into the ERP database.
2. Activity in Precoro, the same command again: only the changes travel.
3. `meltano run tap-erp target-precoro` with the sample ERP vendor master.
4. The same again: nothing left to write.
5. Two-way: a buyer's edit in Precoro survives the reverse run; edits on both sides
   are a conflict, reported with both values and the base, and not written.
6. Stop the sandbox; say where to look.

The sandbox is started with a fixed seed, so the sample ERP file (demo/erp/suppliers.jsonl)
always meets the same Precoro suppliers. Each run's full Meltano log goes to output/logs/.
The sandbox is stopped in a `finally`, so nothing is left running.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import requests
from precoro_sandbox.admin_client import AdminClient

ROOT = Path(__file__).resolve().parent.parent
MELTANO = ROOT / ".meltano-venv" / "bin" / "meltano"
SANDBOX = Path(sys.executable).parent / "precoro-sandbox"
OUTPUT = ROOT / "output"
ERP_DB = OUTPUT / "erp.duckdb"
REPORTS = OUTPUT / "precoro-reports"
LOGS = OUTPUT / "logs"
ERP_SAMPLE = ROOT / "demo" / "erp" / "suppliers.jsonl"
DEFAULT_PORT = 8800  # what meltano.yml's sandbox environment points at
SEED, SCALE = 42, 200
STATE_IDS = ("sandbox:tap-precoro-to-target-erp", "sandbox:tap-erp-to-target-precoro")
SANDBOX_AUTH = {"X-AUTH-TOKEN": "sandbox-token", "email": "sandbox@example.com"}
"""The sandbox's public test credentials (as in meltano.yml's sandbox environment)."""
ERP_EDITED = OUTPUT / "erp-suppliers-edited.jsonl"
WRITES = ("POST", "PUT", "PATCH")
RESET_PATHS = (ERP_DB, REPORTS, LOGS, ERP_EDITED, ROOT / ".meltano" / "precoro")
"""What a demo leaves besides Meltano's state: the next demo deletes it first."""
LOADED = re.compile(r"Loading (\d+) rows into '\"\w+\"\.\"\w+\"\.\"(\w+)\"'")
PROGRESS_EVERY = 10
"""Seconds between progress lines while a Meltano command runs."""
# SDK METRIC lines as Meltano shows them: JSON, JSON inside a JSON log line (quotes
# escaped), or a Python dict (structured logging, single quotes); keys in any order.
QUOTE = r"""\\?["']"""
METRIC_VALUE = re.compile(rf"{QUOTE}value{QUOTE}:\s*(\d+)")
METRIC_STREAM = re.compile(rf"{QUOTE}stream{QUOTE}:\s*{QUOTE}([\w-]+)")
FROM_LOADER = re.compile(
    rf"(consumer{QUOTE}?[=:]\s*(True|true))|(name{QUOTE}?[=:]\s*{QUOTE}?target-)"
)


class DemoError(RuntimeError):
    """A step failed; the message says which and where its log is."""


def say(text: str = "") -> None:
    """Print at once (the output is read live, often through make)."""
    print(text, flush=True)


def free_port() -> int:
    """Port 8800 when free (meltano.yml's default), else any free port."""
    for port in (DEFAULT_PORT, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
            return chosen
    raise DemoError("no free TCP port on 127.0.0.1")


class Progress:
    """Records the extractor has read so far, per stream, from its METRIC lines."""

    def __init__(self) -> None:
        """Nothing read yet."""
        self.records: Counter[str] = Counter()
        self.stream = ""

    def note(self, line: str) -> None:
        """Count an extractor's `record_count` METRIC line (a loader's would count twice)."""
        if "record_count" not in line or FROM_LOADER.search(line):
            return
        value, stream = METRIC_VALUE.search(line), METRIC_STREAM.search(line)
        if value is not None and stream is not None:
            self.stream = stream.group(1)
            self.records[self.stream] += int(value.group(1))

    def line(self, seconds: float) -> str:
        """'... 20 s: 1400 records read so far (now: purchaseorders)'."""
        total = sum(self.records.values())
        if not total:
            return f"    ... {seconds:.0f} s, still running"
        return f"    ... {seconds:.0f} s: {total} records read so far (now: {self.stream})"


def meltano(args: list[str], env: dict[str, str], log_name: str) -> str:
    """Run one meltano command from the project root; its whole output goes to a log file.

    A command that runs longer than `PROGRESS_EVERY` seconds prints a progress line
    that often, so a long step never looks stuck.
    """
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / log_name
    progress = Progress()
    with (
        log.open("w", encoding="utf-8") as sink,
        subprocess.Popen(
            [str(MELTANO), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process,  # closes its pipe once it ended
    ):

        def copy() -> None:
            assert process.stdout is not None
            for text in process.stdout:
                sink.write(text)
                progress.note(text)

        reader = threading.Thread(target=copy, daemon=True)
        reader.start()
        started = time.monotonic()
        while True:
            try:
                returncode = process.wait(timeout=PROGRESS_EVERY)
                break
            except subprocess.TimeoutExpired:
                say(progress.line(time.monotonic() - started))
        reader.join()
    output = log.read_text(encoding="utf-8")
    if returncode != 0:
        tail = "\n".join(output.splitlines()[-25:])
        raise DemoError(f"`meltano {' '.join(args)}` failed; last lines of {log}:\n{tail}")
    return output


def reset_demo_state(env: dict[str, str]) -> None:
    """Forget earlier demos: the sandbox is new, so its old bookmarks and index are wrong."""
    for path in RESET_PATHS:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for state_id in STATE_IDS:
        meltano(["state", "clear", "--force", state_id], env, "0-state-clear.log")


def start_sandbox(port: int) -> subprocess.Popen[str]:
    """`precoro-sandbox serve` as a child process; returns once it answers."""
    process = subprocess.Popen(
        [
            str(SANDBOX),
            "serve",
            "--port",
            str(port),
            "--seed",
            str(SEED),
            "--scale",
            str(SCALE),
            "--limits",
            "off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    admin = AdminClient(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read() if process.stderr else ""
            raise DemoError(f"the sandbox exited: {error}")
        try:
            if admin.health():
                return process
        except Exception:  # not listening yet
            time.sleep(0.2)
    process.kill()
    raise DemoError("the sandbox did not start within 60 s")


def stop_sandbox(process: subprocess.Popen[str]) -> None:
    """Terminate, then kill if it lingers: the demo leaves nothing running."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def calls_line(admin: AdminClient) -> str:
    """'N API calls (x list pages, y document details, z writes)' from the sandbox's counters."""
    counters = admin.counters()
    kinds: Counter[str] = Counter()
    for route, count in counters.by_route().items():
        method, path = route.split(" ", 1)
        if method in WRITES:
            kinds["writes"] += count
        elif "{idn}" in path or "{id}" in path:
            kinds["details"] += count
        else:
            kinds["list pages"] += count
    parts = ", ".join(f"{n} {kind if n != 1 else kind[:-1]}" for kind, n in kinds.items() if n)
    noun = "API call" if counters.total == 1 else "API calls"
    return f"{counters.total} {noun}" + (f" ({parts})" if parts else "")


def loaded_rows(log: str) -> Counter[str]:
    """Rows target-erp loaded per table, from its own 'Loading N rows into' lines."""
    rows: Counter[str] = Counter()
    for count, table in LOADED.findall(log):
        rows[table] += int(count)
    return rows


def erp_table_counts() -> dict[str, int]:
    """Rows per table in the ERP database (read-only)."""
    with duckdb.connect(str(ERP_DB), read_only=True) as db:
        tables = [
            name
            for (name,) in db.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'precoro' order by table_name"
            ).fetchall()
        ]
        counts: dict[str, int] = {}
        for table in tables:
            row = db.execute(f'select count(*) from precoro."{table}"').fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts


def show_counts(counts: dict[str, int] | Counter[str], indent: str = "    ") -> None:
    """Counts as aligned columns, three per line."""
    items = [f"{name:<27}{n:>5}" for name, n in sorted(counts.items()) if n]
    for i in range(0, len(items), 3):
        say(indent + "   ".join(items[i : i + 3]))


def bookmark(env: dict[str, str]) -> str:
    """The suppliers bookmark Meltano keeps for the tap (its state store, not a file)."""
    out = meltano(
        ["--log-level=warning", "state", "get", STATE_IDS[0]], env, "state-get.log"
    ).strip()
    state = json.loads(out.splitlines()[-1])
    value = state["singer_state"]["bookmarks"]["suppliers"]["replication_key_value"]
    return str(value)


def latest_report() -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    """The newest target-precoro run: summary.json and report.jsonl lines."""
    runs = sorted(p for p in REPORTS.iterdir() if (p / "summary.json").exists())
    if not runs:
        raise DemoError(f"target-precoro wrote no report under {REPORTS}")
    run = runs[-1]
    summary = json.loads((run / "summary.json").read_text())
    lines = [json.loads(line) for line in (run / "report.jsonl").read_text().splitlines() if line]
    return summary, lines, run


def outcome_detail(line: dict[str, Any]) -> str:
    """One report line in words: which Precoro record, and why."""
    precoro = f"Precoro id {line.get('precoro_id')}"
    fields = [f for f in line.get("fields") or [] if f != "externalId"]
    outcome = line["outcome"]
    if outcome == "created":
        return f"{precoro}: new in Precoro"
    if outcome == "updated":
        return f"{precoro}: changed {', '.join(fields)}"
    if outcome == "unchanged":
        return f"{precoro}: already identical, no write"
    if outcome == "linked":
        how = str(line.get("message", "")).rsplit(" by ", 1)[-1]
        also = f", changed {', '.join(fields)}" if fields else ""
        return f"{precoro}: had no externalId, matched by {how}{also}"
    return str(line.get("message") or outcome)


def writes(admin: AdminClient) -> int:
    """Write calls (POST/PUT/PATCH) the sandbox received since its counters were reset."""
    return sum(n for route, n in admin.counters().by_route().items() if route.split()[0] in WRITES)


def step1(admin: AdminClient, env: dict[str, str]) -> None:
    """First full sync Precoro -> ERP."""
    say("\n== 1. First sync, Precoro -> ERP:  meltano run tap-precoro target-erp")
    admin.reset_counters()
    started = time.monotonic()
    log = meltano(["run", "tap-precoro", "target-erp"], env, "1-precoro-to-erp.log")
    took = time.monotonic() - started
    rows = loaded_rows(log)
    say(f"  {sum(rows.values())} records in {took:.0f} s, per stream:")
    show_counts(rows)
    erp, precoro = erp_table_counts(), admin.stats()
    if erp != precoro:
        raise DemoError(f"the ERP database {erp} differs from Precoro {precoro}")
    say(f"  {ERP_DB.relative_to(ROOT)} now holds what Precoro holds, table for table.")
    calls = admin.counters().total
    say(f"  {calls_line(admin)}: one per 200-record page, one per document (its")
    at_limit = f"about {calls / 60:.0f} min, and {100 * calls / 3000:.0f}%"
    say(f"  lines). At Precoro's 1 call per second that is {at_limit}")
    say("  of the 3000 calls a day it allows. The sandbox has no limits: the")
    say(f"  {took:.0f} s here are Meltano, the plugins and the sandbox at work.")
    say(f"  Meltano saved the tap's bookmarks (suppliers: changed since {bookmark(env)}).")


def step2(admin: AdminClient, env: dict[str, str]) -> None:
    """Activity in Precoro, then an incremental run."""
    say("\n== 2. An hour of work in Precoro, then the same command again")
    admin.advance_clock(3600)
    changes = admin.activity(25, entities=["suppliers", "purchaseorders", "invoices"])
    kinds: dict[str, Counter[str]] = {}
    for change in changes:
        action = "created" if change["action"] == 0 else "changed"
        kinds.setdefault(change["entity"], Counter())[action] += 1
    say("  Sandbox activity (what people would do in Precoro):")
    for entity, counts in sorted(kinds.items()):
        actions = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
        say(f"    {entity:<27}{actions}")
    admin.reset_counters()
    log = meltano(["run", "tap-precoro", "target-erp"], env, "2-precoro-to-erp.log")
    rows = loaded_rows(log)
    say(f"  Meltano handed the tap its state; {sum(rows.values())} records travelled:")
    show_counts(rows)
    say(f"  {calls_line(admin)}: one list call per incremental stream, one detail")
    say("  per changed document; unchanged reference data costs nothing until it is due.")


def step3(admin: AdminClient, env: dict[str, str]) -> None:
    """The ERP's vendor master into Precoro."""
    say("\n== 3. ERP vendor master -> Precoro:  meltano run tap-erp target-precoro")
    sample = ERP_SAMPLE.relative_to(ROOT)
    say(f"  {sample}: {len(ERP_SAMPLE.read_text().splitlines())} ERP suppliers (written for")
    say(f"  the sandbox's seed {SEED}: some already carry their ERP id in Precoro, some exist")
    say("  there without one, some are new).")
    admin.reset_counters()
    meltano(["run", "tap-erp", "target-precoro"], env, "3-erp-to-precoro.log")
    summary, lines, _ = latest_report()
    for line in lines:
        say(f"    {line['external_id']:<9}{line['outcome']:<11}{outcome_detail(line)}")
    totals = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary["totals"].items()))
    say(f"  Outcome: {totals}; {calls_line(admin)}.")
    say("  Linked = an existing Precoro supplier without externalId, matched by")
    say("  registration number, code, or name + country, now carrying the ERP id.")


def step4(admin: AdminClient, env: dict[str, str]) -> None:
    """The reverse run again: converged."""
    say("\n== 4. The same reverse run again")
    admin.reset_counters()
    meltano(["run", "tap-erp", "target-precoro"], env, "4-erp-to-precoro.log")
    summary, _, _ = latest_report()
    totals = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary["totals"].items()))
    count = writes(admin)
    say(f"  Outcome: {totals}; {calls_line(admin)}; {count} writes.")
    if count:
        raise DemoError(f"the second reverse run wrote {count} times; it should write none")
    say("  Nothing differs any more, so nothing is written: safe to run on any schedule.")
    admin.reset_counters()
    log = meltano(["run", "tap-precoro", "target-erp"], env, "4-precoro-to-erp.log")
    rows = loaded_rows(log)
    say(f"  And back: meltano run tap-precoro target-erp brings the {rows['suppliers']} suppliers")
    say(f"  step 3 touched to the ERP, now with their ERP ids; {calls_line(admin)}:")
    with duckdb.connect(str(ERP_DB), read_only=True) as db:
        linked = db.execute(
            "select id, externalid, name from precoro.suppliers where externalid like 'V-1%' "
            "order by id limit 2"
        ).fetchall()
    for precoro_id, external_id, name in linked:
        say(f"    ERP row precoro.suppliers id {precoro_id} {name!r}: externalId {external_id}")


def buyer_edits(url: str, external_id: str, email: str) -> None:
    """A person corrects a supplier's e-mail in Precoro (a PUT, as the web app would)."""
    found = requests.get(
        f"{url}/suppliers", params={"external_id[]": external_id}, headers=SANDBOX_AUTH, timeout=30
    )
    found.raise_for_status()
    supplier_id = found.json()["data"][0]["id"]
    response = requests.put(
        f"{url}/suppliers/{supplier_id}", data={"email": email}, headers=SANDBOX_AUTH, timeout=30
    )
    response.raise_for_status()


def step5(admin: AdminClient, env: dict[str, str], url: str) -> None:
    """Two-way: a Precoro edit is kept, edits on both sides are a conflict."""
    say("\n== 5. Two-way: people edit in Precoro while the ERP export is unchanged")
    sample = [json.loads(line) for line in ERP_SAMPLE.read_text().splitlines() if line]
    kept, clash = [r for r in sample if r.get("email")][:2]
    buyer_edits(url, kept["externalId"], "invoices@corrected.example")
    buyer_edits(url, clash["externalId"], "buyer@precoro-side.example")
    say(f"  In Precoro a buyer corrects the e-mail of {kept['externalId']} and of")
    say(f"  {clash['externalId']}; the ERP export still has {kept['externalId']}'s old e-mail,")
    say(f"  but someone changed {clash['externalId']}'s there too ({ERP_EDITED.name}).")
    edited = [{**r, "email": "erp@erp-side.example"} if r is clash else r for r in sample]
    ERP_EDITED.write_text("".join(json.dumps(r) + "\n" for r in edited))
    run_env = {**env, "TAP_ERP_PATH": str(ERP_EDITED)}
    for attempt in (1, 2):
        admin.reset_counters()
        meltano(["run", "tap-erp", "target-precoro"], run_env, f"5-erp-to-precoro-{attempt}.log")
        _, lines, run = latest_report()
        by_id = {line["external_id"]: line for line in lines}
        count = writes(admin)
        say(
            f"  Reverse run {attempt}: {by_id[kept['externalId']]['outcome']} and "
            f"{by_id[clash['externalId']]['outcome']}; {calls_line(admin)}; {count} writes."
        )
        if count or by_id[kept["externalId"]]["outcome"] != "kept_precoro":
            raise DemoError(f"the reverse run reverted a Precoro edit: see {run}/report.jsonl")
    state = by_id[clash["externalId"]]["conflicts"]["email"]
    say(f"  {kept['externalId']}: kept_precoro: Precoro's e-mail stays; writing the ERP's old")
    say("  one back would revert the buyer.")
    say(f"  {clash['externalId']}: conflict, nothing written; report.jsonl has all three values:")
    say(f"    last synced {state['base']!r}")
    say(f"    ERP         {state['erp']!r}")
    say(f"    Precoro     {state['precoro']!r}")
    say(f"  ({run.relative_to(ROOT)}/; the record is in dead-letter.jsonl,")
    say('  to replay with field_ownership {"suppliers": {"email": "erp"}} once decided.)')
    admin.reset_counters()
    meltano(["run", "tap-precoro", "target-erp"], env, "5-precoro-to-erp.log")
    with duckdb.connect(str(ERP_DB), read_only=True) as db:
        row = db.execute(
            "select email from precoro.suppliers where externalid = ?", [kept["externalId"]]
        ).fetchone()
    say(f"  The forward job carries the buyer's edit to the ERP ({calls_line(admin)}):")
    say(f"    ERP row precoro.suppliers {kept['externalId']}: email {row[0] if row else None!r}")


def step6(port: int) -> None:
    """Where to look afterwards."""
    say("\n== 6. Sandbox stopped; nothing is left running. Where to look:")
    say(f"  ERP database     {ERP_DB.relative_to(ROOT)}  (schema precoro, one table per stream):")
    python = Path(sys.executable).relative_to(ROOT)
    query = f"duckdb.connect('{ERP_DB.relative_to(ROOT)}').sql('from precoro.suppliers limit 5')"
    say(f'                   {python} -c "import duckdb; print({query})"')
    say(f"  Reports          {REPORTS.relative_to(ROOT)}/<run>/report.html (open it in a browser),")
    say("                   summary.json, report.jsonl, dead-letter.jsonl")
    say(f"  Meltano logs     {LOGS.relative_to(ROOT)}/")
    say(f"  Bookmarks        {MELTANO.relative_to(ROOT)} state get {STATE_IDS[0]}")
    say("  Start over       `make demo` again: it first deletes what this run left and")
    say("                   clears Meltano's state of both jobs. To do that by hand:")
    left = " ".join(str(path.relative_to(ROOT)) for path in RESET_PATHS)
    say(f"                   rm -rf {left}")
    for state_id in STATE_IDS:
        clear = f"--environment=sandbox state clear --force {state_id}"
        say(f"                   {MELTANO.relative_to(ROOT)} {clear}")
    say("  Next             README: 'Running with Meltano', 'Pointing at a real Precoro")
    say("                   account and your own ERP'.")
    if port != DEFAULT_PORT:
        say(f"  (Port {DEFAULT_PORT} was taken: the demo used {port}, via TAP_PRECORO_API_URL.)")


def main() -> int:
    """Run the six steps; exit 1 with the failing step's log on error."""
    if not MELTANO.exists():
        say(f"{MELTANO} is missing: run `make demo` (or `make install`) from {ROOT}")
        return 1
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        TAP_PRECORO_API_URL=url,
        TARGET_PRECORO_API_URL=url,
        MELTANO_ENVIRONMENT="sandbox",
        NO_COLOR="1",
    )
    say("Precoro <-> ERP through Meltano, against a local Precoro sandbox")
    say(f"(seed {SEED}, {SCALE} suppliers and their items, orders, invoices...; limits off)")
    started = time.monotonic()
    reset_demo_state(env)
    sandbox = start_sandbox(port)
    admin = AdminClient(url)
    try:
        say(f"Sandbox: {url}  ({sum(admin.stats().values())} records)")
        step1(admin, env)
        step2(admin, env)
        step3(admin, env)
        step4(admin, env)
        step5(admin, env, url)
    except DemoError as exc:
        say(f"\nDEMO FAILED: {exc}")
        return 1
    finally:
        stop_sandbox(sandbox)
    step6(port)
    say(f"\nDone in {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
