"""RFC 9457 problem details: every API error is one JSON shape with a stable ``type``."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

PROBLEM_TYPE_BASE = "https://bedtime-stories.invalid/problems/"
MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """Raised by API views; rendered as ``application/problem+json``."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(problem: ApiProblem) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "instance": request.path,
    }
    if problem.detail:
        body["detail"] = problem.detail
    body.update(problem.extensions)
    response = jsonify(body)
    response.status_code = problem.status
    response.mimetype = MEDIA_TYPE
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def from_http_exception(exc: HTTPException) -> ApiProblem:
    """Werkzeug's 404/405/413... as problems, so API clients see one error shape."""
    status = exc.code or 500
    slug = (exc.name or "error").lower().replace(" ", "-")
    headers = {}
    allowed = getattr(exc, "valid_methods", None)
    if status == 405 and allowed:
        headers["Allow"] = ", ".join(allowed)
    return ApiProblem(status, slug, exc.name or "Error", exc.description, headers=headers)
