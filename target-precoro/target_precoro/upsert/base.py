"""The upserter's shared state and the records' outcomes (the base of `Upserter`).

`Item` is one record as read, `Pending` one validated record waiting for its
decision; a `RunStop` ends writing for the whole run, `Interrupted` between two calls.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from precoro_client.client import PrecoroClient
from precoro_client.registry import Entity

from target_precoro.index import Index
from target_precoro.journal import Journal
from target_precoro.report import RecordOutcome, RunReport
from target_precoro.settings import TargetSettings
from target_precoro.validate import Incoming

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


class RunStop:
    """Why the run writes nothing more (budget, credentials, lock, signal, internal error).

    Not raised: it is kept (`Upserter.halt`) and every record after it ends
    `not attempted`. (Named `Halt` before.)
    """

    def __init__(self, reason: str, *, fatal: bool, retry: bool = False) -> None:
        """`fatal`: exit 1 at once (401/403); `retry`: exit 75 after the report.

        `retry` marks a stop for want of something the run needs (the shared ledger).
        """
        self.reason = reason
        self.fatal = fatal
        self.retry = retry


class Interrupted(Exception):
    """The run was asked to stop (SIGTERM/SIGINT); raised between calls, never mid-write."""


class UpsertBase:
    """What every part of the upserter shares: collaborators, claims, halt and outcomes."""

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
        self.halt: RunStop | None = None
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

    def _check_stop(self) -> None:
        """Between calls: stop here if a signal asked the run to stop."""
        if self.stop_requested is not None:
            raise Interrupted(self.stop_requested)

    def _server_now(self) -> float:
        """Precoro's clock (epoch seconds): what the settle period is measured on."""
        return self.client.server_now().timestamp()

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
