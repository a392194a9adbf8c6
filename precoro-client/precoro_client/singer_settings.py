"""The connection and governor settings as a Singer config schema fragment.

Derived from `PrecoroSettings`' field declarations, so tap-precoro and target-precoro
offer the same settings with the same ranges, descriptions and defaults:

    config_jsonschema = th.PropertiesList(
        *CONNECTION_PROPERTIES, *OWN_PROPERTIES
    ).to_dict()

`budget_ledger_path` has no schema default because the real default depends on
`XDG_STATE_HOME` at run time.
"""

from __future__ import annotations

from precoro_client.declared import properties
from precoro_client.settings import PrecoroSettings

CONNECTION_PROPERTIES = properties(PrecoroSettings)
"""Every `PrecoroSettings` field, for the tap's and target's `config_jsonschema`."""
