"""Choosing a story for a listener: index range scans only, whatever the catalogue's size.

Choosing runs on the Core connection with statements built once per shape (bound parameters,
compiled-statement cache): at a few queries per request, ORM and statement-construction overhead
would otherwise cost more than the index lookups themselves.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    exists,
    func,
    select,
    true,
)
from sqlalchemy.orm import Session, aliased

from db.keywords import normalize_keywords
from db.models import (
    RANDOM_KEY_SPACE,
    Keyword,
    PlayHistory,
    ReviewStatus,
    Story,
    StoryKeyword,
    StoryKeywordPair,
)
from db.store.keywords import KeywordMatch, _lookup
from db.store.listeners import _listener_key
from db.store.stories import StoryView

log = logging.getLogger(__name__)

#: Candidates read per index probe; we pick uniformly among them to smooth random_key gaps.
PICK_SAMPLE = 8


SUGGESTION_COUNT = 3


Match = Literal["unheard", "heard", "partial", "none"]

#: Story lengths a listener can ask for, as word-count bands [low, high). At a calm ~130 words a
#: minute: short is under about two minutes, long is over about three. "medium" is the default.
LENGTH_BANDS: dict[str, tuple[int, int]] = {
    "short": (0, 280),
    "medium": (280, 420),
    "long": (420, 1_000_000_000),
}
DEFAULT_LENGTH = "medium"


@dataclass(frozen=True)
class StoryChoice:
    """What :func:`choose_story` found; ``suggestions`` are existing keywords when it found none."""

    story: StoryView | None
    match: Match
    suggestions: list[str] = field(default_factory=list)
    #: False when no story of the asked length was found and one of another length was chosen.
    length_matched: bool = True


_approved = ReviewStatus.APPROVED.value


def _not_heard(story_id: Any) -> Any:
    """NOT EXISTS a play of this story by :listener: one probe of ix_play_history_listener."""
    return ~exists().where(
        PlayHistory.listener_key == bindparam("listener"), PlayHistory.story_id == story_id
    )


def _matching(keyword_count: int) -> tuple[Select[Any], Any, Any]:
    """SELECT story ids of approved stories in :locale having keywords :k0, :k1, ...

    0 keywords: the stories index. 1: :k0's range of ix_story_keywords_pick. 2 or more: the
    pair (:k0, :k1) (lemma order) in ix_story_keyword_pairs_pick, so even keywords that rarely
    meet cost one range scan; any further keyword is a primary-key probe of story_keywords.
    Returns (stmt, story id column, random_key column).
    """
    if keyword_count == 0:
        stmt = select(Story.id).where(
            Story.review_status == _approved, Story.locale == bindparam("locale")
        )
        return stmt, Story.id, Story.random_key
    if keyword_count == 1:
        single = aliased(StoryKeyword, name="driver")
        stmt = select(single.story_id).where(
            single.keyword_id == bindparam("k0"),
            single.locale == bindparam("locale"),
            single.approved == true(),
        )
        return stmt, single.story_id, single.random_key
    pair = aliased(StoryKeywordPair, name="driver")
    stmt = select(pair.story_id).where(
        pair.first_keyword_id == bindparam("k0"),
        pair.second_keyword_id == bindparam("k1"),
        pair.locale == bindparam("locale"),
        pair.approved == true(),
    )
    for index in range(2, keyword_count):
        other = aliased(StoryKeyword, name=f"other{index}")
        stmt = stmt.where(
            exists().where(
                other.story_id == pair.story_id, other.keyword_id == bindparam(f"k{index}")
            )
        )
    return stmt, pair.story_id, pair.random_key


#: With a length, this many unheard candidates (from the random point on) are checked for it:
#: a bounded cost even when the catalogue has no story of that length at all.
LENGTH_WINDOW = 64


@functools.cache
def _pick_statement(
    keyword_count: int, wrapped: bool, sample: int, banded: bool = False
) -> Select[Any]:
    """Unheard matching stories from :start on the random_key index (or before it, wrapped).

    ``banded``: of the next :data:`LENGTH_WINDOW` candidates, those with :min_words <=
    word_count < :max_words (one primary-key probe each), so a missing length costs 64 probes,
    not a scan of every story with the keyword.
    """
    stmt, story_id, key = _matching(keyword_count)
    stmt = stmt.where(_not_heard(story_id))
    stmt = stmt.where(key < bindparam("start") if wrapped else key >= bindparam("start"))
    if not banded:
        return stmt.order_by(key).limit(sample)
    window = (
        stmt.with_only_columns(story_id.label("story_id"), key.label("pick_key"))
        .order_by(key)
        .limit(LENGTH_WINDOW)
        .subquery("window")
    )
    lengths = aliased(Story, name="lengths")
    return (
        select(window.c.story_id)
        .join(lengths, lengths.id == window.c.story_id)
        .where(
            lengths.word_count >= bindparam("min_words"),
            lengths.word_count < bindparam("max_words"),
        )
        .order_by(window.c.pick_key)
        .limit(sample)
    )


@functools.cache
def _longest_ago_statement(keyword_count: int) -> Select[Any]:
    """The matching story :listener heard longest ago (their plays x primary-key probes)."""
    stmt, story_id, _ = _matching(keyword_count)
    last_played = func.max(PlayHistory.played_at)
    return (
        stmt.join(PlayHistory, PlayHistory.story_id == story_id)
        .where(PlayHistory.listener_key == bindparam("listener"))
        .group_by(story_id)
        .order_by(last_played, story_id)
        .limit(1)
    )


_STORY_STATEMENT = (
    select(Story.title, Story.text, Story.locale, Keyword.lemma)
    .outerjoin(StoryKeyword, StoryKeyword.story_id == Story.id)
    .outerjoin(Keyword, Keyword.id == StoryKeyword.keyword_id)
    .where(Story.id == bindparam("story_id"))
)
_STORY_LEMMAS_STATEMENT = (
    select(Keyword.lemma)
    .join(StoryKeyword, StoryKeyword.keyword_id == Keyword.id)
    .where(StoryKeyword.story_id.in_(bindparam("ids", expanding=True)))
)


def _lookup_order(keywords: Sequence[KeywordMatch]) -> list[int]:
    """Keyword ids in the order _matching binds them (:k0, :k1, ...).

    The two rarest form the pair, in lemma order (the pair table's order); the rest follow.
    """
    unique = list({k.id: k for k in keywords}.values())
    by_rarity = sorted(unique, key=lambda k: (k.story_count, k.lemma))
    if len(by_rarity) < 2:
        return [k.id for k in by_rarity]
    pair = sorted(by_rarity[:2], key=lambda k: k.lemma)
    return [k.id for k in pair + by_rarity[2:]]


def _pick_random(
    connection: Connection,
    keyword_ids: Sequence[int],
    locale: str,
    listener_key: str,
    rng: random.Random,
    sample: int = PICK_SAMPLE,
    band: tuple[int, int] | None = None,
) -> list[int]:
    """Up to ``sample`` unheard matching story ids from a random point of the random_key index.

    One range scan ``random_key >= r ORDER BY random_key LIMIT sample``; only when it finds
    nothing, a second one wraps around (``< r``). Callers choose among the ids returned. With a
    word-count ``band`` each candidate's length is checked by primary key as the scan goes.
    """
    params: dict[str, Any] = {f"k{i}": kid for i, kid in enumerate(keyword_ids)}
    params.update(locale=locale, listener=listener_key, start=rng.randrange(RANDOM_KEY_SPACE))
    if band is not None:
        params.update(min_words=band[0], max_words=band[1])
    count = len(keyword_ids)
    banded = band is not None
    ids = list(connection.scalars(_pick_statement(count, False, sample, banded), params))
    if not ids:
        ids = list(connection.scalars(_pick_statement(count, True, sample, banded), params))
    return ids


def _find(
    connection: Connection,
    keywords: Sequence[KeywordMatch],
    locale: str,
    listener_key: str,
    rng: random.Random,
    band: tuple[int, int] | None = None,
) -> tuple[int | None, bool, bool]:
    """(story id, heard before?, of the asked length?) for stories having all ``keywords``.

    Unheard of the asked length first, then unheard of any length (a new story beats the right
    length), then the one heard longest ago.
    """
    ordered = _lookup_order(keywords)
    if band is not None:
        fresh = _pick_random(connection, ordered, locale, listener_key, rng, band=band)
        if fresh:
            return rng.choice(fresh), False, True
    fresh = _pick_random(connection, ordered, locale, listener_key, rng)
    if fresh:
        return rng.choice(fresh), False, band is None
    if not listener_key:
        return None, False, True
    params: dict[str, Any] = {f"k{i}": kid for i, kid in enumerate(ordered)}
    params.update(locale=locale, listener=listener_key)
    oldest = connection.scalar(_longest_ago_statement(len(ordered)), params)
    return oldest, True, band is None


def _suggestions(
    connection: Connection, locale: str, rng: random.Random, avoid: Collection[str]
) -> list[str]:
    """A few keywords that do have stories, drawn via random stories (popular ones likelier).

    Bounded cost at any catalogue size, unlike counting every keyword.
    """
    ids = _pick_random(connection, [], locale, "", rng)
    if not ids:
        return []
    lemmas = connection.scalars(_STORY_LEMMAS_STATEMENT, {"ids": ids}).all()
    unique = sorted({lemma for lemma in lemmas if lemma not in avoid})
    rng.shuffle(unique)
    return unique[:SUGGESTION_COUNT]


def choose_story(
    session: Session,
    keywords: Sequence[str] | Sequence[KeywordMatch],
    listener_id: str | None,
    locale: str,
    rng: random.Random | None = None,
    length: str | None = None,
) -> StoryChoice:
    """Pick an approved story about ``keywords`` (0-2 canonical lemmas) for a listener.

    ``length`` ("short", "medium", "long": :data:`LENGTH_BANDS`) is a preference: an unheard
    story of another length beats none, and ``length_matched`` says which it was.

    ``keywords`` may be the matches :func:`resolve_keywords` returned for this turn; then the
    keyword table is not read again.

    Preference: a story with all keywords the listener has never heard ("unheard"); else the
    one of those heard longest ago ("heard"); else a story with one of the keywords, unheard
    first ("partial"); else nothing, with suggestions of keywords that exist ("none"). Random
    among equals. Every query is an index range scan or primary-key probe, so the cost does not
    grow with the catalogue (bench/bench_choose_story.py): typically 2-3 queries.
    """
    rng = rng or random.Random()
    listener_key = _listener_key(listener_id) if listener_id else ""
    connection = session.connection()
    if all(isinstance(keyword, KeywordMatch) for keyword in keywords):
        matches: dict[str, KeywordMatch] = {}
        for match in keywords:
            matches.setdefault(match.lemma, match)
        lemmas = list(matches)
        known = [match for match in matches.values() if match.id is not None]
    else:
        lemmas = normalize_keywords([str(keyword) for keyword in keywords])
        found = _lookup(connection, lemmas)
        known = [found[lemma] for lemma in lemmas if lemma in found]

    band = LENGTH_BANDS.get(length) if length else None
    if len(known) == len(lemmas):
        story_id, was_heard, fits = _find(connection, known, locale, listener_key, rng, band)
        if story_id is not None:
            return _choice(connection, story_id, "heard" if was_heard else "unheard", fits)

    if lemmas and (len(lemmas) > 1 or len(known) < len(lemmas)):
        # Best partial match: any single requested keyword we have stories for, unheard first.
        partial_heard: int | None = None
        for keyword in rng.sample(known, len(known)):
            story_id, was_heard, fits = _find(
                connection, [keyword], locale, listener_key, rng, band
            )
            if story_id is not None and not was_heard:
                return _choice(connection, story_id, "partial", fits)
            partial_heard = partial_heard or story_id
        if partial_heard is not None:
            return _choice(connection, partial_heard, "partial", band is None)

    log.info("no story for %s in %s; suggesting others", lemmas, locale)
    return StoryChoice(
        story=None, match="none", suggestions=_suggestions(connection, locale, rng, lemmas)
    )


def _choice(
    connection: Connection, story_id: int, match: Match, length_matched: bool = True
) -> StoryChoice:
    """The chosen story and its keywords in one round trip (one row per keyword)."""
    rows = connection.execute(_STORY_STATEMENT, {"story_id": story_id}).all()
    title, body, locale = rows[0][:3]
    lemmas = tuple(sorted(row[3] for row in rows if row[3] is not None))
    view = StoryView(id=story_id, title=title, text=body, keywords=lemmas, locale=locale)
    return StoryChoice(story=view, match=match, length_matched=length_matched)
