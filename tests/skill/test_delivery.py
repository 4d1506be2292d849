"""Sleep-friendly delivery: the voice falls across parts and within the last one, within Alexa's
supported SSML values; long stories still fit Alexa's limits."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from skill_testkit import huge_story_text

from skill import delivery
from skill.ssml import MAX_SPEECH_CHARS, split_story

_PROSODY = re.compile(r'<prosody rate="(\d+)%" volume="([+-]\d+\.\d)dB">')
_BREAK = re.compile(r'<break time="(\d+)ms"/>')


def _voices(ssml: str) -> list[tuple[int, float]]:
    return [(int(rate), float(volume)) for rate, volume in _PROSODY.findall(ssml)]


def test_the_voice_never_rises_across_a_three_part_story() -> None:
    parts = [["First a.", "First b."], ["Middle a.", "Middle b."], ["Last a.", "b.", "c.", "d."]]
    voices = [v for i, p in enumerate(parts) for v in _voices(delivery.story_part_ssml(p, i, 3))]
    rates = [rate for rate, _ in voices]
    volumes = [volume for _, volume in voices]
    assert rates == sorted(rates, reverse=True) and volumes == sorted(volumes, reverse=True)
    assert rates[0] == delivery.START_RATE and rates[-1] == delivery.END_RATE
    assert volumes[0] == delivery.START_VOLUME_DB and volumes[-1] == delivery.END_VOLUME_DB
    # the last part keeps falling paragraph by paragraph
    last = _voices(delivery.story_part_ssml(parts[2], 2, 3))
    assert len(set(last)) == len(last)


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_values_stay_inside_what_alexa_supports(parts: int) -> None:
    for part in range(parts):
        ssml = delivery.story_part_ssml(["a.", "b.", "c."], part, parts)
        for rate, volume in _voices(ssml):
            assert 20 <= rate <= 100  # Alexa: rate >= 20%; never faster than normal at bedtime
            assert -6.0 <= volume <= 0.0  # never louder; "soft" is about -6dB
        for pause in _BREAK.findall(ssml):
            assert 0 < int(pause) <= 10_000  # Alexa: break up to 10s
        ET.fromstring(f"<speak>{ssml}</speak>")


def test_paragraph_pauses_grow_and_are_longer_than_before() -> None:
    ssml = "".join(delivery.story_part_ssml(["a.", "b.", "c.", "d."], i, 2) for i in range(2))
    pauses = [int(p) for p in _BREAK.findall(ssml)]
    assert pauses == sorted(pauses) and min(pauses) > 900  # 900ms was the old paragraph break


def test_steady_delivery_when_switched_off() -> None:
    ssml = delivery.story_part_ssml(["a.", "b."], 0, 1, sleepy=False)
    assert ssml == '<prosody rate="90%">a.<break time="900ms"/>b.</prosody>'


def test_text_is_escaped() -> None:
    ssml = delivery.story_part_ssml(['Tom & "Jerry" <3'], 0, 1)
    assert "Tom &amp; &quot;Jerry&quot; &lt;3" in ssml


def test_the_longest_parts_still_fit_one_speech() -> None:
    parts = split_story(huge_story_text())
    assert len(parts) > 2
    for index, part in enumerate(parts):
        # plus an intro and a question (< 1,000 characters)
        assert len(delivery.story_part_ssml(part, index, len(parts))) + 1000 < MAX_SPEECH_CHARS
