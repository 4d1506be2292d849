"""The store's side of story generation: what the batch job and the model registry ask for.

The generator writes no SQL of its own: it asks this module how many stories each keyword set
already has, records the stories it made (and the listener requests they answer), registers its
models and exports the generated catalogue. The review-status vocabulary a generated story is
given lives here too (``APPROVED``/``PENDING``/``REJECTED``, the values of
:class:`db.models.ReviewStatus`). As everywhere in the store, the caller owns the transaction:
nothing here commits, except :func:`model_artifact_path` on its own session.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Keyword, ModelRecord, ReviewStatus, Story, StoryKeyword, StorySource

log = logging.getLogger(__name__)

#: Review statuses of a generated story: served, waiting for a human, or kept for diagnosis.
APPROVED = ReviewStatus.APPROVED.value
PENDING = ReviewStatus.PENDING.value
REJECTED = ReviewStatus.REJECTED.value
#: Stories that count towards a keyword set's target (a pending one will usually be approved).
COUNTED_STATUSES = (APPROVED, PENDING)


# --------------------------------------------------------------------------- the plan


def approved_counts(session: Session) -> Counter[tuple[str, ...]]:
    """Approved (or pending-review) stories per exact keyword set (sorted lemmas)."""
    rows = session.execute(
        select(StoryKeyword.story_id, Keyword.lemma)
        .join(Keyword, Keyword.id == StoryKeyword.keyword_id)
        .join(Story, Story.id == StoryKeyword.story_id)
        .where(Story.review_status.in_(COUNTED_STATUSES))
    ).all()
    by_story: dict[int, list[str]] = {}
    for story_id, lemma in rows:
        by_story.setdefault(story_id, []).append(lemma)
    return Counter(tuple(sorted(lemmas)) for lemmas in by_story.values())


def keyword_set_count(session: Session, keywords: Sequence[str]) -> int:
    """Approved or pending stories whose keyword set is exactly ``keywords``."""
    lemmas = sorted(set(keywords))
    if not lemmas:
        return 0
    with_first = (
        select(StoryKeyword.story_id)
        .join(Keyword, Keyword.id == StoryKeyword.keyword_id)
        .where(Keyword.lemma == lemmas[0])
    )
    exact = (
        select(StoryKeyword.story_id)
        .join(Keyword, Keyword.id == StoryKeyword.keyword_id)
        .join(Story, Story.id == StoryKeyword.story_id)
        .where(StoryKeyword.story_id.in_(with_first), Story.review_status.in_(COUNTED_STATUSES))
        .group_by(StoryKeyword.story_id)
        .having(
            and_(
                func.count() == len(lemmas),
                func.sum(case((Keyword.lemma.in_(lemmas), 1), else_=0)) == len(lemmas),
            )
        )
    )
    return int(session.scalar(select(func.count()).select_from(exact.subquery())) or 0)


# --------------------------------------------------------------------------- generated stories


@dataclass(frozen=True)
class StoredStory:
    """What :func:`record_generated_story` did: the row, and whether it was there already."""

    story: Story
    duplicate: bool
    request_done: bool = False


def story_exists(session: Session, title: str, text: str) -> bool:
    """A story with this content (the store's content hash) is already stored."""
    from db.store import content_hash

    digest = content_hash(title, text)
    return bool(session.scalar(select(exists().where(Story.content_hash == digest))))


def record_generated_story(
    session: Session,
    draft: Any,
    request_id: int | None = None,
    failure_reason: str | None = None,
) -> StoredStory:
    """Store a generated story (a ``db.store.StoryDraft``) and settle the request it answers.

    The request is done when the story is not rejected, else failed with ``failure_reason``
    (the story's rejection reason). A story already stored (same content) is not added twice.
    No commit: the caller commits story and request together.
    """
    from db.store import add_story, complete_generation_request

    duplicate = story_exists(session, draft.title, draft.text)
    stored = add_story(session, draft)
    done = False
    if request_id is not None:
        done = stored.review_status != REJECTED
        complete_generation_request(
            session,
            request_id,
            stored.id if done else None,
            None if done else (failure_reason or REJECTED),
        )
    return StoredStory(story=stored, duplicate=duplicate, request_done=done)


def generated_catalogue(session: Session, model_name: str | None = None) -> list[dict[str, Any]]:
    """Approved generated stories, oldest first, as catalogue records (``db/catalogue.py``).

    With ``model_name``, only that model's stories.
    """
    stmt = (
        select(Story)
        .where(Story.review_status == APPROVED, Story.source == StorySource.GENERATED.value)
        .order_by(Story.id)
    )
    if model_name:
        stmt = stmt.join(ModelRecord, ModelRecord.id == Story.model_id).where(
            ModelRecord.name == model_name
        )
    return [
        {
            "title": story.title,
            "text": story.text,
            "keywords": story.keyword_lemmas,
            "source": StorySource.GENERATED.value,
            "status": APPROVED,
            "locale": story.locale,
            "model": story.model.name if story.model is not None else model_name,
        }
        for story in session.scalars(stmt)
    ]


# --------------------------------------------------------------------------- models registry


def find_model(session: Session, name: str) -> ModelRecord | None:
    """The registry row of a model name, or None."""
    return session.scalars(select(ModelRecord).where(ModelRecord.name == name)).first()


def save_model_record(session: Session, name: str, **values: Any) -> ModelRecord:
    """Add (or update, by name) a registry row: ``model_class``, ``artifact_path`` ... (flushed)."""
    record = find_model(session, name)
    if record is None:
        try:
            with session.begin_nested():
                record = ModelRecord(name=name, **values)
                session.add(record)
        except IntegrityError:
            # Another worker registered the name since our read (two cron workers starting
            # together). A locking read sees its committed row even under MariaDB's snapshot.
            record = session.scalars(
                select(ModelRecord).where(ModelRecord.name == name).with_for_update()
            ).one()
            log.info("model %s was registered by another process; updating it", name)
    for key, value in values.items():
        setattr(record, key, value)
    session.flush()
    log.info("registered model %s -> %s", name, values.get("artifact_path"))
    return record


def model_artifact_path(name: str, session: Session | None = None) -> str | None:
    """Artifact directory of a registered model name (None when unknown).

    Without a session, opens one on the configured store for the lookup; a store that is not
    there (or not migrated) resolves nothing.
    """
    if session is not None:
        record = find_model(session, name)
        return None if record is None else str(record.artifact_path)
    from sqlalchemy.exc import SQLAlchemyError

    from db.engine import make_engine

    engine = make_engine()
    try:
        with Session(engine) as own_session:
            return model_artifact_path(name, session=own_session)
    except SQLAlchemyError as exc:
        log.warning(
            "model registry lookup for %r failed (is the store upgraded? `bedtime db upgrade`): %s",
            name,
            exc.__class__.__name__,
        )
        return None
    finally:
        engine.dispose()
