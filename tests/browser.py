"""Headless Chromium for the tests that look at pages as a person would (the demo page, the MLflow UI): Debian's
chromium + chromium-driver (`make browser`), never a browser download."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = os.environ.get("MEMORIA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MEMORIA_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("MEMORIA_TEST_ARTIFACTS") or REPO / "test-artifacts")
WAIT_S = 20


def chromium() -> Iterator[object]:
    """A headless Chromium driven by Selenium (the `browser` fixture); fails, never skips, when it is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: run `make browser` (installs Debian's chromium and chromium-driver; "
            "MEMORIA_CHROMIUM / MEMORIA_CHROMEDRIVER point elsewhere)",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US"):
        options.add_argument(arg)  # --no-sandbox: Chromium refuses to run as root (tests and CI run as root) without
    options.add_argument("--window-size=1280,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: object, condition, what: str) -> object:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S).until(lambda d: condition(d))
    except TimeoutException:
        logs = driver.get_log("browser")
        raise AssertionError(f"{what}: not seen within {WAIT_S}s; browser console: {logs}") from None


def screenshot(driver: object, name: str, capsys: pytest.CaptureFixture[str]) -> Path:
    """The whole page (the window grown to its height), kept as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("window.scrollTo(0, 0); return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(height + 40, 8000))
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), path
    driver.set_window_size(1280, 1000)
    with capsys.disabled():
        print(f"\n  screenshot: {path}")
    return path
