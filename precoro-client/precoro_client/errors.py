"""Exceptions raised by precoro_client, and the parser for Precoro error bodies.

Every message passes through `secret.scrub`, so a token echoed by a server or a
proxy never reaches a log or a traceback. Callers branch on the class:

- `ConfigError`: bad settings, before any request.
- `AuthenticationError` (401/403): fatal, names the settings to check.
- `RateLimited` (429, parsed) and `BudgetExhausted` (the client-side budget is spent
  or the wait is too long): stop cleanly and resume later.
- `ValidationFailed` / `NotFound`: other 4xx, the record is at fault, not the run.
- `RetriableError` (`ServerError`, `TransportError`, `InvalidResponse`): transient;
  already retried by `PrecoroClient` up to `max_tries`.
- `WriteOutcomeUnknown`: a POST may or may not have been applied; look it up first.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from precoro_client.secret import scrub

_MAX_MESSAGE = 300

EXIT_TEMPFAIL = 75
"""Exit status of a run that stopped because something it needs is unavailable for now
(sysexits' EX_TEMPFAIL): the shared ledger's database, or the account write lock held
by another run. Everything done was recorded and STATE covers it, so the run is to be
retried later; an orchestrator retries on non-zero, a clean budget stop exits 0."""


class PrecoroError(Exception):
    """Base class; `status` is the HTTP status when there was a response."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        """Store a scrubbed message and where it happened."""
        self.message = scrub(message)
        self.status = status
        self.method = method
        self.url = scrub(url) if url else url
        super().__init__(self.message)


class ConfigError(PrecoroError, ValueError):
    """A setting is missing or invalid; `setting` names it. Raised before any request."""

    def __init__(self, setting: str, message: str) -> None:
        """One line that names the setting (never its secret value)."""
        self.setting = setting
        super().__init__(f"Invalid Precoro setting {setting}: {message}")


class AuthenticationError(PrecoroError):
    """401/403: the token, e-mail or host is wrong. Never retried."""


class RateLimited(PrecoroError):
    """A parsed 429 from Precoro.

    `retry_at` is when the server accepts calls again, on the local clock (aware,
    UTC), or None when the response did not say. `kind` is `daily`, `hourly`,
    `route` (per-route/minute or duplicate-GET limiter) or `unknown`.
    """

    def __init__(
        self,
        message: str,
        *,
        limit_type: str | None,
        retry_at: datetime | None,
        limit: int | None,
        status: int | None = 429,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        """Keep the parsed fields next to the message."""
        self.limit_type = limit_type
        self.retry_at = retry_at
        self.limit = limit
        super().__init__(message, status=status, method=method, url=url)

    @property
    def kind(self) -> str:
        """Which limiter answered, from `RateLimit-Type` (case-insensitive substring)."""
        text = (self.limit_type or "").lower()
        if "day" in text or "daily" in text:
            return "daily"
        if "hour" in text:
            return "hourly"
        if any(word in text for word in ("minute", "route", "second", "duplicate")):
            return "route"
        return "unknown"


class BudgetExhausted(PrecoroError):
    """The run must stop: the budget for `limit` returns only at `resets_at`.

    Raised instead of sleeping for a daily wait, or for an hourly/server wait longer
    than `max_wait_seconds`. `limit` is `daily`, `hourly`, `route` or `unknown`.
    """

    def __init__(
        self,
        limit: str,
        resets_at: datetime,
        *,
        used_today: int,
        remaining_today: int,
        detail: str = "",
    ) -> None:
        """Build a message that says which limit, until when, and today's usage."""
        self.limit = limit
        self.resets_at = resets_at
        self.used_today = used_today
        self.remaining_today = remaining_today
        when = resets_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
        text = (
            f"Precoro {limit} request budget exhausted; calls possible again at {when} "
            f"({used_today} calls used in the last 24 h, {remaining_today} remaining)"
        )
        if detail:
            text = f"{text}: {detail}"
        super().__init__(text)


class LedgerUnavailable(BudgetExhausted):
    """The shared ledger (or the account lock's session) cannot be reached: stop now.

    A `BudgetExhausted`, so the tap and the target stop the way they do for a spent
    budget (STATE emitted, unattempted records reported): no call is made without
    its ledger entry. `setting` names where the ledger is configured; the message
    shows the URL without its password.
    """

    def __init__(self, setting: str, where: str, problem: str) -> None:
        """Name the setting and the (password-free) location; no budget numbers."""
        self.setting = setting
        self.problem = problem
        self.limit = "ledger"
        self.resets_at = datetime.now(UTC)
        self.used_today = 0
        self.remaining_today = 0
        PrecoroError.__init__(
            self,
            f"the Precoro budget ledger at {where} ({setting}) is unavailable: {problem}; "
            "the run stops before any further call (the next run resumes)",
        )


class ValidationFailed(PrecoroError):
    """A 4xx the record is to blame for; `field_errors` maps field name to message."""

    def __init__(
        self,
        message: str,
        *,
        field_errors: dict[str, str] | None = None,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        """Keep the per-field messages (already scrubbed)."""
        self.field_errors = {k: scrub(v) for k, v in (field_errors or {}).items()}
        super().__init__(message, status=status, method=method, url=url)


class NotFound(PrecoroError):
    """404: the path or record does not exist (or the user may not see it)."""


class RetriableError(PrecoroError):
    """A transient failure: worth another try after a pause."""


class ServerError(RetriableError):
    """5xx from Precoro or a proxy in front of it."""


class TransportError(RetriableError):
    """Timeout, refused or dropped connection, truncated body.

    `never_sent` is True when the request provably never reached the server
    (connect timeout, connection refused), so even a POST may be re-sent. `setting`
    names the setting to check (`api_url`) when the host was refused or unknown.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        never_sent: bool = False,
        setting: str | None = None,
    ) -> None:
        """Remember whether the request could have reached the server."""
        self.never_sent = never_sent
        self.setting = setting
        super().__init__(message, method=method, url=url)


class InvalidResponse(RetriableError):
    """A 2xx whose body is not the JSON it should be (truncated or garbled)."""


class WriteOutcomeUnknown(PrecoroError):
    """A POST failed after it may have reached the server; it was NOT retried.

    Look the record up (e.g. by `externalId`) before writing it again. `cause` is
    the underlying failure.
    """

    def __init__(
        self, message: str, *, cause: PrecoroError, method: str | None, url: str | None
    ) -> None:
        """Chain the underlying failure."""
        self.cause = cause
        super().__init__(message, status=cause.status, method=method, url=url)


@dataclass(frozen=True)
class ErrorDetails:
    """What an error body says: a one-line message and per-field messages."""

    message: str
    field_errors: dict[str, str] = field(default_factory=dict)


def _shorten(text: str, limit: int = _MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_as_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_as_text(v)}" for k, v in value.items())
    return json.dumps(value)


def _field_errors(errors: Any) -> dict[str, str]:
    """Flatten `{"errors": {"field": "msg"}}` (or one level less) into field → message."""
    if isinstance(errors, dict) and isinstance(errors.get("errors"), dict | list):
        inner = errors["errors"]
        if isinstance(inner, dict):
            errors = inner
    if not isinstance(errors, dict):
        return {}
    return {str(k): _shorten(_as_text(v)) for k, v in errors.items()}


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _summarise_html(text: str) -> str:
    for pattern in (_TITLE, _H1):
        match = pattern.search(text)
        if match:
            title = html.unescape(_TAG.sub("", match.group(1))).strip()
            if title:
                return f"HTML page: {_shorten(title, 120)}"
    return f"HTML page ({len(text)} bytes)"


def parse_error_body(body: str | bytes | None, content_type: str | None = None) -> ErrorDetails:
    """Read Precoro's error shapes into a message and per-field messages.

    Precoro: `{"errors": {"errors": {"<field>": "<message>"}}}`; also tolerated:
    `{"errors": {...}}`, `{"errors": [...]}`, `{"error": ...}`, `{"message": ...}`.
    HTML from a proxy is summarised by its title, never dumped; other text is cut
    to one short line. The result is scrubbed of registered secrets.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = (body or "").strip()
    if not text:
        return ErrorDetails("empty response body")
    looks_html = "html" in (content_type or "").lower() or text[:200].lower().lstrip().startswith(
        ("<!doctype html", "<html", "<head", "<body")
    )
    if looks_html:
        return ErrorDetails(scrub(_summarise_html(text)))
    try:
        data = json.loads(text)
    except ValueError:
        return ErrorDetails(scrub(_shorten(text)))
    if not isinstance(data, dict):
        return ErrorDetails(scrub(_shorten(_as_text(data))))
    fields_ = {k: scrub(v) for k, v in _field_errors(data.get("errors")).items()}
    parts: list[str] = []
    for key in ("message", "error", "detail", "title"):
        value = data.get(key)
        if isinstance(value, dict) and "message" in value:
            value = value["message"]
        if value not in (None, "", [], {}):
            parts.append(_as_text(value))
            break
    if not fields_ and isinstance(data.get("errors"), list | str):
        parts.append(_as_text(data["errors"]))
    if fields_:
        parts.append("; ".join(f"{k}: {v}" for k, v in fields_.items()))
    message = " - ".join(parts) if parts else _shorten(json.dumps(data))
    return ErrorDetails(scrub(_shorten(message)), fields_)
