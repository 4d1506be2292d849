"""Store rows as JSON-ready dicts, and the query-string helpers the API shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from console.problems import ApiProblem
from db.models import GenerationRequest, Keyword, ModelRecord, SafetyReview, Story

MAX_PER_PAGE = 200
Body = TypeVar("Body", bound=BaseModel)


def _when(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def story_etag(story: Story) -> str:
    return f'"story-{story.id}-r{story.revision}"'


def story_json(story: Story, *, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": story.id,
        "title": story.title,
        "keywords": story.keyword_lemmas,
        "locale": story.locale,
        "source": story.source,
        "model": story.model.name if story.model is not None else None,
        "status": story.review_status,
        "safety_verdict": story.safety_verdict,
        "rejection_reason": story.rejection_reason,
        "word_count": story.word_count,
        "revision": story.revision,
        "created_at": _when(story.created_at),
        "reviewed_by": story.reviewed_by,
        "reviewed_at": _when(story.reviewed_at),
    }
    if full:
        body["text"] = story.text
        body["quality"] = story.quality
        body["requested_keywords"] = story.requested_keywords
    return body


def review_json(review: SafetyReview) -> dict[str, Any]:
    return {
        "ok": review.ok,
        "action": review.action,
        "checker": review.checker,
        "reasons": review.reasons,
        "at": _when(review.created_at),
    }


def keyword_json(keyword: Keyword) -> dict[str, Any]:
    return {
        "lemma": keyword.lemma,
        "approved_stories": keyword.story_count,
        "synonyms": sorted(s.synonym for s in keyword.synonyms),
    }


def request_json(wish: GenerationRequest) -> dict[str, Any]:
    return {
        "id": wish.id,
        "keywords": wish.keywords,
        "locale": wish.locale,
        "demand": wish.demand_count,
        "status": wish.status,
        "attempts": wish.attempts,
        "last_error": wish.last_error,
        "story_id": wish.story_id,
        "created_at": _when(wish.created_at),
        "updated_at": _when(wish.updated_at),
    }


def model_json(record: ModelRecord, story_count: int = 0) -> dict[str, Any]:
    return {
        "name": record.name,
        "model_class": record.model_class,
        "hyperparameters": record.hyperparameters,
        "metrics": record.metrics,
        "artifact_path": record.artifact_path,
        "live": record.live,
        "stories": story_count,
        "created_at": _when(record.created_at),
    }


@dataclass(frozen=True)
class Page:
    number: int
    size: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


def page_args() -> Page:
    """``?page=&per_page=`` checked: 400 problem for nonsense, per_page at most 200."""
    try:
        number = int(request.args.get("page", 1))
        size = int(request.args.get("per_page", 50))
    except ValueError:
        raise ApiProblem(400, "bad-page", "Bad Request", "page and per_page are integers") from None
    if number < 1 or not 1 <= size <= MAX_PER_PAGE:
        raise ApiProblem(
            400, "bad-page", "Bad Request", f"page >= 1 and 1 <= per_page <= {MAX_PER_PAGE}"
        )
    return Page(number, size)


def paged(items: list[dict[str, Any]], page: Page, total: int) -> tuple[dict[str, Any], dict]:
    """The list body and a Link header (RFC 8288) to the neighbouring pages."""
    links = []
    base = request.base_url
    query = {k: v for k, v in request.args.items() if k not in {"page", "per_page"}}
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    if page.offset + page.size < total:
        links.append(f'<{base}?page={page.number + 1}&per_page={page.size}{extra}>; rel="next"')
    if page.number > 1:
        links.append(f'<{base}?page={page.number - 1}&per_page={page.size}{extra}>; rel="prev"')
    headers = {"Link": ", ".join(links)} if links else {}
    body = {"items": items, "page": page.number, "per_page": page.size, "total": total}
    return body, headers


def parse_body(model: type[Body]) -> Body:
    """The JSON body as ``model``: 415 if it is not JSON, 422 with each field's error if invalid."""
    payload = request.get_json(silent=True)
    if payload is None:
        raise ApiProblem(415, "not-json", "Unsupported Media Type", "send a JSON object body")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        raise ApiProblem(
            422, "invalid-body", "Unprocessable Content", "the body is not valid", errors=errors
        ) from None
