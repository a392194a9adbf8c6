"""No config error prints a secret, whatever its type; an unsendable token is refused early.

These tests read the plugins' output text on purpose: what is printed is the subject.
Each runs the real command (tap, target, webhook receiver) and checks the exit code,
that the error names the setting, that the secret appears nowhere, and that the
sandbox received no call.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SECRET = "Zq7-SECRET-value-4711"
TAP = [sys.executable, "-m", "tap_precoro"]
TARGET = [str(Path(sys.executable).with_name("target-precoro"))]
WEBHOOKS = [str(Path(sys.executable).with_name("precoro-webhooks"))]
COMMANDS = {"tap": TAP, "target": TARGET}

BAD_TOKENS: dict[str, Any] = {
    "list": [SECRET],
    "number": 471147114711471147,
    "object": {"token": SECRET},
    "non-latin-1": f"{SECRET}-ключ",
    "latin-1-but-not-ascii": f"{SECRET}-é",
    "trailing-newline": f"{SECRET}\n",
}


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, check=False, capture_output=True, text=True, input="", timeout=120, **kwargs
    )


def _config(sandbox: Any, tmp_path: Path, **overrides: Any) -> Path:
    config = {
        "auth_token": sandbox.token,
        "email": sandbox.email,
        "api_url": sandbox.url,
        "budget_ledger_path": str(tmp_path / "ledger.sqlite3"),
        "state_dir": str(tmp_path / "target-state"),
        "report_dir": str(tmp_path / "reports"),
        "max_requests_per_second": 1000,
        "duplicate_get_interval_seconds": 0,
        **overrides,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def _assert_refused(
    result: subprocess.CompletedProcess[str], sandbox: Any, setting: str, *hidden: str
) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert setting in result.stderr, result.stderr
    for value in hidden:
        assert value not in output, output
    assert "Traceback" not in output
    assert sandbox.admin.counters().total == 0


@pytest.mark.parametrize("plugin", sorted(COMMANDS))
@pytest.mark.parametrize("shape", sorted(BAD_TOKENS))
def test_bad_token_is_refused_without_showing_it(sandbox, tmp_path, plugin, shape):
    token = BAD_TOKENS[shape]
    path = _config(sandbox, tmp_path, auth_token=token)
    result = _run([*COMMANDS[plugin], "--config", str(path)])
    _assert_refused(result, sandbox, "auth_token", SECRET, str(token).strip())


@pytest.mark.parametrize("plugin", sorted(COMMANDS))
def test_unsendable_token_from_the_environment_is_refused(sandbox, tmp_path, plugin):
    path = _config(sandbox, tmp_path)
    config = json.loads(path.read_text())
    del config["auth_token"]
    path.write_text(json.dumps(config))
    prefix = "TAP_PRECORO_" if plugin == "tap" else "TARGET_PRECORO_"
    env = {"PATH": "/usr/bin:/bin", prefix + "AUTH_TOKEN": BAD_TOKENS["non-latin-1"]}
    result = _run([*COMMANDS[plugin], "--config", str(path), "--config", "ENV"], env=env)
    _assert_refused(result, sandbox, "auth_token", SECRET)


@pytest.mark.parametrize("plugin", sorted(COMMANDS))
@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{SECRET}@api.precoro.com:99999",
        f"http://user:{SECRET}@10.0.0.5",
        f"https://api.precoro.com/?token={SECRET}",
        f"ftp://api.precoro.com/#{SECRET}",
        f"https://user:{SECRET}@api.precoro.com",
    ],
    ids=["password-bad-port", "password-plain-http", "query", "fragment", "password"],
)
def test_api_url_errors_never_show_credentials(sandbox, tmp_path, plugin, url):
    path = _config(sandbox, tmp_path, api_url=url)
    result = _run([*COMMANDS[plugin], "--config", str(path)])
    _assert_refused(result, sandbox, "api_url", SECRET)


def test_webhook_receiver_never_shows_its_secret(tmp_path):
    short = "Zq7-SECRET"  # too short: refused, and not printed
    result = _run(
        [*WEBHOOKS, "serve", "--inbox", str(tmp_path / "inbox.sqlite3"), "--port", "0"],
        env={"PATH": "/usr/bin:/bin", "PRECORO_WEBHOOK_SECRET": short},
    )
    assert result.returncode == 2
    assert "secret" in result.stderr
    assert short not in result.stdout + result.stderr
    assert not (tmp_path / "inbox.sqlite3").exists()
