"""The SQL persistence adapter behind the SDK's persistent attributes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ask_sdk_core.exceptions import PersistenceException
from ask_sdk_core.serialize import DefaultSerializer
from ask_sdk_model import RequestEnvelope
from skill_testkit import USER_ID, Alexa, spoken
from sqlalchemy import Engine, event, select

from db import store
from db.models import Listener
from skill.persistence import SqlPersistenceAdapter, listener_key


def _envelope(user_id: str | None = USER_ID) -> RequestEnvelope:
    event = Alexa(lambda e, c: {}, user_id=user_id or "").envelope({"type": "LaunchRequest"})
    if user_id is None:
        del event["context"]["System"]["user"]
        del event["session"]["user"]
    return DefaultSerializer().deserialize(json.dumps(event), RequestEnvelope)


def test_get_save_delete(store_session: Any) -> None:
    adapter = SqlPersistenceAdapter(store_session)
    envelope = _envelope()
    assert adapter.get_attributes(envelope) == {}
    adapter.save_attributes(envelope, {"bookmark": {"story_id": 1, "part": 2}})
    assert adapter.get_attributes(envelope) == {"bookmark": {"story_id": 1, "part": 2}}
    adapter.delete_attributes(envelope)
    assert adapter.get_attributes(envelope) == {}


def test_only_the_hashed_user_id_is_stored(store_session: Any, db_session: Any) -> None:
    SqlPersistenceAdapter(store_session).save_attributes(_envelope(), {"x": 1})
    keys = list(db_session.scalars(select(Listener.key)))
    assert keys == [store.hash_listener_id(USER_ID)]
    assert listener_key(_envelope()) == keys[0]


def test_a_request_without_a_user_cannot_be_stored(store_session: Any) -> None:
    adapter = SqlPersistenceAdapter(store_session)
    assert listener_key(_envelope(None)) is None
    with pytest.raises(PersistenceException):
        adapter.get_attributes(_envelope(None))


def test_unknown_persistent_keys_survive_a_turn(store_session: Any, alexa: Alexa) -> None:
    """Attributes written by a newer version are kept, not wiped (lose no data)."""
    adapter = SqlPersistenceAdapter(store_session)
    adapter.save_attributes(_envelope(), {"future_feature": {"a": 1}})
    alexa.intent("TellStoryIntent", keyword="giant")
    saved = adapter.get_attributes(_envelope())
    assert saved["future_feature"] == {"a": 1}
    assert saved["bookmark"]["title"] == "The Giant's Very Long Night"


def test_corrupt_state_does_not_break_the_skill(store_session: Any, alexa: Alexa) -> None:
    adapter = SqlPersistenceAdapter(store_session)
    adapter.save_attributes(
        _envelope(), {"bookmark": "garbage", "last_keywords": None, "last_story_id": "x"}
    )
    assert spoken(alexa.launch()).startswith("Welcome to Bedtime Stories.")


def test_nothing_is_written_when_nothing_changed(alexa: Alexa, db_engine: Engine) -> None:
    writes: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            writes.append(statement)

    event.listen(db_engine, "before_cursor_execute", spy)
    try:
        alexa.launch()
        alexa.intent("AMAZON.HelpIntent")
        assert writes == []  # state unchanged: no database write
        alexa.intent("TellStoryIntent", keyword="owl")
        assert any("listeners" in w for w in writes)
        assert any("play_history" in w for w in writes)
    finally:
        event.remove(db_engine, "before_cursor_execute", spy)
