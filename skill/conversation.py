"""What the skill says and remembers, as plain Python: no Alexa types, testable with a Session.

Handlers translate a request into one call here and the returned :class:`Reply` into a response
(skill/responses.py). Listener state lives in :class:`ListenerState`, which the interceptors load
from and save to the SDK's session and persistent attributes.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from db import store
from db.engine import begin_writing
from db.store.keyword_cache import KeywordCache
from safety import requests as request_policy
from skill import delivery, intents, phrasing
from skill.i18n import Translator
from skill.night import NightMixin
from skill.preferences import Preferences, device_key, device_preferences_from
from skill.ssml import PARAGRAPH_BREAK, Speech, split_story
from skill.turns import (
    PENDING_GO_ON,
    PENDING_NEXT_STORY,
    PENDING_OFFER,
    PENDING_RESUME,
    PENDING_SLEEP_SOUND,
    PENDING_TOPIC,
    Display,
    Reply,
)

logger = logging.getLogger(__name__)

#: "Two stories": at most this many in one go (a bedtime, not a marathon).
MAX_STORIES_PER_REQUEST = 3
#: Devices whose switches are remembered per listener (a household has a few Echos).
MAX_DEVICES = 16

CARD_MAX_CHARS = 900
_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")
TOPIC_SUGGESTIONS = 4


@dataclass(frozen=True)
class SpokenKeyword:
    """One slot value: the words heard and, when entity resolution matched, the canonical name."""

    said: str
    canonical: str | None = None


@dataclass
class Bookmark:
    """Where a listener is in a story; persisted so the next session can offer to carry on."""

    story_id: int
    title: str
    part: int
    keywords: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "story_id": self.story_id,
            "title": self.title,
            "part": self.part,
            "keywords": list(self.keywords),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Bookmark | None:
        """Tolerates missing or malformed data from older versions: None instead of a crash."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                story_id=int(data["story_id"]),
                title=str(data.get("title", "")),
                part=max(0, int(data.get("part", 0))),
                keywords=[str(k) for k in data.get("keywords", [])],
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class ListenerState:
    """Everything remembered about one listener: persistent part plus this session's part."""

    listener_key: str | None = None
    bookmark: Bookmark | None = None
    last_story_id: int | None = None
    last_keywords: list[str] = field(default_factory=list)
    # session-only
    pending: str | None = None
    offer_keywords: list[str] = field(default_factory=list)
    length: str | None = None  # "short"/"medium"/"long" when the listener asked this session
    stories_left: int = 0  # "two stories": stories still to finish, the current one included
    finished_story: bool = False  # a story ended this session: goodnight gets the ritual
    # persistent: a grown-up's switches per device ({sha256 of the device id: {switch: bool}})
    device_preferences: dict[str, dict[str, bool]] = field(default_factory=dict)

    PERSISTENT_KEYS = ("bookmark", "last_story_id", "last_keywords", "devices")

    @classmethod
    def from_attributes(
        cls, listener_key: str | None, persistent: dict[str, Any], session: dict[str, Any]
    ) -> ListenerState:
        last_story = persistent.get("last_story_id")
        return cls(
            listener_key=listener_key,
            bookmark=Bookmark.from_dict(persistent.get("bookmark")),
            last_story_id=last_story if isinstance(last_story, int) else None,
            last_keywords=[str(k) for k in persistent.get("last_keywords") or []],
            device_preferences=device_preferences_from(persistent.get("devices")),
            pending=session.get("pending") if isinstance(session.get("pending"), str) else None,
            offer_keywords=[str(k) for k in session.get("offer_keywords") or []],
            length=session.get("length") if session.get("length") in LENGTH_NAMES else None,
            stories_left=_small_count(session.get("stories_left")),
            finished_story=session.get("finished_story") is True,
        )

    def persistent_attributes(self) -> dict[str, Any]:
        data: dict[str, Any] = {"last_keywords": list(self.last_keywords)}
        if self.bookmark is not None:
            data["bookmark"] = self.bookmark.to_dict()
        if self.last_story_id is not None:
            data["last_story_id"] = self.last_story_id
        if self.device_preferences:
            data["devices"] = {key: dict(value) for key, value in self.device_preferences.items()}
        return data

    def remember_device(self, key: str, preferences: dict[str, bool]) -> None:
        """Keep one device's switches; the most recently set :data:`MAX_DEVICES` are kept."""
        self.device_preferences.pop(key, None)
        self.device_preferences[key] = dict(preferences)
        while len(self.device_preferences) > MAX_DEVICES:
            self.device_preferences.pop(next(iter(self.device_preferences)))

    def session_attributes(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.pending:
            data["pending"] = self.pending
        if self.offer_keywords:
            data["offer_keywords"] = list(self.offer_keywords)
        if self.length:
            data["length"] = self.length
        if self.stories_left:
            data["stories_left"] = self.stories_left
        if self.finished_story:
            data["finished_story"] = True
        return data


LENGTH_NAMES = tuple(store.LENGTH_BANDS)


def _small_count(value: Any) -> int:
    """A stories-left count from session attributes; anything odd counts as none."""
    if isinstance(value, int) and not isinstance(value, bool):
        return min(max(value, 0), MAX_STORIES_PER_REQUEST)
    return 0


@lru_cache(maxsize=256)
def _parts_of(text: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(part) for part in split_story(text))


def story_parts(story: store.StoryView) -> list[list[str]]:
    """The story split into parts (cached; splitting is deterministic)."""
    return [list(part) for part in _parts_of(story.text)]


def topic_words(lemma: str) -> str:
    """How to say a keyword in "stories about …": "dragons", "the moon", "rain"."""
    return phrasing.many(lemma)


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Shorten at a word boundary so a card never ends mid-word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ellipsis)]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + ellipsis


class Conversation(NightMixin):
    """One turn with one listener; holds the DB session, the listener's state and the strings."""

    def __init__(
        self,
        session: Session | Callable[[], Session],
        state: ListenerState,
        translate: Translator,
        locale: str,
        rng: random.Random | None = None,
        fallback_locale: str = "en-US",
        auto_approve_live: bool = False,
        listener: store.ListenerTurn | None = None,
        keywords: KeywordCache | None = None,
        connection: Connection | None = None,
        preferences: Preferences | None = None,
        sound_base_url: str | None = None,
        sounds: Sequence[str] = (),
        device_id: str | None = None,
    ) -> None:
        """``session``: a Session, or a function making one on first use (the turn's, which the
        hot path never needs); ``listener`` collects this turn's plays for one write at its end
        (without it, each play is written at once); ``keywords`` resolves keywords from memory;
        ``connection`` is the turn's own, for the Core reads of the hot path."""
        self._session = session if isinstance(session, Session) else None
        self._make_session = None if isinstance(session, Session) else session
        if connection is None:
            connection = self.session.connection()
        self.db: Connection = connection
        self.listener = listener
        self.keywords = keywords
        self.state = state
        self._ = translate
        self.request_locale = locale
        self.fallback_locale = fallback_locale
        self.rng = rng
        self.auto_approve_live = auto_approve_live
        self._preferences = preferences
        self.device_id = device_id
        #: Where Alexa streams sleep sounds from, and which sounds exist; none: not offered.
        self.sound_base_url = sound_base_url
        self.sounds = list(sounds) if sound_base_url else []
        self._story_locale: str | None = None

    @property
    def session(self) -> Session:
        """The ORM session, for the paths that add or change rows (made on first use)."""
        if self._session is None:
            assert self._make_session is not None
            self._session = self._make_session()
        return self._session

    @property
    def preferences(self) -> Preferences:
        """This device's switches (kept with the listener, so reading them costs no query)."""
        if self._preferences is None:
            stored = (
                self.state.device_preferences.get(device_key(self.device_id))
                if self.device_id
                else None
            )
            self._preferences = Preferences.from_dict(stored)
        return self._preferences

    @preferences.setter
    def preferences(self, value: Preferences) -> None:
        """Switched by a grown-up: remembered for this device, written with the turn."""
        self._preferences = value
        if self.device_id:
            self.state.remember_device(device_key(self.device_id), value.to_dict())

    @property
    def locale(self) -> str:
        """Locale of the stories we tell: the listener's when the catalogue has any, else the
        default (an en-GB listener hears en-US stories rather than none)."""
        if self._story_locale is None:
            own = self.request_locale
            has_own = own == self.fallback_locale or bool(self._known_keywords(own, limit=1))
            self._story_locale = own if has_own else self.fallback_locale
        return self._story_locale

    # ----------------------------------------------------------------- keywords
    def _known_keywords(self, locale: str, limit: int | None = None) -> list[str]:
        if self.keywords is not None:
            return self.keywords.known(self.db, locale, limit)
        return store.known_keywords(self.session, locale, limit=limit)

    def resolve(self, spoken: Sequence[SpokenKeyword]) -> list[tuple[str, str]]:
        """(lemma, words to say) for each usable slot value, duplicates removed."""
        return [(match.lemma, said) for match, said in self._resolve(spoken)]

    def _resolve(self, spoken: Sequence[SpokenKeyword]) -> list[tuple[store.KeywordMatch, str]]:
        """The keywords of this turn, read from the store once and handed on to choosing."""
        texts = [value.canonical or value.said for value in spoken]
        resolved: list[tuple[store.KeywordMatch, str]] = []
        if self.keywords is not None:
            matches = self.keywords.resolve(self.db, texts)
        else:
            matches = store.resolve_keywords(self.session, texts)
        for value, match in zip(spoken, matches, strict=True):
            if match is not None and match.lemma not in [known.lemma for known, _ in resolved]:
                resolved.append((match, value.said or value.canonical or match.lemma))
        return resolved

    def _queue_generation(self, keywords: Sequence[str]) -> None:
        """Count demand for a story we could not tell; a refused request never spoils the turn.

        With a listener the demand goes with the turn's own writes: a database error there fails
        the turn's one write like any other (nothing is half-saved). Without one, it runs at once
        in a savepoint, and any error is logged and the turn goes on."""
        if not keywords:
            return
        if self.listener is not None:
            # With the turn's own writes: no savepoint and, on MariaDB, no round trip of its own.
            # What could refuse it (the request policy, an over-long key) is checked first.
            dialect = self.db.dialect.name
            try:
                self.listener.also_write(store.demand_write(dialect, list(keywords), self.locale))
            except ValueError as exc:
                logger.warning("Not queueing a generation request for %s: %s", keywords, exc)
            else:
                logger.info("generation wanted for %s (%s)", list(keywords), self.locale)
            return
        try:
            begin_writing(self.session)
            with self.session.begin_nested():
                store.request_generation(self.session, list(keywords), self.locale)
        except Exception:
            logger.exception("Could not queue a generation request for %s", list(keywords))

    def _suggestions(self, exclude: Sequence[str] = ()) -> list[str]:
        known = request_policy.allowed_words(
            k for k in self._known_keywords(self.locale, limit=20) if k not in exclude
        )
        rng = self.rng or random
        return rng.sample(known, k=min(TOPIC_SUGGESTIONS, len(known)))

    def _say_topics(self, lemmas: Sequence[str]) -> str:
        """Kinds of things, for "stories about …": "kites and the moon"."""
        return self._.join(phrasing.manys(lemmas))

    def _say_choices(self, lemmas: Sequence[str]) -> str:
        """Alternatives for "a story about …": "a kite, an owl or the moon"."""
        return self._.join(phrasing.ones(lemmas), conjunction="or")

    def _say_wanted(self, words: Sequence[str]) -> str:
        """What was asked, for "a story about …": "a kite and the moon"."""
        return self._.join(phrasing.ones(words))

    # ----------------------------------------------------------------- intents
    def welcome(self) -> Reply:
        bookmark = self.state.bookmark
        if bookmark is not None:
            self.state.pending = PENDING_RESUME
            return Reply(
                Speech().say(self._("welcome_back_resume", title=bookmark.title)),
                reprompt=self._("resume_reprompt", title=bookmark.title),
            )  # "yes" carries on with the next part; "from the beginning" starts over
        return self.ask_topic("welcome", "welcome_reprompt")

    def ask_topic(
        self,
        key: str = "ask_topic_reprompt",
        reprompt_key: str = "ask_topic_reprompt",
        **values: Any,
    ) -> Reply:
        self.state.pending = PENDING_TOPIC
        return Reply(Speech().say(self._(key, **values)), reprompt=self._(reprompt_key))

    # ----------------------------------------------------------------- request policy
    def _redirected(self, spoken: Sequence[SpokenKeyword]) -> request_policy.RequestVerdict | None:
        """The first requested word the policy redirects (what was heard, or its canonical name)."""
        words = [w for value in spoken for w in (value.said, value.canonical) if w]
        return request_policy.first_redirect(words)

    def redirect(self, verdict: request_policy.RequestVerdict) -> Reply:
        """A kind, short answer with suggestions: nothing generated, queued or promised.

        The redirected word is never said back, and only allowed topics are suggested.
        """
        logger.info("request redirected by the policy (%s)", verdict.category)
        self.state.pending = PENDING_TOPIC
        suggestions = self._suggestions()
        if not suggestions:
            return Reply(
                Speech().say(self._("request_redirect_no_suggestions")),
                reprompt=self._("ask_topic_reprompt"),
            )
        choices = self._say_choices(suggestions)
        return Reply(
            Speech().say(self._("request_redirect", choices=choices)),
            reprompt=self._("suggestion_reprompt", choices=choices),
        )

    def tell(
        self, spoken: Sequence[SpokenKeyword], length: str | None = None, count: int | None = None
    ) -> Reply:
        """Tell a story about what was asked (or a surprise when nothing usable was said).

        ``length`` ("short"/"medium"/"long") holds for the rest of the session; ``count`` > 1
        ("two stories") queues the others, told one after another, then goodnight.
        The request policy comes first: a redirected word is answered kindly and goes no further.
        """
        redirected = self._redirected(spoken)
        if redirected is not None:
            return self.redirect(redirected)
        if length in LENGTH_NAMES:
            self.state.length = length
        if count is not None:
            wanted_count = min(max(count, 1), MAX_STORIES_PER_REQUEST)
            self.state.stories_left = wanted_count if wanted_count > 1 else 0
        resolved = self._resolve(spoken)
        return self.tell_about([match for match, _ in resolved], [said for _, said in resolved])

    def tell_about(
        self,
        keywords: Sequence[str] | Sequence[store.KeywordMatch],
        said: Sequence[str] | None = None,
        always_queue: bool = False,
    ) -> Reply:
        """Choose and start a story; queue a new one when we had nothing unheard to offer.

        ``keywords`` are lemmas, or this turn's matches from :meth:`_resolve` (not read again).
        """
        # A listener with no plays has heard nothing: the store then skips its history probes
        # (the "heard longest ago" query of a miss), the same answer for one statement less.
        heard_nothing = self.listener is not None and self.listener.play_count == 0
        choice = store.choose_story(
            self.db,
            keywords,
            None if heard_nothing else self.state.listener_key,
            self.locale,
            rng=self.rng,
            length=self.state.length or store.DEFAULT_LENGTH,
        )
        lemmas = [k.lemma if isinstance(k, store.KeywordMatch) else k for k in keywords]
        wanted = self._say_wanted(list(said) if said else lemmas)
        story = choice.story
        if always_queue or choice.match in ("heard", "partial", "none"):
            self._queue_generation(lemmas)
        if story is None:
            suggestions = [s for s in choice.suggestions if s not in lemmas]
            suggestions = suggestions[:TOPIC_SUGGESTIONS] or self._suggestions(lemmas)
            self.state.pending = PENDING_TOPIC
            if not lemmas:
                return Reply(Speech().say(self._("no_stories")), end_session=True)
            if not suggestions:
                return Reply(
                    Speech().say(self._("unknown_topic_no_suggestions", wanted=wanted)),
                    reprompt=self._("ask_topic_reprompt"),
                )
            listed = self._say_topics(suggestions)
            return Reply(
                Speech().say(self._("unknown_topic", wanted=wanted, suggestions=listed)),
                reprompt=self._("suggestion_reprompt", choices=self._say_choices(suggestions)),
            )
        if not lemmas:
            intro = self._("story_intro_surprise", title=story.title)
        elif choice.match == "partial":
            topic = self._say_wanted([k for k in lemmas if k in story.keywords] or lemmas[:1])
            intro = self._("story_intro_partial", wanted=wanted, topic=topic, title=story.title)
        elif choice.match == "heard":
            intro = self._("story_intro_heard", topic=wanted, title=story.title)
        else:
            intro = self._("story_intro", title=story.title)
        if self.state.length and not choice.length_matched:
            length_words = self._(f"length_{self.state.length}")
            intro = f"{self._('story_other_length', length=length_words)} {intro}"
        self.state.last_keywords = lemmas
        return self._deliver(story, 0, intro, keywords=lemmas, fresh=True)

    def _deliver(
        self,
        story: store.StoryView,
        part: int,
        intro: str | None,
        keywords: Sequence[str] | None = None,
        fresh: bool = False,
        record: bool = True,
    ) -> Reply:
        """Speak one part, move the bookmark, and ask to go on or offer another story.

        ``fresh`` marks a new telling: it is recorded as played at once, so a listener who stops
        after the first part is not offered the same story as "new" tomorrow. ``record=False``
        (repeating a finished story's last part) leaves the play history alone.
        """
        parts = story_parts(story)
        part = min(max(part, 0), len(parts) - 1)
        if fresh and story.id >= 0 and self.state.listener_key:
            self._record_play(story.id, finished=False)
        speech = Speech()
        if intro:
            speech.say(intro).pause(PARAGRAPH_BREAK)
        speech.trusted(
            delivery.story_part_ssml(
                parts[part], part, len(parts), sleepy=self.preferences.sleepy_voice
            )
        )
        display = Display(story.title, parts[part], part + 1, len(parts))
        card_title = card_text = None
        if intro:
            card_title = story.title
            card_text = truncate(story.text, CARD_MAX_CHARS, self._("card_more"))
        self.state.last_story_id = story.id
        kept = (
            list(keywords)
            if keywords is not None
            else (self.state.bookmark.keywords if self.state.bookmark else [])
        )
        if part + 1 < len(parts):
            self.state.bookmark = Bookmark(story.id, story.title, part, kept)
            self.state.pending = PENDING_GO_ON
            speech.pause(PARAGRAPH_BREAK).say(self._("go_on_question"))
            return Reply(
                speech,
                reprompt=self._("go_on_reprompt"),
                card_title=card_title,
                card_text=card_text,
                display=display,
            )
        # Last part: the story is finished.
        if record and story.id >= 0 and self.state.listener_key:
            self._record_play(story.id, finished=True)
        self.state.bookmark = None
        self.state.finished_story = True
        self.state.offer_keywords = kept
        self._say_the_end(speech, story.text)
        reply = Reply(speech, card_title=card_title, card_text=card_text, display=display)
        return self._after_story(reply)

    def _record_play(self, story_id: int, finished: bool) -> None:
        if self.listener is not None:
            self.listener.record_play(story_id, finished)
        elif self.state.listener_key:
            store.record_play(self.session, self.state.listener_key, story_id, finished)

    def _say_the_end(self, speech: Speech, story_text: str) -> None:
        """Close the story, without a second "The end." when the story already says it."""
        closing = self._("story_end")
        speech.pause(PARAGRAPH_BREAK)
        if not _normalised_tail(story_text).endswith(_normalised_tail(closing)):
            speech.trusted(delivery.closing_ssml([closing], self.preferences.sleepy_voice))
            speech.pause(PARAGRAPH_BREAK)

    def _bookmarked_story(self) -> store.StoryView | None:
        bookmark = self.state.bookmark
        if bookmark is None:
            return None
        story = store.get_story(self.session, bookmark.story_id)
        if story is None:
            logger.warning("Bookmarked story %s no longer exists; forgetting it", bookmark.story_id)
            self.state.bookmark = None
        return story

    def go_on(self) -> Reply:
        """Next part of the current story, or another story when none is in progress."""
        story = self._bookmarked_story()
        if story is None or self.state.bookmark is None:
            return self.tell_about(self.state.last_keywords)
        return self._deliver(story, self.state.bookmark.part + 1, None)

    def resume(self) -> Reply:
        """Carry on with the first part not yet heard (the bookmark holds the last one told)."""
        story = self._bookmarked_story()
        if story is None or self.state.bookmark is None:
            return self.ask_topic("nothing_to_resume")
        return self._deliver(
            story, self.state.bookmark.part + 1, self._("story_resume", title=story.title)
        )

    def decline_resume(self) -> Reply:
        self.state.bookmark = None
        return self.ask_topic("resume_declined")

    def repeat(self) -> Reply:
        """The part just told again (or the last part of a finished story)."""
        story = self._bookmarked_story()
        if story is not None and self.state.bookmark is not None:
            return self._deliver(story, self.state.bookmark.part, None)
        if self.state.last_story_id is not None:
            last = store.get_story(self.session, self.state.last_story_id)
            if last is not None:
                return self._deliver(
                    last,
                    len(story_parts(last)) - 1,
                    None,
                    keywords=self.state.last_keywords,
                    record=False,
                )
        return self.ask_topic("nothing_to_repeat")

    def start_over(self) -> Reply:
        story = self._bookmarked_story()
        if story is None and self.state.last_story_id is not None:
            story = store.get_story(self.session, self.state.last_story_id)
        if story is None:
            return self.ask_topic("nothing_to_start_over")
        kept = self.state.bookmark.keywords if self.state.bookmark else self.state.last_keywords
        return self._deliver(
            story, 0, self._("story_start_over", title=story.title), keywords=kept, fresh=True
        )

    def pause(self) -> Reply:
        bookmark = self.state.bookmark
        self.state.pending = None
        if bookmark is None:
            return Reply(Speech().say(self._("paused_nothing")), end_session=True)
        return Reply(Speech().say(self._("paused", title=bookmark.title)), end_session=True)

    def goodbye(self) -> Reply:
        """Stop/Cancel/No: end kindly, keeping the bookmark for next time.

        After a story ended this session, goodnight is the calm closing ritual.
        """
        bookmark = self.state.bookmark
        self.state.pending = None
        if bookmark is not None:
            return Reply(
                Speech().say(self._("stop_with_story", title=bookmark.title)), end_session=True
            )
        if self.state.finished_story:
            return Reply(self._goodnight(Speech()), end_session=True)
        return Reply(Speech().say(self._("goodbye")), end_session=True)

    def yes(self) -> Reply:
        pending = self.state.pending
        if pending == PENDING_RESUME:
            return self.resume()
        if pending == PENDING_GO_ON:
            return self.go_on()
        if pending == PENDING_OFFER:
            return self.tell_about(self.state.offer_keywords)
        if pending == PENDING_NEXT_STORY:
            return self.next_story()
        if pending == PENDING_SLEEP_SOUND:
            return self.play_sleep_sound(None, None)
        # "yes" to "what would you like a story about?": a surprise is a kind answer.
        return self.tell_about([])

    def no(self) -> Reply:
        if self.state.pending == PENDING_RESUME:
            return self.decline_resume()
        if self.state.pending == PENDING_OFFER and self.state.finished_story:
            return self.end_of_night(Reply(Speech()))
        if self.state.pending == PENDING_SLEEP_SOUND:
            self.state.pending = None
            return Reply(Speech().say(self._("goodbye")), end_session=True)
        return self.goodbye()

    def list_topics(self) -> Reply:
        suggestions = self._suggestions()
        if not suggestions:
            return Reply(Speech().say(self._("no_stories")), end_session=True)
        self.state.pending = PENDING_TOPIC
        return Reply(
            Speech().say(self._("topics", suggestions=self._say_topics(suggestions))),
            reprompt=self._("topics_reprompt"),
        )

    def help(self) -> Reply:
        return self.ask_topic("help", "help_reprompt")

    def fallback(self) -> Reply:
        return self.ask_topic("fallback", "fallback_reprompt")

    # ----------------------------------------------------------------- new stories
    def new_story(
        self,
        spoken: Sequence[SpokenKeyword],
        generate: Callable[[list[str]], Any | None] | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> Reply:
        """ "Make up a new story": live when ``generate`` is given, else queued for later.

        ``announce`` sends the "let me think" progressive response before the slow part;
        ``generate`` returns an object with ``title``/``text`` (and optionally ``story_id``) or
        None when the model missed its deadline, in which case a stored story is told instead.
        The request policy comes first: a redirected word is never generated, queued or promised.
        """
        redirected = self._redirected(spoken)
        if redirected is not None:
            return self.redirect(redirected)
        resolved = self._resolve(spoken)
        matches = [match for match, _ in resolved]
        keywords = [match.lemma for match in matches]
        said = [words for _, words in resolved]
        wanted = self._say_wanted(said)
        if not keywords:
            return Reply(
                Speech().say(self._("new_story_needs_topic")),
                reprompt=self._("new_story_needs_topic"),
                elicit_slot=intents.KEYWORD_SLOT,
            )
        if generate is None:
            return self._new_story_queued(keywords, wanted)
        if announce is not None:
            announce(self._("new_story_thinking", wanted=wanted))
        story = generate(keywords)
        if story is None or not getattr(story, "text", None):
            return self._live_fallback(matches, said)
        story_id = getattr(story, "story_id", None) or self._store_live(story)
        return self._tell_live(
            keywords, str(getattr(story, "title", "") or wanted), str(story.text), story_id
        )

    def _store_live(self, story: Any) -> int | None:
        """Keep a live story (generator.assemble.GeneratedStory) in the catalogue.

        The child who asked hears it once (it has passed the safety gate); it joins the shared
        catalogue as *pending* for a person to approve, unless ``auto_approve_live``: then it is
        bookmarked, never repeated to this listener, and there for other children too. A storage
        problem only costs that: the child still hears the story.
        """
        to_draft = getattr(story, "to_draft", None)
        if to_draft is None:
            return None
        try:
            draft = to_draft(locale=self.locale)
            if not isinstance(draft.safety_verdict, str | None):  # a verdict dict: keep the gist
                draft.safety_verdict = str(getattr(story, "status", "approved"))[:200]
            if not self.auto_approve_live and draft.review_status == "approved":
                draft.review_status = "pending"  # shared only once a person approves it
            begin_writing(self.session)
            with self.session.begin_nested():
                stored = store.add_story(self.session, draft)
            if self.keywords is not None:
                self.keywords.invalidate()  # its keywords are asked for next
        except Exception:
            logger.exception("Could not store the live story %r", getattr(story, "title", None))
            return None
        return stored.id if stored.review_status == "approved" else None

    def _new_story_queued(self, keywords: list[str], wanted: str) -> Reply:
        """No live model: be honest that it takes a while, queue it, offer a story we have."""
        self._queue_generation(keywords)
        speech = Speech().say(self._("new_story_queued", wanted=wanted))
        self.state.pending = PENDING_OFFER
        if set(keywords) & set(self._known_keywords(self.locale)):
            self.state.offer_keywords = keywords
            question = self._("new_story_offer_existing", topic=wanted)
        else:
            self.state.offer_keywords = []
            question = self._("new_story_offer_other")
        return Reply(speech.say(question), reprompt=question)

    def _tell_live(self, keywords: list[str], title: str, text: str, story_id: int | None) -> Reply:
        """Speak a story the live model just wrote."""
        view = store.StoryView(
            id=story_id if story_id is not None else -1,
            title=title,
            text=text,
            keywords=tuple(keywords),
            locale=self.locale,
        )
        self.state.last_keywords = list(keywords)
        intro = self._("new_story_live_intro", title=title)
        if story_id is not None:
            return self._deliver(view, 0, intro, keywords=keywords, fresh=True)
        # Not stored, so it cannot be bookmarked or resumed next session: first part only.
        parts = story_parts(view)
        speech = Speech().say(intro).pause(PARAGRAPH_BREAK).story(parts[0])
        self._say_the_end(speech, text)
        speech.say(self._("another_question"))
        self.state.pending = PENDING_OFFER
        self.state.offer_keywords = list(keywords)
        return Reply(
            speech,
            reprompt=self._("another_reprompt"),
            card_title=title,
            card_text=truncate(text, CARD_MAX_CHARS, self._("card_more")),
            display=Display(title, parts[0], 1, 1),
        )

    def _live_fallback(self, keywords: list[store.KeywordMatch], said: list[str]) -> Reply:
        """The live model was too slow or failed: queue it and tell a stored story instead."""
        reply = self.tell_about(keywords, said, always_queue=True)
        reply.speech.fragments.insert(0, Speech().say(self._("new_story_too_slow")).ssml())
        return reply


def _normalised_tail(text: str, length: int = 200) -> str:
    """The last ``length`` characters, lower-case letters and spaces only, for comparing how a
    story ends (only the tail: normalising a whole story on every turn costs more than a turn's
    SQL)."""
    return " ".join(_NOT_ALPHANUMERIC.sub(" ", text[-length:].lower()).split())
