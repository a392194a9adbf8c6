"""Normalising natural keys for initial linking: the same company, however it is typed.

`"ACME  Gmbh."`, `"acme gmbh"` and `"Acme"` all normalise to `acme`: case, accents,
spacing and punctuation are folded, and legal-form suffixes dropped, so an ERP's
vendor list matches the names users typed into Precoro. Which normaliser a field gets
is the registry's `Field.match_as`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from precoro_client.registry import Field, MatchAs

LEGAL_SUFFIXES: frozenset[str] = frozenset(
    {
        "ab", "ag", "as", "bv", "co", "company", "corp", "corporation", "gmbh", "inc",
        "incorporated", "kg", "kft", "limited", "llc", "llp", "ltd", "nv", "oy", "oü",
        "plc", "pty", "sa", "sarl", "sas", "sl", "spa", "srl", "sro", "sp", "zoo", "ug",
        "ооо", "тов",  # noqa: RUF001
        "прат", "пат", "зао", "оао", "пп",  # noqa: RUF001
    }
)  # fmt: skip
"""Legal-form words dropped at the end of a name (after punctuation is removed)."""

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")
_CONNECTORS = frozenset({"&", "and", "und", "et"})


def fold(text: str) -> str:
    """Lower case, accents stripped, punctuation to spaces, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    spaced = _PUNCT.sub(" ", stripped.casefold())
    return _SPACE.sub(" ", spaced).strip()


def _join_initials(words: list[str]) -> list[str]:
    """Runs of single letters become one word: "s a" (from "S.A.") -> "sa"."""
    joined: list[str] = []
    run = ""
    for word in words:
        if len(word) == 1:
            run += word
            continue
        if run:
            joined.append(run)
            run = ""
        joined.append(word)
    if run:
        joined.append(run)
    return joined


def normalise_name(text: str) -> str:
    """Fold, drop connectors, then trailing legal-form words.

    Connectors go everywhere ("and" must equal "&", which folding removes); legal forms
    only at the end ("GmbH & Co. KG", "S.A.", "Sp. z o.o.").
    """
    words = [w for w in _join_initials(fold(text).split(" ")) if w not in _CONNECTORS]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words) if words else fold(text)


def normalise_code(text: str) -> str:
    """Codes and numbers: case, spacing and punctuation ignored (`DE 123-45` = `de12345`)."""
    return "".join(fold(text).split(" "))


NORMALISERS: dict[MatchAs, Callable[[str], str]] = {
    "name": normalise_name,
    "email": str.casefold,
    "text": fold,
    "code": normalise_code,
}
"""One normaliser per kind of field; the registry says which kind each field is."""


def normalise_value(spec: Field, value: Any) -> str | None:
    """Comparable form of one value of the field `spec`; None when empty (never matches)."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("id")
        if value is None:
            return None
    text = str(value).strip()
    if not text:
        return None
    return NORMALISERS[spec.match_as](text) or None
