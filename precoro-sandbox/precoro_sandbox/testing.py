"""Helpers for tests that talk to a sandbox.

Used by the sandbox's own contract tests and available to the tap and target tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

from precoro_sandbox.server import SandboxServer

START = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
"""A fixed sandbox clock start (an hour boundary) for reproducible tests."""


def client(sb: SandboxServer, company: int = 1) -> requests.Session:
    """A keep-alive session carrying a company's Precoro auth headers."""
    session = requests.Session()
    session.headers.update(sb.company_headers(company))
    return session


def all_rows(session: requests.Session, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a list, walking `has_next_page` with 200 rows per page."""
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        response = session.get(url, params={**params, "page": page, "per_page": 200})
        if response.status_code != 200:
            raise AssertionError(f"{response.status_code}: {response.text}")
        body = response.json()
        rows.extend(body["data"])
        if not body["meta"]["pagination"]["has_next_page"]:
            return rows
        page += 1
