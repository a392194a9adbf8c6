"""Writes: form bodies decoded and validated against the registry, then create/update.

Validation follows Precoro's shape (`{"errors": {"errors": {field: message}}}`, every
bad field named at once). What a write changes beyond the record itself (payments on
their invoice, options in their custom field, webhooks) belongs to `rules.py`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from precoro_client import registry
from precoro_client.forms import decode_form
from precoro_client.registry import PARENT_ID_FIELD, Entity, Field

from precoro_sandbox import dates
from precoro_sandbox.datagen import STATUS_LABELS, Record
from precoro_sandbox.entities import facts, post_fields, put_fields
from precoro_sandbox.replies import Reply, field_errors, plain_error
from precoro_sandbox.routes import record_key
from precoro_sandbox.store import detail_text, split_json

if TYPE_CHECKING:
    from precoro_sandbox.app import Company, Sandbox


def decode_body(body: bytes) -> dict[str, Any]:
    """A form-encoded body as nested values (`supplier[id]` -> {"supplier": {"id": ...}})."""
    text = body.decode("utf-8", errors="replace")
    decoded: dict[str, Any] = decode_form(parse_qsl(text, keep_blank_values=True))
    return decoded


def scalar(kind: str, raw: str, zone: Any) -> Any:
    """One form value converted to its stored type; ValueError carries Precoro's message."""
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        if kind == "boolean":
            flag = raw.strip().lower()
            if flag not in ("0", "1", "true", "false"):
                raise ValueError
            return flag in ("1", "true")
        if kind == "date-time":
            return dates.stored_dt(dates.parse_input(raw, zone))
        if kind == "date":
            return datetime.strptime(raw, "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError:
        label = {"date-time": "datetime", "date": "date"}.get(kind, kind)
        raise ValueError(f"This value should be of type {label}.") from None
    return raw


def blank_record(entity: Entity) -> Record:
    """Default values of every field of a new record."""
    wrapped = facts(entity).wrapped
    rec: Record = {}
    for spec in entity.fields:
        if spec.type == "array":
            rec[spec.name] = []
        elif spec.type == "object" and spec.ref is None and spec.name in wrapped:
            rec[spec.name] = {"data": []}
        elif spec.name == "enable":
            rec[spec.name] = True
        else:
            rec[spec.name] = None
    return rec


def apply_defaults(entity: Entity, rec: Record) -> None:
    """Derived and default values Precoro fills in on every write."""
    names = {spec.name for spec in entity.fields}
    if "status" in names and rec.get("status") is None:
        rec["status"] = 2
    if "statusString" in names and rec.get("status") is not None:
        rec["statusString"] = STATUS_LABELS.get(rec["status"])
    derive = facts(entity).defaults
    if derive is not None:
        derive(rec)


class Writes:
    """Serves POST, PUT and PATCH on the registry's writable entities."""

    def __init__(self, sandbox: Sandbox) -> None:
        """Bind to the sandbox whose store, settings and rules writes go through."""
        self.sb = sandbox

    def convert(
        self, company: Company, entity: Entity, spec: Field, raw: Any, parent_id: int | None
    ) -> Any:
        """A form value converted to its stored JSON form; ValueError carries the message."""
        if spec.ref is not None:
            if not isinstance(raw, dict) or "id" not in raw:
                raise ValueError(f"Expected {spec.name}[id].")
            if raw["id"] in ("", None):
                if spec.required:
                    raise ValueError("This value should not be blank.")
                return None
            try:
                ref_id = int(raw["id"])
            except ValueError:
                raise ValueError("This value should be of type integer.") from None
            target = registry.get(spec.ref)
            scope = parent_id if target.name == entity.name else None
            ref = self.sb.store.record(company.index, target.name, "id", ref_id, scope)
            if ref is None:
                raise ValueError(f"The referenced {target.name} record {ref_id} does not exist.")
            if target.key == "idn":
                return {"id": ref["id"], "idn": ref["idn"]}
            return {"id": ref["id"], "name": ref.get("name")}
        zone = self.sb.settings.tz
        if spec.type == "array":
            if not isinstance(raw, list):
                raise ValueError(f"Expected {spec.name}[] (a list).")
            return [scalar(spec.items or "string", v, zone) for v in raw if v != ""]
        if not isinstance(raw, str):
            raise ValueError("Expected a single value.")
        if raw.strip() == "":
            if spec.required:
                raise ValueError("This value should not be blank.")
            return None
        return scalar(spec.type, raw, zone)

    def validate(
        self,
        company: Company,
        entity: Entity,
        form: dict[str, Any],
        *,
        allowed: dict[str, Field],
        creating: bool,
        parent_id: int | None,
    ) -> dict[str, Any]:
        """Converted changes, or a validation ApiError naming every bad field."""
        errors: dict[str, str] = {}
        changes: dict[str, Any] = {}
        for name, raw in form.items():
            spec = allowed.get(name)
            if spec is None:
                errors[name] = "This field was not expected."
                continue
            try:
                changes[name] = self.convert(company, entity, spec, raw, parent_id)
            except ValueError as exc:
                errors[name] = str(exc)
        if creating:
            for spec in allowed.values():
                if spec.required and spec.name not in form and spec.name not in errors:
                    errors[spec.name] = "This value should not be blank."
        if errors:
            raise field_errors(self.sb.settings.validation_status, errors)
        return changes

    @staticmethod
    def write_only(entity: Entity, changes: dict[str, Any]) -> dict[str, Any]:
        """Take the write-only values (no response carries them) out of `changes`."""
        return {
            spec.name: changes.pop(spec.name)
            for spec, _ in facts(entity).write_only
            if spec.name in changes
        }

    def create(self, company: Company, entity: Entity, parent_id: int | None, body: bytes) -> Reply:
        """POST: validate, assign id (and idn), store, fire the webhook."""
        form = decode_body(body)
        allowed = post_fields(entity) or {}
        changes = self.validate(
            company, entity, form, allowed=allowed, creating=True, parent_id=parent_id
        )
        links = self.write_only(entity, changes)
        sb = self.sb
        sb.rules.check_links(company, entity, links)
        with sb.store.write_lock:
            now = sb.now_stored()
            sb.rules.check_unique(company, entity, changes, None)
            invoice = None
            if entity.name == "payments":
                invoice = sb.rules.check_payment(company, changes)
            rec = blank_record(entity)
            rec.update(changes)
            rec["id"] = sb.store.seq.next_id(entity.name)
            if entity.key == "idn":
                rec["idn"] = sb.store.seq.next_idn(company.index, entity.name)
            if parent_id is not None:
                rec[PARENT_ID_FIELD] = parent_id
            apply_defaults(entity, rec)
            rec["createDate"] = rec["updateDate"] = now
            sb.store.save(company.index, entity, rec, sb.seed, new=True)
            sb.rules.set_links(company, entity, int(rec["id"]), links)
            if invoice is not None:
                sb.rules.apply_payment(company, invoice, rec, now)
            sb.rules.after_write(company, entity, rec, action=0)
        list_json, extra_json = split_json(entity, rec)
        return Reply(201, sb.render(detail_text(list_json, extra_json)))

    def update(
        self,
        company: Company,
        entity: Entity,
        parent_id: int | None,
        key: str,
        body: bytes,
        *,
        patch: bool,
    ) -> Reply:
        """PUT (writable fields; lists replaced) or PATCH (externalId + log only)."""
        form = decode_body(body)
        sb = self.sb
        if patch:
            allowed = {
                "externalId": registry.EXTERNAL_ID,
                "externalIntegrationLog": registry.EXTERNAL_LOG,
            }
            if sb.settings.patch_any_field:
                allowed.update({spec.name: spec for spec in entity.writable_fields})
        else:
            allowed = put_fields(entity)
        changes = self.validate(
            company, entity, form, allowed=allowed, creating=False, parent_id=parent_id
        )
        links = self.write_only(entity, changes)
        sb.rules.check_links(company, entity, links)
        names = {spec.name for spec in entity.fields}
        with sb.store.write_lock:
            column, value = record_key(entity, key)
            rec = sb.store.record(company.index, entity.name, column, value, parent_id)
            if rec is None:
                raise plain_error(404, "Not Found")
            sb.rules.check_unique(company, entity, changes, int(rec["id"]))
            if parent_id is not None:
                rec[PARENT_ID_FIELD] = parent_id
            rec.update({k: v for k, v in changes.items() if k in names})
            apply_defaults(entity, rec)
            rec["updateDate"] = sb.now_stored()
            sb.store.save(company.index, entity, rec, sb.seed, new=False)
            sb.rules.set_links(company, entity, int(rec["id"]), links)
            sb.rules.after_write(company, entity, rec, action=1)
        list_json, extra_json = split_json(entity, rec)
        return Reply(200, sb.render(detail_text(list_json, extra_json)))
