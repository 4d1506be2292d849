"""Story import/export in JSON Lines, and the starter catalogue shipped with the package.

One JSON object per line: ``title``, ``text``, ``keywords`` (list of strings), optional
``source`` (generated|imported|handwritten), ``status`` (pending|approved|rejected;
``review_status`` is accepted too), ``locale`` (default en-US), ``rejection_reason``. Unknown
fields are ignored, so an export can be re-imported. Bad lines are reported by number and
skipped; good lines are kept; re-importing the same file adds nothing (stories are identified by
a hash of title and text).

Every story passes the safety gate on the way in (:func:`db.store.gate_drafts`): an
approved-looking line that fails is kept as pending with the reasons, unless ``trust`` (logged,
and the story's review trail says ``trusted``). Each verdict is stored on the story's trail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from db.models import ReviewStatus, Story, StorySource
from db.store import StoryDraft, add_story, content_hash, gate_drafts, record_verdict
from db.store.reviews import HELD, Gate

log = logging.getLogger(__name__)

STARTER_CATALOGUE = Path(__file__).resolve().parent / "data" / "starter_catalogue.jsonl"
_LOCALE_MAX = 16


class InvalidStoryLine(ValueError):
    """A JSONL line that is not a usable story; the message says why."""


@dataclass
class ImportReport:
    """What an import did; ``errors`` holds (line number, reason) for every skipped line."""

    added: int = 0
    existing: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    held: list[tuple[int, str]] = field(default_factory=list)  # (line, reason): kept pending
    trusted: int = 0

    @property
    def invalid(self) -> int:
        return len(self.errors)

    def summary(self) -> str:
        text = f"{self.added} added, {self.existing} already present, {self.invalid} invalid"
        if self.held:
            text += f", {len(self.held)} held for review by the safety gate"
        if self.trusted:
            text += f", {self.trusted} trusted despite the safety gate"
        return text


def parse_story_line(
    raw: str | bytes,
    default_source: str = StorySource.IMPORTED.value,
    default_status: str = ReviewStatus.PENDING.value,
) -> StoryDraft | None:
    """One JSONL line -> StoryDraft; None for a blank line; InvalidStoryLine when unusable."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidStoryLine(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    line = raw.strip().lstrip("\ufeff")
    if not line:
        return None
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidStoryLine(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InvalidStoryLine("expected a JSON object")
    title, text = data.get("title"), data.get("text")
    if not isinstance(title, str) or not title.strip():
        raise InvalidStoryLine("missing or empty 'title'")
    if not isinstance(text, str) or not text.strip():
        raise InvalidStoryLine("missing or empty 'text'")
    keywords = data.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise InvalidStoryLine("'keywords' must be a list of strings")
    source = data.get("source") or default_source
    if source not in set(StorySource):
        raise InvalidStoryLine(f"'source' must be one of {', '.join(StorySource)}, not {source!r}")
    status = data.get("status") or data.get("review_status") or default_status
    if status not in set(ReviewStatus):
        raise InvalidStoryLine(f"'status' must be one of {', '.join(ReviewStatus)}, not {status!r}")
    locale = data.get("locale") or "en-US"
    if not isinstance(locale, str) or len(locale) > _LOCALE_MAX:
        raise InvalidStoryLine(f"'locale' must be a short string like en-US, not {locale!r}")
    reason = data.get("rejection_reason")
    return StoryDraft(
        title=title,
        text=text,
        keywords=keywords,
        locale=locale,
        source=str(source),
        review_status=str(status),
        rejection_reason=reason if isinstance(reason, str) else None,
        prompt=data.get("prompt") if isinstance(data.get("prompt"), str) else None,
        quality=data.get("quality") if isinstance(data.get("quality"), dict) else {},
    )


def import_lines(
    session: Session,
    lines: Iterable[str | bytes],
    *,
    default_source: str = StorySource.IMPORTED.value,
    default_status: str = ReviewStatus.PENDING.value,
    commit_every: int | None = None,
    on_line: Callable[[int], None] | None = None,
    trust: bool = False,
    gate: Gate | None = None,
    chunk: int = 64,
) -> ImportReport:
    """Import JSONL lines; each story in its own savepoint so one failure cannot undo others.

    Lines are read in chunks of ``chunk`` so the safety gate judges a chunk's stories in one
    batch. ``commit_every``: commit after that many stories (a crash keeps the work done so far,
    and a re-run skips it); None leaves committing to the caller.
    """
    report = ImportReport()
    waiting: list[tuple[int, StoryDraft]] = []
    pending = 0

    def flush_chunk() -> None:
        nonlocal pending
        judged = gate_drafts([draft for _, draft in waiting], trust=trust, gate=gate)
        for (number, draft), (verdict, action) in zip(waiting, judged, strict=True):
            try:
                with session.begin_nested():
                    story = add_story(session, draft)
                    record_verdict(session, story, verdict, action)
            except (ValueError, SQLAlchemyError) as exc:
                log.warning("line %d not imported: %s", number, exc)
                report.errors.append((number, f"not stored: {exc}".splitlines()[0][:300]))
                continue
            report.added += 1
            if action == HELD:
                report.held.append((number, str(verdict.reason)))
            report.trusted += action == "trusted"
            pending += 1
            if commit_every and pending >= commit_every:
                session.commit()
                pending = 0
        waiting.clear()

    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if on_line is not None:
            on_line(number)
        try:
            draft = parse_story_line(raw, default_source, default_status)
        except InvalidStoryLine as exc:
            report.errors.append((number, str(exc)))
            continue
        if draft is None:
            continue
        digest = content_hash(" ".join(draft.title.split()), draft.text.strip())
        if digest in seen or session.scalar(select(Story.id).where(Story.content_hash == digest)):
            report.existing += 1
            continue
        seen.add(digest)
        waiting.append((number, draft))
        if len(waiting) >= chunk:
            flush_chunk()
    if waiting:
        flush_chunk()
    if commit_every and pending:
        session.commit()
    log.info("import finished: %s", report.summary())
    return report


def story_to_json(story: Story) -> str:
    """One export line; import_lines reads it back unchanged."""
    record = {
        "id": story.id,
        "title": story.title,
        "text": story.text,
        "keywords": story.keyword_lemmas,
        "source": story.source,
        "status": story.review_status,
        "locale": story.locale,
    }
    if story.rejection_reason:
        record["rejection_reason"] = story.rejection_reason
    return json.dumps(record, ensure_ascii=False)


def _torch_free_gate(stories: list[tuple[str, str]]) -> list:
    from safety import check_stories

    return check_stories(stories, meaning=False)


def load_starter_catalogue(
    session: Session, path: Path | None = None, gate: Gate | None = None
) -> int:
    """Import the starter stories shipped with the package; returns how many were new.

    Idempotent: stories already present are skipped. Does not commit. The stories pass the
    safety gate like any approved-looking import (one that fails is kept pending), by default its
    torch-free layers (words, calm ending): the shipped catalogue passed the whole gate, meaning
    check included, before it was shipped (tests/db/test_catalogue.py), and a container boots
    without the model in seconds.
    """
    if gate is None:
        gate = _torch_free_gate
    source = path or STARTER_CATALOGUE
    if not source.exists():
        log.warning("starter catalogue %s is missing; nothing loaded", source)
        return 0
    with source.open("rb") as handle:
        report = import_lines(
            session,
            handle,
            default_source=StorySource.HANDWRITTEN.value,
            default_status=ReviewStatus.APPROVED.value,
            gate=gate,
        )
    for number, reason in report.held:
        log.warning("starter catalogue line %d held for review: %s", number, reason)
    for number, reason in report.errors:
        log.error("starter catalogue line %d skipped: %s", number, reason)
    return report.added
