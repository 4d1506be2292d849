"""Console pages through the test client on both backends: login, dashboard, review queue (with a
stale form), demand, models, tokens, listen. The browser drives the same pages in test_browser."""

from __future__ import annotations

import os
import shutil

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.console.conftest import add_story, csrf_token_of, login


@pytest.fixture
def client(console_app: Flask, make_operator):
    make_operator()
    test_client = console_app.test_client()
    assert login(test_client).status_code == 302
    return test_client


def test_pages_need_a_login(console_app: Flask) -> None:
    response = console_app.test_client().get("/console/review")
    assert response.status_code == 302
    assert "/console/login?next=" in response.headers["Location"]


def test_wrong_password_is_refused(console_app: Flask, make_operator) -> None:
    make_operator()
    response = login(console_app.test_client(), password="not the password")
    assert response.status_code == 401
    assert "Wrong name or password" in response.get_data(as_text=True)


def test_login_never_redirects_off_site(console_app: Flask, make_operator) -> None:
    make_operator()
    client = console_app.test_client()
    token = csrf_token_of(client.get("/console/login").get_data(as_text=True))
    form = {"name": "olivia", "password": "correct horse battery", "csrf_token": token}
    response = client.post("/console/login", data={**form, "next": "//evil.example/"})
    assert response.headers["Location"] == "/console/"


def test_dashboard_draws_its_charts(client, db_session: Session) -> None:
    add_story(db_session, "Owl", "An owl.", ["owl"], review_status="approved")
    html = client.get("/console/").get_data(as_text=True)
    assert html.count("<svg") == 5
    assert "Stories told per day" in html and "Keywords with the most approved stories" in html
    assert ">owl</text>" in html


def test_review_queue_approves_and_refuses_a_stale_form(client, db_session: Session) -> None:
    story = add_story(db_session, "The Sleepy Owl", "The owl slept.", ["owl"])
    html = client.get("/console/review").get_data(as_text=True)
    assert "The Sleepy Owl" in html and "owl" in html
    token = csrf_token_of(html)
    form = {"csrf_token": token, "revision": str(story.revision), "action": "approve"}
    done = client.post(f"/console/stories/{story.id}/review", data=form, follow_redirects=True)
    assert f"Story {story.id}: approved" in done.get_data(as_text=True)
    db_session.refresh(story)
    assert story.review_status == "approved" and story.reviewed_by == "olivia"
    stale = {**form, "action": "reject", "reason": "late"}
    again = client.post(f"/console/stories/{story.id}/review", data=stale, follow_redirects=True)
    assert "changed while you were reading it" in again.get_data(as_text=True)
    db_session.refresh(story)
    assert story.review_status == "approved"


def test_the_queue_shows_the_oldest_pending_first(client, db_session: Session) -> None:
    from console.pages import QUEUE_PAGE

    for n in range(QUEUE_PAGE + 2):
        add_story(db_session, f"Waiting {n:02d}", f"Story number {n}.", ["owl"])
    html = client.get("/console/review").get_data(as_text=True)
    assert f"{QUEUE_PAGE + 2} pending" in html
    assert "Waiting 00" in html and f"Waiting {QUEUE_PAGE - 1:02d}" in html
    assert f"Waiting {QUEUE_PAGE:02d}" not in html
    assert html.index("Waiting 00") < html.index("Waiting 01")


def test_a_reader_cannot_open_the_review_queue(console_app: Flask, make_operator) -> None:
    make_operator("reader", "read")
    client = console_app.test_client()
    login(client, "reader")
    assert client.get("/console/review").status_code == 403
    assert client.get("/console/stories").status_code == 200


def test_browse_filters(client, db_session: Session) -> None:
    add_story(db_session, "Moon Boat", "A boat.", ["boat"], review_status="approved")
    add_story(db_session, "Sun Kite", "A kite.", ["kite"])
    html = client.get("/console/stories?status=approved").get_data(as_text=True)
    assert "Moon Boat" in html and "Sun Kite" not in html
    html = client.get("/console/stories?keyword=kites").get_data(as_text=True)
    assert "Sun Kite" in html and "Moon Boat" not in html


def test_queue_a_missing_topic(client) -> None:
    token = csrf_token_of(client.get("/console/demand").get_data(as_text=True))
    for _ in range(2):
        page = client.post(
            "/console/demand/queue",
            data={"keywords": "dragons, boat", "csrf_token": token},
            follow_redirects=True,
        )
    html = page.get_data(as_text=True)
    assert "Queued boat + dragon (en-US): asked 2 time(s)" in html
    refused = client.post(
        "/console/demand/queue",
        data={"keywords": "gun", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Not queued" in refused.get_data(as_text=True)


def test_models_page_chooses_the_live_model(client, db_session: Session) -> None:
    from db.generation_jobs import save_model_record

    save_model_record(
        db_session,
        "tiny",
        model_class="gpt2",
        metrics={"perplexity": 9.5},
        hyperparameters={"n_layer": 2},
    )
    db_session.commit()
    html = client.get("/console/models").get_data(as_text=True)
    assert "tiny" in html and "perplexity" in html and "n_layer" in html
    form = {"name": "tiny", "csrf_token": csrf_token_of(html)}
    done = client.post("/console/models/live", data=form, follow_redirects=True)
    assert "tiny now tells the live stories" in done.get_data(as_text=True)


def test_tokens_page_issues_a_working_token(client) -> None:
    html = client.get("/console/tokens").get_data(as_text=True)
    form = {"label": "nightly", "scope": ["read"], "csrf_token": csrf_token_of(html)}
    page = client.post("/console/tokens", data=form).get_data(as_text=True)
    secret = page.split('id="new-token"')[1].split("<code>")[1].split("</code>")[0]
    fresh = client.application.test_client()
    me = fresh.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert me == {"name": "olivia", "scopes": ["read"], "via": "token"}


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None and not os.environ.get("CI"),
    reason="espeak-ng is not installed (CI installs it)",
)
def test_listen_renders_the_story_to_audio(client, db_session: Session) -> None:
    story = add_story(db_session, "Owl & Moon", "The owl said 'hush'.\n\nThe moon smiled.", ["owl"])
    response = client.get(f"/console/stories/{story.id}/audio")
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    wav = response.get_data()
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert len(wav) > 22_050  # over half a second of 22 kHz 16-bit speech
    assert client.get("/console/stories/999999/audio").status_code == 404


def test_story_ssml_keeps_the_skills_pacing() -> None:
    from console.audio import story_ssml

    ssml = story_ssml("One & two.\n\nThree.")
    assert ssml.startswith("<speak><prosody rate=") and "&amp;" in ssml
    assert '<break time="900ms"/>' in ssml
