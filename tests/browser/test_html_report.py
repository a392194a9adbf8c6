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
from target_precoro.html_report import write_html
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
    assert target.run.opened_runtime is not None
    folder = target.run.opened_runtime.report.dir
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


VISIBLE_ROWS = """
return Array.from(document.querySelectorAll('#records tbody tr'))
  .filter(function (tr) { return tr.getClientRects().length > 0; })
  .map(function (tr) {
    return Array.from(tr.cells).map(function (td) { return td.innerText; });
  });
"""
"""Each rendered, visible row's cells as the reader sees them (innerText), in one call."""


def visible_cells(browser: WebDriver) -> list[list[str]]:
    return browser.execute_script(VISIBLE_ROWS)


def rows_shown(browser: WebDriver) -> list[tuple[str, str]]:
    """(externalId, outcome) of each table row a reader sees."""
    return [(cells[2], cells[3]) for cells in visible_cells(browser)]


def shown_count(browser: WebDriver) -> int:
    return int(browser.find_element(By.ID, "shown").text)


def wait(browser: WebDriver) -> WebDriverWait:
    """For the text filter, applied 200 ms after the last key."""
    return WebDriverWait(browser, 5)


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
    wait(browser).until(lambda b: rows_shown(b) == [(HOSTILE_ID, "created")])
    assert shown_count(browser) == 1
    search.clear()
    search.send_keys("Sons")
    wait(browser).until(lambda b: rows_shown(b) == [("B-4", "updated")])
    (row,) = visible_cells(browser)
    assert row[5] == f"name: Browser Vendor 4 → {HOSTILE_NAME}"
    assert browser.find_elements(By.CSS_SELECTOR, "#records img") == []


def test_a_large_report_opens_and_pages(browser, tmp_path):
    """20k records: 500 rows at a time, paging and filtering over all of them."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    outcomes = ("created", "updated", "unchanged", "failed")
    with (run_dir / "report.jsonl").open("w") as out:
        for i in range(20_000):
            line = {"stream": "suppliers", "external_id": f"L-{i}", "outcome": outcomes[i % 4]}
            out.write(json.dumps({**line, "line": i + 2}) + "\n")
    counts = {o: 5_000 for o in outcomes}
    page = write_html(
        run_dir, {"run_id": "large", "streams": {"suppliers": counts}, "totals": counts}
    )

    browser.get(page.as_uri())
    shown = rows_shown(browser)
    assert len(shown) == 500
    assert shown[0] == ("L-0", "created")
    assert browser.find_element(By.ID, "range").text == "1\u2013500 of 20000"
    browser.find_element(By.ID, "next").click()
    assert rows_shown(browser)[0] == ("L-500", "created")
    Select(browser.find_element(By.ID, "f-outcome")).select_by_value("failed")
    shown = rows_shown(browser)
    assert shown_count(browser) == 5_000
    assert shown[:2] == [("L-3", "failed"), ("L-7", "failed")]
    assert {o for _, o in shown} == {"failed"}
    assert browser.find_element(By.ID, "prev").get_attribute("disabled") is not None
