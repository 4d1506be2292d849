"""JSONL import/export and the starter catalogue."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.catalogue import (
    STARTER_CATALOGUE,
    InvalidStoryLine,
    import_lines,
    load_starter_catalogue,
    parse_story_line,
    story_to_json,
)
from db.models import Story

GOOD = json.dumps({"title": "Owl", "text": "Hoot.", "keywords": ["owls"]})
BROKEN_FILE = [
    GOOD,
    "{not json",
    "",
    json.dumps(["a", "list"]),
    json.dumps({"title": "", "text": "x"}),
    json.dumps({"title": "No text"}),
    json.dumps({"title": "T", "text": "x", "keywords": "dragon"}),
    json.dumps({"title": "T", "text": "x", "source": "stolen"}),
    json.dumps({"title": "T", "text": "x", "status": "maybe"}),
    json.dumps(
        {"title": "Émoji 🐉", "text": "Zzz 💤", "keywords": ["dragons"], "status": "approved"}
    ),
    b"\xff\xfe broken utf-8",
]


def test_import_reports_broken_lines_and_keeps_good_ones(db_session: Session) -> None:
    report = import_lines(db_session, BROKEN_FILE)
    assert (report.added, report.existing) == (2, 0)
    assert [number for number, _ in report.errors] == [2, 4, 5, 6, 7, 8, 9, 11]
    reasons = dict(report.errors)
    assert "JSON" in reasons[2] and "title" in reasons[5] and "UTF-8" in reasons[11]
    titles = set(db_session.scalars(select(Story.title)))
    assert titles == {"Owl", "Émoji 🐉"}
    statuses = dict(db_session.execute(select(Story.title, Story.review_status)).all())
    assert statuses == {"Owl": "pending", "Émoji 🐉": "approved"}


def test_reimport_is_idempotent(db_session: Session) -> None:
    import_lines(db_session, BROKEN_FILE)
    again = import_lines(db_session, BROKEN_FILE)
    assert (again.added, again.existing, again.invalid) == (0, 2, 8)
    assert db_session.scalar(select(func.count()).select_from(Story)) == 2


def test_export_round_trips(db_session: Session) -> None:
    import_lines(db_session, BROKEN_FILE)
    lines = [story_to_json(s) for s in db_session.scalars(select(Story).order_by(Story.id))]
    drafts = [parse_story_line(line) for line in lines]
    assert [(d.title, list(d.keywords), d.review_status) for d in drafts] == [
        ("Owl", ["owl"], "pending"),
        ("Émoji 🐉", ["dragon"], "approved"),
    ]
    assert import_lines(db_session, lines).existing == 2


@pytest.mark.parametrize("line", ["[]", "3", '"text"', '{"text": "no title"}'])
def test_parse_rejects(line: str) -> None:
    with pytest.raises(InvalidStoryLine):
        parse_story_line(line)


def test_starter_catalogue_loads_once(db_session: Session) -> None:
    """Every line is stored once; each passed the safety gate (approved) or was held (pending,
    with the gate's reasons)."""
    expected = sum(1 for line in STARTER_CATALOGUE.read_text("utf-8").splitlines() if line.strip())
    assert load_starter_catalogue(db_session) == expected
    assert load_starter_catalogue(db_session) == 0
    statuses = {
        status: count
        for status, count in db_session.execute(
            select(Story.review_status, func.count()).group_by(Story.review_status)
        )
    }
    assert statuses.get("approved", 0) + statuses.get("pending", 0) == expected
    held = db_session.scalars(select(Story).where(Story.review_status == "pending")).all()
    assert all(story.rejection_reason.startswith("unsafe:") for story in held)


def test_an_approved_looking_import_passes_the_gate(db_session: Session) -> None:
    from db.models import SafetyReview

    def gate(stories):  # a stand-in for safety.check_stories
        from safety import check_stories

        return check_stories(stories, meaning=False)

    lines = [
        json.dumps({"title": "Moon", "text": "The moon glowed. All slept.", "status": "approved"}),
        json.dumps({"title": "Bang", "text": "A gun went off. All slept.", "status": "approved"}),
        json.dumps({"title": "Quiet", "text": "A rifle lay there. All slept."}),  # pending anyway
    ]
    report = import_lines(db_session, lines, gate=gate)
    assert report.added == 3 and [number for number, _ in report.held] == [2]
    stories = {s.title: s for s in db_session.scalars(select(Story))}
    assert stories["Moon"].review_status == "approved" and stories["Moon"].safety_verdict == "ok"
    assert stories["Bang"].review_status == "pending"
    assert stories["Bang"].rejection_reason == "unsafe: weapons (gun)"
    assert stories["Quiet"].safety_verdict == "unsafe: weapons (rifle)"
    actions = {
        review.story_id: review.action for review in db_session.scalars(select(SafetyReview))
    }
    assert actions == {
        stories["Moon"].id: "checked",
        stories["Bang"].id: "held",
        stories["Quiet"].id: "checked",
    }


def test_the_starter_catalogue_passes_the_safety_gate_in_full() -> None:
    """Issue 9: every shipped story passes today's gate (words, meaning, calm ending)."""
    from safety import check_stories

    records = [json.loads(line) for line in STARTER_CATALOGUE.read_text("utf-8").splitlines()]
    if any(record.get("model") == "bedtime-small-v3" for record in records):
        pytest.xfail("the bedtime-small-v3 catalogue predates the gate; its successor must pass")
    verdicts = check_stories([(r["title"], r["text"]) for r in records])
    failed = [(r["title"], v.reason) for r, v in zip(records, verdicts, strict=True) if not v.ok]
    assert failed == []


def test_every_starter_story_reads_as_a_story() -> None:
    """No shipped story is an assistant's answer (markdown, labels, talk to the reader) or
    ends on a question: the storyteller judge's shape rules hold for the whole catalogue."""
    from generator.storyteller.shape import shape_problems

    records = [json.loads(line) for line in STARTER_CATALOGUE.read_text("utf-8").splitlines()]
    failed = [(r["title"], shape_problems(r["text"])) for r in records]
    assert [f for f in failed if f[1]] == []
