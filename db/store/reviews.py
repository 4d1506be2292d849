"""The safety review trail: every verdict on a story, stored with its reasons and checker.

The store asks :mod:`safety` (never the generator): :func:`gate_drafts` before approved-looking
imports, :func:`approve_story` before a person approves, :func:`recheck_stories` after the lists or
the classifier change. A story that fails a recheck is *withdrawn*: kept with its reasons, never
served, and back with ``bedtime stories approve --force`` if a person disagrees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ReviewStatus, SafetyReview, Story
from db.store.stories import StoryDraft, review_story

log = logging.getLogger(__name__)

#: (title, text) pairs -> one verdict each (safety.check_stories or a stand-in in tests).
Gate = Callable[[Sequence[tuple[str, str]]], Sequence[Any]]
CHECKED, HELD, WITHDRAWN, TRUSTED, FORCED = "checked", "held", "withdrawn", "trusted", "forced"
SUMMARY_MAX = 200


def default_gate(stories: Sequence[tuple[str, str]]) -> Sequence[Any]:
    """The safety gate: words, meaning (where its model is installed) and a calm ending."""
    from safety import check_stories

    return check_stories(stories)


def summary(verdict: Any) -> str:
    """What ``stories.safety_verdict`` keeps: ``ok`` or the reason, cut to the column."""
    text = "ok" if verdict.ok else str(verdict.reason)
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def record_verdict(session: Session, story: Story, verdict: Any, action: str) -> SafetyReview:
    """Keep one verdict on the story's trail and its gist on the story."""
    review = SafetyReview(
        story_id=story.id,
        ok=bool(verdict.ok),
        action=action,
        checker=str(getattr(verdict, "checker", "") or "unknown")[:100],
        reasons=verdict.as_dict(),
    )
    session.add(review)
    story.safety_verdict = summary(verdict)
    session.flush()
    return review


def reviews_of(session: Session, story_id: int) -> list[SafetyReview]:
    """A story's trail, oldest first."""
    return list(
        session.scalars(
            select(SafetyReview).where(SafetyReview.story_id == story_id).order_by(SafetyReview.id)
        )
    )


def gate_drafts(
    drafts: Sequence[StoryDraft], *, trust: bool = False, gate: Gate | None = None
) -> list[tuple[Any, str]]:
    """Judge drafts before they are stored: (verdict, action) for each.

    An approved-looking draft that fails is held back as pending, with its reasons as the
    rejection reason, unless ``trust`` (then it stays approved and the trail says ``trusted``).
    """
    verdicts = (gate or default_gate)([(d.title, d.text) for d in drafts])
    out = []
    for draft, verdict in zip(drafts, verdicts, strict=True):
        action = CHECKED
        if not verdict.ok and draft.review_status == ReviewStatus.APPROVED:
            if trust:
                action = TRUSTED
                log.warning("trusted despite the safety gate: %r (%s)", draft.title, verdict.reason)
            else:
                action = HELD
                draft.review_status = ReviewStatus.PENDING.value
                draft.rejection_reason = str(verdict.reason)
        draft.safety_verdict = summary(verdict)
        out.append((verdict, action))
    return out


class FlaggedStory(ValueError):
    """The gate flags the story; approving it needs ``force``."""

    def __init__(self, story_id: int, verdict: Any) -> None:
        super().__init__(f"story {story_id} is flagged: {verdict.reason}")
        self.verdict = verdict


def approve_story(
    session: Session, story_id: int, *, force: bool = False, gate: Gate | None = None
) -> tuple[Story, Any]:
    """Approve a story after the gate has seen it; FlaggedStory unless it passes or ``force``."""
    story = session.get(Story, story_id)
    if story is None:
        raise LookupError(f"no story with id {story_id}")
    verdict = (gate or default_gate)([(story.title, story.text)])[0]
    if not verdict.ok and not force:
        record_verdict(session, story, verdict, CHECKED)
        raise FlaggedStory(story_id, verdict)
    record_verdict(session, story, verdict, CHECKED if verdict.ok else FORCED)
    return review_story(session, story_id, ReviewStatus.APPROVED.value), verdict


@dataclass
class RecheckReport:
    """What ``bedtime stories recheck`` did."""

    checked: int = 0
    passed: int = 0
    flagged: int = 0
    withdrawn: list[tuple[int, str, str]] = field(default_factory=list)  # id, title, reason
    categories: dict[str, int] = field(default_factory=dict)
    checker: str = ""

    def summary(self) -> str:
        return (
            f"{self.checked} checked, {self.passed} passed, {self.flagged} flagged, "
            f"{len(self.withdrawn)} withdrawn ({self.checker})"
        )


def recheck_stories(
    session: Session,
    *,
    statuses: Sequence[str] = (ReviewStatus.APPROVED.value, ReviewStatus.PENDING.value),
    gate: Gate | None = None,
    batch_size: int = 64,
    withdraw: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> RecheckReport:
    """Run the gate over every story with one of ``statuses``; store each verdict.

    Approved stories that fail are withdrawn (not deleted) when ``withdraw``; pending ones keep
    their status and get the verdict on their trail for the reviewer. Flushes, does not commit.
    """
    report = RecheckReport()
    last_id = 0
    while True:
        batch = list(
            session.scalars(
                select(Story)
                .where(Story.id > last_id, Story.review_status.in_(list(statuses)))
                .order_by(Story.id)
                .limit(batch_size)
            )
        )
        if not batch:
            break
        last_id = batch[-1].id
        verdicts = (gate or default_gate)([(story.title, story.text) for story in batch])
        for story, verdict in zip(batch, verdicts, strict=True):
            report.checked += 1
            report.checker = str(getattr(verdict, "checker", ""))
            if verdict.ok:
                report.passed += 1
                record_verdict(session, story, verdict, CHECKED)
                continue
            report.flagged += 1
            for category in getattr(verdict, "categories", []) or ["flagged"]:
                report.categories[category] = report.categories.get(category, 0) + 1
            if withdraw and story.review_status == ReviewStatus.APPROVED:
                record_verdict(session, story, verdict, WITHDRAWN)
                review_story(session, story.id, ReviewStatus.WITHDRAWN.value)
                story.rejection_reason = str(verdict.reason)
                report.withdrawn.append((story.id, story.title, str(verdict.reason)))
            else:
                record_verdict(session, story, verdict, CHECKED)
        if on_batch is not None:
            on_batch(len(batch))
    session.flush()
    return report
