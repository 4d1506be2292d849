"""Stories: adding, reviewing, reading and listing them, and the keyword counts they maintain."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    func,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from db.keywords import normalize_keywords
from db.models import (
    Keyword,
    ReviewStatus,
    SafetyReview,
    Story,
    StoryKeyword,
    StorySource,
)
from db.store.keywords import _get_or_create_keyword, resolve_keyword

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoryView:
    """A served story, detached from the session (safe to keep after commit/close)."""

    id: int
    title: str
    text: str
    keywords: tuple[str, ...]
    locale: str


@dataclass
class StoryDraft:
    """A story to add. Generated stories default to ``pending`` review: never served unreviewed."""

    title: str
    text: str
    keywords: Sequence[str] = ()
    locale: str = "en-US"
    source: str = StorySource.HANDWRITTEN.value
    review_status: str = ReviewStatus.PENDING.value
    model_id: int | None = None
    prompt: str | None = None
    requested_keywords: Sequence[str] | None = None
    safety_verdict: str | None = None
    rejection_reason: str | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    # The safety gate's verdict (``SafetyVerdict.as_dict()``): kept on the story's review trail.
    safety: dict[str, Any] | None = None


def content_hash(title: str, text: str) -> str:
    """Identity of a story for idempotent import: case and whitespace do not matter."""
    canonical = " ".join(title.casefold().split()) + "\n" + " ".join(text.casefold().split())
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _view(session: Session, story: Story) -> StoryView:
    lemmas = session.scalars(
        select(Keyword.lemma)
        .join(StoryKeyword, StoryKeyword.keyword_id == Keyword.id)
        .where(StoryKeyword.story_id == story.id)
        .order_by(Keyword.lemma)
    ).all()
    return StoryView(
        id=story.id, title=story.title, text=story.text, keywords=tuple(lemmas), locale=story.locale
    )


def add_story(session: Session, draft: StoryDraft) -> Story:
    """Insert a story with its keywords; an existing story with the same text is returned as is."""
    title = " ".join(draft.title.split())
    body = draft.text.strip()
    if not title or not body:
        raise ValueError("a story needs a non-empty title and text")
    if draft.source not in set(StorySource):
        raise ValueError(f"source must be one of {[s.value for s in StorySource]}")
    if draft.review_status not in set(ReviewStatus):
        raise ValueError(f"review_status must be one of {[s.value for s in ReviewStatus]}")
    digest = content_hash(title, body)
    existing = session.scalar(select(Story).where(Story.content_hash == digest))
    if existing is not None:
        log.debug("story %r already stored as id=%s", title, existing.id)
        return existing
    lemmas = normalize_keywords(list(draft.keywords))
    keywords = [_get_or_create_keyword(session, lemma) for lemma in lemmas]
    story = Story(
        title=title[:300],
        text=body,
        locale=draft.locale,
        word_count=len(body.split()),
        source=str(draft.source),
        model_id=draft.model_id,
        prompt=draft.prompt,
        requested_keywords=list(draft.requested_keywords) if draft.requested_keywords else None,
        review_status=str(draft.review_status),
        rejection_reason=draft.rejection_reason,
        safety_verdict=draft.safety_verdict,
        quality=dict(draft.quality) if draft.quality else None,
        content_hash=digest,
    )
    story.links = [StoryKeyword(keyword=k) for k in keywords]
    try:
        with session.begin_nested():
            session.add(story)
            session.flush()
            if draft.safety:
                session.add(_review_from_dict(story.id, draft.safety))
            if story.review_status == ReviewStatus.APPROVED:
                _bump_counts(session, [k.id for k in keywords], +1)
    except IntegrityError:
        # A concurrent import inserted the same story first; the savepoint undid our insert.
        winner = session.scalar(select(Story).where(Story.content_hash == digest))
        if winner is None:
            raise  # another constraint (e.g. an unknown model_id): the caller must know
        return winner
    # DEBUG: a catalogue import adds hundreds; it logs one summary line at INFO itself.
    log.debug(
        "added story id=%s %r keywords=%s status=%s", story.id, title, lemmas, story.review_status
    )
    return story


def _review_from_dict(story_id: int, verdict: dict[str, Any]) -> SafetyReview:
    return SafetyReview(
        story_id=story_id,
        ok=bool(verdict.get("ok")),
        action="checked",
        checker=str(verdict.get("checker") or "unknown")[:100],
        reasons=dict(verdict),
    )


def _bump_counts(session: Session, keyword_ids: Sequence[int], delta: int) -> None:
    """keywords.story_count += delta, atomically in SQL (no lost updates between workers)."""
    if keyword_ids:
        session.execute(
            update(Keyword)
            .where(Keyword.id.in_(list(keyword_ids)))
            .values(story_count=Keyword.story_count + delta),
            execution_options={"synchronize_session": "fetch"},
        )


def refresh_keyword_counts(session: Session) -> None:
    """Recompute every keywords.story_count exactly (after bulk loads or manual SQL edits)."""
    approved = (
        select(func.count(StoryKeyword.story_id))
        .where(StoryKeyword.keyword_id == Keyword.id, StoryKeyword.approved == true())
        .scalar_subquery()
    )
    session.execute(
        update(Keyword).values(story_count=approved),
        execution_options={"synchronize_session": False},
    )
    session.expire_all()


def review_story(session: Session, story_id: int, status: str, reason: str | None = None) -> Story:
    """Approve or reject a story (links follow via the flush hook); LookupError if missing."""
    if status not in set(ReviewStatus):
        raise ValueError(f"status must be one of {[s.value for s in ReviewStatus]}")
    story = session.get(Story, story_id)
    if story is None:
        raise LookupError(f"no story with id {story_id}")
    was_approved = story.review_status == ReviewStatus.APPROVED
    story.review_status = str(status)
    story.rejection_reason = reason if status == ReviewStatus.REJECTED else None
    session.flush()
    now_approved = story.review_status == ReviewStatus.APPROVED
    if was_approved != now_approved:
        keyword_ids = [link.keyword_id for link in story.links]
        _bump_counts(session, keyword_ids, +1 if now_approved else -1)
    log.info("story id=%s is now %s%s", story_id, status, f" ({reason})" if reason else "")
    return story


def get_story(session: Session, story_id: int, *, approved_only: bool = True) -> StoryView | None:
    """A story by id; unapproved stories are invisible unless ``approved_only=False``."""
    story = session.get(Story, story_id)
    if story is None or (approved_only and story.review_status != ReviewStatus.APPROVED):
        return None
    return _view(session, story)


def list_stories(
    session: Session,
    keyword: str | None = None,
    status: str | None = None,
    limit: int | None = 50,
) -> list[Story]:
    """Stories for the CLI, newest first, optionally by keyword and review status."""
    stmt = select(Story).options(selectinload(Story.links)).order_by(Story.id.desc())
    if keyword:
        lemma = resolve_keyword(session, keyword) or ""
        stmt = (
            stmt.join(StoryKeyword, StoryKeyword.story_id == Story.id)
            .join(Keyword, Keyword.id == StoryKeyword.keyword_id)
            .where(Keyword.lemma == lemma)
        )
    if status:
        stmt = stmt.where(Story.review_status == status)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def iter_stories(session: Session, batch_size: int = 500) -> Iterator[Story]:
    """All stories by id in batches (export without loading the whole table)."""
    last_id = 0
    while True:
        batch = session.scalars(
            select(Story)
            .options(selectinload(Story.links))
            .where(Story.id > last_id)
            .order_by(Story.id)
            .limit(batch_size)
        ).all()
        if not batch:
            return
        yield from batch
        last_id = batch[-1].id
