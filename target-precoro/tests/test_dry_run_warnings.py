"""A dry run announces itself at WARNING when it starts and when it ends (issue 12)."""

from __future__ import annotations

import logging

from target_precoro.testing import make_config, run_target, singer

RECORDS = [{"externalId": "DRY-1", "name": "Dry Run Vendor", "country": "France"}]


def _target_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "target-precoro"]


def test_a_dry_run_warns_first_and_last(sandbox, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    config = make_config(sandbox, tmp_path, dry_run=True, match={"suppliers": []})
    result = run_target(config, singer("suppliers", RECORDS))

    assert result.exit_code == 0
    assert result.summary["dry_run"] is True
    assert result.by_id()["DRY-1"]["outcome"] == "created"  # what a real run would do
    logged = _target_records(caplog)
    warned = [r for r in logged if r.levelno >= logging.WARNING]
    assert len(warned) == 2  # nothing else to warn about in this run
    first, last = warned
    assert "dry run" in first.getMessage().lower()
    assert "dry run" in last.getMessage().lower()
    assert str(result.report_dir / "report.html") in last.getMessage()
    # First thing the run says (before it, only the SDK building the target) and last.
    start = logged.index(first)
    assert {r.filename for r in logged[:start]} <= {"plugin_base.py"}
    assert logged[-1] is last


def test_a_real_run_does_not_warn(sandbox, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    config = make_config(sandbox, tmp_path, match={"suppliers": []})
    result = run_target(config, singer("suppliers", RECORDS))

    assert result.by_id()["DRY-1"]["outcome"] == "created"
    assert [r for r in _target_records(caplog) if r.levelno >= logging.WARNING] == []
