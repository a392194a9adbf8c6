"""Deterministic, realistic, relationally consistent Precoro data.

- `pools` — names, countries, products, reference sets;
- `core` — records, id sequences, reference contexts, the `Generator` state and the
  helpers builders share (dates, lines, custom-field values);
- `reference`, `parties`, `documents` — one builder per entity;

which builder makes which entity, in what order and how many, is the sandbox's entity
table (`precoro_sandbox.entities`), which also streams the whole dataset.
"""

from __future__ import annotations

from precoro_sandbox.datagen.core import (
    APPROVED_LIKE,
    STATUS_LABELS,
    Context,
    Generator,
    MemoryContext,
    Record,
    Sequences,
    ref_info,
)
from precoro_sandbox.datagen.documents import payment_summary
from precoro_sandbox.datagen.reference import embedded_option

__all__ = [
    "APPROVED_LIKE",
    "STATUS_LABELS",
    "Context",
    "Generator",
    "MemoryContext",
    "Record",
    "Sequences",
    "embedded_option",
    "payment_summary",
    "ref_info",
]
