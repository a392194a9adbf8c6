"""Parsing Precoro's 429 responses into the exact time to wait until.

Precoro puts the limiter's verdict in the JSON body (H-429; `docs/precoro-api.md`,
"Rate limits"): `{"error": ..., "RateLimit-Type": "Route based limiter by minute",
"RateLimit-Retry-After": "2025-12-16 09:00:49 UTC", "RateLimit-Limit": 1}`.
The same names as HTTP headers and a standard `Retry-After` header (seconds or an
HTTP date) are read too. When several say different things the latest time wins
(waiting a little long is cheap, a second 429 is not).

Absolute times are converted to the local clock through the response's `Date`
header when there is one, so a skewed local clock still waits the server's
duration. Garbled or missing fields yield `retry_at=None`; the caller then falls
back to exponential backoff.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from precoro_client.errors import RateLimited

TYPE_KEY = "RateLimit-Type"
RETRY_AFTER_KEY = "RateLimit-Retry-After"
LIMIT_KEY = "RateLimit-Limit"

_PRECORO_TIME = re.compile(
    r"^\s*(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d+)?\s*(UTC|Z)?\s*$"
)
_MAX_REASONABLE_WAIT = timedelta(days=3)


def parse_http_date(value: str | None) -> datetime | None:
    """Parse an HTTP date (`Date`, `Retry-After`) into an aware UTC datetime, or None."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_precoro_time(value: Any) -> datetime | None:
    """Parse `YYYY-MM-DD HH:MM:SS UTC` (ISO 8601 with offset also accepted), or None."""
    if not isinstance(value, str):
        return None
    match = _PRECORO_TIME.match(value)
    if match:
        try:
            naive = datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}")
        except ValueError:
            return None
        return naive.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None  # a zone-less time other than Precoro's UTC format is ambiguous
    return parsed.astimezone(UTC)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_rate_limit(
    body: str | bytes | None,
    headers: Mapping[str, str] | None = None,
    *,
    now: datetime,
    status: int | None = 429,
    method: str | None = None,
    url: str | None = None,
) -> RateLimited:
    """Turn a 429 (body text + headers) into `RateLimited` with `retry_at` on the local clock.

    `now` is the local time (aware) when the response arrived.
    """
    headers = headers or {}
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    data: dict[str, Any] = {}
    try:
        loaded = json.loads(body or "")
        if isinstance(loaded, dict):
            data = loaded
    except ValueError:
        pass

    limit_type = data.get(TYPE_KEY)
    if not isinstance(limit_type, str):
        limit_type = _header(headers, TYPE_KEY)
    limit = _int_or_none(data.get(LIMIT_KEY))
    if limit is None:
        limit = _int_or_none(_header(headers, LIMIT_KEY))

    server_now = parse_http_date(_header(headers, "Date"))
    reference = server_now or now
    waits: list[timedelta] = []
    for candidate in (data.get(RETRY_AFTER_KEY), _header(headers, RETRY_AFTER_KEY)):
        when = parse_precoro_time(candidate)
        if when is not None:
            waits.append(when - reference)
    retry_after = _header(headers, "Retry-After")
    if retry_after:
        text = retry_after.strip()
        if text.isdigit():
            waits.append(timedelta(seconds=int(text)))
        else:
            when = parse_http_date(text)
            if when is not None:
                waits.append(when - reference)
    sane = [w for w in waits if w <= _MAX_REASONABLE_WAIT]
    retry_at = now + max(timedelta(0), *sane) if sane else None

    message = data.get("error") or data.get("message") or "Too many requests"
    if not isinstance(message, str):
        message = "Too many requests"
    detail = f"Precoro rate limit: {message}"
    if limit_type:
        detail += f" ({limit_type})"
    if retry_at is not None:
        detail += f"; retry at {retry_at:%Y-%m-%d %H:%M:%S} UTC"
    return RateLimited(
        detail,
        limit_type=limit_type,
        retry_at=retry_at,
        limit=limit,
        status=status,
        method=method,
        url=url,
    )
