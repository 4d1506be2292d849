"""Alembic migrations: up and down on both engines, and the result matches the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from db.engine import (
    current_revision,
    downgrade_database,
    head_revision,
    make_engine,
    schema_differences,
    upgrade_database,
)
from db.models import Base
from tests.conftest import create_mysql_database, drop_mysql_database


@pytest.fixture
def empty_engine(db_backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A brand-new empty database of the backend under test (not the shared one)."""
    if db_backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'migrate.sqlite3'}")
        yield engine
        engine.dispose()
        return
    url = create_mysql_database("bedtime_test_migrate")
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_mysql_database(url)


def test_upgrade_matches_models_then_downgrade_to_base(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    upgrade_database(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    assert set(Base.metadata.tables) <= set(inspect(empty_engine).get_table_names())
    assert schema_differences(empty_engine) == []

    downgrade_database(empty_engine, "base")
    assert current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}

    upgrade_database(empty_engine)  # and up again: downgrade left nothing behind
    assert schema_differences(empty_engine) == []


def test_constraint_names_follow_the_convention(empty_engine: Engine) -> None:
    upgrade_database(empty_engine)
    inspector = inspect(empty_engine)
    foreign_keys = {fk["name"] for fk in inspector.get_foreign_keys("story_keywords")}
    assert foreign_keys == {
        "fk_story_keywords_story_id_stories",
        "fk_story_keywords_keyword_id_keywords",
    }
    uniques = {uq["name"] for uq in inspector.get_unique_constraints("stories")}
    assert "uq_stories_content_hash" in uniques
    indexes = {ix["name"] for ix in inspector.get_indexes("story_keywords")}
    assert "ix_story_keywords_pick" in indexes


def test_single_head() -> None:
    assert head_revision() == "0006"
