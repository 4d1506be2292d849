"""Headless Chromium (Debian's chromium + chromium-driver) against a live console, for the browser
tests and for the screenshots in docs/console/.

``python -m tests.console.browser docs/console`` seeds a demo catalogue in a temporary SQLite
store, serves the console on a free port, logs in and saves a PNG of each main page.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
OPERATOR = "olivia"
PASSWORD = "correct horse battery"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
    "--autoplay-policy=no-user-gesture-required",
)


def browser_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium with a fresh profile; Selenium never downloads a driver (SE_OFFLINE)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    profile = tempfile.mkdtemp(prefix="bedtime-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class LiveConsole:
    url: str
    engine: Engine

    def session(self) -> Session:
        from db.engine import session_factory

        return session_factory(self.engine)()


@contextmanager
def live_console(db_path: Path, gate: Any = None) -> Iterator[LiveConsole]:
    """The real app (skill.webapp.create_app, console on) served by Werkzeug in a thread."""
    from werkzeug.serving import make_server

    from db.engine import make_engine, session_factory, upgrade_database
    from settings import Settings
    from skill.services import SkillServices
    from skill.webapp import create_app

    url = f"sqlite:///{db_path}"
    engine = make_engine(url)
    upgrade_database(engine)
    settings = Settings(
        database_url=url,
        verify_requests=False,
        console_enabled=True,
        secret_key="browser-test-" + "s" * 40,
        models_dir=str(db_path.parent / "models"),
    )
    app = create_app(services=SkillServices(settings, engine, session_factory(engine)))
    if gate is not None:
        app.extensions["bedtime_console"].gate = gate
    server = make_server("localhost", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveConsole(f"http://localhost:{server.server_port}", engine)
    finally:
        server.shutdown()
        thread.join(5)
        engine.dispose()


def seed_demo(session: Session) -> dict[str, int]:
    """A small catalogue: approved stories with plays, two pending, demand, a model."""
    from console.auth import hash_password
    from db.generation_jobs import save_model_record
    from db.models import GenerationRequest, PlayHistory, RequestStatus, _utcnow
    from db.store import StoryDraft, add_story, request_generation, save_listener_attributes
    from db.store.operators import add_operator

    add_operator(session, OPERATOR, hash_password(PASSWORD), "admin")
    model = save_model_record(
        session,
        "demo-storyteller",
        model_class="SmolLM2-135M-Instruct (LoRA)",
        hyperparameters={"epochs": 2, "lora_rank": 16, "learning_rate": 0.0002},
        metrics={"demo_figure": 1.0, "note": "seeded demo data, not a measurement"},
    )
    approved = []
    topics = [["owl"], ["moon", "boat"], ["dragon"], ["bunny"], ["owl", "moon"], ["kite"]]
    for n, words in enumerate(topics):
        story = add_story(
            session,
            StoryDraft(
                title=f"The {' and the '.join(w.title() for w in words)}",
                text=f"Once upon a time there was a {' and a '.join(words)}.\n\n"
                "They watched the stars together, and soon they were fast asleep.",
                keywords=words,
                review_status="approved",
                source="generated" if n % 2 else "handwritten",
                model_id=model.id if n % 2 else None,
                safety_verdict="ok",
            ),
        )
        approved.append(story)
    pending = [
        add_story(
            session,
            StoryDraft(
                title=title,
                text=text,
                keywords=words,
                source="generated",
                model_id=model.id,
                safety_verdict="ok",
            ),
        )
        for title, text, words in [
            (
                "The Sleepy Lighthouse",
                "The lighthouse blinked slowly.\n\nThe boats came home, and the sea hushed.",
                ["lighthouse", "boat"],
            ),
            (
                "Pip the Little Cloud",
                "Pip drifted over the hills.\n\nAt night Pip tucked the moon in.",
                ["cloud", "moon"],
            ),
        ]
    ]
    listener = "amzn1.ask.account.DEMO"
    save_listener_attributes(session, listener, {})
    from db.store import hash_listener_id

    now = _utcnow()
    for day in range(14):
        for n in range((day * 7) % 5 + 1):
            session.add(
                PlayHistory(
                    listener_key=hash_listener_id(listener),
                    story_id=approved[n % len(approved)].id,
                    played_at=now - timedelta(days=day, minutes=n),
                )
            )
    for words, asks in ((["dinosaur"], 5), (["train", "moon"], 3), (["penguin"], 2)):
        for _ in range(asks):
            request_generation(session, words, "en-US")
    failed = request_generation(session, ["volcano"], "en-US")
    failed.status = RequestStatus.FAILED.value
    failed.last_error = "the storyteller's story did not use the keyword"
    session.flush()
    assert isinstance(failed, GenerationRequest)
    session.commit()
    return {"pending": pending[0].id, "failed_topic": failed.id}


def log_in(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/console/")
    driver.find_element(By.ID, "name").send_keys(OPERATOR)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    driver.find_element(By.ID, "figures")  # the dashboard (waits up to the implicit wait)


PAGES = {
    "login": "/console/login",
    "dashboard": "/console/",
    "review": "/console/review",
    "stories": "/console/stories",
    "demand": "/console/demand",
    "models": "/console/models",
}


def full_page_png(driver: Any, max_height: int = 2400) -> bytes:
    """The whole page (not just the window), through the DevTools protocol."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height)}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**clip, "scale": 1}},
    )
    return base64.b64decode(shot["data"])


def screenshots(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    with tempfile.TemporaryDirectory() as tmp, live_console(Path(tmp) / "demo.sqlite3") as live:
        with live.session() as session:
            ids = seed_demo(session)
        with chromium() as driver:
            driver.get(live.url + PAGES["login"])
            driver.save_screenshot(str(out_dir / "login.png"))
            log_in(driver, live.url)
            for name, path in [*PAGES.items(), ("story", f"/console/stories/{ids['pending']}")]:
                if name == "login":
                    continue
                driver.get(live.url + path)
                target = out_dir / f"{name}.png"
                target.write_bytes(full_page_png(driver))
                saved.append(target)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path, nargs="?", default=Path("docs/console"))
    for path in screenshots(parser.parse_args().out_dir):
        print(path)


if __name__ == "__main__":
    main()
