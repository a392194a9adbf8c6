"""Sending one write: journalled before it leaves, its answer moving the base.

Every write is an `intent` in the journal before the request, then `done`,
`failed` or `unknown`; a 2xx moves the stored base with the row Precoro returned.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from precoro_client.errors import (
    AuthenticationError,
    BudgetExhausted,
    NotFound,
    PrecoroError,
    RetriableError,
    ValidationFailed,
    WriteOutcomeUnknown,
)
from precoro_client.forms import encode_record
from precoro_client.registry import Entity

from target_precoro.diff import record_key
from target_precoro.index import path_parent
from target_precoro.report import RecordOutcome, field_changes
from target_precoro.threeway import Decision
from target_precoro.upsert.base import Pending, logger
from target_precoro.upsert.settle import Settling


class Writing(Settling):
    """One write per record that needs one; a 404 on an update decides again (`_gone`)."""

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
        if outcome.kind == "linked":
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
            outcome.kind = "failed"
            outcome.status = exc.status
            outcome.message = exc.message
            if isinstance(exc, ValidationFailed) and exc.field_errors:
                outcome.fields = sorted(exc.field_errors)
            if row is not None and self.settings.write_error_log:
                self._log_error(entity, parent, row, exc.message)
            self._emit(pending.item, outcome)
            return
        except WriteOutcomeUnknown as exc:
            outcome.kind = "unresolved"
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
            outcome.kind = "failed"
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
            if outcome.kind == "created":
                found = self.index.find(entity, parent, ext)
                if found:
                    outcome.precoro_id = int(found[0]["id"])
            if outcome.precoro_id is not None:
                self._agree(entity, parent, outcome.precoro_id, base)
        self._emit(pending.item, outcome)

    @abstractmethod
    def _gone(self, entity: Entity, parent: int, pending: Pending, row: dict[str, Any]) -> bool:
        """A PUT/PATCH answered 404: decide again (see `Deciding._gone`)."""

    @abstractmethod
    def _note_unwritten(self, outcome: RecordOutcome, decision: Decision) -> None:
        """Put the fields kept or in conflict on the outcome (see `Deciding`)."""

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

    def _log_error(self, entity: Entity, parent: int, row: dict[str, Any], message: str) -> None:
        """Write the failure into the record's externalIntegrationLog (best effort)."""
        path = entity.detail_path(record_key(entity, row), path_parent(parent))
        try:
            self.client.patch_form(path, [("externalIntegrationLog", message[:1000])])
        except (ValidationFailed, NotFound, RetriableError) as exc:
            logger.warning("could not write externalIntegrationLog on %s: %s", path, exc)
