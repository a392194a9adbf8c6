"""Precoro's documented limits (fact sheet §5, §2.6): their one home.

The client's settings take the rate limits (per API key) as defaults and name them in
their descriptions; the sandbox enforces the same values (it reads them from
`PrecoroSettings`' defaults).
Where the client must stay below a limit it keeps a margin of its own (the governor).
"""

from __future__ import annotations

REQUESTS_PER_SECOND = 1.0
"""At most one request per second; faster traffic gets 429 (H-429)."""
REQUESTS_PER_HOUR = 1500
"""Rolling hourly quota (H-429, H-API, H-SYNC)."""
REQUESTS_PER_DAY = 3000
"""Daily quota (H-429, H-API, H-SYNC); Precoro raises it on request."""
DUPLICATE_GET_SECONDS = 60.0
"""An identical GET (same path and query) is refused within this many seconds (H-429)."""
MAX_EXTERNAL_IDS = 200
"""At most this many `external_id[]` values in one list call (docs/precoro-api.md)."""
