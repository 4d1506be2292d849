"""The request policy: every category redirects, inflections count, gentle words are allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from safety.lists import parse_lists
from safety.requests import ALLOW, REDIRECT, first_redirect, judge_request, judge_requests

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("word", "category"),
    [
        ("poo", "potty"),
        ("poopy", "potty"),
        ("farting", "potty"),  # inflection of a listed lemma
        ("butt", "potty"),
        ("gun", "weapons"),
        ("guns", "weapons"),
        ("handgun", "weapons"),
        ("machine guns", "weapons"),  # phrase, inflected
        ("sword", "weapons"),
        ("vape", "drugs and alcohol"),
        ("beer", "drugs and alcohol"),
        ("cigarettes", "drugs and alcohol"),
        ("kill", "violence"),
        ("killing", "violence"),
        ("zombies", "violence"),
        ("blood", "violence"),
        ("kiss", "adult"),
        ("kissing", "adult"),
        ("sexy", "adult"),
        ("idiot", "cruelty and insults"),
        ("stupid", "cruelty and insults"),
        ("shut up", "cruelty and insults"),
        ("shit", "profanity"),  # better-profanity's list
        ("rainbow-tit", "profanity"),  # a hyphenated compound is split
    ],
)
def test_every_category_redirects(word: str, category: str) -> None:
    verdict = judge_request(word)
    assert verdict.action == REDIRECT, verdict
    assert verdict.category == category
    assert verdict.line().startswith("redirect (")


@pytest.mark.parametrize(
    "word",
    [
        "dragon", "ghost", "monster", "witch", "pirate", "shark", "thunderstorm", "wolf",
        "dinosaur", "spider", "skeleton", "knight", "ugly duckling", "pillow fight",
        "shooting star", "dice", "bottom", "balls", "princess", "bunny", "moon",
    ],
)  # fmt: skip
def test_gentle_words_are_allowed(word: str) -> None:
    assert judge_request(word).action == ALLOW
    assert judge_request(word).line() == "allow"


def test_a_whole_request_and_several_words() -> None:
    assert judge_request("a story about a gun").category == "weapons"
    verdicts = judge_requests(["dragon", "poop"])
    assert [v.action for v in verdicts] == [ALLOW, REDIRECT]
    assert first_redirect(["dragon", "moon"]) is None
    assert first_redirect(["dragon", "vodka"]).word == "vodka"


def test_the_starter_keywords_are_all_allowed() -> None:
    path = ROOT / "generator" / "data" / "starter_keywords.txt"
    words = [w.strip() for w in path.read_text().splitlines() if w.strip() and w[0] != "#"]
    assert [w for w in words if not judge_request(w).allowed] == []


def test_the_list_format() -> None:
    lists = parse_lists("[sea]\nshark\nswim away\n!sharky\n!shark tank\n", {"rude": {"darn"}})
    assert lists.find("Two Sharks!")[0].category == "sea"
    assert lists.find("The fish swam away.")[0].found == "swam away"  # inflected phrase
    assert lists.find("A sharky smile.") == []
    assert lists.find("the shark tank") == []  # a never-matched phrase
    assert lists.find("Darn it.")[0].category == "rude"
    assert lists.find("Darned socks.") == []  # extra lists are matched as written by default


def test_the_policy_and_the_word_layer_import_no_torch() -> None:
    code = (
        "import sys, safety; safety.judge_request('gun'); "
        "safety.check_story('The Moon', 'The moon slept.', meaning=False); "
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') "
        "if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
