"""The skill as a web service: Flask app factory with the skill at POST /alexa.

Request verification (timestamp, skill id, signature) is on unless Settings.verify_requests is
explicitly false (BEDTIME_VERIFY_REQUESTS=false or ``bedtime serve --no-verify``), which is logged
as a warning; with it on, BEDTIME_SKILL_ID is required. Every body is read strictly
(:mod:`skill.envelope`) and verified before the ASK SDK deserialises it. ``bedtime serve`` and the
Docker image run it under gunicorn (:mod:`skill.server`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ask_sdk_model import RequestEnvelope
from flask import Flask, Response, abort, jsonify, request, send_file

from settings import Settings
from skill.builder import build_skill
from skill.envelope import (
    MAX_BODY_BYTES,
    MAX_RESPONSE_BYTES,
    BadEnvelope,
    parse_envelope,
    request_summary,
)
from skill.i18n import translator_for
from skill.services import SkillServices
from skill.ssml import escape
from skill.verification import VerificationException, default_verifiers

logger = logging.getLogger(__name__)

ALEXA_ROUTE = "/alexa"
HEALTH_ROUTE = "/healthz"
SOUNDS_ROUTE = "/sounds/<name>.mp3"


def _configure_logging(level: str) -> None:
    """Under gunicorn nothing configures logging; without this, errors would vanish."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=getattr(logging, level, logging.INFO),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )


def create_app(
    settings: Settings | None = None,
    *,
    services: SkillServices | None = None,
    signature_verifier: Any | None = None,
) -> Flask:
    """Build the web app. ``signature_verifier`` lets tests inject a trust root and cert fetcher.

    Raises ConfigurationError when verification is on but BEDTIME_SKILL_ID is not set.
    """
    if services is None:
        settings = settings or Settings.from_env()
        settings.require_endpoint_ready()
        services = SkillServices.from_settings(settings)
    settings = services.settings
    settings.require_endpoint_ready()
    _configure_logging(settings.log_level)
    app = Flask(__name__)
    if settings.verify_requests:
        verifiers = default_verifiers(settings.skill_id or "", signature_verifier)
    else:
        verifiers = []
        logger.warning(
            "Alexa request verification is OFF (BEDTIME_VERIFY_REQUESTS=false); "
            "use this only for local development, never on a public endpoint"
        )
    endpoint = AlexaEndpoint(build_skill(services=services).create(), verifiers)
    app.add_url_rule(ALEXA_ROUTE, "alexa", endpoint.dispatch, methods=["POST"])
    app.extensions["bedtime_services"] = services
    if settings.console_enabled:  # the operator's console and REST API (console/)
        from console import register_console

        register_console(app, settings, services.session_factory)

    @app.get(SOUNDS_ROUTE)
    def sleep_sound(name: str) -> Any:
        """The sleep sounds Alexa streams (AudioPlayer); Range requests are answered."""
        from skill.sleep_sounds import SOUNDS, sound_path

        path = sound_path(settings.sounds_dir, name) if name in SOUNDS else None
        if path is None or not path.is_file():
            abort(404)
        return send_file(path, mimetype="audio/mpeg", conditional=True, max_age=86400)

    @app.get(HEALTH_ROUTE)
    def healthz() -> Any:
        from db.engine import DatabaseUnavailable, check_database

        try:
            check_database(services.engine)
        except DatabaseUnavailable as exc:
            logger.error("Health check failed: %s", exc)  # the details stay in our logs
            return jsonify({"status": "unavailable"}), 503
        body = {"status": "ok"}
        if services.live_enabled:
            # The live model warms in a background thread; callers (and the simulator test) can
            # wait for "ready" instead of racing its first story against the deadline.
            teller = services.storyteller
            body["live"] = "ready" if teller is not None and teller.ready else "loading"
        return jsonify(body)

    return app


def _bounded_body() -> bytes | None:
    """The body, read no further than MAX_BODY_BYTES (None when larger): a 200 MB POST costs
    nothing. Only /alexa is bounded this tightly; the console's uploads have their own limit."""
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        return None
    body = request.stream.read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body


class AlexaEndpoint:
    """POST /alexa: strict parsing, then verification, then the SDK; never a 5xx for bad input.

    The SDK's own adapter deserialises before it verifies and turns a malformed body into a 500
    with a traceback; here the SDK sees only bodies that parsed and verified.
    """

    def __init__(self, skill: Any, verifiers: list[Any]) -> None:
        self.skill = skill
        self.verifiers = verifiers

    def _refuse(self, status: int, reason: str, summary: str = "") -> Any:
        # One line, no body, no tokens, no traceback: a flood of junk cannot flood the logs.
        logger.warning("Refused a request to %s (%s): %s", ALEXA_ROUTE, summary or "-", reason)
        return jsonify({"error": "bad request" if status == 400 else reason}), status

    def dispatch(self) -> Any:
        body = _bounded_body()
        if body is None:
            return self._refuse(413, f"body over {MAX_BODY_BYTES} bytes")
        try:
            text, envelope = parse_envelope(body)
        except BadEnvelope as exc:
            return self._refuse(exc.status, str(exc))
        summary = request_summary(envelope)
        for verifier in self.verifiers:
            try:
                verifier.verify(request.headers, text, envelope)
            except VerificationException as exc:
                return self._refuse(400, f"verification failed: {exc}", summary)
        try:
            request_envelope = self.skill.serializer.from_json(envelope, RequestEnvelope)
        except Exception as exc:  # SerializationException, or a type the SDK did not expect
            return self._refuse(400, f"not a request the SDK can read ({type(exc).__name__})")
        return self._answer(request_envelope, envelope, summary)

    def _answer(self, request_envelope: Any, envelope: dict[str, Any], summary: str) -> Any:
        try:
            response = self.skill.serializer.serialize(
                self.skill.invoke(request_envelope=request_envelope, context=None)
            )
            body = json.dumps(response, ensure_ascii=False, separators=(",", ":"))
        except Exception:
            # The exception handler answers every failure inside the skill; reaching here is a
            # bug in the SDK path itself. Still a spoken apology, never a 500 to Alexa.
            logger.exception("Skill failed outside its handlers for %s", summary)
            return _apology(envelope)
        if len(body.encode("utf-8")) > MAX_RESPONSE_BYTES:
            logger.error(
                "Response to %s was over %d bytes; apologised", summary, MAX_RESPONSE_BYTES
            )
            return _apology(envelope)
        return Response(body, status=200, mimetype="application/json")


def _apology(envelope: dict[str, Any]) -> Any:
    """A minimal valid response envelope with the localised apology."""
    locale = envelope.get("request", {}).get("locale")
    translate = translator_for(locale if isinstance(locale, str) else None)
    return jsonify(
        {
            "version": "1.0",
            "response": {
                "outputSpeech": {
                    "type": "SSML",
                    "ssml": f"<speak>{escape(translate('error'))}</speak>",
                },
                "shouldEndSession": True,
            },
        }
    )
