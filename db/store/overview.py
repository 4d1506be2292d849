"""What the operator's console reads and does: filtered story pages, reviews by a person (with
optimistic locking), demand, catalogue figures per day, and the live model choice.

Plain functions over a Session like the rest of the store; nothing here commits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from db.models import (
    GenerationRequest,
    Keyword,
    ModelRecord,
    PlayHistory,
    RequestStatus,
    ReviewStatus,
    Story,
    StoryKeyword,
    _utcnow,
)
from db.store.keywords import resolve_keyword
from db.store.reviews import Gate, approve_story
from db.store.stories import review_story

log = logging.getLogger(__name__)

#: Review actions a person takes, and the status each leads to.
REVIEW_ACTIONS = {
    "approve": ReviewStatus.APPROVED.value,
    "reject": ReviewStatus.REJECTED.value,
    "withdraw": ReviewStatus.WITHDRAWN.value,
}
VERDICTS = ("ok", "flagged", "unchecked")


@dataclass(frozen=True)
class StoryFilter:
    """Story search: every field optional; ``verdict`` is ok / flagged / unchecked."""

    keyword: str | None = None
    status: str | None = None
    source: str | None = None
    model: str | None = None
    verdict: str | None = None
    text: str | None = None


def find_stories(
    session: Session,
    wanted: StoryFilter,
    *,
    offset: int = 0,
    limit: int = 50,
    oldest_first: bool = False,
) -> tuple[list[Story], int]:
    """One page of stories matching ``wanted`` (newest first; the review queue wants the oldest
    first) and how many match in all."""
    stmt = select(Story)
    if wanted.keyword:
        lemma = resolve_keyword(session, wanted.keyword) or ""
        stmt = (
            stmt.join(StoryKeyword, StoryKeyword.story_id == Story.id)
            .join(Keyword, Keyword.id == StoryKeyword.keyword_id)
            .where(Keyword.lemma == lemma)
        )
    if wanted.status:
        stmt = stmt.where(Story.review_status == wanted.status)
    if wanted.source:
        stmt = stmt.where(Story.source == wanted.source)
    if wanted.model:
        stmt = stmt.join(ModelRecord, ModelRecord.id == Story.model_id).where(
            ModelRecord.name == wanted.model
        )
    if wanted.verdict == "ok":
        stmt = stmt.where(Story.safety_verdict == "ok")
    elif wanted.verdict == "flagged":
        stmt = stmt.where(Story.safety_verdict.is_not(None), Story.safety_verdict != "ok")
    elif wanted.verdict == "unchecked":
        stmt = stmt.where(Story.safety_verdict.is_(None))
    if wanted.text:
        stmt = stmt.where(Story.title.contains(wanted.text, autoescape=True))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = session.scalars(
        stmt.options(selectinload(Story.links), selectinload(Story.model))
        .order_by(Story.id if oldest_first else Story.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(page), int(total)


class StaleStory(RuntimeError):
    """The story changed since the reviewer saw it (another reviewer, a recheck)."""


def review_by_person(
    session: Session,
    story_id: int,
    action: str,
    *,
    reviewer: str,
    seen_revision: int,
    reason: str | None = None,
    force: bool = False,
    gate: Gate | None = None,
) -> Story:
    """Approve (through the safety gate), reject or withdraw a story the reviewer has seen.

    ``seen_revision`` is the revision the reviewer's ETag named: StaleStory if the story moved on,
    now or while this runs (the UPDATE only matches that revision). LookupError when missing,
    ValueError for a bad action or a missing reason, FlaggedStory when the gate objects.
    """
    if action not in REVIEW_ACTIONS:
        raise ValueError(f"action must be one of {sorted(REVIEW_ACTIONS)}")
    if action != "approve" and not (reason and reason.strip()):
        raise ValueError(f"{action} needs a reason")
    story = session.get(Story, story_id)
    if story is None:
        raise LookupError(f"no story with id {story_id}")
    if story.revision != seen_revision:
        raise StaleStory(f"story {story_id} is at revision {story.revision}, not {seen_revision}")
    try:
        if action == "approve":
            approve_story(session, story_id, force=force, gate=gate)
        else:
            review_story(session, story_id, REVIEW_ACTIONS[action], reason)
            story.rejection_reason = reason.strip() if reason else None
        story.reviewed_by = reviewer[:100]
        story.reviewed_at = _utcnow()
        session.flush()
    except StaleDataError as exc:
        raise StaleStory(f"story {story_id} was changed by someone else meanwhile") from exc
    log.info("story %s: %s by %s%s", story_id, action, reviewer, f" ({reason})" if reason else "")
    return story


# --------------------------------------------------------------------------- demand


def demand(
    session: Session, status: str | None = None, *, offset: int = 0, limit: int = 50
) -> tuple[list[GenerationRequest], int]:
    """Requested topics, most asked for first, and how many there are in all."""
    stmt = select(GenerationRequest)
    if status:
        stmt = stmt.where(GenerationRequest.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(GenerationRequest.demand_count.desc(), GenerationRequest.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), int(total)


def missing_topics(session: Session, limit: int = 20) -> list[GenerationRequest]:
    """Asked-for topics the catalogue still lacks (pending or failed), most wanted first."""
    return list(
        session.scalars(
            select(GenerationRequest)
            .where(
                GenerationRequest.status.in_(
                    [RequestStatus.PENDING.value, RequestStatus.FAILED.value]
                )
            )
            .order_by(GenerationRequest.demand_count.desc(), GenerationRequest.id)
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- figures


def _counts(session: Session, column: Any) -> dict[str, int]:
    return {
        str(key): int(count)
        for key, count in session.execute(select(column, func.count()).group_by(column))
    }


def catalogue_stats(session: Session) -> dict[str, Any]:
    """The catalogue in numbers: stories by status and source, keywords, demand, plays."""
    keywords = session.scalar(select(func.count()).select_from(Keyword)) or 0
    covered = session.scalar(select(func.count()).where(Keyword.story_count > 0)) or 0
    return {
        "stories": {
            "total": session.scalar(select(func.count()).select_from(Story)) or 0,
            "by_status": _counts(session, Story.review_status),
            "by_source": _counts(session, Story.source),
        },
        "keywords": {"total": int(keywords), "with_approved_stories": int(covered)},
        "demand": {
            "by_status": _counts(session, GenerationRequest.status),
            "asks": int(session.scalar(select(func.sum(GenerationRequest.demand_count))) or 0),
        },
        "plays": int(session.scalar(select(func.count()).select_from(PlayHistory)) or 0),
    }


def _as_date(value: Any) -> date:
    """SQLite's date() gives text, MySQL's a date: one type for callers."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def per_day(session: Session, column: Any, days: int = 30) -> list[tuple[date, int]]:
    """Rows per day of a timestamp column over the last ``days`` days, zero days included."""
    today = _utcnow().date()
    first = today - timedelta(days=days - 1)
    day = func.date(column)
    found = {
        _as_date(when): int(count)
        for when, count in session.execute(
            select(day, func.count())
            .where(column >= datetime.combine(first, datetime.min.time()))
            .group_by(day)
        )
    }
    return [(first + timedelta(n), found.get(first + timedelta(n), 0)) for n in range(days)]


def plays_per_day(session: Session, days: int = 30) -> list[tuple[date, int]]:
    return per_day(session, PlayHistory.played_at, days)


def stories_per_day(session: Session, days: int = 30) -> list[tuple[date, int]]:
    return per_day(session, Story.created_at, days)


def new_demand_per_day(session: Session, days: int = 30) -> list[tuple[date, int]]:
    """New topics asked for per day (first ask of each topic)."""
    return per_day(session, GenerationRequest.created_at, days)


def keyword_coverage(session: Session, limit: int = 15) -> list[tuple[str, int]]:
    """The keywords with the most approved stories."""
    return [
        (lemma, int(count))
        for lemma, count in session.execute(
            select(Keyword.lemma, Keyword.story_count)
            .order_by(Keyword.story_count.desc(), Keyword.lemma)
            .limit(limit)
        )
    ]


# --------------------------------------------------------------------------- models


def list_models(session: Session) -> list[ModelRecord]:
    return list(session.scalars(select(ModelRecord).order_by(ModelRecord.id.desc())))


def live_model(session: Session) -> ModelRecord | None:
    """The model an operator chose for live stories, if any."""
    return session.scalar(select(ModelRecord).where(ModelRecord.live.is_(True)))


def chosen_live_model_path(engine: Engine) -> str | None:
    """Folder of the model an operator chose for live stories; None if none (or no store yet)."""
    try:
        with Session(engine) as session:
            record = live_model(session)
            return record.artifact_path if record is not None else None
    except SQLAlchemyError as exc:
        log.info("no live model choice read from the store: %s", exc)
        return None


def choose_live_model(session: Session, name: str) -> ModelRecord:
    """Make ``name`` the one live model; LookupError if it is not registered."""
    chosen = session.scalar(select(ModelRecord).where(ModelRecord.name == name))
    if chosen is None:
        raise LookupError(f"no model named {name!r}")
    for record in session.scalars(select(ModelRecord).where(ModelRecord.live.is_(True))):
        record.live = False
    chosen.live = True
    session.flush()
    log.info("live model is now %s (%s)", name, chosen.artifact_path)
    return chosen


def sample_stories(session: Session, model_id: int, limit: int = 3) -> Sequence[Story]:
    """A few of a model's newest stories, for the models page."""
    return session.scalars(
        select(Story).where(Story.model_id == model_id).order_by(Story.id.desc()).limit(limit)
    ).all()


def stories_by_model(session: Session) -> dict[int, int]:
    rows = session.execute(
        select(Story.model_id, func.count())
        .where(Story.model_id.is_not(None))
        .group_by(Story.model_id)
    )
    return {int(model_id): int(count) for model_id, count in rows}
