"""`--about` advertises only what the target honours."""

from __future__ import annotations

from target_precoro.target import TargetPrecoro


def test_about_hides_sdk_settings_the_target_ignores():
    info = TargetPrecoro._get_about_info()
    settings = info.settings["properties"]
    # Records are upserted by externalId whatever `load_method` says (never an
    # `overwrite` that deletes), `validate.py` replaces the SDK's record validation,
    # and `_sdc_*` metadata columns are not Precoro fields.
    for name in ("load_method", "validate_records", "add_record_metadata"):
        assert name not in settings
    assert "validate-records" not in [str(c) for c in info.capabilities]
    # Honoured: batch size, stream maps, flattening.
    for name in ("batch_size_rows", "stream_maps", "flattening_enabled"):
        assert name in settings
