"""Precoro's documented rate limits, enforced per API token (docs/precoro-api.md, "Rate limits").

Limits: 1 request per second, no identical GET within a minute of the original, 1500
requests per hour and 3000 per day. A refused request gets a 429 whose JSON body names
the limiter and when to retry; clients (TAP/TGT) branch on `RateLimit-Type`, so the
strings and the check order matter more than anything else here.

All time comes from the `SandboxClock`, so tests can exhaust a window and jump past it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from precoro_client.settings import PrecoroSettings

from precoro_sandbox.clock import SandboxClock

Window = Literal["fixed", "rolling"]
WINDOWS: tuple[str, ...] = ("fixed", "rolling")

TYPE_DAILY = "Daily limiter"
"""`RateLimit-Type` of the daily quota (seen in TAP/TGT)."""
TYPE_HOURLY = "Hourly limiter"
"""`RateLimit-Type` of the hourly quota (seen in TGT)."""
TYPE_DUPLICATE_GET = "Route based limiter by minute"
"""`RateLimit-Type` of the duplicate-GET rule (H-429 example body)."""
TYPE_PER_SECOND = "Rate limiter by second"
"""Assumption: Precoro's string for the 1 request/second limit is not published."""

ERROR_ROUTE = "Too many requests for this endpoint"
"""`error` text of the duplicate-GET rule (H-429 example body)."""
ERROR_GENERIC = "Too many requests"
"""Assumption: `error` text of the other limiters (not published)."""

RETRY_AFTER_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
"""Format of `RateLimit-Retry-After` (H-429 example: "2025-12-16 09:00:49 UTC")."""

HOUR = 3600
DAY = 86400


def _client_default(name: str) -> Any:
    """The client's default for a limit setting: where the project keeps Precoro's limits."""
    for spec in fields(PrecoroSettings):
        if spec.name == name:
            return spec.default
    raise KeyError(f"PrecoroSettings has no field {name!r}")


PRECORO_PER_SECOND: float = _client_default("max_requests_per_second")
PRECORO_DUPLICATE_GET_SECONDS: float = _client_default("duplicate_get_interval_seconds")
PRECORO_PER_HOUR: int = _client_default("max_requests_per_hour")
PRECORO_PER_DAY: int = _client_default("max_requests_per_day")


@dataclass
class LimitConfig:
    """Which limits apply; `None` disables one. Defaults are Precoro's documented values."""

    per_second: float | None = PRECORO_PER_SECOND
    """Minimum spacing 1/per_second between accepted requests of a token."""
    duplicate_get_seconds: float | None = PRECORO_DUPLICATE_GET_SECONDS
    """An identical GET (same path + raw query) within this many seconds is refused."""
    per_hour: int | None = PRECORO_PER_HOUR
    per_day: int | None = PRECORO_PER_DAY
    window: Window = "fixed"
    """fixed = calendar hour / UTC day; rolling = the last 3600 s / 86400 s."""
    count_rejected: bool = True
    """Assumption (Precoro is silent): a request refused by the per-second or duplicate
    rule still counts toward the hour/day totals. Requests refused by the hour/day quota
    itself never count, or a client retrying at `RateLimit-Retry-After` could be locked
    out forever under a rolling window."""

    def __post_init__(self) -> None:
        """Reject values that would make the limiter meaningless."""
        _validate(self)

    @classmethod
    def off(cls) -> LimitConfig:
        """No limits at all (benchmarks, bulk tests)."""
        return cls(per_second=None, duplicate_get_seconds=None, per_hour=None, per_day=None)

    @classmethod
    def parse(cls, spec: str) -> LimitConfig:
        """Parse a CLI/env spec.

        `real` gives the documented limits, `off` none; otherwise a comma list of
        `key=value` overrides on top of the real limits, optionally led by `real` or
        `off` as the base, e.g. `off,per_hour=100` or `per_second=5,window=rolling`.
        `none` as a value disables that one limit.
        """
        parts = [p.strip() for p in spec.split(",")]
        if not spec.strip() or any(not p for p in parts):
            raise ValueError(f"empty part in rate-limit spec {spec!r}")
        base: dict[str, Any] = cls().to_dict()
        if parts[0].lower() in ("real", "off"):
            if parts[0].lower() == "off":
                base = cls.off().to_dict()
            parts = parts[1:]
        known = {f.name for f in fields(cls)}
        for part in parts:
            key, sep, raw = part.partition("=")
            key, raw = key.strip(), raw.strip()
            if not sep:
                raise ValueError(f"rate-limit spec part {part!r} is not key=value")
            if key not in known:
                raise ValueError(
                    f"unknown rate-limit setting {key!r} in {part!r}; known: {sorted(known)}"
                )
            base[key] = _parse_value(key, raw, part)
        return cls.from_dict(base)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the admin API."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LimitConfig:
        """Build from admin-API JSON; missing keys keep their defaults, unknown ones fail."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown rate-limit setting(s): {', '.join(unknown)}")
        for key, value in data.items():
            _check_type(key, value)
        return cls(**data)


def _check_type(key: str, value: Any) -> None:
    """Raise ValueError naming `key` when `value` has the wrong JSON type."""
    if key == "window":
        if value not in WINDOWS:
            raise ValueError(f"window must be one of {WINDOWS}, got {value!r}")
    elif key == "count_rejected":
        if not isinstance(value, bool):
            raise ValueError(f"count_rejected must be a boolean, got {value!r}")
    elif key in ("per_hour", "per_day"):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{key} must be an integer or null, got {value!r}")
    elif value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError(f"{key} must be a number or null, got {value!r}")


def _validate(config: LimitConfig) -> None:
    """Raise ValueError naming the first out-of-range setting."""
    for key in ("per_second", "duplicate_get_seconds", "per_hour", "per_day"):
        value = getattr(config, key)
        _check_type(key, value)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{key} must be positive (or none), got {value!r}")
    _check_type("window", config.window)
    _check_type("count_rejected", config.count_rejected)


def _parse_value(key: str, raw: str, part: str) -> Any:
    """Convert one spec value from text; errors name the offending part."""
    low = raw.lower()
    try:
        if key == "window":
            if low not in WINDOWS:
                raise ValueError
            return low
        if key == "count_rejected":
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if low in ("none", "off", "null"):
            return None
        if key in ("per_hour", "per_day"):
            return int(raw)
        return float(raw)
    except ValueError:
        raise ValueError(f"bad value in rate-limit spec part {part!r}") from None


@dataclass
class RateLimitRejection:
    """Why a request was refused and when the client may try again."""

    limit_type: str
    """`RateLimit-Type`."""
    retry_after: datetime
    """UTC, whole second; a request sent at or after this instant passes."""
    limit: int
    """`RateLimit-Limit`."""
    error: str = ERROR_GENERIC

    status = 429

    @property
    def retry_after_text(self) -> str:
        """`RateLimit-Retry-After` as Precoro writes it."""
        return self.retry_after.astimezone(UTC).strftime(RETRY_AFTER_FORMAT)

    def body(self) -> dict[str, Any]:
        """The 429 JSON body, keys exactly as in the H-429 example."""
        return {
            "error": self.error,
            "RateLimit-Type": self.limit_type,
            "RateLimit-Retry-After": self.retry_after_text,
            "RateLimit-Limit": self.limit,
        }


US = 1_000_000
"""Internal time unit: integer microseconds since the epoch, so spacing is exact."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(when: datetime) -> int:
    """Epoch microseconds of an aware datetime, exactly."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def _span(seconds: float) -> int:
    """A duration in whole microseconds."""
    return round(seconds * US)


def _ceil_second(micros: int) -> int:
    """Epoch seconds, rounded up, of an instant in microseconds."""
    return -(-micros // US)


class _Rolling:
    """Request counts in per-second buckets over a sliding window, bounded in memory.

    A request at time t is stored in bucket ceil(t) and expires at ceil(t) + window: at
    most one second conservative, and it keeps retry instants on whole seconds.
    """

    __slots__ = ("buckets", "total", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.buckets: deque[list[int]] = deque()
        self.total = 0

    def prune(self, now: int) -> None:
        """Drop buckets that have left the window at `now` (microseconds)."""
        while self.buckets and (self.buckets[0][0] + self.window) * US <= now:
            self.total -= self.buckets.popleft()[1]

    def add(self, now: int) -> None:
        """Count one request at `now` (microseconds)."""
        second = _ceil_second(now)
        if self.buckets and self.buckets[-1][0] >= second:
            self.buckets[-1][1] += 1
        else:
            self.buckets.append([second, 1])
        self.total += 1

    def free_at(self, limit: int) -> int:
        """When (microseconds) the count drops below `limit`; assumes total >= limit."""
        excess = self.total - limit + 1
        for second, count in self.buckets:
            excess -= count
            if excess <= 0:
                return (second + self.window) * US
        return (self.buckets[-1][0] + self.window) * US  # unreachable while total >= limit


@dataclass
class _TokenState:
    """Everything counted for one token (times in epoch microseconds)."""

    hour_period: int = -1
    hour_count: int = 0
    day_period: int = -1
    day_count: int = 0
    hour_rolling: _Rolling = field(default_factory=lambda: _Rolling(HOUR))
    day_rolling: _Rolling = field(default_factory=lambda: _Rolling(DAY))
    last_accepted: int | None = None


class RateLimiter:
    """Decides, per token, whether a request passes Precoro's limits, and records it."""

    def __init__(self, config: LimitConfig, clock: SandboxClock) -> None:
        """Enforce `config` using `clock` for all time."""
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _TokenState] = {}
        self._gets: dict[tuple[str, str], int] = {}
        """(token, target) -> time of the last accepted identical GET."""
        self._get_order: deque[tuple[int, str, str]] = deque()
        """Same keys in acceptance order, so expired ones are pruned in O(1) each."""

    def set_config(self, config: LimitConfig) -> None:
        """Swap the limits at run time; counts so far are kept."""
        with self._lock:
            self.config = config

    def reset(self) -> None:
        """Forget every count (a fresh day for every token)."""
        with self._lock:
            self._tokens.clear()
            self._gets.clear()
            self._get_order.clear()

    def usage(self, token: str) -> dict[str, int]:
        """Requests counted for `token` in the current hour and day windows."""
        with self._lock:
            state = self._tokens.get(token)
            if state is None:
                return {"hour": 0, "day": 0}
            self._roll(state, _micros(self._clock.now()))
            hour, day = self._counts(state)
            return {"hour": hour, "day": day}

    def check(self, token: str, method: str, target: str) -> RateLimitRejection | None:
        """Return a rejection, or None after recording the request as accepted.

        `target` is the raw path + '?' + raw query as received; two GETs are identical
        when their targets are equal byte for byte. Checks run daily, hourly, duplicate
        GET, per second, so a client whose day is spent learns that first.
        """
        with self._lock:
            cfg = self.config
            now = _micros(self._clock.now())
            state = self._tokens.get(token)
            if state is None:
                state = self._tokens[token] = _TokenState()
            self._roll(state, now)
            self._prune_gets(now, cfg)
            is_get = method.upper() == "GET"

            # (type, limit, error, instant it stops blocking), in Precoro's order.
            blocked: list[tuple[str, int, str, int]] = []
            hour, day = self._counts(state)
            if cfg.per_day is not None and day >= cfg.per_day:
                free = self._quota_free_at(state, now, cfg, daily=True)
                blocked.append((TYPE_DAILY, cfg.per_day, ERROR_GENERIC, free))
            if cfg.per_hour is not None and hour >= cfg.per_hour:
                free = self._quota_free_at(state, now, cfg, daily=False)
                blocked.append((TYPE_HOURLY, cfg.per_hour, ERROR_GENERIC, free))
            quota_blocked = bool(blocked)
            if is_get and cfg.duplicate_get_seconds is not None:
                previous = self._gets.get((token, target))
                if previous is not None:
                    free = previous + _span(cfg.duplicate_get_seconds)
                    if now < free:
                        blocked.append((TYPE_DUPLICATE_GET, 1, ERROR_ROUTE, free))
            if cfg.per_second is not None and state.last_accepted is not None:
                free = state.last_accepted + _span(1.0 / cfg.per_second)
                if now < free:
                    limit = max(1, math.floor(cfg.per_second))
                    blocked.append((TYPE_PER_SECOND, limit, ERROR_GENERIC, free))

            if blocked:
                if cfg.count_rejected and not quota_blocked:
                    self._count(state, now)
                limit_type, limit, error, _ = blocked[0]
                # Retry when *every* current block has lifted, so waiting suffices.
                retry = _ceil_second(max(b[3] for b in blocked))
                return RateLimitRejection(
                    limit_type=limit_type,
                    retry_after=datetime.fromtimestamp(retry, UTC),
                    limit=limit,
                    error=error,
                )

            self._count(state, now)
            state.last_accepted = now
            if is_get and cfg.duplicate_get_seconds is not None:
                self._gets[(token, target)] = now
                self._get_order.append((now, token, target))
            return None

    # -- internals (caller holds the lock; times in epoch microseconds) ---------------

    def _roll(self, state: _TokenState, now: int) -> None:
        """Start new fixed periods and expire old rolling buckets."""
        hour_period, day_period = now // (HOUR * US), now // (DAY * US)
        if state.hour_period != hour_period:
            state.hour_period, state.hour_count = hour_period, 0
        if state.day_period != day_period:
            state.day_period, state.day_count = day_period, 0
        state.hour_rolling.prune(now)
        state.day_rolling.prune(now)

    def _counts(self, state: _TokenState) -> tuple[int, int]:
        """(hour, day) counts under the configured window kind."""
        if self.config.window == "rolling":
            return state.hour_rolling.total, state.day_rolling.total
        return state.hour_count, state.day_count

    def _count(self, state: _TokenState, now: int) -> None:
        """Count one request in both window kinds (so the kind can change at run time)."""
        state.hour_count += 1
        state.day_count += 1
        state.hour_rolling.add(now)
        state.day_rolling.add(now)

    def _quota_free_at(self, state: _TokenState, now: int, cfg: LimitConfig, *, daily: bool) -> int:
        """When the exhausted hour/day quota admits a request again."""
        if cfg.window == "fixed":
            span = (DAY if daily else HOUR) * US
            return (now // span + 1) * span
        rolling = state.day_rolling if daily else state.hour_rolling
        limit = cfg.per_day if daily else cfg.per_hour
        assert limit is not None
        return rolling.free_at(limit)

    def _prune_gets(self, now: int, cfg: LimitConfig) -> None:
        """Forget duplicate-GET keys whose window has passed (bounds memory)."""
        if cfg.duplicate_get_seconds is None:
            self._gets.clear()
            self._get_order.clear()
            return
        horizon = now - _span(cfg.duplicate_get_seconds)
        order, gets = self._get_order, self._gets
        while order and order[0][0] <= horizon:
            at, token, target = order.popleft()
            if gets.get((token, target)) == at:
                del gets[(token, target)]


def describe(config: LimitConfig) -> str:
    """One-line human summary, e.g. for the server's start-up banner."""
    parts = [
        f"{key}={'none' if value is None else value}" for key, value in config.to_dict().items()
    ]
    return ",".join(parts)


def rejection_from_body(body: dict[str, Any]) -> RateLimitRejection:
    """Parse a 429 body back (tests and the client's own checks use it)."""
    retry = datetime.strptime(str(body["RateLimit-Retry-After"]), RETRY_AFTER_FORMAT)
    return RateLimitRejection(
        limit_type=str(body["RateLimit-Type"]),
        retry_after=retry.replace(tzinfo=UTC),
        limit=int(cast(int, body["RateLimit-Limit"])),
        error=str(body.get("error", ERROR_GENERIC)),
    )
