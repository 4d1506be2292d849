"""Keywords and synonyms held in memory per process, refreshed when the tables change.

The keyword and synonym tables are small and rarely change, yet every turn resolves what the
listener said through them. :class:`KeywordCache` keeps them in memory and, at most every
``refresh_seconds``, reads a version stamp (row counts, highest ids and the sum of story counts
of both tables: one statement over two small tables); when the stamp moved, it reloads. A change
made by another process (an import, ``bedtime keywords synonym``, an approval) is therefore seen
within ``refresh_seconds``; in between a turn resolves its keywords without SQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from db.keywords import normalize_keyword
from db.models import Keyword, KeywordSynonym
from db.store.keywords import KeywordMatch, known_keywords

_keyword_stats = select(
    func.count(Keyword.id).label("n"),
    func.coalesce(func.max(Keyword.id), 0).label("top"),
    func.coalesce(func.sum(Keyword.story_count), 0).label("stories"),
).subquery("keyword_stats")
_synonym_stats = select(
    func.count(KeywordSynonym.id).label("n"),
    func.coalesce(func.max(KeywordSynonym.id), 0).label("top"),
    func.coalesce(func.sum(KeywordSynonym.keyword_id), 0).label("targets"),
).subquery("synonym_stats")
_STAMP_STATEMENT = select(
    _keyword_stats.c.n,
    _keyword_stats.c.top,
    _keyword_stats.c.stories,
    _synonym_stats.c.n,
    _synonym_stats.c.top,
    _synonym_stats.c.targets,
).select_from(_keyword_stats.join(_synonym_stats, onclause=_keyword_stats.c.n >= 0))
_KEYWORDS_STATEMENT = select(Keyword.lemma, Keyword.id, Keyword.story_count)
_SYNONYMS_STATEMENT = select(KeywordSynonym.synonym, KeywordSynonym.keyword_id)


class KeywordCache:
    """What :func:`db.store.resolve_keywords` and :func:`db.store.known_keywords` answer, cached."""

    def __init__(
        self, refresh_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._checked_at = float("-inf")
        self._by_lemma: dict[str, KeywordMatch] = {}
        self._known: dict[str, list[str]] = {}

    def _fresh(self, session: Session | Connection) -> None:
        """Reload when the stamp moved; the stamp is read at most every refresh_seconds."""
        now = self._clock()
        if self._stamp is not None and now - self._checked_at < self.refresh_seconds:
            return
        with self._lock:
            if self._stamp is not None and now - self._checked_at < self.refresh_seconds:
                return
            stamp = tuple(session.execute(_STAMP_STATEMENT).one())
            if stamp != self._stamp:
                self._load(session)
                self._stamp = stamp
            self._checked_at = now

    def _load(self, session: Session | Connection) -> None:
        by_id: dict[int, KeywordMatch] = {}
        by_lemma: dict[str, KeywordMatch] = {}
        for lemma, keyword_id, count in session.execute(_KEYWORDS_STATEMENT):
            match = KeywordMatch(lemma, keyword_id, count)
            by_id[keyword_id] = by_lemma[lemma] = match
        for synonym, keyword_id in session.execute(_SYNONYMS_STATEMENT):
            target = by_id.get(keyword_id)
            if target is not None:
                by_lemma.setdefault(synonym, target)
        self._by_lemma = by_lemma
        self._known = {}

    def invalidate(self) -> None:
        """Read the stamp again on next use (this process just changed the catalogue)."""
        self._checked_at = float("-inf")

    def resolve(
        self, session: Session | Connection, texts: Sequence[str]
    ) -> list[KeywordMatch | None]:
        """As :func:`db.store.resolve_keywords`, without SQL while the tables are unchanged."""
        self._fresh(session)
        by_lemma = self._by_lemma
        result: list[KeywordMatch | None] = []
        for text in texts:
            lemma = normalize_keyword(text)
            result.append((by_lemma.get(lemma) or KeywordMatch(lemma, None, 0)) if lemma else None)
        return result

    def known(
        self, session: Session | Connection, locale: str, limit: int | None = None
    ) -> list[str]:
        """As :func:`db.store.known_keywords` for a locale (computed once per stamp)."""
        self._fresh(session)
        known = self._known.get(locale)
        if known is None:
            known = self._known[locale] = known_keywords(session, locale)  # type: ignore[arg-type]
        return known[:limit] if limit is not None else list(known)
