"""SandboxClock: set, advance, freeze."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from precoro_sandbox.clock import SandboxClock

START = datetime(2025, 12, 16, 9, 0, 0, tzinfo=UTC)


def test_default_start_is_now_and_aware():
    before = datetime.now(UTC)
    now = SandboxClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=5) <= now <= datetime.now(UTC) + timedelta(seconds=5)


def test_frozen_clock_stands_still_until_moved():
    clock = SandboxClock(START, frozen=True)
    assert clock.frozen
    assert clock.now() == START
    assert clock.now() == START
    clock.advance(90.5)
    assert clock.now() == START + timedelta(seconds=90.5)
    assert clock.timestamp() == (START + timedelta(seconds=90.5)).timestamp()


def test_set_treats_naive_as_utc_and_converts_offsets():
    clock = SandboxClock(START, frozen=True)
    clock.set(datetime(2026, 1, 2, 3, 4, 5))
    assert clock.now() == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    kyiv = timezone(timedelta(hours=2))
    clock.set(datetime(2026, 1, 2, 5, 4, 5, tzinfo=kyiv))
    assert clock.now() == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert clock.now().tzinfo == UTC


def test_naive_start_is_utc():
    clock = SandboxClock(datetime(2025, 1, 1), frozen=True)
    assert clock.now() == datetime(2025, 1, 1, tzinfo=UTC)


def test_running_clock_flows_from_set_point():
    clock = SandboxClock(START)
    assert not clock.frozen
    first = clock.now()
    assert first >= START
    assert clock.now() >= first
    clock.set(START + timedelta(days=1))
    assert clock.now() >= START + timedelta(days=1)
    clock.advance(3600)
    assert clock.now() >= START + timedelta(days=1, hours=1)


def test_freeze_and_unfreeze():
    clock = SandboxClock(START)
    clock.freeze()
    assert clock.frozen
    frozen_at = clock.now()
    assert clock.now() == frozen_at
    clock.unfreeze()
    assert not clock.frozen
    assert clock.now() >= frozen_at
    clock.unfreeze()  # idempotent
    assert not clock.frozen


def test_advance_backwards():
    clock = SandboxClock(START, frozen=True)
    clock.advance(-60)
    assert clock.now() == START - timedelta(minutes=1)
