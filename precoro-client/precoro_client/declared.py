"""Settings declared once: each setting is one dataclass field that carries all of it.

A plugin's settings class is a frozen dataclass whose fields are made with `declare`,
`integer`, `number`, `declare_required` or `declare_computed`. The field gives the name
and the default; the declaration beside it gives the JSON type, the range or choices,
the description and the secret flag. Everything else is derived from that one place:

- `properties(cls)`: the SDK config schema (`th.PropertiesList`), so `--about` shows a
  range as `minimum`/`maximum` and choices as `enum`, and the shared config check
  (`plugin_config`) enforces both before any plugin code runs;
- `parse_value` / `from_config(cls, config)`: the parsing of a Singer config into the
  dataclass (numbers of every shape via `numbers.parse_number`, choices, and the
  setting's own parser), for the plugins and for Python callers alike.

The schema default is the field default as JSON (a whole `float` as an `int`, a `Path`
as text); a field with a default factory (a path under `$XDG_STATE_HOME`, an empty
mapping) has no schema default, because its value is only known at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import PurePath
from typing import Any, TypeVar

from singer_sdk import typing as th

from precoro_client.errors import ConfigError
from precoro_client.numbers import NumberRule, parse_number

T = TypeVar("T")
S = TypeVar("S")

METADATA_KEY = "precoro_setting"

JSONType = th.JSONTypeHelper[Any] | type[th.JSONTypeHelper[Any]]


@dataclass(frozen=True)
class Declared:
    """What a field declares beyond its name and default."""

    kind: JSONType
    """The SDK type of the schema property."""
    description: str
    rule: NumberRule | None = None
    """Type and range of a numeric setting (written into the schema too)."""
    choices: tuple[Any, ...] | None = None
    """The allowed values (the schema's `enum`)."""
    required: bool = False
    secret: bool = False
    parse: Callable[[Any], Any] | None = None
    """Turns a configured value into the field's value; raises `ConfigError`."""


def _field(declared: Declared, **kwargs: Any) -> Any:
    return field(metadata={METADATA_KEY: declared}, **kwargs)


def declare(
    default: T,
    *,
    kind: JSONType,
    description: str,
    choices: tuple[Any, ...] | None = None,
    secret: bool = False,
    parse: Callable[[Any], Any] | None = None,
) -> T:
    """A setting with a fixed default (None: not set)."""
    declared = Declared(kind, description, choices=choices, secret=secret, parse=parse)
    result: T = _field(declared, default=default)
    return result


def declare_required(*, kind: JSONType, description: str, secret: bool = False) -> Any:
    """A setting without a default that the config must give."""
    return _field(Declared(kind, description, required=True, secret=secret))


def declare_computed(
    factory: Callable[[], T],
    *,
    kind: JSONType,
    description: str,
    parse: Callable[[Any], Any] | None = None,
) -> T:
    """A setting whose default is computed at run time (so the schema shows none)."""
    result: T = _field(Declared(kind, description, parse=parse), default_factory=factory)
    return result


def integer(
    default: int,
    *,
    description: str,
    minimum: int | None = None,
    maximum: int | None = None,
    choices: tuple[int, ...] | None = None,
) -> int:
    """A whole-number setting and its range."""
    rule = NumberRule(integer=True, minimum=minimum, maximum=maximum)
    result: int = _field(Declared(rule.json_type(), description, rule, choices), default=default)
    return result


def number(
    default: float,
    *,
    description: str,
    minimum: int | None = None,
    maximum: int | None = None,
    exclusive_minimum: int | None = None,
) -> float:
    """A (possibly fractional) number setting and its range."""
    rule = NumberRule(
        integer=False, minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum
    )
    result: float = _field(Declared(rule.json_type(), description, rule), default=default)
    return result


def declared(cls: type[Any]) -> Iterator[tuple[Field[Any], Declared]]:
    """The declared settings of a settings class, in declaration order."""
    for spec in fields(cls):
        found = spec.metadata.get(METADATA_KEY)
        if isinstance(found, Declared):
            yield spec, found


def number_rules(cls: type[Any]) -> dict[str, NumberRule]:
    """Name -> type and range of every numeric setting of a settings class."""
    return {spec.name: d.rule for spec, d in declared(cls) if d.rule is not None}


def parse_numbers(settings: Any) -> None:
    """Parse and range-check every numeric field of a frozen settings instance, in place.

    For `__post_init__`: Python callers may give a number in any shape (`Decimal`,
    a whole `float`, text), as a config does; `ConfigError` names the setting.
    """
    for spec, declaration in declared(type(settings)):
        if declaration.rule is not None:
            value = parse_number(spec.name, getattr(settings, spec.name), declaration.rule)
            object.__setattr__(settings, spec.name, value)


def schema_default(spec: Field[Any]) -> Any:
    """The default `--about` shows: the field default as JSON (None: no default)."""
    value = spec.default
    if value is MISSING or value is None:
        return None
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def properties(cls: type[Any]) -> th.PropertiesList:
    """The settings class as an SDK config schema fragment."""
    return th.PropertiesList(
        *(
            th.Property(
                spec.name,
                declared.kind,
                required=declared.required,
                default=schema_default(spec),
                description=declared.description,
                secret=declared.secret,
                allowed_values=None if declared.choices is None else list(declared.choices),
            )
            for spec, declared in declared(cls)
        )
    )


def parse_value(name: str, declared: Declared, value: Any) -> Any:
    """One configured value (not None) as the field holds it; `ConfigError` names it."""
    if declared.rule is not None:
        value = parse_number(name, value, declared.rule)
    if declared.choices is not None and value not in declared.choices:
        known = ", ".join(str(choice) for choice in declared.choices)
        raise ConfigError(name, f"{name} {value!r} is unknown; use one of {known}")
    if declared.parse is not None:
        value = declared.parse(value)
    return value


def _unset(declared: Declared, value: Any) -> bool:
    """None is unset; so is empty text, except for a number (there it is a mistake)."""
    return value is None or (declared.rule is None and value == "")


def from_config(cls: type[S], config: Mapping[str, Any]) -> S:
    """Build a settings class from a Singer config; unset settings take their default.

    Keys that are not settings are ignored. Raises `ConfigError` for the first bad one.
    """
    kwargs: dict[str, Any] = {}
    for spec, declaration in declared(cls):
        value = config.get(spec.name)
        if not _unset(declaration, value):
            kwargs[spec.name] = parse_value(spec.name, declaration, value)
    return cls(**kwargs)
