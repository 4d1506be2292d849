"""SSML escaping and Alexa's size limits, including a huge and hostile story."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from skill_testkit import Alexa, huge_story_text, spoken

from db import store
from skill import ssml
from skill.ssml import PART_BUDGET, Speech, escape, split_story


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("Tom & Jerry", "Tom &amp; Jerry"),
        ("<speak>", "&lt;speak&gt;"),
        ('say "hi"', "say &quot;hi&quot;"),
        ("it's", "it&apos;s"),
        ("bell\x07 and\x00 nul", "bell and nul"),
        ("&amp;", "&amp;amp;"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_speech_is_well_formed_xml_whatever_the_story_says() -> None:
    hostile = 'A "story" with <tags>, & ampersands, ]]> and </prosody></speak> \x0b too.'
    inner = Speech().say(hostile).pause().story([hostile, hostile]).ssml()
    root = ET.fromstring(f"<speak>{inner}</speak>")
    assert hostile.replace("\x0b", "") in "".join(root.itertext())


def test_story_prosody_is_calm_and_paragraphs_pause() -> None:
    inner = Speech().story(["One.", "Two."]).ssml()
    assert inner.startswith('<prosody rate="90%">')
    assert '<break time="900ms"/>' in inner


def _cost(part: list[str]) -> int:
    inner = Speech().story(part).ssml()
    return max(len(inner), len(json.dumps(inner)))


def test_huge_story_splits_into_parts_within_budget_and_loses_nothing() -> None:
    text = huge_story_text(120)
    parts = split_story(text)
    assert len(parts) > 5
    assert all(_cost(part) <= PART_BUDGET for part in parts)
    assert [p for part in parts for p in part] == ssml.paragraphs(text)
    assert split_story(text) == parts  # deterministic: saved part numbers stay valid


def test_one_enormous_paragraph_is_split_at_sentences_and_words() -> None:
    sentence = "The giant & the mouse said \u201chush\u201d to the 🌙 moon. "
    text = sentence * 800 + "x" * 30000  # one paragraph, ending in one absurd 'word'
    parts = split_story(text)
    assert all(_cost(part) <= PART_BUDGET for part in parts)
    joined = "".join("".join(part) for part in parts).replace(" ", "")
    assert joined == text.replace(" ", "")


def test_empty_story_still_has_one_part() -> None:
    assert split_story("   ") == [[""]]


def _pathological(store_session: Any, keyword: str, text: str) -> None:
    with store_session() as session:
        store.add_story(
            session,
            store.StoryDraft(
                title='Worst "Case" & <Co>', text=text, keywords=[keyword], review_status="approved"
            ),
        )
        session.commit()


@pytest.mark.parametrize("apl", [False, True])
def test_every_part_of_a_hostile_story_fits_alexa_limits(
    make_alexa: Any, store_session: Any, apl: bool
) -> None:
    """Emoji and '&' inflate both SSML and JSON; each response must still be < 24 KB."""
    para = "🌙&\"<>' " * 400
    _pathological(store_session, "pathology", "\n\n".join([para] * 12))
    alexa: Alexa = make_alexa(apl=apl)
    out = alexa.intent("TellStoryIntent", keyword="pathology")  # limits checked in send()
    count = 1
    while spoken(out).endswith("Shall I go on?"):
        out = alexa.intent("AMAZON.NextIntent")
        count += 1
    assert count > 2
    assert spoken(out).endswith("Would you like another story?")


def test_card_text_is_truncated_at_a_word(alexa: Alexa) -> None:
    out = alexa.intent("TellStoryIntent", keyword="giant")
    content = out["response"]["card"]["content"]
    assert len(content) <= 900
    assert content.endswith("…")
    assert not content[-2].isspace()
