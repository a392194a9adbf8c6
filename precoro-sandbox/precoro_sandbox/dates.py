"""Date handling: one canonical stored form, rendered in the company time zone on output.

Records are stored with every timestamp as `"YYYY-MM-DDTHH:MM:SS+00:00"` (UTC), so a
page of pre-serialised JSON can be served untouched in the default setting (UTC,
offset style) and re-rendered with one regex pass otherwise, instead of re-serialising.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

_STORED_RE = re.compile(r'"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\+00:00"')
_MODIFIED_SINCE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def stored(ts: int | float) -> str:
    """Canonical stored text of an epoch timestamp (whole seconds, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(int(ts)))


def stored_dt(when: datetime) -> str:
    """Canonical stored text of an aware datetime."""
    return stored(when.timestamp())


def epoch(text: str | None) -> int | None:
    """Epoch seconds of a stored (or any ISO 8601) timestamp; None for None."""
    if text is None:
        return None
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


@lru_cache(maxsize=65536)
def _render_one(naive_utc: str, zone: str, style: str) -> str:
    moment = datetime.fromisoformat(naive_utc).replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
    if style == "naive":
        return '"' + moment.strftime("%Y-%m-%dT%H:%M:%S") + '"'
    return '"' + moment.isoformat(timespec="seconds") + '"'


def render(text: str, zone: str, style: str) -> str:
    """Rewrite every stored timestamp in `text` for the company zone and date style."""
    if zone == "UTC" and style == "offset":
        return text
    return _STORED_RE.sub(lambda m: _render_one(m.group(1), zone, style), text)


def parse_local(text: str, fmt: str, zone: tzinfo) -> datetime:
    """Parse a zone-less query date in the company time zone (ValueError if malformed)."""
    if fmt == "%Y-%m-%dT%H:%M:%S" and not _MODIFIED_SINCE_RE.match(text):
        raise ValueError(text)
    return datetime.strptime(text, fmt).replace(tzinfo=zone)


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LENIENT_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(Z|[+ -]\d{2}:?\d{2})?$"
)


def parse_since(text: str, zone: tzinfo, *, strict: bool) -> datetime:
    """A `modifiedSince` value (ValueError if malformed).

    Strict: only `YYYY-MM-DDTHH:MM:SS`, read in the company zone. Lenient (the default
    reading): also a `Z` or `±HH:MM` offset (converted), fractional seconds, and a bare
    `YYYY-MM-DD` (midnight in the company zone). An unencoded `+` arrives as a space
    and is read as `+`.
    """
    if strict:
        return parse_local(text, "%Y-%m-%dT%H:%M:%S", zone)
    if _DATE_RE.match(text):
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=zone)
    found = _LENIENT_RE.match(text)
    if found is None:
        raise ValueError(text)
    day, clock, offset = found.groups()
    moment = datetime.fromisoformat(f"{day}T{clock}")
    if offset is None:
        return moment.replace(tzinfo=zone)
    if offset[0] == " ":
        offset = "+" + offset[1:]
    return datetime.fromisoformat(f"{day}T{clock}{offset}")


def parse_input(text: str, zone: tzinfo) -> datetime:
    """Parse a date-time written by a client: ISO 8601, `Z` or offset; naive = company zone."""
    candidate = text.strip().replace(" ", "T", 1)
    parsed = datetime.fromisoformat(candidate)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def day_after(moment: datetime) -> datetime:
    """Start of the next calendar day in the moment's own zone."""
    return (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0)
