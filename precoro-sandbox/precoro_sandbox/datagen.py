"""Deterministic, realistic, relationally consistent Precoro data.

Every collection draws from its own `random.Random(f"{seed}:{company}:{collection}")`,
so a dataset is reproducible per seed and changing one collection's count does not
reshuffle the others. Records stream out one at a time (the store inserts them in
batches); only small tuples of the records that others point at are kept in memory,
which is what lets a 1,000,000-record dataset build without exhausting memory.
"""

from __future__ import annotations

import random
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from precoro_client import registry

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

# --- pools ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Country:
    """What a supplier's country implies: currency, cities, legal suffixes, id formats."""

    name: str
    code: str
    currency: str
    cities: tuple[str, ...]
    suffixes: tuple[str, ...]
    phone: str
    iban_length: int | None
    tld: str


COUNTRIES: tuple[Country, ...] = (
    Country(
        "Germany", "DE", "EUR", ("Berlin", "München", "Köln", "Hamburg", "Düsseldorf"),
        ("GmbH", "AG", "GmbH & Co. KG"), "+49", 22, "de",
    ),
    Country(
        "France", "FR", "EUR", ("Paris", "Lyon", "Marseille", "Orléans", "Besançon"),
        ("SARL", "SA", "SAS"), "+33", 27, "fr",
    ),
    Country(
        "United Kingdom", "GB", "GBP", ("London", "Manchester", "Leeds", "Bristol"),
        ("Ltd", "PLC", "LLP"), "+44", 22, "co.uk",
    ),
    Country(
        "United States", "US", "USD", ("New York", "Chicago", "Austin", "Seattle", "Denver"),
        ("Inc.", "LLC", "Corp."), "+1", None, "com",
    ),
    Country(
        "Ukraine", "UA", "UAH", ("Kyiv", "Lviv", "Kharkiv", "Odesa", "Dnipro"),
        ("LLC", "ТОВ", "ПрАТ"), "+380", 29, "com.ua",  # noqa: RUF001
    ),
    Country(
        "Poland", "PL", "PLN", ("Warszawa", "Kraków", "Łódź", "Wrocław", "Gdańsk"),
        ("Sp. z o.o.", "S.A."), "+48", 28, "pl",
    ),
    Country(
        "Spain", "ES", "EUR", ("Madrid", "Barcelona", "Sevilla", "Málaga"),
        ("S.L.", "S.A."), "+34", 24, "es",
    ),
    Country(
        "Netherlands", "NL", "EUR", ("Amsterdam", "Rotterdam", "Utrecht"),
        ("B.V.", "N.V."), "+31", 18, "nl",
    ),
    Country(
        "Sweden", "SE", "SEK", ("Stockholm", "Göteborg", "Malmö"), ("AB",), "+46", 24, "se",
    ),
    Country(
        "Canada", "CA", "CAD", ("Toronto", "Montréal", "Vancouver"),
        ("Inc.", "Ltd."), "+1", None, "ca",
    ),
)  # fmt: skip
_COUNTRY = {c.code: c for c in COUNTRIES}

FIXED_SUPPLIERS: tuple[tuple[str, str], ...] = (
    ("Müller & Söhne GmbH", "DE"),
    ("Société Générale d'Équipement SARL", "FR"),
    ("O'Brien & Daughters Ltd", "GB"),
    ("Łódzkie Zakłady Mechaniczne Sp. z o.o.", "PL"),
    ("Київпостач ТОВ", "UA"),  # noqa: RUF001
    ("Øresund Logistik AB", "SE"),
)
"""The first suppliers of every dataset: names that break naive encoders and matchers."""

ADJECTIVES = (
    "Global", "Nordic", "Alpine", "Atlantic", "Pacific", "Central", "United", "Premier",
    "Blue", "Green", "Silver", "Golden", "Rapid", "Smart", "Bright", "Prime", "Apex",
    "Summit", "Vertex", "Delta", "Omega", "Polar", "Solar", "Urban", "Royal", "Metro",
    "Coastal", "Eastern", "Western", "Grand",
)  # fmt: skip
NOUNS = (
    "Office Supplies", "Logistics", "Industrial", "Electronics", "Paper", "Furniture",
    "Software", "Consulting", "Catering", "Packaging", "Machinery", "Chemicals", "Textiles",
    "Print", "Hardware", "Networks", "Facilities", "Energy", "Tools", "Medical", "Cleaning",
    "Security", "Travel", "Freight", "Components", "Metals", "Plastics", "Foods", "Labs",
    "Systems",
)  # fmt: skip
PRODUCTS = (
    ("A4 Copy Paper", 4.5), ("Ballpoint Pen", 0.8), ("Office Chair", 189.0),
    ("Standing Desk", 549.0), ("Laptop 14\"", 1249.0), ("USB-C Dock", 219.0),
    ("Monitor 27\"", 329.0), ("Toner Cartridge", 79.9), ("Coffee Beans 1kg", 24.5),
    ("Safety Gloves", 6.2), ("Hard Hat", 18.0), ("Cleaning Service", 45.0),
    ("Consulting Hour", 150.0), ("Cloud Subscription", 99.0), ("Forklift Rental", 320.0),
    ("Shipping Pallet", 12.0), ("Cable Ties", 3.1), ("LED Panel", 58.0),
    ("First Aid Kit", 35.0), ("Whiteboard Markers", 7.4), ("Ergonomic Mouse", 49.0),
    ("Headset", 89.0), ("Printer Service", 120.0), ("Bürostuhl Komfort", 210.0),
    ("Café Crème Capsules", 19.9),
)  # fmt: skip
VARIANTS = ("", " Blue", " Black", " Pack of 10", " Premium", " XL", " (recycled)", " Pro")
FIRST_NAMES = (
    "Anna", "José", "Zoë", "Øyvind", "Łukasz", "Олена", "Liam", "Emma", "Noah", "Mia",
    "François", "Jürgen", "Sofía", "Björn", "Chloé", "Marek", "Ivan", "Aiko", "Omar", "Lea",
)  # fmt: skip
LAST_NAMES = (
    "Müller", "García", "Smith", "Kowalski", "Шевченко", "Dubois", "Jensen", "O'Neil",
    "Rossi", "Novák", "Andersson", "Brown", "Nguyen", "Schmidt", "López", "Bauer",
)  # fmt: skip
LOCATIONS = (
    ("Berlin HQ", "Friedrichstraße 68, 10117 Berlin, Germany", "+49 30 1234567"),
    ("Kyiv Office", "вул. Хрещатик 22, Київ 01001, Ukraine", "+380 44 123 4567"),
    ("London Office", "1 Poultry, London EC2R 8EJ, United Kingdom", "+44 20 7946 0000"),
    ("Paris Office", "12 Rue de Rivoli, 75004 Paris, France", "+33 1 23 45 67 89"),
    ("Warsaw Hub", "ul. Marszałkowska 100, 00-026 Warszawa, Poland", "+48 22 123 45 67"),
    ("New York Office", "350 5th Ave, New York, NY 10118, USA", "+1 212 555 0100"),
    ("Madrid Branch", "Calle de Alcalá 45, 28014 Madrid, Spain", "+34 91 123 45 67"),
    ("Remote", "", ""),
)
LEGAL_ENTITIES = (
    ("Acme Europe", "Acme Europe GmbH", "DE811234567", "Deutsche Bank", "DE89370400440532013000"),
    ("Acme UK", "Acme UK Ltd", "GB123456789", "Barclays", "GB29NWBK60161331926819"),
    ("Acme US", "Acme Inc.", "12-3456789", "Chase", "000123456789"),
    ("Acme Ukraine", "ТОВ «Акме Україна»", "43123456", "ПриватБанк",  # noqa: RUF001
     "UA213223130000026007233566001"),
)  # fmt: skip
TAXES = (
    ("VAT 19%", 19.0, False), ("VAT 7%", 7.0, False), ("TVA 20%", 20.0, False),
    ("VAT 20%", 20.0, False), ("Sales Tax 8.875%", 8.875, False), ("ПДВ 20%", 20.0, False),
    ("VAT 0%", 0.0, False), ("Withholding 5%", 5.0, True),
)  # fmt: skip
PAYMENT_TERMS = (
    ("Net 30", 0.0, 100.0, 30, 1), ("Net 60", 0.0, 100.0, 60, 1),
    ("Due on receipt", 0.0, 100.0, 0, 1), ("50% prepayment", 50.0, 50.0, 30, 2),
    ("Net 15", 0.0, 100.0, 15, 1), ("100% prepayment", 100.0, 0.0, 0, 2),
)  # fmt: skip
ICF_NAMES = ("Category", "GL Account", "Cost Center", "Project", "Tax Code")
DCF_NAMES = ("Department", "Class", "Project", "Region", "Approval Route")
OPTION_WORDS = (
    "Equipment", "Products", "Services", "Software", "Travel", "Marketing", "R&D",
    "Operations", "Finance", "HR", "Legal", "Facilities", "Logistics", "Sales", "Support",
    "Engineering", "Procurement", "Administration", "Training", "Events",
)  # fmt: skip
WAREHOUSES = ("Main Warehouse", "Spare Parts Store", "Cold Storage", "Returns Depot")
BUDGETS = ("Marketing", "IT", "Operations", "Facilities", "Travel", "R&D")
ROLES = ("ROLE_USER", "ROLE_BUYER", "ROLE_APPROVER", "ROLE_ACCOUNTANT", "ROLE_ADMIN")
COMMENTS = (
    "Please deliver before Friday.", "Approved — within budget.", "Prix à confirmer.",
    "Bitte Rechnung an die Buchhaltung.", "Split across two cost centers.", "Urgent",
)  # fmt: skip

DAY = 86400
HOUR = 3600


def plan_counts(scale: int, overrides: dict[str, int] | None = None) -> dict[str, int]:
    """Record count of every stored collection for `scale` suppliers (overrides win)."""
    n = max(1, int(scale))
    counts = {
        "suppliers": n,
        "items": 3 * n,
        "purchaseorders": 2 * n,
        "invoices": 2 * n,
        "receipts": n,
        "expenses": max(1, n // 2),
        "payments": n,
        "taxes": len(TAXES),
        "paymentterms": len(PAYMENT_TERMS),
        "locations": len(LOCATIONS),
        "legalentities": len(LEGAL_ENTITIES),
        "users": 25,
        "itemcustomfields": len(ICF_NAMES),
        "documentcustomfields": len(DCF_NAMES),
        "itemcustomfieldoptions": 12 * len(ICF_NAMES),
        "documentcustomfieldoptions": 12 * len(DCF_NAMES),
        "warehouses": len(WAREHOUSES),
        "budgets": 12,
    }
    known = {entity.name for entity in registry.stored_collections()}
    for name, value in (overrides or {}).items():
        if name not in known:
            raise ValueError(f"unknown collection in counts: {name!r}")
        counts[name] = max(0, int(value))
    return counts


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
        """A random existing record's reference info (see `REF_KEYS`), or None."""


REF_KEYS: dict[str, tuple[str, ...]] = {
    "suppliers": ("id", "name", "currency"),
    "items": ("id", "name", "sku", "price"),
    "taxes": ("id", "name", "percent"),
    "paymentterms": ("id", "name", "prepaymentPercent", "postpaymentPercent",
                     "creditPeriodDays", "paymentType", "enable", "externalId"),
    "locations": ("id", "name"),
    "legalentities": ("id", "name"),
    "users": ("id", "email", "firstname", "lastname"),
    "itemcustomfieldoptions": ("id", "name", "customFieldId"),
    "documentcustomfieldoptions": ("id", "name", "customFieldId"),
    "purchaseorders": ("id", "idn", "supplier", "currency", "sum", "status", "location"),
    "invoices": ("id", "idn", "supplier", "purchaseOrder", "currency", "sum"),
    "itemcustomfields": ("id", "name"),
    "documentcustomfields": ("id", "name"),
    "budgets": ("id", "name"),
}  # fmt: skip
"""The fields of a record other records copy when they point at it."""


def ref_info(coll: str, rec: Record) -> tuple[Any, ...]:
    """The compact tuple kept in memory for a record others may point at."""
    return tuple(rec.get(key) for key in REF_KEYS[coll])


class MemoryContext:
    """Reference info of the records generated so far (small tuples only)."""

    def __init__(self) -> None:
        """Start empty."""
        self.refs: dict[str, list[tuple[Any, ...]]] = {}

    def add(self, coll: str, rec: Record) -> None:
        """Remember a record others may point at."""
        if coll in REF_KEYS:
            self.refs.setdefault(coll, []).append(ref_info(coll, rec))

    def pick(self, coll: str, rng: random.Random) -> Record | None:
        """A random remembered record of `coll`."""
        rows = self.refs.get(coll)
        if not rows:
            return None
        return dict(zip(REF_KEYS[coll], rows[rng.randrange(len(rows))], strict=True))

    def all(self, coll: str) -> list[Record]:
        """Every remembered record of `coll` (small reference sets only)."""
        return [dict(zip(REF_KEYS[coll], row, strict=True)) for row in self.refs.get(coll, [])]


@dataclass
class Generator:
    """Builds records for one company; `generate()` streams the initial dataset."""

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

    # --- helpers -----------------------------------------------------------------------

    def _dates(self, rng: random.Random, max_age_days: float = 730) -> tuple[int, int]:
        created = self.anchor - rng.randint(HOUR, int(max_age_days * DAY))
        updated = created + rng.randint(0, min(self.anchor - created, 45 * DAY))
        return created, updated

    def _value_id(self) -> int:
        self._value_ids += 1
        return self.company * 10_000_000 + self._value_ids

    @staticmethod
    def _named(ref: Record | None) -> Record | None:
        return None if ref is None else {"id": ref["id"], "name": ref["name"]}

    def _dcf_values(self, ctx: Context, rng: random.Random) -> Record:
        values = []
        for _ in range(rng.randint(0, 2)):
            option = ctx.pick("documentcustomfieldoptions", rng)
            if option is not None:
                values.append(
                    {
                        "id": self._value_id(),
                        "value": str(option["id"]),
                        "documentCustomField": {"id": option["customFieldId"]},
                    }
                )
        return {"data": values}

    def _icf_values(self, ctx: Context, rng: random.Random) -> Record:
        values = []
        for _ in range(rng.randint(1, 2)):
            option = ctx.pick("itemcustomfieldoptions", rng)
            if option is not None:
                values.append(
                    {
                        "id": self._value_id(),
                        "value": str(option["id"]),
                        "itemCustomField": {"id": option["customFieldId"]},
                    }
                )
        return {"data": values}

    def _user_ref(self, ctx: Context, rng: random.Random) -> Record | None:
        user = ctx.pick("users", rng)
        if user is None:
            return None
        return {"id": user["id"], "email": user["email"]}

    def _lines(self, ctx: Context, rng: random.Random, currency: str) -> tuple[list[Record], float]:
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
                    "id": self._value_id(),
                    "item": None if item is None else {"id": item["id"], "sku": item["sku"]},
                    "name": item["name"] if item else "Custom line",
                    "quantity": quantity,
                    "price": price,
                    "sum": line_sum,
                    "currency": currency,
                    "dataItemCustomFields": self._icf_values(ctx, rng),
                }
            )
        return lines, round(total, 2)

    def _doc_detail(
        self, ctx: Context, rng: random.Random, currency: str, created: int, approved: bool
    ) -> tuple[Record, float, float]:
        lines, net = self._lines(ctx, rng, currency)
        tax = ctx.pick("taxes", rng)
        percent = float(tax["percent"]) if tax else 0.0
        tax_sum = round(net * percent / 100, 2)
        comments = [
            {
                "id": self._value_id(),
                "text": rng.choice(COMMENTS),
                "author": self._user_ref(ctx, rng),
                "createDate": stored(created + rng.randint(60, DAY)),
            }
            for _ in range(rng.randint(0, 2))
        ]
        steps = [
            {
                "id": self._value_id(),
                "position": position,
                "approver": self._user_ref(ctx, rng),
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
                {"id": self._value_id(), "name": f"scan-{rng.randint(1000, 9999)}.pdf"}
                for _ in range(rng.randint(0, 1))
            ],
            "approvalSteps": {"data": steps},
            "followers": [u for u in (self._user_ref(ctx, rng),) if u and rng.random() < 0.5],
        }
        return detail, net, round(net + tax_sum, 2)

    # --- reference data ----------------------------------------------------------------

    def taxes(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One tax."""
        name, percent, withholding = TAXES[i % len(TAXES)]
        if i >= len(TAXES):
            name = f"{name} ({i // len(TAXES) + 1})"
        created, updated = self._dates(rng)
        return {
            "id": self.seq.next_id("taxes"),
            "name": name,
            "percent": percent,
            "value": percent,
            "isWithholdingTax": withholding,
            "externalId": f"TAX-{i + 1}" if rng.random() < 0.4 else None,
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    def paymentterms(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One payment term."""
        name, pre, post, days, kind = PAYMENT_TERMS[i % len(PAYMENT_TERMS)]
        if i >= len(PAYMENT_TERMS):
            name = f"{name} ({i // len(PAYMENT_TERMS) + 1})"
        created, updated = self._dates(rng)
        return {
            "id": self.seq.next_id("paymentterms"),
            "name": name,
            "prepaymentPercent": pre,
            "postpaymentPercent": post,
            "creditPeriodDays": days,
            "paymentType": kind,
            "enable": rng.random() > 0.1,
            "externalId": f"TERM-{i + 1}" if rng.random() < 0.5 else None,
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    def locations(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One location."""
        name, address, phone = LOCATIONS[i % len(LOCATIONS)]
        if i >= len(LOCATIONS):
            name = f"{name} {i // len(LOCATIONS) + 1}"
        created, updated = self._dates(rng)
        return {
            "id": self.seq.next_id("locations"),
            "name": name,
            "uniqueCode": f"LOC-{i + 1:02d}",
            "fullAddress": address or None,
            "phone": phone or None,
            "enable": name != "Remote",
            "externalId": f"LOC{i + 1}" if rng.random() < 0.5 else None,
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    def legalentities(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One legal entity."""
        name, full, tax, bank, account = LEGAL_ENTITIES[i % len(LEGAL_ENTITIES)]
        if i >= len(LEGAL_ENTITIES):
            name = f"{name} {i // len(LEGAL_ENTITIES) + 1}"
        created, updated = self._dates(rng)
        return {
            "id": self.seq.next_id("legalentities"),
            "name": name,
            "fullName": full,
            "taxNumber": tax,
            "bankName": bank,
            "accountNumber": account,
            "externalId": f"SUB-{i + 1}" if rng.random() < 0.5 else None,
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    def users(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One user."""
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = slug(f"{first}.{last}").replace("-", ".") or f"user{i + 1}"
        created, updated = self._dates(rng)
        return {
            "id": self.seq.next_id("users"),
            "email": f"{local}.{i + 1}@{self.company_domain}",
            "firstname": first,
            "lastname": last,
            "roles": sorted({"ROLE_USER", rng.choice(ROLES)}),
            "location": self._named(ctx.pick("locations", rng)),
            "enable": rng.random() > 0.08,
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    def _options(
        self, coll: str, ctx: MemoryContext, rng: random.Random, field_ids: list[int]
    ) -> Iterator[Record]:
        total = self.counts[coll]
        for i in range(total):
            field_id = field_ids[i % len(field_ids)]
            yield self.option(coll, ctx, rng, field_id, i)

    def option(self, coll: str, ctx: Context, rng: random.Random, field_id: int, i: int) -> Record:
        """One custom-field option of field `field_id`."""
        word = OPTION_WORDS[i % len(OPTION_WORDS)]
        created, updated = self._dates(rng)
        parent = None
        if rng.random() < 0.1:
            candidate = ctx.pick(coll, rng)
            if candidate is not None and candidate["customFieldId"] == field_id:
                parent = {"id": candidate["id"], "name": candidate["name"]}
        return {
            "id": self.seq.next_id(coll),
            "name": f"{word} {i + 1}" if i >= len(OPTION_WORDS) else word,
            "code": f"{6000 + i * 10}",
            "customFieldId": field_id,
            "parent": parent,
            "enable": rng.random() > 0.05,
            "externalId": f"ACC-{6000 + i * 10}" if rng.random() < 0.3 else None,
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    @staticmethod
    def embedded_option(option: Record) -> Record:
        """How an option appears inside its custom field's `options.data`."""
        keys = ("id", "name", "code", "enable", "externalId")
        return {key: option.get(key) for key in keys}

    def custom_field(
        self, coll: str, rng: random.Random, i: int, field_id: int, options: list[Record]
    ) -> Record:
        """One custom field with its options embedded."""
        names = ICF_NAMES if coll == "itemcustomfields" else DCF_NAMES
        name = names[i % len(names)] if i < len(names) else f"{names[i % len(names)]} {i + 1}"
        created, updated = self._dates(rng)
        updated = max([updated, *(int(_epoch_of(o["updateDate"])) for o in options)])
        return {
            "id": field_id,
            "name": name,
            "type": 1,
            "typeString": "Drop-down",
            "required": i == 0,
            "position": i + 1,
            "options": {"data": [self.embedded_option(o) for o in options]},
            "enable": True,
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    def warehouses(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One warehouse."""
        location = ctx.pick("locations", rng)
        created, updated = self._dates(rng)
        base = WAREHOUSES[i % len(WAREHOUSES)]
        return {
            "id": self.seq.next_id("warehouses"),
            "name": f"{base} {location['name']}" if location else base,
            "uniqueCode": f"WH-{i + 1:02d}",
            "type": i % 2,
            "location": self._named(location),
            "enable": rng.random() > 0.1,
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    def budgets(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One budget; later budgets may sit under earlier ones."""
        year = 2025 + (i % 2)
        created, updated = self._dates(rng)
        amount = float(rng.randrange(10_000, 500_000, 1000))
        parent = ctx.pick("budgets", rng) if i >= len(BUDGETS) else None
        return {
            "id": self.seq.next_id("budgets"),
            "name": f"{year} {BUDGETS[i % len(BUDGETS)]}"
            + (f" ({i // len(BUDGETS) + 1})" if i >= len(BUDGETS) else ""),
            "startDate": f"{year}-01-01",
            "endDate": f"{year}-12-31",
            "sum": amount,
            "availableSum": round(amount * rng.uniform(0.05, 1.0), 2),
            "currency": rng.choice(("EUR", "USD", "GBP")),
            "parentBudgetId": None if parent is None else parent["id"],
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    # --- suppliers and items -----------------------------------------------------------

    def suppliers(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One supplier (the first few have deliberately awkward names)."""
        supplier_id = self.seq.next_id("suppliers")
        if i < len(FIXED_SUPPLIERS):
            name, code = FIXED_SUPPLIERS[i]
            country = _COUNTRY[code]
        else:
            country = rng.choice(COUNTRIES)
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(country.suffixes)}"
        domain = slug(name) or f"supplier{supplier_id}"
        created, updated = self._dates(rng)
        currencies = sorted(
            {country.currency, *rng.sample(("EUR", "USD", "GBP"), rng.randint(0, 2))}
        )
        status = rng.choices((2, 1, 3), weights=(80, 12, 8))[0]
        term = ctx.pick("paymentterms", rng)
        contacts = [
            {
                "id": self._value_id(),
                "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                "email": f"contact{k + 1}@{domain}.{country.tld}",
                "phone": f"{country.phone} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                "position": rng.choice(("Sales", "Accounts receivable", "CEO", "Support")),
            }
            for k in range(rng.randint(0, 2))
        ]
        return {
            "id": supplier_id,
            "name": name,
            "uniqueCode": f"SUP-{i + 1:06d}",
            "businessRegistrationNumber": "".join(rng.choice("0123456789") for _ in range(8)),
            "email": f"accounts@{domain}.{country.tld}",
            "phone": f"{country.phone} {rng.randint(100, 999)} {rng.randint(100000, 999999)}",
            "legalAddress": f"{rng.randint(1, 250)} {rng.choice(NOUNS)} Street",
            "city": rng.choice(country.cities),
            "state": None,
            "postalCode": f"{rng.randint(10000, 99999)}",
            "country": country.name,
            "currency": country.currency,
            "currencies": currencies,
            "internationalBankAccountNumber": iban(country, rng),
            "swiftCode": f"{slug(name)[:4].upper() or 'BANK'}{country.code}2X",
            "taxPayerNumber": tax_id(country, rng),
            "note": rng.choice((None, None, "Preferred supplier", "Ask for a discount")),
            "status": status,
            "enable": i % 10 != 7 and rng.random() > 0.03,
            "externalId": f"V-{i + 1:05d}" if i % 3 == 1 else None,
            "createDate": stored(created),
            "updateDate": stored(updated),
            "contacts": {"data": contacts},
            "paymentTerms": {"data": [] if term is None else [term]},
            "attachments": [],
        }

    def items(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One catalog item, usually tied to a supplier."""
        product, price = rng.choice(PRODUCTS)
        name = product + rng.choice(VARIANTS)
        supplier = ctx.pick("suppliers", rng) if rng.random() < 0.9 else None
        kind = 1 if "Service" in product or "Hour" in product or "Subscription" in product else 0
        created, updated = self._dates(rng)
        item_id = self.seq.next_id("items")
        return {
            "id": item_id,
            "name": name,
            "sku": f"SKU-{item_id}",
            "description": f"{name} — supplied by {supplier['name']}" if supplier else name,
            "price": round(price * rng.uniform(0.8, 1.3), 2),
            "type": kind,
            "typeString": "Service" if kind else "Product",
            "unit": "hour" if kind else rng.choice(("pcs", "box", "kg", "pack")),
            "currency": supplier["currency"] if supplier else "EUR",
            "supplier": self._named(supplier),
            "freeOfCharge": rng.random() < 0.02,
            "hiddenInCatalog": rng.random() < 0.05,
            "dataItemCustomFields": self._icf_values(ctx, rng),
            "externalId": f"ITEM-{i + 1}" if rng.random() < 0.25 else None,
            "createDate": stored(created),
            "updateDate": stored(updated),
        }

    # --- documents ---------------------------------------------------------------------

    def purchaseorders(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One purchase order with lines."""
        supplier = ctx.pick("suppliers", rng)
        currency = supplier["currency"] if supplier else "EUR"
        status = rng.choices((2, 1, 0, 3, 7, 8, 11), weights=(60, 12, 8, 5, 4, 4, 7))[0]
        created, updated = self._dates(rng)
        approved = status in APPROVED_LIKE
        detail, net, total = self._doc_detail(ctx, rng, currency, created, approved)
        approval = min(created + rng.randint(HOUR, 3 * DAY), updated) if approved else None
        idn = self.seq.next_idn(self.company, "purchaseorders")
        return {
            "id": self.seq.next_id("purchaseorders"),
            "idn": idn,
            "customName": f"PO {idn}: {rng.choice(NOUNS)}",
            "status": status,
            "statusString": STATUS_LABELS[status],
            "logicType": 0,
            "currency": currency,
            "sum": total,
            "netSum": net,
            "supplier": self._named(supplier),
            "location": self._named(ctx.pick("locations", rng)),
            "legalEntity": self._named(ctx.pick("legalentities", rng)),
            "approvalDate": None if approval is None else stored(approval),
            "requiredDate": stored(created + rng.randint(3, 60) * DAY),
            "dataDocumentCustomFields": self._dcf_values(ctx, rng),
            "externalId": f"ERP-PO-{i + 1}" if approved and rng.random() < 0.35 else None,
            "externalIntegrationLog": None,
            "createDate": stored(created),
            "updateDate": stored(updated),
            **detail,
        }

    def invoice(
        self,
        ctx: Context,
        rng: random.Random,
        i: int,
        *,
        logic: int = 0,
        parent: Record | None = None,
        paid: int = 0,
        payments: int = 0,
    ) -> tuple[Record, list[Record]]:
        """One invoice (credit note when logic is 1 or 5) and the payments made on it.

        `paid` 0 unpaid, 1 partly paid, 2 fully paid, split across `payments` payments.
        """
        po = parent.get("purchaseOrder") if parent else None
        po_ref = ctx.pick("purchaseorders", rng) if po is None and rng.random() < 0.8 else None
        if po_ref is not None:
            po = {"id": po_ref["id"], "idn": po_ref["idn"]}
            supplier = po_ref["supplier"]
            currency = po_ref["currency"]
        elif parent is not None:
            supplier, currency = parent["supplier"], parent["currency"]
        else:
            supplier_ref = ctx.pick("suppliers", rng)
            supplier = self._named(supplier_ref)
            currency = supplier_ref["currency"] if supplier_ref else "EUR"
        if paid == 2:
            status = 5
        elif paid == 1:
            status = 4
        else:
            status = rng.choices((2, 1, 0, 3, 8, 6, 10), weights=(55, 15, 10, 5, 5, 5, 5))[0]
        created, updated = self._dates(rng)
        approved = status in APPROVED_LIKE
        detail, net, total = self._doc_detail(ctx, rng, currency, created, approved)
        approval = min(created + rng.randint(HOUR, 3 * DAY), updated) if approved else None
        idn = self.seq.next_idn(self.company, "invoices")
        invoice_id = self.seq.next_id("invoices")
        paid_sum = 0.0
        if paid == 2:
            paid_sum = total
        elif paid == 1:
            paid_sum = round(total * rng.uniform(0.1, 0.8), 2)
        made: list[Record] = []
        if paid and payments:
            start = approval or created
            remaining = paid_sum
            for k in range(payments):
                amount = remaining if k == payments - 1 else round(paid_sum / payments, 2)
                remaining = round(remaining - amount, 2)
                pay_created = start + rng.randint(HOUR, 20 * DAY)
                made.append(
                    {
                        "id": self.seq.next_id("payments"),
                        "idn": self.seq.next_idn(self.company, "payments"),
                        "invoice": {"id": invoice_id, "idn": idn},
                        "sumPaid": round(amount, 2),
                        "payDate": stored(pay_created - rng.randint(0, DAY)),
                        "logicType": 0,
                        "status": 2,
                        "externalId": f"PAY-{invoice_id}-{k + 1}" if rng.random() < 0.4 else None,
                        "externalIntegrationLog": None,
                        "createDate": stored(pay_created),
                        "updateDate": stored(pay_created + rng.randint(0, HOUR)),
                    }
                )
            updated = max(updated, *(_epoch_of(p["updateDate"]) for p in made))
        kind = "Credit note" if logic else "Invoice"
        record = {
            "id": invoice_id,
            "idn": idn,
            "customName": f"{kind} {idn}" + (f" (split of {parent['idn']})" if parent else ""),
            "invoiceNumber": f"{'CN' if logic else 'INV'}-{2025 + i % 2}-{i + 1:05d}",
            "status": status,
            "statusString": STATUS_LABELS[status],
            "logicType": logic,
            "currency": currency,
            "sum": total,
            "netSum": net,
            "sumPaid": f"{paid_sum:.2f}",
            "supplier": supplier,
            "purchaseOrder": po,
            "location": self._named(ctx.pick("locations", rng)),
            "legalEntity": self._named(ctx.pick("legalentities", rng)),
            "issueDate": stored(created - rng.randint(0, 5) * DAY),
            "approvalDate": None if approval is None else stored(approval),
            "integrationStatus": rng.choice((0, 0, 1, 8)) if approved else 0,
            "parentData": {"idn": parent["idn"]} if parent else None,
            "dataDocumentCustomFields": self._dcf_values(ctx, rng),
            "externalId": f"BILL-{i + 1}" if approved and rng.random() < 0.3 else None,
            "externalIntegrationLog": None,
            "createDate": stored(created),
            "updateDate": stored(updated),
            **detail,
            "payments": [payment_summary(p) for p in made],
        }
        return record, made

    def receipts(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One receipt of goods against a purchase order."""
        po = ctx.pick("purchaseorders", rng)
        currency = po["currency"] if po else "EUR"
        status = rng.choices((2, 1, 0, 8), weights=(70, 15, 10, 5))[0]
        created, updated = self._dates(rng)
        approved = status in APPROVED_LIKE
        detail, _, _ = self._doc_detail(ctx, rng, currency, created, approved)
        approval = min(created + rng.randint(HOUR, 2 * DAY), updated) if approved else None
        return {
            "id": self.seq.next_id("receipts"),
            "idn": self.seq.next_idn(self.company, "receipts"),
            "receiptNumber": f"GRN-{i + 1:05d}",
            "status": status,
            "statusString": STATUS_LABELS[status],
            "purchaseOrder": None if po is None else {"id": po["id"], "idn": po["idn"]},
            "supplier": None if po is None else po["supplier"],
            "location": None if po is None else po["location"],
            "approvalDate": None if approval is None else stored(approval),
            "externalId": f"GRN-{i + 1}" if rng.random() < 0.1 else None,
            "createDate": stored(created),
            "updateDate": stored(updated),
            **detail,
        }

    def expenses(self, ctx: Context, rng: random.Random, i: int) -> Record:
        """One employee expense."""
        supplier = ctx.pick("suppliers", rng) if rng.random() < 0.5 else None
        currency = supplier["currency"] if supplier else rng.choice(("EUR", "USD", "GBP"))
        status = rng.choices((2, 1, 0, 3, 5), weights=(50, 15, 10, 5, 20))[0]
        created, updated = self._dates(rng)
        approved = status in APPROVED_LIKE
        detail, net, total = self._doc_detail(ctx, rng, currency, created, approved)
        approval = min(created + rng.randint(HOUR, 2 * DAY), updated) if approved else None
        idn = self.seq.next_idn(self.company, "expenses")
        return {
            "id": self.seq.next_id("expenses"),
            "idn": idn,
            "customName": rng.choice(("Travel", "Team lunch", "Conference", "Taxi", "Hotel"))
            + f" {idn}",
            "expenseNumber": f"EXP-{i + 1:05d}",
            "status": status,
            "statusString": STATUS_LABELS[status],
            "currency": currency,
            "sum": total,
            "netSum": net,
            "sumPaid": total if status == 5 else 0.0,
            "supplier": self._named(supplier),
            "location": self._named(ctx.pick("locations", rng)),
            "approvalDate": None if approval is None else stored(approval),
            "dataDocumentCustomFields": self._dcf_values(ctx, rng),
            "createDate": stored(created),
            "updateDate": stored(updated),
            **detail,
            "expensePayments": [],
        }

    # --- the whole dataset ---------------------------------------------------------------

    def generate(self) -> Iterator[tuple[str, Record]]:
        """Stream the company's initial dataset as (collection, record), referents first."""
        ctx = MemoryContext()
        simple = ("taxes", "paymentterms", "locations", "legalentities", "users")
        for coll in simple:
            rng = self.rng(coll)
            for i in range(self.counts[coll]):
                rec = getattr(self, coll)(ctx, rng, i)
                ctx.add(coll, rec)
                yield coll, rec
        for field_coll, option_coll in (
            ("itemcustomfields", "itemcustomfieldoptions"),
            ("documentcustomfields", "documentcustomfieldoptions"),
        ):
            rng = self.rng(field_coll)
            field_ids = [self.seq.next_id(field_coll) for _ in range(self.counts[field_coll])]
            by_field: dict[int, list[Record]] = {fid: [] for fid in field_ids}
            if field_ids:
                option_rng = self.rng(option_coll)
                for option in self._options(option_coll, ctx, option_rng, field_ids):
                    ctx.add(option_coll, option)
                    by_field[option["customFieldId"]].append(option)
                    yield option_coll, option
            for i, fid in enumerate(field_ids):
                rec = self.custom_field(field_coll, rng, i, fid, by_field[fid])
                ctx.add(field_coll, rec)
                yield field_coll, rec
        for coll in ("warehouses", "budgets", "suppliers", "items", "purchaseorders"):
            rng = self.rng(coll)
            for i in range(self.counts[coll]):
                rec = getattr(self, coll)(ctx, rng, i)
                ctx.add(coll, rec)
                yield coll, rec
        yield from self._invoices(ctx)
        for coll in ("receipts", "expenses"):
            rng = self.rng(coll)
            for i in range(self.counts[coll]):
                yield coll, getattr(self, coll)(ctx, rng, i)

    def _invoices(self, ctx: MemoryContext) -> Iterator[tuple[str, Record]]:
        """Invoices, credit notes, split-cost children and the payments on them."""
        rng = self.rng("invoices")
        total = self.counts["invoices"]
        wanted_payments = self.counts["payments"]
        logic = [rng.choices((0, 1, 5), weights=(89, 8, 3))[0] for _ in range(total)]
        child = [i > 3 and logic[i] == 0 and rng.random() < 0.04 for i in range(total)]
        eligible = [i for i in range(total) if logic[i] == 0 and not child[i]]
        paying = min(wanted_payments, int(0.45 * len(eligible)) or len(eligible))
        chosen = sorted(rng.sample(eligible, paying)) if paying else []
        per_invoice: dict[int, int] = {}
        if chosen:
            base, extra = divmod(wanted_payments, len(chosen))
            for rank, index in enumerate(chosen):
                per_invoice[index] = base + (1 if rank < extra else 0)
        paid_state = {index: (2 if rng.random() < 0.7 else 1) for index in chosen}
        parents: list[Record] = []
        for i in range(total):
            parent = rng.choice(parents) if child[i] and parents else None
            rec, payments = self.invoice(
                ctx,
                rng,
                i,
                logic=logic[i],
                parent=parent,
                paid=paid_state.get(i, 0),
                payments=per_invoice.get(i, 0),
            )
            if logic[i] == 0 and parent is None and len(parents) < 500:
                parents.append(
                    {
                        "idn": rec["idn"],
                        "purchaseOrder": rec["purchaseOrder"],
                        "supplier": rec["supplier"],
                        "currency": rec["currency"],
                    }
                )
            ctx.add("invoices", rec)
            yield "invoices", rec
            for payment in payments:
                yield "payments", payment


def payment_summary(payment: Record) -> Record:
    """How a payment appears in its invoice's detail `payments` list."""
    return {
        "id": payment["id"],
        "idn": payment["idn"],
        "sumPaid": payment["sumPaid"],
        "payDate": payment["payDate"],
    }


def _epoch_of(text: str) -> int:
    value = epoch(text)
    return 0 if value is None else value
