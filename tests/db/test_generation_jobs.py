"""db.generation_jobs on both backends: counts per keyword set, generated stories and their
requests, the models registry, the catalogue export."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from db import generation_jobs as jobs
from db import store
from db.models import GenerationRequest, ModelRecord, RequestStatus, ReviewStatus
from db.store import StoryDraft


def draft(title: str, keywords: list[str], status: str = jobs.APPROVED, **extra) -> StoryDraft:  # type: ignore[no-untyped-def]
    return StoryDraft(
        title=title,
        text=f"Once upon a time there was {title}. The end.",
        keywords=keywords,
        source="generated",
        review_status=status,
        **extra,
    )


def test_status_vocabulary_is_the_store_s() -> None:
    vocabulary = [jobs.APPROVED, jobs.PENDING, jobs.REJECTED]
    assert vocabulary == ["approved", "pending", "rejected"]
    # "withdrawn" is the safety recheck's, never a generation verdict.
    assert set(vocabulary) == {s.value for s in ReviewStatus} - {ReviewStatus.WITHDRAWN.value}
    assert jobs.COUNTED_STATUSES == (jobs.APPROVED, jobs.PENDING)


def test_approved_counts_per_keyword_set(db_session: Session) -> None:
    store.add_story(db_session, draft("A fox", ["fox"]))
    store.add_story(db_session, draft("Another fox", ["fox"], jobs.PENDING))
    store.add_story(db_session, draft("A bad fox", ["fox"], jobs.REJECTED))
    store.add_story(db_session, draft("Moon and fox", ["moon", "fox"]))
    db_session.flush()
    counts = jobs.approved_counts(db_session)
    assert counts[("fox",)] == 2  # rejected stories do not count
    assert counts[("fox", "moon")] == 1  # sorted lemmas
    assert counts[("moon",)] == 0


def test_record_generated_story_settles_its_request(db_session: Session) -> None:
    request = store.request_generation(db_session, ["owl"], "en-US")
    db_session.flush()
    stored = jobs.record_generated_story(db_session, draft("An owl", ["owl"]), request.id)
    assert not stored.duplicate and stored.request_done
    assert stored.story.review_status == jobs.APPROVED
    db_session.refresh(request)
    assert request.status == RequestStatus.DONE.value and request.story_id == stored.story.id
    again = jobs.record_generated_story(db_session, draft("An owl", ["owl"]))
    assert again.duplicate and again.story.id == stored.story.id and not again.request_done
    assert jobs.story_exists(db_session, "An owl", "Once upon a time there was An owl. The end.")
    assert not jobs.story_exists(db_session, "An owl", "Something else.")


def test_rejected_story_fails_its_request(db_session: Session) -> None:
    request = store.request_generation(db_session, ["bat"], "en-US")
    db_session.flush()
    stored = jobs.record_generated_story(
        db_session,
        draft("A bat", ["bat"], jobs.REJECTED, rejection_reason="too short"),
        request.id,
        "too short",
    )
    assert not stored.request_done
    failed = db_session.scalar(select(GenerationRequest).where(GenerationRequest.id == request.id))
    assert failed is not None and failed.status == RequestStatus.FAILED.value
    assert failed.last_error == "too short" and failed.story_id is None


def test_models_registry_upsert_and_lookup(db_session: Session) -> None:
    assert jobs.find_model(db_session, "tiny-v1") is None
    record = jobs.save_model_record(
        db_session,
        "tiny-v1",
        model_class="GPT2LMHeadModel",
        hyperparameters={"n_layer": 2},
        artifact_path="/models/tiny",
        metrics={"bpc": 1.2},
    )
    assert record.id is not None
    again = jobs.save_model_record(db_session, "tiny-v1", metrics={"bpc": 1.1})
    assert again.id == record.id and again.metrics == {"bpc": 1.1}
    assert jobs.find_model(db_session, "tiny-v1") is record
    assert jobs.model_artifact_path("tiny-v1", session=db_session) == "/models/tiny"
    assert jobs.model_artifact_path("unknown", session=db_session) is None


def test_model_lookup_without_a_store_resolves_nothing(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BEDTIME_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert jobs.model_artifact_path("anything") is None  # no tables: a warning, not a crash


def test_generated_catalogue_lists_approved_generated_stories(
    store_session: Callable[[], Session],
) -> None:
    with store_session() as session:
        model = ModelRecord(name="cat-model", model_class="GPT2LMHeadModel", artifact_path="/m")
        session.add(model)
        session.flush()
        store.add_story(session, draft("Cat one", ["cat"], model_id=model.id))
        store.add_story(session, draft("Cat two", ["cat"], jobs.PENDING, model_id=model.id))
        store.add_story(session, draft("Cat three", ["cat"]))  # no model
        handwritten = draft("Cat four", ["cat"])
        handwritten.source = "handwritten"
        store.add_story(session, handwritten)
        session.flush()
        records = jobs.generated_catalogue(session)
        titles = [r["title"] for r in records]
        assert "Cat one" in titles and "Cat three" in titles
        assert "Cat two" not in titles and "Cat four" not in titles
        first = next(r for r in records if r["title"] == "Cat one")
        assert first == {
            "title": "Cat one",
            "text": "Once upon a time there was Cat one. The end.",
            "keywords": ["cat"],
            "source": "generated",
            "status": "approved",
            "locale": "en-US",
            "model": "cat-model",
        }
        only = jobs.generated_catalogue(session, model_name="cat-model")
        assert [r["title"] for r in only] == ["Cat one"]


def test_two_workers_registering_one_model_at_once_both_succeed(
    db_engine: Engine, db_backend: str
) -> None:
    """Two cron workers start together: the second insert finds the first's row, not a crash.

    The first worker's read happens before the second commits, so on MariaDB its snapshot
    cannot see the row (the race the generator's fault test hit, 1 run in 3).
    """
    if db_backend != "mysql":
        pytest.skip("SQLite's first read takes the write lock (BEGIN IMMEDIATE): no race")
    from db.engine import session_factory

    make_session = session_factory(db_engine)
    name = "raced-model"
    try:
        with make_session() as first, make_session() as second:
            assert jobs.find_model(first, name) is None  # the first worker's read
            jobs.save_model_record(second, name, model_class="GPT2LMHeadModel", artifact_path="/a")
            second.commit()
            record = jobs.save_model_record(
                first, name, model_class="GPT2LMHeadModel", artifact_path="/b"
            )
            first.commit()
            assert record.artifact_path == "/b"
        with make_session() as check:
            rows = check.scalars(select(ModelRecord).where(ModelRecord.name == name)).all()
            assert [row.artifact_path for row in rows] == ["/b"]
    finally:
        with make_session() as cleanup:
            cleanup.execute(delete(ModelRecord).where(ModelRecord.name == name))
            cleanup.commit()
