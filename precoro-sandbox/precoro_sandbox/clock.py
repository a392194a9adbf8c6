"""The sandbox's notion of "now", which tests can move without sleeping.

Rate-limit windows, `modifiedSince` filters and `updatedAt` stamps all read this clock,
so a test can jump an hour ahead (or stop time) and observe what a real client would
see after waiting, in milliseconds of wall time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


def _aware(when: datetime) -> datetime:
    """`when` as an aware UTC datetime; naive values are taken to be UTC already."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


class SandboxClock:
    """Sandbox time = real monotonic progress + an offset, so tests can set/advance it.

    Time keeps flowing at wall speed unless the clock is frozen, in which case it only
    moves through `set` and `advance`.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        """Start at `start` (default: the real current time), optionally frozen."""
        self._lock = threading.Lock()
        self._base = _aware(start) if start is not None else datetime.now(UTC)
        self._mono = time.monotonic()
        self._frozen = frozen

    def _now_locked(self) -> datetime:
        """Current sandbox time; the caller holds the lock."""
        if self._frozen:
            return self._base
        return self._base + timedelta(seconds=time.monotonic() - self._mono)

    def now(self) -> datetime:
        """Current sandbox time, timezone-aware UTC."""
        with self._lock:
            return self._now_locked()

    def timestamp(self) -> float:
        """Current sandbox time as epoch seconds (what the rate limiter computes with)."""
        return self.now().timestamp()

    def set(self, when: datetime) -> None:
        """Jump to `when` (naive datetimes are UTC); time flows on from there unless frozen."""
        with self._lock:
            self._base = _aware(when)
            self._mono = time.monotonic()

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, if negative) by `seconds`."""
        with self._lock:
            self._base = self._now_locked() + timedelta(seconds=seconds)
            self._mono = time.monotonic()

    def freeze(self) -> None:
        """Stop time at the current instant; only `set`/`advance` move it afterwards."""
        with self._lock:
            self._base = self._now_locked()
            self._frozen = True

    def unfreeze(self) -> None:
        """Let time flow again from the frozen instant."""
        with self._lock:
            if self._frozen:
                self._mono = time.monotonic()
                self._frozen = False

    @property
    def frozen(self) -> bool:
        """Whether time only moves through `set`/`advance`."""
        with self._lock:
            return self._frozen
