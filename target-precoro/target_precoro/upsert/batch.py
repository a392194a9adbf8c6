"""One batch of one stream, from incoming records to outcomes.

Order of work per batch: validate; read what the index cannot vouch for (one
`modifiedSince` refresh per run, then `external_id[]` look-ups, batched); resolve
references; decide per record (update, link, create, or leave alone); then write,
each write journalled before it is sent. Reads are shared by the whole batch; a
write is one call per record that needs one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from precoro_client.errors import AuthenticationError, BudgetExhausted, LedgerUnavailable
from precoro_client.registry import PARENT_ID_FIELD, Entity, get

from target_precoro.index import NO_PARENT
from target_precoro.report import RecordOutcome
from target_precoro.upsert.base import Interrupted, Item, Pending, RunStop
from target_precoro.upsert.decide import Deciding
from target_precoro.validate import InvalidRecord, validate_record


class Upserter(Deciding):
    """Applies batches of records to Precoro; shared by every sink of a run."""

    def stop_for(self, exc: LedgerUnavailable) -> None:
        """The shared ledger or account state went away: stop like a spent budget (exit 75)."""
        if self.halt is None:
            self.halt = RunStop(exc.message, fatal=False, retry=True)
            self.report.halted = self.halt.reason

    def run_batch(self, entity: Entity, items: list[Item]) -> None:
        """Give every item an outcome (or `not attempted` after a halt or a stop request)."""
        if self.halt is None and self.stop_requested is not None:
            self.halt = RunStop(self.stop_requested, fatal=False)
        if self.halt is None:
            try:
                self._run(entity, items)
            except AuthenticationError as exc:
                self.halt = RunStop(exc.message, fatal=True)
            except BudgetExhausted as exc:
                retry = isinstance(exc, LedgerUnavailable)
                self.halt = RunStop(exc.message, fatal=False, retry=retry)
            except Interrupted as exc:
                self.halt = RunStop(str(exc), fatal=False)
            if self.halt is not None:
                self.report.halted = self.halt.reason
        self._not_attempted(entity, items)
        self.report.flush()

    def _run(self, entity: Entity, items: list[Item]) -> None:
        latest: dict[tuple[str | None, str], Pending] = {}
        for item in items:
            try:
                incoming = validate_record(
                    entity, item.record, unknown_fields=self.settings.unknown_fields
                )
            except InvalidRecord as exc:
                self._emit(
                    item, RecordOutcome(entity.name, exc.external_id, "invalid", message=str(exc))
                )
                continue
            too_long = self.index.too_long(entity, incoming.external_id)
            if too_long is not None:
                bad = InvalidRecord(entity.name, incoming.external_id, "externalId", too_long)
                self._emit(
                    item,
                    RecordOutcome(entity.name, incoming.external_id, "invalid", message=str(bad)),
                )
                continue
            if incoming.parent is None and entity.parent is not None:
                incoming.parent = self.settings.custom_fields.get(entity.name)
            key = (incoming.parent, incoming.external_id)
            earlier = latest.get(key)
            if earlier is not None:
                why = "superseded by a later record with the same externalId in this batch"
                self._emit(
                    earlier.item,
                    RecordOutcome(
                        entity.name,
                        incoming.external_id,
                        "skipped",
                        message=why,
                        superseded=f"line {item.line}",
                    ),
                )
            latest[key] = Pending(item, incoming)
        groups: dict[int, list[Pending]] = defaultdict(list)
        for pending in latest.values():
            parent = self._parent_id(entity, pending)
            if parent is not None:
                groups[parent].append(pending)
        for parent, group in groups.items():
            self._run_group(entity, parent, group)

    def _parent_id(self, entity: Entity, pending: Pending) -> int | None:
        """`NO_PARENT` for top-level entities; the custom field's id for options."""
        if entity.parent is None:
            return NO_PARENT
        given = pending.incoming.parent
        ext = pending.incoming.external_id
        if not given:
            why = "is missing: name the custom field by id or name (or set custom_fields)"
            exc = InvalidRecord(entity.name, ext, PARENT_ID_FIELD, why)
            self._emit(pending.item, RecordOutcome(entity.name, ext, "invalid", message=str(exc)))
            return None
        found = self.index.custom_field_id(entity, given)
        if found is None:
            why = f"names no {entity.parent} field: {given!r}"
            exc = InvalidRecord(entity.name, ext, PARENT_ID_FIELD, why)
            self._emit(pending.item, RecordOutcome(entity.name, ext, "invalid", message=str(exc)))
        return found

    def _run_group(self, entity: Entity, parent: int, group: list[Pending]) -> None:
        self._check_stop()
        ext_ids = [p.incoming.external_id for p in group]
        open_writes = self.journal.open_writes(entity.name, parent)
        force = {x for x in ext_ids if x in open_writes}
        self.index.refresh(entity, parent)
        self.index.lookup(entity, parent, self.index.needs_lookup(entity, parent, ext_ids, force))
        ready = self._resolve_refs(entity, parent, group)
        unmatched: list[Pending] = []
        existing: list[tuple[Pending, dict[str, Any]]] = []
        now = self._server_now()
        for pending in ready:
            ext = pending.incoming.external_id
            refused = self.index.refused(entity, parent, ext)
            if refused is not None:
                bad = InvalidRecord(entity.name, ext, "externalId", refused)
                self._emit(
                    pending.item, RecordOutcome(entity.name, ext, "invalid", message=str(bad))
                )
                continue
            rows = self.index.find(entity, parent, ext)
            if ext in force:
                entry = open_writes[ext]
                # A POST found was applied; anything else unknown may still be applied
                # (a PUT of a killed run landing after ours would revert the record).
                waits = entry.method != "POST" or not rows
                if waits and not self._settled(entry, now):
                    self._emit(pending.item, self._unresolved(entity, ext, entry, now))
                    continue
                found_id = int(rows[0]["id"]) if rows else None
                how = "found by look-up" if rows else "not applied (look-up found nothing)"
                if len(rows) == 1:
                    self._adopt_landed_base(entity, parent, rows[0], entry)
                self.journal.resolve(entity.name, parent, ext, found_id, how)
                pending.recovered = bool(rows) and entry.method == "POST"
            if len(rows) > 1:
                ids = sorted(int(r["id"]) for r in rows)
                why = f"{len(rows)} Precoro records already carry this externalId: ids {ids}"
                self._emit(pending.item, RecordOutcome(entity.name, ext, "ambiguous", message=why))
            elif rows:
                existing.append((pending, rows[0]))
            else:
                unmatched.append(pending)
        try:
            matches = self._match(entity, parent, unmatched)
            for pending, row in existing:
                self._apply_existing(entity, parent, pending, row)
            for pending in unmatched:
                self._apply_new(entity, parent, pending, matches.get(pending.incoming.external_id))
        finally:
            agreed, self.agreed = self.agreed, []
            self.index.set_bases(entity, parent, agreed)

    # --- references ----------------------------------------------------------------

    def _resolve_refs(self, entity: Entity, parent: int, group: list[Pending]) -> list[Pending]:
        wanted: dict[str, set[str]] = defaultdict(set)
        for pending in group:
            for ref in pending.incoming.refs.values():
                if ref is not None and ref.external_id is not None:
                    wanted[ref.entity].add(ref.external_id)
        for name, ids in wanted.items():
            target = get(name)
            scope = parent if target.name == entity.name else NO_PARENT
            self.index.refresh(target, scope)
            self.index.lookup(
                target, scope, self.index.needs_lookup(target, scope, sorted(ids), set())
            )
        ready = []
        for pending in group:
            values = dict(pending.incoming.values)
            problem = None
            for name, ref in pending.incoming.refs.items():
                if ref is None:
                    values[name] = None
                elif ref.precoro_id is not None:
                    values[name] = ref.precoro_id
                else:
                    target = get(ref.entity)
                    scope = parent if target.name == entity.name else NO_PARENT
                    rows = self.index.find(target, scope, ref.external_id or "")
                    too_long = self.index.refused(target, scope, ref.external_id or "")
                    if too_long is not None:
                        why = f"references {ref.entity} externalId {ref.external_id!r}, which "
                        problem = InvalidRecord(
                            entity.name, pending.incoming.external_id, name, why + too_long
                        )
                        break
                    if len(rows) != 1:
                        state = "no" if not rows else f"{len(rows)}"
                        problem = InvalidRecord(
                            entity.name,
                            pending.incoming.external_id,
                            name,
                            f"references {ref.entity} externalId {ref.external_id!r}, which "
                            f"{state} Precoro {ref.entity} records carry",
                        )
                        break
                    values[name] = int(rows[0]["id"])
            if problem is not None:
                ext = pending.incoming.external_id
                self._emit(
                    pending.item, RecordOutcome(entity.name, ext, "invalid", message=str(problem))
                )
                continue
            pending.values = values
            ready.append(pending)
        return ready
