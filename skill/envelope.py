"""Strict reading of a POST /alexa body, before the SDK (or anything that logs) sees it.

The ASK SDK deserialises first and verifies later, and it answers a malformed body with a 500
and a traceback. Here every body is checked in order, cheapest first: size, UTF-8, JSON with a
bounded depth and no lone surrogates, then the fields the skill and the verifiers rely on. A
failure is a :class:`BadEnvelope` whose message names the problem without quoting the body (which
holds the user id and the ``apiAccessToken``).
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Alexa's requests are a few KB; anything this big is not from Alexa and is refused unread.
MAX_BODY_BYTES = 128 * 1024
#: Alexa's own limit on a response; ours are checked against it before they leave.
MAX_RESPONSE_BYTES = 24 * 1024
#: Real envelopes nest about 8 deep (context.System.device.supportedInterfaces...).
MAX_DEPTH = 24


class BadEnvelope(ValueError):
    """The body is not a well-formed Alexa request envelope (a 400, or 413 when too large)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


#: A JSON escape of a UTF-16 surrogate: the only way a lone one can reach a decoded string (the
#: body itself is valid UTF-8, which cannot hold surrogates).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_tree(value: Any, depth: int = 0, strings: bool = True) -> None:
    """Depth bound and, when ``strings``, no lone surrogates anywhere (they cannot be encoded
    back to UTF-8)."""
    if depth > MAX_DEPTH:
        raise BadEnvelope(f"JSON nested deeper than {MAX_DEPTH}")
    if isinstance(value, str):
        if strings:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise BadEnvelope("a string holds a lone surrogate") from None
    elif isinstance(value, dict | list):
        if value and depth + 1 > MAX_DEPTH:  # its members are one level deeper
            raise BadEnvelope(f"JSON nested deeper than {MAX_DEPTH}")
        if isinstance(value, dict):
            if strings:
                for key in value:
                    _check_tree(key, depth + 1)
            value = value.values()
        for item in value:
            if strings or isinstance(item, dict | list):
                _check_tree(item, depth + 1, strings)


def _require(mapping: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind):
        raise BadEnvelope(f"{where}.{key} is missing or not a {kind.__name__}")
    return value


def _optional(mapping: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = mapping.get(key)
    if value is not None and not isinstance(value, kind):
        raise BadEnvelope(f"{where}.{key} is not a {kind.__name__}")
    return value


def _check_shape(envelope: Any) -> None:
    """The fields every handler, interceptor and verifier reads, with the right JSON types."""
    if not isinstance(envelope, dict):
        raise BadEnvelope("the body is not a JSON object")
    _require(envelope, "version", str, "envelope")
    request = _require(envelope, "request", dict, "envelope")
    _require(request, "type", str, "request")
    _require(request, "requestId", str, "request")
    _require(request, "timestamp", str, "request")
    _optional(request, "locale", str, "request")
    context = _require(envelope, "context", dict, "envelope")
    system = _require(context, "System", dict, "context")
    application = _require(system, "application", dict, "System")
    _require(application, "applicationId", str, "application")
    user = _require(system, "user", dict, "System")
    _require(user, "userId", str, "user")
    session = _optional(envelope, "session", dict, "envelope")
    if session is not None:
        _optional(session, "sessionId", str, "session")
        _optional(session, "attributes", dict, "session")
        _optional(session, "new", bool, "session")
    intent = _optional(request, "intent", dict, "request")
    if intent is not None:
        _require(intent, "name", str, "intent")
        slots = _optional(intent, "slots", dict, "intent")
        for name, slot in (slots or {}).items():
            if not isinstance(slot, dict):
                raise BadEnvelope(f"slot {name[:40]!r} is not an object")
            _optional(slot, "value", str, "slot")


def parse_envelope(body: bytes) -> tuple[str, dict[str, Any]]:
    """The body as text (what the signature covers) and as a checked JSON object."""
    if len(body) > MAX_BODY_BYTES:
        raise BadEnvelope(f"body of {len(body)} bytes is over {MAX_BODY_BYTES}", status=413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadEnvelope("the body is not UTF-8") from None
    try:
        envelope = json.loads(text)
    except RecursionError:
        raise BadEnvelope(f"JSON nested deeper than {MAX_DEPTH}") from None
    except ValueError as exc:
        raise BadEnvelope(f"the body is not JSON ({exc.__class__.__name__})") from None
    # Strings are walked only when the body escapes a surrogate (rare): the depth walk alone
    # then visits just the ~15 objects of an envelope, not its ~60 values.
    _check_tree(envelope, strings=_SURROGATE_ESCAPE.search(text) is not None)
    _check_shape(envelope)
    return text, envelope


def request_summary(envelope: dict[str, Any]) -> str:
    """Request type and id for a log line; never user ids, tokens or slot values."""
    request = envelope.get("request") if isinstance(envelope, dict) else None
    if not isinstance(request, dict):
        return "unknown request"
    return f"{str(request.get('type'))[:60]} {str(request.get('requestId'))[:80]}"
