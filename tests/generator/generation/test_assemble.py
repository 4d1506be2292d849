"""Story assembly: cleanup, titles, degeneration filters and the approval verdict."""

from __future__ import annotations

import json

import pytest

from db.generation_jobs import APPROVED, PENDING, REJECTED
from generator.generation.assemble import (
    assemble_story,
    cut_at_last_sentence,
    keyword_in_text,
    keyword_title,
    quality_metrics,
    tidy_title,
)
from generator.prompting import END_TOKEN, STORY_TOKEN

GOOD_STORY = (
    "Once upon a time, a little dragon lived on a hill near the sea. Every evening he watched "
    "the children fly their kites in the wind. One day a red kite got stuck in a tall tree, and "
    "the girl who owned it began to cry. The dragon stretched his long neck and gently lifted "
    "the kite down. The girl hugged him and thanked him. From then on they played together "
    "every day, and at night the dragon curled up under the stars and dreamed of flying with "
    "all the kites in the sky. Soon the whole village knew the kind dragon, and nobody was "
    "afraid of him anymore."
)


def continuation(text: str, title: str = "The Dragon Who Loved Kites", end: bool = True) -> str:
    return f" {title}{STORY_TOKEN} {text}" + (END_TOKEN if end else "")


def test_good_story_is_approved() -> None:
    story = assemble_story(continuation(GOOD_STORY), ["dragon", "kite"])
    assert story.status == APPROVED, story.rejection_reason
    assert story.title == "The Dragon Who Loved Kites"
    assert story.servable
    assert story.quality["keywords_missing"] == []


def test_human_review_makes_it_pending() -> None:
    story = assemble_story(continuation(GOOD_STORY), ["dragon"], require_human_review=True)
    assert story.status == PENDING and not story.servable


def test_unfinished_story_is_cut_at_the_last_sentence() -> None:
    story = assemble_story(
        continuation(GOOD_STORY + " Then the dragon and the", end=False), ["dragon"]
    )
    assert story.text.endswith("anymore.")
    assert story.quality["cut"] is True and story.finished is False
    assert story.status == APPROVED


@pytest.mark.parametrize(
    ("text", "keywords", "reason"),
    [
        ("The dragon slept.", ["dragon"], "too short"),
        (("The dragon went to bed and slept. " * 20).strip(), ["dragon"], "repetitive"),
        (GOOD_STORY, ["dragon", "moon"], "missing keywords: moon"),
        (GOOD_STORY.replace("gently lifted", "killed the bird and lifted"), ["dragon"], "unsafe"),
        ("once upon a time there was a dragon and", ["dragon"], "unfinished"),
        (
            GOOD_STORY.replace(
                "in the wind",
                "hallangippin bucketch sandin cchchch gamech pooar "
                "spippill hcchakaleoe poilloooippassay catocaleippooo ipp oocal alea kippo ooc "
                "zorbl",
            ),
            ["dragon"],
            "gibberish",
        ),
    ],
)
def test_bad_stories_are_rejected_with_a_reason(
    text: str, keywords: list[str], reason: str
) -> None:
    story = assemble_story(continuation(text, end=False), keywords)
    assert story.status == REJECTED
    assert story.rejection_reason and reason in story.rejection_reason
    assert not story.servable


def test_unsafe_model_title_falls_back_to_the_keyword_title() -> None:
    story = assemble_story(continuation(GOOD_STORY, title="The Dead Dragon"), ["dragon", "kite"])
    assert story.status == APPROVED
    assert story.title == "The Dragon and the Kite"


def test_titles() -> None:
    assert keyword_title(["dragon", "kite"]) == "The Dragon and the Kite"
    assert keyword_title(["moon", "bear", "boat"]) == "The Moon, the Bear and the Boat"
    assert keyword_title([]) == "A Bedtime Story"
    assert tidy_title('"the owl and the moon."', 10) == "The Owl and the Moon"
    assert tidy_title("one two three four five six seven eight nine ten eleven", 10) is None


def test_cut_and_metrics() -> None:
    assert cut_at_last_sentence('He said "Good night." Then the') == ('He said "Good night."', True)
    assert cut_at_last_sentence("no end here") == ("", True)
    metrics = quality_metrics("a b c d a b c d a b c d")
    assert metrics["repetition_ratio"] > 0.5


def test_keyword_inclusion_is_whole_word_and_inflected() -> None:
    assert keyword_in_text("mouse", "Three mice danced.")
    assert keyword_in_text("dragon", "Dragons flew.")
    assert keyword_in_text("teddy bear", "two teddy  bears")
    assert not keyword_in_text("dragon", "A dragonfly flew.")
    assert not keyword_in_text("cat", "The caterpillar slept.")


def test_catalogue_record_round_trips_through_the_importer() -> None:
    from db.catalogue import parse_story_line

    story = assemble_story(continuation(GOOD_STORY), ["dragon", "kite"])
    story.model_name = "tiny"
    draft = parse_story_line(json.dumps(story.to_catalogue_record()))
    assert draft is not None and draft.source == "generated" and draft.review_status == "approved"
    assert list(draft.keywords) == ["dragon", "kite"]
