"""Initial linking: find the one Precoro record an incoming record already stands for.

Rules are tried in order; a rule applies when the record has a value for each of its
fields. Candidates are Precoro records without externalId (disabled ones included).
One candidate: link. Several: `ambiguous`. One candidate claimed by two incoming
records (in this batch or earlier in the run): `conflict` for both. No write is made
for ambiguous or conflicting records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from precoro_client.registry import Entity, Field

from target_precoro.normalise import normalise_value
from target_precoro.validate import Incoming

MatchOutcome = Literal["linked", "none", "ambiguous", "conflict"]
Rule = tuple[str, ...]


@dataclass
class Match:
    """What linking found for one incoming record."""

    outcome: MatchOutcome
    candidate: dict[str, Any] | None = None
    rule: Rule | None = None
    candidate_ids: list[int] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the report."""
        rule = "+".join(self.rule or ())
        if self.outcome == "linked" and self.candidate is not None:
            return f"matched Precoro id {self.candidate.get('id')} by {rule}"
        if self.outcome == "ambiguous":
            ids = self.candidate_ids
            return f"{len(ids)} Precoro records match by {rule}: ids {ids}"
        if self.outcome == "conflict":
            return f"Precoro record {self.candidate_ids} is claimed by several incoming records"
        return "no Precoro record matches"


def _key(rule: tuple[Field, ...], values: Mapping[str, Any]) -> tuple[str, ...] | None:
    parts = []
    for spec in rule:
        part = normalise_value(spec, values.get(spec.name))
        if part is None:
            return None
        parts.append(part)
    return tuple(parts)


class Matcher:
    """Indexes candidates once per rule, then matches any number of records."""

    def __init__(
        self, entity: Entity, rules: Sequence[Rule], candidates: Iterable[dict[str, Any]]
    ) -> None:
        """Build one lookup table per rule over the (unlinked) candidates."""
        self.rules = tuple(rules)
        self._specs = [tuple(entity.field(name) for name in rule) for rule in self.rules]
        self._tables: list[dict[tuple[str, ...], list[dict[str, Any]]]] = []
        pool = [c for c in candidates if not c.get("externalId")]
        for specs in self._specs:
            table: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
            for candidate in pool:
                key = _key(specs, candidate)
                if key is not None:
                    table[key].append(candidate)
            self._tables.append(table)

    def match_one(self, incoming: Incoming) -> Match:
        """The first rule that finds anything decides."""
        for rule, specs, table in zip(self.rules, self._specs, self._tables, strict=True):
            key = _key(specs, incoming.keys)
            if key is None:
                continue
            found = table.get(key, [])
            if len(found) == 1:
                return Match("linked", found[0], rule, [int(found[0]["id"])])
            if len(found) > 1:
                return Match("ambiguous", None, rule, sorted(int(c["id"]) for c in found))
        return Match("none")

    def match_all(
        self, records: Sequence[Incoming], claimed: Mapping[int, str]
    ) -> dict[str, Match]:
        """Match every record; a candidate wanted twice is a `conflict` for each claimant.

        `claimed` maps Precoro ids linked earlier in the run to their externalId.
        """
        results = {r.external_id: self.match_one(r) for r in records}
        wanted: dict[int, list[str]] = defaultdict(list)
        for external_id, match in results.items():
            if match.outcome == "linked":
                wanted[match.candidate_ids[0]].append(external_id)
        for candidate_id, claimants in wanted.items():
            earlier = claimed.get(candidate_id)
            if len(claimants) > 1 or (earlier is not None and earlier not in claimants):
                for external_id in claimants:
                    rule = results[external_id].rule
                    results[external_id] = Match("conflict", None, rule, [candidate_id])
        return results
