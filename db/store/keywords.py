"""Keywords: resolving what a listener said to canonical lemmas, synonyms, the keyword catalogue.

A keyword is resolved once per turn: :func:`resolve_keywords` returns :class:`KeywordMatch` rows
that :func:`db.store.choose_story` accepts as they are, so the keyword table is read once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import (
    Connection,
    bindparam,
    exists,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from db.keywords import normalize_keyword
from db.models import (
    Keyword,
    KeywordSynonym,
    StoryKeyword,
)

log = logging.getLogger(__name__)


def _get_or_create_keyword(session: Session, lemma: str) -> Keyword:
    """The Keyword row for a canonical lemma, created if new (safe against concurrent creators)."""
    found = session.scalar(select(Keyword).where(Keyword.lemma == lemma))
    if found is not None:
        return found
    try:
        with session.begin_nested():
            keyword = Keyword(lemma=lemma)
            session.add(keyword)
        return keyword
    except IntegrityError:
        # Someone else created it between our SELECT and INSERT.
        return session.scalars(select(Keyword).where(Keyword.lemma == lemma)).one()


def resolve_keywords(session: Session, texts: Sequence[str]) -> list[KeywordMatch | None]:
    """Raw words -> canonical keywords, following the synonyms table ("kitty" -> "cat").

    One entry per text: None when nothing meaningful is left ("the", "!!!"), else a match whose
    ``lemma`` is the canonical lemma even when no keyword row has it yet (``id`` None: it can
    still be requested). Pass the matches to :func:`db.store.choose_story` so the turn reads the
    keyword table once: one query, two when a synonym or an unknown word is involved.
    """
    lemmas = [normalize_keyword(text) for text in texts]
    wanted = list(dict.fromkeys(lemma for lemma in lemmas if lemma))
    found = _lookup(session, wanted)
    return [
        (found.get(lemma) or KeywordMatch(lemma, None, 0)) if lemma else None for lemma in lemmas
    ]


def resolve_keyword(session: Session, text: str) -> str | None:
    """One keyword's canonical lemma (see :func:`resolve_keywords`); None when nothing is left."""
    match = resolve_keywords(session, [text])[0]
    return match.lemma if match is not None else None


def add_synonym(session: Session, lemma: str, synonym: str) -> KeywordSynonym:
    """Make ``synonym`` resolve to ``lemma`` (the keyword is created if new)."""
    canonical = normalize_keyword(lemma)
    alias = normalize_keyword(synonym)
    if not canonical or not alias:
        raise ValueError("both the keyword and the synonym need at least one real word")
    if canonical == alias:
        raise ValueError(f"{synonym!r} already normalises to {canonical!r}; no synonym needed")
    if session.scalar(select(Keyword.id).where(Keyword.lemma == alias)) is not None:
        raise ValueError(f"{alias!r} is itself a keyword; merge the stories instead")
    keyword = _get_or_create_keyword(session, canonical)
    existing = session.scalar(select(KeywordSynonym).where(KeywordSynonym.synonym == alias))
    if existing is not None:
        if existing.keyword_id != keyword.id:
            raise ValueError(f"{alias!r} is already a synonym of another keyword")
        return existing
    entry = KeywordSynonym(synonym=alias, keyword=keyword)
    session.add(entry)
    session.flush()
    return entry


def known_keywords(
    session: Session, locale: str | None = None, limit: int | None = None
) -> list[str]:
    """Keywords that have approved stories (in ``locale`` if given), most stories first.

    Cheap at any catalogue size (the skill calls it per request): ordered by the maintained
    ``keywords.story_count`` (all locales; ties alphabetical), and with a locale each keyword is
    checked by one index probe for an approved story in that locale.
    """
    stmt = (
        select(Keyword.lemma)
        .where(Keyword.story_count > 0)
        .order_by(Keyword.story_count.desc(), Keyword.lemma)
    )
    if locale is not None:
        stmt = stmt.where(
            exists().where(
                StoryKeyword.keyword_id == Keyword.id,
                StoryKeyword.locale == locale,
                StoryKeyword.approved == true(),
            )
        )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def keyword_catalogue(session: Session) -> list[tuple[str, list[str]]]:
    """Every keyword with its synonyms, alphabetical: slot values for the interaction model."""
    keywords = session.scalars(
        select(Keyword).options(selectinload(Keyword.synonyms)).order_by(Keyword.lemma)
    ).all()
    return [(k.lemma, sorted(s.synonym for s in k.synonyms)) for k in keywords]


_KEYWORDS_STATEMENT = select(Keyword.lemma, Keyword.id, Keyword.story_count).where(
    Keyword.lemma.in_(bindparam("lemmas", expanding=True))
)
_SYNONYMS_STATEMENT = (
    select(KeywordSynonym.synonym, Keyword.id, Keyword.story_count, Keyword.lemma)
    .join(Keyword, Keyword.id == KeywordSynonym.keyword_id)
    .where(KeywordSynonym.synonym.in_(bindparam("lemmas", expanding=True)))
)


class KeywordMatch(NamedTuple):
    """A requested keyword as the catalogue knows it."""

    lemma: str  # canonical (a synonym's keyword)
    id: int | None  # None: no keyword row yet, so no story has it
    story_count: int  # approved stories, all locales


def _lookup(session: Session | Connection, lemmas: Sequence[str]) -> dict[str, KeywordMatch]:
    """Requested lemma -> its keyword, via synonyms; unknown lemmas are left out.

    One query (two when a synonym or an unknown lemma is involved). A Session autoflushes first;
    choosing passes its Connection to skip the ORM on the hot path.
    """
    if not lemmas:
        return {}
    found = {
        lemma: KeywordMatch(lemma, keyword_id, count)
        for lemma, keyword_id, count in session.execute(
            _KEYWORDS_STATEMENT, {"lemmas": list(lemmas)}
        )
    }
    missing = [lemma for lemma in lemmas if lemma not in found]
    if missing:
        for synonym, keyword_id, count, lemma in session.execute(
            _SYNONYMS_STATEMENT, {"lemmas": missing}
        ):
            found[synonym] = KeywordMatch(lemma, keyword_id, count)
    return found
