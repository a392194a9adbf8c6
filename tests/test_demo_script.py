"""scripts/demo.py: progress during long Meltano commands, and how to reset what it leaves."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TAP_METRIC = (
    '2026-12-01 [info ] METRIC: {"type":"counter","metric":"record_count","value":200,'
    '"tags":{"stream":"suppliers"}} cmd_type=elb consumer=False name=tap-precoro producer=True'
)
TARGET_METRIC = TAP_METRIC.replace(
    "consumer=False name=tap-precoro producer=True", "consumer=True name=target-erp producer=False"
)
JSON_METRIC = (
    '{"event": "METRIC: {\\"type\\":\\"counter\\",\\"metric\\":\\"record_count\\",'
    '\\"value\\":7,\\"tags\\":{\\"stream\\":\\"items\\"}}", "name": "tap-precoro"}'
)

DICT_METRIC = (
    "2026-12-01T10:00:00 [info     ] METRIC  metric_info={'metric': 'record_count', "
    "'tags': {'stream': 'taxes'}, 'type': 'counter', 'value': 3} name=tap-erp"
)


@pytest.fixture
def demo():
    spec = importlib.util.spec_from_file_location("demo_script", ROOT / "scripts" / "demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_progress_counts_the_extractors_records_only(demo):
    progress = demo.Progress()
    assert progress.line(12) == "    ... 12 s, still running"
    for line in (TAP_METRIC, TARGET_METRIC, TAP_METRIC, JSON_METRIC, "Loading 3 rows"):
        progress.note(line)
    assert progress.records == {"suppliers": 400, "items": 7}
    assert progress.line(20.4) == "    ... 20 s: 407 records read so far (now: items)"
    for line in (DICT_METRIC, DICT_METRIC.replace("tap-erp", "target-precoro")):
        progress.note(line)
    assert progress.records == {"suppliers": 400, "items": 7, "taxes": 3}


def test_a_long_command_prints_progress_until_it_ends(demo, tmp_path, monkeypatch):
    marker = tmp_path / "go"
    fake = tmp_path / "meltano"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys, time\n"
        f"print({TAP_METRIC!r}, flush=True)\n"
        "deadline = time.monotonic() + 60\n"
        f"while not pathlib.Path({str(marker)!r}).exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print('done', flush=True)\n"
    )
    fake.chmod(0o755)
    said: list[str] = []

    def say(text: str = "") -> None:
        said.append(text)
        if "records read so far" in text:
            marker.touch()  # the command ends once progress with its records was shown

    monkeypatch.setattr(demo, "MELTANO", fake)
    monkeypatch.setattr(demo, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(demo, "PROGRESS_EVERY", 0.05)
    monkeypatch.setattr(demo, "say", say)

    output = demo.meltano(["run", "x", "y"], {}, "fake.log")

    assert output.splitlines() == [TAP_METRIC, "done"]
    assert (tmp_path / "logs" / "fake.log").read_text() == output
    assert said
    assert said[-1].endswith("200 records read so far (now: suppliers)")


def test_the_end_says_how_to_reset_what_the_demo_leaves(demo, monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(demo, "say", said.append)
    monkeypatch.setattr(demo.sys, "executable", str(ROOT / ".venv" / "bin" / "python"))
    demo.step6(demo.DEFAULT_PORT)
    text = "\n".join(said)
    for path in demo.RESET_PATHS:
        assert str(path.relative_to(ROOT)) in text
    for state_id in demo.STATE_IDS:
        assert f"state clear --force {state_id}" in text
    assert "report.html" in text
