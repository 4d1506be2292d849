"""The console in a real browser: headless Debian Chromium driven by Selenium.

Logs in, reviews stories from the queue by keyboard and by button, queues a missing topic, sees
the dashboard's charts drawn, and listens to a story. Needs ``chromium`` and ``chromium-driver``
(installed by .ci/run); skipped without them outside CI, a failure in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db.models import GenerationRequest, Story
from tests.console import browser
from tests.console.conftest import stand_in_gate

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not browser.browser_available() and not os.environ.get("CI"),
        reason="chromium and chromium-driver are not installed (apt-get install -y chromium "
        "chromium-driver); CI installs them",
    ),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[browser.LiveConsole, dict]]:
    db_path = tmp_path_factory.mktemp("browser") / "console.sqlite3"
    with browser.live_console(db_path, gate=stand_in_gate) as console:
        with console.session() as session:
            ids = browser.seed_demo(session)
        yield console, ids


@pytest.fixture(scope="module")
def driver(live: tuple[browser.LiveConsole, dict]) -> Iterator[Any]:
    with browser.chromium() as chrome:
        browser.log_in(chrome, live[0].url)
        yield chrome


def wait_for_next_page(driver: Any, element_on_old_page: Any) -> None:
    """After a form post: wait until the old page is gone (then look at the new one)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(element_on_old_page))


def test_login_lands_on_the_dashboard_with_charts(driver: Any, live: Any) -> None:
    from selenium.webdriver.common.by import By

    driver.get(live[0].url + "/console/")
    charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 5
    for chart in charts:  # really laid out, not just present in the HTML
        assert chart.size["width"] > 300 and chart.size["height"] > 50
    bars = driver.find_elements(By.CSS_SELECTOR, "#charts svg.chart rect")
    assert sum(1 for bar in bars if float(bar.get_attribute("height")) > 0) >= 10
    assert "2\nwaiting for review" in driver.find_element(By.ID, "figures").text


def test_review_from_the_queue_by_keyboard_and_button(driver: Any, live: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    console, ids = live
    driver.get(console.url + "/console/review")
    first = driver.find_element(By.CSS_SELECTOR, "li.story.current")
    assert first.get_attribute("id") == f"story-{ids['pending']}"
    assert "boat, lighthouse" in first.text and "demo-storyteller" in first.text
    driver.find_element(By.TAG_NAME, "body").send_keys("a")  # approve the selected story
    wait_for_next_page(driver, first)
    flash = driver.find_element(By.CSS_SELECTOR, ".flash.ok").text
    assert flash == f"Story {ids['pending']}: approved."
    remaining = driver.find_element(By.CSS_SELECTOR, "li.story")
    remaining.find_element(By.CSS_SELECTOR, "form.reject input[name=reason]").send_keys(
        "too short for bedtime", Keys.ENTER
    )
    wait_for_next_page(driver, remaining)
    assert "rejected" in driver.find_element(By.CSS_SELECTOR, ".flash.ok").text
    assert driver.find_element(By.ID, "queue-empty")
    with console.session() as session:
        approved = session.get(Story, ids["pending"])
        assert approved.review_status == "approved" and approved.reviewed_by == "olivia"
        rejected = session.get(Story, ids["pending"] + 1)
        assert rejected.review_status == "rejected"
        assert rejected.rejection_reason == "too short for bedtime"


def test_queue_a_missing_topic(driver: Any, live: Any) -> None:
    from selenium.webdriver.common.by import By

    console, ids = live
    driver.get(console.url + "/console/demand")
    row = driver.find_element(By.ID, f"topic-{ids['failed_topic']}")
    assert row.find_element(By.CSS_SELECTOR, ".status").text == "failed"
    row.find_element(By.CSS_SELECTOR, "button.queue").click()
    wait_for_next_page(driver, row)
    assert "Queued volcano (en-US)" in driver.find_element(By.CSS_SELECTOR, ".flash.ok").text
    row = driver.find_element(By.ID, f"topic-{ids['failed_topic']}")
    assert row.find_element(By.CSS_SELECTOR, ".status").text == "pending"
    with console.session() as session:
        assert session.get(GenerationRequest, ids["failed_topic"]).status == "pending"


def test_listen_plays_the_story(driver: Any, live: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    console, ids = live
    driver.get(f"{console.url}/console/stories/{ids['pending']}")
    driver.find_element(By.ID, "listen").click()
    duration = WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "var p = document.getElementById('player'); return p.duration > 0 && p.duration;"
        )
    )
    assert duration > 1.0  # seconds of espeak-ng speech, decoded by the browser


def test_screenshots_helper_writes_every_page(tmp_path: Path) -> None:
    saved = browser.screenshots(tmp_path)
    assert {p.stem for p in saved} == {
        "dashboard",
        "review",
        "stories",
        "demand",
        "models",
        "story",
    }
    assert (tmp_path / "login.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(p.stat().st_size > 10_000 for p in saved)
