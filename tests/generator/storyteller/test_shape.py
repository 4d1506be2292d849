"""The shape rules: assistant habits and wound-up endings are caught; ordinary stories pass."""

from __future__ import annotations

import pytest

from generator.storyteller.quality import Candidate, judge
from generator.storyteller.shape import (
    ends_on_a_question,
    format_marks,
    reader_talk,
    shape_problems,
    wound_up_ending,
)

CALM_STORY = (
    "Mia had a small red kite. She flew it over the hill until the sun went down.\n\n"
    'Her dad asked, "Are you sleepy?" Mia nodded. She tucked the kite beside her bed, '
    "smiled at the moon and fell fast asleep."
)


def test_a_calm_story_has_no_shape_problems() -> None:
    assert shape_problems(CALM_STORY) == []


@pytest.mark.parametrize(
    "text",
    [
        "**Characters:**\n1. Mia - a girl who loves kites.\n2. Dad - kind.",
        "Story:\nMia flew her kite.",
        "Mia flew her kite.\n\n- The kite - red and small.",
        "# The Kite\nMia flew her kite.",
        "Mia flew her __red__ kite.",
        "Characters: Mia and her dad.\nMia flew her kite.",
        "Description: A kite is a toy.\nMia flew her kite.",
        "Story: 12.5.56\nMia flew her kite.",
        "Author's Note: a fun story.\nMia flew her kite.",
    ],
)
def test_markdown_and_outlines_are_caught(text: str) -> None:
    assert format_marks(text)
    assert shape_problems(text)[0].startswith("formatted like a document")


@pytest.mark.parametrize(
    "text",
    [
        "Mia slept. What do you think about Mia's choice?",
        "This story teaches us to share.",
        "In this story, a girl meets a kite.",
        "I hope you enjoyed the story of Mia.",
        "Here is a bedtime story about a kite.",
        "Would you like to hear another one?",
        "Mia slept. This story is about sharing.",
        "This gentle tale teaches children to be kind.",
        "Click here to read more stories like this.",
        "Finn slept. You are a gentle storyteller. You write calming bedtime stories.",
        "Finish the story by having Finn return to the pond and find his friends again.",
        "Mia slept. Chat about your favorite bedtime story.",
    ],
)
def test_the_narrator_talking_to_the_reader_is_caught(text: str) -> None:
    assert reader_talk(text)


@pytest.mark.parametrize(
    "text",
    [
        '"What do you think?" asked Mia. Her dad smiled and tucked her in.',
        "\u201cWould you like to fly it tomorrow?\u201d said Dad. Mia yawned and slept.",
        "Mia drew a number 1. on the sand, then 2, and went home to sleep.",
        "He explained: the kite needed wind. Mia nodded and went to sleep.",
        "Mia remembered the story her dad told. The story ended with a sleepy bear.",
        "Dad finished the story, and Mia was asleep before the last page.",
        '"Finish the story!" begged Mia, and Dad read the last page.',
        "This is a story about a pumpkin. Sarah planted it and watched it grow.",
        "Timmy and his dad stopped to chat about the music, then went home to sleep.",
    ],
)
def test_dialogue_and_ordinary_prose_are_not_reader_talk_or_format(text: str) -> None:
    assert reader_talk(text) == []
    assert format_marks(text) == []


def test_a_closing_question_is_a_problem_and_one_inside_the_story_is_not() -> None:
    assert ends_on_a_question("Mia went to bed. Would the kite come back tomorrow?")
    assert ends_on_a_question('Mia yawned. "Will you stay?"')
    assert "ends on a question" in shape_problems("Mia slept. Where was the kite?")
    assert not ends_on_a_question("Where was the kite? It was under her bed. Mia slept.")


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("Mia went home. She couldn't wait for her next adventure!", "couldn't wait"),
        ("Mia went home. New adventures were waiting for her.", "New adventures"),
        ("Mia smiled. She was so excited about tomorrow.", "excited"),
    ],
)
def test_a_wound_up_ending_is_named(text: str, cue: str) -> None:
    assert wound_up_ending(text) == cue
    assert shape_problems(text) == []  # a preference in best-of-N, not a rejection


def test_excitement_early_in_the_story_is_fine() -> None:
    text = (
        "Mia was so excited about her new kite. She flew it all afternoon. "
        "At dusk she carried it home. She had supper with Dad. Then she fell asleep."
    )
    assert wound_up_ending(text) is None


def test_best_of_prefers_the_settled_ending() -> None:
    settled = "Title: Mia's Kite\n\n" + CALM_STORY
    wound_up = settled.replace("fell fast asleep.", "could not wait for her next adventure.")
    scores = [
        judge(Candidate(reply, True, mean_logprob=-1.0), ["kite"], min_words=10, max_words=200)
        for reply in (settled, wound_up)
    ]
    assert all(s.accepted for s in scores)
    assert scores[1].metrics["wound_up_ending"] == "next adventure"
    assert scores[0].score > scores[1].score


def test_the_judge_rejects_a_story_that_talks_to_the_reader() -> None:
    reply = "Title: Mia's Kite\n\n" + CALM_STORY + " What do you think of Mia's kite?"
    verdict = judge(Candidate(reply, finished=True), ["kite"], min_words=10, max_words=200)
    assert not verdict.accepted
    assert any("talks to the reader" in p for p in verdict.problems)
    assert any("ends on a question" in p for p in verdict.problems)
    calm = judge(
        Candidate("Title: Mia's Kite\n\n" + CALM_STORY, finished=True),
        ["kite"],
        min_words=10,
        max_words=200,
    )
    assert calm.metrics["shape"] == []
