"""The REST API on SQLite and MariaDB: access (401/403/CSRF), reviews with ETags (412/428),
problem bodies (RFC 9457), filters and pages, creation through the safety gate, demand, stats."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.console.conftest import add_story, csrf_token_of, login

PROBLEM = "application/problem+json"


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    assert body["type"].endswith("/" + slug)
    assert body["title"] and body["instance"] == response.request.path
    return body


# --------------------------------------------------------------------------- access


def test_no_credentials_is_401_with_a_bearer_challenge(console_app: Flask) -> None:
    response = console_app.test_client().get("/api/v1/stories")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_or_revoked_token_is_401(
    console_app: Flask, db_session: Session, make_token
) -> None:
    from db.store import operators

    client = console_app.test_client()
    assert_problem(client.get("/api/v1/me", headers=bearer("bt_nope")), 401, "unauthorized")
    token = make_token("read")
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    row = operators.token_for(db_session, token)
    operators.revoke_token(db_session, row.operator, row.id)
    db_session.commit()
    assert_problem(client.get("/api/v1/me", headers=bearer(token)), 401, "unauthorized")


def test_tokens_are_stored_hashed_and_cannot_exceed_the_role(
    db_session: Session, make_operator
) -> None:
    from db.models import ApiToken
    from db.store import operators

    reader = make_operator("rita", "read")
    issued = operators.issue_token(db_session, reader, "mine", {"read"})
    stored = db_session.get(ApiToken, issued.id)
    assert issued.secret not in stored.token_hash and len(stored.token_hash) == 64
    with pytest.raises(ValueError):
        operators.issue_token(db_session, reader, "more", {"review"})


def test_wrong_scope_is_403(console_app: Flask, db_session: Session, make_token) -> None:
    story = add_story(db_session, "A Quiet Boat", "The boat rocked softly.", ["boat"])
    client = console_app.test_client()
    token = make_token("read")
    etag = client.get(f"/api/v1/stories/{story.id}", headers=bearer(token)).headers["ETag"]
    response = client.post(
        f"/api/v1/stories/{story.id}/review",
        json={"action": "approve"},
        headers=bearer(token, **{"If-Match": etag}),
    )
    body = assert_problem(response, 403, "insufficient-scope")
    assert body["required_scope"] == "review"
    upload = client.put(
        "/api/v1/live-model", json={"name": "x"}, headers=bearer(make_token("review", name="rev"))
    )
    assert_problem(upload, 403, "insufficient-scope")


def test_a_cookie_write_without_csrf_is_403(console_app: Flask, make_operator) -> None:
    make_operator()
    client = console_app.test_client()
    assert login(client).status_code == 302
    wish = {"keywords": ["kite"]}
    refused = client.post("/api/v1/generation-requests", json=wish)
    assert_problem(refused, 403, "csrf")
    token = csrf_token_of(client.get("/console/demand").get_data(as_text=True))
    accepted = client.post("/api/v1/generation-requests", json=wish, headers={"X-CSRFToken": token})
    assert accepted.status_code == 202
    # Reading with the cookie needs no CSRF token.
    assert client.get("/api/v1/me").get_json()["via"] == "session"


def test_console_forms_need_csrf_too(console_app: Flask, make_operator) -> None:
    make_operator()
    client = console_app.test_client()
    login(client)
    response = client.post("/console/demand/queue", data={"keywords": "kite"})
    assert response.status_code == 403
    assert "expired" in response.get_data(as_text=True)


def test_logins_are_throttled_after_repeated_failures(console_app: Flask, make_operator) -> None:
    from db.store.operators import MAX_LOGIN_FAILURES

    make_operator()
    client = console_app.test_client()
    for _ in range(MAX_LOGIN_FAILURES):
        assert login(client, password="wrong password!").status_code == 401
    blocked = login(client)  # even the right password waits now
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed logins" in blocked.get_data(as_text=True)


def test_session_cookie_is_httponly_samesite_and_secure_by_default(
    db_engine, store_session, make_operator
) -> None:
    from skill.services import SkillServices
    from skill.webapp import create_app
    from tests.console.conftest import console_settings

    settings = console_settings(console_secure_cookies=True)
    app = create_app(services=SkillServices(settings, db_engine, store_session))
    make_operator()
    response = login(app.test_client())
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_console_is_off_unless_enabled_and_needs_a_secret(db_engine, store_session) -> None:
    from settings import ConfigurationError
    from skill.services import SkillServices
    from skill.webapp import create_app
    from tests.console.conftest import console_settings

    off = create_app(
        services=SkillServices(console_settings(console_enabled=False), db_engine, store_session)
    )
    assert off.test_client().get("/api/v1/me").status_code == 404
    assert off.test_client().get("/console/login").status_code == 404
    with pytest.raises(ConfigurationError, match="BEDTIME_SECRET_KEY"):
        create_app(
            services=SkillServices(console_settings(secret_key=None), db_engine, store_session)
        )


def test_the_alexa_endpoint_is_untouched_by_csrf(console_app: Flask) -> None:
    response = console_app.test_client().post("/alexa", data="not json")
    assert response.status_code == 400  # the skill's own answer, not a CSRF 403
    assert "Set-Cookie" not in response.headers


# --------------------------------------------------------------------------- reviews


def _review(client, story_id: int, token: str, etag: str | None, **body: Any):
    headers = bearer(token) if etag is None else bearer(token, **{"If-Match": etag})
    return client.post(f"/api/v1/stories/{story_id}/review", json=body, headers=headers)


def test_concurrent_reviews_the_second_gets_412(
    console_app: Flask, db_session: Session, make_token
) -> None:
    story = add_story(db_session, "The Sleepy Owl", "The owl yawned and slept.", ["owl"])
    alice, bob = make_token("review", name="alice"), make_token("review", name="bob")
    client = console_app.test_client()
    seen_by_alice = client.get(f"/api/v1/stories/{story.id}", headers=bearer(alice)).headers["ETag"]
    seen_by_bob = client.get(f"/api/v1/stories/{story.id}", headers=bearer(bob)).headers["ETag"]
    assert seen_by_alice == seen_by_bob
    first = _review(client, story.id, alice, seen_by_alice, action="approve")
    assert first.status_code == 200 and first.get_json()["status"] == "approved"
    assert first.headers["ETag"] != seen_by_alice
    second = _review(client, story.id, bob, seen_by_bob, action="reject", reason="too short")
    body = assert_problem(second, 412, "story-changed")
    assert body["current_etag"] == first.headers["ETag"]
    after = client.get(f"/api/v1/stories/{story.id}", headers=bearer(bob)).get_json()
    assert after["status"] == "approved" and after["reviewed_by"] == "alice"


def test_review_without_if_match_is_428(
    console_app: Flask, db_session: Session, make_token
) -> None:
    story = add_story(db_session, "A Warm Bed", "The bed was warm.", ["bed"])
    response = _review(
        console_app.test_client(), story.id, make_token("review"), None, action="approve"
    )
    assert_problem(response, 428, "if-match-required")


def test_a_racing_update_is_caught_by_the_revision_check(
    db_session: Session, store_session
) -> None:
    """Both reviewers passed the ETag check; the UPDATE ... WHERE revision still refuses one."""
    from db.store import overview

    story = add_story(db_session, "The Moon Cat", "The cat watched the moon.", ["cat", "moon"])
    first_seen = story.revision
    other = store_session()
    other_copy = other.get(type(story), story.id)
    overview.review_by_person(
        other, story.id, "reject", reviewer="bob", seen_revision=first_seen, reason="no"
    )
    other.commit()
    assert other_copy.revision > first_seen
    with pytest.raises(overview.StaleStory):
        overview.review_by_person(
            db_session, story.id, "withdraw", reviewer="alice", seen_revision=first_seen, reason="x"
        )
    other.close()


def test_approval_goes_through_the_gate_and_force_needs_admin(
    console_app: Flask, db_session: Session, make_token
) -> None:
    story = add_story(db_session, "The Monster Party", "A monster came to tea.", ["monster"])
    client = console_app.test_client()
    reviewer = make_token("review", name="rev", role="review")
    etag = client.get(f"/api/v1/stories/{story.id}", headers=bearer(reviewer)).headers["ETag"]
    flagged = _review(client, story.id, reviewer, etag, action="approve")
    body = assert_problem(flagged, 409, "unsafe-story")
    assert body["safety"]["ok"] is False
    etag = body["current_etag"]  # the verdict was recorded on the trail: a new revision
    assert_problem(
        _review(client, story.id, reviewer, etag, action="approve", force=True),
        403,
        "insufficient-scope",
    )
    admin = make_token("read", "review", "admin", name="ada")
    forced = _review(client, story.id, admin, etag, action="approve", force=True)
    assert forced.status_code == 200 and forced.get_json()["status"] == "approved"
    trail = client.get(f"/api/v1/stories/{story.id}", headers=bearer(admin)).get_json()[
        "safety_reviews"
    ]
    assert [r["action"] for r in trail] == ["checked", "forced"]


def test_reject_and_withdraw_need_a_reason(
    console_app: Flask, db_session: Session, make_token
) -> None:
    story = add_story(db_session, "Stars", "The stars came out.", ["star"])
    token = make_token("review")
    client = console_app.test_client()
    etag = client.get(f"/api/v1/stories/{story.id}", headers=bearer(token)).headers["ETag"]
    assert_problem(_review(client, story.id, token, etag, action="reject"), 422, "invalid-review")
    assert_problem(_review(client, story.id, token, etag, action="nap"), 422, "invalid-body")
    done = _review(client, story.id, token, etag, action="withdraw", reason="duplicate of 3")
    assert done.get_json()["status"] == "withdrawn"
    assert done.get_json()["rejection_reason"] == "duplicate of 3"


# --------------------------------------------------------------------------- stories


def test_list_filters_and_pages(console_app: Flask, db_session: Session, make_token) -> None:
    for n in range(5):
        add_story(db_session, f"Boat {n}", f"Boat story number {n}.", ["boat"])
    add_story(db_session, "Owl", "An owl story.", ["owl"], review_status="approved")
    token = make_token("read")
    client = console_app.test_client()
    page = client.get("/api/v1/stories?keyword=boats&per_page=2", headers=bearer(token))
    body = page.get_json()
    assert body["total"] == 5 and len(body["items"]) == 2 and body["page"] == 1
    assert 'rel="next"' in page.headers["Link"] and "keyword=boats" in page.headers["Link"]
    assert [s["title"] for s in body["items"]] == ["Boat 4", "Boat 3"]
    approved = client.get("/api/v1/stories?status=approved", headers=bearer(token)).get_json()
    assert [s["title"] for s in approved["items"]] == ["Owl"]
    unchecked = client.get("/api/v1/stories?verdict=unchecked&q=Boat", headers=bearer(token))
    assert unchecked.get_json()["total"] == 5
    assert_problem(
        client.get("/api/v1/stories?status=lost", headers=bearer(token)), 400, "bad-filter"
    )
    assert_problem(
        client.get("/api/v1/stories?per_page=500", headers=bearer(token)), 400, "bad-page"
    )
    assert_problem(
        client.get("/api/v1/stories/999999", headers=bearer(token)), 404, "no-such-story"
    )


def test_create_goes_through_the_gate(console_app: Flask, make_token) -> None:
    token = make_token("review")
    client = console_app.test_client()
    story = {"title": "The Kind Fox", "text": "The fox shared her berries.", "keywords": ["foxes"]}
    created = client.post("/api/v1/stories", json=story, headers=bearer(token))
    assert created.status_code == 201
    body = created.get_json()
    assert (
        body["status"] == "pending"
        and body["keywords"] == ["fox"]
        and body["safety_verdict"] == "ok"
    )
    assert created.headers["Location"].endswith(f"/api/v1/stories/{body['id']}")
    assert_problem(
        client.post("/api/v1/stories", json=story, headers=bearer(token)), 409, "duplicate-story"
    )
    scary = {"title": "Night", "text": "A monster hid under the bed.", "keywords": ["bed"]}
    refused = assert_problem(
        client.post("/api/v1/stories", json=scary, headers=bearer(token)), 422, "unsafe-story"
    )
    assert "monster" in refused["detail"]
    bad = client.post("/api/v1/stories", json={"title": "", "keywords": []}, headers=bearer(token))
    fields = {e["field"] for e in assert_problem(bad, 422, "invalid-body")["errors"]}
    assert {"title", "text", "keywords"} <= fields
    not_json = client.post("/api/v1/stories", data="title=x", headers=bearer(token))
    assert_problem(not_json, 415, "not-json")


# --------------------------------------------------------------------------- keywords, demand


def test_keywords_and_synonyms(console_app: Flask, db_session: Session, make_token) -> None:
    add_story(db_session, "Bunny", "The bunny hopped.", ["bunny"], review_status="approved")
    client = console_app.test_client()
    token = make_token("review")
    added = client.post(
        "/api/v1/keywords/bunny/synonyms", json={"synonym": "bunny rabbit"}, headers=bearer(token)
    )
    assert added.status_code == 201 and added.get_json()["synonyms"] == ["bunny rabbit"]
    listed = client.get("/api/v1/keywords", headers=bearer(token)).get_json()
    assert listed["items"][0] == {
        "lemma": "bunny",
        "approved_stories": 1,
        "synonyms": ["bunny rabbit"],
    }
    stories = client.get("/api/v1/stories?keyword=bunny%20rabbit", headers=bearer(token)).get_json()
    assert stories["total"] == 1
    same = client.post(
        "/api/v1/keywords/bunny/synonyms", json={"synonym": "bunnies"}, headers=bearer(token)
    )
    assert_problem(same, 422, "invalid-synonym")


def test_queue_generation_and_read_demand(console_app: Flask, make_token) -> None:
    client = console_app.test_client()
    token = make_token("review")
    for _ in range(2):
        queued = client.post(
            "/api/v1/generation-requests",
            json={"keywords": ["dragons", "boat"]},
            headers=bearer(token),
        )
    assert queued.status_code == 202
    assert queued.get_json()["keywords"] == ["boat", "dragon"] and queued.get_json()["demand"] == 2
    demand = client.get("/api/v1/demand?status=pending", headers=bearer(token)).get_json()
    assert demand["items"][0]["demand"] == 2 and demand["total"] == 1
    redirected = client.post(
        "/api/v1/generation-requests", json={"keywords": ["gun"]}, headers=bearer(token)
    )
    assert_problem(redirected, 422, "redirected-topic")


def test_stats_count_the_catalogue(console_app: Flask, db_session: Session, make_token) -> None:
    add_story(db_session, "One", "One story.", ["sun"], review_status="approved")
    add_story(db_session, "Two", "Two stories.", ["sun"])
    body = (
        console_app.test_client()
        .get("/api/v1/stats", headers=bearer(make_token("read")))
        .get_json()
    )
    assert body["stories"]["total"] == 2
    assert body["stories"]["by_status"] == {"approved": 1, "pending": 1}
    assert body["keywords"] == {"total": 1, "with_approved_stories": 1}
    assert len(body["per_day"]["plays"]) == 30
    assert body["per_day"]["stories"][-1]["count"] == 2


def test_unknown_api_paths_and_methods_are_problems(console_app: Flask, make_token) -> None:
    client = console_app.test_client()
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not-found")
    wrong = client.delete("/api/v1/stats", headers=bearer(make_token("read")))
    assert_problem(wrong, 405, "method-not-allowed")
    assert "GET" in wrong.headers["Allow"]


def test_openapi_document_lists_every_api_route(console_app: Flask) -> None:
    spec = console_app.test_client().get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routed = {
        (rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}"), method)
        for rule in console_app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == routed
    review = spec["paths"]["/api/v1/stories/{story_id}/review"]["post"]
    assert review["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Review"
    )
    assert "Review" in spec["components"]["schemas"]
