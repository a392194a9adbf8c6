"""What every builder shares: records, id sequences, reference contexts, the Generator state.

Every collection draws from its own `random.Random(f"{seed}:{company}:{collection}")`,
so a dataset is reproducible per seed and changing one collection's count does not
reshuffle the others. Only small tuples of the records that others point at are kept
in memory (`MemoryContext`), which is what lets a 1,000,000-record dataset build
without exhausting memory.
"""

from __future__ import annotations

import random
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from precoro_client import registry
from precoro_client.registry import PARENT_ID_FIELD

from precoro_sandbox.datagen.pools import COMMENTS, Country
from precoro_sandbox.dates import epoch, stored

Record = dict[str, Any]

STATUS_LABELS: dict[int, str] = {
    0: "Open",
    1: "Pending",
    2: "Approved",
    3: "Denied",
    4: "Partly paid",
    5: "Paid",
    6: "Awaiting confirmation",
    7: "On revise",
    8: "Canceled",
    9: "Pending receipt",
    10: "Approval review",
    11: "Closed",
}
"""Document status labels (TAP's names for the invoice codes; used for all documents)."""

APPROVED_LIKE = frozenset({2, 4, 5, 9, 11})

DAY = 86400
HOUR = 3600


class Sequences:
    """Id and idn counters: ids are global per collection, idns per company.

    Each collection's ids start at its own base so an id of the wrong collection
    never finds a record by accident.
    """

    def __init__(self) -> None:
        """Start every collection at its base."""
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._idns: dict[tuple[int, str], int] = {}
        for index, entity in enumerate(registry.stored_collections()):
            self._ids[entity.name] = (index + 1) * 10_000_000

    def observe(self, coll: str, max_id: int | None, company: int, max_idn: int | None) -> None:
        """Move counters past values already stored (re-opened database)."""
        with self._lock:
            if max_id is not None:
                self._ids[coll] = max(self._ids[coll], max_id)
            if max_idn is not None:
                key = (company, coll)
                self._idns[key] = max(self._idns.get(key, 0), max_idn)

    def next_id(self, coll: str) -> int:
        """A fresh id of `coll`."""
        with self._lock:
            self._ids[coll] += 1
            return self._ids[coll]

    def next_idn(self, company: int, coll: str) -> str:
        """A fresh document number of `coll` within `company` (numeric text)."""
        with self._lock:
            key = (company, coll)
            self._idns[key] = self._idns.get(key, 0) + 1
            return str(self._idns[key])


def iban(country: Country, rng: random.Random) -> str | None:
    """A syntactically valid IBAN (correct mod-97 check digits) for the country."""
    if country.iban_length is None:
        return None
    bban = "".join(rng.choice("0123456789") for _ in range(country.iban_length - 4))
    digits = "".join(str(int(ch, 36)) for ch in bban + country.code + "00")
    check = 98 - int(digits) % 97
    return f"{country.code}{check:02d}{bban}"


TAX_ID_FORMATS: dict[str, tuple[str, int, str]] = {
    "DE": ("DE", 9, ""),
    "FR": ("FR", 11, ""),
    "GB": ("GB", 9, ""),
    "US": ("", 9, ""),
    "UA": ("", 8, ""),
    "PL": ("PL", 10, ""),
    "ES": ("ESB", 8, ""),
    "NL": ("NL", 9, "B01"),
    "SE": ("SE", 10, "01"),
    "CA": ("", 9, "RT0001"),
}
"""Country code → (prefix, digits, suffix) of its usual VAT/tax id."""


def tax_id(country: Country, rng: random.Random) -> str:
    """A tax id in the country's usual format."""
    prefix, length, suffix = TAX_ID_FORMATS[country.code]
    digits = "".join(rng.choice("0123456789") for _ in range(length))
    if country.code == "US":
        digits = f"{digits[:2]}-{digits[2:]}"
    return prefix + digits + suffix


def slug(text: str) -> str:
    """ASCII slug for e-mail domains (empty when nothing ASCII remains)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


class Context(Protocol):
    """Where builders find the records a new record points at."""

    def pick(self, coll: str, rng: random.Random) -> Record | None:
        """A random existing record's reference info (its entity's `ref_keys`), or None."""


RefKeys = Mapping[str, tuple[str, ...]]
"""Entity name -> the fields other records copy when they point at one of its records."""


def ref_info(keys: tuple[str, ...], rec: Record) -> tuple[Any, ...]:
    """The compact tuple kept in memory for a record others may point at."""
    return tuple(rec.get(key) for key in keys)


class MemoryContext:
    """Reference info of the records generated so far (small tuples only)."""

    def __init__(self, ref_keys: RefKeys) -> None:
        """Start empty; remember only entities with reference keys."""
        self.ref_keys = ref_keys
        self.refs: dict[str, list[tuple[Any, ...]]] = {}

    def add(self, coll: str, rec: Record) -> None:
        """Remember a record others may point at."""
        keys = self.ref_keys.get(coll)
        if keys:
            self.refs.setdefault(coll, []).append(ref_info(keys, rec))

    def pick(self, coll: str, rng: random.Random) -> Record | None:
        """A random remembered record of `coll`."""
        rows = self.refs.get(coll)
        if not rows:
            return None
        return dict(zip(self.ref_keys[coll], rows[rng.randrange(len(rows))], strict=True))


@dataclass
class Generator:
    """The state builders share for one company: seed, dates anchor, counts, ids."""

    seed: int
    company: int
    anchor: int
    """Epoch seconds; generated dates lie before it."""
    counts: dict[str, int]
    seq: Sequences
    company_domain: str = "acme.example"
    _value_ids: int = field(default=0, init=False)

    def rng(self, coll: str) -> random.Random:
        """The collection's own deterministic random stream."""
        return random.Random(f"{self.seed}:{self.company}:{coll}")

    def side_rng(self, coll: str, record_id: int) -> random.Random:
        """A record's own random stream, apart from its collection's (`datagen.declared`)."""
        return random.Random(f"{self.seed}:{self.company}:{coll}:{record_id}")

    def dates(self, rng: random.Random, max_age_days: float = 730) -> tuple[int, int]:
        """(created, updated) epoch seconds before the anchor, updated at most 45 days later."""
        created = self.anchor - rng.randint(HOUR, int(max_age_days * DAY))
        updated = created + rng.randint(0, min(self.anchor - created, 45 * DAY))
        return created, updated

    def value_id(self) -> int:
        """A fresh id for a nested value (line, comment, contact...), unique per company."""
        self._value_ids += 1
        return self.company * 10_000_000 + self._value_ids

    @staticmethod
    def named(ref: Record | None) -> Record | None:
        """The `{id, name}` reference to a record (None for none)."""
        return None if ref is None else {"id": ref["id"], "name": ref["name"]}

    def dcf_values(self, ctx: Context, rng: random.Random) -> Record:
        """0-2 document custom-field values pointing at random options."""
        values = []
        for _ in range(rng.randint(0, 2)):
            option = ctx.pick("documentcustomfieldoptions", rng)
            if option is not None:
                values.append(
                    {
                        "id": self.value_id(),
                        "value": str(option["id"]),
                        "documentCustomField": {"id": option[PARENT_ID_FIELD]},
                    }
                )
        return {"data": values}

    def icf_values(self, ctx: Context, rng: random.Random) -> Record:
        """1-2 item custom-field values pointing at random options."""
        values = []
        for _ in range(rng.randint(1, 2)):
            option = ctx.pick("itemcustomfieldoptions", rng)
            if option is not None:
                values.append(
                    {
                        "id": self.value_id(),
                        "value": str(option["id"]),
                        "itemCustomField": {"id": option[PARENT_ID_FIELD]},
                    }
                )
        return {"data": values}

    def user_ref(self, ctx: Context, rng: random.Random) -> Record | None:
        """The `{id, email}` reference to a random user."""
        user = ctx.pick("users", rng)
        if user is None:
            return None
        return {"id": user["id"], "email": user["email"]}

    def lines(self, ctx: Context, rng: random.Random, currency: str) -> tuple[list[Record], float]:
        """1-4 document lines and their net total."""
        lines = []
        total = 0.0
        for _ in range(rng.randint(1, 4)):
            item = ctx.pick("items", rng)
            quantity = rng.randint(1, 20)
            price = float(item["price"]) if item else round(rng.uniform(5, 500), 2)
            line_sum = round(quantity * price, 2)
            total += line_sum
            lines.append(
                {
                    "id": self.value_id(),
                    "item": None if item is None else {"id": item["id"], "sku": item["sku"]},
                    "name": item["name"] if item else "Custom line",
                    "quantity": quantity,
                    "price": price,
                    "sum": line_sum,
                    "currency": currency,
                    "dataItemCustomFields": self.icf_values(ctx, rng),
                }
            )
        return lines, round(total, 2)

    def doc_detail(
        self, ctx: Context, rng: random.Random, currency: str, created: int, approved: bool
    ) -> tuple[Record, float, float]:
        """Detail-only fields of a document, its net total and its total with tax."""
        lines, net = self.lines(ctx, rng, currency)
        tax = ctx.pick("taxes", rng)
        percent = float(tax["percent"]) if tax else 0.0
        tax_sum = round(net * percent / 100, 2)
        comments = [
            {
                "id": self.value_id(),
                "text": rng.choice(COMMENTS),
                "author": self.user_ref(ctx, rng),
                "createDate": stored(created + rng.randint(60, DAY)),
            }
            for _ in range(rng.randint(0, 2))
        ]
        steps = [
            {
                "id": self.value_id(),
                "position": position,
                "approver": self.user_ref(ctx, rng),
                "status": 2 if approved else 1,
            }
            for position in range(1, rng.randint(1, 3) + 1)
        ]
        detail: Record = {
            "items": lines,
            "taxes": []
            if tax is None
            else [{"id": tax["id"], "name": tax["name"], "percent": percent, "sum": tax_sum}],
            "comments": comments,
            "attachments": [
                {"id": self.value_id(), "name": f"scan-{rng.randint(1000, 9999)}.pdf"}
                for _ in range(rng.randint(0, 1))
            ],
            "approvalSteps": {"data": steps},
            "followers": [u for u in (self.user_ref(ctx, rng),) if u and rng.random() < 0.5],
        }
        return detail, net, round(net + tax_sum, 2)


def epoch_of(text: str) -> int:
    """Epoch seconds of a stored timestamp (0 for none)."""
    value = epoch(text)
    return 0 if value is None else value
