"""Singer SDK-style METRIC lines for Precoro calls and the budget.

The format is singer-sdk's (`singer_sdk.metrics`): one INFO record on the
`singer_sdk.metrics` logger per point, `METRIC: {"type": ..., "metric": ...,
"value": ..., "tags": {...}}`, which Meltano and log pipelines already parse.

- Every HTTP attempt: a `timer` `http_request_duration` (seconds) and a `counter`
  `http_request_count` (1), tagged with the endpoint (the path with ids as `{id}`,
  never the query or host), the method and `http_status_code` (0 when no answer came).
- The budget, every `BUDGET_EVERY` attempts and when the client closes: counters
  `precoro_budget_calls_used` (last 24 h, every process on the key) and
  `precoro_budget_calls_left` (today, after `budget_reserve`), tagged with
  `next_reset` (when the oldest call of the day leaves the window, ISO 8601 UTC).

Tags carry no token, e-mail or URL: nothing here can leak a secret.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from singer_sdk import metrics

BUDGET_EVERY = 100
"""Attempts between budget points (one ledger read each)."""

USED = "precoro_budget_calls_used"
LEFT = "precoro_budget_calls_left"

_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


def endpoint(path: str) -> str:
    """`/suppliers/123/contacts/9` -> `/suppliers/{id}/contacts/{id}` (no query)."""
    bare = path.split("?", 1)[0] or "/"
    return _ID_SEGMENT.sub("/{id}", bare)


class _Name(str):
    """A metric name outside singer-sdk's `Metric` enum, shaped like its members."""

    @property
    def value(self) -> str:
        """What `Point.to_dict` reads."""
        return str(self)


def _emit(kind: str, metric: Any, value: float | int, tags: dict[str, Any]) -> None:
    metrics.log(metrics.get_metrics_logger(), metrics.Point(kind, metric, value, tags))


def http_request(method: str, path: str, status: int, seconds: float) -> None:
    """One attempt's duration and count, per endpoint and status."""
    tags = {
        metrics.Tag.ENDPOINT.value: endpoint(path),
        "method": method.upper(),
        metrics.Tag.HTTP_STATUS_CODE.value: status,
        metrics.Tag.STATUS.value: (
            metrics.Status.SUCCEEDED.value if 0 < status < 400 else metrics.Status.FAILED.value
        ),
    }
    _emit("timer", metrics.Metric.HTTP_REQUEST_DURATION, round(seconds, 6), tags)
    _emit("counter", metrics.Metric.HTTP_REQUEST_COUNT, 1, tags)


def budget(used: int, left: int, next_reset: datetime | None) -> None:
    """Calls used in the last 24 h, left today, and when the window next frees a call."""
    tags = {"next_reset": next_reset.isoformat() if next_reset else None}
    _emit("counter", _Name(USED), used, tags)
    _emit("counter", _Name(LEFT), left, tags)


def read_points(records: Iterable[logging.LogRecord]) -> list[dict[str, Any]]:
    """The METRIC points among log records, parsed (tests and log readers use it).

    Raises ValueError for a record on the metrics logger that is not a METRIC line.
    """
    found = []
    for record in records:
        if record.name == metrics.METRICS_LOGGER_NAME:
            prefix, _, payload = record.getMessage().partition(": ")
            if prefix != "METRIC":
                raise ValueError(f"not a METRIC line: {record.getMessage()[:80]!r}")
            found.append(json.loads(payload))
    return found
