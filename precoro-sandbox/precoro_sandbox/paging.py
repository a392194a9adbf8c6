"""Changes made *while* a client pages a list, fired after the k-th list page served.

Precoro does not document its list order, nor what a concurrent edit does to the
pages a client has not read yet. Tests arm a plan here (through the admin API) to make
the worst case happen on purpose and deterministically: right after the sandbox serves
the k-th page of a collection's list, it edits, disables or re-statuses a row of that
very page (a row the client has already read), or inserts a new record. Under an
order where the edit moves the row to a later page, or under a filter the row no
longer passes, every row behind it shifts one place earlier and the row at the page
boundary is never served to a client that asks for page k+1.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

MutationAction = Literal["edit", "insert", "disable", "status"]
MUTATION_ACTIONS: tuple[str, ...] = get_args(MutationAction)


@dataclass
class PagingMutation:
    """One change, made after the `after_page`-th list page of `entity` is served."""

    entity: str
    """Collection whose list pages are counted (any query, any company)."""
    after_page: int
    """1-based count of that collection's list pages served; fires once, after it."""
    action: MutationAction = "edit"
    """edit: a new note and updateDate; insert: a new record; disable: enable=false;
    status: `status` (with its label) and a new updateDate."""
    row: int = 0
    """Index, in the page just served, of the row edited/disabled/re-statused."""
    status: int | None = None
    """The new status for `status`."""

    def __post_init__(self) -> None:
        """Reject a plan the sandbox could not carry out, naming the field."""
        if self.action not in MUTATION_ACTIONS:
            raise ValueError(f"action must be one of {MUTATION_ACTIONS}, got {self.action!r}")
        if not isinstance(self.after_page, int) or self.after_page < 1:
            raise ValueError(f"after_page must be a positive integer, got {self.after_page!r}")
        if not isinstance(self.row, int) or self.row < 0:
            raise ValueError(f"row must be a non-negative integer, got {self.row!r}")
        if self.action == "status" and not isinstance(self.status, int):
            raise ValueError("action 'status' needs an integer status")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PagingMutation:
        """Build from admin JSON (unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown paging mutation keys: {', '.join(unknown)}")
        return cls(**data)


class PagingPlan:
    """The armed mutations and the list pages served per collection (thread-safe)."""

    def __init__(self) -> None:
        """Start empty: no mutation, no page counted."""
        self._lock = threading.Lock()
        self._rules: list[PagingMutation] = []
        self._pages: dict[str, int] = {}
        self._fired: list[dict[str, Any]] = []

    def set(self, rules: list[PagingMutation]) -> None:
        """Replace the plan and restart the page counts."""
        with self._lock:
            self._rules = list(rules)
            self._pages = {}
            self._fired = []

    def page_served(self, entity: str) -> list[PagingMutation]:
        """Count one list page of `entity`; return the mutations due now (each fires once)."""
        with self._lock:
            if not self._rules:
                return []
            count = self._pages.get(entity, 0) + 1
            self._pages[entity] = count
            due = [r for r in self._rules if r.entity == entity and r.after_page == count]
            self._rules = [r for r in self._rules if all(r is not d for d in due)]
            return due

    def note_fired(self, rule: PagingMutation, change: dict[str, Any]) -> None:
        """Remember what a mutation did (the admin API shows it)."""
        with self._lock:
            self._fired.append({**asdict(rule), **change})

    def snapshot(self) -> dict[str, Any]:
        """Armed rules, pages counted and mutations fired, for the admin API."""
        with self._lock:
            return {
                "rules": [asdict(r) for r in self._rules],
                "pages": dict(self._pages),
                "fired": list(self._fired),
            }
