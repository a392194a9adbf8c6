"""A new user's project: `meltano init`, then each plugin from its definition file alone.

Each plugin installs from one `pip_url` (the client and the plugin, here as local paths;
`git+...#subdirectory=` URLs or, once published, the PyPI release work the same way),
non-editable, into a venv of its own, from nothing but this repository and PyPI. The
secret goes to `.env`, the defaults are Meltano's, and `TARGET_PRECORO_DRY_RUN` reaches
the target (declared settings only map variables) so a dry run sends no write.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from meltano_project import DEMO_SCALE, DEMO_SEED, MELTANO, ROOT, RUN_TIMEOUT

DEFINITIONS = {
    "tap-precoro": ROOT / "plugins" / "extractors" / "tap-precoro.yml",
    "target-precoro": ROOT / "plugins" / "loaders" / "target-precoro.yml",
}
SECRET = "fresh-project-token-0123456789"
WRITES = ("POST", "PUT", "PATCH")


class FreshProject:
    """A `meltano init` project in tmp_path, driven by the project's pinned Meltano."""

    def __init__(self, tmp: Path, extra_env: dict[str, str]) -> None:
        self.tmp = tmp
        self.dir = tmp / "fresh"
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TAP_", "TARGET_", "MELTANO_", "PRECORO_"))
        }
        self.env = {**base, "NO_COLOR": "1", **extra_env}

    def meltano(self, *args: str, stdin: str | None = None) -> str:
        cwd = self.dir if self.dir.exists() else self.tmp
        result = subprocess.run(
            [str(MELTANO), *args],
            cwd=cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            pytest.fail(f"meltano {' '.join(args)} exited {result.returncode}:\n{tail}")
        return result.stdout


def local_definition(plugin: str, tmp: Path) -> Path:
    """The published definition with pip_url pointing at this checkout (not yet on PyPI)."""
    definition = yaml.safe_load(DEFINITIONS[plugin].read_text())
    version = definition["pip_url"].split("==")[1]
    assert definition["pip_url"] == f"{plugin}=={version}"  # what the Hub/PyPI form says
    definition["pip_url"] = f"{ROOT / 'precoro-client'} {ROOT / plugin}"
    path = tmp / f"{plugin}.yml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def singer_input() -> str:
    """The demo's ERP vendor master as Singer messages for target-precoro."""
    records = [
        json.loads(line)
        for line in (ROOT / "demo" / "erp" / "suppliers.jsonl").read_text().splitlines()
        if line.strip()
    ]
    fields = sorted({k for r in records for k in r})
    schema: dict[str, Any] = {"type": "object", "properties": {k: {} for k in fields}}
    messages = [
        {"type": "SCHEMA", "stream": "suppliers", "schema": schema, "key_properties": []},
        *({"type": "RECORD", "stream": "suppliers", "record": r} for r in records),
    ]
    messages[0]["key_properties"] = ["externalId"]
    return "".join(json.dumps(m) + "\n" for m in messages)


def test_fresh_project_adds_configures_and_dry_runs_both_plugins(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    if not MELTANO.exists():
        pytest.fail(f"{MELTANO} is missing: run `make test` (or `make install`) first")
    sandbox = sandbox_factory(seed=DEMO_SEED, scale=DEMO_SCALE, token=SECRET)
    state = tmp_path / "state"
    project = FreshProject(
        tmp_path,
        {
            # Kept out of the user's home; mapped only because the settings are declared.
            "TAP_PRECORO_BUDGET_LEDGER_PATH": str(state / "ledger.sqlite3"),
            "TARGET_PRECORO_BUDGET_LEDGER_PATH": str(state / "ledger.sqlite3"),
            "TARGET_PRECORO_STATE_DIR": str(state / "target"),
            "TARGET_PRECORO_REPORT_DIR": str(tmp_path / "reports"),
            "TAP_PRECORO_API_URL": sandbox.url,
            "TARGET_PRECORO_API_URL": sandbox.url,
        },
    )
    project.meltano("init", "--no-usage-stats", "fresh")
    for plugin, definition in DEFINITIONS.items():
        project.meltano("add", plugin, "--from-ref", str(local_definition(plugin, tmp_path)))
        venv_bin = project.dir / ".meltano" / definition.parent.name / plugin / "venv" / "bin"
        # A real install (not editable): the client came from the same pip_url.
        check = "import precoro_client, sys; print(precoro_client.__file__)"
        where = subprocess.run(
            [str(venv_bin / "python"), "-c", check], capture_output=True, text=True, check=True
        ).stdout
        assert "site-packages" in where
        assert str(ROOT) not in where

    for plugin in DEFINITIONS:
        project.meltano("config", "set", plugin, "auth_token", SECRET)
        project.meltano("config", "set", plugin, "email", "sandbox@example.com")
    dotenv = (project.dir / ".env").read_text()
    meltano_yml = (project.dir / "meltano.yml").read_text()
    assert "TAP_PRECORO_AUTH_TOKEN=" in dotenv
    assert "TARGET_PRECORO_AUTH_TOKEN=" in dotenv
    assert SECRET in dotenv
    assert SECRET not in meltano_yml  # sensitive: true keeps it out of the project file
    assert "sandbox@example.com" in meltano_yml  # not sensitive: kept in meltano.yml

    listing = project.meltano("config", "list", "--all", "target-precoro")
    assert SECRET not in listing
    assert "(redacted)" in listing
    default = "lookup_batch_size [env: TARGET_PRECORO_LOOKUP_BATCH_SIZE] current value: 200"
    assert f"{default} (default)" in listing
    config = json.loads(project.meltano("config", "print", "target-precoro"))
    # The definition's `value:` defaults are what Meltano passes.
    assert config["mode"] == "upsert"
    assert config["dry_run"] is False
    assert config["lookup_batch_size"] == 200
    assert config["auth_token"] == "*****"
    assert "load_method" not in config
    tap_config = json.loads(project.meltano("config", "print", "tap-precoro"))
    assert tap_config["page_size"] == 200
    assert tap_config["api_url"] == sandbox.url  # the variable wins over the default
    # The README's third command: the tap reaches Precoro with these settings.
    project.meltano("config", "test", "tap-precoro")

    admin = sandbox.admin
    admin.reset_counters()
    suppliers_before = admin.stats()["suppliers"]
    project.env["TARGET_PRECORO_DRY_RUN"] = "true"
    project.meltano("invoke", "target-precoro", stdin=singer_input())
    by_route = admin.counters().by_route()
    assert sum(n for route, n in by_route.items() if route.split()[0] in WRITES) == 0
    assert sum(by_route.values()) > 0  # it did read, to plan
    assert admin.stats()["suppliers"] == suppliers_before
    (summary_path,) = (tmp_path / "reports").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["dry_run"] is True
    # The plan is the real run's (tests/meltano/test_erp_to_precoro.py), nothing sent.
    assert summary["totals"] == {"created": 3, "updated": 3, "unchanged": 1, "linked": 4}
