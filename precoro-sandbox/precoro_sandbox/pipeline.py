"""The request pipeline: one Precoro API request through URL limit, auth, rate limit, fault, route.

`Pipeline.process` turns one HTTP request into a `Reply` and records it in the metrics.
The order of the checks is part of the emulation (see the sandbox README): a too-long
URL is refused by the web server in front, then auth, then the rate limiter, then any
armed fault, then the route itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from precoro_client.registry import Entity

from precoro_sandbox import dates
from precoro_sandbox.entities import post_fields
from precoro_sandbox.faults import FaultRule, html_error_page, json_error_body
from precoro_sandbox.replies import ApiError, Reply, json_reply, plain_error
from precoro_sandbox.routes import Route, match_route, record_key
from precoro_sandbox.store import detail_text

if TYPE_CHECKING:
    from precoro_sandbox.app import Company, Sandbox

Found = tuple[Route, dict[str, str]] | None


class Pipeline:
    """Serves Precoro API requests against one sandbox's state."""

    def __init__(self, sandbox: Sandbox) -> None:
        """Bind to the sandbox whose data, limiter and faults every request goes through."""
        self.sb = sandbox
        self._deferred: list[tuple[datetime, Callable[[], Reply]]] = []
        """Writes accepted by an `apply_later` fault: (due on the sandbox clock, apply)."""
        self._deferred_lock = threading.Lock()

    def authenticate(self, headers: dict[str, str]) -> Company | None:
        """The company a request's `X-AUTH-TOKEN` + `email` pair opens, if any."""
        token = headers.get("x-auth-token")
        email = headers.get("email")
        if not token or not email:
            return None
        company = self.sb.companies.get(token)
        if company is None or company.email.lower() != email.strip().lower():
            return None
        return company

    def process(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Serve one Precoro API request: auth, rate limit, fault, then the route."""
        self.apply_due()
        split = urlsplit(target)
        path = unquote(split.path).rstrip("/") or "/"
        found = match_route(path)
        route_label = found[0].pattern if found else "<unknown>"
        entry: dict[str, Any] = {
            "time": dates.stored_dt(self.sb.clock.now()),
            "method": method,
            "path": path,
            "query": split.query,
            "route": route_label,
            "company": None,
            "limiter": None,
            "fault": None,
        }
        company = self.authenticate(headers)
        if len(target.encode()) > self.sb.options.max_url_bytes:
            # The web server in front refuses it before the application sees it.
            reply = Reply(414, html_error_page(414), "text/html; charset=utf-8")
        elif company is None:
            reply = json_reply(401, {"error": "Invalid credentials", "code": 401})
        else:
            entry["company"] = company.index
            reply = self._limited(company, method, target, path, split.query, found, body, entry)
        entry["status"] = 0 if reply.action == "drop" else reply.status
        self.sb.metrics.record(entry)
        return reply

    def _limited(  # noqa: PLR0917 - one request's pieces, passed along the pipeline
        self,
        company: Company,
        method: str,
        target: str,
        path: str,
        query: str,
        found: Found,
        body: bytes,
        entry: dict[str, Any],
    ) -> Reply:
        rejection = self.sb.limiter.check(company.token, method, target)
        if rejection is not None:
            entry["limiter"] = rejection.limit_type
            return json_reply(429, rejection.body())
        rule = self.sb.faults.pick(method, path)
        if rule is None:
            return self.serve(company, method, query, found, body)
        entry["fault"] = rule.kind
        return self._faulted(rule, company, method, query, found, body)

    def _faulted(  # noqa: PLR0917 - one request's pieces, passed along the pipeline
        self,
        rule: FaultRule,
        company: Company,
        method: str,
        query: str,
        found: Found,
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
            due = self.sb.clock.now() + timedelta(seconds=rule.delay_seconds)
            with self._deferred_lock:
                self._deferred.append(
                    (due, lambda: self.serve(company, method, query, found, body))
                )
            return Reply(0, b"", action="drop")
        if rule.kind == "delay":
            time.sleep(max(0.0, rule.delay_seconds))
            if rule.then_drop:
                return Reply(0, b"", action="drop")
            return self.serve(company, method, query, found, body)
        reply = self.serve(company, method, query, found, body)
        if rule.kind == "truncate":
            reply.action = "truncate"
            return reply
        # apply_then_fail: the write happened; the client never learns it did.
        if rule.then_drop:
            return Reply(0, b"", action="drop")
        return error()

    def apply_due(self) -> int:
        """Apply the `apply_later` writes whose time has come; returns how many."""
        now = self.sb.clock.now()
        with self._deferred_lock:
            due = [apply for when, apply in self._deferred if when <= now]
            self._deferred = [(when, apply) for when, apply in self._deferred if when > now]
        for apply in due:
            apply()
        return len(due)

    def forget_deferred(self) -> None:
        """Drop the writes still pending (they belong to data that was just regenerated)."""
        with self._deferred_lock:
            self._deferred = []

    def serve(self, company: Company, method: str, query: str, found: Found, body: bytes) -> Reply:
        """The route's answer, with any `ApiError` turned into its JSON reply."""
        try:
            if found is None:
                raise plain_error(404, "Not Found")
            route, params = found
            return self._dispatch(company, route, params, method, query, body)
        except ApiError as exc:
            return json_reply(exc.status, exc.body)

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
        if route.kind == "action":
            if method != route.method or route.action is None:
                raise plain_error(405, "Method Not Allowed")
            return self.sb.rules.act(route.action, company, entity, params.get("key"), body)
        parent_id = self._parent(company, entity, params.get("parent_id"))
        if route.kind == "list":
            if method == "GET":
                return self.sb.lists.serve(company, entity, parent_id, query)
            if method == "POST" and post_fields(entity) is not None:
                return self.sb.writes.create(company, entity, parent_id, body)
            raise plain_error(405, "Method Not Allowed")
        if method == "GET":
            rec_text = self._find(company, entity, params["key"], parent_id)
            return Reply(200, self.sb.render(detail_text(*rec_text)))
        if method == "PUT" and entity.updatable:
            return self.sb.writes.update(
                company, entity, parent_id, params["key"], body, patch=False
            )
        if method == "PATCH" and entity.external_id:
            return self.sb.writes.update(
                company, entity, parent_id, params["key"], body, patch=True
            )
        raise plain_error(405, "Method Not Allowed")

    def _parent(self, company: Company, entity: Entity, raw: str | None) -> int | None:
        if entity.parent is None:
            return None
        try:
            parent_id = int(raw or "")
        except ValueError:
            raise plain_error(404, "Not Found") from None
        if self.sb.store.find(company.index, entity.parent, "id", parent_id) is None:
            raise plain_error(404, "Not Found")
        return parent_id

    def _find(
        self, company: Company, entity: Entity, key: str, parent_id: int | None
    ) -> tuple[str, str]:
        column, value = record_key(entity, key)
        found = self.sb.store.find(company.index, entity.name, column, value, parent_id)
        if found is None:
            raise plain_error(404, "Not Found")
        return found
