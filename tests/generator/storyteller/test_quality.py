"""The storyteller's judge on handwritten stories: each hard rule, and best-of-N selection."""

from __future__ import annotations

import pytest

from generator.storyteller.quality import (
    Candidate,
    Judgement,
    best_of,
    judge,
    keyword_in_role,
    made_up_words,
    repeated_sentences,
    title_problems,
)

STORY = (
    "Once upon a time, a little dragon lived on a green hill. Every morning he watched the "
    "children fly a red kite in the wind. One day the kite got stuck in a tall tree. The dragon "
    "stretched his long neck and gently lifted the kite down. The children laughed and thanked "
    "him. They shared their picnic with the friendly dragon, and they all flew the kite together "
    "until the sun went down. When the stars came out, the dragon curled up beside the kite and "
    "yawned. He felt warm and happy. Soon everyone was fast asleep, dreaming of the sky. Good "
    "night, little dragon."
)
GOOD = f"Title: The Dragon and the Kite\n\n{STORY}"
KEYWORDS = ["dragon", "kite"]


def verdict(reply: str, keywords: list[str] = KEYWORDS, finished: bool = True) -> Judgement:
    return judge(Candidate(reply, finished, -1.0, 140), keywords, min_words=70, max_words=200)


def test_good_story_is_accepted() -> None:
    judged = verdict(GOOD)
    assert judged.problems == []
    assert judged.accepted
    assert judged.title == "The Dragon and the Kite"
    assert judged.text == STORY
    assert judged.metrics["words"] == 105
    assert judged.metrics["keyword_mentions"] == {"dragon": 5, "kite": 5}
    assert judged.metrics["keywords_missing"] == []
    assert judged.metrics["safety"]["ok"] is True
    # mean log-prob + keyword bonus (capped at 3 mentions) + 0.5 * distinct-2
    assert judged.score == pytest.approx(-1.0 + 0.15 + 0.5 * judged.metrics["distinct_2"])


def test_not_finished_by_the_model_is_rejected() -> None:
    assert verdict(GOOD, finished=False).problems == ["unfinished (no proper ending)"]


def test_cut_mid_sentence_is_rejected_and_trimmed() -> None:
    judged = verdict(GOOD + " Then the moon", finished=True)
    assert judged.problems == ["unfinished (no proper ending)"]
    assert judged.text == STORY
    assert judged.metrics["cut"] is True


def test_too_short() -> None:
    reply = "Title: Kite\n\nThe little dragon flew a kite. Then the dragon slept."
    assert verdict(reply).problems == ["too short (10 words < 70)"]


def test_too_long() -> None:
    judged = judge(Candidate(GOOD, True, -1.0), KEYWORDS, min_words=70, max_words=100)
    assert judged.problems == ["too long (105 words > 100)"]


def test_missing_keyword() -> None:
    assert verdict(GOOD, ["dragon", "owl"]).problems == ["missing keywords: owl"]


def test_keyword_glued_into_another_word_is_missing() -> None:
    reply = GOOD.replace("dragon", "dragonfly").replace("Dragon", "Dragonfly")
    judged = verdict(reply)
    assert judged.problems == ["missing keywords: dragon"]
    assert judged.metrics["keywords_missing"] == ["dragon"]


@pytest.mark.parametrize(
    ("keyword", "text", "in_role"),
    [
        ("owl", "Far away the owl hooted softly.", True),  # after a determiner
        ("owl", "She hugged her sleepy owl.", True),  # after possessive + adjective
        ("owl", "Everyone waved to Owl.", True),  # a capitalised name
        ("owl", "Three owls sang.", True),
        ("owl", "At night owls sang.", True),  # plural, no determiner
        ("mouse", "At dusk mice danced.", True),  # irregular plural
        ("owl", "He went owl hunting quickly.", False),  # a modifier, not the noun
        ("dragon", "I like dragonfly wings.", False),
        ("owl", "Nothing here at all.", False),
    ],
)
def test_keyword_in_role(keyword: str, text: str, in_role: bool) -> None:
    assert keyword_in_role(keyword, text) is in_role


def test_plural_and_name_keywords_are_accepted_by_judge() -> None:
    reply = GOOD.replace("Good night, little dragon.", "Owls hooted. Good night, Bear.")
    judged = verdict(reply, ["dragon", "owl", "bear"])
    assert judged.problems == []


@pytest.mark.parametrize("invented", ["bookshel", "hallangippin"])
def test_made_up_word_is_rejected(invented: str) -> None:
    judged = verdict(GOOD.replace("tall tree", f"tall {invented}"))
    assert judged.problems == [f"made-up words: {invented}"]
    assert judged.metrics["made_up_words"] == [invented]


def test_names_are_not_made_up_words() -> None:
    assert made_up_words("Pip and Luna met Hallangippin by the tree.") == []
    judged = verdict(GOOD.replace("The children laughed", "Pip and Luna laughed"))
    assert judged.problems == []


def test_a_hero_who_changes_name_is_rejected() -> None:
    reply = GOOD.replace("a little dragon lived", "a little dragon named Pip lived").replace(
        "The children laughed", "Soon Pippa laughed"
    )
    judged = verdict(reply)
    assert judged.problems == ["names drift: Pip/Pippa"]
    assert judged.metrics["name_drift"] == ["Pip/Pippa"]


@pytest.mark.parametrize(
    ("title", "problem"),
    [
        ("The Story of the Key and the Robin by Erin Scott", "title credits an author or a series"),
        ('The Pancake" by Erica', "title credits an author or a series"),
        ("Daily Daily Daily Story", "title repeats a word"),
        ("The Rose and the Galerrygus", "made-up words in the title: galerrygus"),
    ],
)
def test_titles_a_parent_would_not_read_out(title: str, problem: str) -> None:
    assert problem in title_problems(title)
    assert problem in verdict(GOOD.replace("The Dragon and the Kite", title)).problems


@pytest.mark.parametrize(
    "title", ["The Dragon and the Kite", "A Boat by the Sea", "The Cat & the Cookie", "Pip's Moon"]
)
def test_plain_titles_pass(title: str) -> None:
    assert title_problems(title) == []


def test_repeated_sentence_is_rejected() -> None:
    reply = GOOD.replace(
        "He felt warm and happy.", "He felt warm and happy. He felt warm and happy."
    )
    assert repeated_sentences(reply) == 1
    assert verdict(reply).problems == ["repeats itself (1 repeated sentences)"]


def test_short_repeated_sentences_are_fine() -> None:
    assert repeated_sentences("Good night. Good night. The owl slept.") == 0


def test_no_title_is_rejected() -> None:
    judged = verdict(STORY)
    assert judged.problems == ["no title"]
    assert judged.title is None


def test_unsafe_word_is_rejected() -> None:
    judged = verdict(GOOD.replace("gently lifted", "killed"))
    assert len(judged.problems) == 1
    assert judged.problems[0].startswith("unsafe: violence (killed)")
    assert judged.metrics["safety"]["ok"] is False


def test_unsafe_title_is_rejected() -> None:
    judged = verdict(GOOD.replace("Title: The Dragon and the Kite", "Title: The Dragon's Gun"))
    assert len(judged.problems) == 1
    assert judged.problems[0].startswith("unsafe: weapons (gun")


def test_every_problem_is_listed() -> None:
    judged = judge(Candidate("the bookshel", False), ["owl"], min_words=70, max_words=200)
    assert judged.problems == [
        "unfinished (no proper ending)",
        "too short (0 words < 70)",
        "missing keywords: owl",
        "no title",
    ]
    assert not judged.accepted


def _judgement(score: float, problems: list[str]) -> Judgement:
    return Judgement(title="T", text="x", problems=problems, score=score)


def test_best_of_picks_highest_scoring_accepted() -> None:
    low, high = _judgement(-2.0, []), _judgement(-1.0, [])
    better_but_rejected = _judgement(5.0, ["no title"])
    assert best_of([low, better_but_rejected, high]) is high


def test_best_of_without_accepted_picks_fewest_problems_then_score() -> None:
    many = _judgement(3.0, ["a", "b", "c"])
    one_low = _judgement(-3.0, ["a"])
    one_high = _judgement(-1.0, ["b"])
    assert best_of([many, one_low, one_high]) is one_high
    assert best_of([many, one_low]) is one_low


def test_model_confidence_decides_between_good_stories() -> None:
    sure = judge(Candidate(GOOD, True, -0.5), KEYWORDS, min_words=70, max_words=200)
    unsure = judge(Candidate(GOOD, True, -2.5), KEYWORDS, min_words=70, max_words=200)
    assert sure.score > unsure.score
    assert best_of([unsure, sure]) is sure


def test_one_name_for_two_characters_is_rejected() -> None:
    reply = GOOD.replace("The children laughed", "Pip and Pip laughed")
    judged = verdict(reply)
    assert judged.problems == ["one name for two characters: Pip and Pip"]
    assert judged.metrics["name_collisions"] == ["Pip and Pip"]


def test_a_title_may_use_a_name_from_the_story_but_not_an_invented_word() -> None:
    assert title_problems("Mia's Kite", {"Mia"}) == []
    assert title_problems("Pip and the Moon", {"Pip"}) == []
    assert title_problems("Mia's Kite") == ["made-up words in the title: mia's"]
    assert title_problems("The Snowguin Kite", {"Mia"}) == ["made-up words in the title: snowguin"]
