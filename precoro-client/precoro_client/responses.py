"""Classifying a Precoro HTTP response into the exception it means (or None).

Used by `PrecoroClient`, through which every call of the tap and the target goes, so
401s, 429s and validation errors are read one way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from precoro_client.errors import (
    AuthenticationError,
    NotFound,
    PrecoroError,
    ServerError,
    ValidationFailed,
    parse_error_body,
)
from precoro_client.rate_limit import parse_http_date, parse_rate_limit

AUTH_SETTINGS_HINT = (
    "check auth_token (a current Precoro API key), email (the user who owns that key) "
    "and api_url/region (the key only works on its own server, .com or .us)"
)


def server_date(response: requests.Response) -> datetime | None:
    """The response's `Date` header as an aware UTC datetime, or None."""
    return parse_http_date(response.headers.get("Date"))


def classify_response(
    response: requests.Response, *, now: datetime | None = None
) -> PrecoroError | None:
    """The exception a response stands for; None for success (2xx).

    `now` is the local time of arrival for 429 parsing (defaults to the wall clock).
    Redirects are errors: following one would carry X-AUTH-TOKEN to another host
    (requests strips only `Authorization` on a host change).
    """
    status = response.status_code
    if status < 300:
        return None
    method = response.request.method if response.request is not None else None
    url = response.url or None
    if status < 400:
        target = response.headers.get("Location", "?")
        where = f"{method} {urlsplit(url).path}" if url else str(method)
        return PrecoroError(
            f"{where}: unexpected redirect (HTTP {status}) to {target}; not followed - "
            "check api_url/region",
            status=status,
            method=method,
            url=url,
        )
    if status == 429:
        return parse_rate_limit(
            response.content,
            response.headers,
            now=now or datetime.now(UTC),
            status=status,
            method=method,
            url=url,
        )
    details = parse_error_body(response.content, response.headers.get("Content-Type"))
    where = f"{method} {urlsplit(url).path}" if url else str(method)
    if status in (401, 403):
        host = urlsplit(url).netloc if url else "the API"
        message = (
            f"Precoro refused the credentials for {where} on {host} "
            f"(HTTP {status}: {details.message}); {AUTH_SETTINGS_HINT}"
        )
        return AuthenticationError(message, status=status, method=method, url=url)
    if status == 404:
        return NotFound(
            f"{where}: not found (HTTP 404: {details.message})",
            status=status,
            method=method,
            url=url,
        )
    if status >= 500:
        return ServerError(
            f"{where}: server error (HTTP {status}: {details.message})",
            status=status,
            method=method,
            url=url,
        )
    return ValidationFailed(
        f"{where}: rejected (HTTP {status}: {details.message})",
        field_errors=details.field_errors,
        status=status,
        method=method,
        url=url,
    )
