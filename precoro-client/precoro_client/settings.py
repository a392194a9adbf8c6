"""Connection and rate-governor settings, validated before any request is made.

Both the tap and the target build one `PrecoroSettings` from their Singer config with
`PrecoroSettings.from_config(config)`; its fields declare the settings once, and both
plugins' config schemas are derived from them (`singer_settings`). Every problem is
reported as `ConfigError` with one line that names the setting; the token value is
never part of a message or repr.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from singer_sdk import typing as th

from precoro_client import limits
from precoro_client.declared import (
    declare,
    declare_computed,
    declare_required,
    integer,
    number,
    parse_numbers,
)
from precoro_client.errors import ConfigError
from precoro_client.secret import Secret, register_secret

DEFAULT_API_URL = "https://api.precoro.com"
REGION_URLS: dict[str, str] = {
    "com": "https://api.precoro.com",
    "us": "https://api.precoro.us",
}
"""Regional API hosts (fact sheet §1: .com international, .us for app.precoro.us accounts)."""

LEDGER_FILENAME = "ledger.sqlite3"


def state_home() -> Path:
    """Per-user state folder shared by the plugins (ledger, target index and journal).

    `$XDG_STATE_HOME/precoro/`, else `~/.local/state/precoro/`.
    """
    configured = os.environ.get("XDG_STATE_HOME", "").strip()
    base = Path(configured) if configured else Path.home() / ".local" / "state"
    return base / "precoro"


def default_ledger_path() -> Path:
    """Per-user ledger location, in `state_home()`."""
    return state_home() / LEDGER_FILENAME


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_USERINFO = re.compile(r"^([^:/?#]*:?//)[^/?#]*@")


def shown_url(raw: str) -> str:
    """A URL as it may appear in a message: no user/password, no query or fragment.

    A mistyped URL can carry a password (`https://user:pw@host`) or a token in its
    query; neither may reach a log.
    """
    text = _USERINFO.sub(r"\1***@", raw)
    for mark in ("?", "#"):
        if mark in text:
            text = text.split(mark, 1)[0] + mark + "***"
    return text


def normalize_api_url(value: str) -> str:
    """Check an API base URL and return it without a trailing slash.

    `https://` anywhere; plain `http://` only for loopback hosts (the local sandbox),
    because the token travels in a header. No credentials, query or fragment.
    """
    raw = value.strip()
    shown = shown_url(raw)
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        msg = f"api_url {shown!r} is not a valid URL (bad host or port)"
        raise ConfigError("api_url", msg) from None
    if parts.scheme not in {"http", "https"} or not host:
        msg = f"api_url {shown!r} must be an absolute https:// URL such as {DEFAULT_API_URL}"
        raise ConfigError("api_url", msg)
    if parts.username or parts.password:
        msg = "api_url must not contain credentials; use auth_token and email"
        raise ConfigError("api_url", msg)
    if parts.query or parts.fragment:
        msg = f"api_url {shown!r} must not contain a query string or fragment"
        raise ConfigError("api_url", msg)
    if parts.scheme == "http" and not _is_loopback(host):
        msg = (
            f"api_url {shown!r} uses plain http; only https is allowed except for "
            "loopback hosts (127.0.0.0/8, ::1, localhost)"
        )
        raise ConfigError("api_url", msg)
    return raw.rstrip("/")


POSTGRES_SCHEMES = ("postgresql", "postgres")
"""URL schemes of `state_backend_url` that select the PostgreSQL backend."""


def normalize_state_backend_url(value: Any) -> Secret | None:
    """Check `state_backend_url`: None (the embedded SQLite ledger) or a PostgreSQL URL.

    The URL may carry a password, so it is kept as a `Secret` and the password is
    registered for scrubbing (a driver's error text can repeat parts of the URL).
    """
    if isinstance(value, Secret):
        value = value.reveal()
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        msg = f"state_backend_url must be a string, got {type(value).__name__}"
        raise ConfigError("state_backend_url", msg)
    raw = value.strip()
    shown = shown_url(raw)
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        msg = f"state_backend_url {shown!r} is not a valid URL (bad host or port)"
        raise ConfigError("state_backend_url", msg) from None
    if parts.scheme.lower() not in POSTGRES_SCHEMES:
        msg = (
            f"state_backend_url {shown!r} is not supported; use postgresql://user@host/db "
            "(or leave it empty for the local SQLite ledger at budget_ledger_path)"
        )
        raise ConfigError("state_backend_url", msg)
    passwords = [parts.password or ""]
    passwords += [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    for password in filter(None, passwords):
        register_secret(password)
        register_secret(unquote(password))
    return Secret(raw)


def shown_backend(settings: PrecoroSettings) -> str:
    """Where the ledger lives, as it may appear in a message (never a password)."""
    if settings.state_backend_url is None:
        return str(settings.budget_ledger_path)
    return shown_url(settings.state_backend_url.reveal())


def _header_problem(value: str) -> str | None:
    """Why `value` cannot travel as an HTTP header value (None if it can).

    `requests` encodes header values as Latin-1 and refuses control characters at
    send time; printable ASCII is what every proxy passes unchanged.
    """
    if value != value.strip() or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return "contains whitespace or control characters (copy/paste error?)"
    if not value.isascii() or not value.isprintable():
        return (
            "contains characters that cannot be sent in an HTTP header "
            "(only printable ASCII; copy/paste error?)"
        )
    return None


@dataclass(frozen=True)
class PrecoroSettings:
    """Everything needed to talk to one Precoro account within its limits.

    Each field is the setting's one declaration (`precoro_client.declared`): its
    default, range, description and secret flag, from which the plugins' config schema
    (`singer_settings.CONNECTION_PROPERTIES`) is derived. The token is held as a
    `Secret`; `repr()` shows `***`. Construct with keyword arguments or `from_config`;
    both validate.
    """

    auth_token: Secret = declare_required(
        kind=th.StringType,
        secret=True,
        description=(
            "Precoro API key (Configuration > Integrations > API Key), sent as "
            "X-AUTH-TOKEN. Shown once when generated; never logged."
        ),
    )
    email: str = declare_required(
        kind=th.StringType,
        description="E-mail of the Precoro user who owns the API key (sent as `email`).",
    )
    api_url: str = declare(
        DEFAULT_API_URL,
        kind=th.StringType,
        description=(
            "API base URL. https only; plain http is accepted for loopback hosts "
            "(127.0.0.1, ::1, localhost) such as the local sandbox."
        ),
    )
    region: str | None = declare(
        None,
        kind=th.StringType,
        choices=tuple(sorted(REGION_URLS)),
        description=(
            "Shortcut for api_url: `com` (https://api.precoro.com) or `us` "
            "(https://api.precoro.us, for accounts on app.precoro.us)."
        ),
    )
    connect_timeout_seconds: float = number(
        10.0,
        exclusive_minimum=0,
        maximum=600,
        description="Seconds to wait for a TCP/TLS connection before retrying.",
    )
    read_timeout_seconds: float = number(
        60.0,
        exclusive_minimum=0,
        maximum=600,
        description="Seconds to wait for response data before retrying (GET/PUT/PATCH).",
    )
    max_tries: int = integer(
        5,
        minimum=1,
        maximum=20,
        description="Attempts per call for transient failures (5xx, timeouts, drops).",
    )
    max_requests_per_second: float = number(
        limits.REQUESTS_PER_SECOND,
        exclusive_minimum=0,
        maximum=1000,
        description="Client-side spacing; Precoro answers 429 to faster traffic.",
    )
    max_requests_per_hour: int = integer(
        limits.REQUESTS_PER_HOUR,
        minimum=1,
        maximum=10_000_000,
        description=f"Rolling hourly budget (Precoro's limit: {limits.REQUESTS_PER_HOUR}/hour).",
    )
    max_requests_per_day: int = integer(
        limits.REQUESTS_PER_DAY,
        minimum=1,
        maximum=100_000_000,
        description=f"Rolling 24-hour budget (Precoro's limit: {limits.REQUESTS_PER_DAY}/day).",
    )
    duplicate_get_interval_seconds: float = number(
        limits.DUPLICATE_GET_SECONDS,
        minimum=0,
        maximum=3600,
        description=(
            "An identical GET (same URL and query) is not repeated within this, plus "
            "10%, counted from the end of the previous attempt."
        ),
    )
    budget_reserve: int = integer(
        0,
        minimum=0,
        maximum=100_000_000,
        description="Daily calls left unused for other integrations on the same key.",
    )
    max_wait_seconds: float = number(
        900.0,
        minimum=0,
        maximum=86_400,
        description=(
            "Longest pause for the hourly limit or a server 429; longer waits (and any "
            "daily wait) stop the run cleanly so the next run resumes."
        ),
    )
    budget_ledger_path: Path = declare_computed(
        default_ledger_path,
        kind=th.StringType,
        description=(
            "SQLite file recording calls, shared by every process using the same key "
            "(keyed by a hash, never the key). Default: "
            "$XDG_STATE_HOME/precoro/ledger.sqlite3 or ~/.local/state/precoro/ledger.sqlite3."
        ),
    )
    state_backend_url: Secret | None = declare(
        None,
        kind=th.StringType,
        secret=True,
        description=(
            "Where the budget ledger, the account write lock and the target's write "
            "journal, record versions and three-way bases live. Empty: SQLite files at "
            "budget_ledger_path (one machine). `postgresql://user:password@host/db`: a "
            "PostgreSQL database shared by every worker on every machine, so they spend "
            "one budget, take turns writing and see each other's writes (keyed by the "
            "same hash, never the key)."
        ),
    )
    """PostgreSQL URL holding the ledger, the lock and the target's account state; None: SQLite."""
    user_agent: str | None = declare(
        None,
        kind=th.StringType,
        description="User-Agent header to send (default: precoro-client/<version>).",
    )

    def __post_init__(self) -> None:
        """Validate and normalise every field; raises `ConfigError` (one line)."""
        token: Any = self.auth_token
        if isinstance(token, Secret):
            token = token.reveal()
        if token is None or (isinstance(token, str) and not token.strip()):
            msg = "auth_token is missing: set the Precoro API key (Configuration > Integrations)"
            raise ConfigError("auth_token", msg)
        if not isinstance(token, str):
            msg = f"auth_token must be a string, got {type(token).__name__}"
            raise ConfigError("auth_token", msg)
        problem = _header_problem(token)
        if problem is not None:
            raise ConfigError("auth_token", f"auth_token {problem}")
        object.__setattr__(self, "auth_token", Secret(token))

        email = self.email.strip() if isinstance(self.email, str) else ""
        if not email:
            msg = "email is missing: set the e-mail of the user who owns the API key"
            raise ConfigError("email", msg)
        if "@" not in email or any(ch.isspace() or ord(ch) < 32 for ch in email):
            msg = "email is not an e-mail address"
            raise ConfigError("email", msg)
        problem = _header_problem(email)
        if problem is not None:  # sent as the `email` header
            raise ConfigError("email", f"email {problem}")
        object.__setattr__(self, "email", email)

        object.__setattr__(self, "api_url", self._resolve_api_url())

        parse_numbers(self)
        if self.budget_reserve >= self.max_requests_per_day:
            msg = (
                f"budget_reserve ({self.budget_reserve}) must be smaller than "
                f"max_requests_per_day ({self.max_requests_per_day})"
            )
            raise ConfigError("budget_reserve", msg)

        ledger: Any = self.budget_ledger_path
        if ledger is None or (isinstance(ledger, str) and not ledger.strip()):
            ledger = default_ledger_path()
        if not isinstance(ledger, str | os.PathLike):
            msg = f"budget_ledger_path must be a file path, got {type(ledger).__name__}"
            raise ConfigError("budget_ledger_path", msg)
        path = Path(ledger).expanduser()
        if path.exists() and path.is_dir():
            msg = f"budget_ledger_path {str(path)!r} is a directory; give a file path"
            raise ConfigError("budget_ledger_path", msg)
        object.__setattr__(self, "budget_ledger_path", path)
        backend = normalize_state_backend_url(self.state_backend_url)
        object.__setattr__(self, "state_backend_url", backend)

        if self.user_agent is not None:
            if not isinstance(self.user_agent, str):
                msg = "user_agent must be a string"
                raise ConfigError("user_agent", msg)
            problem = _header_problem(self.user_agent.replace(" ", "_"))
            if problem is not None:  # sent as the User-Agent header
                raise ConfigError("user_agent", f"user_agent {problem}")

    def _resolve_api_url(self) -> str:
        region = self.region
        if region is not None and not isinstance(region, str):
            msg = "region must be a string: 'com' or 'us'"
            raise ConfigError("region", msg)
        region = region.strip().lower() if region else None
        object.__setattr__(self, "region", region)
        if region is not None and region not in REGION_URLS:
            known = ", ".join(sorted(REGION_URLS))
            msg = f"region {region!r} is unknown; use one of: {known}"
            raise ConfigError("region", msg)
        api_url = self.api_url
        if api_url is None or (isinstance(api_url, str) and not api_url.strip()):
            api_url = DEFAULT_API_URL
        if not isinstance(api_url, str):
            msg = "api_url must be a string such as https://api.precoro.com"
            raise ConfigError("api_url", msg)
        normalized = normalize_api_url(api_url)
        if region is None:
            return normalized
        # The schema default fills api_url, so the .com default yields to the region.
        if normalized == DEFAULT_API_URL:
            return REGION_URLS[region]
        if normalized != REGION_URLS[region]:
            msg = f"api_url {normalized!r} and region {region!r} disagree; set only one of them"
            raise ConfigError("region", msg)
        return normalized

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PrecoroSettings:
        """Build settings from a Singer config, ignoring keys that are not settings.

        Keys that are present but null fall back to the default.
        """
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in config.items() if k in names and v is not None}
        kwargs.setdefault("auth_token", None)
        kwargs.setdefault("email", "")
        return cls(**kwargs)

    # --- what the HTTP layers need --------------------------------------------------

    @property
    def timeout(self) -> tuple[float, float]:
        """`(connect, read)` timeouts in seconds, as `requests` takes them."""
        return (self.connect_timeout_seconds, self.read_timeout_seconds)

    def auth_headers(self) -> dict[str, str]:
        """The two headers Precoro authenticates with (`X-AUTH-TOKEN`, `email`)."""
        return {"X-AUTH-TOKEN": self.auth_token.reveal(), "email": self.email}

    @property
    def ledger_key(self) -> str:
        """sha256 of token + API URL: identifies one budget without storing the token."""
        material = f"{self.auth_token.reveal()}\n{self.api_url}".encode()
        return hashlib.sha256(material).hexdigest()

    def url(self, path: str) -> str:
        """Absolute URL for an API path such as `/suppliers` (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.api_url}/{path.lstrip('/')}"


def validate_settings(config: Mapping[str, Any]) -> PrecoroSettings:
    """Validate a Singer config before any request; raises `ConfigError` with one line."""
    return PrecoroSettings.from_config(config)
