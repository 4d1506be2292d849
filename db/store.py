"""The story store's API: plain functions over a Session, no Alexa types.

Transactions: functions flush but do not commit, so a caller can make several calls atomic
(e.g. ``add_story`` + ``complete_generation_request``) and commit once. The one exception is
:func:`claim_generation_requests`, which commits so the claim is visible to other workers and its
row locks are released at once.

Listener ids: every function taking a listener id accepts either the sha256 key from
:func:`hash_listener_id` or a raw id, which is hashed first, so raw ids never reach the database.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import re
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased, selectinload

from db.keywords import normalize_keyword, normalize_keywords
from db.models import (
    RANDOM_KEY_SPACE,
    GenerationRequest,
    Keyword,
    KeywordSynonym,
    Listener,
    PlayHistory,
    RequestStatus,
    ReviewStatus,
    Story,
    StoryKeyword,
    StoryKeywordPair,
    StorySource,
    _utcnow,
)

log = logging.getLogger(__name__)

#: Candidates read per index probe; we pick uniformly among them to smooth random_key gaps.
PICK_SAMPLE = 8
#: A generation request is retried at most this many times.
MAX_ATTEMPTS = 5
#: A claim older than this is considered abandoned (worker died) and may be claimed again.
CLAIM_TIMEOUT = timedelta(hours=1)
SUGGESTION_COUNT = 3

Match = Literal["unheard", "heard", "partial", "none"]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoryView:
    """A served story, detached from the session (safe to keep after commit/close)."""

    id: int
    title: str
    text: str
    keywords: tuple[str, ...]
    locale: str


@dataclass(frozen=True)
class StoryChoice:
    """What :func:`choose_story` found; ``suggestions`` are existing keywords when it found none."""

    story: StoryView | None
    match: Match
    suggestions: list[str] = field(default_factory=list)


@dataclass
class StoryDraft:
    """A story to add. Generated stories default to ``pending`` review: never served unreviewed."""

    title: str
    text: str
    keywords: Sequence[str] = ()
    locale: str = "en-US"
    source: str = StorySource.HANDWRITTEN.value
    review_status: str = ReviewStatus.PENDING.value
    model_id: int | None = None
    prompt: str | None = None
    requested_keywords: Sequence[str] | None = None
    safety_verdict: str | None = None
    rejection_reason: str | None = None
    quality: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def hash_listener_id(alexa_user_id: str) -> str:
    """sha256 hex of a raw user id: the only form in which listeners are stored."""
    return hashlib.sha256(alexa_user_id.encode("utf-8")).hexdigest()


def _listener_key(listener_id: str) -> str:
    return listener_id if _HEX64.match(listener_id) else hash_listener_id(listener_id)


def content_hash(title: str, text: str) -> str:
    """Identity of a story for idempotent import: case and whitespace do not matter."""
    canonical = " ".join(title.casefold().split()) + "\n" + " ".join(text.casefold().split())
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _keyword_key(lemmas: Sequence[str]) -> str:
    return "|".join(lemmas)


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


def _ensure_listener(session: Session, key: str) -> Listener:
    listener = session.get(Listener, key)
    if listener is not None:
        return listener
    try:
        with session.begin_nested():
            listener = Listener(key=key, attributes={})
            session.add(listener)
        return listener
    except IntegrityError:
        return session.get_one(Listener, key, populate_existing=True)


def _view(session: Session, story: Story) -> StoryView:
    lemmas = session.scalars(
        select(Keyword.lemma)
        .join(StoryKeyword, StoryKeyword.keyword_id == Keyword.id)
        .where(StoryKeyword.story_id == story.id)
        .order_by(Keyword.lemma)
    ).all()
    return StoryView(
        id=story.id, title=story.title, text=story.text, keywords=tuple(lemmas), locale=story.locale
    )


# --------------------------------------------------------------------------- keywords


def resolve_keyword(session: Session, text: str) -> str | None:
    """Raw words -> canonical lemma, following the synonyms table ("kitty" -> "cat").

    Returns the normalised lemma even when no story has it yet (so it can be requested), and
    None only when nothing meaningful is left ("the", "!!!").
    """
    lemma = normalize_keyword(text)
    if not lemma:
        return None
    if session.scalar(select(Keyword.id).where(Keyword.lemma == lemma)) is not None:
        return lemma
    target = session.scalar(
        select(Keyword.lemma)
        .join(KeywordSynonym, KeywordSynonym.keyword_id == Keyword.id)
        .where(KeywordSynonym.synonym == lemma)
    )
    return target or lemma


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


# --------------------------------------------------------------------------- stories


def add_story(session: Session, draft: StoryDraft) -> Story:
    """Insert a story with its keywords; an existing story with the same text is returned as is."""
    title = " ".join(draft.title.split())
    body = draft.text.strip()
    if not title or not body:
        raise ValueError("a story needs a non-empty title and text")
    if draft.source not in set(StorySource):
        raise ValueError(f"source must be one of {[s.value for s in StorySource]}")
    if draft.review_status not in set(ReviewStatus):
        raise ValueError(f"review_status must be one of {[s.value for s in ReviewStatus]}")
    digest = content_hash(title, body)
    existing = session.scalar(select(Story).where(Story.content_hash == digest))
    if existing is not None:
        log.debug("story %r already stored as id=%s", title, existing.id)
        return existing
    lemmas = normalize_keywords(list(draft.keywords))
    keywords = [_get_or_create_keyword(session, lemma) for lemma in lemmas]
    story = Story(
        title=title[:300],
        text=body,
        locale=draft.locale,
        word_count=len(body.split()),
        source=str(draft.source),
        model_id=draft.model_id,
        prompt=draft.prompt,
        requested_keywords=list(draft.requested_keywords) if draft.requested_keywords else None,
        review_status=str(draft.review_status),
        rejection_reason=draft.rejection_reason,
        safety_verdict=draft.safety_verdict,
        quality=dict(draft.quality) if draft.quality else None,
        content_hash=digest,
    )
    story.links = [StoryKeyword(keyword=k) for k in keywords]
    try:
        with session.begin_nested():
            session.add(story)
            session.flush()
            if story.review_status == ReviewStatus.APPROVED:
                _bump_counts(session, [k.id for k in keywords], +1)
    except IntegrityError:
        # A concurrent import inserted the same story first; the savepoint undid our insert.
        winner = session.scalar(select(Story).where(Story.content_hash == digest))
        if winner is None:
            raise  # another constraint (e.g. an unknown model_id): the caller must know
        return winner
    log.info(
        "added story id=%s %r keywords=%s status=%s", story.id, title, lemmas, story.review_status
    )
    return story


def _bump_counts(session: Session, keyword_ids: Sequence[int], delta: int) -> None:
    """keywords.story_count += delta, atomically in SQL (no lost updates between workers)."""
    if keyword_ids:
        session.execute(
            update(Keyword)
            .where(Keyword.id.in_(list(keyword_ids)))
            .values(story_count=Keyword.story_count + delta),
            execution_options={"synchronize_session": "fetch"},
        )


def refresh_keyword_counts(session: Session) -> None:
    """Recompute every keywords.story_count exactly (after bulk loads or manual SQL edits)."""
    approved = (
        select(func.count(StoryKeyword.story_id))
        .where(StoryKeyword.keyword_id == Keyword.id, StoryKeyword.approved == true())
        .scalar_subquery()
    )
    session.execute(
        update(Keyword).values(story_count=approved),
        execution_options={"synchronize_session": False},
    )
    session.expire_all()


def review_story(session: Session, story_id: int, status: str, reason: str | None = None) -> Story:
    """Approve or reject a story (links follow via the flush hook); LookupError if missing."""
    if status not in set(ReviewStatus):
        raise ValueError(f"status must be one of {[s.value for s in ReviewStatus]}")
    story = session.get(Story, story_id)
    if story is None:
        raise LookupError(f"no story with id {story_id}")
    was_approved = story.review_status == ReviewStatus.APPROVED
    story.review_status = str(status)
    story.rejection_reason = reason if status == ReviewStatus.REJECTED else None
    session.flush()
    now_approved = story.review_status == ReviewStatus.APPROVED
    if was_approved != now_approved:
        keyword_ids = [link.keyword_id for link in story.links]
        _bump_counts(session, keyword_ids, +1 if now_approved else -1)
    log.info("story id=%s is now %s%s", story_id, status, f" ({reason})" if reason else "")
    return story


def get_story(session: Session, story_id: int, *, approved_only: bool = True) -> StoryView | None:
    """A story by id; unapproved stories are invisible unless ``approved_only=False``."""
    story = session.get(Story, story_id)
    if story is None or (approved_only and story.review_status != ReviewStatus.APPROVED):
        return None
    return _view(session, story)


def list_stories(
    session: Session,
    keyword: str | None = None,
    status: str | None = None,
    limit: int | None = 50,
) -> list[Story]:
    """Stories for the CLI, newest first, optionally by keyword and review status."""
    stmt = select(Story).options(selectinload(Story.links)).order_by(Story.id.desc())
    if keyword:
        lemma = resolve_keyword(session, keyword) or ""
        stmt = (
            stmt.join(StoryKeyword, StoryKeyword.story_id == Story.id)
            .join(Keyword, Keyword.id == StoryKeyword.keyword_id)
            .where(Keyword.lemma == lemma)
        )
    if status:
        stmt = stmt.where(Story.review_status == status)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def iter_stories(session: Session, batch_size: int = 500) -> Iterator[Story]:
    """All stories by id in batches (export without loading the whole table)."""
    last_id = 0
    while True:
        batch = session.scalars(
            select(Story)
            .options(selectinload(Story.links))
            .where(Story.id > last_id)
            .order_by(Story.id)
            .limit(batch_size)
        ).all()
        if not batch:
            return
        yield from batch
        last_id = batch[-1].id


# --------------------------------------------------------------------------- choosing


# Choosing runs on the Core connection with statements built once per shape (bound parameters,
# compiled-statement cache): at a few queries per request, ORM and statement-construction
# overhead would otherwise cost more than the index lookups themselves.

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


@functools.cache
def _pick_statement(keyword_count: int, wrapped: bool, sample: int) -> Select[Any]:
    """Unheard matching stories from :start on the random_key index (or before it, wrapped)."""
    stmt, story_id, key = _matching(keyword_count)
    stmt = stmt.where(_not_heard(story_id))
    stmt = stmt.where(key < bindparam("start") if wrapped else key >= bindparam("start"))
    return stmt.order_by(key).limit(sample)


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


_KEYWORDS_STATEMENT = select(Keyword.lemma, Keyword.id, Keyword.story_count).where(
    Keyword.lemma.in_(bindparam("lemmas", expanding=True))
)
_SYNONYMS_STATEMENT = (
    select(KeywordSynonym.synonym, Keyword.id, Keyword.story_count, Keyword.lemma)
    .join(Keyword, Keyword.id == KeywordSynonym.keyword_id)
    .where(KeywordSynonym.synonym.in_(bindparam("lemmas", expanding=True)))
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


class _KeywordInfo(NamedTuple):
    id: int
    story_count: int
    lemma: str


def _keyword_ids(connection: Connection, lemmas: Sequence[str]) -> dict[str, _KeywordInfo]:
    """Requested lemma -> (keyword id, approved story count, canonical lemma), via synonyms.

    Unknown lemmas are left out. One query (two when a synonym is involved).
    """
    if not lemmas:
        return {}
    found = {
        lemma: _KeywordInfo(keyword_id, count, lemma)
        for lemma, keyword_id, count in connection.execute(
            _KEYWORDS_STATEMENT, {"lemmas": list(lemmas)}
        )
    }
    missing = [lemma for lemma in lemmas if lemma not in found]
    if missing:
        for synonym, keyword_id, count, lemma in connection.execute(
            _SYNONYMS_STATEMENT, {"lemmas": missing}
        ):
            found[synonym] = _KeywordInfo(keyword_id, count, lemma)
    return found


def _lookup_order(keywords: Sequence[_KeywordInfo]) -> list[int]:
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
) -> list[int]:
    """Up to ``sample`` unheard matching story ids from a random point of the random_key index.

    One range scan ``random_key >= r ORDER BY random_key LIMIT sample``; only when it finds
    nothing, a second one wraps around (``< r``). Callers choose among the ids returned.
    """
    params: dict[str, Any] = {f"k{i}": kid for i, kid in enumerate(keyword_ids)}
    params.update(locale=locale, listener=listener_key, start=rng.randrange(RANDOM_KEY_SPACE))
    count = len(keyword_ids)
    ids = list(connection.scalars(_pick_statement(count, False, sample), params))
    if not ids:
        ids = list(connection.scalars(_pick_statement(count, True, sample), params))
    return ids


def _find(
    connection: Connection,
    keywords: Sequence[_KeywordInfo],
    locale: str,
    listener_key: str,
    rng: random.Random,
) -> tuple[int | None, bool]:
    """(story id, heard before?) for stories having all ``keywords``; unheard first."""
    ordered = _lookup_order(keywords)
    fresh = _pick_random(connection, ordered, locale, listener_key, rng)
    if fresh:
        return rng.choice(fresh), False
    if not listener_key:
        return None, False
    params: dict[str, Any] = {f"k{i}": kid for i, kid in enumerate(ordered)}
    params.update(locale=locale, listener=listener_key)
    oldest = connection.scalar(_longest_ago_statement(len(ordered)), params)
    return oldest, True


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
    keywords: Sequence[str],
    listener_id: str | None,
    locale: str,
    rng: random.Random | None = None,
) -> StoryChoice:
    """Pick an approved story about ``keywords`` (0-2 canonical lemmas) for a listener.

    Preference: a story with all keywords the listener has never heard ("unheard"); else the
    one of those heard longest ago ("heard"); else a story with one of the keywords, unheard
    first ("partial"); else nothing, with suggestions of keywords that exist ("none"). Random
    among equals. Every query is an index range scan or primary-key probe, so the cost does not
    grow with the catalogue (bench/bench_choose_story.py): typically 2-3 queries.
    """
    rng = rng or random.Random()
    lemmas = normalize_keywords(list(keywords))
    listener_key = _listener_key(listener_id) if listener_id else ""
    connection = session.connection()
    ids = _keyword_ids(connection, lemmas)
    known = [ids[lemma] for lemma in lemmas if lemma in ids]

    if len(known) == len(lemmas):
        story_id, was_heard = _find(connection, known, locale, listener_key, rng)
        if story_id is not None:
            return _choice(connection, story_id, "heard" if was_heard else "unheard")

    if lemmas and (len(lemmas) > 1 or len(known) < len(lemmas)):
        # Best partial match: any single requested keyword we have stories for, unheard first.
        partial_heard: int | None = None
        for keyword in rng.sample(known, len(known)):
            story_id, was_heard = _find(connection, [keyword], locale, listener_key, rng)
            if story_id is not None and not was_heard:
                return _choice(connection, story_id, "partial")
            partial_heard = partial_heard or story_id
        if partial_heard is not None:
            return _choice(connection, partial_heard, "partial")

    log.info("no story for %s in %s; suggesting others", lemmas, locale)
    return StoryChoice(
        story=None, match="none", suggestions=_suggestions(connection, locale, rng, lemmas)
    )


def _choice(connection: Connection, story_id: int, match: Match) -> StoryChoice:
    """The chosen story and its keywords in one round trip (one row per keyword)."""
    rows = connection.execute(_STORY_STATEMENT, {"story_id": story_id}).all()
    title, body, locale = rows[0][:3]
    lemmas = tuple(sorted(row[3] for row in rows if row[3] is not None))
    view = StoryView(id=story_id, title=title, text=body, keywords=lemmas, locale=locale)
    return StoryChoice(story=view, match=match)


# --------------------------------------------------------------------------- listeners


def record_play(session: Session, listener_id: str, story_id: int, finished: bool = False) -> None:
    """Remember that a listener heard a story; a later finished=True completes the same play."""
    key = _listener_key(listener_id)
    _ensure_listener(session, key)
    if finished:
        last = session.scalars(
            select(PlayHistory)
            .where(PlayHistory.listener_key == key)
            .order_by(PlayHistory.played_at.desc(), PlayHistory.id.desc())
            .limit(1)
        ).first()
        if last is not None and last.story_id == story_id and not last.finished:
            last.finished = True
            session.flush()
            return
    session.add(PlayHistory(listener_key=key, story_id=story_id, finished=finished))
    session.flush()


def load_listener_attributes(session: Session, listener_key: str) -> dict[str, Any]:
    """The listener's persistent attributes ({} for a new listener); a copy, safe to mutate."""
    listener = session.get(Listener, _listener_key(listener_key))
    return dict(listener.attributes or {}) if listener is not None else {}


def save_listener_attributes(session: Session, listener_key: str, attrs: dict[str, Any]) -> None:
    """Replace the listener's persistent attributes."""
    listener = _ensure_listener(session, _listener_key(listener_key))
    listener.attributes = dict(attrs)  # a new object, so the JSON change is detected
    listener.updated_at = _utcnow()
    session.flush()


def delete_listener(session: Session, listener_key: str) -> None:
    """Forget a listener completely: attributes and play history."""
    key = _listener_key(listener_key)
    session.execute(delete(PlayHistory).where(PlayHistory.listener_key == key))
    session.execute(delete(Listener).where(Listener.key == key))
    session.expire_all()


# --------------------------------------------------------------------------- generation queue


def request_generation(session: Session, keywords: Sequence[str], locale: str) -> GenerationRequest:
    """Record that a listener wanted a story about ``keywords``: upsert, demand_count += 1.

    A done or failed request is reopened (pending): the demand shows the catalogue still lacks it.
    """
    lemmas = sorted(set(normalize_keywords(list(keywords))))
    if not lemmas:
        raise ValueError("a generation request needs at least one keyword")
    key = _keyword_key(lemmas)
    if len(key) > 255:
        raise ValueError("too many or too long keywords for one request")
    table = GenerationRequest.__table__
    now = _utcnow()
    values = {
        "keywords_key": key,
        "keywords": lemmas,
        "locale": locale,
        "demand_count": 1,
        "status": RequestStatus.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    status_after = case(
        (
            table.c.status.in_([RequestStatus.DONE.value, RequestStatus.FAILED.value]),
            RequestStatus.PENDING.value,
        ),
        else_=table.c.status,
    )
    dialect = session.get_bind().dialect.name
    if dialect in {"mysql", "mariadb"}:
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(table).values(**values)
        # Assignment order matters on MySQL: status is computed from the old row first.
        stmt = stmt.on_duplicate_key_update(
            [
                ("status", status_after),
                ("demand_count", table.c.demand_count + 1),
                ("updated_at", now),
            ]
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["keywords_key", "locale"],
            set_={
                "status": status_after,
                "demand_count": table.c.demand_count + 1,
                "updated_at": now,
            },
        )
    session.execute(stmt)
    request = session.scalars(
        select(GenerationRequest)
        .where(GenerationRequest.keywords_key == key, GenerationRequest.locale == locale)
        .execution_options(populate_existing=True)
    ).one()
    log.info("generation wanted for %s (%s), demand now %d", lemmas, locale, request.demand_count)
    return request


def claim_generation_requests(
    session: Session, worker_id: str, limit: int
) -> list[GenerationRequest]:
    """Claim up to ``limit`` pending requests, most demanded first, and COMMIT the claim.

    MySQL/MariaDB: ``SELECT ... FOR UPDATE SKIP LOCKED`` under READ COMMITTED (no gap locks),
    so concurrent workers never claim the same row and never wait for each other; a deadlock
    reported by InnoDB is retried. SQLite: a no-op UPDATE first takes the database write lock
    (BEGIN IMMEDIATE-style), serialising claimers. Claims older than CLAIM_TIMEOUT (dead
    worker) are claimable again. Call it with a session that has no unsaved work.
    """
    if limit <= 0:
        return []
    for attempt in range(1, _CLAIM_RETRIES + 1):
        try:
            claimed = _claim_once(session, worker_id, limit)
        except OperationalError as exc:
            code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
            session.rollback()
            if code not in _MYSQL_RETRYABLE or attempt == _CLAIM_RETRIES:
                raise
            log.warning("claim by %s hit MySQL error %s; retry %d", worker_id, code, attempt)
            time.sleep(0.01 * attempt * random.random())
            continue
        if claimed:
            log.info("worker %s claimed requests %s", worker_id, [r.id for r in claimed])
        return claimed
    return []  # pragma: no cover - the loop returns or raises


_CLAIM_RETRIES = 5
# InnoDB deadlock / lock wait timeout: the transaction was rolled back, trying again is safe.
_MYSQL_RETRYABLE = {1213, 1205}


def _claim_once(session: Session, worker_id: str, limit: int) -> list[GenerationRequest]:
    now = _utcnow()
    claimable = or_(
        GenerationRequest.status == RequestStatus.PENDING.value,
        and_(
            GenerationRequest.status == RequestStatus.CLAIMED.value,
            GenerationRequest.claimed_at < now - CLAIM_TIMEOUT,
        ),
    )
    stmt = (
        select(GenerationRequest)
        .where(claimable, GenerationRequest.attempts < MAX_ATTEMPTS)
        .order_by(GenerationRequest.demand_count.desc(), GenerationRequest.id)
        .limit(limit)
    )
    bind = session.get_bind()
    dialect = bind.dialect.name
    if dialect in {"mysql", "mariadb"}:
        if isinstance(bind, Engine) and not session.in_transaction():
            session.connection(execution_options={"isolation_level": "READ COMMITTED"})
        stmt = stmt.with_for_update(skip_locked=True)
    elif dialect == "sqlite":
        session.execute(text("UPDATE generation_requests SET status = status WHERE 0"))
    else:  # pragma: no cover - other engines: plain row locks
        stmt = stmt.with_for_update()
    claimed = list(session.scalars(stmt.execution_options(populate_existing=True)))
    for request in claimed:
        request.status = RequestStatus.CLAIMED.value
        request.claimed_by = worker_id[:200]
        request.claimed_at = now
        request.attempts += 1
    session.commit()
    return claimed


def complete_generation_request(
    session: Session, request_id: int, story_id: int | None, error: str | None = None
) -> GenerationRequest:
    """Mark a claimed request done (with the story made) or failed (with the error). No commit."""
    request = session.get(GenerationRequest, request_id)
    if request is None:
        raise LookupError(f"no generation request with id {request_id}")
    if error is not None or story_id is None:
        request.status = RequestStatus.FAILED.value
        request.last_error = (error or "no story produced")[:4000]
        log.warning("generation request %s failed: %s", request_id, request.last_error)
    else:
        request.status = RequestStatus.DONE.value
        request.story_id = story_id
        request.last_error = None
    session.flush()
    return request


def pending_generation_count(session: Session) -> int:
    """How many requests are waiting (for status displays)."""
    return (
        session.scalar(
            select(func.count()).where(GenerationRequest.status == RequestStatus.PENDING.value)
        )
        or 0
    )


__all__ = [
    "StoryChoice",
    "StoryDraft",
    "StoryView",
    "add_story",
    "add_synonym",
    "choose_story",
    "claim_generation_requests",
    "complete_generation_request",
    "content_hash",
    "delete_listener",
    "get_story",
    "hash_listener_id",
    "iter_stories",
    "keyword_catalogue",
    "known_keywords",
    "list_stories",
    "load_listener_attributes",
    "record_play",
    "refresh_keyword_counts",
    "request_generation",
    "resolve_keyword",
    "review_story",
    "save_listener_attributes",
]
