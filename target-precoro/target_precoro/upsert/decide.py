"""Deciding per record: update, link, create, or leave alone, and what to send.

A record found by externalId is compared field by field (`threeway`: ERP, Precoro,
the stored base); one not found is linked by the match rules or created, as the
mode and the entity allow.
"""

from __future__ import annotations

from typing import Any

from precoro_client.errors import NotFound, RetriableError
from precoro_client.registry import Entity
from typing_extensions import override

from target_precoro.diff import record_key
from target_precoro.matcher import Match, Matcher
from target_precoro.report import RecordOutcome
from target_precoro.threeway import Decision, decide, describe
from target_precoro.upsert.base import Pending, logger
from target_precoro.upsert.write import Writing
from target_precoro.validate import InvalidRecord, missing_required
from target_precoro.writable import can_create, can_update


class Deciding(Writing):
    """The decision per record, and the write it leads to."""

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

    @override
    def _note_unwritten(self, outcome: RecordOutcome, decision: Decision) -> None:
        """Put the fields kept or in conflict on the outcome (and in its message)."""
        outcome.kept_precoro = {k: v.to_json() for k, v in sorted(decision.kept.items())}
        outcome.conflicts = {k: v.to_json() for k, v in sorted(decision.conflicts.items())}
        told = describe(decision)
        if told:
            outcome.message = f"{outcome.message}; {told}" if outcome.message else told

    def _apply_existing(
        self, entity: Entity, parent: int, pending: Pending, row: dict[str, Any]
    ) -> None:
        ext = pending.incoming.external_id
        base = RecordOutcome(entity.name, ext, "unchanged", int(row["id"]), record_key(entity, row))
        if self.settings.mode == "insert_only":
            base.kind = "skipped"
            base.message = "already in Precoro; mode insert_only leaves existing records alone"
            self._emit(pending.item, base)
            return
        decision = self._decide(entity, parent, pending, row)
        diff = decision.write
        self._agree(entity, parent, int(row["id"]), decision.agreed, later=True)
        if not diff:
            if pending.recovered:
                base.kind = "created"
                base.message = "created by an interrupted earlier attempt; confirmed by look-up"
            elif decision.conflicts:
                base.kind = "conflict"
            elif decision.kept:
                base.kind = "kept_precoro"
            self._note_unwritten(base, decision)
            self._emit(pending.item, base)
            return
        if not can_update(entity):
            base.kind = "skipped"
            base.fields = sorted(diff)
            base.message = (
                f"{entity.name} cannot be updated through the API; differs in {sorted(diff)}"
            )
            self._emit(pending.item, base)
            return
        base.kind = "updated"
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
                base.kind = "skipped"
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

    @override
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
