"""The operator's console (``/console``) and REST API (``/api/v1``): one package, two blueprints.

Registered by :func:`skill.webapp.create_app` only when ``BEDTIME_CONSOLE=true``. It knows the store
(:mod:`db.store`) and :mod:`safety`, never the Alexa SDK; the ``/alexa`` endpoint is untouched
(no cookies, no CSRF: Alexa's signatures guard it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from settings import ConfigurationError, Settings

logger = logging.getLogger(__name__)

SESSION_LIFETIME = timedelta(hours=12)
CONSOLE_PATH = "/console"
API_PATH = "/api/v1"


def register_console(
    app: Flask,
    settings: Settings,
    session_factory: Callable[[], Session],
    *,
    gate: Any | None = None,
) -> None:
    """Mount the API and the console on ``app``; ConfigurationError without a secret key."""
    from console.api import api
    from console.auth import CSRFError, csrf
    from console.context import EXTENSION, ConsoleContext, close_store
    from console.openapi import build_spec
    from console.pages import pages
    from console.problems import ApiProblem, from_http_exception, problem_response

    if not settings.secret_key or len(settings.secret_key) < 32:
        raise ConfigurationError(
            "BEDTIME_CONSOLE=true needs BEDTIME_SECRET_KEY (at least 32 characters), e.g. "
            "export BEDTIME_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
        )
    import console.api_models  # noqa: F401 - registers /api/v1/models on the blueprint

    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.console_secure_cookies,
        SESSION_COOKIE_PATH="/",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        # CSRF is checked where a cookie authenticates a write: console forms, cookie API calls.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=int(SESSION_LIFETIME.total_seconds()),
        WTF_CSRF_SSL_STRICT=False,
    )
    app.extensions[EXTENSION] = ConsoleContext(settings, session_factory, gate)
    csrf.init_app(app)
    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.teardown_appcontext(close_store)

    @app.get(f"{API_PATH}/openapi.json", endpoint="api.openapi")
    def openapi() -> Any:
        return jsonify(build_spec(app))

    @app.errorhandler(ApiProblem)
    def api_problem(problem: ApiProblem) -> Any:
        return problem_response(problem)

    @app.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError) -> Any:
        logger.warning("CSRF check failed on %s: %s", request.path, exc.description)
        if request.path.startswith(API_PATH):
            return problem_response(
                ApiProblem(403, "csrf", "Forbidden", f"CSRF check failed: {exc.description}")
            )
        from console.pages import render_error

        return render_error(403, "This form has expired. Go back, reload the page, try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if request.path.startswith(API_PATH):
            return problem_response(from_http_exception(exc))
        if request.path.startswith(CONSOLE_PATH):
            from console.pages import render_error

            return render_error(exc.code or 500, exc.description or exc.name)
        return exc

    @app.errorhandler(500)
    def server_error(exc: Any) -> Any:
        original = getattr(exc, "original_exception", None)
        logger.error("error on %s %s", request.method, request.path, exc_info=original)
        if request.path.startswith(API_PATH):
            return problem_response(
                ApiProblem(500, "server-error", "Internal Server Error", "see the server log")
            )
        if request.path.startswith(CONSOLE_PATH):
            from console.pages import render_error

            return render_error(500, "Something went wrong on the server; it is in the log.")
        return exc

    logger.info("operator's console on %s, REST API on %s", CONSOLE_PATH, API_PATH)
