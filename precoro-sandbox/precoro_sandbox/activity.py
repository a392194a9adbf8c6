"""Simulated activity: records created and changed as Precoro users would, and while paging.

`activity` (admin) creates or modifies random records, `touch` bumps given records, and
armed paging mutations change a list right after one of its pages was served. All go
through `rules.after_write`, so webhooks and embedded options follow as for API writes.
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from precoro_client import registry
from precoro_client.registry import Entity

from precoro_sandbox import dates
from precoro_sandbox.datagen import STATUS_LABELS, Generator, Record, ref_info
from precoro_sandbox.entities import REF_KEYS, SANDBOX_ENTITIES, plan_counts
from precoro_sandbox.paging import PagingMutation
from precoro_sandbox.routes import record_key
from precoro_sandbox.store import Store

if TYPE_CHECKING:
    from precoro_sandbox.app import Company, Sandbox

ACTIVITY_WEIGHTS: dict[str, int] = {
    name: entry.activity_weight for name, entry in SANDBOX_ENTITIES.items()
}
"""Default mix of entities `activity` touches (by weight; the entity table's)."""

CREATABLE = frozenset(name for name, entry in SANDBOX_ENTITIES.items() if entry.creatable)
"""Entities simulated users may create (the others are only modified)."""


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
        keys = REF_KEYS[coll]
        return dict(zip(keys, ref_info(keys, rec), strict=True))


class Activity:
    """Changes made as if by Precoro users: random activity, touches, paging mutations."""

    def __init__(self, sandbox: Sandbox) -> None:
        """Bind to the sandbox whose data the simulated users change."""
        self.sb = sandbox
        self._calls = 0

    def touch(
        self,
        company: Company,
        entity: Entity,
        keys: list[Any],
        update_date: datetime | None = None,
        parent_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Set records' updateDate (default: now) and fire their webhooks, like a UI edit."""
        sb = self.sb
        touched = []
        with sb.store.write_lock:
            stamp = dates.stored_dt(update_date) if update_date else sb.now_stored()
            for key in keys:
                column, value = record_key(entity, str(key))
                rec = sb.store.record(company.index, entity.name, column, value, parent_id)
                if rec is None:
                    raise KeyError(f"{entity.name} {key} not found")
                rec["updateDate"] = stamp
                sb.store.save(company.index, entity, rec, sb.seed, new=False)
                sb.rules.after_write(company, entity, rec, action=1)
                touched.append({"entity": entity.name, "id": rec["id"], "idn": rec.get("idn")})
        return touched

    def run(
        self,
        company: Company,
        count: int,
        entities: list[str] | None = None,
        create_ratio: float = 0.3,
        seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """Create or modify `count` random records, as users would; deterministic per call."""
        self._calls += 1
        rng = random.Random(
            f"{self.sb.seed}:activity:{company.index}:{self._calls}" if seed is None else f"{seed}"
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
        with self.sb.store.write_lock:
            for _ in range(count):
                name = rng.choices(names, weights=[weights[n] for n in names])[0]
                entity = registry.get(name)
                create = name in CREATABLE and rng.random() < create_ratio
                rec = self.create(company, entity, rng) if create else None
                action = 0
                if rec is None:
                    action = 1
                    rec = self.modify(company, entity, rng)
                if rec is not None:
                    done.append(
                        {"entity": name, "action": action, "id": rec["id"], "idn": rec.get("idn")}
                    )
        return done

    def create(self, company: Company, entity: Entity, rng: random.Random) -> Record | None:
        """A new generated record of `entity`, stored as if a user had created it now."""
        sb = self.sb
        counts = plan_counts(company.scale, company.counts)
        gen = Generator(
            sb.seed, company.index, int(sb.clock.now().timestamp()), counts, sb.store.seq
        )
        ctx = DbContext(sb.store, company.index)
        index = sb.store.count(company.index, entity.name, [], [])
        build = SANDBOX_ENTITIES[entity.name].build
        if build is None:
            return None
        parent_id = None
        if entity.parent is not None:
            parent = sb.store.random_record(company.index, entity.parent, rng)
            if parent is None:
                return None
            parent_id = int(parent["id"])
        rec = build(gen, ctx, rng, index, parent_id)
        rec["createDate"] = rec["updateDate"] = sb.now_stored()
        sb.store.save(company.index, entity, rec, sb.seed, new=True)
        sb.rules.after_write(company, entity, rec, action=0)
        return rec

    def modify(self, company: Company, entity: Entity, rng: random.Random) -> Record | None:
        """A random stored record of `entity` changed as a user would (status or a text)."""
        sb = self.sb
        rec = sb.store.random_record(company.index, entity.name, rng)
        if rec is None:
            return None
        names = {spec.name for spec in entity.fields}
        status = rec.get("status")
        if entity.fetch_detail and status in (0, 1) and rng.random() < 0.6:
            rec["status"] = status + 1
            if rec["status"] == 2 and "approvalDate" in names:
                rec["approvalDate"] = sb.now_stored()
        else:
            for candidate in ("note", "customName", "name", "description", "phone"):
                if candidate in names and isinstance(rec.get(candidate), str | None):
                    base = re.sub(r" \(rev \d+\)$", "", rec.get(candidate) or candidate)
                    rec[candidate] = f"{base} (rev {rng.randint(1, 999)})"
                    break
        if "statusString" in names and rec.get("status") is not None:
            rec["statusString"] = STATUS_LABELS.get(rec["status"])
        rec["updateDate"] = sb.now_stored()
        sb.store.save(company.index, entity, rec, sb.seed, new=False)
        sb.rules.after_write(company, entity, rec, action=1)
        return rec

    def paging_mutation(
        self, company: Company, entity: Entity, rule: PagingMutation, rows: list[str]
    ) -> None:
        """Carry out one armed change right after a list page was served."""
        sb = self.sb
        rng = random.Random(f"{sb.seed}:paging:{rule.entity}:{rule.after_page}")
        with sb.store.write_lock:
            if rule.action == "insert":
                rec = self.create(company, entity, rng)
                sb.paging.note_fired(rule, {"id": None if rec is None else rec["id"]})
                return
            if rule.row >= len(rows):
                sb.paging.note_fired(rule, {"id": None})
                return
            row_id = int(json.loads(rows[rule.row])["id"])
            rec = sb.store.record(company.index, entity.name, "id", row_id)
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
            rec["updateDate"] = sb.now_stored()
            sb.store.save(company.index, entity, rec, sb.seed, new=False)
            sb.rules.after_write(company, entity, rec, action=1)
            sb.paging.note_fired(rule, {"id": row_id, "updateDate": rec["updateDate"]})
