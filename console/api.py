"""``/api/v1``: the store over HTTP for scripts (bearer tokens) and the console (cookie + CSRF).

Each view's docstring carries its OpenAPI operation after ``---``; :mod:`console.openapi` builds
the document from these views and the pydantic bodies, so the spec cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from console.auth import api_requires, current_principal
from console.context import context, store
from console.problems import ApiProblem
from console.schemas import GenerationRequestCreate, Review, StoryCreate, SynonymCreate
from console.views import (
    keyword_json,
    page_args,
    paged,
    parse_body,
    request_json,
    review_json,
    story_etag,
    story_json,
)
from db import store as catalogue
from db.generation_jobs import story_exists
from db.models import Keyword, RequestStatus, ReviewStatus, Story, StorySource
from db.store import overview
from db.store.queue import RedirectedRequest
from db.store.reviews import FlaggedStory

api = Blueprint("api", __name__, url_prefix="/api/v1")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _story_or_404(story_id: int) -> Story:
    story = store().get(Story, story_id)
    if story is None:
        raise ApiProblem(404, "no-such-story", "Not Found", f"no story with id {story_id}")
    return story


def _choice(name: str, allowed: list[str]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise ApiProblem(400, "bad-filter", "Bad Request", f"{name} must be one of {allowed}")
    return value


@api.get("/me")
@api_requires("read")
def me() -> Response:
    """Who the credentials belong to.
    ---
    get:
      tags: [access]
      responses:
        200: {description: "name, scopes and how you signed in"}
        401: {$ref: "#/components/responses/Problem"}
    """
    principal = current_principal()
    assert principal is not None
    return json_response(
        {"name": principal.name, "scopes": sorted(principal.scopes), "via": principal.via}
    )


@api.get("/stories")
@api_requires("read")
def list_stories() -> Response:
    """Stories, newest first, filtered.
    ---
    get:
      tags: [stories]
      parameters:
        - {name: keyword, in: query, schema: {type: string}}
        - name: status
          in: query
          schema: {type: string, enum: [pending, approved, rejected, withdrawn]}
        - name: source
          in: query
          schema: {type: string, enum: [generated, imported, handwritten]}
        - {name: model, in: query, schema: {type: string}}
        - {name: verdict, in: query, schema: {type: string, enum: [ok, flagged, unchecked]}}
        - {name: q, in: query, description: "words in the title", schema: {type: string}}
        - page
        - per_page
      responses:
        200: {description: "a page of stories (Link header to the next page)"}
        400: {$ref: "#/components/responses/Problem"}
        401: {$ref: "#/components/responses/Problem"}
    """
    page = page_args()
    wanted = overview.StoryFilter(
        keyword=request.args.get("keyword") or None,
        status=_choice("status", [s.value for s in ReviewStatus]),
        source=_choice("source", [s.value for s in StorySource]),
        model=request.args.get("model") or None,
        verdict=_choice("verdict", list(overview.VERDICTS)),
        text=request.args.get("q") or None,
    )
    stories, total = overview.find_stories(store(), wanted, offset=page.offset, limit=page.size)
    body, headers = paged([story_json(s, full=False) for s in stories], page, total)
    return json_response(body, headers=headers)


@api.get("/stories/<int:story_id>")
@api_requires("read")
def get_story(story_id: int) -> Response:
    """One story with its safety review trail; the ETag names its revision.
    ---
    get:
      tags: [stories]
      parameters: [{name: story_id, in: path, required: true, schema: {type: integer}}]
      responses:
        200: {description: "the story; send its ETag back as If-Match when reviewing"}
        404: {$ref: "#/components/responses/Problem"}
    """
    story = _story_or_404(story_id)
    body = story_json(story)
    body["safety_reviews"] = [review_json(r) for r in catalogue.reviews_of(store(), story_id)]
    return json_response(body, headers={"ETag": story_etag(story)})


@api.post("/stories")
@api_requires("review")
def create_story() -> Response:
    """Add a story; it is stored only if the safety gate passes it.
    ---
    post:
      tags: [stories]
      requestBody:
        required: true
        content: {application/json: {schema: StoryCreate}}
      responses:
        201: {description: "stored; Location and ETag headers"}
        409: {$ref: "#/components/responses/Problem"}
        422: {$ref: "#/components/responses/Problem"}
    """
    body = parse_body(StoryCreate)
    session = store()
    if story_exists(session, body.title, body.text):
        raise ApiProblem(409, "duplicate-story", "Conflict", "this story is already stored")
    draft = catalogue.StoryDraft(
        title=body.title,
        text=body.text,
        keywords=body.keywords,
        locale=body.locale,
        source=body.source,
        review_status=ReviewStatus.PENDING.value,
    )
    verdict, _action = catalogue.gate_drafts([draft], gate=context().gate)[0]
    if not verdict.ok:
        raise ApiProblem(
            422,
            "unsafe-story",
            "Unprocessable Content",
            f"the safety gate refused the story: {verdict.reason}",
            safety=verdict.as_dict(),
        )
    draft.safety = verdict.as_dict()
    draft.review_status = body.status
    story = catalogue.add_story(session, draft)
    principal = current_principal()
    if body.status == ReviewStatus.APPROVED and principal is not None:
        story.reviewed_by = principal.name
    session.commit()
    return json_response(
        story_json(story),
        201,
        {
            "Location": url_for("api.get_story", story_id=story.id),
            "ETag": story_etag(story),
        },
    )


@api.post("/stories/<int:story_id>/review")
@api_requires("review")
def review_story(story_id: int) -> Response:
    """Approve, reject or withdraw; If-Match (the story's ETag) is required.
    ---
    post:
      tags: [stories]
      parameters:
        - {name: story_id, in: path, required: true, schema: {type: integer}}
        - {name: If-Match, in: header, required: true, schema: {type: string}}
      requestBody:
        required: true
        content: {application/json: {schema: Review}}
      responses:
        200: {description: "the reviewed story with its new ETag"}
        409: {$ref: "#/components/responses/Problem"}
        412: {$ref: "#/components/responses/Problem"}
        428: {$ref: "#/components/responses/Problem"}
    """
    body = parse_body(Review)
    session = store()
    story = _story_or_404(story_id)
    seen = request.if_match
    if not seen or seen.star_tag:
        raise ApiProblem(
            428,
            "if-match-required",
            "Precondition Required",
            "send the story's ETag in If-Match so concurrent reviews cannot overwrite each other",
        )
    if not seen.contains_weak(story_etag(story).strip('"')):
        raise ApiProblem(
            412,
            "story-changed",
            "Precondition Failed",
            "the story changed since you loaded it; reload it and review again",
            current_etag=story_etag(story),
        )
    principal = current_principal()
    assert principal is not None
    if body.force and not principal.may("admin"):
        raise ApiProblem(403, "insufficient-scope", "Forbidden", "force needs the admin scope")
    try:
        overview.review_by_person(
            session,
            story_id,
            body.action,
            reviewer=principal.name,
            seen_revision=story.revision,
            reason=body.reason,
            force=body.force,
            gate=context().gate,
        )
    except overview.StaleStory as exc:
        session.rollback()
        raise ApiProblem(412, "story-changed", "Precondition Failed", str(exc)) from None
    except FlaggedStory as exc:
        session.commit()  # the verdict stays on the story's trail
        raise ApiProblem(
            409,
            "unsafe-story",
            "Conflict",
            str(exc),
            safety=exc.verdict.as_dict(),
            current_etag=story_etag(story),
        ) from None
    except ValueError as exc:
        raise ApiProblem(422, "invalid-review", "Unprocessable Content", str(exc)) from None
    session.commit()
    return json_response(story_json(story), headers={"ETag": story_etag(story)})


@api.get("/keywords")
@api_requires("read")
def list_keywords() -> Response:
    """Keywords with their approved-story counts and synonyms.
    ---
    get:
      tags: [keywords]
      parameters:
        - page
        - per_page
      responses:
        200: {description: "a page of keywords, most covered first"}
    """
    page = page_args()
    session = store()
    total = session.scalar(select(func.count()).select_from(Keyword)) or 0
    rows = session.scalars(
        select(Keyword)
        .options(selectinload(Keyword.synonyms))
        .order_by(Keyword.story_count.desc(), Keyword.lemma)
        .offset(page.offset)
        .limit(page.size)
    ).all()
    body, headers = paged([keyword_json(k) for k in rows], page, total)
    return json_response(body, headers=headers)


@api.post("/keywords/<lemma>/synonyms")
@api_requires("review")
def add_synonym(lemma: str) -> Response:
    """Make another word resolve to this keyword ("kitty" -> cat).
    ---
    post:
      tags: [keywords]
      parameters: [{name: lemma, in: path, required: true, schema: {type: string}}]
      requestBody:
        required: true
        content: {application/json: {schema: SynonymCreate}}
      responses:
        201: {description: "the keyword with its synonyms"}
        422: {$ref: "#/components/responses/Problem"}
    """
    body = parse_body(SynonymCreate)
    session = store()
    try:
        synonym = catalogue.add_synonym(session, lemma, body.synonym)
    except ValueError as exc:
        raise ApiProblem(422, "invalid-synonym", "Unprocessable Content", str(exc)) from None
    session.commit()
    session.refresh(synonym.keyword)
    return json_response(keyword_json(synonym.keyword), 201)


@api.get("/demand")
@api_requires("read")
def list_demand() -> Response:
    """What listeners asked for that the catalogue lacked, most asked first.
    ---
    get:
      tags: [demand]
      parameters:
        - name: status
          in: query
          schema: {type: string, enum: [pending, claimed, done, failed]}
        - page
        - per_page
      responses:
        200: {description: "a page of requested topics with their demand counts"}
    """
    page = page_args()
    status = _choice("status", [s.value for s in RequestStatus])
    rows, total = overview.demand(store(), status, offset=page.offset, limit=page.size)
    body, headers = paged([request_json(r) for r in rows], page, total)
    return json_response(body, headers=headers)


@api.post("/generation-requests")
@api_requires("review")
def queue_generation() -> Response:
    """Queue stories about some keywords for the next `bedtime generate` run.
    ---
    post:
      tags: [demand]
      requestBody:
        required: true
        content: {application/json: {schema: GenerationRequestCreate}}
      responses:
        202: {description: "queued (or its demand raised by one)"}
        422: {$ref: "#/components/responses/Problem"}
    """
    body = parse_body(GenerationRequestCreate)
    session = store()
    try:
        wish = catalogue.request_generation(session, body.keywords, body.locale)
    except RedirectedRequest as exc:
        raise ApiProblem(422, "redirected-topic", "Unprocessable Content", str(exc)) from None
    except ValueError as exc:
        raise ApiProblem(422, "invalid-request", "Unprocessable Content", str(exc)) from None
    session.commit()
    return json_response(request_json(wish), 202)


@api.get("/stats")
@api_requires("read")
def stats() -> Response:
    """The catalogue in numbers, and plays / new stories / new topics per day (30 days).
    ---
    get:
      tags: [catalogue]
      responses:
        200: {description: "counts by status, source, keywords, demand and per-day series"}
    """
    session = store()
    body = overview.catalogue_stats(session)
    body["per_day"] = {
        name: [{"day": day.isoformat(), "count": count} for day, count in series]
        for name, series in (
            ("plays", overview.plays_per_day(session)),
            ("stories", overview.stories_per_day(session)),
            ("new_topics", overview.new_demand_per_day(session)),
        )
    }
    return json_response(body)
