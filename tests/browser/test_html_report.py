"""The run report page in a real headless Chromium (issue 12): it opens from the file
alone, shows the counts of summary.json, and filtering by outcome shows only matching rows.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait
from target_precoro.target import TargetPrecoro

HOSTILE_ID = "<img src=x onerror=alert(1)>"
HOSTILE_NAME = "<script>alert('name')</script> & Sons"


def run(sandbox: Any, tmp_path: Path, records: list[dict[str, Any]]) -> tuple[Path, dict]:
    """One in-process target run on suppliers; its run folder and summary."""
    config = {
        "auth_token": sandbox.token,
        "email": sandbox.email,
        "api_url": sandbox.url,
        "budget_ledger_path": str(tmp_path / "ledger.sqlite3"),
        "state_dir": str(tmp_path / "state"),
        "report_dir": str(tmp_path / "reports"),
        "max_requests_per_second": 1000,
        "duplicate_get_interval_seconds": 0,
        "match": {"suppliers": []},
        "max_failures": 10,  # the invalid rows are part of the page under test
    }
    schema = {"type": "object", "properties": {"externalId": {"type": "string"}}}
    lines = [{"type": "SCHEMA", "stream": "suppliers", "schema": schema, "key_properties": []}]
    lines += [{"type": "RECORD", "stream": "suppliers", "record": r} for r in records]
    target = TargetPrecoro(config=config, parse_env_config=False)
    text = io.StringIO("\n".join(json.dumps(m) for m in lines) + "\n")
    code: Any = 0
    try:
        target.listen(text)  # type: ignore[arg-type]
    except SystemExit as exc:
        code = exc.code
    assert not code
    assert target._runtime is not None
    folder = target._runtime.report.dir
    return folder, json.loads((folder / "summary.json").read_text())


@pytest.fixture
def report(sandbox: Any, tmp_path: Path) -> tuple[Path, dict]:
    """A second run with every kind of row: unchanged, updated, created, invalid."""
    vendors = [
        {"externalId": f"B-{i}", "name": f"Browser Vendor {i}", "country": "France"}
        for i in range(5)
    ]
    run(sandbox, tmp_path, vendors)
    vendors[1]["name"] = "Browser Vendor One, renamed"
    vendors[4]["name"] = HOSTILE_NAME
    later = [
        *vendors,
        {"externalId": HOSTILE_ID, "name": "Hostile Id", "country": "France"},
        {"externalId": "B-BAD-1", "name": "Country is a number", "country": 17},
        {"externalId": "B-BAD-2", "name": "Country is a list", "country": ["FR"]},
    ]
    folder, summary = run(sandbox, tmp_path, later)
    assert summary["streams"] == {
        "suppliers": {"unchanged": 3, "updated": 2, "created": 1, "invalid": 2}
    }
    return folder / "report.html", summary


def rows_shown(browser: WebDriver) -> list[tuple[str, str]]:
    """(externalId, outcome) of each table row a reader sees."""
    rows = browser.find_elements(By.CSS_SELECTOR, "#records tbody tr")
    cells = [row.find_elements(By.TAG_NAME, "td") for row in rows if row.is_displayed()]
    return [(c[2].text, c[3].text) for c in cells]


def shown_count(browser: WebDriver) -> int:
    return int(browser.find_element(By.ID, "shown").text)


def test_the_page_shows_the_counts_and_filters_by_outcome(browser, report):
    page, summary = report
    browser.get(page.as_uri())
    assert browser.title.startswith("target-precoro run ")

    # Opened from the file alone: nothing was fetched, no script of a record ran.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018

    # The counts shown are summary.json's, per stream and in total.
    for outcome, n in summary["streams"]["suppliers"].items():
        cell = f'#counts td[data-stream="suppliers"][data-outcome="{outcome}"]'
        assert browser.find_element(By.CSS_SELECTOR, cell).text == str(n)
        total = f'#counts td[data-stream=""][data-outcome="{outcome}"]'
        assert browser.find_element(By.CSS_SELECTOR, total).text == str(summary["totals"][outcome])
    assert len(rows_shown(browser)) == shown_count(browser) == 8

    # Filtering by outcome: only the matching rows remain, and the count says so.
    outcome = Select(browser.find_element(By.ID, "f-outcome"))
    for wanted, n in summary["totals"].items():
        outcome.select_by_value(wanted)
        shown = rows_shown(browser)
        assert [o for _, o in shown] == [wanted] * n
        assert shown_count(browser) == n
    outcome.select_by_value("__unwritten__")
    assert sorted(rows_shown(browser)) == [("B-BAD-1", "invalid"), ("B-BAD-2", "invalid")]
    outcome.select_by_value("")
    assert len(rows_shown(browser)) == 8

    # A count is a link to its rows.
    browser.find_element(
        By.CSS_SELECTOR, '#counts td[data-stream="suppliers"][data-outcome="updated"] a'
    ).click()
    assert sorted(rows_shown(browser)) == [("B-1", "updated"), ("B-4", "updated")]
    assert outcome.first_selected_option.get_attribute("value") == "updated"

    # Free text, with the record values shown as text, not as markup.
    outcome.select_by_value("")
    search = browser.find_element(By.ID, "f-text")
    search.send_keys("onerror")  # applied 200 ms after the last key
    WebDriverWait(browser, 5).until(lambda b: rows_shown(b) == [(HOSTILE_ID, "created")])
    assert shown_count(browser) == 1
    search.clear()
    search.send_keys("Sons")
    WebDriverWait(browser, 5).until(lambda b: rows_shown(b) == [("B-4", "updated")])
    row = next(
        r for r in browser.find_elements(By.CSS_SELECTOR, "#records tbody tr") if r.is_displayed()
    )
    change = row.find_elements(By.TAG_NAME, "td")[5].text
    assert change == f"name: Browser Vendor 4 → {HOSTILE_NAME}"
    assert browser.find_elements(By.CSS_SELECTOR, "#records img") == []
