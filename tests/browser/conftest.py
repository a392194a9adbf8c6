"""A real headless Chromium (Debian's, installed by `make browser`) driven by Selenium.

`make test` installs it first (scripts/install_browser.sh). Where it cannot be
installed (not root, no apt-get) the tests skip and say so; under CI they fail, so a
missing browser never passes unnoticed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
"""Debian's name first; the others are what hosted CI images ship with a chromedriver."""
INSTALL_HINT = (
    "run `make browser` (scripts/install_browser.sh: apt-get install chromium "
    "chromium-driver, as root)"
)


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for the session; its driver is the Debian package's."""
    chromium = next(filter(None, map(shutil.which, BROWSERS)), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(
            name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path
        )
        reason = f"{missing} not installed: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root (CI) Chromium refuses to start with its sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    # An explicit driver path: Selenium Manager is not run and downloads nothing.
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()
