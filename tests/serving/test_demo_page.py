"""The demo page (GET /demo) in a real headless browser, against `bentoml serve` on the tiny champions.

Debian's `chromium` and `chromium-driver`, driven by Selenium pointed at both binaries (so Selenium Manager never
tries to download a browser: there is no network here). `make test` installs them (`make browser`); where they
are missing this test FAILS with that advice, it is never skipped. Screenshots are kept in $MEMORIA_TEST_ARTIFACTS
(default: test-artifacts/ in the repository, ignored by git); the test prints where.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import screenshot, wait_for
from tests.conftest import REPO
from tests.serving_harness import Server, http

STATIC = REPO / "serving" / "static"
MODULES = sorted(path.name for path in STATIC.glob("*.js"))  # demo.js (the entry) and the modules it imports
TOKEN = "demo-page-token"
TWEET = "I love this airline, the crew was great but my bag is lost!"
SPANISH = "¿Cómo estás? Buenos días."


def start(store: dict[str, str], log: Path, **env: str) -> Server:
    # One worker is enough for a page, and leaves the second core to the browser.
    return Server({**store, "MEMORIA_WORKERS": "1", "MEMORIA_RELOAD_INTERVAL_S": "0", **env}, log)


@pytest.fixture(scope="module")
def servers(store: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """An open server and one that wants a token, started together."""
    folder = tmp_path_factory.mktemp("demo")
    both = {
        "open": start(store, folder / "open.log", MEMORIA_DRIFT_MIN_TEXTS="5"),  # drift distances within seconds
        "guarded": start(store, folder / "guarded.log", **{"MEMORIA_API_TOKEN": TOKEN}),
    }
    try:
        for server in both.values():
            server.wait_ready()
        yield both
    finally:
        for server in both.values():
            server.stop()


def post(server: Server, path: str, body: dict, token: str | None = None) -> tuple[dict, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    code, text, response_headers = http("POST", server.base + path, body, headers)
    assert code == 200, (path, code, text)
    return json.loads(text), response_headers


def by_css(driver: object, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def test_the_page_its_assets_and_the_cards_are_open_when_tokens_are_on(servers: dict[str, Server]) -> None:
    base = servers["guarded"].base
    code, page, headers = http("GET", base + "/demo")
    assert code == 200 and headers["content-type"].startswith("text/html"), (code, page[:200])
    assert "default-src 'self'" in headers["content-security-policy"]  # nothing loads from elsewhere
    assert "script-src 'self'" in headers["content-security-policy"]  # which allows this origin's module scripts
    assert '<script type="module" src="demo/demo.js">' in page  # relative: works behind a path prefix
    # every module is served as JavaScript (browsers refuse to run a module served as anything else), as it is
    assert "demo.js" in MODULES and len(MODULES) > 1, MODULES
    for asset, kind in [(name, "text/javascript") for name in MODULES] + [("demo.css", "text/css")]:
        code, body, headers = http("GET", f"{base}/demo/{asset}")
        assert code == 200 and headers["content-type"].startswith(kind), (asset, code, headers.get("content-type"))
        assert body == (STATIC / asset).read_text(encoding="utf-8") and "innerHTML" not in body, asset
        assert headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff", asset
    # and every import names one of them, relative to the module ("./x.js"), never another origin
    for name in MODULES:
        for target in re.findall(r'^import .* from "([^"]+)";$', (STATIC / name).read_text(encoding="utf-8"), re.M):
            assert target.startswith("./") and target[2:] in MODULES, (name, target)
    # unknown names, the page itself and anything with a path in it are not assets
    refused = ("nope.js", "demo.html", "..", "%2e%2e", "../serving/service.py", "..%2Fdemo.py", "%2Fetc%2Fhosts")
    for path in refused:
        assert http("GET", f"{base}/demo/{path}")[0] == 404, path
    code, body, _ = http("GET", base + "/models")
    assert code == 200, body
    cards = json.loads(body)
    assert {task: card["registry_version"] for task, card in cards.items()} == {"sentiment": "1", "translation": "1"}
    # while the explanations are behind the token
    assert http("POST", base + "/sentiment/explain", {"text": "hello"})[0] == 401


def test_the_page_explains_a_tweet_and_a_spanish_sentence(
    servers: dict[str, Server], browser: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from selenium.webdriver.common.by import By

    server = servers["open"]
    driver = browser
    # given a service that has answered one tweet already (the live signals read its /metrics)
    _, headers = post(server, "/sentiment", {"texts": [TWEET]})
    sentiment_model = headers["x-memoria-model"]
    for _ in range(20):  # enough texts in each worker's drift window for a distance
        post(server, "/sentiment", {"texts": [TWEET] * 5})
    driver.get(server.base + "/demo")
    # then the page names the served models and links their cards
    wait_for(driver, lambda d: d.find_element(By.ID, "version-sentiment").text.startswith("sentiment/"), "cards")
    link = driver.find_element(By.ID, "version-sentiment")
    assert link.text == sentiment_model and link.get_attribute("href").endswith("#card-sentiment")
    assert driver.find_element(By.ID, "version-translation").text.startswith("translation/v1 sha256:")
    assert by_css(driver, "#card-sentiment") and by_css(driver, "#card-translation")

    # when a tweet is submitted: the label, three bars with the probabilities, the tokens shaded
    driver.find_element(By.ID, "sentiment-text").clear()
    driver.find_element(By.ID, "sentiment-text").send_keys(TWEET)
    driver.find_element(By.CSS_SELECTOR, "#sentiment-form button[type=submit]").click()
    bars = wait_for(driver, lambda d: by_css(d, "#sentiment-result rect.bar"), "the bar chart")
    expected, _ = post(server, "/sentiment/explain", {"text": TWEET})
    shown = {bar.get_attribute("data-label"): float(bar.get_attribute("data-probability")) for bar in bars}
    assert len(bars) == 3 and shown == pytest.approx(expected["scores"], abs=1e-6)
    values = [t.text for t in by_css(driver, "#sentiment-result .bar-value")]
    assert values == [f"{p:.3f}" for p in expected["scores"].values()]
    assert driver.find_element(By.CSS_SELECTOR, "#sentiment-result .verdict strong").text == expected["label"]
    tokens = by_css(driver, "#sentiment-result .shaded-text .token")
    assert len(tokens) == len(expected["tokens"]) > 0
    assert driver.find_element(By.CSS_SELECTOR, "#sentiment-result .shaded-text").text == TWEET

    # when a Spanish sentence is submitted: the English, and one heatmap cell per (target, source) token pair
    driver.find_element(By.ID, "translation-text").clear()
    driver.find_element(By.ID, "translation-text").send_keys(SPANISH)
    driver.find_element(By.CSS_SELECTOR, "#translation-form button[type=submit]").click()
    heatmap = wait_for(driver, lambda d: by_css(d, "#translation-result svg.heatmap"), "the heatmap")[0]
    expected, _ = post(server, "/translate/explain", {"text": SPANISH})
    rows, cols = len(expected["target_tokens"]), len(expected["source_tokens"])
    assert (int(heatmap.get_attribute("data-rows")), int(heatmap.get_attribute("data-cols"))) == (rows, cols)
    assert len(by_css(driver, "#translation-result rect.cell")) == rows * cols > 0
    labels = [t.get_attribute("textContent") for t in by_css(driver, "#translation-result .source-token")]
    assert labels == expected["source_tokens"]
    english = driver.find_element(By.CSS_SELECTOR, "#translation-result .translation").text
    assert english == expected["translation"].strip()

    # and the live signals show the texts this model answered, beside its training distribution
    wait_for(
        driver,
        lambda d: int(d.find_element(By.ID, "signals-sentiment").get_attribute("data-live-texts")) >= 1,
        "live input signals",
    )
    assert by_css(driver, "#signals-sentiment .train-bar") and by_css(driver, "#signals-sentiment .live-bar")
    # and each drift signal's distance, as /metrics exports it for the served model
    shown = {
        li.get_attribute("data-signal"): float(li.get_attribute("data-distance"))
        for li in by_css(driver, "#drift-sentiment li")
    }
    exported = {}
    for line in http("GET", server.base + "/metrics")[1].splitlines():
        if line.startswith("memoria_drift_distance{") and f'model="{sentiment_model}"' in line:
            exported[line.split('signal="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    assert "novelty" in shown and shown == pytest.approx(exported), (shown, exported)
    # nothing came from anywhere else, and nothing failed in the page
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(url.startswith(server.base + "/") for url in resources), resources
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert screenshot(driver, "demo-page.png", capsys).stat().st_size > 10_000


def test_the_page_asks_for_the_token_when_the_service_wants_one(
    servers: dict[str, Server], browser: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(servers["guarded"].base + "/demo")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    wait_for(driver, lambda d: d.find_element(By.ID, "version-sentiment").text.startswith("sentiment/"), "cards")
    panel = driver.find_element(By.ID, "token-panel")
    assert not panel.is_displayed()  # nothing asked before a guarded call
    # when a tweet is submitted without a token, the page asks for one and puts the cursor there
    driver.find_element(By.CSS_SELECTOR, "#sentiment-form button[type=submit]").click()
    wait_for(driver, lambda d: panel.is_displayed(), "the token form")
    assert driver.switch_to.active_element.get_attribute("id") == "token-input"
    screenshot(driver, "demo-token-prompt.png", capsys)
    # a wrong token is refused and asked again
    driver.find_element(By.ID, "token-input").send_keys("wrong")
    driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    wait_for(driver, lambda d: "refused" in d.find_element(By.ID, "token-message").text, "the refusal")
    assert panel.is_displayed() and not by_css(driver, "#sentiment-result rect.bar")
    # the right one answers the pending request, and later calls send it without asking
    driver.find_element(By.ID, "token-input").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()
    wait_for(driver, lambda d: len(by_css(d, "#sentiment-result rect.bar")) == 3, "the bar chart")
    assert not panel.is_displayed() and driver.find_element(By.ID, "token-state").is_displayed()
    driver.find_element(By.CSS_SELECTOR, "#translation-form button[type=submit]").click()
    wait_for(driver, lambda d: by_css(d, "#translation-result rect.cell"), "the heatmap")
    assert not panel.is_displayed()
