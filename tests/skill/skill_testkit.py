"""Helpers for skill tests: an Alexa simulator that keeps session state, and response checks.

Every response the simulator receives is validated against response_schema.json, its SSML must
parse as XML, and it must fit Alexa's size limits, so each dialog test also checks the envelope.
"""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from ask_sdk_model.services import ApiClient, ApiClientRequest, ApiClientResponse

from db import store

SKILL_ID = "amzn1.ask.skill.00000000-0000-0000-0000-000000000001"
USER_ID = "amzn1.ask.account.TESTLISTENER"
SCHEMA = json.loads((Path(__file__).parent / "response_schema.json").read_text())
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

TRICKY_TITLE = 'Tom & Jerry\'s <Big> "Night"'
TRICKY_TEXT = (
    "The cat said \"Goodnight\" & <yawned>. It's late, isn't it?\n\n"
    'Then 3 > 2 and 2 < 3 & the stars agreed. ]]> <break time="10s"/> \x07'
)


def huge_story_text(paragraphs: int = 80) -> str:
    """~40k characters with every character that could break SSML or inflate JSON."""
    para = (
        "Once upon a time a giant & his <friend> said \"hello\" to the 'moon' 🌙 and waved. "
        "The night was calm, the stars were bright, and everyone was sleepy and happy. "
    ) * 3
    return "\n\n".join(f"{i}. {para}" for i in range(paragraphs))


EXTRA_STORIES = [
    store.StoryDraft(
        title=TRICKY_TITLE, text=TRICKY_TEXT, keywords=["cat"], review_status="approved"
    ),
    store.StoryDraft(
        title="The Giant's Very Long Night",
        text=huge_story_text(),
        keywords=["giant"],
        review_status="approved",
    ),
    store.StoryDraft(
        title="A Second Dragon",
        text="A dragon slept.\n\nThe end came softly.",
        keywords=["dragon", "castle"],
        review_status="approved",
    ),
    store.StoryDraft(
        title="A Story Waiting for Review",
        text="Not yet approved.",
        keywords=["robot"],
        review_status="pending",
    ),
]


class FakeApiClient(ApiClient):
    """Records calls to Alexa's APIs (progressive responses) instead of making them."""

    def __init__(self, status: int = 204) -> None:
        self.requests: list[ApiClientRequest] = []
        self.status = status

    def invoke(self, request: ApiClientRequest) -> ApiClientResponse:
        self.requests.append(request)
        return ApiClientResponse(headers=[], body="", status_code=self.status)


def check_response(out: dict[str, Any]) -> None:
    """Schema, well-formed SSML, and Alexa's size limits."""
    _VALIDATOR.validate(out)
    response = out["response"]
    for speech in (
        response.get("outputSpeech"),
        (response.get("reprompt") or {}).get("outputSpeech"),
    ):
        if speech and speech["type"] == "SSML":
            assert len(speech["ssml"]) < 8000
            ET.fromstring(speech["ssml"])  # raises on broken escaping
    assert len(json.dumps(out).encode("utf-8")) < 24 * 1024
    assert len(json.dumps(out, ensure_ascii=False).encode("utf-8")) < 24 * 1024


def spoken(out: dict[str, Any]) -> str:
    """The outputSpeech as plain text (tags stripped, entities decoded)."""
    speech = out["response"].get("outputSpeech")
    if not speech:
        return ""
    root = ET.fromstring(speech["ssml"])
    return " ".join("".join(root.itertext()).split())


def reprompt(out: dict[str, Any]) -> str:
    speech = (out["response"].get("reprompt") or {}).get("outputSpeech")
    if not speech:
        return ""
    return " ".join("".join(ET.fromstring(speech["ssml"]).itertext()).split())


class Alexa:
    """Sends request envelopes to ``lambda_handler(event, None)`` like the Alexa service would."""

    def __init__(
        self,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        user_id: str = USER_ID,
        locale: str = "en-US",
        apl: bool = False,
    ) -> None:
        self.handler = handler
        self.user_id = user_id
        self.locale = locale
        self.apl = apl
        self.skill_id = SKILL_ID
        self.timestamp: datetime | None = None
        self.responses: list[dict[str, Any]] = []
        self.new_session()

    def new_session(self) -> None:
        self.session_id = f"amzn1.echo-api.session.{uuid.uuid4()}"
        self.session_attributes: dict[str, Any] = {}
        self.is_new = True

    def envelope(self, request: dict[str, Any]) -> dict[str, Any]:
        interfaces: dict[str, Any] = {}
        if self.apl:
            interfaces["Alexa.Presentation.APL"] = {"runtime": {"maxVersion": "2023.3"}}
        timestamp = (self.timestamp or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "version": "1.0",
            "session": {
                "new": self.is_new,
                "sessionId": self.session_id,
                "application": {"applicationId": self.skill_id},
                "attributes": dict(self.session_attributes),
                "user": {"userId": self.user_id},
            },
            "context": {
                "System": {
                    "application": {"applicationId": self.skill_id},
                    "user": {"userId": self.user_id},
                    "device": {
                        "deviceId": "amzn1.ask.device.TEST",
                        "supportedInterfaces": interfaces,
                    },
                    "apiEndpoint": "https://api.amazonalexa.com",
                    "apiAccessToken": "test-token",
                }
            },
            "request": {
                "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}",
                "timestamp": timestamp,
                "locale": self.locale,
                **request,
            },
        }

    def send(self, request: dict[str, Any]) -> dict[str, Any]:
        out = self.handler(self.envelope(request), None)
        check_response(out)
        self.responses.append(out)
        self.is_new = False
        self.session_attributes = out.get("sessionAttributes") or {}
        if out["response"].get("shouldEndSession") is True:
            self.new_session()
        return out

    def launch(self) -> dict[str, Any]:
        return self.send({"type": "LaunchRequest"})

    def intent(self, name: str, **slots: str | tuple[str, str | None]) -> dict[str, Any]:
        """Slot values are 'words' or ('words', canonical) for an entity-resolution match
        (canonical None means ER_SUCCESS_NO_MATCH)."""
        slot_json: dict[str, Any] = {}
        for slot, value in slots.items():
            said, canonical = value if isinstance(value, tuple) else (value, ...)
            entry: dict[str, Any] = {"name": slot, "value": said, "confirmationStatus": "NONE"}
            if canonical is not ...:
                authority = f"amzn1.er-authority.echo-sdk.{SKILL_ID}.STORY_KEYWORD"
                if canonical is None:
                    status: dict[str, Any] = {"code": "ER_SUCCESS_NO_MATCH"}
                    values: list[Any] = []
                else:
                    status = {"code": "ER_SUCCESS_MATCH"}
                    values = [{"value": {"name": canonical, "id": canonical}}]
                entry["resolutions"] = {
                    "resolutionsPerAuthority": [
                        {"authority": authority, "status": status, "values": values}
                    ]
                }
            slot_json[slot] = entry
        return self.send(
            {
                "type": "IntentRequest",
                "dialogState": "STARTED",
                "intent": {"name": name, "confirmationStatus": "NONE", "slots": slot_json},
            }
        )

    def session_ended(
        self, reason: str = "USER_INITIATED", error: dict[str, str] | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"type": "SessionEndedRequest", "reason": reason}
        if error:
            request["error"] = error
        out = self.send(request)
        self.new_session()
        return out
