"""Request counters per (method, route, status) and a bounded request log."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any


class Metrics:
    """Request counters per (method, route, status) and a bounded request log."""

    def __init__(self, log_size: int = 5000) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self.counters: Counter[tuple[str, str, int]] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)

    def record(self, entry: dict[str, Any]) -> None:
        """Count and log one Precoro request."""
        with self._lock:
            self.counters[(entry["method"], entry["route"], entry["status"])] += 1
            self.log.append(entry)

    def reset(self) -> None:
        """Forget all counts and log entries."""
        with self._lock:
            self.counters.clear()
            self.log.clear()

    def snapshot(self) -> dict[str, Any]:
        """Counters as JSON rows plus the total."""
        with self._lock:
            rows = [
                {"method": m, "route": r, "status": s, "count": n}
                for (m, r, s), n in sorted(self.counters.items())
            ]
            return {"counters": rows, "total": sum(self.counters.values())}

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest `limit` log entries, oldest first."""
        with self._lock:
            items = list(self.log)
        return items[-limit:] if limit else items
