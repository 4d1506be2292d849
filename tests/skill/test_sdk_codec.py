"""FastSerializer reads envelopes into exactly what the SDK's DefaultSerializer gives."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from ask_sdk_core.exceptions import SerializationException
from ask_sdk_core.serialize import DefaultSerializer
from ask_sdk_model import RequestEnvelope, Response, ResponseEnvelope
from ask_sdk_model.ui import SimpleCard

from skill.sdk_codec import FastSerializer
from tests.skill.skill_testkit import Alexa

SLOTS = {
    "keyword": {
        "name": "keyword",
        "value": "dragons",
        "confirmationStatus": "NONE",
        "resolutions": {
            "resolutionsPerAuthority": [
                {
                    "authority": "amzn1.er-authority.echo-sdk.x.STORY_KEYWORD",
                    "status": {"code": "ER_SUCCESS_MATCH"},
                    "values": [{"value": {"name": "dragon", "id": "dragon"}}],
                }
            ]
        },
    },
    "second": {"name": "second", "confirmationStatus": "NONE"},
}


def _envelopes() -> list[dict[str, Any]]:
    """One of each request the skill handles, with the interfaces and oddities Alexa sends."""
    alexa = Alexa(lambda _event, _context: {})
    screen = Alexa(lambda _event, _context: {}, apl=True)
    requests: list[dict[str, Any]] = [
        {"type": "LaunchRequest"},
        {
            "type": "IntentRequest",
            "dialogState": "STARTED",
            "intent": {"name": "TellStoryIntent", "confirmationStatus": "NONE", "slots": SLOTS},
        },
        {"type": "IntentRequest", "intent": {"name": "AMAZON.PauseIntent"}},
        {
            "type": "SessionEndedRequest",
            "reason": "ERROR",
            "error": {"type": "INVALID_RESPONSE", "message": "bad"},
        },
        {
            "type": "AudioPlayer.PlaybackNearlyFinished",
            "token": "rain:3",
            "offsetInMilliseconds": 9,
        },
        {"type": "AudioPlayer.PlaybackStopped", "token": "rain:3", "offsetInMilliseconds": 0},
        {
            "type": "CanFulfillIntentRequest",
            "intent": {"name": "TellStoryIntent", "slots": SLOTS},
        },
        {
            "type": "System.ExceptionEncountered",
            "error": {"type": "INVALID_RESPONSE", "message": "m"},
            "cause": {"requestId": "amzn1.echo-api.request.1"},
        },
        {"type": "IntentRequest", "intent": {"name": "TellStoryIntent"}, "unknownField": [1, 2]},
    ]
    envelopes = [kit.envelope(request) for kit in (alexa, screen) for request in requests]
    fractional = copy.deepcopy(envelopes[0])
    fractional["request"]["timestamp"] = "2030-01-01T00:00:00.123Z"
    offset = copy.deepcopy(envelopes[0])
    offset["request"]["timestamp"] = "2030-01-01T02:00:00+02:00"
    session_attributes = copy.deepcopy(envelopes[1])
    session_attributes["session"]["attributes"] = {"story_id": 7, "nested": {"a": [1, None]}}
    return [*envelopes, fractional, offset, session_attributes]


@pytest.mark.parametrize("envelope", _envelopes(), ids=lambda e: e["request"]["type"])
def test_envelopes_decode_to_what_the_sdk_gives(envelope: dict[str, Any]) -> None:
    text = json.dumps(envelope)
    expected = DefaultSerializer().deserialize(text, RequestEnvelope)
    fast = FastSerializer()
    decodings = (fast.deserialize(text, RequestEnvelope), fast.from_json(envelope, RequestEnvelope))
    for decoded in decodings:
        assert decoded == expected
        assert type(decoded.request) is type(expected.request)
        assert decoded.request.timestamp == expected.request.timestamp
        assert type(decoded.request.timestamp.tzinfo) is type(expected.request.timestamp.tzinfo)


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e["request"].update(type="NoSuchRequest"),
        lambda e: e["request"].update(timestamp="not a time"),
        lambda e: e["request"].update(locale={"a": 1}) or e["request"].update(timestamp=5),
        lambda e: e["session"].update(new="maybe") or e.update(session=[1]),
    ],
    ids=["unknown type", "bad timestamp", "timestamp not a string", "session not an object"],
)
def test_bad_payloads_fail_as_the_sdk_fails(change: Any) -> None:
    envelope = _envelopes()[0]
    change(envelope)
    text = json.dumps(envelope)
    with pytest.raises(SerializationException) as sdk:
        DefaultSerializer().deserialize(text, RequestEnvelope)
    with pytest.raises(SerializationException) as ours:
        FastSerializer().deserialize(text, RequestEnvelope)
    assert str(ours.value) == str(sdk.value)


def test_unparsable_text_is_a_serialization_error() -> None:
    with pytest.raises(SerializationException, match="Couldn't parse"):
        FastSerializer().deserialize("{not json", RequestEnvelope)
    assert FastSerializer().deserialize(None, RequestEnvelope) is None


def test_serialising_is_the_sdks() -> None:
    envelope = ResponseEnvelope(
        version="1.0", response=Response(card=SimpleCard(title="t", content="c"))
    )
    assert FastSerializer().serialize(envelope) == DefaultSerializer().serialize(envelope)
