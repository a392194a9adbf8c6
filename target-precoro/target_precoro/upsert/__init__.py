"""The upserter: one batch of one stream, from incoming records to outcomes.

Split by job, each module a layer of `Upserter`: `base` (shared state, outcomes),
`settle` (writes whose outcome is unknown), `write` (one journalled write), `decide`
(update, link, create or leave alone) and `batch` (the order of work per batch).
"""

from target_precoro.upsert.base import Interrupted, Item, Pending, RunStop
from target_precoro.upsert.batch import Upserter

__all__ = ["Interrupted", "Item", "Pending", "RunStop", "Upserter"]
