"""Values of the fields production clients declare beyond the core ones.

Production integration code declares many more fields per endpoint than our plugins
use (bank details, approval state, company-currency totals, integration ids...; see
`docs/precoro-api.md`, "Record fields"). A sandbox that left them out would hide a
client whose schema or loader chokes on them, so every record carries them, with
values consistent with the rest of the record.

Each record's values come from its own random stream (`Generator.side_rng`, keyed by
the record's id), never from its collection's stream, so adding them changed no value
of the existing fields and no id. Polymorphic fields take each of their shapes in turn
(by record id), so even a small dataset serves every shape a client must accept.
"""

from __future__ import annotations

import random
from typing import Any

from precoro_sandbox.datagen.core import DAY, HOUR, Context, Generator, Record, epoch_of
from precoro_sandbox.datagen.pools import Country
from precoro_sandbox.dates import stored

COMPANY_CURRENCY = "EUR"
"""The generated company's own currency (company-currency totals are in it)."""

TO_COMPANY_CURRENCY: dict[str, float] = {
    "EUR": 1.0,
    "USD": 0.92,
    "GBP": 1.17,
    "PLN": 0.23,
    "SEK": 0.088,
    "UAH": 0.022,
    "CAD": 0.68,
}
"""Fixed exchange rates to the company currency (1.0 for an unknown currency)."""

BANKS: dict[str, tuple[str, ...]] = {
    "DE": ("Deutsche Bank", "Commerzbank", "Sparkasse Köln"),
    "FR": ("BNP Paribas", "Société Générale", "Crédit Agricole"),
    "GB": ("Barclays", "HSBC UK", "Lloyds Bank"),
    "US": ("Chase", "Bank of America", "Wells Fargo"),
    "UA": ("PrivatBank", "Oschadbank"),
    "PL": ("PKO Bank Polski", "mBank"),
    "ES": ("Banco Santander", "BBVA"),
    "NL": ("ING", "ABN AMRO", "Rabobank"),
    "SE": ("Nordea", "SEB", "Swedbank"),
    "CA": ("RBC Royal Bank", "TD Canada Trust"),
}

TAX_LABELS: dict[str, str] = {"US": "EIN", "CA": "GST/HST", "UA": "EDRPOU"}
"""Label of the tax id where it is not "VAT"."""

APPROVING_WAYS = ("sequential", "parallel", "any")
CONDITIONS = (
    None,
    None,
    "Delivery within 5 working days",
    "FCA our warehouse",
    "Free shipping over 500",
)
NOTES = (None, None, "Check the delivery address", "Urgent", "Split across two budgets")


def side_id(record_id: int, k: int) -> int:
    """Id of the k-th nested value of a record in these fields (distinct per record)."""
    return record_id * 100 + k


def approving_way(record_id: int, rng: random.Random) -> Any:
    """A label, an object or a list, in turn by record id (the field is polymorphic)."""
    way = rng.choice(APPROVING_WAYS)
    shape = record_id % 3
    if shape == 0:
        return way
    if shape == 1:
        return {"id": APPROVING_WAYS.index(way) + 1, "name": way.capitalize()}
    return [] if rng.random() < 0.5 else [{"id": APPROVING_WAYS.index(way) + 1, "name": way}]


def sync_id(rng: random.Random, chance: float, *, numeric: bool = False) -> Any:
    """Id in an accounting system (QuickBooks, Xero, NetSuite), or None when not synced."""
    if rng.random() >= chance:
        return None
    if numeric:
        return rng.randint(100, 99999)
    return f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}"


def supplier(gen: Generator, ctx: Context, rec: Record, country: Country) -> Record:
    """The declared fields of one supplier (bank, tax, approval, portal, integrations)."""
    rng = gen.side_rng("suppliers", rec["id"])
    code = country.code
    created = epoch_of(rec["createDate"])
    approved = rec["status"] == 2
    iban = rec.get("internationalBankAccountNumber")
    tolerance = rng.random() < 0.2
    steps = [
        {
            "id": side_id(rec["id"], k),
            "position": k,
            "approver": gen.user_ref(ctx, rng),
            "status": 2 if approved else 1,
        }
        for k in range(1, rng.randint(0, 2) + 1)
    ]
    entities = [ctx.pick("legalentities", rng) for _ in range(rng.randint(0, 2))]
    served = {le["id"]: {"id": le["id"], "name": le["name"]} for le in entities if le}
    tax = ctx.pick("taxes", rng)
    net_suite = sync_id(rng, 0.15, numeric=rng.random() < 0.5)
    voter = gen.user_ref(ctx, rng)
    way = approving_way(rec["id"], rng)
    return {
        "accountHolderName": rec["name"],
        "bankName": rng.choice(BANKS[code]),
        "bankAddress": f"{rng.randint(1, 99)} Market Street, {rng.choice(country.cities)}",
        "accountNumber": iban[-10:] if iban else "".join(rng.choices("0123456789", k=10)),
        "sortCode": f"{rng.randint(10, 99)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}"
        if code == "GB"
        else None,
        "americanBankersAssociationNumber": "".join(rng.choices("0123456789", k=9))
        if code == "US"
        else None,
        "indianFinancialSystemCode": None,
        "permanentAccountNumber": None,
        "taxPayer": bool(rec.get("taxPayerNumber")) and rng.random() < 0.95,
        "taxPayerType": 1 if rng.random() < 0.05 else 0,
        "taxPayerLabel": TAX_LABELS.get(code, "VAT"),
        "conditions": rng.choice(CONDITIONS),
        "deliveryPeriod": rng.randint(1, 30),
        "minimumSum": float(rng.choice((0, 0, 50, 100, 250, 1000))),
        "autoSendPOSupplier": rng.random() < 0.3,
        "enterInvoiceAsOneLine": rng.random() < 0.1,
        "enableToleranceRate": tolerance,
        "toleranceRatePercent": 5.0 if tolerance else 0.0,
        "supplierToleranceLimitsSetup": {"percent": 5.0, "sum": 100.0} if tolerance else [],
        "approvalDate": stored(created + rng.randint(HOUR, 3 * DAY)) if approved else None,
        "approvalSteps": {"data": steps},
        "approvingWay": way,
        "approvalInfo": {
            "canApprove": rec["status"] == 1,
            "canReject": rec["status"] == 1,
            "canEditSupplierByInRevision": False,
        },
        "isEnabledApproval": True,
        "showApprovingWay": way,
        "showApprovalReviewers": [step["approver"] for step in steps if step["approver"]],
        "voters": [{**voter, "vote": "approved"}] if approved and voter else [],
        "substitute": gen.user_ref(ctx, rng) if rng.random() < 0.05 else None,
        "creator": gen.user_ref(ctx, rng),
        "creditBalanceSums": {rec["currency"]: round(rng.uniform(10, 900), 2)}
        if rng.random() < 0.1
        else [],
        "integrationStatus": 1 if rec.get("externalId") else 0,
        "netSuiteId": net_suite,
        "qboId": sync_id(rng, 0.1, numeric=False),
        "xeroId": sync_id(rng, 0.1),
        "afaxysSupplierId": None,
        "accountSetupData": [
            {
                "companyId": gen.company,
                "integrationId": f"netsuite-{gen.company}",
                "integrationType": "netsuite",
                "legalEntityId": le["id"],
                "mapField": "subsidiary",
                "name": le["name"],
                "precoroId": rec["id"],
            }
            for le in served.values()
        ]
        if net_suite is not None
        else [],
        "marketSupplier": None,
        "enableMarketSupplier": False,
        "isMarketUpdatable": False,
        "marketContacts": {"data": []},
        "marketAttachments": [],
        "isPunchoutSupplier": rng.random() < 0.03,
        "supplierRegistration": {
            "id": side_id(rec["id"], 50),
            "status": "completed",
            "email": rec["email"],
        }
        if rng.random() < 0.1
        else None,
        "supplierRegistrations": [],
        "dataSupplierCustomFields": {"data": []},
        "supplierCustomFieldOptionValues": [],
        "supplierTaxDefaultOptions": [{"id": tax["id"], "name": tax["name"]}]
        if tax and rng.random() < 0.2
        else [],
        "supplierICFDefaultOptions": [],
        "supplierDCFDefaultOptions": [],
        "supplierLegalEntities": list(served.values()),
        "isAllAccessLegalEntity": not served,
        "accessToDocuments": ["purchaseOrder", "invoice"] if rng.random() < 0.2 else [],
        "propsVisibility": {"bankDetails": True, "taxPayerNumber": True}
        if rng.random() < 0.5
        else [],
    }


def new_supplier(rec: Record) -> None:
    """Values Precoro gives a supplier created through the API (none set yet)."""
    for name, value in (
        ("accountHolderName", rec.get("name")),
        ("taxPayer", bool(rec.get("taxPayerNumber"))),
        ("taxPayerType", 0),
        ("autoSendPOSupplier", False),
        ("enterInvoiceAsOneLine", False),
        ("enableToleranceRate", False),
        ("toleranceRatePercent", 0.0),
        ("isEnabledApproval", True),
        ("enableMarketSupplier", False),
        ("isMarketUpdatable", False),
        ("isPunchoutSupplier", False),
        ("isAllAccessLegalEntity", True),
        ("integrationStatus", 0),
    ):
        if rec.get(name) is None:
            rec[name] = value


def item(gen: Generator, ctx: Context, rec: Record) -> Record:
    """The declared fields of one catalog item (bundles, similar items).

    Not `category`: Precoro removed that object from every response (H-CAT); the
    "Category" item custom field replaces it.
    """
    rng = gen.side_rng("items", rec["id"])
    other = ctx.pick("items", rng)
    similar = [{"id": other["id"], "sku": other["sku"]}] if other and rng.random() < 0.05 else []
    return {
        "dataProductCustomFields": [],
        "disabledBySupplier": rec.get("supplier") is not None and rng.random() < 0.02,
        "similar": similar,
        "mainInSimilar": bool(similar) and rng.random() < 0.5,
        "bundleItems": [],
        "groupItems": [],
        "marketProduct": [],
        "xeroId": sync_id(rng, 0.1),
    }


def tax(gen: Generator, rec: Record) -> Record:
    """The declared fields of one tax (accounting-system ids come as text or numbers)."""
    rng = gen.side_rng("taxes", rec["id"])
    return {
        "taxAmount": 0.0,
        "qboId": sync_id(rng, 0.5, numeric=True),
        "xeroId": rng.choice(("OUTPUT", "INPUT", "OUTPUT2", None, None)),
    }


def _document(gen: Generator, ctx: Context, rng: random.Random, rec: Record) -> Record:
    """Fields invoices and expenses share: company-currency totals, budget, approval."""
    rate = TO_COMPANY_CURRENCY.get(rec["currency"], 1.0)
    created = epoch_of(rec["createDate"])
    budget = ctx.pick("budgets", rng) if rng.random() < 0.5 else None
    total = float(rec["sum"] or 0)
    options = [value["value"] for value in rec["dataDocumentCustomFields"]["data"]]
    return {
        "approvingWay": approving_way(rec["id"], rng),
        "creator": gen.user_ref(ctx, rng),
        "note": rng.choice(NOTES),
        "requiredDate": stored(created + rng.randint(7, 45) * DAY),
        "exchangeRate": []
        if rec["currency"] == COMPANY_CURRENCY
        else {"rate": rate, "date": stored(created)},
        "precisionData": {"quantity": 2, "price": 2, "sum": 2},
        "sumInCompanyCurrency": round(total * rate, 2),
        "netSumInCompanyCurrency": round(float(rec["netSum"] or 0) * rate, 2),
        "sumPaidInCompanyCurrency": round(float(rec["sumPaid"] or 0) * rate, 2),
        "budget": [] if budget is None else {"id": budget["id"], "name": budget["name"]},
        "budgetedSum": total if budget else 0.0,
        "usedTaxPercentInBudget": "100" if budget else "0",
        "isBudgetOverLimit": budget is not None and rng.random() < 0.05,
        "allDocumentCustomFieldOptionsIds": ",".join(options),
        "qboId": sync_id(rng, 0.1),
    }


def invoice(gen: Generator, ctx: Context, rec: Record) -> Record:
    """The declared detail fields of one invoice or credit note."""
    rng = gen.side_rng("invoices", rec["id"])
    shared = _document(gen, ctx, rng, rec)
    term = ctx.pick("paymentterms", rng)
    approved = rec["approvalDate"] is not None
    credit = rec["logicType"] in (1, 5)
    allocated = ctx.pick("invoices", rng) if credit else None
    scan = rec["attachments"][0] if rec["attachments"] and not credit else None
    foreign = rec["currency"] != COMPANY_CURRENCY
    return {
        **shared,
        "withholdingTaxSum": "0.00",
        "company": {"id": gen.company, "name": f"Acme Company {gen.company}"},
        "fromSupplier": rng.random() < 0.1,
        "deliveryNote": f"DN-{rng.randint(10000, 99999)}" if rng.random() < 0.3 else None,
        "paymentTerm": None if term is None else {"id": term["id"], "name": term["name"]},
        "prepaymentPercent": None if term is None else term["prepaymentPercent"],
        "postpaymentPercent": None if term is None else term["postpaymentPercent"],
        "creditPeriodDays": None if term is None else term["creditPeriodDays"],
        "toleranceRatePercent": "0.00",
        "toleranceRateSum": "0.00",
        "updateExchangeRateDate": rec["createDate"] if foreign else None,
        "isRequiredTaxesForItems": False,
        "approvalStep": None if approved else {"id": side_id(rec["id"], 1), "position": 1},
        "lastApprover": (gen.user_ref(ctx, rng) or []) if approved else [],
        "secondInCharge": [],
        "budgetLine": []
        if shared["budget"] == []
        else {"id": side_id(rec["id"], 2), "name": "General"},
        "allocatedInvoice": []
        if allocated is None
        else {"id": allocated["id"], "idn": allocated["idn"]},
        "contracts": [],
        "relatedOcrAttachment": None if scan is None else {"id": scan["id"], "name": scan["name"]},
        "xeroId": sync_id(rng, 0.1, numeric=rng.random() < 0.5),
    }


def expense(gen: Generator, ctx: Context, rec: Record) -> Record:
    """The declared detail fields of one expense."""
    rng = gen.side_rng("expenses", rec["id"])
    shared = _document(gen, ctx, rng, rec)
    entity = ctx.pick("legalentities", rng)
    return {
        **shared,
        "withholdingTaxSum": 0.0,
        "issueDate": stored(epoch_of(rec["createDate"]) - rng.randint(0, 10) * DAY),
        "lastEditor": gen.user_ref(ctx, rng),
        "legalEntity": [] if entity is None else {"id": entity["id"], "name": entity["name"]},
    }
