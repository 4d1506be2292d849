"""The interaction models: rendered from one base plus per-locale samples, and agreeing with the
handlers on every intent and slot name (skill/intents.py)."""

from __future__ import annotations

import json

import pytest
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.serialize import DefaultSerializer
from ask_sdk_model import RequestEnvelope

from skill import intents, package
from skill.handlers import request_handlers
from skill.handlers.builtins import UnhandledIntentHandler
from skill.i18n import LOCALES, catalogue_names


def test_checked_in_models_are_the_rendered_sources():
    stale = package.stale_interaction_models()
    assert not stale, (
        f"interaction_models/ differs from skill/interaction_model/ for {stale}: "
        "run `bedtime skill-package build --seed-only` and commit the result"
    )


def test_rendering_writes_every_locale(tmp_path):
    written = package.write_interaction_models(tmp_path)
    assert sorted(path.stem for path in written) == sorted(LOCALES)
    assert package.stale_interaction_models(tmp_path) == []


def test_locale_samples_are_added_to_the_base(tmp_path):
    (tmp_path / "base.json").write_text(
        (package.MODEL_SOURCES_DIR / "base.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "en-GB.json").write_text(
        json.dumps({"samples": {intents.LIST_TOPICS: ["what's in the cupboard"]}}), encoding="utf-8"
    )
    model = package.render_interaction_model("en-GB", tmp_path)
    by_name = {i["name"]: i for i in package.language_model(model)["intents"]}
    assert by_name[intents.LIST_TOPICS]["samples"][-1] == "what's in the cupboard"
    us = package.render_interaction_model("en-US", tmp_path)
    assert us == package.load_json(tmp_path / "base.json")


def test_an_override_for_an_unknown_intent_is_refused(tmp_path):
    (tmp_path / "base.json").write_text(
        (package.MODEL_SOURCES_DIR / "base.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (tmp_path / "en-AU.json").write_text(json.dumps({"samples": {"TellJokeIntent": ["a joke"]}}))
    with pytest.raises(package.SkillPackageError, match="TellJokeIntent"):
        package.render_interaction_model("en-AU", tmp_path)


def test_every_locale_has_strings_and_nothing_else_has_overrides():
    assert set(LOCALES) <= set(catalogue_names()) | {"en-US"}
    overrides = {p.stem for p in package.MODEL_SOURCES_DIR.glob("*.json")} - {"base"}
    assert overrides <= set(LOCALES)


def test_the_base_model_declares_exactly_our_intents_and_slots():
    lm = package.language_model(package.load_json(package.MODEL_SOURCES_DIR / "base.json"))
    by_name = {intent["name"]: intent for intent in lm["intents"]}
    assert tuple(by_name) == intents.ALL
    slots = {s["name"]: s["type"] for s in by_name[intents.TELL_STORY]["slots"]}
    assert slots == {
        intents.KEYWORD_SLOT: intents.KEYWORD_TYPE,
        intents.SECOND_KEYWORD_SLOT: intents.KEYWORD_TYPE,
        intents.LENGTH_SLOT: intents.LENGTH_TYPE,
        intents.COUNT_SLOT: "AMAZON.NUMBER",
    }
    slots = {s["name"]: s["type"] for s in by_name[intents.NEW_STORY]["slots"]}
    assert slots == {intents.KEYWORD_SLOT: intents.KEYWORD_TYPE}
    slots = {s["name"]: s["type"] for s in by_name[intents.SLEEP_SOUND]["slots"]}
    assert slots == {
        intents.SOUND_SLOT: intents.SOUND_TYPE,
        intents.DURATION_SLOT: "AMAZON.DURATION",
    }
    for name in (intents.FEATURE_OFF, intents.FEATURE_ON):
        slots = {s["name"]: s["type"] for s in by_name[name]["slots"]}
        assert slots == {intents.FEATURE_SLOT: intents.FEATURE_TYPE}
    assert [t["name"] for t in lm["types"]] == [
        intents.KEYWORD_TYPE,
        intents.LENGTH_TYPE,
        intents.SOUND_TYPE,
        intents.FEATURE_TYPE,
    ]


def _handler_input(intent: str) -> HandlerInput:
    envelope = {
        "version": "1.0",
        "context": {"System": {"application": {"applicationId": "test"}, "user": {"userId": "u"}}},
        "request": {
            "type": "IntentRequest",
            "requestId": "r",
            "locale": "en-US",
            "timestamp": "2030-01-01T00:00:00Z",
            "intent": {"name": intent},
        },
    }
    request = DefaultSerializer().deserialize(json.dumps(envelope), RequestEnvelope)
    return HandlerInput(request_envelope=request)


@pytest.mark.parametrize("intent", intents.ALL)
def test_every_intent_of_the_model_has_its_own_handler(intent):
    handler_input = _handler_input(intent)
    handlers = request_handlers(None)  # type: ignore[arg-type]  # can_handle needs no services
    handler = next(h for h in handlers if h.can_handle(handler_input))
    assert not isinstance(handler, UnhandledIntentHandler)
