"""One running sandbox: its state, and the collaborators that serve requests against it.

`Sandbox` owns the data (store, companies), the clock, limiter, faults, metrics and
settings, and wires the modules that do the work, each named for its job:

- `pipeline` — one API request through URL limit, auth, rate limit, fault, route;
- `lists` — filtering compiled to SQL, paging;
- `writes` — form decoding, validation, create and update;
- `rules` — Precoro business rules (payments on invoices, custom-field refresh, webhooks);
- `activity` — simulated users (random activity, touches, paging mutations);
- `admin` — the `/_sandbox/` admin API (a declarative route table);
- `metrics` — request counters and log.

Routes are generated from `precoro_client.registry.ENTITIES` (`routes.py`), never
written per entity, so the sandbox serves exactly what the registry says Precoro serves.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from precoro_client import registry
from precoro_client.registry import Entity

from precoro_sandbox import dates
from precoro_sandbox.activity import Activity
from precoro_sandbox.admin import ADMIN_HEADER, ADMIN_PREFIX, Admin
from precoro_sandbox.clock import SandboxClock
from precoro_sandbox.datagen import Generator
from precoro_sandbox.entities import generate, plan_counts
from precoro_sandbox.faults import FaultInjector
from precoro_sandbox.limits import LimitConfig, RateLimiter
from precoro_sandbox.lists import Lists
from precoro_sandbox.metrics import Metrics
from precoro_sandbox.options import SandboxOptions, Settings
from precoro_sandbox.paging import PagingPlan
from precoro_sandbox.pipeline import Pipeline
from precoro_sandbox.replies import Reply
from precoro_sandbox.rules import BusinessRules
from precoro_sandbox.store import Store, dumps, row_for
from precoro_sandbox.webhooks import WebhookDispatcher
from precoro_sandbox.writes import Writes

NUMERIC_EXTERNAL_ID = re.compile(r'"externalId":"(0|[1-9][0-9]{0,14})"')
"""An all-digit externalId in stored (compact) JSON that a number represents exactly."""

__all__ = ["ADMIN_HEADER", "ADMIN_PREFIX", "Company", "Reply", "Sandbox"]
"""What `server.py` and older imports take from here; each lives in its own module."""


@dataclass(frozen=True)
class Company:
    """One Precoro company: its credentials and its index in the data store."""

    index: int
    token: str
    email: str
    scale: int
    counts: dict[str, int] = field(default_factory=dict, hash=False, compare=False)


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
        self.paging = PagingPlan()
        self.pipeline = Pipeline(self)
        self.lists = Lists(self)
        self.writes = Writes(self)
        self.rules = BusinessRules(self)
        self.simulation = Activity(self)
        self.admin_api = Admin(self)
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
            row_for(company.index, entities[coll], rec, self.seed) for coll, rec in generate(gen)
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

    def existing_dispatcher(self, company: int) -> WebhookDispatcher | None:
        """The company's webhook dispatcher if one was ever created (no URL: none)."""
        return self._dispatchers.get(company)

    def all_dispatchers(self) -> list[WebhookDispatcher]:
        """Every dispatcher created so far."""
        with self._dispatch_lock:
            return list(self._dispatchers.values())

    def close(self) -> None:
        """Stop webhook delivery and release the database."""
        for dispatcher in self.all_dispatchers():
            dispatcher.close()
        self.store.close()

    # --- helpers ---------------------------------------------------------------------

    def now_stored(self) -> str:
        """The sandbox clock's current time in stored form."""
        return dates.stored_dt(self.clock.now())

    def render(self, text: str) -> bytes:
        """Stored JSON text rendered for clients, as bytes.

        Dates are written in the company zone and date style; under the
        `numeric_external_ids` switch all-digit externalIds become numbers.
        """
        rendered = dates.render(text, self.settings.timezone, self.settings.date_style)
        if self.settings.numeric_external_ids:
            rendered = NUMERIC_EXTERNAL_ID.sub(r'"externalId":\1', rendered)
        return rendered.encode()

    def company_by_index(self, index: int) -> Company:
        """The company numbered `index` (KeyError otherwise)."""
        for company in self.companies.values():
            if company.index == index:
                return company
        raise KeyError(f"no company {index}")

    def company_list(self) -> list[dict[str, Any]]:
        """Every company's index, credentials and scale (admin)."""
        return [
            {"index": c.index, "token": c.token, "email": c.email, "scale": c.scale}
            for c in self.companies.values()
        ]

    def clock_state(self) -> dict[str, Any]:
        """The sandbox time and whether it is frozen (admin)."""
        return {"now": self.clock.now().isoformat(), "frozen": self.clock.frozen}

    def info(self) -> dict[str, Any]:
        """Everything a test may want to know about this sandbox at once."""
        return {
            "seed": self.seed,
            "companies": self.company_list(),
            "settings": self.settings.to_dict(),
            "clock": self.clock_state(),
            "limits": self.limiter.config.to_dict() if hasattr(self.limiter, "config") else None,
            "counts": {str(k): v for k, v in self.store.counts().items()},
        }

    # --- entry points ------------------------------------------------------------------

    def process(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Serve one Precoro API request (see `pipeline.py`)."""
        return self.pipeline.process(method, target, headers, body)

    def admin(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """Serve one `/_sandbox/` admin request (see `admin.py`)."""
        return self.admin_api.handle(method, target, headers, body)

    def apply_due(self) -> int:
        """Apply the `apply_later` writes whose time has come; returns how many."""
        return self.pipeline.apply_due()

    def publish(self, company: Company, payload: dict[str, Any]) -> None:
        """Hand a webhook message to the company's dispatcher (if any URL is registered)."""
        self.rules.publish(company, payload)

    def activity(
        self,
        company: Company,
        count: int,
        entities: list[str] | None = None,
        create_ratio: float = 0.3,
        seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """Create or modify `count` random records, as users would (see `activity.py`)."""
        return self.simulation.run(company, count, entities, create_ratio, seed)

    def touch(
        self,
        company: Company,
        entity: Entity,
        keys: list[Any],
        update_date: datetime | None = None,
        parent_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Set records' updateDate (default: now) and fire their webhooks, like a UI edit."""
        return self.simulation.touch(company, entity, keys, update_date, parent_id)
