"""One turn, one transaction, few statements: counted on a real engine (not the rolled-back one).

Each test builds the skill on its own empty database (a SQLite file, or a throw-away MariaDB
database with ``--db mysql``), because the shared fixtures join an outer transaction whose
SAVEPOINTs would be counted too. Counted: every statement that reaches the driver (SQLite's
``BEGIN IMMEDIATE`` included) and every COMMIT.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from skill_testkit import SKILL_ID, Alexa, FakeApiClient, spoken
from sqlalchemy import Engine, func, select

from db import store
from db.catalogue import load_starter_catalogue
from db.engine import make_engine, session_factory
from db.models import Base, GenerationRequest, PlayHistory
from db.store.keyword_cache import KeywordCache
from db.store.listeners import _INSERT_PLAY
from settings import Settings
from skill.builder import build_skill
from skill.services import SkillServices
from tests.conftest import create_mysql_database, drop_mysql_database
from tests.statement_counter import Counter, messages_sent

FIXTURE_STORIES = Path(__file__).parent.parent / "fixtures" / "handwritten_stories.jsonl"
#: The issue's budget for a TellStoryIntent with a known keyword.
MAX_STATEMENTS = 5


@pytest.fixture
def engine(db_backend: str, tmp_path: Path) -> Iterator[Engine]:
    url = create_mysql_database("bedtime_turn") if db_backend == "mysql" else None
    engine = make_engine(url or f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    Base.metadata.create_all(engine)
    with session_factory(engine)() as session:
        random.seed(7)
        load_starter_catalogue(session, FIXTURE_STORIES)
        store.add_synonym(session, "bunny", "rabbit")
        session.commit()
    yield engine
    engine.dispose()
    if url:
        drop_mysql_database(url)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_skill(engine: Engine, clock: Clock) -> Callable[..., Callable[..., Any]]:
    def make(**settings: Any) -> Callable[..., Any]:
        url = engine.url.render_as_string(hide_password=False)
        services = SkillServices(
            settings=Settings(database_url=url, skill_id=SKILL_ID, **settings),
            engine=engine,
            session_factory=session_factory(engine),
            rng=random.Random(3),
            keywords=KeywordCache(refresh_seconds=2.0, clock=clock),
        )
        return build_skill(services=services, api_client=FakeApiClient()).lambda_handler()

    return make


def test_tell_story_with_a_known_keyword_fits_the_statement_budget(
    make_skill: Callable[..., Callable[..., Any]], engine: Engine
) -> None:
    handler = make_skill()
    Alexa(handler, user_id="warm-up").intent("TellStoryIntent", keyword="bear")  # fills caches
    alexa = Alexa(handler, user_id="new-listener")
    with Counter(engine) as new_listener:
        out = alexa.intent("TellStoryIntent", keyword="dragons")
    assert "The Dragon Who Rowed a Boat" in spoken(out)
    assert len(new_listener.statements) <= MAX_STATEMENTS, new_listener.statements
    assert new_listener.commits == 1
    alexa.new_session()
    with Counter(engine) as returning:
        out = alexa.intent("TellStoryIntent", keyword="owl")
    assert "The Princess and the Sleepy Owl" in spoken(out)
    assert len(returning.statements) <= MAX_STATEMENTS, returning.statements
    assert returning.commits == 1
    # The listener is read once per turn, and not again to write.
    assert sum("FROM listeners" in s for s in returning.statements) == 1


def test_on_mariadb_a_story_turn_is_three_round_trips(
    make_skill: Callable[..., Callable[..., Any]],
    engine: Engine,
    db_backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Read the listener, pick, then the writes and their COMMIT in one batch: every message the
    driver sends to the server is counted (pymysql sends each one through _execute_command)."""
    if db_backend != "mysql":
        pytest.skip("SQLite has no round trips")
    handler = make_skill()
    Alexa(handler, user_id="warm-up").intent("TellStoryIntent", keyword="bear")
    sent = messages_sent(monkeypatch)
    alexa = Alexa(handler, user_id="counted-listener")
    with Counter(engine) as seen:
        out = alexa.intent("TellStoryIntent", keyword="dragons")
    assert "The Dragon Who Rowed a Boat" in spoken(out)
    assert len(sent) == 3, sent
    assert sent[-1].rstrip().endswith("COMMIT")
    assert seen.commits == 1
    alexa.new_session()
    sent.clear()
    out = alexa.intent("TellStoryIntent", keyword="owl")  # finishes the last play, too
    assert "The Princess and the Sleepy Owl" in spoken(out)
    assert len(sent) == 3, sent
    monkeypatch.undo()
    key = store.hash_listener_id("counted-listener")
    with session_factory(engine)() as session:
        plays = session.execute(
            select(PlayHistory.story_id, PlayHistory.finished).where(
                PlayHistory.listener_key == key
            )
        ).all()
    assert len(plays) == 2


def test_a_story_heard_before_counts_demand_with_the_turns_own_writes(
    make_skill: Callable[..., Callable[..., Any]],
    engine: Engine,
    db_backend: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A listener who has heard every kite story hears one again, and the batch job is asked
    for a new one: the demand is written with the turn's play, in its one commit (on MariaDB in
    the same message as the COMMIT), not in a savepoint and round trips of its own."""
    handler = make_skill()
    alexa = Alexa(handler, user_id="kite-fan")
    alexa.intent("TellStoryIntent", keyword="kite")  # the fixture's only kite story
    sent = messages_sent(monkeypatch)
    for demand in (1, 2):
        alexa.new_session()
        sent.clear()
        with Counter(engine) as seen:
            out = alexa.intent("TellStoryIntent", keyword="kite")
        turn_messages = list(sent)
        assert "heard before" in spoken(out)
        assert seen.commits == 1
        assert not any("SAVEPOINT" in statement for statement in seen.statements)
        with session_factory(engine)() as session:
            request = session.scalars(select(GenerationRequest)).one()
        assert (request.keywords, request.demand_count, request.status) == (
            ["kite"],
            demand,
            "pending",
        )
        if db_backend == "mysql":
            last = turn_messages[-1]
            assert "generation_requests" in last and last.rstrip().endswith("COMMIT")
            assert sum("generation_requests" in message for message in turn_messages) == 1


def test_a_turn_that_changes_nothing_writes_and_commits_nothing(
    make_skill: Callable[..., Callable[..., Any]], engine: Engine
) -> None:
    alexa = Alexa(make_skill(), user_id="quiet-listener")
    alexa.intent("TellStoryIntent", keyword="owl")
    with Counter(engine) as counter:
        alexa.intent("AMAZON.HelpIntent")
        alexa.intent("AMAZON.HelpIntent")
    assert counter.writes == []
    assert counter.commits == 0
    assert not any("BEGIN" in s for s in counter.statements)


def test_keywords_come_from_memory_until_the_stamp_moves(
    make_skill: Callable[..., Callable[..., Any]], engine: Engine, clock: Clock
) -> None:
    handler = make_skill()
    Alexa(handler, user_id="a").intent("TellStoryIntent", keyword="owl")
    with Counter(engine) as counter:
        Alexa(handler, user_id="b").intent("TellStoryIntent", keyword="owl")
    # Neither the lookup by lemma nor the version stamp (both read keyword_synonyms) ran.
    assert not any(
        "keyword_synonyms" in s or "keywords.lemma IN" in s for s in counter.statements
    ), counter.statements
    # Another process adds a synonym: unknown here until the stamp is read again.
    with session_factory(engine)() as session:
        store.add_synonym(session, "owl", "nightbird")
        session.commit()
    first = Alexa(handler, user_id="c").intent("TellStoryIntent", keyword="nightbird")
    assert "Sleepy Owl" not in spoken(first)
    clock.now += 2.5
    again = Alexa(handler, user_id="d").intent("TellStoryIntent", keyword="nightbird")
    assert "The Princess and the Sleepy Owl" in spoken(again)


def test_play_history_is_bounded_per_listener(
    make_skill: Callable[..., Callable[..., Any]], engine: Engine
) -> None:
    alexa = Alexa(make_skill(play_history_limit=3), user_id="busy-listener")
    for _ in range(6):
        alexa.new_session()
        alexa.intent("TellStoryIntent")
    key = store.hash_listener_id("busy-listener")
    with session_factory(engine)() as session:
        kept = session.scalar(
            select(func.count()).select_from(PlayHistory).where(PlayHistory.listener_key == key)
        )
    assert kept == 3


def test_a_turn_failing_while_writing_keeps_nothing_and_releases_the_lock(
    make_skill: Callable[..., Callable[..., Any]], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the turn's last write (a play of a story that does not exist): on
    MariaDB that is the middle of the one-round-trip batch, after the listener's upsert ran."""
    handler = make_skill()
    original = store.ListenerTurn.writes

    def writes_then_a_bad_one(self: store.ListenerTurn, *args: Any, **kwargs: Any) -> Any:
        found = original(self, *args, **kwargs)
        bad = {
            "listener_key": self.key,
            "story_id": 10**9,
            "finished": False,
            "played_at": datetime.now(UTC),
        }
        return [*found, (_INSERT_PLAY, bad)]

    monkeypatch.setattr(store.ListenerTurn, "writes", writes_then_a_bad_one)
    out = Alexa(handler, user_id="unlucky").intent("TellStoryIntent", keyword="owl")
    assert spoken(out).startswith("Oh dear, something went wrong")
    monkeypatch.undo()
    # The write transaction was rolled back and closed: the next turn is not blocked by it.
    out = Alexa(handler, user_id="next").intent("TellStoryIntent", keyword="owl")
    assert "The Princess and the Sleepy Owl" in spoken(out)
    with session_factory(engine)() as session:
        listeners = session.scalars(select(PlayHistory.listener_key)).all()
    assert store.hash_listener_id("unlucky") not in listeners
    assert store.hash_listener_id("next") in listeners
