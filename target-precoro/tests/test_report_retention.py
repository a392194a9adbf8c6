"""Run reports are pruned after `report_retention_days` (issue 16, part 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from precoro_client.errors import ConfigError
from target_precoro.settings import TargetSettings
from target_precoro.testing import make_config, run_target, singer

RECORDS = [{"externalId": "RET-1", "name": "Retention Supplier", "country": "US"}]


def old_run(reports: Path, days_ago: float) -> Path:
    """A run folder as the target names them, started `days_ago` days ago."""
    started = datetime.now(UTC) - timedelta(days=days_ago)
    folder = reports / (started.strftime("%Y%m%dT%H%M%S%fZ") + "-4242")
    folder.mkdir(parents=True)
    (folder / "report.jsonl").write_text("{}\n")
    return folder


def test_runs_older_than_the_retention_are_deleted_at_the_start_of_a_run(sandbox, tmp_path):
    reports = tmp_path / "reports"
    expired = old_run(reports, 31)
    kept = old_run(reports, 29)
    foreign = reports / "notes-2020"  # not a run folder: the user's
    foreign.mkdir()

    result = run_target(make_config(sandbox, tmp_path), singer("suppliers", RECORDS))

    assert result.exit_code == 0
    assert not expired.exists()
    assert kept.exists()
    assert foreign.exists()
    assert result.report_dir.exists()  # this run's own report


def test_zero_keeps_every_run(sandbox, tmp_path):
    reports = tmp_path / "reports"
    ancient = old_run(reports, 3650)
    config = make_config(sandbox, tmp_path, report_retention_days=0)
    assert run_target(config, singer("suppliers", RECORDS)).exit_code == 0
    assert ancient.exists()


def test_a_shorter_retention_is_honoured(sandbox, tmp_path):
    reports = tmp_path / "reports"
    day_old = old_run(reports, 1.5)
    config = make_config(sandbox, tmp_path, report_retention_days=1)
    assert run_target(config, singer("suppliers", RECORDS)).exit_code == 0
    assert not day_old.exists()


@pytest.mark.parametrize("value", [-1, "soon", True])
def test_a_bad_retention_names_the_setting(value):
    with pytest.raises(ConfigError, match="report_retention_days"):
        TargetSettings.from_config({"report_retention_days": value})
