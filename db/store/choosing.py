"""Choosing a story for a listener: index range scans only, whatever the catalogue's size.

Choosing runs on the Core connection with statements built once per shape (bound parameters,
compiled-statement cache): at a few queries per request, ORM and statement-construction overhead
would otherwise cost more than the index lookups themselves.
"""

from __future__ import annotations

import functools
import logging
import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from db import raw
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
#: The pick's :choice is drawn below this multiple of 1..PICK_SAMPLE: choice % n is uniform.
CHOICE_SPACE = math.lcm(*range(1, PICK_SAMPLE + 1))


SUGGESTION_COUNT = 3

#: Shared when the caller brings no generator (seeding a new one costs more than a pick).
_RANDOM = random.Random()


Match = Literal["unheard", "heard", "partial", "none"]

#: Story lengths a listener can ask for, as word-count bands [low, high). At a calm ~130 words a
#: minute: short is under about two minutes, long is over about three. "medium" is the default.
LENGTH_BANDS: dict[str, tuple[int, int]] = {
    "short": (0, 280),
    "medium": (280, 420),
    "long": (420, 1_000_000_000),
}
DEFAULT_LENGTH = "medium"
#: With a length, this many unheard candidates on each side of the random point are checked for
#: it: a bounded cost even when the catalogue has no story of that length at all.
LENGTH_WINDOW = 64


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


def _matching(keyword_count: int, name: str = "driver") -> tuple[Select[Any], Any, Any]:
    """SELECT story ids of approved stories in :locale having keywords :k0, :k1, ...

    0 keywords: the stories index. 1: :k0's range of ix_story_keywords_pick. 2 or more: the
    pair (:k0, :k1) (lemma order) in ix_story_keyword_pairs_pick, so even keywords that rarely
    meet cost one range scan; any further keyword is a primary-key probe of story_keywords.
    Returns (stmt, story id column, random_key column); ``name`` names the driving table.
    """
    if keyword_count == 0:
        story = aliased(Story, name=name)
        stmt = select(story.id).where(
            story.review_status == _approved, story.locale == bindparam("locale")
        )
        return stmt, story.id, story.random_key
    if keyword_count == 1:
        single = aliased(StoryKeyword, name=name)
        stmt = select(single.story_id).where(
            single.keyword_id == bindparam("k0"),
            single.locale == bindparam("locale"),
            single.approved == true(),
        )
        return stmt, single.story_id, single.random_key
    pair = aliased(StoryKeywordPair, name=name)
    stmt = select(pair.story_id).where(
        pair.first_keyword_id == bindparam("k0"),
        pair.second_keyword_id == bindparam("k1"),
        pair.locale == bindparam("locale"),
        pair.approved == true(),
    )
    for index in range(2, keyword_count):
        other = aliased(StoryKeyword, name=f"{name}_other{index}")
        stmt = stmt.where(
            exists().where(
                other.story_id == pair.story_id, other.keyword_id == bindparam(f"k{index}")
            )
        )
    return stmt, pair.story_id, pair.random_key


def _lemmas_of(story_id: Any) -> Any:
    """The story's keywords as one comma-separated string (normalised lemmas have no commas).

    The outer join makes MariaDB read the story's links first (a primary-key range) and probe
    each keyword, instead of scanning the keyword index for every candidate.
    """
    return (
        select(func.group_concat(Keyword.lemma))
        .select_from(StoryKeyword)
        .outerjoin(Keyword, Keyword.id == StoryKeyword.keyword_id)
        .where(StoryKeyword.story_id == story_id)
        .scalar_subquery()
    )


def _unheard(keyword_count: int, name: str) -> tuple[Select[Any], Any, Any]:
    stmt, story_id, key = _matching(keyword_count, name)
    return stmt.where(_not_heard(story_id)), story_id, key


@functools.cache
def _pick_statement(
    keyword_count: int, sample: int, with_story: bool = False, dialect: str = "sqlite"
) -> Select[Any]:
    """Up to ``sample`` unheard matching stories from :start on the random_key index.

    One statement, two range scans: ``random_key >= :start ORDER BY random_key LIMIT sample``
    and, only when that finds nothing (a NOT EXISTS probe of the same range), the wrap-around
    ``random_key < :start``. Rows come in random_key order, the wrap-around after.

    ``with_story`` instead returns one of them, the ``:choice % count``-th (uniform for a
    :choice drawn from [0, CHOICE_SPACE)), with its title, text, locale and keywords: the story
    row is read for the chosen candidate only (on a catalogue larger than the buffer pool each
    read is a disk page), and the turn needs no second round trip for it.
    """
    start = bindparam("start", type_=Integer)
    ahead, _, ahead_key = _unheard(keyword_count, "ahead")
    ahead = ahead.where(ahead_key >= start).order_by(ahead_key).limit(sample)
    ahead = ahead.add_columns(ahead_key.label("random_key"), literal(0).label("lap"))
    probe, _, probe_key = _unheard(keyword_count, "probe")
    ahead_found = probe.where(probe_key >= start).exists()
    behind, _, behind_key = _unheard(keyword_count, "behind")
    if dialect == "sqlite":
        # SQLite would test NOT EXISTS on every row of the range; as the range's upper bound
        # (-1 when the first scan found candidates) it is computed once and the range is empty.
        behind = behind.where(behind_key < case((ahead_found, -1), else_=start))
    else:  # MariaDB/MySQL evaluate the uncorrelated NOT EXISTS once, before the scan
        behind = behind.where(behind_key < start, ~ahead_found)
    behind = behind.order_by(behind_key).limit(sample)
    behind = behind.add_columns(behind_key.label("random_key"), literal(1).label("lap"))
    first, second = ahead.subquery("ahead_pick"), behind.subquery("behind_pick")
    picked = union_all(select(*first.c), select(*second.c)).subquery("pick")
    order = (picked.c.lap, picked.c.random_key)
    if not with_story:
        return select(picked.c[0]).order_by(*order)
    ranked = select(
        picked.c[0].label("story_id"),
        (func.row_number().over(order_by=order) - 1).label("position"),
        func.count().over().label("candidates"),
    ).subquery("ranked")
    story_id = ranked.c.story_id
    return (
        select(story_id, Story.title, Story.text, Story.locale, _lemmas_of(story_id))
        .join(Story, Story.id == story_id)
        .where(ranked.c.position == bindparam("choice", type_=Integer) % ranked.c.candidates)
    )


def _length_first(stmt: Select[Any], key: Any, lap: int, sample: int, name: str) -> Select[Any]:
    """Of the next :data:`LENGTH_WINDOW` candidates, ``sample`` with those of :min_words <=
    word_count < :max_words first, flagged ``fits``: one primary-key probe each, so a length no
    story has costs 64 probes (not a scan of the keyword's stories) and no second statement."""
    window = stmt.add_columns(key.label("random_key")).limit(LENGTH_WINDOW).subquery(name)
    lengths = aliased(Story, name=f"{name}_lengths")
    story_id = window.c[0]
    in_band = and_(
        lengths.word_count >= bindparam("min_words", type_=Integer),
        lengths.word_count < bindparam("max_words", type_=Integer),
    )
    fits = case((in_band, 1), else_=0).label("fits")
    return (
        select(story_id, window.c.random_key, literal(lap).label("lap"), fits)
        .join(lengths, lengths.id == story_id)
        .order_by(fits.desc(), window.c.random_key)
        .limit(sample)
    )


@functools.cache
def _length_pick_statement(keyword_count: int, sample: int) -> Select[Any]:
    """One unheard matching story, chosen as ``:choice`` says among those of the asked length
    (:min_words <= word_count < :max_words) when any, else among all candidates.

    Both sides of :start are read (a story of that length may lie behind it), each a window of
    :data:`LENGTH_WINDOW` candidates with the fitting ones first (:func:`_length_first`). Returns
    ``(story_id, title, text, locale, lemmas, fits)``, the story row read for the chosen one only.
    """
    start = bindparam("start", type_=Integer)
    ahead, _, ahead_key = _unheard(keyword_count, "ahead")
    ahead = _length_first(
        ahead.where(ahead_key >= start).order_by(ahead_key), ahead_key, 0, sample, "ahead_window"
    )
    behind, _, behind_key = _unheard(keyword_count, "behind")
    behind = _length_first(
        behind.where(behind_key < start).order_by(behind_key),
        behind_key,
        1,
        sample,
        "behind_window",
    )
    first, second = ahead.subquery("ahead_pick"), behind.subquery("behind_pick")
    picked = union_all(select(*first.c), select(*second.c)).subquery("pick")
    order = (picked.c.fits.desc(), picked.c.lap, picked.c.random_key)
    ranked = select(
        picked.c[0].label("story_id"),
        picked.c.fits,
        (func.row_number().over(order_by=order) - 1).label("position"),
        func.sum(picked.c.fits).over().label("fitting"),
        func.count().over().label("candidates"),
    ).subquery("ranked")
    story_id = ranked.c.story_id
    choice = bindparam("choice", type_=Integer)
    chosen = case(
        (ranked.c.fitting > 0, choice % ranked.c.fitting), else_=choice % ranked.c.candidates
    )
    return (
        select(story_id, Story.title, Story.text, Story.locale, _lemmas_of(story_id))
        .add_columns(ranked.c.fits)
        .join(Story, Story.id == story_id)
        .where(ranked.c.position == chosen)
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
    with_story: bool = False,
    band: tuple[int, int] | None = None,
) -> list[Any]:
    """Up to ``sample`` unheard matching stories from a random point of the random_key index.

    One statement (see :func:`_pick_statement`): ``(story_id,)`` rows to choose among, or
    ``with_story`` at most one row, already chosen: ``(story_id, title, text, locale, lemmas)``;
    with a word-count ``band`` (and ``with_story``) chosen among stories of that length when any,
    with a last ``fits`` column (:func:`_length_pick_statement`).
    """
    params: dict[str, Any] = {f"k{i}": kid for i, kid in enumerate(keyword_ids)}
    params.update(locale=locale, listener=listener_key, start=rng.randrange(RANDOM_KEY_SPACE))
    if with_story:
        params["choice"] = rng.randrange(CHOICE_SPACE)
    if band is not None and with_story:
        params.update(min_words=band[0], max_words=band[1])
        return raw.execute(connection, _length_pick_statement(len(keyword_ids), sample), params)
    stmt = _pick_statement(len(keyword_ids), sample, with_story, connection.dialect.name)
    return raw.execute(connection, stmt, params)


def _find(
    connection: Connection,
    keywords: Sequence[KeywordMatch],
    locale: str,
    listener_key: str,
    rng: random.Random,
    band: tuple[int, int] | None = None,
) -> tuple[int | None, bool, Any, bool]:
    """(story id, heard before?, its row when already read, of the asked length?) for stories
    having all ``keywords``: unheard of the asked length first, then unheard of any length (a
    new story beats the right length), then the one heard longest ago."""
    ordered = _lookup_order(keywords)
    fresh = _pick_random(connection, ordered, locale, listener_key, rng, with_story=True, band=band)
    if fresh:
        row = tuple(fresh[0])
        if band is None:
            return row[0], False, row, True
        return row[0], False, row[:-1], bool(row[-1])
    if not listener_key:
        return None, False, None, True
    params: dict[str, Any] = {f"k{i}": kid for i, kid in enumerate(ordered)}
    params.update(locale=locale, listener=listener_key)
    found = raw.execute(connection, _longest_ago_statement(len(ordered)), params)
    oldest = found[0][0] if found else None
    return oldest, True, None, band is None


def _suggestions(
    connection: Connection, locale: str, rng: random.Random, avoid: Collection[str]
) -> list[str]:
    """A few keywords that do have stories, drawn via random stories (popular ones likelier).

    Bounded cost at any catalogue size, unlike counting every keyword.
    """
    ids = [row[0] for row in _pick_random(connection, [], locale, "", rng)]
    if not ids:
        return []
    lemmas = connection.scalars(_STORY_LEMMAS_STATEMENT, {"ids": ids}).all()
    unique = sorted({lemma for lemma in lemmas if lemma not in avoid})
    rng.shuffle(unique)
    return unique[:SUGGESTION_COUNT]


def choose_story(
    session: Session | Connection,
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
    rng = rng or _RANDOM
    listener_key = _listener_key(listener_id) if listener_id else ""
    connection = session if isinstance(session, Connection) else session.connection()
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
        story_id, was_heard, row, fits = _find(connection, known, locale, listener_key, rng, band)
        if story_id is not None:
            match: Match = "heard" if was_heard else "unheard"
            return _choice(connection, story_id, match, row, fits)

    if lemmas and (len(lemmas) > 1 or len(known) < len(lemmas)):
        # Best partial match: any single requested keyword we have stories for, unheard first.
        partial_heard: int | None = None
        for keyword in rng.sample(known, len(known)):
            story_id, was_heard, row, fits = _find(
                connection, [keyword], locale, listener_key, rng, band
            )
            if story_id is not None and not was_heard:
                return _choice(connection, story_id, "partial", row, fits)
            partial_heard = partial_heard or story_id
        if partial_heard is not None:
            return _choice(connection, partial_heard, "partial", None, band is None)

    log.info("no story for %s in %s; suggesting others", lemmas, locale)
    return StoryChoice(
        story=None, match="none", suggestions=_suggestions(connection, locale, rng, lemmas)
    )


def _choice(
    connection: Connection,
    story_id: int,
    match: Match,
    row: Any = None,
    length_matched: bool = True,
) -> StoryChoice:
    """The chosen story: from the pick's ``row`` when it read it, else one round trip."""
    if row is not None:
        _, title, body, locale, joined = row
        lemmas = tuple(sorted(set(joined.split(",")))) if joined else ()
        view = StoryView(id=story_id, title=title, text=body, keywords=lemmas, locale=locale)
        return StoryChoice(story=view, match=match, length_matched=length_matched)
    rows = raw.execute(connection, _STORY_STATEMENT, {"story_id": story_id})
    title, body, locale = rows[0][:3]
    lemmas = tuple(sorted(row[3] for row in rows if row[3] is not None))
    view = StoryView(id=story_id, title=title, text=body, keywords=lemmas, locale=locale)
    return StoryChoice(story=view, match=match, length_matched=length_matched)
