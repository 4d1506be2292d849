"""Skill fixtures: the shared rolled-back database (tests/conftest.py) seeded with stories.

The skill gets ``store_session`` as its session factory, so every session it opens joins the
test's outer transaction (commits become savepoints) and everything is rolled back afterwards;
with ``--db mysql`` the same dialogs run against MariaDB/MySQL.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from skill_testkit import EXTRA_STORIES, SKILL_ID, Alexa, FakeApiClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db import store
from db.catalogue import load_starter_catalogue
from db.settings import Settings
from skill.builder import build_skill
from skill.services import SkillServices

#: Our own short stories; the shipped catalogue changes whenever the model is retrained.
FIXTURE_STORIES = Path(__file__).parent.parent / "fixtures" / "handwritten_stories.jsonl"


@pytest.fixture
def seeded(store_session: Callable[[], Session]) -> Callable[[], Session]:
    """Fixture stories plus a few awkward ones, inside the test's transaction."""
    with store_session() as session:
        load_starter_catalogue(session, FIXTURE_STORIES)
        for draft in EXTRA_STORIES:
            store.add_story(session, draft)
        session.commit()
    return store_session


@pytest.fixture
def settings(db_engine: Engine) -> Settings:
    url = db_engine.url.render_as_string(hide_password=False)
    return Settings(database_url=url, skill_id=SKILL_ID, verify_requests=True)


@pytest.fixture
def services(settings: Settings, db_engine: Engine, seeded: Callable[[], Session]) -> SkillServices:
    return SkillServices(
        settings=settings, engine=db_engine, session_factory=seeded, rng=random.Random(1234)
    )


@pytest.fixture
def api_client() -> FakeApiClient:
    return FakeApiClient()


@pytest.fixture
def lambda_handler(services: SkillServices, api_client: FakeApiClient) -> Callable[..., Any]:
    return build_skill(services=services, api_client=api_client).lambda_handler()


@pytest.fixture
def alexa(lambda_handler: Callable[..., Any]) -> Alexa:
    return Alexa(lambda_handler)


@pytest.fixture
def make_alexa(lambda_handler: Callable[..., Any]) -> Callable[..., Alexa]:
    def make(**kwargs: Any) -> Alexa:
        return Alexa(lambda_handler, **kwargs)

    return make
