"""RateLimiter and LimitConfig: Precoro's four 429 kinds, windows, parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from precoro_sandbox.clock import SandboxClock
from precoro_sandbox.limits import (
    LimitConfig,
    RateLimiter,
    RateLimitRejection,
    rejection_from_body,
)

START = datetime(2025, 12, 16, 9, 0, 0, 400000, tzinfo=UTC)
RETRY_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
BODY_KEYS = ["error", "RateLimit-Type", "RateLimit-Retry-After", "RateLimit-Limit"]


def make(config: LimitConfig | None = None, start: datetime = START):
    clock = SandboxClock(start, frozen=True)
    return clock, RateLimiter(config or LimitConfig(), clock)


def quota_only(**kwargs) -> LimitConfig:
    """Only hour/day quotas, so tests can send back-to-back requests."""
    base = {"per_second": None, "duplicate_get_seconds": None, "per_hour": None}
    base.update(kwargs)
    return LimitConfig(**{"per_day": None, **base})


def rejected(result: RateLimitRejection | None) -> RateLimitRejection:
    assert result is not None, "expected a 429"
    body = result.body()
    assert list(body) == BODY_KEYS
    assert RETRY_RE.match(body["RateLimit-Retry-After"])
    return result


# -- the example from Precoro's help centre ---------------------------------------------


def test_duplicate_get_reproduces_the_published_example_body():
    clock, limiter = make(start=datetime(2025, 12, 16, 8, 59, 49, tzinfo=UTC))
    assert limiter.check("t", "GET", "/purchaseorders?page=1") is None
    clock.advance(21)
    result = rejected(limiter.check("t", "GET", "/purchaseorders?page=1"))
    assert result.body() == {
        "error": "Too many requests for this endpoint",
        "RateLimit-Type": "Route based limiter by minute",
        "RateLimit-Retry-After": "2025-12-16 09:00:49 UTC",
        "RateLimit-Limit": 1,
    }
    assert result.status == 429
    assert rejection_from_body(result.body()) == result


# -- per second ------------------------------------------------------------------------


def test_per_second_rejection_and_rounded_retry():
    clock, limiter = make()
    assert limiter.check("t", "GET", "/suppliers") is None
    result = rejected(limiter.check("t", "GET", "/items"))
    assert result.limit_type == "Rate limiter by second"
    assert result.body()["error"] == "Too many requests"
    assert result.limit == 1
    # accepted at 09:00:00.4, spacing 1 s -> 09:00:01.4, rounded up to the whole second
    assert result.body()["RateLimit-Retry-After"] == "2025-12-16 09:00:02 UTC"
    clock.set(result.retry_after)
    assert limiter.check("t", "GET", "/items") is None


def test_per_second_spacing_is_exact_before_rounding():
    clock, limiter = make()
    assert limiter.check("t", "POST", "/suppliers") is None
    clock.advance(0.999)
    assert rejected(limiter.check("t", "POST", "/suppliers")).limit_type == (
        "Rate limiter by second"
    )
    clock.advance(0.001)
    assert limiter.check("t", "POST", "/suppliers") is None


def test_retry_after_on_a_whole_second_is_not_pushed_further():
    clock, limiter = make(start=datetime(2025, 12, 16, 9, 0, 0, tzinfo=UTC))
    assert limiter.check("t", "GET", "/a") is None
    result = rejected(limiter.check("t", "GET", "/b"))
    assert result.retry_after == datetime(2025, 12, 16, 9, 0, 1, tzinfo=UTC)
    clock.set(result.retry_after)
    assert limiter.check("t", "GET", "/b") is None


def test_faster_per_second_setting():
    clock, limiter = make(LimitConfig(per_second=5, duplicate_get_seconds=None))
    assert limiter.check("t", "GET", "/a") is None
    clock.advance(0.1)
    result = rejected(limiter.check("t", "GET", "/a"))
    assert result.limit == 5
    clock.advance(0.1)
    assert limiter.check("t", "GET", "/a") is None


# -- duplicate GET ---------------------------------------------------------------------


def test_duplicate_get_only_same_target_and_only_get():
    clock, limiter = make()
    assert limiter.check("t", "GET", "/suppliers?page=1") is None
    clock.advance(2)
    result = rejected(limiter.check("t", "GET", "/suppliers?page=1"))
    assert result.limit_type == "Route based limiter by minute"
    assert result.limit == 1
    # other query, other parameter order: different targets
    assert limiter.check("t", "GET", "/suppliers?page=2") is None
    clock.advance(1)
    assert limiter.check("t", "GET", "/suppliers?page=1&x=2") is None
    clock.advance(1)
    assert limiter.check("t", "GET", "/suppliers?x=2&page=1") is None
    # writes are never duplicates
    clock.advance(1)
    assert limiter.check("t", "POST", "/suppliers") is None
    clock.advance(1)
    assert limiter.check("t", "POST", "/suppliers") is None
    clock.advance(1)
    assert limiter.check("t", "PUT", "/suppliers/1") is None
    clock.advance(1)
    assert limiter.check("t", "PUT", "/suppliers/1") is None


def test_duplicate_get_retry_after_is_original_plus_window():
    clock, limiter = make()
    assert limiter.check("t", "GET", "/items?page=1") is None
    clock.advance(30)
    result = rejected(limiter.check("t", "GET", "/items?page=1"))
    # original 09:00:00.4 + 60 s = 09:01:00.4 -> 09:01:01
    assert result.body()["RateLimit-Retry-After"] == "2025-12-16 09:01:01 UTC"
    clock.set(result.retry_after - timedelta(seconds=1))
    assert limiter.check("t", "GET", "/items?page=1") is not None
    clock.set(result.retry_after)
    assert limiter.check("t", "GET", "/items?page=1") is None


def test_rejected_get_does_not_start_a_duplicate_window():
    clock, limiter = make()
    assert limiter.check("t", "GET", "/a") is None
    assert rejected(limiter.check("t", "GET", "/b")).limit_type == "Rate limiter by second"
    clock.advance(1)
    assert limiter.check("t", "GET", "/b") is None


def test_duplicate_window_setting():
    clock, limiter = make(LimitConfig(per_second=None, duplicate_get_seconds=2))
    assert limiter.check("t", "GET", "/a") is None
    assert limiter.check("t", "GET", "/a") is not None
    clock.advance(2)
    assert limiter.check("t", "GET", "/a") is None


def test_duplicate_get_keys_are_pruned():
    clock, limiter = make(LimitConfig(per_second=None))
    for page in range(100):
        assert limiter.check("t", "GET", f"/suppliers?page={page}") is None
    assert len(limiter._gets) == 100
    clock.advance(61)
    assert limiter.check("t", "GET", "/suppliers?page=0") is None
    assert len(limiter._gets) == 1
    assert len(limiter._get_order) == 1


# -- hour / day quotas -----------------------------------------------------------------


def test_hourly_fixed_window():
    clock, limiter = make(quota_only(per_hour=3))
    for _ in range(3):
        assert limiter.check("t", "GET", "/a") is None
    result = rejected(limiter.check("t", "GET", "/a"))
    assert result.limit_type == "Hourly limiter"
    assert result.limit == 3
    assert result.body()["error"] == "Too many requests"
    assert result.body()["RateLimit-Retry-After"] == "2025-12-16 10:00:00 UTC"
    assert limiter.usage("t") == {"hour": 3, "day": 3}
    clock.set(result.retry_after)
    assert limiter.check("t", "GET", "/a") is None
    assert limiter.usage("t") == {"hour": 1, "day": 4}


def test_daily_fixed_window_resets_at_utc_midnight():
    clock, limiter = make(quota_only(per_day=2))
    assert limiter.check("t", "GET", "/a") is None
    clock.advance(7200)
    assert limiter.check("t", "GET", "/a") is None
    result = rejected(limiter.check("t", "GET", "/a"))
    assert result.limit_type == "Daily limiter"
    assert result.limit == 2
    assert result.body()["RateLimit-Retry-After"] == "2025-12-17 00:00:00 UTC"
    clock.set(datetime(2025, 12, 16, 23, 59, 59, 999000, tzinfo=UTC))
    assert limiter.check("t", "GET", "/a") is not None
    clock.set(result.retry_after)
    assert limiter.check("t", "GET", "/a") is None


def test_daily_is_reported_before_hourly():
    _, limiter = make(quota_only(per_hour=2, per_day=2))
    assert limiter.check("t", "GET", "/a") is None
    assert limiter.check("t", "GET", "/a") is None
    assert rejected(limiter.check("t", "GET", "/a")).limit_type == "Daily limiter"

    _, limiter = make(quota_only(per_hour=2, per_day=5))
    assert limiter.check("t", "GET", "/a") is None
    assert limiter.check("t", "GET", "/a") is None
    assert rejected(limiter.check("t", "GET", "/a")).limit_type == "Hourly limiter"


def test_quota_is_reported_before_duplicate_and_per_second():
    _, limiter = make(LimitConfig(per_hour=1))
    assert limiter.check("t", "GET", "/a") is None
    result = rejected(limiter.check("t", "GET", "/a"))
    assert result.limit_type == "Hourly limiter"


def test_retry_after_covers_every_active_block():
    start = datetime(2025, 12, 16, 9, 59, 30, tzinfo=UTC)
    clock, limiter = make(LimitConfig(per_second=None, per_hour=2), start=start)
    assert limiter.check("t", "GET", "/a") is None
    assert limiter.check("t", "GET", "/b") is None
    result = rejected(limiter.check("t", "GET", "/a"))
    assert result.limit_type == "Hourly limiter"
    # the hour turns at 10:00:00 but the duplicate GET of /a is blocked until 10:00:30
    assert result.body()["RateLimit-Retry-After"] == "2025-12-16 10:00:30 UTC"
    clock.set(result.retry_after)
    assert limiter.check("t", "GET", "/a") is None


def test_rolling_hour_window():
    clock, limiter = make(quota_only(per_hour=2, window="rolling"))
    assert limiter.check("t", "GET", "/a") is None  # 09:00:00.4
    clock.advance(1000)
    assert limiter.check("t", "GET", "/a") is None
    clock.advance(1000)
    result = rejected(limiter.check("t", "GET", "/a"))
    assert result.limit_type == "Hourly limiter"
    # the first request leaves the window one hour after it (rounded up): 10:00:01
    assert result.body()["RateLimit-Retry-After"] == "2025-12-16 10:00:01 UTC"
    clock.set(datetime(2025, 12, 16, 10, 0, 0, 500000, tzinfo=UTC))
    assert limiter.check("t", "GET", "/a") is not None  # a fixed window would pass here
    clock.set(result.retry_after)
    assert limiter.check("t", "GET", "/a") is None
    assert limiter.usage("t") == {"hour": 2, "day": 3}


def test_fixed_hour_window_passes_where_rolling_refuses():
    clock, limiter = make(quota_only(per_hour=2))
    assert limiter.check("t", "GET", "/a") is None
    clock.advance(1000)
    assert limiter.check("t", "GET", "/a") is None
    clock.set(datetime(2025, 12, 16, 10, 0, 0, 500000, tzinfo=UTC))
    assert limiter.check("t", "GET", "/a") is None


def test_rolling_day_window():
    clock, limiter = make(quota_only(per_day=2, window="rolling"))
    assert limiter.check("t", "GET", "/a") is None
    clock.advance(20 * 3600)  # 05:00 next day: a fixed window would have reset
    assert limiter.check("t", "GET", "/a") is None
    result = rejected(limiter.check("t", "GET", "/a"))
    assert result.limit_type == "Daily limiter"
    assert result.body()["RateLimit-Retry-After"] == "2025-12-17 09:00:01 UTC"
    clock.set(result.retry_after)
    assert limiter.check("t", "GET", "/a") is None


def test_window_kind_can_change_at_run_time():
    clock, limiter = make(quota_only(per_hour=2))
    assert limiter.check("t", "GET", "/a") is None
    clock.advance(3000)  # 09:50
    assert limiter.check("t", "GET", "/a") is None
    clock.advance(900)  # 10:05: new fixed hour, but both still in the last 3600 s
    limiter.set_config(quota_only(per_hour=2, window="rolling"))
    assert limiter.usage("t")["hour"] == 1
    assert limiter.check("t", "GET", "/a") is None
    assert rejected(limiter.check("t", "GET", "/a")).limit_type == "Hourly limiter"


# -- counting rules --------------------------------------------------------------------


def test_rejected_requests_count_toward_quotas_by_default():
    clock, limiter = make(LimitConfig(per_hour=3, duplicate_get_seconds=None))
    assert limiter.check("t", "GET", "/a") is None
    assert limiter.check("t", "GET", "/a") is not None  # per second, counted
    assert limiter.check("t", "GET", "/a") is not None  # per second, counted
    assert limiter.usage("t") == {"hour": 3, "day": 3}
    clock.advance(1)
    assert rejected(limiter.check("t", "GET", "/a")).limit_type == "Hourly limiter"
    # a request refused by the quota itself is not counted
    assert limiter.usage("t") == {"hour": 3, "day": 3}


def test_rejected_requests_can_be_left_uncounted():
    clock, limiter = make(LimitConfig(per_hour=3, duplicate_get_seconds=None, count_rejected=False))
    assert limiter.check("t", "GET", "/a") is None
    assert limiter.check("t", "GET", "/a") is not None
    assert limiter.usage("t") == {"hour": 1, "day": 1}
    clock.advance(1)
    assert limiter.check("t", "GET", "/a") is None


def test_tokens_are_isolated():
    _, limiter = make(LimitConfig(per_hour=1))
    assert limiter.check("alice", "GET", "/a") is None
    assert limiter.check("bob", "GET", "/a") is None  # no per-second, dup or hour clash
    assert rejected(limiter.check("alice", "GET", "/b")).limit_type == "Hourly limiter"
    assert limiter.usage("alice") == {"hour": 1, "day": 1}
    assert limiter.usage("bob") == {"hour": 1, "day": 1}
    assert limiter.usage("carol") == {"hour": 0, "day": 0}


def test_set_config_and_reset():
    _, limiter = make()
    assert limiter.check("t", "GET", "/a") is None
    assert limiter.check("t", "GET", "/a") is not None
    limiter.set_config(LimitConfig.off())
    for _ in range(10):
        assert limiter.check("t", "GET", "/a") is None
    limiter.set_config(LimitConfig())
    assert limiter.check("t", "GET", "/a") is not None
    limiter.reset()
    assert limiter.usage("t") == {"hour": 0, "day": 0}
    assert limiter.check("t", "GET", "/a") is None


def test_running_clock_works_too():
    limiter = RateLimiter(LimitConfig(), SandboxClock())
    assert limiter.check("t", "GET", "/a") is None
    result = rejected(limiter.check("t", "GET", "/a"))
    assert result.limit_type == "Route based limiter by minute"


# -- LimitConfig -----------------------------------------------------------------------


def test_parse_real_and_off():
    assert LimitConfig.parse("real") == LimitConfig()
    assert LimitConfig.parse(" REAL ") == LimitConfig()
    off = LimitConfig.parse("off")
    assert off == LimitConfig.off()
    assert (off.per_second, off.duplicate_get_seconds, off.per_hour, off.per_day) == (
        None,
        None,
        None,
        None,
    )


def test_parse_custom_overrides_real_defaults():
    config = LimitConfig.parse(
        "per_second=5,duplicate_get_seconds=2,per_hour=100,per_day=200,window=rolling"
    )
    assert config == LimitConfig(
        per_second=5.0, duplicate_get_seconds=2.0, per_hour=100, per_day=200, window="rolling"
    )
    assert LimitConfig.parse("per_hour=none") == LimitConfig(per_hour=None)
    assert LimitConfig.parse("off,per_day=10") == LimitConfig(
        per_second=None, duplicate_get_seconds=None, per_hour=None, per_day=10
    )
    assert LimitConfig.parse("count_rejected=false").count_rejected is False


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("per_hour=abc", "per_hour=abc"),
        ("bogus=1", "bogus"),
        ("window=weekly", "window=weekly"),
        ("per_second", "per_second"),
        ("per_second=0", "per_second"),
        ("per_day=-5", "per_day"),
        ("per_hour=1.5", "per_hour=1.5"),
        ("count_rejected=maybe", "count_rejected=maybe"),
        ("", "empty"),
        ("real,,per_hour=1", "empty"),
    ],
)
def test_parse_rejects_bad_specs(spec, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        LimitConfig.parse(spec)


def test_dict_round_trip_and_validation():
    config = LimitConfig(per_second=2.5, per_hour=None, window="rolling", count_rejected=False)
    assert LimitConfig.from_dict(config.to_dict()) == config
    assert LimitConfig.from_dict({"per_day": 10}) == LimitConfig(per_day=10)
    with pytest.raises(ValueError, match="burst"):
        LimitConfig.from_dict({"burst": 3})
    with pytest.raises(ValueError, match="per_hour"):
        LimitConfig.from_dict({"per_hour": "100"})
    with pytest.raises(ValueError, match="count_rejected"):
        LimitConfig.from_dict({"count_rejected": 1})
    with pytest.raises(ValueError, match="window"):
        LimitConfig.from_dict({"window": "sliding"})
