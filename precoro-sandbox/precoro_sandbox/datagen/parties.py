"""Builders of suppliers (with contacts and payment terms) and catalog items."""

from __future__ import annotations

import random

from precoro_sandbox.datagen import declared
from precoro_sandbox.datagen.core import Context, Generator, Record, iban, slug, tax_id
from precoro_sandbox.datagen.pools import (
    ADJECTIVES,
    COUNTRIES,
    COUNTRY_BY_CODE,
    FIRST_NAMES,
    FIXED_SUPPLIERS,
    LAST_NAMES,
    NOUNS,
    PRODUCTS,
    VARIANTS,
)
from precoro_sandbox.dates import stored


def suppliers(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One supplier (the first few have deliberately awkward names)."""
    supplier_id = gen.seq.next_id("suppliers")
    if i < len(FIXED_SUPPLIERS):
        name, code = FIXED_SUPPLIERS[i]
        country = COUNTRY_BY_CODE[code]
    else:
        country = rng.choice(COUNTRIES)
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(country.suffixes)}"
    domain = slug(name) or f"supplier{supplier_id}"
    created, updated = gen.dates(rng)
    currencies = sorted({country.currency, *rng.sample(("EUR", "USD", "GBP"), rng.randint(0, 2))})
    status = rng.choices((2, 1, 3), weights=(80, 12, 8))[0]
    term = ctx.pick("paymentterms", rng)
    contacts = [
        {
            "id": gen.value_id(),
            "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            "email": f"contact{k + 1}@{domain}.{country.tld}",
            "phone": f"{country.phone} {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
            "position": rng.choice(("Sales", "Accounts receivable", "CEO", "Support")),
        }
        for k in range(rng.randint(0, 2))
    ]
    rec: Record = {
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
    rec.update(declared.supplier(gen, ctx, rec, country))
    return rec


def items(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One catalog item, usually tied to a supplier."""
    product, price = rng.choice(PRODUCTS)
    name = product + rng.choice(VARIANTS)
    supplier = ctx.pick("suppliers", rng) if rng.random() < 0.9 else None
    kind = 1 if "Service" in product or "Hour" in product or "Subscription" in product else 0
    created, updated = gen.dates(rng)
    item_id = gen.seq.next_id("items")
    rec: Record = {
        "id": item_id,
        "name": name,
        "sku": f"SKU-{item_id}",
        "description": f"{name} — supplied by {supplier['name']}" if supplier else name,
        "price": round(price * rng.uniform(0.8, 1.3), 2),
        "type": kind,
        "typeString": "Service" if kind else "Product",
        "unit": "hour" if kind else rng.choice(("pcs", "box", "kg", "pack")),
        "currency": supplier["currency"] if supplier else "EUR",
        "supplier": gen.named(supplier),
        "freeOfCharge": rng.random() < 0.02,
        "hiddenInCatalog": rng.random() < 0.05,
        "dataItemCustomFields": gen.icf_values(ctx, rng),
        "externalId": f"ITEM-{i + 1}" if rng.random() < 0.25 else None,
        "createDate": stored(created),
        "updateDate": stored(updated),
    }
    rec.update(declared.item(gen, ctx, rec))
    return rec
