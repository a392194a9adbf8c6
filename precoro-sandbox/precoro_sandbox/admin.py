"""The admin API under `/_sandbox/`: observe and steer a running sandbox (never counted).

Routes are one declarative table, `ADMIN_ROUTES` (method, name, handler); each handler
takes the JSON body and the query string and returns a JSON-ready value. A handler's
ValueError, KeyError or TypeError becomes a 400 naming the problem.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from precoro_client import registry

from precoro_sandbox.faults import FaultRule
from precoro_sandbox.limits import LimitConfig
from precoro_sandbox.paging import PagingMutation
from precoro_sandbox.replies import Reply, json_reply
from precoro_sandbox.routes import record_key

if TYPE_CHECKING:
    from precoro_sandbox.app import Company, Sandbox

ADMIN_PREFIX = "/_sandbox/"
ADMIN_HEADER = "X-Sandbox-Admin"

Payload = dict[str, Any]
Query = dict[str, str]


class Admin:
    """Serves `/_sandbox/` requests; the handlers named by `ADMIN_ROUTES`."""

    def __init__(self, sandbox: Sandbox) -> None:
        """Bind to the sandbox the admin API steers."""
        self.sb = sandbox

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Serve one `/_sandbox/` admin request (never counted, never rate limited)."""
        sb = self.sb
        sb.pipeline.apply_due()
        if headers.get(ADMIN_HEADER.lower()) != sb.options.admin_token:
            return json_reply(401, {"error": "Invalid admin token", "code": 401})
        split = urlsplit(target)
        name = split.path[len(ADMIN_PREFIX) :].strip("/")
        query = dict(parse_qsl(split.query))
        try:
            payload = json.loads(body.decode() or "{}") if body else {}
            if not isinstance(payload, dict):
                raise ValueError("the admin body must be a JSON object")
            route = _BY_KEY.get((method, name))
            if route is None:
                return json_reply(404, {"error": f"unknown admin route {method} {name}"})
            return json_reply(200, route.handler(self, payload, query))
        except (ValueError, KeyError, TypeError) as exc:
            return json_reply(400, {"error": str(exc)})

    # --- state ----------------------------------------------------------------------

    def health(self, p: Payload, q: Query) -> Any:
        """Liveness."""
        return {"ok": True}

    def info(self, p: Payload, q: Query) -> Any:
        """Everything a test may want to know about this sandbox at once."""
        return self.sb.info()

    def stats(self, p: Payload, q: Query) -> Any:
        """Records per company and collection."""
        return {"counts": {str(k): v for k, v in self.sb.store.counts().items()}}

    def companies(self, p: Payload, q: Query) -> Any:
        """The companies and their credentials."""
        return {"companies": self.sb.company_list()}

    def add_company(self, p: Payload, q: Query) -> Any:
        """A new company with its own generated data."""
        company = self.sb.add_company(
            str(p["token"]), str(p["email"]), p.get("scale"), p.get("counts")
        )
        return {"index": company.index, "token": company.token, "email": company.email}

    def record(self, p: Payload, q: Query) -> Any:
        """A stored record (list and detail fields), uncounted."""
        entity = registry.get(q["entity"])
        if entity.view_of is not None:
            entity = registry.get(entity.view_of)
        column, value = record_key(entity, q["key"])
        rec = self.sb.store.record(int(q.get("company", 1)), entity.name, column, value)
        if rec is None:
            raise KeyError(f"{entity.name} {q['key']} not found")
        return rec

    def links(self, p: Payload, q: Query) -> Any:
        """A record's write-only links (e.g. a supplier's legal entities), by entity and id."""
        entity = registry.get(q["entity"])
        return self.sb.rules.links(int(q.get("company", 1)), entity, int(q["id"]))

    def reset(self, p: Payload, q: Query) -> Any:
        """Regenerate all data (optionally with a new seed); counters and limiter reset too."""
        sb = self.sb
        if "seed" in p:
            sb.seed = int(p["seed"])
        sb.load_data()
        sb.pipeline.forget_deferred()
        sb.rules.forget_links()
        sb.metrics.reset()
        sb.limiter.reset()
        return {"ok": True, "counts": {str(k): v for k, v in sb.store.counts().items()}}

    # --- counters -------------------------------------------------------------------

    def counters(self, p: Payload, q: Query) -> Any:
        """Calls per (method, route, status)."""
        return self.sb.metrics.snapshot()

    def reset_counters(self, p: Payload, q: Query) -> Any:
        """Zero the counters and clear the request log."""
        self.sb.metrics.reset()
        return {"ok": True}

    def requests(self, p: Payload, q: Query) -> Any:
        """The request log (newest `limit` entries)."""
        return {"requests": self.sb.metrics.entries(int(q["limit"]) if "limit" in q else None)}

    # --- faults, limits, clock, settings --------------------------------------------

    def faults(self, p: Payload, q: Query) -> Any:
        """Armed fault rules and how often each fired."""
        return {"rules": self.sb.faults.snapshot(), "fired": self.sb.faults.fired()}

    def set_faults(self, p: Payload, q: Query) -> Any:
        """Replace the fault rules."""
        self.sb.faults.set_rules([FaultRule.from_dict(item) for item in p.get("rules", [])])
        return self.faults(p, q)

    def clear_faults(self, p: Payload, q: Query) -> Any:
        """Remove every fault rule."""
        self.sb.faults.clear()
        return self.faults(p, q)

    def limits(self, p: Payload, q: Query) -> Any:
        """Rate-limit config and each company's usage."""
        sb = self.sb
        config = getattr(sb.limiter, "config", None)
        return {
            "config": config.to_dict() if config is not None else None,
            "usage": {c.token: sb.limiter.usage(c.token) for c in sb.companies.values()},
        }

    def set_limits(self, p: Payload, q: Query) -> Any:
        """Replace the rate-limit config (a spec string or fields)."""
        if "spec" in p:
            config = LimitConfig.parse(str(p["spec"]))
        else:
            config = LimitConfig.from_dict(p.get("config", p))
        self.sb.limiter.set_config(config)
        return self.limits(p, q)

    def reset_limits(self, p: Payload, q: Query) -> Any:
        """Forget every window's usage."""
        self.sb.limiter.reset()
        return self.limits(p, q)

    def clock(self, p: Payload, q: Query) -> Any:
        """Sandbox time and whether it is frozen."""
        return self.sb.clock_state()

    def set_clock(self, p: Payload, q: Query) -> Any:
        """Set, advance, freeze or unfreeze the sandbox clock."""
        clock = self.sb.clock
        if p.get("set"):
            when = datetime.fromisoformat(str(p["set"]))
            clock.set(when if when.tzinfo else when.replace(tzinfo=UTC))
        if p.get("advance"):
            clock.advance(float(p["advance"]))
        if p.get("freeze") is True:
            clock.freeze()
        elif p.get("freeze") is False:
            clock.unfreeze()
        return self.sb.clock_state()

    def settings(self, p: Payload, q: Query) -> Any:
        """The runtime settings."""
        return self.sb.settings.to_dict()

    def set_settings(self, p: Payload, q: Query) -> Any:
        """Change some runtime settings (all or nothing)."""
        self.sb.settings.update(p)
        return self.sb.settings.to_dict()

    # --- simulated users ------------------------------------------------------------

    def _company_of(self, p: Payload) -> Company:
        return self.sb.company_by_index(int(p.get("company", 1)))

    def activity(self, p: Payload, q: Query) -> Any:
        """Create or modify random records as users would."""
        changes = self.sb.activity(
            self._company_of(p),
            int(p.get("count", 1)),
            entities=p.get("entities"),
            create_ratio=float(p.get("create_ratio", 0.3)),
            seed=p.get("seed"),
        )
        return {"changes": changes}

    def touch(self, p: Payload, q: Query) -> Any:
        """Bump given records' updateDate and fire their webhooks."""
        when = p.get("update_date")
        moment = None
        if when:
            moment = datetime.fromisoformat(str(when))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=self.sb.settings.tz)
        parent = p.get("parent_id")
        touched = self.sb.touch(
            self._company_of(p),
            registry.get(str(p["entity"])),
            list(p.get("keys", [])),
            moment,
            None if parent is None else int(parent),
        )
        return {"touched": touched}

    def paging_mutations(self, p: Payload, q: Query) -> Any:
        """Armed paging mutations and the ones that fired."""
        return self.sb.paging.snapshot()

    def set_paging_mutations(self, p: Payload, q: Query) -> Any:
        """Arm changes made while a client pages."""
        rules = [PagingMutation.from_dict(item) for item in p.get("rules", [])]
        for rule in rules:
            registry.get(rule.entity)
        self.sb.paging.set(rules)
        return self.sb.paging.snapshot()

    # --- webhooks -------------------------------------------------------------------

    def webhooks(self, p: Payload, q: Query) -> Any:
        """A company's webhook URLs, delivery stats and deliveries."""
        return self._webhooks_state(int(q.get("company", 1)))

    def _webhooks_state(self, company: int) -> dict[str, Any]:
        dispatcher = self.sb.dispatcher(company)
        return {
            "urls": list(dispatcher.urls()),
            "stats": dispatcher.stats(),
            "deliveries": dispatcher.deliveries(),
        }

    def register_webhook(self, p: Payload, q: Query) -> Any:
        """Register a webhook URL (at most 5 per company)."""
        company = int(p.get("company", 1))
        self.sb.company_by_index(company)
        self.sb.dispatcher(company).register(str(p["url"]))
        return self._webhooks_state(company)

    def unregister_webhook(self, p: Payload, q: Query) -> Any:
        """Remove a webhook URL."""
        company = int(p.get("company", 1))
        self.sb.dispatcher(company).unregister(str(p["url"]))
        return self._webhooks_state(company)

    def flush_webhooks(self, p: Payload, q: Query) -> Any:
        """Wait (bounded) until every queued webhook was delivered or given up."""
        deadline = time.monotonic() + float(p.get("timeout", 10.0))
        ok = all(d.flush(max(0.0, deadline - time.monotonic())) for d in self.sb.all_dispatchers())
        return {"flushed": ok}


Handler = Callable[[Admin, Payload, Query], Any]


@dataclass(frozen=True)
class AdminRoute:
    """One admin route: `METHOD /_sandbox/<name>` served by `handler`."""

    method: str
    name: str
    handler: Handler


ADMIN_ROUTES: tuple[AdminRoute, ...] = (
    AdminRoute("GET", "health", Admin.health),
    AdminRoute("GET", "info", Admin.info),
    AdminRoute("GET", "counters", Admin.counters),
    AdminRoute("POST", "counters/reset", Admin.reset_counters),
    AdminRoute("GET", "requests", Admin.requests),
    AdminRoute("POST", "reset", Admin.reset),
    AdminRoute("GET", "faults", Admin.faults),
    AdminRoute("PUT", "faults", Admin.set_faults),
    AdminRoute("DELETE", "faults", Admin.clear_faults),
    AdminRoute("GET", "limits", Admin.limits),
    AdminRoute("PUT", "limits", Admin.set_limits),
    AdminRoute("POST", "limits/reset", Admin.reset_limits),
    AdminRoute("GET", "clock", Admin.clock),
    AdminRoute("POST", "clock", Admin.set_clock),
    AdminRoute("GET", "settings", Admin.settings),
    AdminRoute("PUT", "settings", Admin.set_settings),
    AdminRoute("POST", "activity", Admin.activity),
    AdminRoute("POST", "touch", Admin.touch),
    AdminRoute("GET", "paging_mutations", Admin.paging_mutations),
    AdminRoute("PUT", "paging_mutations", Admin.set_paging_mutations),
    AdminRoute("GET", "webhooks", Admin.webhooks),
    AdminRoute("POST", "webhooks", Admin.register_webhook),
    AdminRoute("DELETE", "webhooks", Admin.unregister_webhook),
    AdminRoute("POST", "webhooks/flush", Admin.flush_webhooks),
    AdminRoute("GET", "companies", Admin.companies),
    AdminRoute("POST", "companies", Admin.add_company),
    AdminRoute("GET", "record", Admin.record),
    AdminRoute("GET", "links", Admin.links),
    AdminRoute("GET", "stats", Admin.stats),
)
"""Every admin route (the sandbox README's admin table lists them with their Python calls)."""

_BY_KEY: dict[tuple[str, str], AdminRoute] = {(r.method, r.name): r for r in ADMIN_ROUTES}
