"""The sandbox's behaviour, independent of sockets: routes, auth, lists, writes, admin.

`Sandbox.process` turns one HTTP request into a `Reply` (status, body, and what the
socket layer must do: send, drop, or send truncated). Routes are generated from
`precoro_client.registry.ENTITIES`, never written per entity, so the sandbox serves
exactly what the registry says Precoro serves.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from precoro_client import registry
from precoro_client.forms import decode_form
from precoro_client.registry import PAGE_SIZES, Entity, Field, ListFilter

from precoro_sandbox import dates
from precoro_sandbox.clock import SandboxClock
from precoro_sandbox.datagen import (
    REF_KEYS,
    STATUS_LABELS,
    Generator,
    Record,
    payment_summary,
    plan_counts,
    ref_info,
)
from precoro_sandbox.faults import FaultInjector, FaultRule, html_error_page, json_error_body
from precoro_sandbox.limits import LimitConfig, RateLimiter
from precoro_sandbox.options import SandboxOptions, Settings
from precoro_sandbox.paging import PagingMutation, PagingPlan
from precoro_sandbox.store import (
    FILTER_COLUMNS,
    Store,
    detail_text,
    dumps,
    row_for,
    split_json,
)
from precoro_sandbox.webhooks import WebhookDispatcher

ADMIN_PREFIX = "/_sandbox/"
ADMIN_HEADER = "X-Sandbox-Admin"
MAX_EXTERNAL_IDS = 200
INT_COLUMNS = frozenset({"id", "status", "logic_type", "supplier_id", "enable"})

Action = Literal["send", "drop", "truncate"]


@dataclass
class Reply:
    """What to send back for one request."""

    status: int
    body: bytes
    content_type: str = "application/json"
    action: Action = "send"


@dataclass(frozen=True)
class Company:
    """One Precoro company: its credentials and its index in the data store."""

    index: int
    token: str
    email: str
    scale: int
    counts: dict[str, int] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Route:
    """One generated route: an entity's list or detail path."""

    entity: Entity
    kind: Literal["list", "detail"]
    pattern: str
    """Counter label, e.g. `/suppliers/{id}`."""
    regex: re.Pattern[str]


class ApiError(Exception):
    """A request that ends in an error response."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        """Remember the status and JSON body."""
        super().__init__(status)
        self.status = status
        self.body = body


def field_errors(status: int, errors: dict[str, str]) -> ApiError:
    """Precoro's validation shape: `{"errors": {"errors": {field: message}}}`."""
    return ApiError(status, {"errors": {"errors": errors}})


def plain_error(status: int, message: str) -> ApiError:
    """A simple `{"error": message, "code": status}` error (assumed shape)."""
    return ApiError(status, {"error": message, "code": status})


def build_routes() -> list[Route]:
    """List and detail routes of every stored collection, from the registry."""
    routes = []
    for entity in registry.stored_collections():
        list_regex = re.escape(entity.path).replace(
            re.escape("{parent_id}"), "(?P<parent_id>[^/]+)"
        )
        routes.append(Route(entity, "list", entity.path, re.compile(f"^{list_regex}$")))
        routes.append(
            Route(
                entity,
                "detail",
                f"{entity.path}/{{{entity.key}}}",
                re.compile(f"^{list_regex}/(?P<key>[^/]+)$"),
            )
        )
    return routes


ROUTES = build_routes()


def match_route(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route serving `path` and its path parameters."""
    for route in ROUTES:
        found = route.regex.match(path)
        if found:
            return route, {k: unquote(v) for k, v in found.groupdict().items()}
    return None


def _format_amount(value: float) -> str:
    text = f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


ACTIVITY_WEIGHTS: dict[str, int] = {
    "suppliers": 10,
    "items": 10,
    "purchaseorders": 10,
    "invoices": 10,
    "receipts": 4,
    "expenses": 4,
    "payments": 2,
    "itemcustomfieldoptions": 2,
    "documentcustomfieldoptions": 2,
    "itemcustomfields": 1,
    "documentcustomfields": 1,
    "taxes": 1,
    "paymentterms": 1,
    "locations": 1,
    "legalentities": 1,
    "users": 1,
    "warehouses": 1,
    "budgets": 1,
}
"""Default mix of entities `activity` touches (by weight)."""

CREATABLE = frozenset(ACTIVITY_WEIGHTS) - {"payments", "itemcustomfields", "documentcustomfields"}


class Metrics:
    """Request counters per (method, route, status) and a bounded request log."""

    def __init__(self, log_size: int = 5000) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self.counters: Counter[tuple[str, str, int]] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)

    def record(self, entry: dict[str, Any]) -> None:
        """Count and log one Precoro request."""
        with self._lock:
            self.counters[(entry["method"], entry["route"], entry["status"])] += 1
            self.log.append(entry)

    def reset(self) -> None:
        """Forget all counts and log entries."""
        with self._lock:
            self.counters.clear()
            self.log.clear()

    def snapshot(self) -> dict[str, Any]:
        """Counters as JSON rows plus the total."""
        with self._lock:
            rows = [
                {"method": m, "route": r, "status": s, "count": n}
                for (m, r, s), n in sorted(self.counters.items())
            ]
            return {"counters": rows, "total": sum(self.counters.values())}

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest `limit` log entries, oldest first."""
        with self._lock:
            items = list(self.log)
        return items[-limit:] if limit else items


class DbContext:
    """Reference lookups for records created at runtime (activity): random stored records."""

    def __init__(self, store: Store, company: int) -> None:
        """Bind to one company's records."""
        self.store = store
        self.company = company

    def pick(self, coll: str, rng: random.Random) -> Record | None:
        """A random stored record's reference info."""
        rec = self.store.random_record(self.company, coll, rng)
        if rec is None:
            return None
        return dict(zip(REF_KEYS[coll], ref_info(coll, rec), strict=True))


class Sandbox:
    """One running sandbox: data, clock, limiter, faults, webhooks, metrics, settings."""

    def __init__(self, options: SandboxOptions) -> None:
        """Build (or reuse) the dataset and every collaborator."""
        self.options = options
        self.settings: Settings = options.settings()
        self.clock = SandboxClock(options.clock_start, frozen=options.clock_frozen)
        self.limiter = RateLimiter(self._limit_config(options.limits), self.clock)
        self.faults = FaultInjector(seed=options.faults_seed)
        self.metrics = Metrics()
        self.store = Store(options.db)
        self.seed = options.seed
        self.companies: dict[str, Company] = {}
        self._dispatchers: dict[int, WebhookDispatcher] = {}
        self._dispatch_lock = threading.Lock()
        self._activity_calls = 0
        self._deferred: list[tuple[datetime, Callable[[], Reply]]] = []
        """Writes accepted by an `apply_later` fault: (due on the sandbox clock, apply)."""
        self._deferred_lock = threading.Lock()
        self.paging = PagingPlan()
        start = self.clock.now()
        anchor = options.anchor or start.replace(hour=0, minute=0, second=0, microsecond=0)
        self.anchor = int(anchor.timestamp())
        for k in range(1, max(1, options.companies) + 1):
            self._add_company_entry(self._default_credentials(k), options.scale, options.counts)
        self.load_data(reuse=True)

    # --- set-up ----------------------------------------------------------------------

    @staticmethod
    def _limit_config(spec: str | dict[str, Any] | LimitConfig) -> LimitConfig:
        if isinstance(spec, LimitConfig):
            return spec
        if isinstance(spec, dict):
            return LimitConfig.from_dict(spec)
        return LimitConfig.parse(spec)

    def _default_credentials(self, k: int) -> tuple[str, str]:
        if k == 1:
            return self.options.token, self.options.email
        local, _, domain = self.options.email.partition("@")
        return f"{self.options.token}-{k}", f"{local}+{k}@{domain}"

    def _add_company_entry(
        self, creds: tuple[str, str], scale: int, counts: dict[str, int]
    ) -> Company:
        token, email = creds
        if token in self.companies:
            raise ValueError(f"token {token!r} is already in use")
        company = Company(len(self.companies) + 1, token, email, scale, dict(counts))
        self.companies[token] = company
        return company

    def _signature(self) -> str:
        return dumps(
            {
                "seed": self.seed,
                "anchor": self.anchor,
                "companies": [
                    [c.index, c.scale, sorted(c.counts.items())] for c in self.companies.values()
                ],
            }
        )

    def _generate(self, company: Company) -> int:
        counts = plan_counts(company.scale, company.counts)
        gen = Generator(
            self.seed,
            company.index,
            self.anchor,
            counts,
            self.store.seq,
            company_domain=f"company{company.index}.example",
        )
        entities = registry.BY_NAME
        return self.store.insert_rows(
            row_for(company.index, entities[coll], rec, self.seed) for coll, rec in gen.generate()
        )

    def load_data(self, *, reuse: bool = False) -> None:
        """(Re)generate every company's dataset; reuse a kept database with the same signature."""
        signature = self._signature()
        if reuse and self.store.meta("signature") == signature:
            self.store.finish_load()
            return
        with self.store.write_lock:
            self.store.wipe()
            for company in self.companies.values():
                self._generate(company)
            self.store.finish_load()
            self.store.set_meta("signature", signature)

    def add_company(
        self, token: str, email: str, scale: int | None = None, counts: dict[str, int] | None = None
    ) -> Company:
        """A new company with its own generated data (admin)."""
        with self.store.write_lock:
            company = self._add_company_entry(
                (token, email), self.options.scale if scale is None else scale, counts or {}
            )
            self._generate(company)
            self.store.finish_load()
            self.store.set_meta("signature", self._signature())
        return company

    def dispatcher(self, company: int) -> WebhookDispatcher:
        """The company's webhook dispatcher (created on first use)."""
        with self._dispatch_lock:
            if company not in self._dispatchers:
                self._dispatchers[company] = WebhookDispatcher(
                    max_urls=5,
                    retry_delays=self.options.webhook_retry_delays,
                    timeout=self.options.webhook_timeout,
                    clock=self.clock,
                )
            return self._dispatchers[company]

    def close(self) -> None:
        """Stop webhook delivery and release the database."""
        with self._dispatch_lock:
            dispatchers = list(self._dispatchers.values())
        for dispatcher in dispatchers:
            dispatcher.close()
        self.store.close()

    # --- helpers ---------------------------------------------------------------------

    def now_stored(self) -> str:
        """The sandbox clock's current time in stored form."""
        return dates.stored_dt(self.clock.now())

    def render(self, text: str) -> bytes:
        """Stored JSON text rendered in the company zone and date style, as bytes."""
        return dates.render(text, self.settings.timezone, self.settings.date_style).encode()

    def json_reply(self, status: int, payload: Any) -> Reply:
        """A JSON reply of any payload."""
        return Reply(status, dumps(payload).encode())

    def authenticate(self, headers: dict[str, str]) -> Company | None:
        """The company a request's `X-AUTH-TOKEN` + `email` pair opens, if any."""
        token = headers.get("x-auth-token")
        email = headers.get("email")
        if not token or not email:
            return None
        company = self.companies.get(token)
        if company is None or company.email.lower() != email.strip().lower():
            return None
        return company

    # --- the request pipeline --------------------------------------------------------

    def process(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Serve one Precoro API request: auth, rate limit, fault, then the route."""
        self.apply_due()
        split = urlsplit(target)
        path = unquote(split.path).rstrip("/") or "/"
        found = match_route(path)
        route_label = found[0].pattern if found else "<unknown>"
        entry: dict[str, Any] = {
            "time": dates.stored_dt(self.clock.now()),
            "method": method,
            "path": path,
            "query": split.query,
            "route": route_label,
            "company": None,
            "limiter": None,
            "fault": None,
        }
        company = self.authenticate(headers)
        if len(target.encode()) > self.options.max_url_bytes:
            # The web server in front refuses it before the application sees it.
            reply = Reply(414, html_error_page(414), "text/html; charset=utf-8")
        elif company is None:
            reply = self.json_reply(401, {"error": "Invalid credentials", "code": 401})
        else:
            entry["company"] = company.index
            reply = self._limited(company, method, target, path, split.query, found, body, entry)
        entry["status"] = 0 if reply.action == "drop" else reply.status
        self.metrics.record(entry)
        return reply

    def _limited(  # noqa: PLR0917 - one request's pieces, passed along the pipeline
        self,
        company: Company,
        method: str,
        target: str,
        path: str,
        query: str,
        found: tuple[Route, dict[str, str]] | None,
        body: bytes,
        entry: dict[str, Any],
    ) -> Reply:
        rejection = self.limiter.check(company.token, method, target)
        if rejection is not None:
            entry["limiter"] = rejection.limit_type
            return self.json_reply(429, rejection.body())
        rule = self.faults.pick(method, path)
        if rule is None:
            return self._serve(company, method, query, found, body)
        entry["fault"] = rule.kind
        return self._faulted(rule, company, method, query, found, body)

    def _faulted(  # noqa: PLR0917 - one request's pieces, passed along the pipeline
        self,
        rule: FaultRule,
        company: Company,
        method: str,
        query: str,
        found: tuple[Route, dict[str, str]] | None,
        body: bytes,
    ) -> Reply:
        def error() -> Reply:
            if rule.html:
                return Reply(rule.status, html_error_page(rule.status), "text/html; charset=utf-8")
            return Reply(rule.status, json_error_body(rule.status))

        if rule.kind == "status":
            return error()
        if rule.kind == "drop":
            return Reply(0, b"", action="drop")
        if rule.kind == "apply_later":
            due = self.clock.now() + timedelta(seconds=rule.delay_seconds)
            with self._deferred_lock:
                self._deferred.append(
                    (due, lambda: self._serve(company, method, query, found, body))
                )
            return Reply(0, b"", action="drop")
        if rule.kind == "delay":
            time.sleep(max(0.0, rule.delay_seconds))
            if rule.then_drop:
                return Reply(0, b"", action="drop")
            return self._serve(company, method, query, found, body)
        reply = self._serve(company, method, query, found, body)
        if rule.kind == "truncate":
            reply.action = "truncate"
            return reply
        # apply_then_fail: the write happened; the client never learns it did.
        if rule.then_drop:
            return Reply(0, b"", action="drop")
        return error()

    def apply_due(self) -> int:
        """Apply the `apply_later` writes whose time has come; returns how many."""
        now = self.clock.now()
        with self._deferred_lock:
            due = [apply for when, apply in self._deferred if when <= now]
            self._deferred = [(when, apply) for when, apply in self._deferred if when > now]
        for apply in due:
            apply()
        return len(due)

    def _serve(
        self,
        company: Company,
        method: str,
        query: str,
        found: tuple[Route, dict[str, str]] | None,
        body: bytes,
    ) -> Reply:
        try:
            if found is None:
                raise plain_error(404, "Not Found")
            route, params = found
            return self._dispatch(company, route, params, method, query, body)
        except ApiError as exc:
            return self.json_reply(exc.status, exc.body)

    def _dispatch(  # noqa: PLR0917 - one request's pieces, passed along the pipeline
        self,
        company: Company,
        route: Route,
        params: dict[str, str],
        method: str,
        query: str,
        body: bytes,
    ) -> Reply:
        entity = route.entity
        parent_id = self._parent(company, entity, params.get("parent_id"))
        if route.kind == "list":
            if method == "GET":
                return self.list_records(company, entity, parent_id, query)
            if method == "POST" and entity.post:
                return self.create(company, entity, parent_id, body)
            raise plain_error(405, "Method Not Allowed")
        if method == "GET":
            rec_text = self._find(company, entity, params["key"], parent_id)
            return Reply(200, self.render(detail_text(*rec_text)))
        if method == "PUT" and entity.put:
            return self.update(company, entity, parent_id, params["key"], body, patch=False)
        if method == "PATCH" and entity.external_id:
            return self.update(company, entity, parent_id, params["key"], body, patch=True)
        raise plain_error(405, "Method Not Allowed")

    def _parent(self, company: Company, entity: Entity, raw: str | None) -> int | None:
        if entity.parent is None:
            return None
        try:
            parent_id = int(raw or "")
        except ValueError:
            raise plain_error(404, "Not Found") from None
        if self.store.find(company.index, entity.parent, "id", parent_id) is None:
            raise plain_error(404, "Not Found")
        return parent_id

    def _key(self, entity: Entity, key: str) -> tuple[str, Any]:
        if entity.key == "idn":
            return "idn", key
        try:
            return "id", int(key)
        except ValueError:
            raise plain_error(404, "Not Found") from None

    def _find(
        self, company: Company, entity: Entity, key: str, parent_id: int | None
    ) -> tuple[str, str]:
        column, value = self._key(entity, key)
        found = self.store.find(company.index, entity.name, column, value, parent_id)
        if found is None:
            raise plain_error(404, "Not Found")
        return found

    # --- lists -----------------------------------------------------------------------

    def list_records(
        self, company: Company, entity: Entity, parent_id: int | None, query: str
    ) -> Reply:
        """One page of a list, filtered, ordered and paginated per the settings."""
        settings = self.settings
        multi: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            multi.setdefault(key, []).append(value)
        page = self._page_param(multi)
        per_page = self._per_page_param(multi, settings.page_size)
        where, params = self.filters(entity, multi, settings)
        if parent_id is not None:
            where.append("parent_id = ?")
            params.append(parent_id)
        rows = self.store.page(
            company.index,
            entity.name,
            where,
            params,
            order=settings.order,
            limit=per_page + 1,
            offset=(page - 1) * per_page,
        )
        has_next = len(rows) > per_page
        rows = rows[:per_page]
        pagination: dict[str, Any] = {}
        if settings.pagination == "legacy":
            total = self.store.count(company.index, entity.name, where, params)
            pagination = {
                "total": total,
                "count": len(rows),
                "per_page": per_page,
                "current_page": page,
                "total_pages": max(1, math.ceil(total / per_page)),
            }
        pagination["has_next_page"] = has_next
        text = '{"data":[' + ",".join(rows) + '],"meta":{"pagination":' + dumps(pagination) + "}}"
        reply = Reply(200, self.render(text))
        for rule in self.paging.page_served(entity.name):
            self._paging_mutation(company, entity, rule, rows)
        return reply

    @staticmethod
    def _page_param(multi: dict[str, list[str]]) -> int:
        raw = multi.get("page", ["1"])[-1]
        try:
            page = int(raw)
        except ValueError:
            page = 0
        if page < 1:
            raise field_errors(400, {"page": "This value should be a positive integer."})
        return page

    @staticmethod
    def _per_page_param(multi: dict[str, list[str]], default: int) -> int:
        if "per_page" not in multi:
            return default
        raw = multi["per_page"][-1]
        allowed = ", ".join(str(size) for size in PAGE_SIZES)
        try:
            per_page = int(raw)
        except ValueError:
            per_page = 0
        if per_page not in PAGE_SIZES:
            raise field_errors(
                400, {"per_page": f"The value you selected is not a valid choice ({allowed})."}
            )
        return per_page

    def filters(
        self, entity: Entity, multi: dict[str, list[str]], settings: Settings
    ) -> tuple[list[str], list[Any]]:
        """SQL conditions for the registry filters present in the query; others ignored."""
        where: list[str] = []
        params: list[Any] = []
        for flt in entity.filters:
            values = multi.get(flt.param)
            if values is None:
                continue
            column = FILTER_COLUMNS[flt.field]
            clause, args = self._filter_clause(flt, column, values, settings)
            where.append(clause)
            params.extend(args)
        return where, params

    def _filter_clause(
        self, flt: ListFilter, column: str, values: list[str], settings: Settings
    ) -> tuple[str, list[Any]]:
        def bad(message: str = "This value is not valid.") -> ApiError:
            return field_errors(400, {flt.param: message})

        def scalar(raw: str) -> Any:
            if column in INT_COLUMNS:
                try:
                    return int(raw)
                except ValueError:
                    raise bad() from None
            return raw

        last = values[-1]
        if flt.op == "in":
            if column == "external_id" and len(values) > MAX_EXTERNAL_IDS:
                raise bad(f"This collection should contain {MAX_EXTERNAL_IDS} elements or less.")
            items = [scalar(v) for v in values if v != ""]
            if not items:
                return "1 = 0", []
            return f"{column} IN ({', '.join('?' * len(items))})", items
        if flt.op == "eq":
            return f"{column} = ?", [scalar(last)]
        if flt.op == "bool":
            flag = last.strip().lower()
            if flag not in ("1", "0", "true", "false"):
                raise bad()
            return f"{column} = ?", [1 if flag in ("1", "true") else 0]
        if flt.op == "has":
            if last not in ("0", "1"):
                raise bad()
            return f"{column} IS {'NOT ' if last == '1' else ''}NULL", []
        fmt = flt.date_format or registry.MODIFIED_SINCE_FORMAT
        try:
            moment = dates.parse_local(last, fmt, settings.tz)
        except ValueError:
            if flt.op == "since":
                raise bad(
                    "Invalid date format. Expected YYYY-MM-DDTHH:MM:SS, e.g. 2024-06-06T00:00:00."
                ) from None
            raise bad("Invalid date.") from None
        whole_day = "%H" not in fmt
        if flt.op == "le":
            if whole_day:
                return f"{column} < ?", [int(dates.day_after(moment).timestamp())]
            return f"{column} <= ?", [int(moment.timestamp())]
        return f"{column} >= ?", [int(moment.timestamp())]

    # --- writes ----------------------------------------------------------------------

    def _form(self, body: bytes) -> dict[str, Any]:
        text = body.decode("utf-8", errors="replace")
        decoded: dict[str, Any] = decode_form(parse_qsl(text, keep_blank_values=True))
        return decoded

    def _convert(
        self, company: Company, entity: Entity, spec: Field, raw: Any, parent_id: int | None
    ) -> Any:
        """A form value converted to its stored JSON form; ValueError carries the message."""
        if spec.ref is not None:
            if not isinstance(raw, dict) or "id" not in raw:
                raise ValueError(f"Expected {spec.name}[id].")
            if raw["id"] in ("", None):
                if spec.required:
                    raise ValueError("This value should not be blank.")
                return None
            try:
                ref_id = int(raw["id"])
            except ValueError:
                raise ValueError("This value should be of type integer.") from None
            target = registry.get(spec.ref)
            scope = parent_id if target.name == entity.name else None
            ref = self.store.record(company.index, target.name, "id", ref_id, scope)
            if ref is None:
                raise ValueError(f"The referenced {target.name} record {ref_id} does not exist.")
            if target.key == "idn":
                return {"id": ref["id"], "idn": ref["idn"]}
            return {"id": ref["id"], "name": ref.get("name")}
        if spec.type == "array":
            if not isinstance(raw, list):
                raise ValueError(f"Expected {spec.name}[] (a list).")
            return [self._scalar(spec.items or "string", v) for v in raw if v != ""]
        if not isinstance(raw, str):
            raise ValueError("Expected a single value.")
        if raw.strip() == "":
            if spec.required:
                raise ValueError("This value should not be blank.")
            return None
        return self._scalar(spec.type, raw)

    def _scalar(self, kind: str, raw: str) -> Any:
        try:
            if kind == "integer":
                return int(raw)
            if kind == "number":
                value = float(raw)
                if not math.isfinite(value):
                    raise ValueError
                return value
            if kind == "boolean":
                flag = raw.strip().lower()
                if flag not in ("0", "1", "true", "false"):
                    raise ValueError
                return flag in ("1", "true")
            if kind == "date-time":
                return dates.stored_dt(dates.parse_input(raw, self.settings.tz))
            if kind == "date":
                return datetime.strptime(raw, "%Y-%m-%d").strftime("%Y-%m-%d")
        except ValueError:
            label = {"date-time": "datetime", "date": "date"}.get(kind, kind)
            raise ValueError(f"This value should be of type {label}.") from None
        return raw

    def validate(
        self,
        company: Company,
        entity: Entity,
        form: dict[str, Any],
        *,
        allowed: dict[str, Field],
        creating: bool,
        parent_id: int | None,
    ) -> dict[str, Any]:
        """Converted changes, or a validation ApiError naming every bad field."""
        errors: dict[str, str] = {}
        changes: dict[str, Any] = {}
        for name, raw in form.items():
            spec = allowed.get(name)
            if spec is None:
                errors[name] = "This field was not expected."
                continue
            try:
                changes[name] = self._convert(company, entity, spec, raw, parent_id)
            except ValueError as exc:
                errors[name] = str(exc)
        if creating:
            for spec in allowed.values():
                if spec.required and spec.name not in form and spec.name not in errors:
                    errors[spec.name] = "This value should not be blank."
        if errors:
            raise field_errors(self.settings.validation_status, errors)
        return changes

    @staticmethod
    def blank_record(entity: Entity) -> Record:
        """Default values of every field of a new record."""
        rec: Record = {}
        for spec in entity.fields:
            if spec.type == "array":
                rec[spec.name] = []
            elif spec.type == "object" and spec.ref is None and spec.name in _WRAPPED:
                rec[spec.name] = {"data": []}
            elif spec.name == "enable":
                rec[spec.name] = True
            else:
                rec[spec.name] = None
        return rec

    def create(self, company: Company, entity: Entity, parent_id: int | None, body: bytes) -> Reply:
        """POST: validate, assign id (and idn), store, fire the webhook."""
        form = self._form(body)
        allowed = {spec.name: spec for spec in entity.writable_fields}
        changes = self.validate(
            company, entity, form, allowed=allowed, creating=True, parent_id=parent_id
        )
        with self.store.write_lock:
            now = self.now_stored()
            invoice = None
            if entity.name == "payments":
                invoice = self._check_payment(company, changes)
            rec = self.blank_record(entity)
            rec.update(changes)
            rec["id"] = self.store.seq.next_id(entity.name)
            if entity.key == "idn":
                rec["idn"] = self.store.seq.next_idn(company.index, entity.name)
            if parent_id is not None:
                rec["customFieldId"] = parent_id
            self._defaults(entity, rec)
            rec["createDate"] = rec["updateDate"] = now
            self.store.save(company.index, entity, rec, self.seed, new=True)
            if invoice is not None:
                self._apply_payment(company, invoice, rec, now)
            self._after_write(company, entity, rec, action=0)
        list_json, extra_json = _split(entity, rec)
        return Reply(201, self.render(detail_text(list_json, extra_json)))

    @staticmethod
    def _defaults(entity: Entity, rec: Record) -> None:
        names = {spec.name for spec in entity.fields}
        if "status" in names and rec.get("status") is None:
            rec["status"] = 2
        if "statusString" in names and rec.get("status") is not None:
            rec["statusString"] = STATUS_LABELS.get(rec["status"])
        if entity.name == "items" and rec.get("type") is not None:
            rec["typeString"] = "Service" if rec["type"] == 1 else "Product"
        if entity.name == "payments" and rec.get("logicType") is None:
            rec["logicType"] = 0

    def update(
        self,
        company: Company,
        entity: Entity,
        parent_id: int | None,
        key: str,
        body: bytes,
        *,
        patch: bool,
    ) -> Reply:
        """PUT (writable fields; lists replaced) or PATCH (externalId + log only)."""
        form = self._form(body)
        if patch:
            allowed = {
                "externalId": registry.EXTERNAL_ID,
                "externalIntegrationLog": registry.EXTERNAL_LOG,
            }
            if self.settings.patch_any_field:
                allowed.update({spec.name: spec for spec in entity.writable_fields})
        else:
            allowed = {spec.name: spec for spec in entity.writable_fields}
        changes = self.validate(
            company, entity, form, allowed=allowed, creating=False, parent_id=parent_id
        )
        names = {spec.name for spec in entity.fields}
        with self.store.write_lock:
            column, value = self._key(entity, key)
            rec = self.store.record(company.index, entity.name, column, value, parent_id)
            if rec is None:
                raise plain_error(404, "Not Found")
            if parent_id is not None:
                rec["customFieldId"] = parent_id
            rec.update({k: v for k, v in changes.items() if k in names})
            self._defaults(entity, rec)
            rec["updateDate"] = self.now_stored()
            self.store.save(company.index, entity, rec, self.seed, new=False)
            self._after_write(company, entity, rec, action=1)
        list_json, extra_json = _split(entity, rec)
        return Reply(200, self.render(detail_text(list_json, extra_json)))

    def _check_payment(self, company: Company, changes: dict[str, Any]) -> Record:
        status = self.settings.validation_status
        invoice = self.store.record(company.index, "invoices", "id", changes["invoice"]["id"])
        if invoice is None:
            raise field_errors(status, {"invoice": "The referenced invoice does not exist."})
        total = float(invoice.get("sum") or 0)
        paid = float(invoice.get("sumPaid") or 0)
        remaining = round(total - paid, 2)
        if remaining <= 0:
            raise field_errors(status, {"sumPaid": "The Invoice is already fully paid."})
        amount = round(float(changes["sumPaid"]), 2)
        if amount <= 0 or amount > remaining:
            message = (
                f"The amount must be greater than 0 and not exceed {_format_amount(remaining)}"
            )
            raise field_errors(status, {"sumPaid": message})
        return invoice

    def _apply_payment(self, company: Company, invoice: Record, payment: Record, now: str) -> None:
        invoices = registry.get("invoices")
        paid = round(float(invoice.get("sumPaid") or 0) + float(payment["sumPaid"]), 2)
        invoice["sumPaid"] = f"{paid:.2f}"
        invoice["status"] = 5 if paid >= round(float(invoice["sum"]), 2) else 4
        invoice["statusString"] = STATUS_LABELS[invoice["status"]]
        invoice["payments"] = [*(invoice.get("payments") or []), payment_summary(payment)]
        invoice["updateDate"] = now
        self.store.save(company.index, invoices, invoice, self.seed, new=False)
        self._after_write(company, invoices, invoice, action=1)

    def _after_write(self, company: Company, entity: Entity, rec: Record, *, action: int) -> None:
        """Side effects of any change: re-embed options into their field, fire webhooks."""
        if entity.parent is not None:
            self._refresh_custom_field(company, entity, int(rec["customFieldId"]))
            return
        if entity.webhook_type is None:
            return
        payload: dict[str, Any] = {"id": rec["id"], "type": entity.webhook_type, "action": action}
        if entity.key == "idn":
            idn = rec["idn"]
            payload["idn"] = int(idn) if str(idn).isdigit() else idn
        self.publish(company, payload)

    def _refresh_custom_field(self, company: Company, option_entity: Entity, field_id: int) -> None:
        parent = registry.get(option_entity.parent or "")
        rec = self.store.record(company.index, parent.name, "id", field_id)
        if rec is None:
            return
        options: list[Record] = []
        offset = 0
        while True:
            rows = self.store.page(
                company.index,
                option_entity.name,
                ["parent_id = ?"],
                [field_id],
                order="id",
                limit=500,
                offset=offset,
            )
            options.extend(Generator.embedded_option(json.loads(row)) for row in rows)
            if len(rows) < 500:
                break
            offset += 500
        rec["options"] = {"data": options}
        rec["updateDate"] = self.now_stored()
        self.store.save(company.index, parent, rec, self.seed, new=False)
        self._after_write(company, parent, rec, action=1)

    def publish(self, company: Company, payload: dict[str, Any]) -> None:
        """Hand a webhook message to the company's dispatcher (if any URL is registered)."""
        dispatcher = self._dispatchers.get(company.index)
        if dispatcher is not None and dispatcher.urls():
            dispatcher.publish(payload)

    # --- activity and touch ------------------------------------------------------------

    def company_by_index(self, index: int) -> Company:
        """The company numbered `index` (KeyError otherwise)."""
        for company in self.companies.values():
            if company.index == index:
                return company
        raise KeyError(f"no company {index}")

    def touch(
        self,
        company: Company,
        entity: Entity,
        keys: list[Any],
        update_date: datetime | None = None,
        parent_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Set records' updateDate (default: now) and fire their webhooks, like a UI edit."""
        touched = []
        with self.store.write_lock:
            stamp = dates.stored_dt(update_date) if update_date else self.now_stored()
            for key in keys:
                column, value = self._key(entity, str(key))
                rec = self.store.record(company.index, entity.name, column, value, parent_id)
                if rec is None:
                    raise KeyError(f"{entity.name} {key} not found")
                rec["updateDate"] = stamp
                self.store.save(company.index, entity, rec, self.seed, new=False)
                self._after_write(company, entity, rec, action=1)
                touched.append({"entity": entity.name, "id": rec["id"], "idn": rec.get("idn")})
        return touched

    def activity(
        self,
        company: Company,
        count: int,
        entities: list[str] | None = None,
        create_ratio: float = 0.3,
        seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """Create or modify `count` random records, as users would; deterministic per call."""
        self._activity_calls += 1
        rng = random.Random(
            f"{self.seed}:activity:{company.index}:{self._activity_calls}"
            if seed is None
            else f"{seed}"
        )
        weights = (
            {name: ACTIVITY_WEIGHTS.get(name, 1) for name in entities}
            if entities
            else ACTIVITY_WEIGHTS
        )
        for name in weights:
            registry.get(name)
        names = list(weights)
        done: list[dict[str, Any]] = []
        with self.store.write_lock:
            for _ in range(count):
                name = rng.choices(names, weights=[weights[n] for n in names])[0]
                entity = registry.get(name)
                create = name in CREATABLE and rng.random() < create_ratio
                rec = self._activity_create(company, entity, rng) if create else None
                action = 0
                if rec is None:
                    action = 1
                    rec = self._activity_modify(company, entity, rng)
                if rec is not None:
                    done.append(
                        {"entity": name, "action": action, "id": rec["id"], "idn": rec.get("idn")}
                    )
        return done

    def _activity_create(
        self, company: Company, entity: Entity, rng: random.Random
    ) -> Record | None:
        counts = plan_counts(company.scale, company.counts)
        gen = Generator(
            self.seed, company.index, int(self.clock.now().timestamp()), counts, self.store.seq
        )
        ctx = DbContext(self.store, company.index)
        index = self.store.count(company.index, entity.name, [], [])
        if entity.parent is not None:
            parent = self.store.random_record(company.index, entity.parent, rng)
            if parent is None:
                return None
            rec = gen.option(entity.name, ctx, rng, parent["id"], index)
        elif entity.name == "invoices":
            rec, _ = gen.invoice(ctx, rng, index)
        else:
            rec = getattr(gen, entity.name)(ctx, rng, index)
        rec["createDate"] = rec["updateDate"] = self.now_stored()
        self.store.save(company.index, entity, rec, self.seed, new=True)
        self._after_write(company, entity, rec, action=0)
        return rec

    def _activity_modify(
        self, company: Company, entity: Entity, rng: random.Random
    ) -> Record | None:
        rec = self.store.random_record(company.index, entity.name, rng)
        if rec is None:
            return None
        names = {spec.name for spec in entity.fields}
        status = rec.get("status")
        if entity.document and status in (0, 1) and rng.random() < 0.6:
            rec["status"] = status + 1
            if rec["status"] == 2 and "approvalDate" in names:
                rec["approvalDate"] = self.now_stored()
        else:
            for candidate in ("note", "customName", "name", "description", "phone"):
                if candidate in names and isinstance(rec.get(candidate), str | None):
                    base = re.sub(r" \(rev \d+\)$", "", rec.get(candidate) or candidate)
                    rec[candidate] = f"{base} (rev {rng.randint(1, 999)})"
                    break
        if "statusString" in names and rec.get("status") is not None:
            rec["statusString"] = STATUS_LABELS.get(rec["status"])
        rec["updateDate"] = self.now_stored()
        self.store.save(company.index, entity, rec, self.seed, new=False)
        self._after_write(company, entity, rec, action=1)
        return rec

    def _paging_mutation(
        self, company: Company, entity: Entity, rule: PagingMutation, rows: list[str]
    ) -> None:
        """Carry out one armed change right after a list page was served."""
        rng = random.Random(f"{self.seed}:paging:{rule.entity}:{rule.after_page}")
        with self.store.write_lock:
            if rule.action == "insert":
                rec = self._activity_create(company, entity, rng)
                self.paging.note_fired(rule, {"id": None if rec is None else rec["id"]})
                return
            if rule.row >= len(rows):
                self.paging.note_fired(rule, {"id": None})
                return
            row_id = int(json.loads(rows[rule.row])["id"])
            rec = self.store.record(company.index, entity.name, "id", row_id)
            if rec is None:
                return
            if rule.action == "disable":
                rec["enable"] = False
            elif rule.action == "status":
                rec["status"] = rule.status
                if "statusString" in rec:
                    rec["statusString"] = STATUS_LABELS.get(int(rule.status or 0))
            else:
                rec["note" if "note" in rec else "name"] = f"edited while paging {rng.random():.6f}"
            rec["updateDate"] = self.now_stored()
            self.store.save(company.index, entity, rec, self.seed, new=False)
            self._after_write(company, entity, rec, action=1)
            self.paging.note_fired(rule, {"id": row_id, "updateDate": rec["updateDate"]})

    def _set_paging_mutations(self, payload: dict[str, Any]) -> dict[str, Any]:
        rules = [PagingMutation.from_dict(item) for item in payload.get("rules", [])]
        for rule in rules:
            registry.get(rule.entity)
        self.paging.set(rules)
        return self.paging.snapshot()

    # --- admin -----------------------------------------------------------------------

    def admin(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Serve one `/_sandbox/` admin request (never counted, never rate limited)."""
        self.apply_due()
        if headers.get(ADMIN_HEADER.lower()) != self.options.admin_token:
            return self.json_reply(401, {"error": "Invalid admin token", "code": 401})
        split = urlsplit(target)
        name = split.path[len(ADMIN_PREFIX) :].strip("/")
        query = dict(parse_qsl(split.query))
        try:
            payload = json.loads(body.decode() or "{}") if body else {}
            if not isinstance(payload, dict):
                raise ValueError("the admin body must be a JSON object")
            handler = self._admin_routes().get((method, name))
            if handler is None:
                return self.json_reply(404, {"error": f"unknown admin route {method} {name}"})
            return self.json_reply(200, handler(payload, query))
        except (ValueError, KeyError, TypeError) as exc:
            return self.json_reply(400, {"error": str(exc)})

    def _admin_routes(
        self,
    ) -> dict[tuple[str, str], Callable[[dict[str, Any], dict[str, str]], Any]]:
        return {
            ("GET", "health"): lambda p, q: {"ok": True},
            ("GET", "info"): lambda p, q: self.info(),
            ("GET", "counters"): lambda p, q: self.metrics.snapshot(),
            ("POST", "counters/reset"): lambda p, q: self._reset_counters(),
            ("GET", "requests"): lambda p, q: {
                "requests": self.metrics.entries(int(q["limit"]) if "limit" in q else None)
            },
            ("POST", "reset"): lambda p, q: self._reset(p),
            ("GET", "faults"): lambda p, q: self._faults_state(),
            ("PUT", "faults"): lambda p, q: self._set_faults(p),
            ("DELETE", "faults"): lambda p, q: self._clear_faults(),
            ("GET", "limits"): lambda p, q: self._limits_state(),
            ("PUT", "limits"): lambda p, q: self._set_limits(p),
            ("POST", "limits/reset"): lambda p, q: self._reset_limits(),
            ("GET", "clock"): lambda p, q: self._clock_state(),
            ("POST", "clock"): lambda p, q: self._set_clock(p),
            ("GET", "settings"): lambda p, q: self.settings.to_dict(),
            ("PUT", "settings"): lambda p, q: self._set_settings(p),
            ("POST", "activity"): lambda p, q: self._activity(p),
            ("POST", "touch"): lambda p, q: self._touch(p),
            ("GET", "paging_mutations"): lambda p, q: self.paging.snapshot(),
            ("PUT", "paging_mutations"): lambda p, q: self._set_paging_mutations(p),
            ("GET", "webhooks"): lambda p, q: self._webhooks_state(int(q.get("company", 1))),
            ("POST", "webhooks"): lambda p, q: self._register_webhook(p),
            ("DELETE", "webhooks"): lambda p, q: self._unregister_webhook(p),
            ("POST", "webhooks/flush"): lambda p, q: self._flush_webhooks(p),
            ("GET", "companies"): lambda p, q: {"companies": self._companies()},
            ("POST", "companies"): lambda p, q: self._add_company(p),
            ("GET", "record"): lambda p, q: self._admin_record(q),
            ("GET", "stats"): lambda p, q: {
                "counts": {str(k): v for k, v in self.store.counts().items()}
            },
        }

    def _companies(self) -> list[dict[str, Any]]:
        return [
            {"index": c.index, "token": c.token, "email": c.email, "scale": c.scale}
            for c in self.companies.values()
        ]

    def info(self) -> dict[str, Any]:
        """Everything a test may want to know about this sandbox at once."""
        return {
            "seed": self.seed,
            "companies": self._companies(),
            "settings": self.settings.to_dict(),
            "clock": self._clock_state(),
            "limits": self.limiter.config.to_dict() if hasattr(self.limiter, "config") else None,
            "counts": {str(k): v for k, v in self.store.counts().items()},
        }

    def _reset_counters(self) -> dict[str, Any]:
        self.metrics.reset()
        return {"ok": True}

    def _reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        if "seed" in payload:
            self.seed = int(payload["seed"])
        self.load_data()
        with self._deferred_lock:  # writes still pending belong to the old data
            self._deferred = []
        self.metrics.reset()
        self.limiter.reset()
        return {"ok": True, "counts": {str(k): v for k, v in self.store.counts().items()}}

    def _faults_state(self) -> dict[str, Any]:
        return {"rules": self.faults.snapshot(), "fired": self.faults.fired()}

    def _set_faults(self, payload: dict[str, Any]) -> dict[str, Any]:
        rules = [FaultRule.from_dict(item) for item in payload.get("rules", [])]
        self.faults.set_rules(rules)
        return self._faults_state()

    def _clear_faults(self) -> dict[str, Any]:
        self.faults.clear()
        return self._faults_state()

    def _limits_state(self) -> dict[str, Any]:
        config = getattr(self.limiter, "config", None)
        return {
            "config": config.to_dict() if config is not None else None,
            "usage": {c.token: self.limiter.usage(c.token) for c in self.companies.values()},
        }

    def _set_limits(self, payload: dict[str, Any]) -> dict[str, Any]:
        if "spec" in payload:
            config = LimitConfig.parse(str(payload["spec"]))
        else:
            config = LimitConfig.from_dict(payload.get("config", payload))
        self.limiter.set_config(config)
        return self._limits_state()

    def _reset_limits(self) -> dict[str, Any]:
        self.limiter.reset()
        return self._limits_state()

    def _clock_state(self) -> dict[str, Any]:
        return {"now": self.clock.now().isoformat(), "frozen": self.clock.frozen}

    def _set_clock(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("set"):
            when = datetime.fromisoformat(str(payload["set"]).replace("Z", "+00:00"))
            self.clock.set(when if when.tzinfo else when.replace(tzinfo=UTC))
        if payload.get("advance"):
            self.clock.advance(float(payload["advance"]))
        if payload.get("freeze") is True:
            self.clock.freeze()
        elif payload.get("freeze") is False:
            self.clock.unfreeze()
        return self._clock_state()

    def _set_settings(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.settings.update(payload)
        return self.settings.to_dict()

    def _company_of(self, payload: dict[str, Any]) -> Company:
        return self.company_by_index(int(payload.get("company", 1)))

    def _activity(self, payload: dict[str, Any]) -> dict[str, Any]:
        changes = self.activity(
            self._company_of(payload),
            int(payload.get("count", 1)),
            entities=payload.get("entities"),
            create_ratio=float(payload.get("create_ratio", 0.3)),
            seed=payload.get("seed"),
        )
        return {"changes": changes}

    def _touch(self, payload: dict[str, Any]) -> dict[str, Any]:
        when = payload.get("update_date")
        moment = None
        if when:
            moment = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=self.settings.tz)
        parent = payload.get("parent_id")
        touched = self.touch(
            self._company_of(payload),
            registry.get(str(payload["entity"])),
            list(payload.get("keys", [])),
            moment,
            None if parent is None else int(parent),
        )
        return {"touched": touched}

    def _webhooks_state(self, company: int) -> dict[str, Any]:
        dispatcher = self.dispatcher(company)
        return {
            "urls": list(dispatcher.urls()),
            "stats": dispatcher.stats(),
            "deliveries": dispatcher.deliveries(),
        }

    def _register_webhook(self, payload: dict[str, Any]) -> dict[str, Any]:
        company = int(payload.get("company", 1))
        self.company_by_index(company)
        self.dispatcher(company).register(str(payload["url"]))
        return self._webhooks_state(company)

    def _unregister_webhook(self, payload: dict[str, Any]) -> dict[str, Any]:
        company = int(payload.get("company", 1))
        self.dispatcher(company).unregister(str(payload["url"]))
        return self._webhooks_state(company)

    def _flush_webhooks(self, payload: dict[str, Any]) -> dict[str, Any]:
        timeout = float(payload.get("timeout", 10.0))
        deadline = time.monotonic() + timeout
        with self._dispatch_lock:
            dispatchers = list(self._dispatchers.values())
        ok = all(d.flush(max(0.0, deadline - time.monotonic())) for d in dispatchers)
        return {"flushed": ok}

    def _add_company(self, payload: dict[str, Any]) -> dict[str, Any]:
        company = self.add_company(
            str(payload["token"]),
            str(payload["email"]),
            payload.get("scale"),
            payload.get("counts"),
        )
        return {"index": company.index, "token": company.token, "email": company.email}

    def _admin_record(self, query: dict[str, str]) -> Any:
        entity = registry.get(query["entity"])
        if entity.storage is not None:
            entity = registry.get(entity.storage)
        column, value = self._key(entity, query["key"])
        rec = self.store.record(int(query.get("company", 1)), entity.name, column, value)
        if rec is None:
            raise KeyError(f"{entity.name} {query['key']} not found")
        return rec


_WRAPPED = frozenset(
    {
        "contacts",
        "paymentTerms",
        "approvalSteps",
        "dataDocumentCustomFields",
        "dataItemCustomFields",
        "options",
    }
)
"""Relations Precoro wraps as `{"data": [...]}`."""


def _split(entity: Entity, rec: Record) -> tuple[str, str]:
    return split_json(entity, rec)
