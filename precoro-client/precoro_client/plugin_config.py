"""Config checks shared by tap-precoro and target-precoro (one path for both).

`PrecoroPlugin` sits in front of the SDK's `Tap`/`Target` base
(`class TapPrecoro(PrecoroPlugin, Tap)`) and replaces the SDK's config validation:

1. Numeric settings are parsed by `numbers.normalise_numbers` from whatever shape
   they arrive in (int, float, the SDK's `Decimal` for JSON floats, text from
   `--config=ENV`), and checked against the range declared in the schema.
2. The JSON schema check runs on the rest; its messages never show the value of a
   secret setting (the SDK's would print `['…'] is not of type 'string'`).
3. The plugin's own checks (`check_settings`) run last.

Every problem names its setting; all of them are reported, then the run stops with
exit 1 before any request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.helpers._typing import is_boolean_type
from singer_sdk.plugin_base import JSONSchemaValidator, PluginBase
from typing_extensions import override

from precoro_client.numbers import normalise_numbers, number_rules
from precoro_client.secret import MASK


def secret_settings(schema: Mapping[str, Any]) -> set[str]:
    """Names of the settings the schema marks secret (`secret` or `writeOnly`)."""
    return {
        str(name)
        for name, prop in (schema.get("properties") or {}).items()
        if isinstance(prop, Mapping) and (prop.get("secret") or prop.get("writeOnly"))
    }


def _hide(text: str, values: list[Any]) -> str:
    for value in values:
        for shown in {str(value), repr(value)}:
            if len(shown) >= 4 and shown in text:  # shorter ones would garble text
                text = text.replace(shown, MASK)
    return text


def schema_problems(
    schema: Mapping[str, Any], config: Mapping[str, Any], *, skip: set[str]
) -> list[str]:
    """JSON schema errors, one line each naming the setting; secret values never shown."""
    secrets = secret_settings(schema)
    hidden = [config[name] for name in secrets if config.get(name) not in (None, "")]
    checked = {key: value for key, value in config.items() if key not in skip}
    problems: list[str] = []
    for error in JSONSchemaValidator(dict(schema)).iter_errors(checked):
        path = [str(part) for part in error.path]
        where = ".".join(path)
        if path and path[0] in secrets:
            expected = f"{error.validator} {error.validator_value!r}"
            message = f"{where} is invalid (must satisfy {expected}; the value is not shown)"
        else:
            message = f"{where}: {error.message}" if where else error.message
        problems.append(_hide(message, hidden))
    return problems


TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})
"""How an environment variable spells a boolean (the SDK's true words, and their
opposites; empty is false, as the SDK reads it)."""


def _boolean(text: str) -> bool | str:
    """A boolean from an environment variable; an unknown word is left as text."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return text


class PrecoroPlugin(PluginBase):
    """The config handling both Precoro plugins share (see the module docstring)."""

    @classproperty
    @override
    def _env_var_config(cls) -> dict[str, Any]:
        """Settings from the environment; numeric ones are kept as text for our parser.

        The SDK turns an integer setting's variable into `int(text)`, which crashes
        with a bare ValueError on `3.0` or `2.5` and leaves number settings as text
        its schema check then refuses. It also reads any word but true/1/yes/on as
        false, so `TAP_PRECORO_FETCH_DETAILS=flase` would quietly turn a setting off;
        here a word that is neither stays text, which the schema check refuses by name.
        """
        schema = cls.config_jsonschema
        cls.append_builtin_config(schema)
        numeric = set(number_rules(schema))
        others = {
            **schema,
            "properties": {k: v for k, v in schema["properties"].items() if k not in numeric},
        }
        prefix = cls._env_var_prefix
        result = parse_environment_config(others, prefix)  # also loads .env
        for name in sorted(numeric):
            variable = prefix + name.upper().replace("-", "_")
            if variable in os.environ:
                result[name] = os.environ[variable]
        for name, prop in others["properties"].items():
            variable = prefix + name.upper().replace("-", "_")
            if variable in os.environ and is_boolean_type(prop):
                result[name] = _boolean(os.environ[variable])
        return result

    def check_settings(self) -> list[str]:
        """The plugin's own checks, run on the normalised config; one line per problem."""
        return []

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Numbers, then the schema, then `check_settings`; raise with every problem."""
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        self._config = dict(self._config)
        failed = normalise_numbers(schema, self._config)
        problems = [str(error) for error in failed.values()]
        problems.extend(schema_problems(schema, self._config, skip=set(failed)))
        for problem in self.check_settings():
            if problem not in problems:
                problems.append(problem)
        if problems:
            if raise_errors:
                raise ConfigValidationError(problems[0], errors=problems)
            self.logger.warning("Config validation failed: %s", "; ".join(problems))
        return problems
