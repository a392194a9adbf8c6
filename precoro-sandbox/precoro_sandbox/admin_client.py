"""Typed Python client of the sandbox admin API (`/_sandbox/...`).

It talks HTTP like any external tool would, so tests of the tap and target drive the
sandbox the same way whether it runs in-process or as `precoro-sandbox serve`. Stdlib
only (urllib), so the sandbox keeps no third-party dependency.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

ADMIN_HEADER = "X-Sandbox-Admin"


class AdminError(RuntimeError):
    """The admin API refused a call (bad input, unknown route, wrong admin token)."""

    def __init__(self, status: int, body: Any) -> None:
        """Keep the status and decoded body for assertions."""
        super().__init__(f"sandbox admin call failed with {status}: {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Counters:
    """Request counts per (method, route pattern, status), e.g. `GET /suppliers/{id}`."""

    rows: tuple[tuple[str, str, int, int], ...]
    total: int

    def get(
        self, method: str | None = None, route: str | None = None, status: int | None = None
    ) -> int:
        """Sum of the counts matching every given criterion (None matches anything)."""
        return sum(
            count
            for m, r, s, count in self.rows
            if (method is None or m == method)
            and (route is None or r == route)
            and (status is None or s == status)
        )

    def by_route(self) -> dict[str, int]:
        """Counts keyed `"METHOD /route"` (all statuses together)."""
        result: dict[str, int] = {}
        for method, route, _, count in self.rows:
            key = f"{method} {route}"
            result[key] = result.get(key, 0) + count
        return result


class AdminClient:
    """`sb.admin`: observe and steer a running sandbox."""

    def __init__(
        self,
        base_url: str,
        admin_token: str = "sandbox-admin",
        timeout: float = 60.0,
        ca_file: str | None = None,
    ) -> None:
        """Point at a sandbox base URL (e.g. `http://127.0.0.1:8800`).

        `ca_file` is the CA an HTTPS sandbox printed (default: the system's trust store).
        """
        self.base_url = base_url.rstrip("/")
        self.admin_token = admin_token
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    def call(
        self, method: str, name: str, payload: dict[str, Any] | None = None, **query: Any
    ) -> Any:
        """One raw admin call; returns the decoded JSON, raises AdminError on failure."""
        url = f"{self.base_url}/_sandbox/{name}"
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header(ADMIN_HEADER, self.admin_token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self.context
            ) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text.decode(errors="replace")
            raise AdminError(exc.code, body) from None

    # --- observation -----------------------------------------------------------------

    def health(self) -> bool:
        """True when the sandbox answers."""
        return bool(self.call("GET", "health").get("ok"))

    def info(self) -> dict[str, Any]:
        """Seed, companies, settings, clock, limits and record counts."""
        result: dict[str, Any] = self.call("GET", "info")
        return result

    def counters(self) -> Counters:
        """Precoro API calls counted since the last reset (admin calls never count)."""
        data = self.call("GET", "counters")
        rows = tuple(
            (r["method"], r["route"], int(r["status"]), int(r["count"])) for r in data["counters"]
        )
        return Counters(rows, int(data["total"]))

    def reset_counters(self) -> None:
        """Zero the counters and clear the request log."""
        self.call("POST", "counters/reset", {})

    def requests(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Logged Precoro requests, oldest first.

        Each: method, path, query, status (0 = dropped), company, route, limiter
        (RateLimit-Type of a 429), fault (kind), time.
        """
        result: list[dict[str, Any]] = self.call("GET", "requests", limit=limit)["requests"]
        return result

    def stats(self, company: int = 1) -> dict[str, int]:
        """Record count per stored collection of a company."""
        counts: dict[str, dict[str, int]] = self.call("GET", "stats")["counts"]
        return counts.get(str(company), {})

    def record(self, entity: str, key: int | str, company: int = 1) -> dict[str, Any]:
        """A stored record (all fields, dates in stored UTC form) without a counted call."""
        result: dict[str, Any] = self.call("GET", "record", entity=entity, key=key, company=company)
        return result

    def links(self, entity: str, record_id: int, company: int = 1) -> dict[str, list[int]]:
        """A record's write-only links: ids no response carries, by the entity they point at.

        E.g. `links("suppliers", id)` -> `{"legalentities": [...]}` after a write with
        `supplierLegalEntityIds[]`, or an option's legal entities after `depend_add`.
        """
        result: dict[str, list[int]] = self.call(
            "GET", "links", entity=entity, id=record_id, company=company
        )
        return result

    # --- data ------------------------------------------------------------------------

    def reset_data(self, seed: int | None = None) -> dict[str, Any]:
        """Regenerate every company's data (optionally with a new seed).

        Also resets counters and rate-limit usage.
        """
        payload = {} if seed is None else {"seed": seed}
        result: dict[str, Any] = self.call("POST", "reset", payload)
        return result

    def activity(
        self,
        count: int,
        entities: list[str] | None = None,
        *,
        create_ratio: float = 0.3,
        company: int = 1,
        seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """Create/modify `count` random records now, firing webhooks.

        Returns what changed as [{entity, action (0 create, 1 update), id, idn}].
        """
        payload: dict[str, Any] = {"count": count, "create_ratio": create_ratio, "company": company}
        if entities:
            payload["entities"] = entities
        if seed is not None:
            payload["seed"] = seed
        result: list[dict[str, Any]] = self.call("POST", "activity", payload)["changes"]
        return result

    def touch(
        self,
        entity: str,
        keys: list[int | str],
        *,
        update_date: datetime | str | None = None,
        company: int = 1,
        parent_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Set given records' updateDate (default: sandbox now) and fire their webhooks.

        Keys are ids (master data) or idns (documents, payments); a naive `update_date`
        is in the company time zone.
        """
        payload: dict[str, Any] = {"entity": entity, "keys": keys, "company": company}
        if update_date is not None:
            payload["update_date"] = (
                update_date.isoformat() if isinstance(update_date, datetime) else update_date
            )
        if parent_id is not None:
            payload["parent_id"] = parent_id
        result: list[dict[str, Any]] = self.call("POST", "touch", payload)["touched"]
        return result

    def add_company(
        self,
        token: str,
        email: str,
        *,
        scale: int | None = None,
        counts: dict[str, int] | None = None,
    ) -> int:
        """Add a company with its own generated data; returns its index."""
        payload: dict[str, Any] = {"token": token, "email": email}
        if scale is not None:
            payload["scale"] = scale
        if counts:
            payload["counts"] = counts
        return int(self.call("POST", "companies", payload)["index"])

    def companies(self) -> list[dict[str, Any]]:
        """Every company: index, token, email, scale."""
        result: list[dict[str, Any]] = self.call("GET", "companies")["companies"]
        return result

    # --- behaviour -------------------------------------------------------------------

    def set_faults(self, rules: list[dict[str, Any]]) -> dict[str, Any]:
        """Replace the fault rules.

        Rules are FaultRule dicts: kind, route, method, status, html, delay_seconds,
        then_drop, probability, schedule, times.
        """
        result: dict[str, Any] = self.call("PUT", "faults", {"rules": rules})
        return result

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.call("DELETE", "faults")

    def faults(self) -> dict[str, Any]:
        """Active rules with matched/fired counters."""
        result: dict[str, Any] = self.call("GET", "faults")
        return result

    def set_limits(self, spec: str | None = None, **config: Any) -> dict[str, Any]:
        """Set rate limits by spec or by fields.

        Spec: `real`, `off`, `per_second=5,per_hour=100`; fields: per_second,
        duplicate_get_seconds, per_hour, per_day, window, count_rejected.
        """
        payload: dict[str, Any] = {"spec": spec} if spec is not None else {"config": config}
        result: dict[str, Any] = self.call("PUT", "limits", payload)
        return result

    def limits(self) -> dict[str, Any]:
        """Current limit config and per-token usage."""
        result: dict[str, Any] = self.call("GET", "limits")
        return result

    def reset_limits(self) -> None:
        """Forget every rate-limit count."""
        self.call("POST", "limits/reset", {})

    def clock(self) -> datetime:
        """Sandbox now."""
        return datetime.fromisoformat(self.call("GET", "clock")["now"])

    def set_clock(self, when: datetime | str, *, freeze: bool | None = None) -> datetime:
        """Jump the sandbox clock (naive = UTC); optionally freeze/unfreeze it."""
        payload: dict[str, Any] = {"set": when.isoformat() if isinstance(when, datetime) else when}
        if freeze is not None:
            payload["freeze"] = freeze
        return datetime.fromisoformat(self.call("POST", "clock", payload)["now"])

    def advance_clock(self, seconds: float) -> datetime:
        """Move the sandbox clock forward by `seconds`."""
        return datetime.fromisoformat(self.call("POST", "clock", {"advance": seconds})["now"])

    def freeze_clock(self, frozen: bool = True) -> datetime:
        """Stop (or restart) the flow of sandbox time."""
        return datetime.fromisoformat(self.call("POST", "clock", {"freeze": frozen})["now"])

    def settings(self) -> dict[str, Any]:
        """Current settings."""
        result: dict[str, Any] = self.call("GET", "settings")
        return result

    def set_settings(self, **settings: Any) -> dict[str, Any]:
        """Change settings.

        order (id|id_desc|updated_asc|updated_desc|created|shuffle), pagination
        (has_next_page|legacy), page_size, timezone, date_style (offset|naive),
        validation_status, patch_any_field.
        """
        result: dict[str, Any] = self.call("PUT", "settings", settings)
        return result

    def set_paging_mutations(self, rules: list[dict[str, Any]]) -> dict[str, Any]:
        """Arm changes made while a client pages (see `precoro_sandbox.paging`).

        Each rule: {entity, after_page, action (edit|insert|disable|status), row, status}.
        Replaces any armed plan and restarts the page counts.
        """
        result: dict[str, Any] = self.call("PUT", "paging_mutations", {"rules": rules})
        return result

    def paging_mutations(self) -> dict[str, Any]:
        """Armed rules, list pages counted per collection, and what fired."""
        result: dict[str, Any] = self.call("GET", "paging_mutations")
        return result

    def register_webhook(self, url: str, company: int = 1) -> dict[str, Any]:
        """Register a webhook endpoint (at most 5 per company)."""
        result: dict[str, Any] = self.call("POST", "webhooks", {"url": url, "company": company})
        return result

    def unregister_webhook(self, url: str, company: int = 1) -> dict[str, Any]:
        """Remove a webhook endpoint."""
        result: dict[str, Any] = self.call("DELETE", "webhooks", {"url": url, "company": company})
        return result

    def webhooks(self, company: int = 1) -> dict[str, Any]:
        """Registered URLs, delivery stats and recent deliveries."""
        result: dict[str, Any] = self.call("GET", "webhooks", company=company)
        return result

    def flush_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook was delivered or given up."""
        return bool(self.call("POST", "webhooks/flush", {"timeout": timeout})["flushed"])
