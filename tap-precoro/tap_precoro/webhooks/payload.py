"""Validation of one webhook body: `{"id", "type", "action", "idn"}`.

The body's facts are in `docs/precoro-api.md`, "Webhooks".

Only the documented keys are kept. Extra keys are accepted because the official
example was cut off after `"idn":5,` and more keys may exist; they are not stored,
so nothing undocumented reaches the tap. Reasons never quote the body.

Every stored value is checked against what the inbox can hold (`MAX_ENTITY_ID`: a
SQLite INTEGER is a signed 64-bit number) and what Precoro sends (positive ids, known
type and action codes, a short printable idn), so a hostile body gets 400 here and
never reaches the shared commit of the inbox.
"""

from __future__ import annotations

import json
from typing import Any

from precoro_client.registry import WEBHOOK_ACTIONS, WEBHOOK_TYPES

from tap_precoro.webhooks.inbox import MAX_ENTITY_ID, MAX_IDN_LENGTH, Notification


class InvalidNotification(ValueError):
    """The body is not a Precoro webhook notification; the message says why."""


def _integer(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    if value is None:
        msg = f"missing key {key!r}"
        raise InvalidNotification(msg)
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{key!r} must be an integer"
        raise InvalidNotification(msg)
    return value


def _positive_id(value: int, key: str) -> int:
    """An id Precoro can have and SQLite can store: 1 .. 2**63 - 1."""
    if not 0 < value <= MAX_ENTITY_ID:
        msg = f"{key!r} must be between 1 and {MAX_ENTITY_ID}"
        raise InvalidNotification(msg)
    return value


def _idn(value: Any) -> str | None:
    """`idn` is a number in Precoro's example and a string in its API: take both."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        msg = "'idn' must be a number or a string"
        raise InvalidNotification(msg)
    if isinstance(value, int):
        return str(_positive_id(value, "idn"))
    text = value.strip()
    if not text or len(text) > MAX_IDN_LENGTH or not text.isprintable() or "/" in text:
        msg = "'idn' is empty, too long or contains characters an idn cannot have"
        raise InvalidNotification(msg)
    return text


def parse_notification(body: bytes) -> Notification:
    """Parse and validate a webhook body; raise `InvalidNotification` otherwise."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: deep nesting
        msg = "body is not UTF-8 JSON"
        raise InvalidNotification(msg) from None
    if not isinstance(payload, dict):
        msg = "body is not a JSON object"
        raise InvalidNotification(msg)
    entity_id = _positive_id(_integer(payload, "id"), "id")
    type_code = _integer(payload, "type")
    if type_code not in WEBHOOK_TYPES:
        msg = f"unknown webhook type {type_code}"
        raise InvalidNotification(msg)
    action = _integer(payload, "action")
    if action not in WEBHOOK_ACTIONS:
        msg = f"unknown webhook action {action}"
        raise InvalidNotification(msg)
    return Notification(id=entity_id, type=type_code, action=action, idn=_idn(payload.get("idn")))
