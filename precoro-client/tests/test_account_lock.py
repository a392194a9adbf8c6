"""The account write lock: exclusive per account, named holder, dies with its process."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest
from precoro_client.account_lock import (
    WAITING_LOG,
    AccountLocked,
    FileAccountLock,
    LockHolder,
    account_lock,
)

HOLDER_SCRIPT = """
import sys, threading
from precoro_client.account_lock import account_lock
from precoro_client.settings import PrecoroSettings
settings = PrecoroSettings(auth_token=sys.argv[1], email="api@example.com",
                           api_url="http://127.0.0.1:9", budget_ledger_path=sys.argv[2])
lock = account_lock(settings, run_id="child-run", program="holder")
lock.acquire(0)
print("locked", flush=True)
threading.Event().wait()
"""


def _start_holder(token, ledger) -> subprocess.Popen[str]:
    """A separate process that takes the lock, says so on stdout, then waits for ever."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, token, str(ledger)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_lives_beside_the_ledger_keyed_by_account(make_settings, ledger, tmp_path):
    settings = make_settings()
    lock = account_lock(settings, run_id="r1")
    assert isinstance(lock, FileAccountLock)
    assert lock.path.parent == ledger.parent
    assert settings.ledger_key[:32] in lock.path.name
    # Another ledger file in the same folder: same account, same lock.
    other_file = account_lock(
        make_settings(budget_ledger_path=str(ledger.parent / "other.sqlite3")), run_id="r2"
    )
    assert other_file.path == lock.path
    # Another token or another API URL: another account, another lock.
    assert account_lock(make_settings(auth_token="tok-other-123"), run_id="r3").path != lock.path
    assert account_lock(make_settings(api_url="http://127.0.0.1:10"), run_id="r4").path != (
        lock.path
    )


def test_second_holder_is_refused_and_told_who_holds_it(make_settings):
    settings = make_settings()
    first = account_lock(settings, run_id="run-one", program="target-precoro")
    second = account_lock(settings, run_id="run-two", program="target-precoro")
    first.acquire(0)
    assert first.held
    with pytest.raises(AccountLocked) as refused:
        second.acquire(0)
    holder = refused.value.holder
    assert holder is not None
    assert (holder.pid, holder.host, holder.run_id) == (
        os.getpid(),
        socket.gethostname(),
        "run-one",
    )
    assert holder.since.endswith("Z")
    assert "run-one" in refused.value.message
    assert not second.held
    first.release()
    first.release()  # idempotent
    second.acquire(0)
    assert second.holder() == LockHolder(
        os.getpid(), socket.gethostname(), "run-two", second.holder().since, "target-precoro"
    )
    second.release()
    assert isinstance(second, FileAccountLock)
    assert not second.holder_path.exists()  # a released lock names no holder


def test_token_never_reaches_the_lock_folder(make_settings, ledger, token):
    settings = make_settings()
    lock = account_lock(settings, run_id="r1")
    lock.acquire(0)
    try:
        files = list(ledger.parent.iterdir())
        assert files
        for path in files:
            assert token not in path.name
            assert token.encode() not in path.read_bytes()
    finally:
        lock.release()


def test_lock_is_released_when_the_body_raises(make_settings):
    settings = make_settings()
    with pytest.raises(RuntimeError), account_lock(settings, run_id="r1").hold(0):
        raise RuntimeError("boom")
    other = account_lock(settings, run_id="r2")
    other.acquire(0)
    other.release()


def test_waiter_gets_the_lock_when_the_holder_releases(make_settings):
    settings = make_settings()
    holder = account_lock(settings, run_id="r1")
    holder.acquire(0)
    waiter = account_lock(settings, run_id="r2")
    waiting = threading.Event()

    class OnWait(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg == WAITING_LOG:
                waiting.set()

    handler = OnWait()
    logging.getLogger("precoro_client").addHandler(handler)
    outcome: list[BaseException | None] = []

    def wait_for_it() -> None:
        try:
            waiter.acquire(60)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=wait_for_it)
    try:
        thread.start()
        assert waiting.wait(10)  # the waiter found it held and is waiting
        holder.release()
        thread.join(30)
    finally:
        logging.getLogger("precoro_client").removeHandler(handler)
    assert outcome == [None]
    assert waiter.held
    assert waiter.holder().run_id == "r2"
    waiter.release()


def test_kill_9_of_the_holder_releases_the_lock(make_settings, ledger, token):
    settings = make_settings()
    proc = _start_holder(token, ledger)
    try:
        lock = account_lock(settings, run_id="after")
        with pytest.raises(AccountLocked) as refused:
            lock.acquire(0)
        assert refused.value.holder is not None
        assert refused.value.holder.pid == proc.pid
        assert refused.value.holder.run_id == "child-run"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
    # The kernel dropped the flock with the process; its stale holder info is replaced.
    lock.acquire(0)
    assert lock.holder().pid == os.getpid()
    lock.release()


def test_a_cancelled_wait_ends_at_once(make_settings):
    settings = make_settings()
    holder = account_lock(settings, run_id="r1")
    holder.acquire(0)
    try:
        with pytest.raises(AccountLocked) as refused:
            account_lock(settings, run_id="r2").acquire(3600, cancelled=lambda: True)
    finally:
        holder.release()
    assert refused.value.cancelled
    assert refused.value.holder is not None
    assert refused.value.holder.run_id == "r1"
