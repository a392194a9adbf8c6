"""meltano.yml as users copy it: every setting declared, prod credentials from the environment."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml
from meltano_project import ROOT, Project

SETTINGS_SCRIPT = ROOT / "scripts" / "meltano_settings.py"


def load_settings_script():
    spec = importlib.util.spec_from_file_location("meltano_settings", SETTINGS_SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_meltano_yml_declares_every_setting_of_the_local_plugins() -> None:
    module = load_settings_script()
    current = (ROOT / "meltano.yml").read_text()
    assert module.render(current) == current, "meltano.yml lags behind --about: run `make readme`"
    assert "sensitive: true" in current.split("- name: auth_token", 1)[1].split("- name:", 1)[0]


def test_plugin_definition_files_match_about() -> None:
    """`plugins/<type>/<plugin>.yml` is what `--about` says, complete for `meltano add`."""
    module = load_settings_script()
    for plugin, meta in module.PLUGIN_INFO.items():
        info = module.about(plugin)
        text = meta.definition_path.read_text()
        assert module.definition_file(plugin, info) == text, (
            f"{meta.definition_path} lags behind --about: run `make readme`"
        )
        definition = yaml.safe_load(text)
        assert definition["capabilities"] == info["capabilities"]
        assert definition["settings_group_validation"] == [info["settings"]["required"]]
        declared = {s["name"]: s for s in definition["settings"]}
        assert list(declared) == list(info["settings"]["properties"])
        for name, spec in info["settings"]["properties"].items():
            setting = declared[name]
            assert setting["kind"]
            assert setting["description"]
            assert setting.get("value") == spec.get("default"), name
            assert setting.get("sensitive", False) == spec.get("secret", False), name
        assert declared["auth_token"]["sensitive"] is True


def test_prod_takes_credentials_only_from_the_environment(project: Project) -> None:
    env_example = (ROOT / ".env.example").read_text()
    assert "PRECORO_AUTH_TOKEN=" in env_example
    assert "PRECORO_EMAIL=" in env_example
    for name in ("TAP_PRECORO_API_URL", "TARGET_PRECORO_API_URL"):
        del project.env[name]  # the fixture's sandbox override
    project.env.update(PRECORO_AUTH_TOKEN="token-from-env", PRECORO_EMAIL="ops@example.com")
    for plugin in ("tap-precoro", "target-precoro"):
        out = project.run("--log-level=warning", "--environment=prod", "config", "print", plugin)
        config = json.loads(out.stdout)
        assert config["api_url"] == "https://api.precoro.com"
        assert config["email"] == "ops@example.com"
        assert config["auth_token"] == "*****"  # set, and never printed
        assert "token-from-env" not in out.stdout + out.stderr
    del project.env["PRECORO_AUTH_TOKEN"]
    config = json.loads(
        project.run(
            "--log-level=warning", "--environment=prod", "config", "print", "tap-precoro"
        ).stdout
    )
    assert "auth_token" not in config  # no fallback to the sandbox's token


def test_jobs_and_schedules(project: Project) -> None:
    jobs = json.loads(project.run("--log-level=warning", "job", "list", "--format=json").stdout)
    assert {j["job_name"]: j["tasks"] for j in jobs["jobs"]} == {
        "precoro-to-erp": ["tap-precoro target-erp"],
        "erp-to-precoro": ["tap-erp target-precoro"],
    }
    schedules = json.loads(
        project.run("--log-level=warning", "schedule", "list", "--format=json").stdout
    )
    assert {s["job"]["name"] for s in schedules["schedules"]["job"]} == {
        "precoro-to-erp",
        "erp-to-precoro",
    }


def test_gitignore_keeps_outputs_and_secrets_out() -> None:
    ignored = Path(ROOT / ".gitignore").read_text().splitlines()
    for entry in (".env", ".meltano/", ".meltano-venv/", "/output/*"):
        assert entry in ignored


def test_environment_variables_reach_the_plugins_typed(project: Project) -> None:
    """A `TAP_PRECORO_*` string becomes the setting's JSON type (Meltano casts by kind)."""
    project.env.update(
        TAP_PRECORO_PAGE_SIZE="100",  # one of a fixed set of numbers
        TAP_PRECORO_MAX_TRIES="7",
        TAP_PRECORO_FETCH_DETAILS="false",
        TAP_PRECORO_START_DATE="2025-01-01T05:06:07+02:00",
        TAP_PRECORO_STATUS_FILTERS='{"invoices": [2, 5]}',
        TAP_PRECORO_REGION="us",
    )
    out = project.run("--log-level=warning", "config", "print", "tap-precoro")
    config = json.loads(out.stdout)
    assert config["page_size"] == 100
    assert config["max_tries"] == 7
    assert config["fetch_details"] is False
    assert config["start_date"] == "2025-01-01T05:06:07+02:00"
    assert config["status_filters"] == {"invoices": [2, 5]}
    assert config["region"] == "us"
    assert config["lookback_minutes"] == 5  # a `value:` default
