"""Precoro's business rules: what a write changes beyond the record it names.

A payment is checked against its invoice's remaining amount and updates the invoice;
a custom-field option re-embeds itself in its field; every change of an entity with a
webhook type is published to the company's webhook dispatcher.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from precoro_client import registry
from precoro_client.registry import Entity

from precoro_sandbox.datagen import STATUS_LABELS, Record, embedded_option, payment_summary
from precoro_sandbox.entities import facts
from precoro_sandbox.replies import field_errors

if TYPE_CHECKING:
    from precoro_sandbox.app import Company, Sandbox


def format_amount(value: float) -> str:
    """An amount as Precoro prints it in messages: 2 decimals, trailing zeros dropped."""
    text = f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class BusinessRules:
    """Side effects of writes: payments on invoices, options in fields, webhooks."""

    def __init__(self, sandbox: Sandbox) -> None:
        """Bind to the sandbox whose store and dispatchers the rules act on."""
        self.sb = sandbox

    def check_payment(self, company: Company, changes: dict[str, Any]) -> Record:
        """The invoice a new payment pays, or a validation error on `sumPaid`/`invoice`."""
        status = self.sb.settings.validation_status
        invoice = self.sb.store.record(company.index, "invoices", "id", changes["invoice"]["id"])
        if invoice is None:
            raise field_errors(status, {"invoice": "The referenced invoice does not exist."})
        total = float(invoice.get("sum") or 0)
        paid = float(invoice.get("sumPaid") or 0)
        remaining = round(total - paid, 2)
        if remaining <= 0:
            if self.sb.settings.fully_paid_error == "not_exceed":
                message = "The amount must be greater than 0 and not exceed 0"
            else:
                message = "The Invoice is already fully paid."
            raise field_errors(status, {"sumPaid": message})
        amount = round(float(changes["sumPaid"]), 2)
        if amount <= 0 or amount > remaining:
            message = f"The amount must be greater than 0 and not exceed {format_amount(remaining)}"
            raise field_errors(status, {"sumPaid": message})
        return invoice

    def check_unique(
        self, company: Company, entity: Entity, changes: dict[str, Any], record_id: int | None
    ) -> None:
        """With `unique_supplier_code` on: 400 when another record has a unique field's value."""
        if not self.sb.settings.unique_supplier_code:
            return
        errors: dict[str, str] = {}
        for name in facts(entity).unique:
            value = changes.get(name)
            if value in (None, ""):
                continue
            where = ["json_extract(list_json, ?) = ?"]
            params: list[Any] = [f"$.{name}", value]
            if record_id is not None:
                where.append("id != ?")
                params.append(record_id)
            if self.sb.store.count(company.index, entity.name, where, params):
                errors[name] = "This value is already used."
        if errors:
            raise field_errors(self.sb.settings.validation_status, errors)

    def apply_payment(self, company: Company, invoice: Record, payment: Record, now: str) -> None:
        """Add a stored payment to its invoice: `sumPaid`, status 4/5, `payments`."""
        invoices = registry.get("invoices")
        paid = round(float(invoice.get("sumPaid") or 0) + float(payment["sumPaid"]), 2)
        invoice["sumPaid"] = f"{paid:.2f}"
        invoice["status"] = 5 if paid >= round(float(invoice["sum"]), 2) else 4
        invoice["statusString"] = STATUS_LABELS[invoice["status"]]
        invoice["payments"] = [*(invoice.get("payments") or []), payment_summary(payment)]
        invoice["updateDate"] = now
        self.sb.store.save(company.index, invoices, invoice, self.sb.seed, new=False)
        self.after_write(company, invoices, invoice, action=1)

    def after_write(self, company: Company, entity: Entity, rec: Record, *, action: int) -> None:
        """Side effects of any change: re-embed options into their field, fire webhooks."""
        if entity.parent is not None:
            self.refresh_custom_field(company, entity, int(rec["customFieldId"]))
            return
        if entity.webhook_type is None:
            return
        payload: dict[str, Any] = {"id": rec["id"], "type": entity.webhook_type, "action": action}
        if entity.key == "idn":
            idn = rec["idn"]
            payload["idn"] = int(idn) if str(idn).isdigit() else idn
        self.publish(company, payload)

    def refresh_custom_field(self, company: Company, option_entity: Entity, field_id: int) -> None:
        """Re-embed every option of field `field_id` and bump the field's `updateDate`."""
        store = self.sb.store
        parent = registry.get(option_entity.parent or "")
        rec = store.record(company.index, parent.name, "id", field_id)
        if rec is None:
            return
        options: list[Record] = []
        offset = 0
        while True:
            rows = store.page(
                company.index,
                option_entity.name,
                ["parent_id = ?"],
                [field_id],
                order="id",
                limit=500,
                offset=offset,
            )
            options.extend(embedded_option(json.loads(row)) for row in rows)
            if len(rows) < 500:
                break
            offset += 500
        rec["options"] = {"data": options}
        rec["updateDate"] = self.sb.now_stored()
        store.save(company.index, parent, rec, self.sb.seed, new=False)
        self.after_write(company, parent, rec, action=1)

    def publish(self, company: Company, payload: dict[str, Any]) -> None:
        """Hand a webhook message to the company's dispatcher (if any URL is registered)."""
        dispatcher = self.sb.existing_dispatcher(company.index)
        if dispatcher is not None and dispatcher.urls():
            dispatcher.publish(payload)
