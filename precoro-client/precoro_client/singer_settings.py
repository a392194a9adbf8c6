"""The connection and governor settings as a Singer config schema fragment.

Declared once here so tap-precoro and target-precoro offer the same settings with
the same descriptions and defaults:

    config_jsonschema = th.PropertiesList(
        *CONNECTION_PROPERTIES, *OWN_PROPERTIES
    ).to_dict()

Defaults equal `PrecoroSettings`' (a test checks). `budget_ledger_path` has no
schema default because the real default depends on `XDG_STATE_HOME` at run time.
"""

from __future__ import annotations

from singer_sdk import typing as th

from precoro_client.settings import DEFAULT_API_URL, NUMBER_RULES, REGION_URLS

CONNECTION_PROPERTIES = th.PropertiesList(
    th.Property(
        "auth_token",
        th.StringType,
        required=True,
        secret=True,
        description=(
            "Precoro API key (Configuration > Integrations > API Key), sent as "
            "X-AUTH-TOKEN. Shown once when generated; never logged."
        ),
    ),
    th.Property(
        "email",
        th.StringType,
        required=True,
        description="E-mail of the Precoro user who owns the API key (sent as `email`).",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        description=(
            "API base URL. https only; plain http is accepted for loopback hosts "
            "(127.0.0.1, ::1, localhost) such as the local sandbox."
        ),
    ),
    th.Property(
        "region",
        th.StringType,
        allowed_values=sorted(REGION_URLS),
        description=(
            "Shortcut for api_url: `com` (https://api.precoro.com) or `us` "
            "(https://api.precoro.us, for accounts on app.precoro.us)."
        ),
    ),
    th.Property(
        "connect_timeout_seconds",
        NUMBER_RULES["connect_timeout_seconds"].json_type(),
        default=10,
        description="Seconds to wait for a TCP/TLS connection before retrying.",
    ),
    th.Property(
        "read_timeout_seconds",
        NUMBER_RULES["read_timeout_seconds"].json_type(),
        default=60,
        description="Seconds to wait for response data before retrying (GET/PUT/PATCH).",
    ),
    th.Property(
        "max_tries",
        NUMBER_RULES["max_tries"].json_type(),
        default=5,
        description="Attempts per call for transient failures (5xx, timeouts, drops).",
    ),
    th.Property(
        "max_requests_per_second",
        NUMBER_RULES["max_requests_per_second"].json_type(),
        default=1,
        description="Client-side spacing; Precoro answers 429 to faster traffic.",
    ),
    th.Property(
        "max_requests_per_hour",
        NUMBER_RULES["max_requests_per_hour"].json_type(),
        default=1500,
        description="Rolling hourly budget (Precoro's limit: 1500/hour).",
    ),
    th.Property(
        "max_requests_per_day",
        NUMBER_RULES["max_requests_per_day"].json_type(),
        default=3000,
        description="Rolling 24-hour budget (Precoro's limit: 3000/day).",
    ),
    th.Property(
        "duplicate_get_interval_seconds",
        NUMBER_RULES["duplicate_get_interval_seconds"].json_type(),
        default=60,
        description=(
            "An identical GET (same URL and query) is not repeated within this, plus "
            "10%, counted from the end of the previous attempt."
        ),
    ),
    th.Property(
        "budget_reserve",
        NUMBER_RULES["budget_reserve"].json_type(),
        default=0,
        description="Daily calls left unused for other integrations on the same key.",
    ),
    th.Property(
        "max_wait_seconds",
        NUMBER_RULES["max_wait_seconds"].json_type(),
        default=900,
        description=(
            "Longest pause for the hourly limit or a server 429; longer waits (and any "
            "daily wait) stop the run cleanly so the next run resumes."
        ),
    ),
    th.Property(
        "budget_ledger_path",
        th.StringType,
        description=(
            "SQLite file recording calls, shared by every process using the same key "
            "(keyed by a hash, never the key). Default: "
            "$XDG_STATE_HOME/precoro/ledger.sqlite3 or ~/.local/state/precoro/ledger.sqlite3."
        ),
    ),
    th.Property(
        "state_backend_url",
        th.StringType,
        secret=True,
        description=(
            "Where the budget ledger and the account write lock live. Empty: the SQLite "
            "file at budget_ledger_path (one machine). `postgresql://user:password@host/db`: "
            "a PostgreSQL database shared by every worker on every machine, so they spend "
            "one budget and take turns writing (keyed by the same hash, never the key)."
        ),
    ),
    th.Property(
        "user_agent",
        th.StringType,
        description="User-Agent header to send (default: precoro-client/<version>).",
    ),
)
"""Every `PrecoroSettings` field, for the tap's and target's `config_jsonschema`."""
