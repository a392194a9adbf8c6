"""A PUT cut by a kill may still land: the next writer waits for it to settle.

Found by the chaos test: a target killed -9 while Precoro was still processing its PUT
of an older version released the account lock at once; the next run PUT the newest
version, and then the dead run's PUT landed and reverted the record. An open PUT in
the journal now holds its record (`unresolved`, no write) until `write_settle_seconds`
have passed, as an open POST does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from precoro_client.settings import PrecoroSettings
from precoro_sandbox.testing import START
from target_precoro.settings import WRITE_SETTLE_SECONDS
from target_precoro.testing import api_records, make_config, run_target, singer

TARGET = Path(sys.executable).with_name("target-precoro")
EXT = "LATEPUT-1"
HOLD_SECONDS = 3.0
"""How long the sandbox holds the PUT of the killed run (well beyond the next run)."""


def _version(v: int) -> dict[str, Any]:
    return {"externalId": EXT, "name": f"Late Put Vendor v{v}", "country": "France"}


def _name(sb: Any) -> list[str]:
    return [str(r["name"]) for r in api_records(sb, "/suppliers") if r.get("externalId") == EXT]


def _wait(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_put_of_a_killed_run_landing_late_does_not_revert_the_next_write(
    sandbox_factory, tmp_path, capsys
):
    sb = sandbox_factory(limits="off", clock_start=START, clock_frozen=True)
    killed = make_config(
        sb, tmp_path, state_dir=str(tmp_path / "a"), report_dir=str(tmp_path / "ra")
    )
    nxt = make_config(sb, tmp_path, state_dir=str(tmp_path / "b"), report_dir=str(tmp_path / "rb"))
    for config in (killed, nxt):
        config["match"] = {"suppliers": []}
    assert run_target(killed, singer("suppliers", [_version(1)]), capsys).exit_code == 0

    # v2's PUT is held inside Precoro; its run is killed meanwhile (the lock goes with it).
    rule = {"kind": "delay", "route": "/suppliers/*", "method": "PUT"}
    sb.admin.set_faults([{**rule, "delay_seconds": HOLD_SECONDS, "times": 1}])
    sb.admin.reset_counters()
    (tmp_path / "config.json").write_text(json.dumps(killed))
    (tmp_path / "v2.singer").write_text(singer("suppliers", [_version(2)]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TARGET_PRECORO_")}
    args = ["--config", str(tmp_path / "config.json"), "--input", str(tmp_path / "v2.singer")]
    proc = subprocess.Popen([str(TARGET), *args], stdout=subprocess.DEVNULL, env=env)
    _wait(lambda: sb.admin.faults()["rules"][0]["fired"] == 1, "the held PUT")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL

    # The next run, from another state_dir, has v3: it must not write while v2 may land.
    early = run_target(nxt, singer("suppliers", [_version(3)]), capsys)
    assert sb.admin.counters().get("PUT") == 0  # the held PUT is not answered yet
    line = early.by_id()[EXT]
    assert (line["outcome"], line["final"]) == ("unresolved", False), line
    assert early.states == []
    _wait(lambda: sb.admin.counters().get("PUT") == 1, "the held PUT to land")
    assert _name(sb) == ["Late Put Vendor v2"]

    # Once the settle period has passed (counted from when the PUT may have left the
    # governor's queue), the next run writes v3 over whatever landed.
    sb.admin.advance_clock(WRITE_SETTLE_SECONDS + PrecoroSettings.max_wait_seconds + 5)
    late = run_target(nxt, singer("suppliers", [_version(3)], {"done": True}), capsys)
    assert late.outcome_of(EXT) == "updated"
    assert late.states == [{"done": True}]
    assert sb.admin.counters().get("PUT") == 2
    assert _name(sb) == ["Late Put Vendor v3"]
