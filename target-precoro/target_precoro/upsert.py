"""One batch of one stream, from incoming records to outcomes.

Order of work per batch: validate; read what the index cannot vouch for (one
`modifiedSince` refresh per run, then `external_id[]` look-ups, batched); resolve
references; decide per record (update, link, create, or leave alone); then write,
each write journalled before it is sent. Reads are shared by the whole batch; a
write is one call per record that needs one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from precoro_client.client import PrecoroClient
from precoro_client.errors import (
    AuthenticationError,
    BudgetExhausted,
    LedgerUnavailable,
    NotFound,
    PrecoroError,
    RetriableError,
    ValidationFailed,
    WriteOutcomeUnknown,
)
from precoro_client.forms import encode_record
from precoro_client.registry import PARENT_ID_FIELD, Entity, get

from target_precoro.index import NO_PARENT, Index, path_parent
from target_precoro.journal import Journal, OpenWrite
from target_precoro.matcher import Match, Matcher
from target_precoro.planner import changes, record_key
from target_precoro.report import RecordOutcome, RunReport, field_changes
from target_precoro.settings import TargetSettings
from target_precoro.streams import can_create, can_update
from target_precoro.threeway import Decision, decide, describe
from target_precoro.validate import Incoming, InvalidRecord, missing_required, validate_record

logger = logging.getLogger("target_precoro")


@dataclass
class Item:
    """One incoming record as read, with its input line number."""

    record: dict[str, Any]
    line: int | None = None
    done: bool = False


@dataclass
class Pending:
    """A validated record waiting for its decision."""

    item: Item
    incoming: Incoming
    values: dict[str, Any] = field(default_factory=dict)
    """Writable values with references resolved to Precoro ids."""
    recovered: bool = False
    """An earlier run's POST for this externalId had an unknown outcome."""
    relooked: bool = False
    """A write answered 404 and the externalId was looked up again (once only)."""


class Halt(Exception):
    """Stop writing: the budget is spent or the credentials were refused."""

    def __init__(self, reason: str, *, fatal: bool, retry: bool = False) -> None:
        """`fatal`: exit 1 at once (401/403); `retry`: exit 75 after the report.

        `retry` marks a stop for want of something the run needs (the shared ledger).
        """
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.retry = retry


class Interrupted(Exception):
    """The run was asked to stop (SIGTERM/SIGINT); raised between calls, never mid-write."""


class Upserter:
    """Applies batches of records to Precoro; shared by every sink of a run."""

    def __init__(
        self,
        *,
        client: PrecoroClient,
        index: Index,
        journal: Journal,
        report: RunReport,
        settings: TargetSettings,
        schema_of: Callable[[str], dict[str, Any] | None],
    ) -> None:
        """Wire the collaborators; nothing is read until the first batch."""
        self.client = client
        self.index = index
        self.journal = journal
        self.report = report
        self.settings = settings
        self.schema_of = schema_of
        self.claims: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
        self.halt: Halt | None = None
        self.agreed: list[tuple[int, dict[str, Any]]] = []
        """Bases of fields seen equal in the current group, stored when it ends."""
        self.stop_requested: str | None = None
        """Set by the target's signal handler: no further call starts; the one in flight ends."""

    # --- outcomes ------------------------------------------------------------------

    def _emit(self, item: Item, outcome: RecordOutcome) -> None:
        item.done = True
        outcome.line = item.line
        self.report.add(outcome, item.record, self.schema_of(outcome.stream))

    def _not_attempted(self, entity: Entity, items: list[Item]) -> None:
        reason = self.halt.reason if self.halt else "run stopped"
        for item in items:
            if not item.done:
                ext = item.record.get("externalId")
                self._emit(
                    item,
                    RecordOutcome(
                        entity.name,
                        None if ext is None else str(ext),
                        "failed",
                        message=f"not attempted: {reason}",
                        final=False,
                    ),
                )

    # --- the batch -----------------------------------------------------------------

    def run_batch(self, entity: Entity, items: list[Item]) -> None:
        """Give every item an outcome (or `not attempted` after a halt or a stop request)."""
        if self.halt is None and self.stop_requested is not None:
            self.halt = Halt(self.stop_requested, fatal=False)
        if self.halt is None:
            try:
                self._run(entity, items)
            except AuthenticationError as exc:
                self.halt = Halt(exc.message, fatal=True)
            except BudgetExhausted as exc:
                retry = isinstance(exc, LedgerUnavailable)
                self.halt = Halt(exc.message, fatal=False, retry=retry)
            except Interrupted as exc:
                self.halt = Halt(str(exc), fatal=False)
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

    def _check_stop(self) -> None:
        """Between calls: stop here if a signal asked the run to stop."""
        if self.stop_requested is not None:
            raise Interrupted(self.stop_requested)

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

    def _adopt_landed_base(
        self, entity: Entity, parent: int, row: dict[str, Any], entry: OpenWrite
    ) -> None:
        """Fields where Precoro now holds what our settled write sent: that write landed.

        Its answer was lost, so the base never moved; without this, the three-way rule
        would read our own write as a person's edit in Precoro (`kept_precoro` or
        `conflict`). Done before the journal entry is resolved, so a kill in between
        leaves the entry open and the next run does it again.
        """
        if not entry.base:
            return
        differ = changes(entity, entry.base, row, self.settings.list_merge)
        landed = {k: v for k, v in entry.base.items() if k != "externalId" and k not in differ}
        self._agree(entity, parent, int(row["id"]), landed)

    def _settled(self, entry: OpenWrite, now: float) -> bool:
        """Whether a look-up now is late enough to prove an unknown POST was not applied."""
        return now - entry.sent_by >= self.settings.write_settle_seconds

    def _unresolved(self, entity: Entity, ext: str, entry: OpenWrite, now: float) -> RecordOutcome:
        """Not final: Precoro may still apply the earlier write, so nothing is sent."""
        wait = max(0.0, entry.sent_by + self.settings.write_settle_seconds - now)
        shown = (
            "Precoro does not show the record yet"
            if entry.method == "POST"
            else "Precoro may still apply it over a newer write"
        )
        why = (
            f"an earlier {entry.method}'s outcome is unknown and {shown}; "
            f"not written until write_settle_seconds "
            f"({self.settings.write_settle_seconds:g} s) have passed (about {wait:.0f} s "
            "more), then a look-up decides"
        )
        return RecordOutcome(entity.name, ext, "unresolved", message=why, final=False)

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

    # --- linking -------------------------------------------------------------------

    def _match(self, entity: Entity, parent: int, unmatched: list[Pending]) -> dict[str, Match]:
        rules = self.settings.match_rules(entity)
        if not unmatched or not rules:
            return {}
        candidates = self.index.candidates(entity, parent)
        matcher = Matcher(entity, rules, candidates)
        claims = self.claims[(entity.name, parent)]
        results = matcher.match_all([p.incoming for p in unmatched], claims)
        for ext, match in results.items():
            if match.outcome == "linked":
                claims[match.candidate_ids[0]] = ext
        return results

    # --- decisions -----------------------------------------------------------------

    def _decide(
        self, entity: Entity, parent: int, pending: Pending, row: dict[str, Any]
    ) -> Decision:
        """Three-way decision per field (ERP, Precoro's row, the stored base)."""
        base = self.index.base(entity, parent, int(row["id"]))
        return decide(
            entity,
            pending.values,
            row,
            base=base,
            owner_of=lambda name: self.settings.owner(entity.name, name),
            list_merge=self.settings.list_merge,
        )

    def _note_unwritten(self, outcome: RecordOutcome, decision: Decision) -> None:
        """Put the fields kept or in conflict on the outcome (and in its message)."""
        outcome.kept_precoro = {k: v.to_json() for k, v in sorted(decision.kept.items())}
        outcome.conflicts = {k: v.to_json() for k, v in sorted(decision.conflicts.items())}
        told = describe(decision)
        if told:
            outcome.message = f"{outcome.message}; {told}" if outcome.message else told

    def _agree(
        self,
        entity: Entity,
        parent: int,
        precoro_id: int,
        values: dict[str, Any],
        *,
        later: bool = False,
    ) -> None:
        """Move the base of fields Precoro confirmed (never in a dry run).

        `later`: fields merely seen equal are stored with the rest of the group, in one
        transaction; losing them to a kill is harmless (the next run sees them equal).
        """
        if self.settings.dry_run or not values:
            return
        if later:
            self.agreed.append((precoro_id, values))
        else:
            self.index.set_base(entity, parent, precoro_id, values)

    def _apply_existing(
        self, entity: Entity, parent: int, pending: Pending, row: dict[str, Any]
    ) -> None:
        ext = pending.incoming.external_id
        base = RecordOutcome(entity.name, ext, "unchanged", int(row["id"]), record_key(entity, row))
        if self.settings.mode == "insert_only":
            base.outcome = "skipped"
            base.message = "already in Precoro; mode insert_only leaves existing records alone"
            self._emit(pending.item, base)
            return
        decision = self._decide(entity, parent, pending, row)
        diff = decision.write
        self._agree(entity, parent, int(row["id"]), decision.agreed, later=True)
        if not diff:
            if pending.recovered:
                base.outcome = "created"
                base.message = "created by an interrupted earlier attempt; confirmed by look-up"
            elif decision.conflicts:
                base.outcome = "conflict"
            elif decision.kept:
                base.outcome = "kept_precoro"
            self._note_unwritten(base, decision)
            self._emit(pending.item, base)
            return
        if not can_update(entity):
            base.outcome = "skipped"
            base.fields = sorted(diff)
            base.message = (
                f"{entity.name} cannot be updated through the API; differs in {sorted(diff)}"
            )
            self._emit(pending.item, base)
            return
        base.outcome = "updated"
        self._write_decided(
            entity,
            parent,
            pending,
            base,
            decision,
            fields=sorted(diff),
            method="PUT",
            row=row,
            values=diff,
            base=decision.write,
        )

    def _apply_new(
        self, entity: Entity, parent: int, pending: Pending, match: Match | None
    ) -> None:
        ext = pending.incoming.external_id
        if match is not None and match.outcome in ("ambiguous", "conflict"):
            outcome = RecordOutcome(entity.name, ext, match.outcome, message=match.describe())
            self._emit(pending.item, outcome)
            return
        if match is not None and match.outcome == "linked" and match.candidate is not None:
            row = match.candidate
            base = RecordOutcome(
                entity.name, ext, "linked", int(row["id"]), record_key(entity, row)
            )
            if self.settings.mode == "insert_only":
                base.outcome = "skipped"
                base.message = f"{match.describe()}; mode insert_only does not link"
                self._emit(pending.item, base)
                return
            decision = self._decide(entity, parent, pending, row)
            diff = decision.write
            base.message = match.describe()
            if diff and can_update(entity):
                self._write_decided(
                    entity,
                    parent,
                    pending,
                    base,
                    decision,
                    fields=["externalId", *sorted(diff)],
                    method="PUT",
                    row=row,
                    values={**diff, "externalId": ext},
                    base=decision.base_after_write(),
                )
            else:
                if diff:
                    base.message += f"; {entity.name} fields cannot be updated: {sorted(diff)}"
                self._write_decided(
                    entity,
                    parent,
                    pending,
                    base,
                    decision,
                    fields=["externalId"],
                    method="PATCH",
                    row=row,
                    values={"externalId": ext},
                    base=decision.agreed,
                )
            return
        if self.settings.mode == "update_only":
            why = "not in Precoro; mode update_only does not create"
            self._emit(pending.item, RecordOutcome(entity.name, ext, "skipped", message=why))
            return
        if not can_create(entity):
            rules = " / ".join("+".join(r) for r in self.settings.match_rules(entity)) or "none"
            why = (
                f"no {entity.name} record to link: none carries this externalId and none "
                f"matches by {rules} (the API cannot create {entity.name})"
            )
            self._emit(pending.item, RecordOutcome(entity.name, ext, "failed", message=why))
            return
        lacking = missing_required(entity, pending.incoming)
        if lacking is not None:
            exc = InvalidRecord(entity.name, ext, lacking, "is required to create the record")
            self._emit(pending.item, RecordOutcome(entity.name, ext, "invalid", message=str(exc)))
            return
        base = RecordOutcome(entity.name, ext, "created")
        values = {k: v for k, v in pending.values.items() if v not in (None, [], "")}
        base.fields = sorted(["externalId", *values])
        self._write(
            entity=entity,
            parent=parent,
            pending=pending,
            outcome=base,
            method="POST",
            row=None,
            values={**values, "externalId": ext},
            base=dict(pending.values),
        )

    # --- writes --------------------------------------------------------------------

    def _write_decided(
        self,
        entity: Entity,
        parent: int,
        pending: Pending,
        outcome: RecordOutcome,
        decision: Decision,
        *,
        fields: list[str],
        method: str,
        row: dict[str, Any],
        values: dict[str, Any],
        base: dict[str, Any],
    ) -> None:
        """Update or link an existing record: name the fields sent and those left, then send."""
        outcome.fields = fields
        self._note_unwritten(outcome, decision)
        self._write(
            entity=entity,
            parent=parent,
            pending=pending,
            outcome=outcome,
            method=method,
            row=row,
            values=values,
            base=base,
        )

    def _write(
        self,
        *,
        entity: Entity,
        parent: int,
        pending: Pending,
        outcome: RecordOutcome,
        method: str,
        row: dict[str, Any] | None,
        values: dict[str, Any],
        base: dict[str, Any],
    ) -> None:
        """Send one write; on a 2xx (journalled done) the fields in `base` move there."""
        self._check_stop()
        ext = pending.incoming.external_id
        if outcome.outcome == "linked":
            self.claims[(entity.name, parent)][int(outcome.precoro_id or 0)] = ext
        outcome.changes = field_changes(entity, values, row)
        if self.settings.dry_run:
            self._emit(pending.item, outcome)
            return
        pairs = encode_record(entity, values)
        if row is None:
            path = entity.list_path(path_parent(parent))
        else:
            path = entity.detail_path(record_key(entity, row), path_parent(parent))
        try:
            result = self._send(
                entity=entity,
                parent=parent,
                ext=ext,
                method=method,
                path=path,
                pairs=pairs,
                base=base,
            )
        except (ValidationFailed, NotFound) as exc:
            gone = isinstance(exc, NotFound) and row is not None and not pending.relooked
            if gone and row is not None and self._gone(entity, parent, pending, row):
                return
            outcome.outcome = "failed"
            outcome.status = exc.status
            outcome.message = exc.message
            if isinstance(exc, ValidationFailed) and exc.field_errors:
                outcome.fields = sorted(exc.field_errors)
            if row is not None and self.settings.write_error_log:
                self._log_error(entity, parent, row, exc.message)
            self._emit(pending.item, outcome)
            return
        except WriteOutcomeUnknown as exc:
            outcome.outcome = "unresolved"
            outcome.status = exc.status
            outcome.message = (
                f"{exc.message}; Precoro does not show the record yet and may "
                f"still apply it, so it is not re-sent: a run at least "
                f"{self.settings.write_settle_seconds:g} s later (write_settle_seconds) "
                "looks it up first"
            )
            outcome.final = False
            self._emit(pending.item, outcome)
            return
        except RetriableError as exc:
            outcome.outcome = "failed"
            outcome.status = exc.status
            outcome.message = f"{exc.message} (outcome unknown; the next run checks first)"
            outcome.final = False
            self._emit(pending.item, outcome)
            return
        # The journal says `done` by now. The base moves with the row Precoro returned,
        # in one transaction; a kill before it leaves the old base, and the next run
        # decides again from Precoro's values.
        if isinstance(result, dict) and result.get("id") is not None:
            self.index.remember(entity, parent, result, base=base)
            outcome.precoro_id = int(result["id"])
            outcome.key = record_key(entity, result) if entity.key in result else outcome.key
        else:
            if outcome.outcome == "created":
                found = self.index.find(entity, parent, ext)
                if found:
                    outcome.precoro_id = int(found[0]["id"])
            if outcome.precoro_id is not None:
                self._agree(entity, parent, outcome.precoro_id, base)
        self._emit(pending.item, outcome)

    def _gone(self, entity: Entity, parent: int, pending: Pending, row: dict[str, Any]) -> bool:
        """A PUT/PATCH answered 404: Precoro lost the record the index vouched for.

        Drop it, look the externalId up again and decide anew (update the record that
        carries it now, link, or re-create). False when even the look-up finds no list.
        """
        pending.relooked = True
        ext = pending.incoming.external_id
        dead = int(row["id"])
        self.index.forget(entity, parent, dead)
        self.claims[(entity.name, parent)].pop(dead, None)
        logger.warning(
            "%s %s: record %s is gone from Precoro; deciding again", entity.name, ext, dead
        )
        try:
            self.index.lookup_again(entity, parent, ext)
        except NotFound:
            return False
        except RetriableError as exc:
            why = f"record {dead} is gone from Precoro and looking {ext!r} up failed: {exc.message}"
            outcome = RecordOutcome(entity.name, ext, "failed", status=exc.status, message=why)
            outcome.final = False
            self._emit(pending.item, outcome)
            return True
        rows = self.index.find(entity, parent, ext)
        refused = self.index.refused(entity, parent, ext)
        if refused is not None:
            why = f"record {dead} is gone from Precoro and its externalId {refused}"
            self._emit(pending.item, RecordOutcome(entity.name, ext, "failed", message=why))
        elif len(rows) > 1:
            ids = sorted(int(r["id"]) for r in rows)
            why = f"{len(rows)} Precoro records already carry this externalId: ids {ids}"
            self._emit(pending.item, RecordOutcome(entity.name, ext, "ambiguous", message=why))
        elif rows:
            self._apply_existing(entity, parent, pending, rows[0])
        else:
            match = self._match(entity, parent, [pending]).get(ext)
            self._apply_new(entity, parent, pending, match)
        return True

    def _send(
        self,
        *,
        entity: Entity,
        parent: int,
        ext: str,
        method: str,
        path: str,
        pairs: list[tuple[str, str]],
        base: dict[str, Any] | None = None,
    ) -> Any:
        """One journalled write; a POST with an unknown outcome is looked up, not re-sent."""
        # The governor may hold the request up to max_wait_seconds before it leaves.
        sent_by = self._server_now() + self.client.settings.max_wait_seconds
        seq = self.journal.intent(
            entity.name, parent, ext, method, path, sent_by=sent_by, base=base
        )
        try:
            if method == "POST":
                result = self.client.post_form(path, pairs)
            elif method == "PUT":
                result = self.client.put_form(path, pairs)
            else:
                result = self.client.patch_form(path, pairs)
        except WriteOutcomeUnknown as exc:
            self.journal.unknown(seq, exc.message, sent_by=self._server_now())
            return self._recover_post(entity=entity, parent=parent, ext=ext, exc=exc)
        except (ValidationFailed, NotFound) as exc:
            self.journal.failed(seq, exc.status, exc.message)
            raise
        except (BudgetExhausted, AuthenticationError) as exc:
            self.journal.failed(seq, exc.status, f"not sent: {exc.message}")
            raise
        except PrecoroError as exc:
            self.journal.unknown(seq, exc.message, sent_by=self._server_now())
            raise
        self.journal.done(seq, result.get("id") if isinstance(result, dict) else None)
        return result

    def _server_now(self) -> float:
        """Precoro's clock (epoch seconds): what the settle period is measured on."""
        return self.client.server_now().timestamp()

    def _recover_post(
        self, *, entity: Entity, parent: int, ext: str, exc: WriteOutcomeUnknown
    ) -> Any:
        """Look the externalId up at once; never re-send the POST within this run.

        Found: the POST was applied, the entry is resolved. Not found proves nothing
        yet (Precoro may still be working on it), so `exc` is raised again and the
        entry stays open for a look-up after `write_settle_seconds`.
        """
        logger.warning("%s %s: %s; looking it up before anything else", entity.name, ext, exc)
        self.index.lookup_again(entity, parent, ext)
        rows = self.index.find(entity, parent, ext)
        if rows:
            self.journal.resolve(entity.name, parent, ext, int(rows[0]["id"]), "found by look-up")
            return rows[0]
        raise exc

    def _log_error(self, entity: Entity, parent: int, row: dict[str, Any], message: str) -> None:
        """Write the failure into the record's externalIntegrationLog (best effort)."""
        path = entity.detail_path(record_key(entity, row), path_parent(parent))
        try:
            self.client.patch_form(path, [("externalIntegrationLog", message[:1000])])
        except (ValidationFailed, NotFound, RetriableError) as exc:
            logger.warning("could not write externalIntegrationLog on %s: %s", path, exc)
