"""The schema: SQLAlchemy 2.0 typed ORM models, identical on SQLite and MySQL/MariaDB.

Design notes (why, not what):

* Enumerations are plain strings guarded by CHECK constraints, not native ENUMs, so the schema
  is the same on both engines and adding a value is a one-line migration.
* ``story_keywords`` denormalises ``locale``, ``approved`` and ``random_key`` from ``stories``.
  Its composite index ``(keyword_id, locale, approved, random_key, story_id)`` lets
  :func:`db.store.choose_story` pick a random approved story for a keyword with one index range
  scan (``random_key >= r ORDER BY random_key LIMIT n``) instead of ``ORDER BY RAND()``.
  ``story_keyword_pairs`` does the same for every pair of a story's keywords, so two keywords
  are one range scan too, however rarely they occur together.
  A ``before_flush`` hook on :class:`StoreSession` (:func:`_sync_story_links`) keeps the copies
  in step when a story's review status or locale changes through the ORM; bulk SQL updates must
  update all three.
  Change review status with :func:`db.store.review_story`, which also keeps
  ``keywords.story_count`` right.
* The naming convention gives every constraint the same name on both engines, so migrations
  can drop/alter them by name (Alembic batch mode on SQLite needs names).
"""

from __future__ import annotations

import enum
import random
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: random_key is drawn uniformly from [0, RANDOM_KEY_SPACE): fits a signed 32-bit INTEGER.
RANDOM_KEY_SPACE = 2**31 - 1

#: MySQL options every table gets: InnoDB for row locks/SKIP LOCKED, utf8mb4 for emoji.
#: Applied by :func:`_mysql_table_options` just before MySQL DDL, not as ``__table_args__``:
#: a ``mysql_*`` keyword makes SQLAlchemy import the whole MySQL dialect with the models.
MYSQL_TABLE_OPTIONS: dict[str, str] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def _utcnow() -> datetime:
    """Naive UTC timestamps: both engines store DATETIME without zone; we always mean UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_random_key() -> int:
    return random.randrange(RANDOM_KEY_SPACE)


class Timestamp(TypeDecorator[datetime]):
    """Microsecond timestamps on MySQL (plain DATETIME drops fractions, breaking "longest ago").

    The MySQL dialect's DATETIME is imported only when that dialect compiles or binds it:
    importing the dialect package with the models cost ~20 ms of every SQLite cold start.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())


def _exact_string(length: int) -> String:
    """A VARCHAR compared byte-for-byte on MySQL: 'café' and 'cafe' are different keywords."""
    return String(length).with_variant(String(length, collation="utf8mb4_bin"), "mysql", "mariadb")


class ReviewStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # was approved, then failed a safety recheck: kept, never served


class StorySource(enum.StrEnum):
    GENERATED = "generated"
    IMPORTED = "imported"
    HANDWRITTEN = "handwritten"


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


def _in_check(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy reads it as a class attribute
        dict[str, Any]: JSON,
        list[str]: JSON,
        datetime: Timestamp(),
    }


@event.listens_for(Base.metadata, "before_create")
def _mysql_table_options(metadata: MetaData, connection: Connection, **_: Any) -> None:
    """Every table's MySQL options, given just before MySQL creates them (see above)."""
    if connection.dialect.name not in ("mysql", "mariadb"):
        return
    for table in metadata.tables.values():
        for key, value in MYSQL_TABLE_OPTIONS.items():
            table.dialect_kwargs.setdefault(key, value)


class ModelRecord(Base):
    """A trained story model: what it is, where its files are, how well it did."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model_class: Mapped[str] = mapped_column(String(200))
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    artifact_path: Mapped[str | None] = mapped_column(String(1000))
    metrics: Mapped[dict[str, Any] | None] = mapped_column()
    # The model an operator chose for live stories (at most one row is live; console/).
    live: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)

    def __repr__(self) -> str:
        return f"ModelRecord(id={self.id!r}, name={self.name!r})"


class Story(Base):
    """One story. Only ``review_status == 'approved'`` stories are ever served."""

    __tablename__ = "stories"
    __table_args__ = (
        CheckConstraint(_in_check("review_status", ReviewStatus), name="review_status"),
        CheckConstraint(_in_check("source", StorySource), name="source"),
        # 0-keyword choice: "approved, locale L, random_key >= r" is a range scan.
        Index("ix_stories_pick", "review_status", "locale", "random_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(16), default="en-US")
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(16), default=StorySource.HANDWRITTEN.value)
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL"), index=True
    )
    prompt: Mapped[str | None] = mapped_column(Text)
    requested_keywords: Mapped[list[str] | None] = mapped_column()
    review_status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.PENDING.value)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    safety_verdict: Mapped[str | None] = mapped_column(String(200))
    quality: Mapped[dict[str, Any] | None] = mapped_column()
    # sha256 of the normalised title + text: re-importing the same story is a no-op.
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    random_key: Mapped[int] = mapped_column(Integer, default=new_random_key)
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)
    # Optimistic locking: every ORM update bumps it (UPDATE ... WHERE revision = old), so two
    # reviewers cannot overwrite each other; the console's ETags are made from it.
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Who last approved/rejected/withdrew it by hand, and when (console/ and the REST API).
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column()

    __mapper_args__ = {"version_id_col": revision}  # noqa: RUF012 - read by the mapper

    model: Mapped[ModelRecord | None] = relationship()
    links: Mapped[list[StoryKeyword]] = relationship(
        back_populates="story", cascade="all, delete-orphan", passive_deletes=True
    )
    pairs: Mapped[list[StoryKeywordPair]] = relationship(
        back_populates="story", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def approved(self) -> bool:
        return self.review_status == ReviewStatus.APPROVED

    @property
    def keyword_lemmas(self) -> list[str]:
        return sorted(link.keyword.lemma for link in self.links)

    def __repr__(self) -> str:
        return f"Story(id={self.id!r}, title={self.title!r}, status={self.review_status!r})"


class Keyword(Base):
    """A canonical keyword: the lower-case singular lemma from ``normalize_keyword``."""

    __tablename__ = "keywords"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lemma: Mapped[str] = mapped_column(_exact_string(100), unique=True)
    # Approved stories having this keyword (all locales). Maintained by db.store.add_story /
    # review_story, recomputed by refresh_keyword_counts; choose_story only uses it to drive
    # two-keyword lookups from the rarer keyword, so a little drift is harmless.
    story_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)

    synonyms: Mapped[list[KeywordSynonym]] = relationship(
        back_populates="keyword", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Keyword(id={self.id!r}, lemma={self.lemma!r})"


class KeywordSynonym(Base):
    """Another (normalised) way to say a keyword: "pup" -> "puppy", "kitty" -> "cat"."""

    __tablename__ = "keyword_synonyms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    synonym: Mapped[str] = mapped_column(_exact_string(100), unique=True)
    keyword_id: Mapped[int] = mapped_column(
        ForeignKey("keywords.id", ondelete="CASCADE"), index=True
    )

    keyword: Mapped[Keyword] = relationship(back_populates="synonyms")


class StoryKeyword(Base):
    """Story <-> keyword link, with the story's lookup columns copied in (see module doc)."""

    __tablename__ = "story_keywords"
    __table_args__ = (
        # "keyword K, locale L, approved, random_key >= r ORDER BY random_key" is a range scan;
        # story_id at the end makes it covering.
        Index(
            "ix_story_keywords_pick", "keyword_id", "locale", "approved", "random_key", "story_id"
        ),
    )

    # PK (story_id, keyword_id): "does story S have keyword K" is one primary-key probe.
    story_id: Mapped[int] = mapped_column(
        ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True
    )
    keyword_id: Mapped[int] = mapped_column(
        ForeignKey("keywords.id", ondelete="CASCADE"), primary_key=True
    )
    locale: Mapped[str] = mapped_column(String(16))
    approved: Mapped[bool] = mapped_column(Boolean, default=False)
    random_key: Mapped[int] = mapped_column(Integer)

    story: Mapped[Story] = relationship(back_populates="links")
    keyword: Mapped[Keyword] = relationship(lazy="joined")


class StoryKeywordPair(Base):
    """Every pair of a story's keywords, with the lookup columns: two-keyword choice in one scan.

    Driving a two-keyword lookup from one keyword and probing the other degrades when the two
    rarely meet (thousands of probes for one match); this table makes "stories about A and B"
    an index range scan like the one-keyword case. ``first_keyword`` is the one whose lemma sorts
    first, so the pair order is known before keyword ids are. Maintained by the flush hook.
    """

    __tablename__ = "story_keyword_pairs"
    __table_args__ = (
        Index(
            "ix_story_keyword_pairs_pick",
            "first_keyword_id",
            "second_keyword_id",
            "locale",
            "approved",
            "random_key",
            "story_id",
        ),
    )

    story_id: Mapped[int] = mapped_column(
        ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True
    )
    first_keyword_id: Mapped[int] = mapped_column(
        ForeignKey("keywords.id", ondelete="CASCADE"), primary_key=True
    )
    second_keyword_id: Mapped[int] = mapped_column(
        ForeignKey("keywords.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    locale: Mapped[str] = mapped_column(String(16))
    approved: Mapped[bool] = mapped_column(Boolean, default=False)
    random_key: Mapped[int] = mapped_column(Integer)

    story: Mapped[Story] = relationship(back_populates="pairs")
    first_keyword: Mapped[Keyword] = relationship(foreign_keys=[first_keyword_id])
    second_keyword: Mapped[Keyword] = relationship(foreign_keys=[second_keyword_id])


class GenerationRequest(Base):
    """A wish for a story about some keywords that the catalogue could not satisfy.

    One row per (sorted canonical keywords, locale); ``demand_count`` counts how often listeners
    asked, so the batch generator serves popular wishes first.
    """

    __tablename__ = "generation_requests"
    __table_args__ = (
        UniqueConstraint("keywords_key", "locale"),
        CheckConstraint(_in_check("status", RequestStatus), name="status"),
        Index("ix_generation_requests_queue", "status", "demand_count"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Canonical keywords, sorted, unique, joined with "|" (the uniqueness key).
    keywords_key: Mapped[str] = mapped_column(_exact_string(255))
    keywords: Mapped[list[str]] = mapped_column(default=list)
    locale: Mapped[str] = mapped_column(String(16), default="en-US")
    demand_count: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.PENDING.value)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    story_id: Mapped[int | None] = mapped_column(
        ForeignKey("stories.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=_utcnow, onupdate=_utcnow)

    story: Mapped[Story | None] = relationship()

    def __repr__(self) -> str:
        return (
            f"GenerationRequest(id={self.id!r}, keywords={self.keywords!r}, "
            f"status={self.status!r}, demand={self.demand_count!r})"
        )


class PlanLease(Base):
    """A generation worker's exclusive hold on one keyword set of the batch plan.

    While a worker holds a set (``expires_at`` in the future, renewed while it works), no other
    worker generates for it, so any number of workers, sharded or not, never overfill a target.
    A dead worker's lease simply lapses; a finished or stopped worker clears ``holder``.
    """

    __tablename__ = "plan_leases"
    __table_args__ = (UniqueConstraint("keywords_key", "locale"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Sorted canonical keywords joined with "|", as in generation_requests.
    keywords_key: Mapped[str] = mapped_column(_exact_string(255))
    locale: Mapped[str] = mapped_column(String(16), default="en-US")
    holder: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"PlanLease({self.keywords_key!r}, holder={self.holder!r})"


class Listener(Base):
    """Per-listener persistent attributes, keyed by a sha256 of the Alexa user id (never raw)."""

    __tablename__ = "listeners"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=_utcnow, onupdate=_utcnow)


class PlayHistory(Base):
    """Which listener heard which story when; drives "a story you have not heard yet"."""

    __tablename__ = "play_history"
    __table_args__ = (
        Index("ix_play_history_recent", "listener_key", "played_at"),
        # "has this listener heard story S" probes, and "heard longest ago" without table reads.
        Index("ix_play_history_listener", "listener_key", "story_id", "played_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    listener_key: Mapped[str] = mapped_column(ForeignKey("listeners.key", ondelete="CASCADE"))
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    played_at: Mapped[datetime] = mapped_column(default=_utcnow)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)


class SafetyReview(Base):
    """One safety verdict on a story: the review trail (``bedtime stories reviews ID``).

    ``action`` says what the verdict did: ``checked`` (stored as is), ``held`` (an
    approved-looking import kept pending), ``withdrawn`` (a recheck took an approved story out),
    ``trusted`` (imported approved despite the verdict, ``--trust``), ``forced`` (approved
    despite the verdict, ``--force``).
    """

    __tablename__ = "safety_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    action: Mapped[str] = mapped_column(String(16))
    checker: Mapped[str] = mapped_column(String(100))
    reasons: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)


class OperatorRole(enum.StrEnum):
    """What an operator (or an API token) may do; each role includes the ones before it."""

    READ = "read"
    REVIEW = "review"
    ADMIN = "admin"


class Operator(Base):
    """A person who may use the console: a name and an argon2 password hash (never the password)."""

    __tablename__ = "operators"
    __table_args__ = (CheckConstraint(_in_check("role", OperatorRole), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(_exact_string(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=OperatorRole.ADMIN.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"Operator(id={self.id!r}, name={self.name!r}, role={self.role!r})"


class ApiToken(Base):
    """A bearer token for scripts: only its sha256 is kept; scopes are space-separated roles."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    operator: Mapped[Operator] = relationship()


class LoginFailure(Base):
    """A failed console login: counted per name and per address to slow down guessing."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_name", "name", "failed_at"),
        Index("ix_login_failures_address", "address", "failed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(default=_utcnow)


_LINKED_ATTRIBUTES = ("review_status", "locale", "random_key")


class StoreSession(Session):
    """The Session of the story store (:func:`db.engine.session_factory` makes them).

    Its own class so the flush hook below is ours alone: other Sessions in the process (Alembic's,
    a library's) never run it. Stories must be written through a StoreSession.
    """


@event.listens_for(StoreSession, "before_flush")
def _sync_story_links(session: Session, _flush_context: Any, _instances: Any) -> None:
    """Keep each story's keyword links and keyword pairs in step with the story before a flush.

    Copies locale / approval / random_key into them and rebuilds the pairs when the links
    changed. Only touches stories that are new or whose relevant attributes changed.
    """
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, Story):
            continue
        state = inspect(obj)
        if obj.random_key is None:
            obj.random_key = new_random_key()
        if obj.locale is None:
            obj.locale = "en-US"
        if obj.review_status is None:
            obj.review_status = ReviewStatus.PENDING.value
        links_changed = state.pending or state.attrs.links.history.has_changes()
        changed = links_changed or any(
            state.attrs[name].history.has_changes() for name in _LINKED_ATTRIBUTES
        )
        if not changed:
            continue
        if links_changed:
            _rebuild_pairs(obj)
        approved = obj.review_status == ReviewStatus.APPROVED
        for row in [*obj.links, *obj.pairs]:
            if row.locale != obj.locale:
                row.locale = obj.locale
            if row.approved != approved:
                row.approved = approved
            if row.random_key != obj.random_key:
                row.random_key = obj.random_key


def _rebuild_pairs(story: Story) -> None:
    """story.pairs := every pair of story.links' keywords, ordered by lemma."""
    keywords = sorted(
        {id(link.keyword): link.keyword for link in story.links}.values(), key=lambda k: k.lemma
    )
    wanted = {
        (id(first), id(second)): (first, second)
        for index, first in enumerate(keywords)
        for second in keywords[index + 1 :]
    }
    kept = []
    for pair in story.pairs:
        key = (id(pair.first_keyword), id(pair.second_keyword))
        if key in wanted:
            kept.append(pair)
            del wanted[key]
    story.pairs = kept + [
        StoryKeywordPair(first_keyword=first, second_keyword=second)
        for first, second in wanted.values()
    ]
