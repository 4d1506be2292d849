"""Every spoken string exists in every locale with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skill.i18n import SUPPORTED_LOCALES, catalogue_names, translator_for

SKILL_DIR = Path(__file__).resolve().parents[2] / "skill"
BASE = translator_for("en-US")


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_each_locale_has_every_key_with_the_same_placeholders(locale: str) -> None:
    translate = translator_for(locale)
    assert translate.keys() == BASE.keys()
    for key in sorted(BASE.keys()):
        assert translate.placeholders(key) == BASE.placeholders(key), (locale, key)


def test_override_files_only_override_known_keys() -> None:
    import json

    base = json.loads((SKILL_DIR / "locales" / "en.json").read_text())
    for name in catalogue_names():
        data = json.loads((SKILL_DIR / "locales" / f"{name}.json").read_text())
        assert set(data) <= set(base), name


def test_every_key_used_in_the_code_exists() -> None:
    used: set[str] = set()
    for path in SKILL_DIR.rglob("*.py"):
        source = path.read_text()
        used |= set(re.findall(r'(?:self\._|translate|talk\._)\(\s*"([a-z_]+)"', source))
        for args in re.findall(r"ask_topic\(([^)]*)\)", source):
            used |= set(re.findall(r'"([a-z_]+)"', args))
    assert {"welcome", "error", "go_on_question"} <= used, "the key scan is broken"
    assert used <= BASE.keys(), used - BASE.keys()


def test_unknown_locales_fall_back_to_english() -> None:
    assert translator_for("fr-FR")("goodbye") == "Goodnight, sleep tight."
    assert translator_for(None)("goodbye") == "Goodnight, sleep tight."


def test_en_gb_override() -> None:
    assert translator_for("en-GB")("new_story_queued", wanted="x").startswith("What a lovely")


def test_join() -> None:
    assert BASE.join(["a"]) == "a"
    assert BASE.join(["a", "b", "c"]) == "a, b and c"
