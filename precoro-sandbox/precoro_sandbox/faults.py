"""Injectable faults: the failures a real Precoro integration meets in production.

Rules select requests by route pattern and method, and fire on a schedule (the 2nd and
5th matching request), with a seeded probability, or always, optionally only a limited
number of times. Determinism matters: the same seed and request sequence must fault the
same requests, so a flaky-network test is reproducible.

The server performs the faults; this module decides which, and renders the bodies.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import asdict, dataclass, fields
from fnmatch import fnmatchcase
from http import HTTPStatus
from typing import Any, Literal, cast, get_args

FaultKind = Literal["status", "delay", "drop", "truncate", "apply_then_fail", "apply_later"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
"""status: answer with an error status; delay: sleep then answer normally; drop: close
the connection without answering; truncate: send half the body; apply_then_fail: do
the write, then answer `status` (or drop) so the client cannot know it succeeded;
apply_later: drop the connection at once (to the client, a timeout) and apply the write
only once the sandbox clock is `delay_seconds` past the request, as a Precoro still busy
after the client gave up would (tests move the clock instead of sleeping)."""


@dataclass
class FaultRule:
    """One fault and the requests it applies to."""

    kind: FaultKind
    route: str = "*"
    """fnmatch pattern on the request path (no query), e.g. "/suppliers*"."""
    method: str | None = None
    """HTTP method, case-insensitive; None = any."""
    status: int = 500
    """For "status" and "apply_then_fail"."""
    html: bool = False
    """"status": send an HTML error page instead of JSON, as a proxy would."""
    delay_seconds: float = 0.0
    """"delay": sleep this long, then answer normally; "apply_later": sandbox-clock
    seconds until the write is applied."""
    then_drop: bool = False
    """"apply_then_fail": after applying the write, drop the connection instead of
    answering `status` ("delay": drop after the delay, as the server implements it)."""
    probability: float | None = None
    """Seeded random chance per matching request."""
    schedule: list[int] | None = None
    """1-based ordinals of matching requests that fault, e.g. [2, 5]."""
    times: int | None = None
    """Stop after firing this many times."""

    def __post_init__(self) -> None:
        """Reject values the server could not act on, naming the field."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {list(FAULT_KINDS)}")
        if not isinstance(self.route, str) or not self.route:
            raise ValueError(f"route must be a non-empty pattern, got {self.route!r}")
        if self.method is not None:
            if not isinstance(self.method, str) or not self.method.isalpha():
                raise ValueError(f"method must be an HTTP method or null, got {self.method!r}")
            self.method = self.method.upper()
        if not _is_int(self.status) or not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status 100-599, got {self.status!r}")
        for flag in ("html", "then_drop"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be a boolean, got {getattr(self, flag)!r}")
        if not _is_number(self.delay_seconds) or self.delay_seconds < 0:
            raise ValueError(f"delay_seconds must be >= 0, got {self.delay_seconds!r}")
        if self.probability is not None and (
            not _is_number(self.probability) or not 0 <= self.probability <= 1
        ):
            raise ValueError(f"probability must be between 0 and 1, got {self.probability!r}")
        if self.schedule is not None:
            if not isinstance(self.schedule, list) or not all(
                _is_int(n) and n >= 1 for n in self.schedule
            ):
                raise ValueError(
                    f"schedule must be a list of 1-based request numbers, got {self.schedule!r}"
                )
            if self.probability is not None:
                raise ValueError("give either schedule or probability, not both")
        if self.times is not None and (not _is_int(self.times) or self.times < 0):
            raise ValueError(f"times must be a non-negative integer, got {self.times!r}")

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request (before schedule/probability)."""
        if self.method is not None and self.method != method.upper():
            return False
        return fnmatchcase(path, self.route)

    def describe(self) -> str:
        """Short label, e.g. "status 503 GET /suppliers*"."""
        what: str = self.kind
        if self.kind in ("status", "apply_then_fail"):
            what += f" {self.status}"
        if self.kind in ("delay", "apply_later"):
            what += f" {self.delay_seconds:g}s"
        if self.kind in ("apply_then_fail", "delay") and self.then_drop:
            what += " drop"
        return f"{what} {self.method or '*'} {self.route}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the admin API."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Build from admin-API JSON; unknown keys or kinds raise ValueError naming them."""
        if not isinstance(data, dict):
            raise ValueError(f"a fault rule must be a JSON object, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown fault rule key(s): {', '.join(unknown)}; known: {sorted(known)}"
            )
        if "kind" not in data:
            raise ValueError(f"fault rule needs a 'kind' (one of {list(FAULT_KINDS)})")
        values = dict(data)
        if isinstance(values.get("schedule"), tuple):
            values["schedule"] = list(values["schedule"])
        return cls(**values)


def _is_int(value: Any) -> bool:
    """True for real integers (JSON booleans are not request counts)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """True for ints and floats, but not booleans."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class _RuleState:
    """A rule plus its counters and its own random stream."""

    __slots__ = ("fired", "matched", "rng", "rule")

    def __init__(self, rule: FaultRule, seed: int, index: int) -> None:
        self.rule = rule
        self.matched = 0
        self.fired = 0
        # One stream per rule position: appending a rule never changes which requests the
        # earlier ones hit.
        self.rng = random.Random(f"{seed}:{index}")


class FaultInjector:
    """Holds the active fault rules and decides, per request, which one fires."""

    def __init__(self, seed: int = 0) -> None:
        """`seed` makes probabilistic rules reproducible."""
        self._seed = seed
        self._lock = threading.Lock()
        self._states: list[_RuleState] = []

    def add(self, rule: FaultRule) -> None:
        """Append a rule; earlier rules win when several fire on one request."""
        with self._lock:
            self._states.append(_RuleState(rule, self._seed, len(self._states)))

    def set_rules(self, rules: list[FaultRule]) -> None:
        """Replace all rules, restarting their counters and random streams."""
        with self._lock:
            self._states = [_RuleState(r, self._seed, i) for i, r in enumerate(rules)]

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._states = []

    def rules(self) -> list[FaultRule]:
        """The active rules, in priority order."""
        with self._lock:
            return [s.rule for s in self._states]

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The first rule that fires for this request, or None.

        Every matching rule counts the request and draws its random number, even when an
        earlier rule fires, so each rule's ordinals and draws depend only on the request
        sequence. Only the returned rule counts as fired (and uses up `times`).
        """
        path = path.split("?", 1)[0]
        chosen: _RuleState | None = None
        with self._lock:
            for state in self._states:
                rule = state.rule
                if not rule.matches(method, path):
                    continue
                state.matched += 1
                if rule.schedule is not None:
                    hit = state.matched in rule.schedule
                elif rule.probability is not None:
                    hit = state.rng.random() < rule.probability
                else:
                    hit = True
                if rule.times is not None and state.fired >= rule.times:
                    hit = False
                if hit and chosen is None:
                    chosen = state
            if chosen is None:
                return None
            chosen.fired += 1
            return chosen.rule

    def fired(self) -> dict[str, int]:
        """How often each rule fired, keyed "<index> <description>"."""
        with self._lock:
            return {f"{i} {s.rule.describe()}": s.fired for i, s in enumerate(self._states)}

    def snapshot(self) -> list[dict[str, Any]]:
        """Rules with their match/fire counters, for the admin API."""
        with self._lock:
            return [
                {**s.rule.to_dict(), "matched": s.matched, "fired": s.fired} for s in self._states
            ]


def _reason(status: int) -> str:
    """Standard reason phrase, or a generic one for unregistered codes."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error" if status < 500 else "Server Error"


def html_error_page(status: int) -> bytes:
    """An nginx-style error page, as a proxy in front of the API would send."""
    title = f"{status} {_reason(status)}"
    page = (
        "<html>\r\n"
        f"<head><title>{title}</title></head>\r\n"
        "<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n"
        "</body>\r\n"
        "</html>\r\n"
    )
    return page.encode("ascii")


def json_error_body(status: int) -> bytes:
    """A JSON error body; assumption, since Precoro's 5xx bodies are undocumented."""
    return json.dumps({"error": _reason(status), "code": status}).encode()


def truncate(body: bytes) -> bytes:
    """Roughly the first half of `body`, shortened further until it is not valid JSON."""
    end = len(body) // 2
    while end > 0 and _is_json(body[:end]):
        end -= 1
    return body[:end]


def _is_json(data: bytes) -> bool:
    """Whether `data` parses as JSON."""
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def parse_rules(data: Any) -> list[FaultRule]:
    """Rules from admin-API JSON: one object or a list of them."""
    items = data if isinstance(data, list) else [data]
    return [FaultRule.from_dict(cast(dict[str, Any], item)) for item in items]
