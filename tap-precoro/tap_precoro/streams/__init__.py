"""The tap's streams, one per registry entity, by kind.

- `base`: what every stream does (paging, checkpoints, detail and webhook fetches);
- `incremental`: streams Precoro filters by `modifiedSince` (passes, closing pass);
- `sweeping`: the completeness sweep of an incremental stream;
- `reference`: streams re-read on a schedule (and custom-field options, per field);
- `webhook_mode`: the drain of a stream in webhook mode.

No module here imports the tap class: the tap hands each stream a `RunContext`.
"""

from __future__ import annotations

from precoro_client.registry import Entity
from singer_sdk import Tap

from tap_precoro.run_context import RunContext
from tap_precoro.streams.base import PrecoroStream
from tap_precoro.streams.incremental import IncrementalStream
from tap_precoro.streams.reference import OptionsStream, ReferenceStream

__all__ = ["IncrementalStream", "OptionsStream", "PrecoroStream", "ReferenceStream", "stream_for"]


def stream_for(tap: Tap, entity: Entity, run: RunContext) -> PrecoroStream:
    """The stream class the entity's kind calls for (nested, incremental or reference)."""
    if entity.parent is not None:
        return OptionsStream(tap, entity, run)
    if entity.incremental:
        return IncrementalStream(tap, entity, run)
    return ReferenceStream(tap, entity, run)
