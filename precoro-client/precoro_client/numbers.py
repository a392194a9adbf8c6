"""Numeric settings: one parser and one place for their ranges.

Numbers reach the plugins in three shapes: `int`/`float` from Python callers,
`Decimal` from a JSON config file (the SDK reads JSON floats as `Decimal`), and text
from the environment (Meltano passes settings as environment variables). Every
numeric setting of the tap, the target and the webhook receiver is parsed by
`parse_number`, against the `NumberRule` declared with the setting; the rule is
also written into the setting's JSON schema (`minimum`, `maximum`...), so `--about`
shows the range and `rule_from_schema` reads it back for the config checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from singer_sdk import typing as th

from precoro_client.errors import ConfigError


@dataclass(frozen=True)
class NumberRule:
    """Type and range of one numeric setting (bounds are inclusive unless exclusive)."""

    integer: bool
    minimum: int | None = None
    maximum: int | None = None
    exclusive_minimum: int | None = None
    """The value must be greater than this (e.g. 0 for a timeout)."""

    def json_type(self) -> th.IntegerType | th.NumberType:
        """The Singer SDK type carrying this rule into the config schema."""
        kind = th.IntegerType if self.integer else th.NumberType
        return kind(
            minimum=self.minimum,
            maximum=self.maximum,
            exclusive_minimum=self.exclusive_minimum,
        )

    def describe(self) -> str:
        """The allowed range in words, for error messages."""
        parts: list[str] = []
        if self.exclusive_minimum is not None:
            parts.append(f"greater than {self.exclusive_minimum}")
        if self.minimum is not None:
            parts.append(f"at least {self.minimum}")
        if self.maximum is not None:
            parts.append(f"at most {self.maximum}")
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} {' and '.join(parts)}" if parts else kind


def _schema_types(prop: Mapping[str, Any]) -> set[str]:
    raw = prop.get("type")
    if isinstance(raw, str):
        return {raw}
    if isinstance(raw, list):
        return {str(item) for item in raw}
    return set()


def _bound(prop: Mapping[str, Any], key: str) -> int | None:
    value = prop.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def rule_from_schema(prop: Mapping[str, Any]) -> NumberRule | None:
    """The rule of a numeric schema property (None for anything else)."""
    types = _schema_types(prop) - {"null"}
    if types == {"integer"}:
        integer = True
    elif types <= {"integer", "number"} and "number" in types:
        integer = False
    else:
        return None
    return NumberRule(
        integer=integer,
        minimum=_bound(prop, "minimum"),
        maximum=_bound(prop, "maximum"),
        exclusive_minimum=_bound(prop, "exclusiveMinimum"),
    )


def number_rules(schema: Mapping[str, Any]) -> dict[str, NumberRule]:
    """Every top-level numeric setting of a config schema, with its rule."""
    rules: dict[str, NumberRule] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if isinstance(prop, Mapping):
            rule = rule_from_schema(prop)
            if rule is not None:
                rules[str(name)] = rule
    return rules


def _to_decimal(name: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        msg = f"{name} must be a number, not {str(value).lower()}"
        raise ConfigError(name, msg)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else Decimal("NaN")
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            msg = f"{name} must be a number, got {value!r}"
            raise ConfigError(name, msg) from None
    msg = f"{name} must be a number, got {type(value).__name__}"
    raise ConfigError(name, msg)


def parse_number(name: str, value: Any, rule: NumberRule) -> int | float:
    """Parse one numeric setting; `int` for integer settings, `float` otherwise.

    Accepts `int`, `float`, `Decimal` and numeric text; `3.0` is a whole number, `2.5`
    is not. Raises `ConfigError` naming the setting and the allowed range.
    """
    number = _to_decimal(name, value)
    shown = value.strip() if isinstance(value, str) else str(value)
    if not number.is_finite():
        msg = f"{name} must be a finite number, got {shown}"
        raise ConfigError(name, msg)
    if rule.integer and number != number.to_integral_value():
        msg = f"{name} must be a whole number, got {shown}"
        raise ConfigError(name, msg)
    too_small = (rule.minimum is not None and number < rule.minimum) or (
        rule.exclusive_minimum is not None and number <= rule.exclusive_minimum
    )
    too_large = rule.maximum is not None and number > rule.maximum
    if too_small or too_large:
        msg = f"{name} must be {rule.describe()}, got {shown}"
        raise ConfigError(name, msg)
    return int(number) if rule.integer else float(number)


def _nested(name: str, value: Any, prop: Mapping[str, Any]) -> Any:
    """`value` with the numbers inside arrays/objects parsed by their item rules.

    Only for containers (e.g. `status_filters: {"invoices": [2, 5]}`); a leaf that is
    not numeric, or a value of another shape, is returned as it is (the schema check
    reports shape errors).
    """
    rule = rule_from_schema(prop)
    if rule is not None:
        return parse_number(name, value, rule)
    items = prop.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        return [_nested(f"{name}[{i}]", item, items) for i, item in enumerate(value)]
    extra = prop.get("additionalProperties")
    if isinstance(value, Mapping) and isinstance(extra, Mapping):
        return {key: _nested(f"{name}.{key}", item, extra) for key, item in value.items()}
    return value


def normalise_numbers(schema: Mapping[str, Any], config: dict[str, Any]) -> dict[str, ConfigError]:
    """Parse every numeric setting present in `config` in place; the failures by name.

    Parsed values replace the raw ones (`Decimal('2.5')` -> `2.5`, `"3.0"` -> `3` for
    an integer setting; numbers inside arrays and objects too), so later checks and the
    plugin code see plain numbers. A failed setting keeps its raw value. `None` means
    "not set" and is left alone.
    """
    failures: dict[str, ConfigError] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if config.get(name) is None or not isinstance(prop, Mapping):
            continue
        try:
            config[name] = _nested(str(name), config[name], prop)
        except ConfigError as exc:
            failures[str(name)] = exc
    return failures
