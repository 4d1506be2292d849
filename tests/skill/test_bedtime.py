"""The bedtime flow through the skill: length, "two stories", goodnight, sleep sounds with a
timer and their AudioPlayer events, and a grown-up's per-device switches."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from skill_testkit import Alexa, FakeApiClient, reprompt, spoken
from sqlalchemy.orm import Session

from db import store
from db.settings import Settings
from skill import sleep_sounds
from skill.builder import build_skill
from skill.services import SkillServices

PUBLIC = "https://bedtime.example.com"


@pytest.fixture
def sound_services(services: SkillServices, settings: Settings, tmp_path: Path) -> SkillServices:
    """The skill with a public URL and the two sound files in place."""
    for sound in sleep_sounds.SOUNDS:
        sleep_sounds.sound_path(tmp_path, sound).write_bytes(b"ID3")
    with_sounds = dataclasses.replace(settings, public_url=PUBLIC, sounds_dir=tmp_path)
    return dataclasses.replace(services, settings=with_sounds, rng=random.Random(7))


@pytest.fixture
def night(sound_services: SkillServices) -> Alexa:
    return Alexa(build_skill(services=sound_services, api_client=FakeApiClient()).lambda_handler())


def _directives(out: dict[str, Any]) -> list[dict[str, Any]]:
    return out["response"].get("directives") or []


def _audio_event(alexa: Alexa, kind: str, token: str, offset_ms: int = 0) -> dict[str, Any]:
    """An AudioPlayer request: no session, the player's state in the context."""
    envelope = alexa.envelope(
        {"type": f"AudioPlayer.{kind}", "token": token, "offsetInMilliseconds": offset_ms}
    )
    del envelope["session"]
    envelope["context"]["AudioPlayer"] = {
        "token": token,
        "offsetInMilliseconds": offset_ms,
        "playerActivity": "PLAYING",
    }
    return alexa.handler(envelope, None)


def test_a_short_story_is_short(alexa: Alexa, seeded: Callable[[], Session]) -> None:
    with seeded() as session:
        store.add_story(
            session,
            store.StoryDraft(
                title="The Long Night Owl",
                text=" ".join(["The owl flew softly over the sleeping hills."] * 60),
                keywords=["owl"],
                review_status="approved",
            ),
        )
        session.commit()
    out = alexa.intent("TellStoryIntent", keyword="owl", length=("long", "long"))
    assert "The Long Night Owl" in spoken(out)
    alexa.new_session()
    out = alexa.intent("TellStoryIntent", keyword="owl", length=("short", "short"))
    assert "The Princess and the Sleepy Owl" in spoken(out)


def test_another_length_is_said_honestly(alexa: Alexa) -> None:
    out = alexa.intent("TellStoryIntent", keyword="train", length=("long", "long"))
    assert spoken(out).startswith(
        "I don't have a new long story for that just now, so this one is a different length."
    )


def test_two_stories_then_goodnight(alexa: Alexa) -> None:
    first = alexa.intent("TellStoryIntent", keyword="moon", count="2")
    assert spoken(first).endswith("Ready for your next story?")
    assert reprompt(first).startswith("Shall I tell your next story?")
    second = alexa.intent("AMAZON.YesIntent")
    assert spoken(second).startswith("Here is a story called")
    assert spoken(first)[:80] != spoken(second)[:80]
    assert "Would you like another story" not in spoken(second)
    assert spoken(second).endswith("Goodnight, sleep tight.")
    assert second["response"]["shouldEndSession"] is True


def test_goodnight_offers_a_sleep_sound_and_plays_it_with_a_timer(night: Alexa) -> None:
    night.intent("TellStoryIntent", keyword="owl")
    goodnight = night.intent("AMAZON.NoIntent")
    assert spoken(goodnight).endswith(
        "Goodnight, sleep tight. Would you like some gentle rain to fall asleep to?"
    )
    before = time.time()
    out = night.intent("AMAZON.YesIntent")
    after = time.time()
    assert spoken(out) == "Here is some gentle rain for 20 minutes. Goodnight."
    assert out["response"]["shouldEndSession"] is True
    (play,) = _directives(out)
    stream = play["audioItem"]["stream"]
    assert play["playBehavior"] == "REPLACE_ALL"
    assert stream["url"] == f"{PUBLIC}/sounds/rain.mp3"
    token = sleep_sounds.SoundToken.decode(stream["token"])
    assert token is not None and token.sound == "rain"
    assert int(before) + 20 * 60 <= token.ends_at <= after + 20 * 60


def test_play_the_ocean_for_five_minutes_then_silence(
    night: Alexa, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(sleep_sounds, "now_seconds", lambda: clock[0])
    out = night.intent("SleepSoundIntent", sound=("the sea", "ocean"), duration="PT5M")
    assert spoken(out) == "Here is the sound of ocean waves for 5 minutes. Goodnight."
    token = _directives(out)[0]["audioItem"]["stream"]["token"]
    started = _audio_event(night, "PlaybackStarted", token)
    assert "outputSpeech" not in started["response"] and not _directives(started)
    # 100s into the first two-minute loop: another whole loop is enqueued.
    clock[0] += 100
    nearly = _audio_event(night, "PlaybackNearlyFinished", token, offset_ms=100_000)
    (enqueue,) = _directives(nearly)
    stream = enqueue["audioItem"]["stream"]
    assert enqueue["playBehavior"] == "ENQUEUE" and stream["expectedPreviousToken"] == token
    assert stream["offsetInMilliseconds"] == 0
    # 220s: the second loop ends at 240s, the timer at 300s: the last minute of a loop follows.
    clock[0] += 120
    nearly = _audio_event(night, "PlaybackNearlyFinished", stream["token"], offset_ms=100_000)
    last = _directives(nearly)[0]["audioItem"]["stream"]
    assert last["offsetInMilliseconds"] == 60_000
    # 280s, 100s into that stream (started at 60s): it ends with the timer; nothing follows.
    clock[0] += 60
    done = _audio_event(night, "PlaybackNearlyFinished", last["token"], offset_ms=100_000)
    assert not _directives(done)
    for kind in ("PlaybackStopped", "PlaybackFinished", "PlaybackFailed"):
        quiet = _audio_event(night, kind, last["token"])
        assert "outputSpeech" not in quiet["response"] and not _directives(quiet)


def test_stop_while_rain_plays_stops_the_stream(night: Alexa) -> None:
    out = night.intent("SleepSoundIntent", sound=("rain", "rain"))
    token = _directives(out)[0]["audioItem"]["stream"]["token"]
    envelope = night.envelope(
        {"type": "IntentRequest", "intent": {"name": "AMAZON.PauseIntent", "slots": {}}}
    )
    envelope["context"]["AudioPlayer"] = {"token": token, "playerActivity": "PLAYING"}
    stopped = night.handler(envelope, None)
    assert [d["type"] for d in _directives(stopped)] == ["AudioPlayer.Stop"]
    assert spoken(stopped) == "Okay, I've stopped the sound. Goodnight."


def test_stop_after_the_timer_is_an_ordinary_goodnight(night: Alexa) -> None:
    expired = sleep_sounds.SoundToken("rain", int(time.time()) - 5).encode()
    envelope = night.envelope(
        {"type": "IntentRequest", "intent": {"name": "AMAZON.StopIntent", "slots": {}}}
    )
    envelope["context"]["AudioPlayer"] = {"token": expired, "playerActivity": "STOPPED"}
    out = night.handler(envelope, None)
    assert not _directives(out) and spoken(out) == "Goodnight, sleep tight."


def test_no_sounds_without_a_public_url(alexa: Alexa) -> None:
    out = alexa.intent("SleepSoundIntent", sound=("rain", "rain"))
    assert spoken(out) == "I'm sorry, I can't play sleep sounds here yet. Goodnight, sleep tight."
    assert not _directives(out)


def test_switches_are_per_device(night: Alexa, sound_services: SkillServices) -> None:
    off = night.intent("FeatureOffIntent", feature=("sleepy voice", "sleepy_voice"))
    assert spoken(off) == "Okay, I've turned the sleepy voice off for this device."
    story = night.intent("TellStoryIntent", keyword="owl")
    assert '<prosody rate="90%">' in story["response"]["outputSpeech"]["ssml"]
    night.intent("FeatureOffIntent", feature=("sleep sounds", "sleep_sounds"))
    out = night.intent("SleepSoundIntent", sound=("rain", "rain"))
    assert spoken(out).startswith("Sleep sounds are switched off on this device.")
    # Another device of the same listener keeps everything on.
    other = Alexa(night.handler)
    envelope_device = "amzn1.ask.device.KITCHEN"
    original = other.envelope

    def kitchen(request: dict[str, Any]) -> dict[str, Any]:
        envelope = original(request)
        envelope["context"]["System"]["device"]["deviceId"] = envelope_device
        return envelope

    other.envelope = kitchen  # type: ignore[method-assign]
    story = other.intent("TellStoryIntent", keyword="owl")
    assert 'volume="+0.0dB"' in story["response"]["outputSpeech"]["ssml"]
    night.intent("FeatureOnIntent", feature=("sleepy voice", "sleepy_voice"))
    story = night.intent("TellStoryIntent", keyword="moon")
    assert 'volume="+0.0dB"' in story["response"]["outputSpeech"]["ssml"]


@pytest.mark.parametrize(
    ("said", "minutes"),
    [("PT20M", 20), ("PT1H", 60), ("PT3H", 60), ("PT30S", 1), (None, 20), ("nonsense", 20)],
)
def test_timer_minutes(said: str | None, minutes: int) -> None:
    assert sleep_sounds.minutes_from_duration(said) == minutes


def test_the_app_serves_the_sounds(sound_services: SkillServices) -> None:
    from skill.webapp import create_app

    client = create_app(services=sound_services).test_client()
    with client.get("/sounds/rain.mp3") as reply:
        assert reply.status_code == 200 and reply.mimetype == "audio/mpeg"
        assert reply.data == b"ID3"
    with client.get("/sounds/ocean.mp3", headers={"Range": "bytes=1-"}) as partial:
        assert partial.status_code == 206 and partial.data == b"D3"
    assert client.get("/sounds/thunder.mp3").status_code == 404
    assert client.get("/sounds/..%2Fbedtime.sqlite3.mp3").status_code == 404


def test_switches_are_kept_with_the_listener_and_survive_odd_data() -> None:
    from skill.conversation import ListenerState
    from skill.preferences import Preferences, device_key

    state = ListenerState("listener")
    state.remember_device(device_key("bedroom"), Preferences(sleepy_voice=False).to_dict())
    again = ListenerState.from_attributes("listener", state.persistent_attributes(), {})
    assert again.device_preferences == state.device_preferences
    assert "bedroom" not in str(state.persistent_attributes())  # only a hash is stored
    odd = ListenerState.from_attributes(
        "listener", {"devices": {"a": "loud", "b": {"sleepy_voice": "no", "goodnight": False}}}, {}
    )
    assert odd.device_preferences == {"b": Preferences(goodnight=False).to_dict()}
    for index in range(40):
        state.remember_device(str(index), {})
    assert len(state.device_preferences) == 16 and "39" in state.device_preferences
