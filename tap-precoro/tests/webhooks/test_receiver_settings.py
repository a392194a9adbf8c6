"""The receiver's settings are declared once: `serve`'s options come from the declarations."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from tap_precoro.webhooks.cli import build_parser
from tap_precoro.webhooks.guard import ServerLimits
from tap_precoro.webhooks.receiver import NUMBER_RULES, ListenAddress, ReceiverSettings

NOT_SETTINGS = {"command", "inbox", "secret", "log_level"}
"""`serve` options that are no receiver setting (the secret comes from the environment)."""


def _declared_defaults() -> dict[str, object]:
    settings = asdict(ReceiverSettings(secret="s" * 16))
    del settings["secret"]
    return {**asdict(ListenAddress()), **settings, **asdict(ServerLimits())}


def test_serve_options_are_the_declared_settings_with_their_defaults():
    args = build_parser().parse_args(["serve", "--inbox", "inbox.sqlite3"])
    options = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}
    assert options == _declared_defaults()
    assert set(NUMBER_RULES) == set(options) - {"host"}


@pytest.mark.parametrize(("option", "value"), [("--port", "65536"), ("--threads", "0")])
def test_serve_options_keep_the_declared_ranges(option, value):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--inbox", "inbox.sqlite3", option, value])
