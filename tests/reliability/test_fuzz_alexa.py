"""Property-based fuzzing of POST /alexa: never a 5xx, a valid envelope or a 4xx, under 24 KB.

Bodies come from three generators: mutations of real request envelopes (every request type Alexa
sends, with fields replaced by arbitrary JSON, deleted, or slot values blown up), raw bytes
(binary, UTF-16, deep nesting, lone surrogates), and both through an app that verifies
signatures. A refused body costs one WARNING line that quotes nothing of the body.
Examples are bounded so the module takes well under a minute.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skill.webapp import create_app
from tests.reliability.conftest import SKILL_ID, seed_store, skill_services
from tests.skill.skill_testkit import check_response

MAX_RESPONSE_BYTES = 24 * 1024
USER_ID = "amzn1.ask.account.FUZZ-SECRET-USER"
TOKEN = "fuzz-secret-api-access-token"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,  # nothing written to .hypothesis/: every run tries the same bodies
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

REQUESTS: list[dict[str, Any]] = [
    {"type": "LaunchRequest"},
    {"type": "SessionEndedRequest", "reason": "USER_INITIATED"},
    {"type": "SessionEndedRequest", "reason": "ERROR", "error": {"type": "INVALID_RESPONSE"}},
    {"type": "System.ExceptionEncountered", "error": {"type": "INVALID_RESPONSE", "message": "x"}},
    {"type": "CanFulfillIntentRequest", "intent": {"name": "TellStoryIntent", "slots": {}}},
    {"type": "AudioPlayer.PlaybackStarted", "token": "t", "offsetInMilliseconds": 0},
    {"type": "PlaybackController.PlayCommandIssued"},
    {"type": "Alexa.Presentation.APL.UserEvent", "token": "bedtimeStory", "arguments": []},
    {"type": "Connections.Response", "name": "Buy", "status": {"code": "200"}, "token": "t"},
    {"type": "IntentRequest", "intent": {"name": "AMAZON.StopIntent"}},
    {"type": "IntentRequest", "intent": {"name": "AMAZON.NextIntent"}},
    {"type": "IntentRequest", "intent": {"name": "SomeFutureIntent"}},
    {
        "type": "IntentRequest",
        "intent": {
            "name": "TellStoryIntent",
            "slots": {"keyword": {"name": "keyword", "value": "dragons"}},
        },
    },
]


def envelope(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1.0",
        "session": {
            "new": True,
            "sessionId": f"amzn1.echo-api.session.{uuid.uuid4()}",
            "application": {"applicationId": SKILL_ID},
            "attributes": {},
            "user": {"userId": USER_ID},
        },
        "context": {
            "System": {
                "application": {"applicationId": SKILL_ID},
                "user": {"userId": USER_ID},
                "device": {"deviceId": "amzn1.ask.device.FUZZ", "supportedInterfaces": {}},
                "apiEndpoint": "https://api.amazonalexa.com",
                "apiAccessToken": TOKEN,
            }
        },
        "request": {
            "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "locale": "en-US",
            **copy.deepcopy(request),
        },
    }


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["en-US", "en-GB", "xx-XX", "IntentRequest", "2026-01-01T00:00:00Z"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
PATHS = [
    ("version",),
    ("session",),
    ("session", "attributes"),
    ("session", "new"),
    ("session", "user"),
    ("context",),
    ("context", "System"),
    ("context", "System", "user"),
    ("context", "System", "application"),
    ("context", "System", "device", "supportedInterfaces"),
    ("request",),
    ("request", "type"),
    ("request", "locale"),
    ("request", "timestamp"),
    ("request", "requestId"),
    ("request", "intent"),
    ("request", "intent", "name"),
    ("request", "intent", "slots"),
    ("request", "intent", "slots", "keyword"),
    ("request", "intent", "slots", "keyword", "value"),
    ("request", "error"),
    ("request", "reason"),
]


def _apply(body: dict[str, Any], path: tuple[str, ...], action: str, value: Any) -> None:
    node: Any = body
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if not isinstance(node, dict):
        return
    if action == "delete":
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> bytes:
    body = envelope(draw(st.sampled_from(REQUESTS)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(PATHS))
        action = draw(st.sampled_from(["set", "delete", "huge", "type"]))
        if action == "huge":
            value: Any = draw(st.text(min_size=1, max_size=30)) * draw(
                st.integers(min_value=1, max_value=3000)
            )
        elif action == "type":
            value = draw(st.sampled_from([r["type"] for r in REQUESTS] + ["Bogus.Type", ""]))
        else:
            value = draw(json_values)
        _apply(body, path, action, value)
    return json.dumps(body).encode("utf-8")


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "utf16", "deep", "surrogate", "truncated", "scalar"]))
    valid = json.dumps(envelope(draw(st.sampled_from(REQUESTS))))
    if kind == "bytes":
        return draw(st.binary(max_size=2000))
    if kind == "utf16":
        return valid.encode("utf-16")
    if kind == "deep":
        depth = draw(st.integers(min_value=20, max_value=100_000))
        opener = draw(st.sampled_from(["[", '{"a":']))
        return (opener * depth).encode()
    if kind == "surrogate":
        return (
            valid.replace('"dragons"', '"\\ud800 dragon"').replace('"en-US"', '"\\udfff"').encode()
        )
    if kind == "truncated":
        return valid[: draw(st.integers(min_value=0, max_value=len(valid) - 1))].encode()
    return json.dumps(draw(json_values)).encode()


class RefusalLog(logging.Handler):
    """Every log record, so a test can count WARNINGs and look for leaked secrets."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'bedtime.sqlite3'}"
    seed_store(url)
    return url


@pytest.fixture(scope="module")
def open_client(store_url: str) -> FlaskClient:
    """Verification off: every well-formed body reaches the handlers."""
    return create_app(services=skill_services(store_url, verify=False)).test_client()


@pytest.fixture(scope="module")
def verifying_client(store_url: str) -> FlaskClient:
    return create_app(services=skill_services(store_url, verify=True)).test_client()


@pytest.fixture(scope="module")
def log_records() -> Iterator[RefusalLog]:
    handler = RefusalLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def check_answer(client: FlaskClient, body: bytes, records: RefusalLog) -> None:
    records.records.clear()
    reply = client.post("/alexa", data=body, content_type="application/json")
    assert reply.status_code < 500, reply.data[:300]
    assert len(reply.data) < MAX_RESPONSE_BYTES
    if reply.status_code == 200:
        out = json.loads(reply.data)
        check_response(out)
    else:
        assert 400 <= reply.status_code < 500
        warnings = [r for r in records.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert warnings[0].exc_info is None
    for record in records.records:
        line = record.getMessage()
        assert USER_ID not in line and TOKEN not in line, line
        assert record.levelno < logging.ERROR or record.name != "skill.webapp", line


@FUZZ
@given(body=mutated_envelopes())
def test_mutated_envelopes_never_fail(
    open_client: FlaskClient, log_records: RefusalLog, body: bytes
) -> None:
    check_answer(open_client, body, log_records)


@FUZZ
@given(body=raw_bodies())
def test_raw_bodies_are_refused_cleanly(
    open_client: FlaskClient, log_records: RefusalLog, body: bytes
) -> None:
    check_answer(open_client, body, log_records)


@settings(FUZZ, max_examples=80)
@given(body=st.one_of(mutated_envelopes(), raw_bodies()))
def test_unsigned_bodies_are_refused_before_the_sdk(
    verifying_client: FlaskClient, log_records: RefusalLog, body: bytes
) -> None:
    records = log_records.records
    records.clear()
    reply = verifying_client.post("/alexa", data=body, content_type="application/json")
    assert 400 <= reply.status_code < 500
    assert len([r for r in records if r.levelno >= logging.WARNING]) == 1
    assert not any(r.name.startswith("ask_sdk") for r in records)


def test_an_oversized_body_is_413_unread(open_client: FlaskClient, log_records: RefusalLog) -> None:
    reply = open_client.post(
        "/alexa", data=b"{" + b" " * (2 * 1024 * 1024) + b"}", content_type="application/json"
    )
    assert reply.status_code == 413


@pytest.mark.parametrize(
    "request_body", REQUESTS, ids=lambda r: r.get("intent", {}).get("name", r["type"])
)
def test_every_request_type_is_answered_without_the_apology(
    open_client: FlaskClient, log_records: RefusalLog, request_body: dict[str, Any]
) -> None:
    log_records.records.clear()
    reply = open_client.post(
        "/alexa", data=json.dumps(envelope(request_body)), content_type="application/json"
    )
    assert reply.status_code == 200
    out = json.loads(reply.data)
    check_response(out)
    assert "went wrong" not in json.dumps(out)
    assert not [r for r in log_records.records if r.exc_info]  # no traceback for any of them
    if request_body["type"] != "IntentRequest" and request_body["type"] != "LaunchRequest":
        assert "outputSpeech" not in out["response"]
    if request_body["type"] == "CanFulfillIntentRequest":
        assert out["response"]["canFulfillIntent"]["canFulfill"] == "YES"
