"""What one tap run shares: created once by the tap, handed to every stream.

The streams never reach back into the tap for these (the tap is only the SDK's
`Stream(tap=...)` argument, for config, state and logging). The data flows one way:
the tap builds this context, the streams use it, and the tap reads it at the end of
the run for its summary (`TapPrecoro.sync_all`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from precoro_client.client import PrecoroClient
from precoro_client.errors import BudgetExhausted

from tap_precoro.outlook import describe, duration
from tap_precoro.webhooks.inbox import SqliteInbox

if TYPE_CHECKING:
    from precoro_client.settings import PrecoroSettings

    from tap_precoro.batches import HeldStateWriter
    from tap_precoro.settings import TapSettings


class RunContext:
    """The client, the budget stop, the per-run caches and the webhook inbox of one run."""

    def __init__(
        self,
        client_settings: PrecoroSettings | None,
        settings: TapSettings,
        state_writer: HeldStateWriter,
        logger: logging.Logger,
    ) -> None:
        """Nothing is opened here: the client and the inbox open on first use.

        `client_settings` is None when the config did not validate (only discovery
        and `--about` then run, and they make no request; `settings` are then the
        defaults).
        """
        self._client_settings = client_settings
        self.settings = settings
        """The tap's own settings, parsed once: streams read these, never raw config."""
        self._inbox_path = settings.webhook_inbox or None
        self._client: PrecoroClient | None = None
        self._inbox: SqliteInbox | None = None
        self._logger = logger
        self.state_writer = state_writer
        """Every STATE goes through it; in batch mode it holds STATE back (see `batches`)."""
        self.budget_stop: BudgetExhausted | None = None
        """The first budget stop of the run; later streams then make no request."""
        self.stopped_stream: str | None = None
        self.refreshed_ids: dict[str, list[int]] = {}
        """Ids each reference stream's refresh saw in this run, by stream (the option
        streams read one partition per custom field)."""
        self.webhook_fetches: dict[tuple[str, int], dict[str, Any] | None] = {}
        """Entities fetched for webhooks in this run (never fetched twice)."""

    # --- resources ----------------------------------------------------------------------

    @property
    def client(self) -> PrecoroClient:
        """The run's one Precoro client, created on first use (never during --about)."""
        if self._client is None:
            if self._client_settings is None:
                msg = "the tap's config did not validate: no request can be made"
                raise RuntimeError(msg)
            self._client = PrecoroClient(self._client_settings)
        return self._client

    @property
    def opened_client(self) -> PrecoroClient | None:
        """The client if this run made (or tried) a request, else None."""
        return self._client

    @property
    def webhook_inbox(self) -> SqliteInbox | None:
        """The receiver's inbox when `webhook_inbox` is set (opened on first use)."""
        if self._inbox_path is None:
            return None
        if self._inbox is None:
            self._inbox = SqliteInbox(self._inbox_path)
        return self._inbox

    def close(self) -> None:
        """Close the inbox (the run is over; a later use opens it again)."""
        if self._inbox is not None:
            self._inbox.close()
            self._inbox = None

    # --- the budget ---------------------------------------------------------------------

    def stop_for_budget(self, stream_name: str, exc: BudgetExhausted) -> None:
        """Remember a clean budget stop; later streams then make no request."""
        if self.budget_stop is None:
            self.budget_stop = exc
            self.stopped_stream = stream_name
            self._logger.warning("%s: %s", stream_name, exc)

    def time_for(self, calls: int) -> str:
        """How long `calls` take at this account's limits (whenever budget is back)."""
        limits = self.client.settings
        return describe(
            duration(
                calls,
                limits.max_requests_per_second,
                limits.max_requests_per_hour,
                limits.max_requests_per_day,
            )
        )

    # --- custom-field ids ---------------------------------------------------------------

    def list_field_ids(self, parent_path: str, page_size: int) -> list[int]:
        """Read the ids of a custom-field list: one list call per page (HTTP).

        Only when the custom-field stream neither refreshed in this run nor left
        partitions in the state; the result is kept in `field_ids` by the caller.
        """
        return [int(row["id"]) for row in self.client.iter_records(parent_path, None, page_size)]
