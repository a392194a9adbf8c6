"""Builders of documents: purchase orders, invoices (with their payments), receipts, expenses.

Documents carry detail-only lines, taxes, comments and approval steps (`Generator.doc_detail`);
payments are made together with the invoice they pay, so sums and statuses agree.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from precoro_sandbox.datagen import declared
from precoro_sandbox.datagen.core import (
    APPROVED_LIKE,
    DAY,
    HOUR,
    STATUS_LABELS,
    Context,
    Generator,
    MemoryContext,
    Record,
    epoch_of,
)
from precoro_sandbox.datagen.pools import NOUNS
from precoro_sandbox.dates import stored


def payment_summary(payment: Record) -> Record:
    """How a payment appears in its invoice's detail `payments` list."""
    return {
        "id": payment["id"],
        "idn": payment["idn"],
        "sumPaid": payment["sumPaid"],
        "payDate": payment["payDate"],
    }


def purchaseorders(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One purchase order with lines."""
    supplier = ctx.pick("suppliers", rng)
    currency = supplier["currency"] if supplier else "EUR"
    status = rng.choices((2, 1, 0, 3, 7, 8, 11), weights=(60, 12, 8, 5, 4, 4, 7))[0]
    created, updated = gen.dates(rng)
    approved = status in APPROVED_LIKE
    detail, net, total = gen.doc_detail(ctx, rng, currency, created, approved)
    approval = min(created + rng.randint(HOUR, 3 * DAY), updated) if approved else None
    idn = gen.seq.next_idn(gen.company, "purchaseorders")
    return {
        "id": gen.seq.next_id("purchaseorders"),
        "idn": idn,
        "customName": f"PO {idn}: {rng.choice(NOUNS)}",
        "status": status,
        "statusString": STATUS_LABELS[status],
        "logicType": 0,
        "currency": currency,
        "sum": total,
        "netSum": net,
        "supplier": gen.named(supplier),
        "location": gen.named(ctx.pick("locations", rng)),
        "legalEntity": gen.named(ctx.pick("legalentities", rng)),
        "approvalDate": None if approval is None else stored(approval),
        "requiredDate": stored(created + rng.randint(3, 60) * DAY),
        "dataDocumentCustomFields": gen.dcf_values(ctx, rng),
        "externalId": f"ERP-PO-{i + 1}" if approved and rng.random() < 0.35 else None,
        "externalIntegrationLog": None,
        "createDate": stored(created),
        "updateDate": stored(updated),
        **detail,
    }


def invoice(
    gen: Generator,
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
        supplier = gen.named(supplier_ref)
        currency = supplier_ref["currency"] if supplier_ref else "EUR"
    if paid == 2:
        status = 5
    elif paid == 1:
        status = 4
    else:
        status = rng.choices((2, 1, 0, 3, 8, 6, 10), weights=(55, 15, 10, 5, 5, 5, 5))[0]
    created, updated = gen.dates(rng)
    approved = status in APPROVED_LIKE
    detail, net, total = gen.doc_detail(ctx, rng, currency, created, approved)
    approval = min(created + rng.randint(HOUR, 3 * DAY), updated) if approved else None
    idn = gen.seq.next_idn(gen.company, "invoices")
    invoice_id = gen.seq.next_id("invoices")
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
                    "id": gen.seq.next_id("payments"),
                    "idn": gen.seq.next_idn(gen.company, "payments"),
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
        updated = max(updated, *(epoch_of(p["updateDate"]) for p in made))
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
        "location": gen.named(ctx.pick("locations", rng)),
        "legalEntity": gen.named(ctx.pick("legalentities", rng)),
        "issueDate": stored(created - rng.randint(0, 5) * DAY),
        "approvalDate": None if approval is None else stored(approval),
        "integrationStatus": rng.choice((0, 0, 1, 8)) if approved else 0,
        "parentData": {"idn": parent["idn"]} if parent else None,
        "dataDocumentCustomFields": gen.dcf_values(ctx, rng),
        "externalId": f"BILL-{i + 1}" if approved and rng.random() < 0.3 else None,
        "externalIntegrationLog": None,
        "createDate": stored(created),
        "updateDate": stored(updated),
        **detail,
        "payments": [payment_summary(p) for p in made],
    }
    record.update(declared.invoice(gen, ctx, record))
    return record, made


def receipts(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One receipt of goods against a purchase order."""
    po = ctx.pick("purchaseorders", rng)
    currency = po["currency"] if po else "EUR"
    status = rng.choices((2, 1, 0, 8), weights=(70, 15, 10, 5))[0]
    created, updated = gen.dates(rng)
    approved = status in APPROVED_LIKE
    detail, _, _ = gen.doc_detail(ctx, rng, currency, created, approved)
    approval = min(created + rng.randint(HOUR, 2 * DAY), updated) if approved else None
    return {
        "id": gen.seq.next_id("receipts"),
        "idn": gen.seq.next_idn(gen.company, "receipts"),
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


def expenses(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """One employee expense."""
    supplier = ctx.pick("suppliers", rng) if rng.random() < 0.5 else None
    currency = supplier["currency"] if supplier else rng.choice(("EUR", "USD", "GBP"))
    status = rng.choices((2, 1, 0, 3, 5), weights=(50, 15, 10, 5, 20))[0]
    created, updated = gen.dates(rng)
    approved = status in APPROVED_LIKE
    detail, net, total = gen.doc_detail(ctx, rng, currency, created, approved)
    approval = min(created + rng.randint(HOUR, 2 * DAY), updated) if approved else None
    idn = gen.seq.next_idn(gen.company, "expenses")
    rec: Record = {
        "id": gen.seq.next_id("expenses"),
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
        "supplier": gen.named(supplier),
        "location": gen.named(ctx.pick("locations", rng)),
        "approvalDate": None if approval is None else stored(approval),
        "dataDocumentCustomFields": gen.dcf_values(ctx, rng),
        "createDate": stored(created),
        "updateDate": stored(updated),
        **detail,
        "expensePayments": [],
    }
    rec.update(declared.expense(gen, ctx, rec))
    return rec


def invoices_with_payments(gen: Generator, ctx: MemoryContext) -> Iterator[tuple[str, Record]]:
    """Invoices, credit notes, split-cost children and the payments on them."""
    rng = gen.rng("invoices")
    total = gen.counts["invoices"]
    wanted_payments = gen.counts["payments"]
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
        rec, payments = invoice(
            gen,
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
