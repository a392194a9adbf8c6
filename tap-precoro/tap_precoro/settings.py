"""The tap's own settings (beyond the shared connection settings), each declared once.

Every `TapSettings` field is one setting's whole declaration (`precoro_client.declared`):
`TAP_PROPERTIES`, the tap's part of `config_jsonschema` and so of `--about`, is derived
from it, with ranges as `minimum`/`maximum` and choices as `enum`, which the shared
config check (`precoro_client.plugin_config`) enforces. What a schema cannot say (a
stream name, a time zone) is checked by `TapPrecoro.check_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from precoro_client import declared
from precoro_client.declared import declare, declare_computed, integer, number
from precoro_client.registry import PAGE_SIZES
from singer_sdk import typing as th


def _either(values: tuple[int, ...]) -> str:
    """`10, 20 or 50`."""
    *head, last = (str(value) for value in values)
    return f"{', '.join(head)} or {last}" if head else last


@dataclass(frozen=True)
class TapSettings:
    """Validated tap settings."""

    start_date: str | None = declare(
        None,
        kind=th.DateTimeType,
        description=(
            "Read records changed at or after this time on the first run (ISO 8601). "
            "Empty: the whole history."
        ),
    )
    stream_start_dates: dict[str, str] = declare_computed(
        dict,
        kind=th.ObjectType(additional_properties=th.DateTimeType),
        description='Per-stream start_date overrides, e.g. {"invoices": "2025-01-01T00:00:00Z"}.',
    )
    page_size: int = integer(
        max(PAGE_SIZES),
        choices=PAGE_SIZES,
        description=f"Rows per list call; Precoro accepts {_either(PAGE_SIZES)}.",
    )
    lookback_minutes: float = number(  # never negative: that would move bookmarks ahead
        5.0,
        minimum=0,
        maximum=10_080,
        description=(
            "The next run re-reads changes from this long before the previous run "
            "started (server clock), so clock edges and in-flight writes are never lost."
        ),
    )
    api_timezone: str = declare(
        "UTC",
        kind=th.StringType,
        description=(
            "Time zone Precoro uses to compare modifiedSince (IANA name). Precoro does "
            "not document it: set your company's zone if changes go missing."
        ),
    )
    fetch_details: bool = declare(
        True,
        kind=th.BooleanType,
        parse=bool,
        description=(
            "Fetch each changed document (purchase orders, invoices, credit notes, "
            "receipts, expenses) by idn for its lines: one call per changed document."
        ),
    )
    reference_refresh_hours: float = number(
        24.0,
        minimum=0,
        maximum=720,
        description=(
            "Entities Precoro cannot filter by date (taxes, payment terms, locations, "
            "legal entities, users, custom fields, warehouses, budgets) are re-read at "
            "most this often; only changed records are emitted."
        ),
    )
    completeness_sweep_hours: float = number(
        168.0,
        minimum=0,
        maximum=8_760,
        description=(
            "Safety net for rows a pass may have skipped for a reason the tap cannot "
            "see (e.g. a record deleted while it paged): every this many hours, each "
            "unfiltered incremental stream is listed once in full (list calls only, "
            "ceil(n/page_size)) and any id never delivered is emitted. Passes the tap "
            "knows may have skipped are swept in the next run regardless. 0: never."
        ),
    )
    include_disabled: bool = declare(
        True,
        kind=th.BooleanType,
        parse=bool,
        description="Include disabled records (linking needs disabled suppliers too).",
    )
    status_filters: dict[str, list[int]] = declare_computed(
        dict,
        kind=th.ObjectType(additional_properties=th.ArrayType(th.IntegerType)),
        description=(
            'Status codes to read per stream, e.g. {"invoices": [2, 5]} (2 = approved). '
            "Empty: every status."
        ),
    )
    webhook_inbox: str | None = declare(
        None,
        kind=th.StringType,
        description=(
            "Path of the inbox written by `precoro-webhooks serve`. Set: streams whose "
            "entity Precoro sends webhooks for (purchase orders, invoices, credit notes, "
            "receipts, expenses, suppliers, budgets, item/document custom fields) fetch "
            "only the entities named by new notifications: documents one detail call "
            "each; suppliers, and documents under status_filters, from one modifiedSince "
            "list read for all of them (filtered before any detail call), never more "
            "calls than polling; the others keep polling. Empty: every stream polls."
        ),
    )
    reconcile_every_hours: float = number(
        24.0,
        minimum=0,
        maximum=720,
        description=(
            "Webhook mode's safety net: a modifiedSince poll of each webhook stream runs "
            "at least this often, and also whenever the inbox shows the receiver was "
            "restarted or silent, so a lost webhook costs at most one such period. "
            "0: every run."
        ),
    )
    on_budget_exhausted: str = declare(
        "stop",
        kind=th.StringType,
        choices=("stop", "fail"),
        description=(
            "When the daily budget runs out: `stop` saves state and exits 0 (the next "
            "run resumes), `fail` saves state and exits 1."
        ),
    )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TapSettings:
        """The tap's settings from a Singer config; `ConfigError` names the first bad one."""
        return declared.from_config(cls, config)


TAP_PROPERTIES = declared.properties(TapSettings)
"""The tap's own part of `config_jsonschema` (after the connection settings)."""
