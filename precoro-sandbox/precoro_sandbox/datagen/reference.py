"""Builders of reference data: taxes, payment terms, locations, legal entities, users...

Also custom fields with their options, warehouses and budgets.

Each builder makes one record from the company's `Generator` state, a `Context` to
point at other records, the entity's own random stream and the record's index.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from precoro_client.registry import PARENT_ID_FIELD

from precoro_sandbox.datagen import declared
from precoro_sandbox.datagen.core import Context, Generator, MemoryContext, Record, epoch_of, slug
from precoro_sandbox.datagen.pools import (
    BUDGETS,
    DCF_NAMES,
    FIRST_NAMES,
    ICF_NAMES,
    LAST_NAMES,
    LEGAL_ENTITIES,
    LOCATIONS,
    OPTION_WORDS,
    PAYMENT_TERMS,
    ROLES,
    TAXES,
    WAREHOUSES,
)
from precoro_sandbox.dates import stored


def taxes(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One tax."""
    name, percent, withholding = TAXES[i % len(TAXES)]
    if i >= len(TAXES):
        name = f"{name} ({i // len(TAXES) + 1})"
    created, updated = gen.dates(rng)
    rec: Record = {
        "id": gen.seq.next_id("taxes"),
        "name": name,
        "percent": percent,
        "value": percent,
        "isWithholdingTax": withholding,
        "externalId": f"TAX-{i + 1}" if rng.random() < 0.4 else None,
        "createDate": stored(created),
        "updateDate": stored(updated),
    }
    rec.update(declared.tax(gen, rec))
    return rec


def paymentterms(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One payment term."""
    name, pre, post, days, kind = PAYMENT_TERMS[i % len(PAYMENT_TERMS)]
    if i >= len(PAYMENT_TERMS):
        name = f"{name} ({i // len(PAYMENT_TERMS) + 1})"
    created, updated = gen.dates(rng)
    return {
        "id": gen.seq.next_id("paymentterms"),
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


def locations(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One location."""
    name, address, phone = LOCATIONS[i % len(LOCATIONS)]
    if i >= len(LOCATIONS):
        name = f"{name} {i // len(LOCATIONS) + 1}"
    created, updated = gen.dates(rng)
    return {
        "id": gen.seq.next_id("locations"),
        "name": name,
        "uniqueCode": f"LOC-{i + 1:02d}",
        "fullAddress": address or None,
        "phone": phone or None,
        "enable": name != "Remote",
        "externalId": f"LOC{i + 1}" if rng.random() < 0.5 else None,
        "createDate": stored(created),
        "updateDate": stored(updated),
    }


def legalentities(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One legal entity."""
    name, full, tax, bank, account = LEGAL_ENTITIES[i % len(LEGAL_ENTITIES)]
    if i >= len(LEGAL_ENTITIES):
        name = f"{name} {i // len(LEGAL_ENTITIES) + 1}"
    created, updated = gen.dates(rng)
    return {
        "id": gen.seq.next_id("legalentities"),
        "name": name,
        "fullName": full,
        "taxNumber": tax,
        "bankName": bank,
        "accountNumber": account,
        "externalId": f"SUB-{i + 1}" if rng.random() < 0.5 else None,
        "createDate": stored(created),
        "updateDate": stored(updated),
    }


def users(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One user."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    local = slug(f"{first}.{last}").replace("-", ".") or f"user{i + 1}"
    created, updated = gen.dates(rng)
    return {
        "id": gen.seq.next_id("users"),
        "email": f"{local}.{i + 1}@{gen.company_domain}",
        "firstname": first,
        "lastname": last,
        "roles": sorted({"ROLE_USER", rng.choice(ROLES)}),
        "location": gen.named(ctx.pick("locations", rng)),
        "enable": rng.random() > 0.08,
        "createDate": stored(created),
        "updateDate": stored(updated),
    }


def option(
    gen: Generator, ctx: Context, rng: random.Random, i: int, *, coll: str, field_id: int
) -> Record:
    """One custom-field option of field `field_id`."""
    word = OPTION_WORDS[i % len(OPTION_WORDS)]
    created, updated = gen.dates(rng)
    parent = None
    if rng.random() < 0.1:
        candidate = ctx.pick(coll, rng)
        if candidate is not None and candidate[PARENT_ID_FIELD] == field_id:
            parent = {"id": candidate["id"], "name": candidate["name"]}
    return {
        "id": gen.seq.next_id(coll),
        "name": f"{word} {i + 1}" if i >= len(OPTION_WORDS) else word,
        "code": f"{6000 + i * 10}",
        PARENT_ID_FIELD: field_id,
        "parent": parent,
        "enable": rng.random() > 0.05,
        "externalId": f"ACC-{6000 + i * 10}" if rng.random() < 0.3 else None,
        "createDate": stored(created),
        "updateDate": stored(updated),
    }


def embedded_option(option: Record) -> Record:
    """How an option appears inside its custom field's `options.data`."""
    keys = ("id", "name", "code", "enable", "externalId")
    return {key: option.get(key) for key in keys}


def custom_field(
    gen: Generator,
    rng: random.Random,
    i: int,
    *,
    coll: str,
    field_id: int,
    options: list[Record],
) -> Record:
    """One custom field with its options embedded."""
    names = ICF_NAMES if coll == "itemcustomfields" else DCF_NAMES
    name = names[i % len(names)] if i < len(names) else f"{names[i % len(names)]} {i + 1}"
    created, updated = gen.dates(rng)
    updated = max([updated, *(int(epoch_of(o["updateDate"])) for o in options)])
    return {
        "id": field_id,
        "name": name,
        "type": 1,
        "typeString": "Drop-down",
        "required": i == 0,
        "position": i + 1,
        "options": {"data": [embedded_option(o) for o in options]},
        "enable": True,
        "createDate": stored(created),
        "updateDate": stored(updated),
    }


def warehouses(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One warehouse."""
    location = ctx.pick("locations", rng)
    created, updated = gen.dates(rng)
    base = WAREHOUSES[i % len(WAREHOUSES)]
    return {
        "id": gen.seq.next_id("warehouses"),
        "name": f"{base} {location['name']}" if location else base,
        "uniqueCode": f"WH-{i + 1:02d}",
        "type": i % 2,
        "location": gen.named(location),
        "enable": rng.random() > 0.1,
        "createDate": stored(created),
        "updateDate": stored(updated),
    }


def budgets(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One budget; later budgets may sit under earlier ones."""
    year = 2025 + (i % 2)
    created, updated = gen.dates(rng)
    amount = float(rng.randrange(10_000, 500_000, 1000))
    parent = ctx.pick("budgets", rng) if i >= len(BUDGETS) else None
    return {
        "id": gen.seq.next_id("budgets"),
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


def custom_fields_with_options(
    gen: Generator, ctx: MemoryContext, field_coll: str, option_coll: str
) -> Iterator[tuple[str, Record]]:
    """A custom-field entity's records, each preceded by its options (embedded in it)."""
    rng = gen.rng(field_coll)
    field_ids = [gen.seq.next_id(field_coll) for _ in range(gen.counts[field_coll])]
    by_field: dict[int, list[Record]] = {fid: [] for fid in field_ids}
    if field_ids:
        option_rng = gen.rng(option_coll)
        for i in range(gen.counts[option_coll]):
            field_id = field_ids[i % len(field_ids)]
            option_rec = option(gen, ctx, option_rng, i, coll=option_coll, field_id=field_id)
            ctx.add(option_coll, option_rec)
            by_field[option_rec[PARENT_ID_FIELD]].append(option_rec)
            yield option_coll, option_rec
    for i, fid in enumerate(field_ids):
        rec = custom_field(gen, rng, i, coll=field_coll, field_id=fid, options=by_field[fid])
        ctx.add(field_coll, rec)
        yield field_coll, rec
