"""The budget ledger and the account lock on a real PostgreSQL server.

Governors here stand for workers on different machines: each has its own connection,
its own SQLite path (never used) and they share only `state_backend_url`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from precoro_client.account_lock import AccountLocked, account_lock
from precoro_client.errors import BudgetExhausted, ConfigError, LedgerUnavailable, RateLimited
from precoro_client.governor import SPACING_MARGIN, RateGovernor
from precoro_client.pg_backend import PostgresAccountLock, PostgresLedgerStore
from precoro_client.settings import PrecoroSettings

TOKEN = "tok-PgS3cret-0123456789abcdef"
URL = "https://api.example.test"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def settings(pg_url: str, folder: Path, **overrides: Any) -> PrecoroSettings:
    return PrecoroSettings.from_config(
        {
            "auth_token": TOKEN,
            "email": "api@example.com",
            "api_url": URL,
            "budget_ledger_path": str(folder / "ledger.sqlite3"),
            "state_backend_url": pg_url,
            **overrides,
        }
    )


def test_the_setting_selects_postgres_and_sqlite_stays_the_default(pg_url, tmp_path):
    with RateGovernor(settings(pg_url, tmp_path / "a")) as governor:
        assert isinstance(governor._store, PostgresLedgerStore)
        governor.acquire("GET", f"{URL}/suppliers")
    assert not (tmp_path / "a" / "ledger.sqlite3").exists()
    assert isinstance(account_lock(settings(pg_url, tmp_path), run_id="r"), PostgresAccountLock)
    plain = settings("", tmp_path / "b")
    assert plain.state_backend_url is None
    with RateGovernor(plain) as governor:
        governor.acquire("GET", f"{URL}/suppliers")
    assert (tmp_path / "b" / "ledger.sqlite3").exists()


@pytest.mark.parametrize(
    "value", ["mysql://u@h/db", "redis://h", "/var/lib/ledger.sqlite3", "postgresql://h:99999/db"]
)
def test_an_unsupported_url_names_the_setting(tmp_path, value):
    with pytest.raises(ConfigError) as info:
        settings(value, tmp_path)
    assert info.value.setting == "state_backend_url"


def test_the_password_never_shows(tmp_path):
    # Nothing listens on port 1: the connection fails at once.
    cfg = settings("postgresql://ledger:Pw-Zq8x-secret@127.0.0.1:1/precoro", tmp_path)
    assert "Pw-Zq8x-secret" not in repr(cfg)
    governor = RateGovernor(cfg)  # connects on first use: a run can be set up, then stop
    with pytest.raises(LedgerUnavailable) as info:
        governor.acquire("GET", f"{URL}/suppliers")
    text = str(info.value)
    assert "state_backend_url" in text
    assert "127.0.0.1:1/precoro" in text
    assert "Pw-Zq8x-secret" not in text
    assert isinstance(info.value, BudgetExhausted)  # callers stop the way they do for budget
    with pytest.raises(AccountLocked) as locked:
        account_lock(cfg, run_id="r").acquire(0)
    assert "state_backend_url" in str(locked.value)
    assert "Pw-Zq8x-secret" not in str(locked.value)


def test_a_password_in_the_query_is_kept_out_of_messages_too(tmp_path):
    cfg = settings("postgresql://127.0.0.1:1/precoro?user=l&password=Qq-77-hidden", tmp_path)
    with pytest.raises(LedgerUnavailable) as info:
        RateGovernor(cfg).remaining_today()
    assert "Qq-77-hidden" not in str(info.value)
    assert "state_backend_url" in str(info.value)


def test_spacing_duplicate_gets_and_blocks_are_shared_between_machines(pg_url, tmp_path):
    clock = FakeClock()
    a = RateGovernor(
        settings(pg_url, tmp_path / "a", max_requests_per_second=1),
        clock=clock,
        sleep=clock.sleep,
    )
    b = RateGovernor(
        settings(pg_url, tmp_path / "b", max_requests_per_second=1),
        clock=clock,
        sleep=clock.sleep,
    )
    with a, b:
        a.acquire("GET", f"{URL}/suppliers?page=1")
        b.acquire("GET", f"{URL}/suppliers?page=2")
        assert clock.sleeps == [pytest.approx(1 + SPACING_MARGIN, abs=0.01)]  # b waited for a
        clock.now += 0.005
        b.settle("GET", f"{URL}/suppliers?page=2")  # answered 5 ms after it left
        a.acquire("POST", f"{URL}/items")  # a spaces from b's answer: 1.005 s, no margin
        assert clock.sleeps[1] == pytest.approx(1.002, abs=0.002)  # from the answer on
        b.acquire("GET", f"{URL}/suppliers?page=1")  # the same GET as a's first
        assert sum(clock.sleeps) == pytest.approx(66.0, abs=0.01)  # duplicate window: 60 s + 10 %
        a.record_429(
            RateLimited("hourly", limit_type="Hourly limiter", retry_at=None, limit=1500),
            "GET",
            f"{URL}/items",
            fallback_seconds=30,
        )
        before = sum(clock.sleeps)
        b.acquire("POST", f"{URL}/items")
        assert sum(clock.sleeps) - before == pytest.approx(30.0, abs=0.01)


def test_the_daily_budget_is_shared_exactly(pg_url, tmp_path):
    clock = FakeClock()
    made = [
        RateGovernor(
            settings(pg_url, tmp_path / name, max_requests_per_day=5, max_requests_per_second=10),
            clock=clock,
            sleep=clock.sleep,
        )
        for name in ("a", "b")
    ]
    for n in range(5):
        made[n % 2].acquire("POST", f"{URL}/suppliers")
    for governor in made:  # both machines see the day spent
        with pytest.raises(BudgetExhausted) as info:
            governor.acquire("POST", f"{URL}/suppliers")
        assert info.value.limit == "daily"
    assert made[0].calls_used_today() == made[1].calls_used_today() == 5
    assert made[1].remaining_today() == 0
    for governor in made:
        governor.close()


WORKER = """
import json, sys
from precoro_client.errors import BudgetExhausted
from precoro_client.governor import SPACING_MARGIN, RateGovernor
from precoro_client.settings import PrecoroSettings

settings = PrecoroSettings.from_config(json.loads(sys.argv[1]))
admitted = 0
with RateGovernor(settings) as governor:
    print("ready", flush=True)
    sys.stdin.readline()  # every worker starts at once
    try:
        for _ in range(25):
            governor.acquire("POST", settings.url("/suppliers"))
            admitted += 1
    except BudgetExhausted:
        pass
print(admitted)
"""


def test_processes_racing_for_the_last_calls_never_overspend(pg_url, tmp_path, query):
    configs = [
        {
            "auth_token": TOKEN,
            "email": "api@example.com",
            "api_url": URL,
            "budget_ledger_path": str(tmp_path / f"w{n}" / "ledger.sqlite3"),
            "state_backend_url": pg_url,
            "max_requests_per_day": 40,
            "max_requests_per_second": 1000,
        }
        for n in range(4)
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for config in configs
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    admitted = [int(proc.communicate(timeout=120)[0]) for proc in procs]
    assert sum(admitted) == 40  # 100 wanted, exactly the day's 40 admitted
    assert query(pg_url, "SELECT count(*) FROM precoro_ledger_calls") == [(40,)]


def test_the_token_never_reaches_the_database(pg_url, tmp_path, query):
    cfg = settings(pg_url, tmp_path)
    with RateGovernor(cfg) as governor:
        governor.acquire("GET", f"{URL}/suppliers")
    lock = account_lock(cfg, run_id="run-1")
    lock.acquire(0)
    try:
        dump = "\n".join(
            str(row)
            for table in (
                "precoro_ledger_calls",
                "precoro_ledger_recent_gets",
                "precoro_ledger_blocks",
                "precoro_account_locks",
            )
            for row in query(pg_url, f"SELECT * FROM {table}")
        )
    finally:
        lock.release()
    assert cfg.ledger_key in dump
    assert TOKEN not in dump


def test_the_account_lock_is_one_for_every_machine(pg_url, tmp_path, query):
    first = account_lock(settings(pg_url, tmp_path / "a"), run_id="first", program="target-x")
    second = account_lock(settings(pg_url, tmp_path / "b"), run_id="second")
    first.acquire(0)
    try:
        with pytest.raises(AccountLocked) as info:
            second.acquire(0.3)
        assert info.value.holder is not None
        assert info.value.holder.run_id == "first"
        assert "target-x run first" in str(info.value)
    finally:
        first.release()
    assert query(pg_url, "SELECT count(*) FROM precoro_account_locks") == [(0,)]
    second.acquire(0)
    second.release()


HOLDER = """
import json, sys, time
from precoro_client.account_lock import account_lock
from precoro_client.settings import PrecoroSettings

lock = account_lock(PrecoroSettings.from_config(json.loads(sys.argv[1])), run_id="doomed")
lock.acquire(0)
print("held", flush=True)
time.sleep(600)
"""


def test_a_killed_holder_releases_the_lock_with_its_session(pg_url, tmp_path):
    cfg = settings(pg_url, tmp_path)
    config = {
        "auth_token": TOKEN,
        "email": "api@example.com",
        "api_url": URL,
        "state_backend_url": pg_url,
    }
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, json.dumps(config)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        lock = account_lock(cfg, run_id="next")
        with pytest.raises(AccountLocked) as info:
            lock.acquire(0)
        assert info.value.holder is not None
        assert info.value.holder.run_id == "doomed"
        holder.kill()  # SIGKILL: no release, the server ends the session
        holder.wait()
        lock.acquire(10)
        assert lock.held
        lock.release()
    finally:
        holder.kill()
        holder.wait()


def test_a_lost_lock_stops_the_next_call(pg_url, tmp_path, query):
    cfg = settings(pg_url, tmp_path)
    lock = account_lock(cfg, run_id="run-1")
    lock.acquire(0)
    governor = RateGovernor(cfg)
    try:
        governor.acquire("POST", f"{URL}/suppliers")
        # The lock's session ends (an idle-connection killer, a failover...).
        query(
            pg_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'precoro-client' AND pid <> pg_backend_pid() "
            "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')",
        )
        other = account_lock(settings(pg_url, tmp_path / "b"), run_id="run-2")
        other.acquire(5)  # the server released it: another worker may write now...
        try:
            with pytest.raises(LedgerUnavailable, match="lock"):
                governor.acquire("POST", f"{URL}/suppliers")  # ...so this one must not
        finally:
            other.release()
    finally:
        lock.release()
        governor.close()
    assert query(pg_url, "SELECT count(*) FROM precoro_ledger_calls") == [(1,)]


def test_an_outage_stops_admissions_and_the_ledger_survives_it(own_postgres, tmp_path, query):
    url = own_postgres.create_database()
    governor = RateGovernor(settings(url, tmp_path, max_requests_per_second=1000))
    for page in range(3):
        governor.acquire("GET", f"{URL}/suppliers?page={page}")
    own_postgres.kill()
    with pytest.raises(LedgerUnavailable) as info:
        governor.acquire("GET", f"{URL}/suppliers?page=9")
    assert "state_backend_url" in str(info.value)
    governor.settle("GET", f"{URL}/suppliers?page=2")  # never raises: the answer must get out
    with pytest.raises(LedgerUnavailable):
        governor.acquire("GET", f"{URL}/suppliers?page=9")  # no reconnect mid-run
    governor.close()
    own_postgres.start()
    assert query(url, "SELECT count(*) FROM precoro_ledger_calls") == [(3,)]
    with RateGovernor(settings(url, tmp_path, max_requests_per_second=1000)) as again:
        assert again.calls_used_today() == 3
        again.acquire("GET", f"{URL}/suppliers?page=9")
