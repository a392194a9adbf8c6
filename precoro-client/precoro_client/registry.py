"""The Precoro entity registry: the one place that knows each entity's API facts.

The tap's streams, the target's sinks and the sandbox's routes are all generated from
`ENTITIES`. Facts and their public sources are in `docs/precoro-api.md`; where the
sources are silent the choice made here is marked "assumption" in the field or entity
description and is documented in the sandbox README.

About 960 lines, nearly all declarations: every entity and field is a fact with its
home here (a split by entity would scatter the shared fields and helpers the
declarations use); the logic is the few helpers between them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

FieldType = Literal[
    "integer", "number", "string", "boolean", "date-time", "date", "object", "array"
]
FilterOp = Literal["in", "eq", "bool", "has", "ge", "le", "since"]
MatchAs = Literal["name", "email", "text", "code"]
"""How values of a field compare when the target links records by it: `name` a company
or person name (case, accents, punctuation, connectors and a trailing legal form
ignored), `email` case ignored, `text` case, accents and punctuation ignored, `code`
spacing ignored too (`DE 123-45` = `de12345`). Implemented by target's `normalise.py`."""

PARENT_ID_FIELD = "customFieldId"
"""The field of a custom-field option that holds the id of its field (the parent)."""


@dataclass(frozen=True)
class Field:
    """One property of an entity as the API returns (and possibly accepts) it."""

    name: str
    type: FieldType
    description: str
    detail_only: bool = False
    """Only in `GET /{path}/{key}`, never in list rows."""
    writable: bool = False
    """Accepted in POST/PUT form bodies."""
    required: bool = False
    """Must be present (non-blank) in a POST."""
    ref: str | None = None
    """Entity this object points at; written as `<name>[id]`."""
    items: FieldType | None = None
    """Element type of an array of scalars; written as repeated `<name>[]`."""
    match_as: MatchAs = "code"
    """How values compare when records are linked by this field (see `MatchAs`)."""
    variants: tuple[FieldType, ...] = ()
    """Other JSON types Precoro sends for this field (polymorphic, or `[]` for an empty
    object, as production clients declare it); the published schema accepts each."""

    @property
    def form_key(self) -> str:
        """The form-field name Precoro expects for this field in a write."""
        if self.ref is not None:
            return f"{self.name}[id]"
        if self.type == "array":
            return f"{self.name}[]"
        return self.name


@dataclass(frozen=True)
class ListFilter:
    """A query parameter a list endpoint understands, and what it compares."""

    param: str
    field: str
    op: FilterOp
    date_format: str | None = None
    """strptime format for `ge`/`le` date filters (`%d.%m.%Y` or ISO)."""


@dataclass(frozen=True)
class Entity:
    """One Precoro entity: its path, identity, filters, fields and write support."""

    name: str
    path: str
    """List path; `{parent_id}` is substituted for nested entities (custom-field options)."""
    key: Literal["id", "idn"]
    """What addresses one record in detail and write paths."""
    description: str
    fields: tuple[Field, ...]
    filters: tuple[ListFilter, ...] = ()
    incremental: bool = False
    """The list accepts `modifiedSince` (else: re-read and compared, per the sync guide)."""
    external_id: bool = False
    """One of the 11 entities that accept PATCH `externalId`."""
    creatable: bool = False
    """`POST {path}` creates a record."""
    updatable: bool = False
    """`PUT {path}/{key}` updates a record."""
    fetch_detail: bool = False
    """Each changed record is worth one detail call (`GET {path}/{key}`): a document whose
    lines, taxes and approvals only the detail returns (`detail_fields`)."""
    match_keys: tuple[tuple[str, ...], ...] = ()
    """Default ordered natural-key rules for initial linking (target)."""
    webhook_type: int | None = None
    base_params: tuple[tuple[str, str], ...] = ()
    """Query parameters always sent (credit notes are invoices with logicType 1 or 5)."""
    view_of: str | None = None
    """The entity whose records this one is a filtered view of (its collection)."""
    parent: str | None = None
    """Entity whose id fills `{parent_id}` in `path`."""

    @property
    def collection(self) -> str:
        """Name of the collection that stores this entity's records."""
        return self.view_of or self.name

    @property
    def list_fields(self) -> tuple[Field, ...]:
        """Fields present in list rows."""
        return tuple(f for f in self.fields if not f.detail_only)

    @property
    def detail_fields(self) -> tuple[Field, ...]:
        """Fields only the detail endpoint returns."""
        return tuple(f for f in self.fields if f.detail_only)

    @property
    def writable_fields(self) -> tuple[Field, ...]:
        """Fields accepted by POST and PUT."""
        return tuple(f for f in self.fields if f.writable)

    def field(self, name: str) -> Field:
        """Return the field called `name` (KeyError naming the entity otherwise)."""
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        msg = f"{self.name} has no field {name!r}"
        raise KeyError(msg)

    def list_path(self, parent_id: int | str | None = None) -> str:
        """Path of the list endpoint, with the parent id filled in for nested entities."""
        if self.parent is None:
            return self.path
        if parent_id is None:
            msg = f"{self.name} is nested under {self.parent}: a parent id is required"
            raise ValueError(msg)
        return self.path.format(parent_id=parent_id)

    def detail_path(self, key: int | str, parent_id: int | str | None = None) -> str:
        """Path of one record (detail GET, PUT, PATCH)."""
        return f"{self.list_path(parent_id)}/{key}"


# --- shared field and filter fragments -------------------------------------------------

ID = Field("id", "integer", "Precoro's numeric id of the record.")
IDN = Field("idn", "string", "Company-visible document number; addresses the document in paths.")
CREATE_DATE = Field("createDate", "date-time", "When the record was created in Precoro.")
UPDATE_DATE = Field(
    "updateDate",
    "date-time",
    "When the record last changed; the replication key (compared by `modifiedSince`).",
)
ENABLE = Field("enable", "boolean", "False when the record is disabled in Precoro.", writable=True)
EXTERNAL_ID = Field(
    "externalId",
    "string",
    "Id of the record in the external system (set by POST or PATCH); null when unlinked."
    " Production clients accept it as text or a number.",
    writable=True,
    variants=("number",),
)
EXTERNAL_LOG = Field(
    "externalIntegrationLog",
    "string",
    "Free text an integration writes back to explain a sync failure (PATCH only).",
)
STATUS = Field("status", "integer", "Numeric status code (documents: 2 = approved).")
STATUS_STRING = Field("statusString", "string", "Human-readable status label.")
NAMED_REF_DESC = "Reference to the {0}: an object with `id` and `name`."


def named_ref(name: str, entity: str, label: str, *, writable: bool = False) -> Field:
    """A nested `{id, name}` object pointing at another entity."""
    return Field(name, "object", NAMED_REF_DESC.format(label), ref=entity, writable=writable)


DOC_DETAIL = (
    Field("items", "array", "Document lines with quantity, price and item custom fields.", True),
    Field("taxes", "array", "Taxes applied to the document.", True),
    Field("comments", "array", "Comments left on the document.", True),
    Field("attachments", "array", "Attached files (ids and names).", True),
    Field("approvalSteps", "object", "Approval route as `{data: [...]}`.", True),
    Field("followers", "array", "Users following the document.", True),
)

DCF_VALUES = Field(
    "dataDocumentCustomFields",
    "object",
    "Document custom-field values as `{data: [{documentCustomField: {id}, value}]}`.",
)

# --- fields production clients declare (docs/precoro-api.md, "Record fields") ------------
# The production tap (TAP) declares these in its stream schemas; the JSON types are the
# ones it declares, polymorphic ones included (`variants`). What a field means is read
# from its name where no source says more ("assumption").

OR_EMPTY: tuple[FieldType, ...] = ("array",)
"""An object Precoro sends as `[]` when it is empty (TAP declares object or array)."""
ANY_SHAPE: tuple[FieldType, ...] = ("string", "array")
"""An object that may also come as a label or a list (TAP: string, object or array)."""
TEXT_OR_NUMBER: tuple[FieldType, ...] = ("number",)
MONEY: tuple[FieldType, ...] = ("string",)
"""An amount TAP declares number or string (decimal text)."""


def declared(
    name: str,
    kind: FieldType,
    description: str,
    variants: tuple[FieldType, ...] = (),
    *,
    detail_only: bool = False,
) -> Field:
    """A read-only field that production clients declare for an endpoint."""
    return Field(name, kind, description, detail_only=detail_only, variants=variants)


def _detail(
    name: str, kind: FieldType, description: str, variants: tuple[FieldType, ...] = ()
) -> Field:
    return declared(name, kind, description, variants, detail_only=True)


APPROVING_WAY_DESC = "How the record is approved: a label, an object or a list (polymorphic)."
XERO_ID_DESC = "Id of the record in Xero, when synced with it."
QBO_ID_DESC = "Id of the record in QuickBooks Online, when synced with it."

DOC_DECLARED_DETAIL = (
    _detail("approvingWay", "object", APPROVING_WAY_DESC, ANY_SHAPE),
    _detail("creator", "object", "User who created the document (`{id, email}`).", ("string",)),
    _detail("note", "string", "Free-text note on the document."),
    _detail("requiredDate", "date-time", "When the goods or the payment are required."),
    _detail("exchangeRate", "object", "Rate to the company currency (`{rate, date}`).", OR_EMPTY),
    _detail("precisionData", "object", "Decimal places used for amounts.", ("string",)),
    _detail("sumInCompanyCurrency", "number", "Total in the company currency.", MONEY),
    _detail("netSumInCompanyCurrency", "number", "Net total in the company currency.", MONEY),
    _detail("sumPaidInCompanyCurrency", "number", "Paid so far, company currency.", MONEY),
    _detail("withholdingTaxSum", "number", "Withholding tax withheld on the document.", MONEY),
    _detail("budget", "object", "Budget the document is charged to (`{id, name}`).", OR_EMPTY),
    _detail("budgetedSum", "number", "Amount counted against the budget.", MONEY),
    _detail("usedTaxPercentInBudget", "string", "Share of the tax counted in the budget."),
    _detail("isBudgetOverLimit", "boolean", "True when the document exceeds its budget."),
    _detail(
        "allDocumentCustomFieldOptionsIds",
        "string",
        "Ids of the options chosen in the document's custom fields, comma-separated.",
    ),
    _detail("qboId", "string", QBO_ID_DESC, TEXT_OR_NUMBER),
)
"""Detail fields TAP declares on both invoices and expenses."""

MODIFIED_SINCE = ListFilter("modifiedSince", "updateDate", "since")
BY_ID = ListFilter("id", "id", "eq")
BY_EXTERNAL_ID = ListFilter("external_id[]", "externalId", "in")
BY_STATUS = ListFilter("status[]", "status", "in")
BY_ENABLE = ListFilter("enable", "enable", "bool")
APPROVAL_RANGE = (
    ListFilter("approvalDate[left_date]", "approvalDate", "ge", "%d.%m.%Y"),
    ListFilter("approvalDate[right_date]", "approvalDate", "le", "%d.%m.%Y"),
    ListFilter("approvalLeftDate", "approvalDate", "ge", "%Y-%m-%dT%H:%M:%S"),
    ListFilter("approvalRightDate", "approvalDate", "le", "%Y-%m-%dT%H:%M:%S"),
)
CREATE_RANGE = (
    ListFilter("createDate[left_date]", "createDate", "ge", "%d.%m.%Y"),
    ListFilter("createDate[right_date]", "createDate", "le", "%d.%m.%Y"),
)
DOC_FILTERS = (
    MODIFIED_SINCE,
    BY_ID,
    BY_STATUS,
    ListFilter("supplier[]", "supplier.id", "in"),
    *APPROVAL_RANGE,
    *CREATE_RANGE,
)


def _sup(
    name: str, kind: FieldType, description: str, variants: tuple[FieldType, ...] = ()
) -> Field:
    return declared(name, kind, description, variants)


SUPPLIER_DECLARED = (
    _sup("contacts", "object", "Contact persons as `{data: [...]}` (list rows too: TAP)."),
    _sup("paymentTerms", "object", "Payment terms as `{data: [...]}` (list rows too: TAP)."),
    _sup("attachments", "array", "Attached files (list rows too: TAP)."),
    _sup("accountHolderName", "string", "Name on the supplier's bank account."),
    _sup("bankName", "string", "Supplier's bank."),
    _sup("bankAddress", "string", "Address of the supplier's bank."),
    _sup("accountNumber", "string", "Bank account number (domestic format)."),
    _sup("sortCode", "string", "UK bank sort code."),
    _sup("americanBankersAssociationNumber", "string", "US ABA routing number."),
    _sup("indianFinancialSystemCode", "string", "Indian IFSC bank code."),
    _sup("permanentAccountNumber", "string", "Indian PAN tax id."),
    _sup("taxPayer", "boolean", "True when the supplier is a registered tax payer."),
    _sup("taxPayerType", "integer", "Tax payer type code (assumption: 0 company, 1 person)."),
    _sup("taxPayerLabel", "string", "Label of the tax id shown in Precoro (VAT, EIN...)."),
    _sup("conditions", "string", "Free-text supply conditions."),
    _sup("deliveryPeriod", "number", "Usual delivery time in days."),
    _sup("minimumSum", "number", "Minimum order amount."),
    _sup("autoSendPOSupplier", "boolean", "True when approved orders are e-mailed to it."),
    _sup("enterInvoiceAsOneLine", "boolean", "True when its invoices are keyed as one line."),
    _sup("enableToleranceRate", "boolean", "True when a price tolerance applies."),
    _sup("toleranceRatePercent", "number", "Price tolerance in percent."),
    _sup("supplierToleranceLimitsSetup", "object", "Tolerance limits per rule.", OR_EMPTY),
    _sup("approvalDate", "date-time", "When the supplier was approved; null if not yet."),
    _sup("approvalSteps", "object", "Supplier approval route as `{data: [...]}`."),
    _sup("approvingWay", "object", APPROVING_WAY_DESC, ANY_SHAPE),
    _sup("approvalInfo", "object", "What the key's user may do: `{canApprove, canReject}`."),
    _sup("isEnabledApproval", "boolean", "True when suppliers need approval."),
    _sup("showApprovingWay", "object", "Approving way shown to the user.", ANY_SHAPE),
    _sup("showApprovalReviewers", "object", "Reviewers shown to the user.", ANY_SHAPE),
    _sup("voters", "object", "Users who voted on the supplier's approval.", OR_EMPTY),
    _sup("substitute", "object", "Substitute approver, if any.", ANY_SHAPE),
    _sup("creator", "object", "User who created the supplier (`{id, email}`)."),
    _sup("creditBalanceSums", "object", "Credit-note balance per currency.", OR_EMPTY),
    _sup("integrationStatus", "integer", "Integration status code.", ("string", "object", "array")),
    _sup("netSuiteId", "string", "Id of the supplier in NetSuite, when synced.", TEXT_OR_NUMBER),
    _sup("qboId", "string", QBO_ID_DESC),
    _sup("xeroId", "string", XERO_ID_DESC),
    _sup("afaxysSupplierId", "string", "Id of the supplier in Afaxys, when synced."),
    _sup("accountSetupData", "array", "Per-integration account mapping of the supplier."),
    _sup("marketSupplier", "object", "Marketplace supplier it is linked to (`{id, ...}`)."),
    _sup("enableMarketSupplier", "boolean", "True when linked to a marketplace supplier."),
    _sup("isMarketUpdatable", "boolean", "True when the marketplace may update it."),
    _sup("marketContacts", "object", "Marketplace contacts as `{data: [...]}`."),
    _sup("marketAttachments", "object", "Marketplace attachments.", OR_EMPTY),
    _sup("isPunchoutSupplier", "boolean", "True for a punch-out catalog supplier."),
    _sup("supplierRegistration", "object", "Self-registration record, if any.", ANY_SHAPE),
    _sup("supplierRegistrations", "object", "Self-registration history.", OR_EMPTY),
    _sup("dataSupplierCustomFields", "object", "Supplier custom-field values.", ("string",)),
    _sup("supplierCustomFieldOptionValues", "object", "Chosen custom-field options.", OR_EMPTY),
    _sup("supplierTaxDefaultOptions", "object", "Default taxes on its documents.", OR_EMPTY),
    _sup("supplierICFDefaultOptions", "object", "Default item custom-field options.", OR_EMPTY),
    _sup("supplierDCFDefaultOptions", "object", "Default document custom-field options.", OR_EMPTY),
    _sup("supplierLegalEntities", "object", "Legal entities it serves (`[{id, name}]`).", OR_EMPTY),
    _sup("isAllAccessLegalEntity", "boolean", "True when every legal entity may use it."),
    _sup("accessToDocuments", "object", "Document types it may see (supplier portal).", OR_EMPTY),
    _sup("propsVisibility", "object", "Which properties the supplier portal shows.", OR_EMPTY),
)
"""List and detail fields of suppliers beyond the core ones (TAP read them from list rows)."""

# --- the entities -------------------------------------------------------------------------

SUPPLIERS = Entity(
    name="suppliers",
    path="/suppliers",
    key="id",
    description="Suppliers (vendors) of the company.",
    incremental=True,
    external_id=True,
    creatable=True,
    updatable=True,
    webhook_type=7,
    match_keys=(("businessRegistrationNumber",), ("uniqueCode",), ("name", "country"), ("email",)),
    filters=(
        MODIFIED_SINCE,
        BY_ID,
        BY_EXTERNAL_ID,
        ListFilter("status[]", "status", "in"),
        BY_ENABLE,
        ListFilter("externalIntegrated", "externalId", "has"),
    ),
    fields=(
        ID,
        Field(
            "name",
            "string",
            "Supplier's company name.",
            writable=True,
            required=True,
            match_as="name",
        ),
        Field("uniqueCode", "string", "Company-assigned supplier code.", writable=True),
        Field(
            "businessRegistrationNumber", "string", "Business registration number.", writable=True
        ),
        Field(
            "email",
            "string",
            "Main contact e-mail (assumption: a list field).",
            writable=True,
            match_as="email",
        ),
        Field("phone", "string", "Main phone number.", writable=True),
        Field("legalAddress", "string", "Street address.", writable=True),
        Field("city", "string", "City.", writable=True, match_as="text"),
        Field("state", "string", "State or region.", writable=True),
        Field("postalCode", "string", "Postal code.", writable=True),
        Field("country", "string", "Country name.", writable=True, match_as="text"),
        Field("currency", "string", "Default currency (ISO 4217).", writable=True),
        Field(
            "currencies",
            "array",
            "Currencies the supplier accepts; a PUT replaces the whole list.",
            writable=True,
            items="string",
        ),
        Field("internationalBankAccountNumber", "string", "IBAN.", writable=True),
        Field("swiftCode", "string", "SWIFT/BIC code.", writable=True),
        Field("taxPayerNumber", "string", "Tax id (VAT number).", writable=True),
        Field("note", "string", "Free-text note.", writable=True),
        STATUS,
        ENABLE,
        EXTERNAL_ID,
        EXTERNAL_LOG,
        CREATE_DATE,
        UPDATE_DATE,
        *SUPPLIER_DECLARED,
    ),
)

ITEMS = Entity(
    name="items",
    path="/items",
    key="id",
    description="Catalog items (products and services).",
    incremental=True,
    external_id=True,
    creatable=True,
    updatable=True,
    match_keys=(("sku",), ("name",)),
    filters=(
        MODIFIED_SINCE,
        BY_ID,
        BY_EXTERNAL_ID,
        ListFilter("supplier[]", "supplier.id", "in"),
    ),
    fields=(
        ID,
        Field("name", "string", "Item name.", writable=True, required=True, match_as="name"),
        Field("sku", "string", "Stock-keeping unit code.", writable=True),
        Field("description", "string", "Long description.", writable=True),
        Field("price", "number", "Unit price.", writable=True),
        Field("type", "integer", "Item type code (0 product, 1 service).", writable=True),
        Field("typeString", "string", "Item type label."),
        Field("unit", "string", "Unit of measure.", writable=True),
        Field("currency", "string", "Price currency (ISO 4217).", writable=True),
        named_ref("supplier", "suppliers", "supplier", writable=True),
        Field("freeOfCharge", "boolean", "True for free items.", writable=True),
        Field("hiddenInCatalog", "boolean", "True when hidden in the catalog.", writable=True),
        Field(
            "dataItemCustomFields",
            "object",
            "Item custom-field values as `{data: [{id, value, itemCustomField: {id}}]}`.",
        ),
        declared("dataProductCustomFields", "object", "Product custom-field values.", OR_EMPTY),
        declared("disabledBySupplier", "boolean", "True when its supplier disabled it."),
        declared("similar", "object", "Similar items (`[{id, sku}]`).", OR_EMPTY),
        declared("mainInSimilar", "boolean", "True for the main item of its similar group."),
        declared("bundleItems", "object", "Items of a bundle (`[{id, quantity}]`).", OR_EMPTY),
        declared("groupItems", "object", "Items of a group (`[{id}]`).", OR_EMPTY),
        declared("marketProduct", "object", "Marketplace product it mirrors.", OR_EMPTY),
        declared("xeroId", "string", XERO_ID_DESC),
        EXTERNAL_ID,
        EXTERNAL_LOG,
        CREATE_DATE,
        UPDATE_DATE,
    ),
)

TAXES = Entity(
    name="taxes",
    path="/taxes",
    key="id",
    description="Taxes the company applies.",
    external_id=True,
    creatable=True,
    updatable=True,
    match_keys=(("name",),),
    filters=(BY_ID, BY_EXTERNAL_ID),
    fields=(
        ID,
        Field("name", "string", "Tax name.", writable=True, required=True, match_as="name"),
        Field("percent", "number", "Rate in percent.", writable=True, required=True),
        Field("value", "number", "Rate value as entered.", writable=True),
        Field("isWithholdingTax", "boolean", "True for a withholding tax.", writable=True),
        declared("taxAmount", "number", "Fixed tax amount (assumption: 0 for a percent tax)."),
        declared("qboId", "string", QBO_ID_DESC, TEXT_OR_NUMBER),
        declared("xeroId", "string", XERO_ID_DESC, TEXT_OR_NUMBER),
        EXTERNAL_ID,
        EXTERNAL_LOG,
        CREATE_DATE,
        UPDATE_DATE,
    ),
)

PAYMENT_TERMS = Entity(
    name="paymentterms",
    path="/paymentterms",
    key="id",
    description="Company payment terms.",
    external_id=True,
    creatable=True,
    updatable=True,
    match_keys=(("name",),),
    filters=(BY_ID, BY_EXTERNAL_ID, BY_ENABLE),
    fields=(
        ID,
        Field(
            "name", "string", "Payment term name.", writable=True, required=True, match_as="name"
        ),
        Field("prepaymentPercent", "number", "Share paid before delivery.", writable=True),
        Field("postpaymentPercent", "number", "Share paid after invoicing.", writable=True),
        Field("creditPeriodDays", "integer", "Days until payment is due.", writable=True),
        Field("paymentType", "integer", "Payment type code.", writable=True),
        ENABLE,
        EXTERNAL_ID,
        EXTERNAL_LOG,
        CREATE_DATE,
        UPDATE_DATE,
    ),
)

LOCATIONS = Entity(
    name="locations",
    path="/locations",
    key="id",
    description="Company locations (offices, sites).",
    external_id=True,
    creatable=True,
    updatable=True,
    match_keys=(("uniqueCode",), ("name",)),
    filters=(BY_ID, BY_EXTERNAL_ID, BY_ENABLE),
    fields=(
        ID,
        Field("name", "string", "Location name.", writable=True, required=True, match_as="name"),
        Field("uniqueCode", "string", "Company-assigned location code.", writable=True),
        Field("fullAddress", "string", "Postal address.", writable=True),
        Field("phone", "string", "Phone number.", writable=True),
        ENABLE,
        EXTERNAL_ID,
        EXTERNAL_LOG,
        CREATE_DATE,
        UPDATE_DATE,
    ),
)

LEGAL_ENTITIES = Entity(
    name="legalentities",
    path="/legalentities",
    key="id",
    description="Legal entities of the company.",
    external_id=True,
    creatable=True,
    updatable=True,
    match_keys=(("name",),),
    filters=(BY_ID, BY_EXTERNAL_ID),
    fields=(
        ID,
        Field("name", "string", "Short name.", writable=True, required=True, match_as="name"),
        Field("fullName", "string", "Registered full name.", writable=True, match_as="name"),
        Field("taxNumber", "string", "Tax id of the legal entity.", writable=True),
        Field("bankName", "string", "Bank name.", writable=True),
        Field("accountNumber", "string", "Bank account number.", writable=True),
        EXTERNAL_ID,
        EXTERNAL_LOG,
        CREATE_DATE,
        UPDATE_DATE,
    ),
)

USERS = Entity(
    name="users",
    path="/users",
    key="id",
    description="Users of the company (read-only).",
    filters=(BY_ID, BY_ENABLE),
    fields=(
        ID,
        Field("email", "string", "Login e-mail.", match_as="email"),
        Field("firstname", "string", "First name."),
        Field("lastname", "string", "Last name."),
        Field("roles", "array", "Role names.", items="string"),
        named_ref("location", "locations", "user's main location"),
        ENABLE,
        CREATE_DATE,
        UPDATE_DATE,
    ),
)


def _custom_field(name: str, label: str, webhook_type: int) -> Entity:
    return Entity(
        name=name,
        path=f"/{name}",
        key="id",
        description=f"{label} custom fields, each with its options embedded.",
        webhook_type=webhook_type,
        filters=(BY_ID, BY_ENABLE),
        fields=(
            ID,
            Field("name", "string", "Field name as shown in Precoro.", match_as="name"),
            Field("type", "integer", "Field type code (drop-down, text, date...)."),
            Field("typeString", "string", "Field type label."),
            Field("required", "boolean", "True when the field must be filled."),
            Field("position", "integer", "Display order."),
            Field("options", "object", "The field's options as `{data: [{id, name, ...}]}`."),
            ENABLE,
            CREATE_DATE,
            UPDATE_DATE,
        ),
    )


def _custom_field_options(name: str, parent: str, label: str) -> Entity:
    return Entity(
        name=name,
        path=f"/{parent}/{{parent_id}}/options",
        key="id",
        description=f"Options of one {label} custom field (nested under the field's id).",
        parent=parent,
        external_id=True,
        creatable=True,
        updatable=True,
        match_keys=(("code",), ("name",)),
        filters=(BY_ID, BY_EXTERNAL_ID, BY_ENABLE),
        fields=(
            ID,
            Field("name", "string", "Option name.", writable=True, required=True, match_as="name"),
            Field("code", "string", "Option code (e.g. a GL account number).", writable=True),
            Field(PARENT_ID_FIELD, "integer", "Id of the custom field the option belongs to."),
            named_ref("parent", name, "parent option (dependent drop-downs)", writable=True),
            ENABLE,
            EXTERNAL_ID,
            EXTERNAL_LOG,
            CREATE_DATE,
            UPDATE_DATE,
        ),
    )


ITEM_CUSTOM_FIELDS = _custom_field("itemcustomfields", "Item", 11)
DOCUMENT_CUSTOM_FIELDS = _custom_field("documentcustomfields", "Document", 10)
ITEM_CUSTOM_FIELD_OPTIONS = _custom_field_options(
    "itemcustomfieldoptions", "itemcustomfields", "item"
)
DOCUMENT_CUSTOM_FIELD_OPTIONS = _custom_field_options(
    "documentcustomfieldoptions", "documentcustomfields", "document"
)

PURCHASE_ORDERS = Entity(
    name="purchaseorders",
    path="/purchaseorders",
    key="idn",
    description="Purchase orders.",
    incremental=True,
    external_id=True,
    fetch_detail=True,
    webhook_type=2,
    match_keys=(("idn",),),
    filters=(*DOC_FILTERS, BY_EXTERNAL_ID, ListFilter("logicType[]", "logicType", "in")),
    fields=(
        ID,
        IDN,
        Field("customName", "string", "Document title."),
        STATUS,
        STATUS_STRING,
        Field("logicType", "integer", "Document logic type code."),
        Field("currency", "string", "Document currency (ISO 4217)."),
        Field("sum", "number", "Total including taxes."),
        Field("netSum", "number", "Total before taxes."),
        named_ref("supplier", "suppliers", "supplier"),
        named_ref("location", "locations", "location"),
        named_ref("legalEntity", "legalentities", "legal entity"),
        Field("approvalDate", "date-time", "When the document was approved; null if not yet."),
        Field("requiredDate", "date-time", "When delivery is required."),
        DCF_VALUES,
        EXTERNAL_ID,
        EXTERNAL_LOG,
        CREATE_DATE,
        UPDATE_DATE,
        *DOC_DETAIL,
    ),
)

_INVOICE_FIELDS = (
    ID,
    IDN,
    Field("customName", "string", "Document title."),
    Field("invoiceNumber", "string", "Supplier's invoice number."),
    STATUS,
    STATUS_STRING,
    Field("logicType", "integer", "0 invoice; 1 or 5 credit note."),
    Field("currency", "string", "Document currency (ISO 4217)."),
    Field("sum", "number", "Total including taxes."),
    Field("netSum", "number", "Total before taxes."),
    Field("sumPaid", "string", "Amount paid so far (a string, as Precoro sends it)."),
    named_ref("supplier", "suppliers", "supplier"),
    Field("purchaseOrder", "object", "The purchase order invoiced: `{id, idn}`; may be null."),
    named_ref("location", "locations", "location"),
    named_ref("legalEntity", "legalentities", "legal entity"),
    Field("issueDate", "date-time", "Invoice issue date."),
    Field("approvalDate", "date-time", "When the invoice was approved; null if not yet."),
    Field("integrationStatus", "integer", "Integration status code (8 = waiting for connector)."),
    Field("parentData", "object", "Split-cost child rows: `{idn}` of the parent; else null."),
    DCF_VALUES,
    EXTERNAL_ID,
    EXTERNAL_LOG,
    CREATE_DATE,
    UPDATE_DATE,
    *DOC_DETAIL,
    Field("payments", "array", "Payments registered against the invoice.", True),
    *DOC_DECLARED_DETAIL,
    _detail("company", "object", "The company (`{id, name}`).", ("string",)),
    _detail("fromSupplier", "boolean", "True when the supplier submitted it (portal)."),
    _detail("deliveryNote", "string", "Delivery note number."),
    _detail("paymentTerm", "object", "Payment term applied (`{id, name}`).", ("string",)),
    _detail("prepaymentPercent", "number", "Share paid before delivery.", MONEY),
    _detail("postpaymentPercent", "number", "Share paid after invoicing.", MONEY),
    _detail("creditPeriodDays", "integer", "Days until payment is due."),
    _detail("toleranceRatePercent", "string", "Price tolerance in percent (decimal text)."),
    _detail("toleranceRateSum", "string", "Price tolerance amount (decimal text)."),
    _detail("updateExchangeRateDate", "date-time", "When the exchange rate was last set."),
    _detail("isRequiredTaxesForItems", "boolean", "True when every line needs a tax."),
    _detail("approvalStep", "object", "Current approval step (`{id, position}`).", ("string",)),
    _detail("lastApprover", "object", "User who approved last (`{id, email}`).", OR_EMPTY),
    _detail("secondInCharge", "object", "Deputy of the user in charge.", OR_EMPTY),
    _detail("budgetLine", "object", "Budget line charged (`{id, name}`).", OR_EMPTY),
    _detail("allocatedInvoice", "object", "Invoice a credit note is allocated to.", OR_EMPTY),
    _detail("contracts", "object", "Contracts the invoice falls under.", OR_EMPTY),
    _detail(
        "relatedOcrAttachment",
        "object",
        "Scanned file the invoice was read from (assumption: `{id, name}`).",
        ("array", "string"),
    ),
    _detail("xeroId", "string", XERO_ID_DESC, TEXT_OR_NUMBER),
)
_INVOICE_FILTERS = (
    *DOC_FILTERS,
    BY_EXTERNAL_ID,
    ListFilter("logicType[]", "logicType", "in"),
    ListFilter("sent_to_external", "externalId", "has"),
)

INVOICES = Entity(
    name="invoices",
    path="/invoices",
    key="idn",
    description="Invoices (credit notes included unless filtered by logicType).",
    incremental=True,
    external_id=True,
    fetch_detail=True,
    webhook_type=3,
    match_keys=(("idn",), ("invoiceNumber",)),
    filters=_INVOICE_FILTERS,
    fields=_INVOICE_FIELDS,
)

CREDIT_NOTES = Entity(
    name="creditnotes",
    path="/invoices",
    key="idn",
    description="Credit notes: invoices with logicType 1 or 5.",
    view_of="invoices",
    incremental=True,
    fetch_detail=True,
    webhook_type=3,
    base_params=(("logicType[]", "1"), ("logicType[]", "5")),
    filters=_INVOICE_FILTERS,
    fields=_INVOICE_FIELDS,
)

RECEIPTS = Entity(
    name="receipts",
    path="/receipts",
    key="idn",
    description="Receipts of goods against purchase orders.",
    incremental=True,
    fetch_detail=True,
    webhook_type=5,
    filters=DOC_FILTERS,
    fields=(
        ID,
        IDN,
        Field("receiptNumber", "string", "Receipt number."),
        STATUS,
        STATUS_STRING,
        Field("purchaseOrder", "object", "The purchase order received: `{id, idn}`."),
        named_ref("supplier", "suppliers", "supplier"),
        named_ref("location", "locations", "location"),
        Field("approvalDate", "date-time", "When the receipt was approved; null if not yet."),
        EXTERNAL_ID,
        CREATE_DATE,
        UPDATE_DATE,
        *DOC_DETAIL,
    ),
)

EXPENSES = Entity(
    name="expenses",
    path="/expenses",
    key="idn",
    description="Employee expenses.",
    incremental=True,
    fetch_detail=True,
    webhook_type=6,
    filters=DOC_FILTERS,
    fields=(
        ID,
        IDN,
        Field("customName", "string", "Document title."),
        Field("expenseNumber", "string", "Expense number."),
        STATUS,
        STATUS_STRING,
        Field("currency", "string", "Currency (ISO 4217)."),
        Field("sum", "number", "Total including taxes."),
        Field("netSum", "number", "Total before taxes."),
        Field("sumPaid", "number", "Amount reimbursed so far."),
        named_ref("supplier", "suppliers", "supplier"),
        named_ref("location", "locations", "location"),
        Field("approvalDate", "date-time", "When the expense was approved; null if not yet."),
        DCF_VALUES,
        CREATE_DATE,
        UPDATE_DATE,
        *DOC_DETAIL,
        Field("expensePayments", "array", "Reimbursements of the expense.", True),
        *DOC_DECLARED_DETAIL,
        _detail("issueDate", "date-time", "When the expense was incurred."),
        _detail(
            "lastEditor", "object", "User who edited it last (`{id, email}`).", ("string", "array")
        ),
        _detail("legalEntity", "object", "Legal entity (`{id, name}`).", OR_EMPTY),
    ),
)

PAYMENTS = Entity(
    name="payments",
    path="/payments",
    key="idn",
    description="Payments against invoices (create only; PUT is refused).",
    incremental=True,
    external_id=True,
    creatable=True,
    match_keys=(),
    filters=(MODIFIED_SINCE, BY_ID, BY_EXTERNAL_ID),
    fields=(
        ID,
        IDN,
        Field(
            "invoice",
            "object",
            "The invoice paid: `{id, idn}`; written as `invoice[id]`.",
            ref="invoices",
            writable=True,
            required=True,
        ),
        Field("sumPaid", "number", "Amount paid.", writable=True, required=True),
        Field("payDate", "date-time", "When the payment was made.", writable=True, required=True),
        Field("logicType", "integer", "0 standard payment.", writable=True),
        STATUS,
        EXTERNAL_ID,
        EXTERNAL_LOG,
        CREATE_DATE,
        UPDATE_DATE,
    ),
)

WAREHOUSES = Entity(
    name="warehouses",
    path="/warehouses",
    key="id",
    description="Warehouses (read-only).",
    filters=(BY_ID, BY_ENABLE),
    fields=(
        ID,
        Field("name", "string", "Warehouse name.", match_as="name"),
        Field("uniqueCode", "string", "Company-assigned warehouse code."),
        Field("type", "integer", "Warehouse type code."),
        named_ref("location", "locations", "warehouse's location"),
        ENABLE,
        CREATE_DATE,
        UPDATE_DATE,
    ),
)

BUDGETS = Entity(
    name="budgets",
    path="/budgets",
    key="id",
    description="Budgets (read-only).",
    webhook_type=9,
    filters=(BY_ID,),
    fields=(
        ID,
        Field("name", "string", "Budget name.", match_as="name"),
        Field("startDate", "date", "First day of the budget period."),
        Field("endDate", "date", "Last day of the budget period."),
        Field("sum", "number", "Budgeted amount."),
        Field("availableSum", "number", "Amount not yet spent."),
        Field("currency", "string", "Budget currency (ISO 4217)."),
        Field("parentBudgetId", "integer", "Id of the parent budget; null at the top."),
        CREATE_DATE,
        UPDATE_DATE,
    ),
)

ENTITIES: tuple[Entity, ...] = (
    SUPPLIERS,
    ITEMS,
    TAXES,
    PAYMENT_TERMS,
    LOCATIONS,
    LEGAL_ENTITIES,
    USERS,
    ITEM_CUSTOM_FIELDS,
    ITEM_CUSTOM_FIELD_OPTIONS,
    DOCUMENT_CUSTOM_FIELDS,
    DOCUMENT_CUSTOM_FIELD_OPTIONS,
    PURCHASE_ORDERS,
    INVOICES,
    CREDIT_NOTES,
    RECEIPTS,
    EXPENSES,
    PAYMENTS,
    WAREHOUSES,
    BUDGETS,
)

BY_NAME: dict[str, Entity] = {entity.name: entity for entity in ENTITIES}

WEBHOOK_ACTIONS: dict[int, str] = {0: "create", 1: "update"}
"""Webhook `action` codes (H-WH)."""

WEBHOOK_TYPES: dict[int, str] = {
    0: "Warehouse Request",
    1: "Purchase Requisition",
    2: "Purchase Order",
    3: "Invoice",
    4: "Request for Proposal",
    5: "Receipt",
    6: "Expense",
    7: "Supplier",
    8: "Stock Transfer",
    9: "Budget",
    10: "Document Custom Field",
    11: "Item Custom Field",
}
"""Webhook `type` codes (H-WH, newest snapshot)."""

PAGE_SIZES: tuple[int, ...] = (10, 20, 50, 100, 200)
"""The only `per_page` values Precoro accepts."""

MODIFIED_SINCE_FORMAT = "%Y-%m-%dT%H:%M:%S"


def get(name: str) -> Entity:
    """Look an entity up by name, with an error that lists the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(BY_NAME))
        msg = f"unknown Precoro entity {name!r}; known entities: {known}"
        raise KeyError(msg) from None


def stored_collections() -> Iterator[Entity]:
    """Entities that own their records (views such as credit notes excluded)."""
    return (entity for entity in ENTITIES if entity.view_of is None)
