"""The jobs page in a real headless browser (Debian's chromium, driven by Selenium): set the
token, submit the bundled example, watch it reach succeeded, open its report."""

from __future__ import annotations

import shutil
import time

import pytest

from api.settings import Settings
from tests.service_helpers import LiveServer, store_url

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no headless browser: apt-get install chromium chromium-driver (.ci/run does)")
TOKEN = "page-secret"


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait_until(check, timeout: float = 180):
    """Poll ``check`` until it returns something true; an element the page redrew meanwhile
    (it redraws the jobs table when a job changes) counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except StaleElementReferenceException:
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise TimeoutError("the page did not get there in time")


def test_submit_watch_and_open_the_report(browser, tmp_path):
    from selenium.webdriver.common.by import By

    settings = Settings(data_dir=tmp_path / "data", database_url=store_url("sqlite", tmp_path),
                        poll_seconds=0.05, device="cpu", auth_tokens=f"pat:{TOKEN}")
    with LiveServer(settings, worker_thread=True) as server:
        browser.get(server.url + "/")
        assert "taskaffinity" in browser.title
        message = browser.find_element(By.ID, "message")
        wait_until(lambda: "401" in message.text)  # no token yet: the page says so
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "save-token").click()
        browser.find_element(By.ID, "example").click()
        assert "builtin: digits" in browser.find_element(By.ID, "taskset").get_attribute("value")
        browser.find_element(By.ID, "submit").click()
        wait_until(lambda: message.text.startswith("submitted job_"))
        job_id = message.text.split()[1]
        seen = set()

        def finished():
            rows = browser.find_elements(By.CSS_SELECTOR, f'tr[data-job="{job_id}"] .status')
            if rows:
                seen.add(rows[0].text)
            return rows and rows[0].text in ("succeeded", "failed")

        wait_until(finished)
        assert "succeeded" in seen, seen
        def open_report():
            browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{job_id}"] a.open').click()
            return True

        wait_until(open_report)
        wait_until(lambda: len(browser.window_handles) == 2)
        browser.switch_to.window(browser.window_handles[1])
        verdict = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "p.verdict"))
        assert verdict[0].text  # the report opened, the verdict first
        assert browser.find_elements(By.CSS_SELECTOR, "img[alt=lookahead]")
        browser.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000


def test_a_bad_task_set_is_explained_on_the_page(browser, tmp_path):
    from selenium.webdriver.common.by import By

    settings = Settings(data_dir=tmp_path / "data", database_url=store_url("sqlite", tmp_path),
                        device="cpu")
    with LiveServer(settings) as server:
        browser.get(server.url + "/")
        box = browser.find_element(By.ID, "taskset")
        box.send_keys("data: {builtin: digits}\ntasks:\n  - {name: a, column: digit_0, "
                      "type: ordinal}\n  - {name: b, column: digit_1, type: binary}\n")
        browser.find_element(By.ID, "submit").click()
        message = browser.find_element(By.ID, "message")
        wait_until(lambda: "422" in message.text)
        assert "tasks[0].type" in message.text
        assert "err" in message.get_attribute("class")


def test_the_jobs_are_on_the_page_at_first_paint(tmp_path):
    """Two jobs exist (queued: no worker runs): the server renders them into the page, so
    they show before any script ran; in the browser with scripts off they are what it
    shows. With auth on, whose jobs is not known before the token: the page asks for it."""
    import httpx
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    settings = Settings(data_dir=tmp_path / "data", database_url=store_url("sqlite", tmp_path),
                        device="cpu")
    job = {"name": "first-paint", "data": {"builtin": "digits"},
           "tasks": [{"name": "a", "column": "digit_0", "type": "binary"},
                     {"name": "b", "column": "digit_1", "type": "binary"}]}
    with LiveServer(settings) as server:
        ids = [httpx.post(server.url + "/v1/jobs", json=job).json()["id"] for _ in range(2)]
        page = httpx.get(server.url + "/").text
        assert all(f'data-job="{i}"' in page for i in ids) and ">queued<" in page
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
            options.add_argument(flag)
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
        try:
            driver.get(server.url + "/")
            driver.save_screenshot(str(tmp_path / "first-paint.png"))
            rows = driver.find_elements(By.CSS_SELECTOR, "tr[data-job]")
            assert sorted(r.get_attribute("data-job") for r in rows) == sorted(ids)
            assert all(r.find_element(By.CSS_SELECTOR, ".status").text == "queued"
                       for r in rows)
            assert driver.find_element(By.ID, "count").text == "(2)"
        finally:
            driver.quit()
    locked = Settings(data_dir=tmp_path / "data", database_url=store_url("sqlite", tmp_path),
                      device="cpu", auth_tokens="pat:secret")
    with LiveServer(locked) as server:
        page = httpx.get(server.url + "/").text
        assert "set your token above to list your jobs" in page and "data-job=" not in page
