"""The skill as a web service: Flask app factory with the ASK SkillAdapter at POST /alexa.

Request verification (signature, timestamp, skill id) is on unless Settings.verify_requests is
explicitly false (BEDTIME_VERIFY_REQUESTS=false or ``bedtime serve --no-verify``), which is logged
as a warning. ``gunicorn 'skill.webapp:create_app()'`` serves it in production.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, abort, jsonify, request, send_file

from settings import Settings
from skill.builder import build_skill
from skill.services import SkillServices
from skill.verification import default_verifiers, skill_adapter_class

logger = logging.getLogger(__name__)

ALEXA_ROUTE = "/alexa"
HEALTH_ROUTE = "/healthz"
SOUNDS_ROUTE = "/sounds/<name>.mp3"
# flask-ask-sdk config keys: its own signature/timestamp verifiers are replaced by ours.
_SDK_VERIFY_SIGNATURE = "ASK_SDK_VERIFY_SIGNATURE"
_SDK_VERIFY_TIMESTAMP = "ASK_SDK_VERIFY_TIMESTAMP"


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
    """Build the web app. ``signature_verifier`` lets tests inject a trust root and cert fetcher."""
    if services is None:
        services = SkillServices.from_settings(settings or Settings.from_env())
    settings = services.settings
    _configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config[_SDK_VERIFY_SIGNATURE] = False
    app.config[_SDK_VERIFY_TIMESTAMP] = False
    if settings.verify_requests:
        verifiers = default_verifiers(settings.skill_id, signature_verifier)
        if not settings.skill_id:
            logger.warning("BEDTIME_SKILL_ID is not set: requests for any skill id are accepted")
    else:
        verifiers = []
        logger.warning(
            "Alexa request verification is OFF (BEDTIME_VERIFY_REQUESTS=false); "
            "use this only for local development, never on a public endpoint"
        )

    skill = build_skill(services=services).create()
    adapter = skill_adapter_class()(
        skill=skill, skill_id=settings.skill_id or "bedtime-stories", verifiers=verifiers, app=app
    )

    @app.post(ALEXA_ROUTE)
    def alexa() -> Any:
        # The SDK deserialises before verifying and answers 500 to a body that is not a request
        # envelope; that is the caller's fault, so say 400 without invoking anything.
        try:
            envelope = json.loads(request.get_data())
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("request"), dict):
            logger.warning(
                "Refused a POST to %s that is not an Alexa request envelope", ALEXA_ROUTE
            )
            return jsonify({"error": "not an Alexa request envelope"}), 400
        return adapter.dispatch_request()

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
            logger.error("Health check failed: %s", exc)
            return jsonify({"status": "unavailable", "reason": str(exc)}), 503
        body = {"status": "ok"}
        if services.live_enabled:
            # The live model warms in a background thread; callers (and the simulator test) can
            # wait for "ready" instead of racing its first story against the deadline.
            teller = services.storyteller
            body["live"] = "ready" if teller is not None and teller.ready else "loading"
        return jsonify(body)

    return app
