"""`PrecoroClient`: authenticated, governed, retrying HTTP calls to the Precoro API.

Every attempt goes through the `RateGovernor` first. Retries: GET/PUT/PATCH are
retried on 5xx, timeouts, dropped connections and (GET) truncated or invalid JSON,
with exponential backoff and full jitter from the `backoff` library, up to
`max_tries` attempts. A retried GET is an identical GET, so the governor also
holds it for `duplicate_get_interval_seconds` plus a margin, counted from the end of
the failed attempt: the retry waits the window out rather than meeting a 429. A POST
is never re-sent once it may have reached the server: it raises `WriteOutcomeUnknown`
instead.

The `backoff` decorators are not used: they sleep with `time.sleep`, which tests
cannot fake and which would bypass the governor; its wait generator and jitter are
driven here instead.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import backoff
import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from precoro_client import __version__, metrics
from precoro_client.errors import (
    InvalidResponse,
    PrecoroError,
    RateLimited,
    RetriableError,
    TransportError,
    WriteOutcomeUnknown,
)
from precoro_client.governor import RateGovernor
from precoro_client.registry import PAGE_SIZES
from precoro_client.responses import classify_response, server_date
from precoro_client.settings import DEFAULT_API_URL, PrecoroSettings, shown_url

logger = logging.getLogger("precoro_client")

USER_AGENT = f"precoro-client/{__version__}"
MAX_BACKOFF_SECONDS = 60.0

Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None
FormPairs = Sequence[tuple[str, Any]] | Mapping[str, Any]
Jitter = Callable[[float], float]


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint."""

    number: int
    records: list[dict[str, Any]]
    has_next: bool
    body: Any


def _pairs(params: Params) -> list[tuple[str, Any]]:
    if params is None:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str, Any]] = []
    for key, value in items:
        if isinstance(value, list | tuple):
            pairs.extend((key, item) for item in value)
        else:
            pairs.append((key, value))
    return pairs


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request provably did not reach the server (safe to re-send a POST)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        return isinstance(inner, NewConnectionError)
    return False


def unreachable(exc: requests.RequestException, api_url: str) -> str | None:
    """A message naming `api_url` when the host is refused or unknown; else None.

    These are setting problems far more often than outages (a typo, a local sandbox not
    started, a region's host), so the message says which setting and how to check it.
    Only the host part of the URL is shown (no path, query or credentials).
    """
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)
    if not isinstance(inner, NewConnectionError):
        return None
    parts = urlsplit(api_url)
    where = shown_url(f"{parts.scheme}://{parts.netloc}")
    if isinstance(inner, NameResolutionError) or isinstance(inner.__cause__, socket.gaierror):
        problem = f"the host name {parts.hostname!r} does not resolve (DNS)"
    elif isinstance(inner.__cause__, ConnectionRefusedError):
        problem = "the connection was refused (nothing listens on that host and port)"
    else:
        return None
    return (
        f"cannot connect to Precoro at {where}: {problem}. Check the api_url setting "
        f"(default {DEFAULT_API_URL}; a region or sandbox has its own), and that this "
        f"machine reaches it: curl -sS -o /dev/null -w '%{{http_code}}\\n' {where}/"
    )


def has_next_page(body: Any, records: list[Any], page_size: int) -> bool:
    """Read `meta.pagination`: `has_next_page`, else legacy `current_page`/`total_pages`.

    Without either, a full page is taken to mean "maybe more" (costs at most one
    extra call); an empty page always ends the listing.
    """
    if not records:
        return False
    meta = body.get("meta") if isinstance(body, dict) else None
    pagination = meta.get("pagination") if isinstance(meta, dict) else None
    if isinstance(pagination, dict):
        flag = pagination.get("has_next_page")
        if isinstance(flag, bool):
            return flag
        current, total = pagination.get("current_page"), pagination.get("total_pages")
        if isinstance(current, int) and isinstance(total, int):
            return current < total
    return len(records) >= page_size


class PrecoroClient:
    """Talks to one Precoro account; see the module docstring for the retry rules."""

    def __init__(
        self,
        settings: PrecoroSettings,
        governor: RateGovernor | None = None,
        session: requests.Session | None = None,
        *,
        jitter: Jitter = backoff.full_jitter,
    ) -> None:
        """Use `governor` (shared with other clients/streams) or open one from settings.

        Sleeping and the clock come from the governor, so one fake drives both in tests.
        """
        self.settings = settings
        self.governor = governor or RateGovernor(settings)
        self._owns_governor = governor is None
        self.session = session or requests.Session()
        self._jitter = jitter
        self.calls: Counter[str] = Counter()
        """HTTP attempts sent by this client, by method (retries included)."""
        self.last_server_date: datetime | None = None
        """`Date` header of the last response (aware UTC); the tap's bookmark clock."""
        self._server_date_seen = 0.0
        """`governor.now()` when `last_server_date` arrived."""

    def close(self) -> None:
        """Close the session (and the governor when this client opened it)."""
        if self.call_count:
            self.report_budget()
        self.session.close()
        if self._owns_governor:
            self.governor.close()

    def __enter__(self) -> PrecoroClient:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close on exit."""
        self.close()

    def server_now(self) -> datetime:
        """Precoro's clock now: the last `Date` header plus the time since it arrived.

        Falls back to the local clock before the first response. Whole seconds, so
        it may lag Precoro by up to one second.
        """
        if self.last_server_date is None:
            return self._now()
        elapsed = max(0.0, self.governor.now() - self._server_date_seen)
        return self.last_server_date + timedelta(seconds=elapsed)

    def report_budget(self) -> None:
        """Emit the budget METRIC points (never fails the run: metrics are best effort)."""
        try:
            used, left, next_reset = self.governor.budget()
        except PrecoroError as exc:
            logger.debug("budget metrics skipped: %s", exc.message)
            return
        metrics.budget(used, left, next_reset)

    @property
    def call_count(self) -> int:
        """Total HTTP attempts sent by this client."""
        return sum(self.calls.values())

    # --- the one request path -----------------------------------------------------------

    def _url(self, path: str, params: Params) -> str:
        url = self.settings.url(path)
        if not url.startswith(self.settings.api_url + "/") and url != self.settings.api_url:
            msg = f"refusing to send credentials outside {self.settings.api_url}: {url}"
            raise ValueError(msg)
        prepared = requests.Request("GET", url, params=_pairs(params)).prepare()
        return prepared.url or url

    def _headers(self) -> dict[str, str]:
        return {
            **self.settings.auth_headers(),
            "Accept": "application/json",
            "User-Agent": self.settings.user_agent or USER_AGENT,
        }

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.governor.now(), tz=UTC)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        data: FormPairs | None = None,
        parse_json: bool = False,
    ) -> tuple[requests.Response, Any]:
        """Send one logical call with governing and retries; returns (response, JSON or None).

        Raises the `precoro_client.errors` exceptions described in the module docstring.
        """
        method = method.upper()
        url = self._url(path, params)
        body = _pairs(data) if data is not None else None
        waits = backoff.expo(base=2, factor=1, max_value=MAX_BACKOFF_SECONDS)
        next(waits)  # prime the generator, as backoff's own decorators do
        max_tries = self.settings.max_tries
        attempt = 0
        while True:
            attempt += 1
            self.governor.acquire(method, url)
            try:
                return self._attempt(method, url, body, parse_json=parse_json)
            except RateLimited as exc:
                # A 429 was refused before processing, so even a POST may be re-sent.
                # record_429 raises BudgetExhausted for long waits; otherwise the next
                # acquire() sleeps exactly until the recorded block lifts.
                delay = max(1.0, float(next(waits) or 1.0))
                self.governor.record_429(exc, method, url, fallback_seconds=delay)
                if attempt >= max_tries:
                    raise
            except RetriableError as exc:
                never_sent = isinstance(exc, TransportError) and exc.never_sent
                if method == "POST" and not never_sent:
                    msg = (
                        f"POST {path}: outcome unknown after {exc.message}; not retried - "
                        "look the record up before writing it again"
                    )
                    raise WriteOutcomeUnknown(msg, cause=exc, method=method, url=url) from exc
                if attempt >= max_tries:
                    raise
                delay = self._jitter(float(next(waits) or 0.0))
                logger.info(
                    "%s %s failed (%s); try %d of %d in %.1f s",
                    method,
                    path,
                    exc.message,
                    attempt + 1,
                    max_tries,
                    delay,
                )
                self.governor.sleep(delay)

    def _attempt(
        self, method: str, url: str, body: list[tuple[str, Any]] | None, *, parse_json: bool
    ) -> tuple[requests.Response, Any]:
        answered = True
        try:
            return self._send(method, url, body, parse_json=parse_json)
        except TransportError:
            answered = False  # no answer: the request may still be on its way
            raise
        finally:
            # The duplicate-GET window restarts now; an answer also tells the spacing.
            self.governor.settle(method, url, answered=answered)

    def _send(
        self, method: str, url: str, body: list[tuple[str, Any]] | None, *, parse_json: bool
    ) -> tuple[requests.Response, Any]:
        self.calls[method] += 1
        if self.call_count % metrics.BUDGET_EVERY == 0:
            self.report_budget()
        started = time.perf_counter()
        path = urlsplit(url).path.removeprefix(urlsplit(self.settings.api_url).path)
        try:
            response = self.session.request(
                method,
                url,
                data=body,
                headers=self._headers(),
                timeout=self.settings.timeout,
                allow_redirects=False,
            )
            content = response.content  # reads the body now, so truncation raises here
        except requests.RequestException as exc:
            metrics.http_request(method, path, 0, time.perf_counter() - started)
            hint = unreachable(exc, self.settings.api_url)
            raise TransportError(
                hint or f"{type(exc).__name__}: {exc}",
                method=method,
                url=url,
                never_sent=_never_sent(exc),
                setting="api_url" if hint else None,
            ) from exc
        metrics.http_request(method, path, response.status_code, time.perf_counter() - started)
        stamp = server_date(response)
        if stamp is not None:
            self.last_server_date = stamp
            self._server_date_seen = self.governor.now()
        logger.debug("%s %s -> HTTP %s", method, response.url, response.status_code)
        problem = classify_response(response, now=self._now())
        if problem is not None:
            raise problem
        if not parse_json:
            return response, None
        if not content.strip():
            if method == "GET":
                raise InvalidResponse("empty body where JSON was expected", method=method, url=url)
            return response, {}
        try:
            return response, json.loads(content)
        except ValueError as exc:
            raise InvalidResponse(
                f"invalid or truncated JSON ({len(content)} bytes): {exc}",
                status=response.status_code,
                method=method,
                url=url,
            ) from exc

    # --- convenience methods --------------------------------------------------------------

    def get(self, path: str, params: Params = None) -> requests.Response:
        """GET `path`; the response after status checks (body not parsed)."""
        return self.request("GET", path, params=params)[0]

    def get_json(self, path: str, params: Params = None) -> Any:
        """GET `path` and parse JSON (invalid/truncated JSON is retried)."""
        return self.request("GET", path, params=params, parse_json=True)[1]

    def post_form(self, path: str, pairs: FormPairs) -> Any:
        """POST form fields (e.g. `forms.encode_record` output); parsed JSON reply."""
        return self.request("POST", path, data=pairs, parse_json=True)[1]

    def put_form(self, path: str, pairs: FormPairs) -> Any:
        """PUT form fields (idempotent, so retried); parsed JSON reply."""
        return self.request("PUT", path, data=pairs, parse_json=True)[1]

    def patch_form(self, path: str, pairs: FormPairs) -> Any:
        """PATCH form fields (idempotent, so retried); parsed JSON reply."""
        return self.request("PATCH", path, data=pairs, parse_json=True)[1]

    def iter_pages(
        self, path: str, params: Params = None, page_size: int = 100, *, start_page: int = 1
    ) -> Iterator[Page]:
        """Yield the pages of a list endpoint (`page` 1-based, `per_page` in PAGE_SIZES)."""
        if page_size not in PAGE_SIZES:
            allowed = ", ".join(str(size) for size in PAGE_SIZES)
            msg = f"page_size {page_size} is not accepted by Precoro; use one of {allowed}"
            raise ValueError(msg)
        if start_page < 1:
            msg = "start_page is 1-based"
            raise ValueError(msg)
        base = [(k, v) for k, v in _pairs(params) if k not in ("page", "per_page")]
        number = start_page
        while True:
            body = self.get_json(path, [*base, ("page", number), ("per_page", page_size)])
            if isinstance(body, list):
                records = body
                more = False
            elif isinstance(body, dict) and isinstance(body.get("data"), list):
                records = body["data"]
                more = has_next_page(body, records, page_size)
            else:
                msg = f"GET {path}: expected a list envelope with 'data', got {type(body).__name__}"
                raise InvalidResponse(msg, method="GET", url=self.settings.url(path))
            yield Page(number, records, more, body)
            if not more:
                return
            number += 1

    def iter_records(
        self, path: str, params: Params = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Every record of every page."""
        for page in self.iter_pages(path, params, page_size):
            yield from page.records
