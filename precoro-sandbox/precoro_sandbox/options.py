"""Start-up options and runtime settings of the sandbox.

`SandboxOptions` is fixed when a server starts (what data to generate, where to keep
it, which credentials open it). `Settings` are the knobs tests flip while the server
runs (ordering, pagination style, time zone...), through the admin API.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from precoro_client.registry import PAGE_SIZES

Order = Literal["id", "id_desc", "updated_asc", "updated_desc", "created", "shuffle"]
Pagination = Literal["has_next_page", "legacy"]
DateStyle = Literal["offset", "naive"]
ModifiedSince = Literal["lenient", "strict"]
UnknownFilters = Literal["ignore", "reject"]
FullyPaidError = Literal["already_paid", "not_exceed"]

ORDERS: tuple[str, ...] = ("id", "id_desc", "updated_asc", "updated_desc", "created", "shuffle")
"""List orders (Precoro's is undocumented): id ascending (default) or descending,
updateDate ascending or descending (ties by id), creation order, a stable shuffle."""
PAGINATIONS: tuple[str, ...] = ("has_next_page", "legacy")
DATE_STYLES: tuple[str, ...] = ("offset", "naive")
MODIFIED_SINCE: tuple[str, ...] = ("lenient", "strict")
"""`lenient` (default): `modifiedSince` takes `YYYY-MM-DDTHH:MM:SS`, the same with `Z` or an
offset (converted), or a bare date (midnight); no offset means the company zone. `strict`:
only `YYYY-MM-DDTHH:MM:SS` (the documented form), anything else 400."""
UNKNOWN_FILTERS: tuple[str, ...] = ("ignore", "reject")
"""A list query parameter that is neither a declared filter nor a list field of the
entity: `ignore` it (default) or `reject` it with 400 naming the parameter."""
FULLY_PAID_ERRORS: tuple[str, ...] = ("already_paid", "not_exceed")
"""The `sumPaid` error for a payment on a fully paid invoice: "The Invoice is already fully
paid." (default) or "The amount must be greater than 0 and not exceed 0" (both are seen by
production code)."""


@dataclass
class SandboxOptions:
    """Everything a sandbox needs to start; defaults match `precoro-sandbox serve`."""

    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port (what tests want)."""
    seed: int = 42
    scale: int = 1000
    """Number of suppliers per company; other collections are proportional."""
    counts: dict[str, int] = field(default_factory=dict)
    """Per-collection record counts overriding the proportional defaults."""
    token: str = "sandbox-token"
    email: str = "sandbox@example.com"
    companies: int = 1
    """Companies to generate; company k > 1 gets token `<token>-k` and its own data."""
    admin_token: str = "sandbox-admin"
    limits: str | dict[str, Any] = "real"
    """A LimitConfig spec string (`real`, `off`, `per_second=5,...`) or its dict."""
    faults_seed: int = 0
    db: str | None = None
    """SQLite file to keep; None uses a temporary file deleted on close."""
    clock_start: datetime | None = None
    """Initial sandbox time (aware); None means the real current time."""
    clock_frozen: bool = False
    anchor: datetime | None = None
    """Generated dates lie before this instant; default: the clock start's UTC midnight."""
    webhook_retry_delays: tuple[float, ...] = (0.5, 2.0, 5.0)
    webhook_timeout: float = 5.0
    timezone: str = "UTC"
    order: Order = "id"
    pagination: Pagination = "has_next_page"
    page_size: int = 20
    date_style: DateStyle = "offset"
    validation_status: int = 400
    patch_any_field: bool = False
    modified_since: ModifiedSince = "lenient"
    unknown_filters: UnknownFilters = "ignore"
    unique_supplier_code: bool = False
    fully_paid_error: FullyPaidError = "already_paid"
    numeric_external_ids: bool = False
    max_url_bytes: int = 8192
    """Longer request targets (path + query) get 414, as nginx's default 8 KB
    request-line buffer answers."""
    tls: bool = False
    """Serve HTTPS with a certificate made at start (`tls.py`); the URL becomes https."""
    tls_dir: str | None = None
    """Where the CA and server PEM files go when `tls` is on (default: a temporary
    directory removed on close)."""

    def settings(self) -> Settings:
        """The runtime settings this server starts with."""
        return Settings(
            order=self.order,
            pagination=self.pagination,
            page_size=self.page_size,
            timezone=self.timezone,
            date_style=self.date_style,
            validation_status=self.validation_status,
            patch_any_field=self.patch_any_field,
            modified_since=self.modified_since,
            unknown_filters=self.unknown_filters,
            unique_supplier_code=self.unique_supplier_code,
            fully_paid_error=self.fully_paid_error,
            numeric_external_ids=self.numeric_external_ids,
        )


@dataclass
class Settings:
    """Switches where the sources are silent (docs/precoro-api.md); changeable at runtime."""

    order: str = "id"
    pagination: str = "has_next_page"
    page_size: int = 20
    timezone: str = "UTC"
    date_style: str = "offset"
    validation_status: int = 400
    patch_any_field: bool = False
    modified_since: str = "lenient"
    unknown_filters: str = "ignore"
    unique_supplier_code: bool = False
    """Refuse a supplier whose `uniqueCode` another supplier of the company has (400)."""
    fully_paid_error: str = "already_paid"
    numeric_external_ids: bool = False
    """Serve an all-digit `externalId` (no leading zero) as a JSON number: production
    clients accept text or a number, and which Precoro sends is not known."""

    def __post_init__(self) -> None:
        """Validate eagerly so a bad admin call fails loudly, not a later request."""
        self._lock = threading.Lock()
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first invalid setting."""
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}")
        if self.pagination not in PAGINATIONS:
            raise ValueError(f"pagination must be one of {PAGINATIONS}")
        if self.page_size not in PAGE_SIZES:
            raise ValueError(f"page_size must be one of {PAGE_SIZES}")
        if self.date_style not in DATE_STYLES:
            raise ValueError(f"date_style must be one of {DATE_STYLES}")
        if self.modified_since not in MODIFIED_SINCE:
            raise ValueError(f"modified_since must be one of {MODIFIED_SINCE}")
        if self.unknown_filters not in UNKNOWN_FILTERS:
            raise ValueError(f"unknown_filters must be one of {UNKNOWN_FILTERS}")
        if self.fully_paid_error not in FULLY_PAID_ERRORS:
            raise ValueError(f"fully_paid_error must be one of {FULLY_PAID_ERRORS}")
        for flag in ("patch_any_field", "unique_supplier_code", "numeric_external_ids"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false")
        if not 400 <= int(self.validation_status) <= 599:
            raise ValueError("validation_status must be an HTTP error status")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc

    @property
    def tz(self) -> ZoneInfo:
        """The company time zone."""
        return ZoneInfo(self.timezone)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy for the admin API."""
        return asdict(self)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update atomically (all or nothing)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        with self._lock:
            candidate = Settings(**{**self.to_dict(), **changes})
            for name in names:
                setattr(self, name, getattr(candidate, name))


def parse_switches(spec: str) -> dict[str, Any]:
    """`key=value,...` (e.g. the `PRECORO_SANDBOX_SETTINGS` variable) as Settings changes.

    Values are read by each setting's type (booleans: true/false/1/0); an unknown key or
    a bad value raises ValueError naming it.
    """
    types = {f.name: f.type for f in fields(Settings)}
    changes: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, raw = part.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or key not in types:
            raise ValueError(f"bad sandbox setting {part!r}; known: {sorted(types)}")
        kind = types[key]
        if kind == "bool":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{key} must be true or false, got {raw!r}")
            changes[key] = raw.lower() in ("true", "1")
        elif kind == "int":
            changes[key] = int(raw)
        else:
            changes[key] = raw
    Settings(**changes)  # validates
    return changes
