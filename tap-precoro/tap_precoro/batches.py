"""Batch mode (`batch_config`): a STATE is emitted only after the BATCH message of its records.

The streams checkpoint after every page, from inside the record generator. In the SDK's
batch path that generator fills a batch file in memory, so such a STATE, written at
once, would claim pages whose batch file was not announced yet: a kill then lost them.
Here a batch file boundary is also the checkpoint boundary: while a stream is batched,
a STATE written after a record that is not yet in an announced file is held, and after
the BATCH message of each file the last STATE held while its records were read is
emitted. A kill loses at most the batch being filled: the next run reads it again from
the last STATE (when `batch_size` is a multiple of `page_size`, exactly the pages not yet
delivered; else also the page that straddles a file boundary).

SDK internals used (singer-sdk ~=0.54.9), each because no public hook exists:
- the tap's `_state_writer` is replaced by `HeldStateWriter` (a `StateWriter` from the
  private `singer_sdk.helpers._state`), because every STATE goes through it: the
  streams' checkpoints, the SDK's own write after each BATCH message, and the SIGTERM
  handler, which writes the live state (ahead of the batches) and must be held too;
- `Stream._sync_records(context, write_messages=False)` is called, as the SDK's own
  `get_batches` does, to get the stream's records.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from singer_sdk.batch import Batcher, lazy_chunked_generator
from singer_sdk.helpers._state import StateWriter
from typing_extensions import override

if TYPE_CHECKING:
    from singer_sdk import Stream
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context, TapState
    from singer_sdk.singerlib.encoding.base import GenericSingerWriter


class HeldStateWriter(StateWriter):
    """The tap's STATE writer: while a stream is batched, holds STATE back.

    Held: every STATE written after a record that is not yet in an announced file.
    """

    def __init__(self, message_writer: GenericSingerWriter[Any, Any]) -> None:
        """Start passing writes through (not batching)."""
        super().__init__(message_writer)
        self._holding = False
        self._held: TapState | None = None
        self._read = 0
        self._announced = 0

    @override
    def write_state(self, state: TapState) -> None:
        """Write now if every record read is in an announced file, else keep a copy.

        A copy, because the live state changes in place.
        """
        if not self._holding or self._read <= self._announced:
            super().write_state(state)
        else:
            self._held = copy.deepcopy(state)

    def hold(self) -> None:
        """Start counting records; hold STATE from the first record on."""
        self._holding = True
        self._held = None
        self._read = self._announced = 0

    def record_read(self) -> None:
        """One more record was handed to the batch being filled."""
        self._read += 1

    def take(self) -> TapState | None:
        """The last held state, forgetting it."""
        held, self._held = self._held, None
        return held

    def announced(self, held: TapState | None) -> None:
        """Every record read so far is in an announced file: emit `held` (if any)."""
        self._announced = self._read
        if held is not None:
            super().write_state(held)

    def stop_holding(self) -> None:
        """Pass writes through again, after emitting the last held one."""
        self.announced(self.take())
        self._holding = False


def checkpointed_batches(
    stream: Stream,
    writer: HeldStateWriter,
    batch_config: BatchConfig,
    context: Context | None,
) -> Iterator[tuple[BaseBatchFileEncoding, list[str]]]:
    """`get_batches` whose STATE follows each file's BATCH message (see the module doc).

    Records are cut into files of `batch_size` here, one encoder call per file, so
    which records a file holds does not depend on how an encoder reads ahead. If the
    stream fails, the writer keeps holding: nothing of the failed batch is claimed.
    """
    batcher = Batcher(tap_name=stream.tap_name, stream_name=stream.name, batch_config=batch_config)
    writer.hold()

    def counted() -> Iterator[dict[str, Any]]:
        for record in stream._sync_records(context, write_messages=False):
            writer.record_read()
            yield record

    for chunk in lazy_chunked_generator(counted(), batch_config.batch_size):
        held = writer.take()  # the last STATE written while this file's rows were read
        for manifest in batcher.get_batches(chunk):
            yield batch_config.encoding, manifest  # the SDK writes the BATCH message
        writer.take()  # drop the live state the SDK wrote after it: `held` is exact
        writer.announced(held)
    writer.stop_holding()  # the stream's last checkpoints, once every record is in a file
