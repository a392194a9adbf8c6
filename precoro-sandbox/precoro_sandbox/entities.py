"""The sandbox's per-entity facts, in one table keyed by registry entity name.

The registry (`precoro_client.registry`) says what Precoro serves for an entity; this
table says what the sandbox needs beyond that to emulate it: how many records a
dataset has, how one is built, which of its fields other records copy, how often
simulated users touch it, which relations are wrapped as `{"data": [...]}`, and the
values Precoro fills in on a write. Adding an entity to the registry means adding one
entry here; `tests/test_entity_table.py` fails until it exists.

The table's order is the generation order: an entity's referents come before it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Literal

from precoro_client import registry
from precoro_client.registry import PARENT_ID_FIELD, Field

from precoro_sandbox.datagen import declared, documents, parties, reference
from precoro_sandbox.datagen.core import Context, Generator, MemoryContext, Record
from precoro_sandbox.datagen.pools import (
    DCF_NAMES,
    ICF_NAMES,
    LEGAL_ENTITIES,
    LOCATIONS,
    PAYMENT_TERMS,
    TAXES,
    WAREHOUSES,
)

Build = Callable[[Generator, Context, random.Random, int, int | None], Record]
"""One new record: (state, referents, the entity's random stream, index, parent id)."""
Stream = Callable[[Generator, MemoryContext], Iterator[tuple[str, Record]]]
"""The initial dataset's records of an entity (and of the entities it emits with it)."""


ActionName = Literal["cancel_payment", "depend_add"]
"""Business actions beyond list/detail/create/update (served by `rules.py`)."""


@dataclass(frozen=True)
class SandboxAction:
    """A route Precoro serves for an entity beside the registry's list and detail."""

    method: str
    path: str
    """Path template; `{key}` is the record's id or idn."""
    name: ActionName
    id_param: str | None = None
    """Form field naming the record when the path does not (`depend_add`)."""


@dataclass(frozen=True)
class SandboxEntity:
    """What the sandbox knows about one stored entity beyond the registry."""

    count: Callable[[int], int]
    """Records per company for a dataset of `scale` suppliers."""
    build: Build | None = None
    """One new record (initial dataset and activity); None: only built with another
    entity's records, and simulated users never create one."""
    stream: Stream | None = None
    """How the initial dataset emits it (default: `count` records from `build`)."""
    emitted_by: str | None = None
    """The entity whose `stream` emits these records too (options, payments)."""
    ref_keys: tuple[str, ...] = ()
    """Fields other records copy when they point at one of these records."""
    activity_weight: int = 1
    """How often simulated activity picks the entity (relative weight)."""
    wrapped: frozenset[str] = frozenset()
    """Relations Precoro wraps as `{"data": [...]}` (a new record starts with no data)."""
    defaults: Callable[[Record], None] | None = None
    """Values Precoro derives on every write, beyond status and statusString."""
    unique: tuple[str, ...] = ()
    """Fields no two records of a company may share when the `unique_supplier_code`
    switch is on (Precoro's rule is not published; off by default)."""
    create_fields: tuple[str, ...] = ()
    """Registry fields a POST accepts where the registry does not mark the entity
    creatable (Precoro accepts writes our plugins do not make yet)."""
    create_required: tuple[str, ...] = ()
    """Of `create_fields`, those a POST must carry."""
    create_refs: tuple[tuple[str, str], ...] = ()
    """(field, entity) for `create_fields` written as `<field>[id]`."""
    write_only: tuple[tuple[Field, str], ...] = ()
    """(form field, entity its ids point at) that POST/PUT accept and no known response
    carries; the sandbox keeps them as links (admin `links`)."""
    actions: tuple[SandboxAction, ...] = ()
    """Routes beside list and detail (cancel a payment, link an option)."""

    @property
    def creatable(self) -> bool:
        """Simulated users may create one."""
        return self.build is not None


def _top(
    builder: Callable[[Generator, Context, random.Random, int], Record],
) -> Build:
    """A builder of a top-level entity (no parent id)."""

    def build(
        gen: Generator, ctx: Context, rng: random.Random, i: int, parent: int | None
    ) -> Record:
        return builder(gen, ctx, rng, i)

    return build


def _option(coll: str) -> Build:
    """The builder of a custom-field option entity (the parent id is the field's)."""

    def build(
        gen: Generator, ctx: Context, rng: random.Random, i: int, parent: int | None
    ) -> Record:
        if parent is None:
            raise ValueError(f"{coll} records need the id of their custom field")
        return reference.option(gen, ctx, rng, i, coll=coll, field_id=parent)

    return build


def _invoice(gen: Generator, ctx: Context, rng: random.Random, i: int) -> Record:
    """An unpaid invoice (activity; the initial dataset makes invoices with payments)."""
    return documents.invoice(gen, ctx, rng, i)[0]


def _with_options(field_coll: str, option_coll: str) -> Stream:
    def stream(gen: Generator, ctx: MemoryContext) -> Iterator[tuple[str, Record]]:
        return reference.custom_fields_with_options(gen, ctx, field_coll, option_coll)

    return stream


def _item_defaults(rec: Record) -> None:
    if rec.get("type") is not None:
        rec["typeString"] = "Service" if rec["type"] == 1 else "Product"


def _payment_defaults(rec: Record) -> None:
    if rec.get("logicType") is None:
        rec["logicType"] = 0


def _document_defaults(rec: Record) -> None:
    for name in ("sum", "netSum"):
        if name in rec and rec[name] is None:
            rec[name] = 0.0


def _invoice_defaults(rec: Record) -> None:
    _document_defaults(rec)
    _payment_defaults(rec)
    if rec.get("sumPaid") is None:
        rec["sumPaid"] = "0.00"
    if rec.get("integrationStatus") is None:
        rec["integrationStatus"] = 0


LEGAL_ENTITY_IDS = Field(
    "supplierLegalEntityIds",
    "array",
    "Legal entities the supplier serves (TGT sends it on POST/PUT /suppliers).",
    writable=True,
    items="integer",
)
_DOCUMENT_CREATE = ("supplier", "currency", "customName", "location", "legalEntity", "sum",
                    "netSum", "externalId")  # fmt: skip


def _depend_add(parent: str, id_param: str) -> tuple[SandboxAction, ...]:
    return (SandboxAction("PATCH", f"/{parent}/options/depend_add", "depend_add", id_param),)


_DOCUMENT = frozenset({"approvalSteps", "dataDocumentCustomFields"})
_OPTION_REFS = ("id", "name", PARENT_ID_FIELD)

SANDBOX_ENTITIES: dict[str, SandboxEntity] = {
    "taxes": SandboxEntity(
        count=lambda n: len(TAXES), build=_top(reference.taxes), ref_keys=("id", "name", "percent")
    ),
    "paymentterms": SandboxEntity(
        count=lambda n: len(PAYMENT_TERMS),
        build=_top(reference.paymentterms),
        ref_keys=(
            "id",
            "name",
            "prepaymentPercent",
            "postpaymentPercent",
            "creditPeriodDays",
            "paymentType",
            "enable",
            "externalId",
        ),
    ),
    "locations": SandboxEntity(
        count=lambda n: len(LOCATIONS), build=_top(reference.locations), ref_keys=("id", "name")
    ),
    "legalentities": SandboxEntity(
        count=lambda n: len(LEGAL_ENTITIES),
        build=_top(reference.legalentities),
        ref_keys=("id", "name"),
    ),
    "users": SandboxEntity(
        count=lambda n: 25,
        build=_top(reference.users),
        ref_keys=("id", "email", "firstname", "lastname"),
    ),
    "itemcustomfields": SandboxEntity(
        count=lambda n: len(ICF_NAMES),
        stream=_with_options("itemcustomfields", "itemcustomfieldoptions"),
        ref_keys=("id", "name"),
        wrapped=frozenset({"options"}),
    ),
    "itemcustomfieldoptions": SandboxEntity(
        count=lambda n: 12 * len(ICF_NAMES),
        build=_option("itemcustomfieldoptions"),
        emitted_by="itemcustomfields",
        ref_keys=_OPTION_REFS,
        activity_weight=2,
        actions=_depend_add("itemcustomfields", "item_custom_field_option_id"),
    ),
    "documentcustomfields": SandboxEntity(
        count=lambda n: len(DCF_NAMES),
        stream=_with_options("documentcustomfields", "documentcustomfieldoptions"),
        ref_keys=("id", "name"),
        wrapped=frozenset({"options"}),
    ),
    "documentcustomfieldoptions": SandboxEntity(
        count=lambda n: 12 * len(DCF_NAMES),
        build=_option("documentcustomfieldoptions"),
        emitted_by="documentcustomfields",
        ref_keys=_OPTION_REFS,
        activity_weight=2,
        actions=_depend_add("documentcustomfields", "document_custom_field_option_id"),
    ),
    "warehouses": SandboxEntity(count=lambda n: len(WAREHOUSES), build=_top(reference.warehouses)),
    "budgets": SandboxEntity(
        count=lambda n: 12, build=_top(reference.budgets), ref_keys=("id", "name")
    ),
    "suppliers": SandboxEntity(
        count=lambda n: n,
        build=_top(parties.suppliers),
        ref_keys=("id", "name", "currency"),
        activity_weight=10,
        wrapped=frozenset(
            {
                "contacts",
                "paymentTerms",
                "approvalSteps",
                "marketContacts",
                "dataSupplierCustomFields",
            }
        ),
        defaults=declared.new_supplier,
        unique=("uniqueCode",),
        write_only=((LEGAL_ENTITY_IDS, "legalentities"),),
    ),
    "items": SandboxEntity(
        count=lambda n: 3 * n,
        build=_top(parties.items),
        ref_keys=("id", "name", "sku", "price"),
        activity_weight=10,
        wrapped=frozenset({"dataItemCustomFields"}),
        defaults=_item_defaults,
    ),
    "purchaseorders": SandboxEntity(
        count=lambda n: 2 * n,
        build=_top(documents.purchaseorders),
        ref_keys=("id", "idn", "supplier", "currency", "sum", "status", "location"),
        activity_weight=10,
        wrapped=_DOCUMENT,
        defaults=_document_defaults,
        create_fields=(*_DOCUMENT_CREATE, "requiredDate"),
        create_required=("supplier",),
    ),
    "invoices": SandboxEntity(
        count=lambda n: 2 * n,
        build=_top(_invoice),
        stream=documents.invoices_with_payments,
        ref_keys=("id", "idn", "supplier", "purchaseOrder", "currency", "sum"),
        activity_weight=10,
        wrapped=_DOCUMENT,
        defaults=_invoice_defaults,
        create_fields=(
            *_DOCUMENT_CREATE,
            "invoiceNumber",
            "issueDate",
            "purchaseOrder",
            "logicType",
        ),
        create_required=("supplier",),
        create_refs=(("purchaseOrder", "purchaseorders"),),
    ),
    "payments": SandboxEntity(
        count=lambda n: n,
        emitted_by="invoices",
        activity_weight=2,
        defaults=_payment_defaults,
        actions=(SandboxAction("POST", "/payments/{key}/cancel", "cancel_payment"),),
    ),
    "receipts": SandboxEntity(
        count=lambda n: n,
        build=_top(documents.receipts),
        activity_weight=4,
        wrapped=frozenset({"approvalSteps"}),
    ),
    "expenses": SandboxEntity(
        count=lambda n: max(1, n // 2),
        build=_top(documents.expenses),
        activity_weight=4,
        wrapped=_DOCUMENT,
    ),
}
"""Every stored registry entity (a view such as credit notes lives in its `view_of` entry)."""

REF_KEYS: dict[str, tuple[str, ...]] = {
    name: facts.ref_keys for name, facts in SANDBOX_ENTITIES.items() if facts.ref_keys
}
"""The fields of a record other records copy when they point at it, per entity."""


def facts(entity: registry.Entity) -> SandboxEntity:
    """The sandbox facts of an entity (of the entity it views, for a view)."""
    return SANDBOX_ENTITIES[entity.collection]


def plan_counts(scale: int, overrides: dict[str, int] | None = None) -> dict[str, int]:
    """Record count of every stored collection for `scale` suppliers (overrides win)."""
    n = max(1, int(scale))
    counts = {name: facts.count(n) for name, facts in SANDBOX_ENTITIES.items()}
    for name, value in (overrides or {}).items():
        if name not in counts:
            raise ValueError(f"unknown collection in counts: {name!r}")
        counts[name] = max(0, int(value))
    return counts


def generate(gen: Generator) -> Iterator[tuple[str, Record]]:
    """Stream the company's initial dataset as (collection, record), referents first."""
    ctx = MemoryContext(REF_KEYS)
    for name, entry in SANDBOX_ENTITIES.items():
        if entry.emitted_by is not None:
            continue
        if entry.stream is not None:
            yield from entry.stream(gen, ctx)
            continue
        if entry.build is None:
            raise ValueError(f"{name} has neither a builder nor a stream")
        rng = gen.rng(name)
        for i in range(gen.counts[name]):
            rec = entry.build(gen, ctx, rng, i, None)
            ctx.add(name, rec)
            yield name, rec


def post_fields(entity: registry.Entity) -> dict[str, Field] | None:
    """The fields a POST of `entity` accepts (None: Precoro refuses POST there)."""
    entry = facts(entity)
    if entity.creatable:
        fields = {spec.name: spec for spec in entity.writable_fields}
    elif entry.create_fields:
        refs = dict(entry.create_refs)
        fields = {
            name: replace(
                entity.field(name),
                writable=True,
                required=name in entry.create_required,
                ref=refs.get(name, entity.field(name).ref),
            )
            for name in entry.create_fields
        }
    else:
        return None
    fields.update({spec.name: spec for spec, _ in entry.write_only})
    return fields


def put_fields(entity: registry.Entity) -> dict[str, Field]:
    """The fields a PUT of `entity` accepts."""
    fields = {spec.name: spec for spec in entity.writable_fields}
    fields.update({spec.name: spec for spec, _ in facts(entity).write_only})
    return fields
