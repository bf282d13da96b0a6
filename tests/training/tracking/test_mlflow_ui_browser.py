"""The MLflow UI as a person meets it, in a real headless Chromium: the link `make ui` prints opens an experiment on
its runs table (not MLflow 3.17's empty GenAI view), and the Dataset column names the data each run read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import screenshot, wait_for
from tests.serving_harness import cli, free_port, http

MLFLOW = Path(sys.executable).parent / "mlflow"


@pytest.fixture(scope="module")
def mlflow_ui(store: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow-ui") / "ui.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                str(MLFLOW),
                "ui",
                "--backend-store-uri",
                store["MLFLOW_TRACKING_URI"],
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=store,
            start_new_session=True,  # its own process group: stopped with everything it started
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while http("GET", f"{url}/health")[0] != 200:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_printed_link_opens_the_runs_table_with_each_runs_dataset(
    store: dict[str, str], mlflow_ui: str, browser: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from selenium.webdriver.common.by import By

    printed = cli(store, "ui-links", "--url", mlflow_ui)
    link = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.strip().startswith("sentiment:"))
    browser.get(link)
    wait_for(browser, lambda d: "/runs" in d.current_url, "the experiment's runs page")
    wait_for(
        browser,
        lambda d: "sentiment/csv" in d.find_element(By.TAG_NAME, "body").text,
        "the Dataset column naming the run's data",
    )
    screenshot(browser, "mlflow-ui-runs.png", capsys)
