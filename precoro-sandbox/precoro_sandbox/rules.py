"""Precoro's business rules: what a write changes beyond the record it names.

A payment is checked against its invoice's remaining amount and updates the invoice;
a custom-field option re-embeds itself in its field; every change of an entity with a
webhook type is published to the company's webhook dispatcher.
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any

from precoro_client import registry
from precoro_client.registry import PARENT_ID_FIELD, Entity

from precoro_sandbox.datagen import STATUS_LABELS, Record, embedded_option, payment_summary
from precoro_sandbox.entities import ActionName, facts
from precoro_sandbox.replies import Reply, field_errors, plain_error
from precoro_sandbox.routes import record_key
from precoro_sandbox.store import detail_text, split_json
from precoro_sandbox.writes import decode_body

if TYPE_CHECKING:
    from precoro_sandbox.app import Company, Sandbox


CANCELED = 8
"""Status of a canceled payment (assumption: the documents' code for Canceled)."""


def format_amount(value: float) -> str:
    """An amount as Precoro prints it in messages: 2 decimals, trailing zeros dropped."""
    text = f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class BusinessRules:
    """Side effects of writes: payments on invoices, options in fields, webhooks."""

    def __init__(self, sandbox: Sandbox) -> None:
        """Bind to the sandbox whose store and dispatchers the rules act on."""
        self.sb = sandbox
        self._links: dict[tuple[int, str, int], dict[str, list[int]]] = {}
        """(company, collection, record id) -> linked entity -> ids (write-only facts)."""
        self._links_lock = threading.Lock()

    # --- links: write-only relations no response carries ------------------------------

    def check_links(self, company: Company, entity: Entity, links: dict[str, Any]) -> None:
        """400 naming the field when a write-only link points at a record that does not exist."""
        targets = {spec.name: target for spec, target in facts(entity).write_only}
        errors: dict[str, str] = {}
        for name, ids in links.items():
            missing = [
                i for i in ids if self.sb.store.find(company.index, targets[name], "id", i) is None
            ]
            if missing:
                errors[name] = f"The referenced {targets[name]} record {missing[0]} does not exist."
        if errors:
            raise field_errors(self.sb.settings.validation_status, errors)

    def set_links(
        self,
        company: Company,
        entity: Entity,
        record_id: int,
        links: dict[str, Any],
        *,
        add: bool = False,
    ) -> None:
        """Store a record's write-only links (replaced, as a PUT replaces a list; or added)."""
        targets = {spec.name: target for spec, target in facts(entity).write_only}
        with self._links_lock:
            held = self._links.setdefault((company.index, entity.name, record_id), {})
            for name, ids in links.items():
                target = targets.get(name, name)
                before = held.get(target, []) if add else []
                held[target] = sorted({*before, *(int(i) for i in ids)})

    def links(self, company: int, entity: Entity, record_id: int) -> dict[str, list[int]]:
        """A record's write-only links (admin)."""
        with self._links_lock:
            return dict(self._links.get((company, entity.name, record_id), {}))

    def forget_links(self) -> None:
        """Drop every link (the data they belonged to was regenerated)."""
        with self._links_lock:
            self._links.clear()

    # --- actions ------------------------------------------------------------------------

    def act(
        self, action: ActionName, company: Company, entity: Entity, key: str | None, body: bytes
    ) -> Reply:
        """Serve one business action route of the entity table."""
        if action == "cancel_payment":
            return self.cancel_payment(company, entity, key or "")
        return self.depend_add(company, entity, body)

    def cancel_payment(self, company: Company, entity: Entity, key: str) -> Reply:
        """`POST /payments/{idn}/cancel`: the payment is canceled and leaves its invoice.

        Assumptions (the response is not published): a canceled payment gets status 8
        (the document code for Canceled), its amount is taken off the invoice's
        `sumPaid` (status back to 4 partly paid or 2 approved) and out of `payments`;
        cancelling a canceled payment changes nothing and answers the same 200.
        """
        sb = self.sb
        column, value = record_key(entity, key)
        with sb.store.write_lock:
            payment = sb.store.record(company.index, entity.name, column, value)
            if payment is None:
                raise plain_error(404, "Not Found")
            if payment.get("status") != CANCELED:
                now = sb.now_stored()
                payment["status"] = CANCELED
                payment["updateDate"] = now
                sb.store.save(company.index, entity, payment, sb.seed, new=False)
                self._take_off_invoice(company, payment, now)
                self.after_write(company, entity, payment, action=1)
        return Reply(200, sb.render(detail_text(*split_json(entity, payment))))

    def _take_off_invoice(self, company: Company, payment: Record, now: str) -> None:
        invoices = registry.get("invoices")
        ref = payment.get("invoice") or {}
        invoice = self.sb.store.record(company.index, "invoices", "id", ref.get("id"))
        if invoice is None:
            return
        paid = max(0.0, round(float(invoice.get("sumPaid") or 0) - float(payment["sumPaid"]), 2))
        invoice["sumPaid"] = f"{paid:.2f}"
        if paid <= 0:
            invoice["status"] = 2
        else:
            invoice["status"] = 5 if paid >= round(float(invoice["sum"]), 2) else 4
        invoice["statusString"] = STATUS_LABELS[invoice["status"]]
        invoice["payments"] = [p for p in invoice.get("payments") or [] if p["id"] != payment["id"]]
        invoice["updateDate"] = now
        self.sb.store.save(company.index, invoices, invoice, self.sb.seed, new=False)
        self.after_write(company, invoices, invoice, action=1)

    def depend_add(self, company: Company, entity: Entity, body: bytes) -> Reply:
        """`PATCH /{field entity}/options/depend_add`: link an option to other records.

        Form (TGT's names): `<item|document>_custom_field_option_id`, `depend_type` ("1":
        legal entities, whose existence is checked; other types are kept as given) and
        `entity_ids` ("27377", "[27377, 27378]" or "27377,27378"). Links add up. The
        answer is the option in detail shape (assumption; TGT accepts any JSON or none).
        """
        sb = self.sb
        status = sb.settings.validation_status
        action = next(a for a in facts(entity).actions if a.name == "depend_add")
        param = action.id_param or "option_id"
        form = decode_body(body)
        errors: dict[str, str] = {}
        option = None
        raw_id = form.get(param)
        if not isinstance(raw_id, str) or not raw_id.strip().isdigit():
            errors[param] = "This value should be of type integer."
        else:
            option = sb.store.record(company.index, entity.name, "id", int(raw_id))
            if option is None:
                errors[param] = f"The referenced {entity.name} record {raw_id} does not exist."
        depend_type = form.get("depend_type")
        if not isinstance(depend_type, str) or not depend_type.strip().isdigit():
            errors["depend_type"] = "This value should be of type integer."
        raw_ids = form.get("entity_ids")
        ids = re.findall(r"-?\d+", raw_ids) if isinstance(raw_ids, str) else []
        if (
            not ids
            or not isinstance(raw_ids, str)
            or re.fullmatch(r"\[?[\d\s,]*\]?", raw_ids) is None
        ):
            errors["entity_ids"] = "This value is not valid."
        elif depend_type == "1":
            missing = [
                i
                for i in ids
                if sb.store.find(company.index, "legalentities", "id", int(i)) is None
            ]
            if missing:
                errors["entity_ids"] = (
                    f"The referenced legalentities record {missing[0]} does not exist."
                )
        if errors or option is None or not isinstance(depend_type, str):
            raise field_errors(status, errors)
        kind = "legalentities" if depend_type == "1" else f"depend_type_{depend_type}"
        with self._links_lock:
            held = self._links.setdefault((company.index, entity.name, int(option["id"])), {})
            held[kind] = sorted({*held.get(kind, []), *(int(i) for i in ids)})
        return Reply(200, sb.render(detail_text(*split_json(entity, option))))

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
            self.refresh_custom_field(company, entity, int(rec[PARENT_ID_FIELD]))
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
