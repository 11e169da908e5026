"""The report in a real browser (issue 21 item 2): Debian's chromium, driven by Selenium through Debian's
chromedriver, headless. The page renders with no console error, every host's lane and every wave is visible, and
the halting gate is visible and marked ``halting``.

No fleet: the ledgers are written through the ledger's writer (tests/unit/_report_ledgers.py), so this runs in the
line of tests without the fleet. Chromium is required, not optional: ``make setup`` installs it (the Makefile's
``DEB_PACKAGES``), and a machine without it fails here rather than skipping the only check that a browser can show
the page.
"""

from __future__ import annotations

import os

import _report_ledgers as L
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from ansible_collections.lockstep.release.plugins.module_utils import ledger
from ansible_collections.lockstep.release.plugins.plugin_utils import report

pytestmark = pytest.mark.without_fleet

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(autouse=True)
def configuration(tmp_path, monkeypatch):
    monkeypatch.setenv(ledger.ANCHOR_DIR_ENV, str(tmp_path / "anchors"))
    monkeypatch.delenv(ledger.KEY_ENV, raising=False)
    monkeypatch.delenv(ledger.KEY_FILE_ENV, raising=False)


@pytest.fixture(scope="module")
def browser():
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), (f"{path} is missing: the report's browser test needs Debian's chromium and "
                                          "chromium-driver (make setup installs them: DEB_PACKAGES in the Makefile)")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def load(browser, tmp_path, records, name):
    path = L.write(str(tmp_path / "ledger" / f"20260102T030405000000Z-{name}-1.jsonl"), records)
    page = report.write_report(path)
    browser.get_log("browser")  # what an earlier page logged is not this page's
    browser.get("file://" + page)
    assert browser.execute_script("return document.readyState") == "complete"
    return page


def console_errors(browser):
    return [entry for entry in browser.get_log("browser") if entry.get("level") == "SEVERE"]


def lanes_by_host(browser):
    return {el.get_attribute("data-host"): el for el in browser.find_elements(By.CSS_SELECTOR, "#hosts .lane")}


def test_halted_release_renders_every_host_and_wave_and_marks_the_halting_gate(browser, tmp_path):
    load(browser, tmp_path, L.halted(), "release")
    assert console_errors(browser) == []
    assert browser.title == "lockstep release run-2.1.0: rolled_back"
    lanes = lanes_by_host(browser)
    assert sorted(lanes) == L.HOSTS
    for host, lane in lanes.items():
        assert lane.is_displayed(), host
        assert lane.size["height"] > 20 and lane.size["width"] > 300, (host, lane.size)
        assert host in lane.text
    waves = browser.find_elements(By.CSS_SELECTOR, "#waves tr.wave")
    assert [(w.get_attribute("data-wave"), w.get_attribute("data-back")) for w in waves] == [
        ("1", "false"), ("2", "false"), ("1", "true"), ("2", "true")]
    assert all(w.is_displayed() for w in waves)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline .wave-row")) == 4
    halting = browser.find_elements(By.CSS_SELECTOR, ".halting")
    assert len(halting) == 1
    gate = halting[0]
    assert gate.is_displayed()
    assert "halting" in gate.get_attribute("class").split()
    assert gate.get_attribute("data-gate") == "wave-2"
    assert "HALTED HERE" in gate.text and L.HALT_MESSAGE in gate.text
    # marked, not only named: the row is drawn apart from the others
    other = browser.find_element(By.CSS_SELECTOR, "#gates tr.gate:not(.halted)")
    cell = gate.find_element(By.TAG_NAME, "td")
    assert cell.value_of_css_property("background-color") != \
        other.find_element(By.TAG_NAME, "td").value_of_css_property("background-color")
    assert browser.find_element(By.ID, "halt").is_displayed()
    assert browser.find_element(By.ID, "verification").is_displayed()
    assert console_errors(browser) == []


def test_clean_release_renders_without_console_errors(browser, tmp_path):
    load(browser, tmp_path, L.clean(), "release")
    assert console_errors(browser) == []
    lanes = lanes_by_host(browser)
    assert sorted(lanes) == L.HOSTS and all(lane.is_displayed() for lane in lanes.values())
    assert len(browser.find_elements(By.CSS_SELECTOR, "#waves tr.wave")) == 3
    assert browser.find_elements(By.CSS_SELECTOR, ".halting") == []
    assert "Ledger verifies" in browser.find_element(By.ID, "verification").text


def test_killed_release_says_incomplete(browser, tmp_path):
    load(browser, tmp_path, L.killed(), "release")
    assert console_errors(browser) == []
    banner = browser.find_element(By.ID, "incomplete")
    assert banner.is_displayed() and banner.text.startswith("INCOMPLETE: the run stopped recording at 2026-01-02 ")
    assert "(controller killed?)" in banner.text
    lanes = lanes_by_host(browser)
    assert sorted(lanes) == L.HOSTS and all(lane.is_displayed() for lane in lanes.values())


def test_markup_in_the_ledger_is_shown_not_run(browser, tmp_path):
    script = "<script>alert(1)</script>"
    records = L.halted(message=script, extra_vars={"lockstep_allow_partial": True, "lockstep_partial_reason": script})
    load(browser, tmp_path, records, "release")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (reading it is the check)
    assert console_errors(browser) == []
    assert script in browser.find_element(By.CSS_SELECTOR, ".halting").text
    assert script in browser.find_element(By.ID, "halt").text
    assert browser.find_elements(By.TAG_NAME, "script") == []
