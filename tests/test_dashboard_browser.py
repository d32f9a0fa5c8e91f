"""The dashboard in a real browser: `patchbot serve` on loopback and the static site,
opened in headless chromium. Screenshots land in out/test-artifacts/ for a person."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import browser, reports
from tests.helpers import history as seeded
from ukl_patchbot.dashboard import site
from ukl_patchbot.history import store

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not browser.available(), reason="needs chromium, chromium-driver")]


@pytest.fixture(scope="module")
def history_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = tmp_path_factory.mktemp("hist")
    url = f"sqlite:///{d / 'history.sqlite'}"
    h = store.open_store(url)
    seeded.seed(h, d / "run")
    (d / "run").mkdir()
    (d / "run" / "boot-classic-1.log").write_text("[    0.000000] Linux version 6.1.192\n")
    h.close()
    return url


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with browser.chromium() as d:
        yield d


@pytest.fixture(scope="module")
def served(history_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`patchbot serve` on a free loopback port, the dashboard at its root."""
    cwd = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "PATCHBOT_WEBHOOK_SECRET": "dashboard-test-secret",
           "PATCHBOT_HISTORY_URL": history_url, "PATCHBOT_CACHE_DIR": str(cwd / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "ukl_patchbot", "serve", "--port", "0"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"listening on (http://[\d.]+:\d+)/webhook", line)
        assert m, line
        yield m.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


def _cell(driver: Any, tag: str, variant: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'tr[data-tag="{tag}"] td[data-variant="{variant}"]')


def _check_matrix_trends_findings(driver: Any, base: str, shot: str) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    driver.get_log("browser")
    driver.get(base + "index.html")
    assert _cell(driver, "v6.12.9", "ukl").text.splitlines() == ["boot failed", "ukl-delta"]
    assert _cell(driver, "v6.1.192", "classic").text == "pass"
    rows = [r.get_attribute("data-tag") for r in driver.find_elements(By.CSS_SELECTOR, "tr[data-tag]")]
    assert rows == ["v6.12.9", reports.HOSTILE_TAG, "v6.1.192", "v6.1.191", "v6.1.190"]
    assert reports.HOSTILE_TAG in driver.find_element(By.TAG_NAME, "main").text  # shown as text
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - the script did not run
    driver.save_screenshot(str(browser.artifacts_dir() / f"{shot}-matrix.png"))

    _cell(driver, "v6.12.9", "ukl").find_element(By.TAG_NAME, "a").click()
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Check #")
    assert "the UKL delta needs work on v6.12.9" in driver.find_element(By.TAG_NAME, "main").text
    assert driver.find_element(By.CSS_SELECTOR, ".report table")  # the Markdown table, rendered

    driver.get(base + "trends.html")
    for plot in ("boot", "syscall", "size", "build"):
        points = driver.find_elements(By.CSS_SELECTOR, f"g#trend-{plot}-classic use")
        assert len(points) == 5, plot  # one point per recorded tag
    assert len(driver.find_elements(By.CSS_SELECTOR, "g#trend-ratio-ratio use")) == 3
    driver.save_screenshot(str(browser.artifacts_dir() / f"{shot}-trends.png"))

    driver.get(base + "findings.html")
    row = driver.find_element(By.CSS_SELECTOR, 'tr[data-fingerprint="warning-deadbeef"]')
    assert reports.XSS in row.text
    assert driver.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    assert browser.console_errors(driver) == []


def test_served_dashboard_in_chromium(served: str, driver: Any) -> None:
    from selenium.webdriver.common.by import By

    _check_matrix_trends_findings(driver, served + "/", "served")
    driver.get(served + "/")
    # A log linked from a check page opens as plain text.
    check = _cell(driver, "v6.1.192", "classic").find_element(By.TAG_NAME, "a")
    check.click()
    driver.find_element(By.LINK_TEXT, "classic boot 1").click()
    assert "Linux version 6.1.192" in driver.find_element(By.TAG_NAME, "body").text
    assert browser.console_errors(driver) == []


def test_static_site_in_chromium(history_url: str, driver: Any, tmp_path: Path) -> None:
    h = store.open_store(history_url)
    site.write_site(h, tmp_path / "site")
    _check_matrix_trends_findings(driver, (tmp_path / "site").as_uri() + "/", "static")
