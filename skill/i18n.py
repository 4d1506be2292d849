"""Every spoken string, per locale, loaded once at import.

``locales/en.json`` is the base; ``locales/en-GB.json`` etc. override single keys. A locale we do
not ship falls back to its language, then to ``en``, so an unexpected locale still gets every
string instead of a KeyError mid-conversation.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from importlib import resources
from typing import Any

BASE_LOCALE = "en"
#: The locales we publish: strings here, interaction models (skill/package.py), skill.json.
LOCALES = ("en-US", "en-GB", "en-AU", "en-CA", "en-IN")
SUPPORTED_LOCALES = LOCALES  # the name tests and older callers use


def _load_catalogues() -> dict[str, dict[str, str]]:
    folder = resources.files("skill") / "locales"
    catalogues: dict[str, dict[str, str]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            catalogues[entry.name.removesuffix(".json")] = json.loads(
                entry.read_text(encoding="utf-8")
            )
    if BASE_LOCALE not in catalogues:  # pragma: no cover - packaging error
        raise RuntimeError("skill/locales/en.json is missing from the package")
    return catalogues


_CATALOGUES = _load_catalogues()


class Translator:
    """Looks up a key for one locale and fills ``{placeholders}``; output is plain text."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self._strings: dict[str, str] = dict(_CATALOGUES[BASE_LOCALE])
        language = locale.split("-")[0]
        for name in (language, locale):
            if name != BASE_LOCALE and name in _CATALOGUES:
                self._strings.update(_CATALOGUES[name])

    def __call__(self, key: str, **values: Any) -> str:
        return self._strings[key].format(**values)

    def placeholders(self, key: str) -> set[str]:
        """Names a string expects; used by tests to keep locales consistent."""
        return {name for _, name, _, _ in string.Formatter().parse(self._strings[key]) if name}

    def keys(self) -> set[str]:
        return set(self._strings)

    def join(self, items: Sequence[str], conjunction: str = "and") -> str:
        """'a', 'a and b', 'a, b and c' (or 'a, b or c') in the locale's words."""
        items = list(items)
        if not items:
            return ""
        if len(items) == 1:
            return items[0]
        return f"{', '.join(items[:-1])} {self(conjunction)} {items[-1]}"


_TRANSLATORS: dict[str, Translator] = {}


def translator_for(locale: str | None) -> Translator:
    """Cached translator; unknown or missing locales get the base English strings."""
    key = locale or "en-US"
    translator = _TRANSLATORS.get(key)
    if translator is None:
        translator = _TRANSLATORS[key] = Translator(key)
    return translator


def catalogue_names() -> list[str]:
    return sorted(_CATALOGUES)
