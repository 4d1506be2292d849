"""``bedtime talk``: our interaction model understands typed lines; the dialogue runs in-process
on the configured store; ``--speak`` hands our SSML to espeak-ng."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from skill_testkit import SKILL_ID

from skill import delivery, intents
from skill.cli_commands import build_sounds_command, talk_command
from skill.handlers.base import number_value
from skill.talk import Speaker, Understanding, duration_value

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)


@pytest.fixture(scope="module")
def understanding() -> Understanding:
    return Understanding("en-US")


@pytest.mark.parametrize(
    ("said", "intent", "slots"),
    [
        ("a short story about an owl", intents.TELL_STORY, {"length": "short", "keyword": "owl"}),
        ("a little story about the moon", intents.TELL_STORY, {"length": "short"}),
        ("tell me two stories about dragons", intents.TELL_STORY, {"count": "2"}),
        ("a story about a submarine", intents.TELL_STORY, {"keyword": "submarine"}),
        ("play rain for twenty minutes", intents.SLEEP_SOUND, {"duration": "PT20M"}),
        ("play the sea", intents.SLEEP_SOUND, {"sound": "ocean"}),
        ("turn off the sleepy voice", intents.FEATURE_OFF, {"feature": "sleepy_voice"}),
        ("from the beginning", intents.START_OVER, {}),
        ("yes", intents.YES, {}),
        ("sing me a song backwards", intents.FALLBACK, {}),
    ],
)
def test_typed_lines_reach_their_intent(
    understanding: Understanding, said: str, intent: str, slots: dict[str, str]
) -> None:
    understood = understanding.understand(said)
    assert understood.intent == intent
    for name, expected in slots.items():
        words, resolved = understood.slots[name]
        assert expected in (words, resolved)


@pytest.mark.parametrize(
    ("words", "value"), [("2", 2), ("two", 2), ("twenty five", 25), ("lots", None)]
)
def test_numbers(words: str, value: int | None) -> None:
    assert number_value(words) == value


@pytest.mark.parametrize(
    ("words", "iso"), [("twenty minutes", "PT20M"), ("an hour", "PT1H"), ("a while", None)]
)
def test_durations(words: str, iso: str | None) -> None:
    assert duration_value(words) == iso


@pytest.fixture
def talk_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BEDTIME_DATABASE_URL", f"sqlite:///{tmp_path / 'bedtime.sqlite3'}")
    monkeypatch.setenv("BEDTIME_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BEDTIME_SKILL_ID", SKILL_ID)
    monkeypatch.setenv("BEDTIME_PUBLIC_URL", "https://bedtime.example.com")
    return tmp_path


def test_talk_holds_a_conversation_on_the_store(talk_env: Path) -> None:
    lines = "open bedtime stories\na short story about an owl\nno\n\n"
    result = CliRunner().invoke(talk_command, [], input=lines)
    assert result.exit_code == 0, result.output
    assert "starter stories added" in result.output
    assert "alexa> Welcome to Bedtime Stories." in result.output
    assert "owl" in result.output.lower() and "Would you like another story?" in result.output
    assert "Close your eyes" in result.output
    # The same store: a second run finds the stories already there.
    again = CliRunner().invoke(talk_command, [], input="\n")
    assert "0 starter stories added" in again.output


def test_talk_works_on_a_fresh_machine_without_a_skill_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's first try: no BEDTIME_SKILL_ID, no public URL, just `bedtime talk`."""
    for name in ("BEDTIME_SKILL_ID", "BEDTIME_PUBLIC_URL", "BEDTIME_VERIFY_REQUESTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BEDTIME_DATABASE_URL", f"sqlite:///{tmp_path / 'bedtime.sqlite3'}")
    monkeypatch.setenv("BEDTIME_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(talk_command, [], input="a story about a dragon\nno\n\n")
    assert result.exit_code == 0, result.output
    assert "dragon" in result.output.lower()
    assert "Close your eyes" in result.output


@needs_sox
def test_talk_plays_a_sleep_sound_built_by_sox(talk_env: Path) -> None:
    lines = "a short story about an owl\nno\nyes\n\n"
    result = CliRunner().invoke(talk_command, [], input=lines)
    assert result.exit_code == 0, result.output
    assert "(playing https://bedtime.example.com/sounds/rain.mp3" in result.output
    assert (talk_env / "sounds" / "rain.mp3").stat().st_size > 100_000


@needs_sox
def test_sounds_build_writes_mp3_loops(talk_env: Path) -> None:
    result = CliRunner().invoke(build_sounds_command, [])
    assert result.exit_code == 0, result.output
    for name in ("rain.mp3", "ocean.mp3"):
        head = (talk_env / "sounds" / name).read_bytes()[:2]
        # An MPEG audio frame: 11 sync bits, then layer bits 01 (Layer III, i.e. MP3).
        assert head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 == 0x02


def test_sounds_build_without_sox_says_how_to_install(
    talk_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = CliRunner().invoke(build_sounds_command, [])
    assert result.exit_code == 1
    assert "apt-get install -y sox libsox-fmt-mp3" in result.output
    assert "Traceback" not in result.output


@needs_espeak
def test_espeak_reads_our_ssml_and_the_sleepy_voice_is_slower() -> None:
    speaker = Speaker.find()
    assert speaker is not None
    paras = ["The little owl closed her eyes and listened to the wind in the trees."] * 3
    steady = speaker.wav(f"<speak>{delivery.story_part_ssml(paras, 0, 1, sleepy=False)}</speak>")
    sleepy = speaker.wav(f"<speak>{delivery.story_part_ssml(paras, 0, 1)}</speak>")
    assert steady[:4] == sleepy[:4] == b"RIFF"
    assert len(sleepy) > len(steady) * 1.1  # slower speech and longer pauses: more audio


def test_first_run_seeds_the_models_synonyms_for_every_channel(talk_env: Path) -> None:
    from db import store
    from db.engine import make_engine, session_factory

    result = CliRunner().invoke(talk_command, [], input="\n")
    assert result.exit_code == 0, result.output
    engine = make_engine(f"sqlite:///{talk_env / 'bedtime.sqlite3'}")
    try:
        with session_factory(engine)() as session:
            assert store.resolve_keyword(session, "bunny rabbit") == "bunny"
            assert store.resolve_keyword(session, "spaceship") == "rocket"
    finally:
        engine.dispose()
