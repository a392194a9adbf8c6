"""Settling writes whose outcome is unknown (a timeout, a lost answer, a killed run).

An unknown write is journalled open; it is never re-sent before a look-up proves
what Precoro holds, and a look-up proves a POST absent only `write_settle_seconds`
after it could have been sent.
"""

from __future__ import annotations

from typing import Any

from precoro_client.errors import WriteOutcomeUnknown
from precoro_client.registry import Entity

from target_precoro.diff import changes
from target_precoro.journal import OpenWrite
from target_precoro.report import RecordOutcome
from target_precoro.upsert.base import UpsertBase, logger


class Settling(UpsertBase):
    """Adopting a landed write's base, waiting out the settle period, recovering a POST."""

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
