"""Keeping the API token out of reprs, messages and logs.

The token is wrapped in `Secret` as soon as settings are read, so an accidental
`print(settings)` or f-string shows `***`. Every token seen is also registered here;
`scrub` replaces registered tokens in any text (error messages, server bodies that
echo headers) and `ScrubFilter` does the same for log records of `precoro_client`.
"""

from __future__ import annotations

import logging
import threading

from typing_extensions import override

MASK = "***"

_lock = threading.Lock()
_registered: set[str] = set()


class Secret:
    """A string that never shows itself in `str`, `repr` or formatting."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        """Wrap `value` and register it for scrubbing."""
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        """The real value, for the one place that needs it: the request header."""
        return self._value

    def __repr__(self) -> str:
        """Masked, so reprs of settings objects are safe."""
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        """Masked, so f-strings are safe."""
        return MASK

    def __format__(self, spec: str) -> str:
        """Masked, whatever the format spec."""
        return MASK

    def __eq__(self, other: object) -> bool:
        """Equal to another `Secret` holding the same value (never to a plain str)."""
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        """Hash of the value, so settings objects stay hashable."""
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        """Refuse pickling: a pickled token would end up in a file."""
        msg = "a Secret cannot be pickled"
        raise TypeError(msg)


def register_secret(value: str) -> None:
    """Remember `value` so `scrub` removes it (short values are ignored: they'd mangle text)."""
    if value and len(value) >= 4:
        with _lock:
            _registered.add(value)


def scrub(text: str) -> str:
    """Replace every registered secret in `text` with `***`."""
    with _lock:
        secrets = sorted(_registered, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class ScrubFilter(logging.Filter):
    """Logging filter that removes registered secrets from the formatted message."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def install_log_filter(logger: logging.Logger) -> None:
    """Attach one `ScrubFilter` to `logger` (idempotent)."""
    if not any(isinstance(f, ScrubFilter) for f in logger.filters):
        logger.addFilter(ScrubFilter())


install_log_filter(logging.getLogger("precoro_client"))
