"""The request policy: may a child ask for a story about this word? Torch-free, cheap.

Each requested word is *allowed* or *redirected*. A redirected word gets a kind, short answer with
suggestions from the skill: nothing is generated, queued or promised. The lists are
``safety/data/request_policy.txt`` plus better-profanity's word list, all inflected (see
:mod:`safety.lists`), so "guns", "farting" and "kissing" redirect like "gun", "fart", "kiss".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from safety.lists import DATA_DIR, WordLists, parse_lists, profanity_words

REQUEST_POLICY_PATH = DATA_DIR / "request_policy.txt"
PROFANITY = "profanity"
ALLOW = "allow"
REDIRECT = "redirect"


@dataclass(frozen=True)
class RequestVerdict:
    """What the policy says about one requested word (or phrase)."""

    word: str
    action: str  # ALLOW or REDIRECT
    category: str | None = None
    matched: str | None = None

    @property
    def allowed(self) -> bool:
        return self.action == ALLOW

    def line(self) -> str:
        """``allow`` or ``redirect (category: word)``, as ``bedtime safety request`` prints."""
        if self.allowed:
            return ALLOW
        return f"{REDIRECT} ({self.category}: {self.matched})"


def build_request_lists(source: Path) -> WordLists:
    """The policy's lists built live with lemminflect (what the compiled file holds)."""
    return parse_lists(
        source.read_text(encoding="utf-8"), {PROFANITY: profanity_words()}, inflect_extra=True
    )


def request_inputs(source: Path) -> str:
    """The fingerprint of everything the policy's answers depend on."""
    from safety.compiled import fingerprint

    return fingerprint(source.read_text(encoding="utf-8"), profanity_words())


@lru_cache(maxsize=4)
def request_lists(path: str | None = None) -> WordLists:
    """The policy's lists: the shipped policy from its compiled file when it is current (no
    lemminflect in the skill), any other file, or a stale compiled one, built live."""
    from safety.compiled import load

    source = Path(path) if path else REQUEST_POLICY_PATH
    if source == REQUEST_POLICY_PATH:
        compiled = load(request_inputs(source))
        if compiled is not None:
            return compiled
    return build_request_lists(source)


def judge_request(word: str, lists: WordLists | None = None) -> RequestVerdict:
    """Allow or redirect one requested word or phrase ("a story about a gun" works too)."""
    if lists is None:
        return _judge_with_shipped_policy(word)
    return _judge(word, lists)


@lru_cache(maxsize=8192)
def _judge_with_shipped_policy(word: str) -> RequestVerdict:
    """Children ask for the same few hundred words all night: each is judged once per process."""
    return _judge(word, request_lists())


def _judge(word: str, lists: WordLists) -> RequestVerdict:
    found = lists.find(word.replace("-", " ").replace("_", " "))
    if not found:
        return RequestVerdict(word, ALLOW)
    return RequestVerdict(word, REDIRECT, found[0].category, found[0].found)


def judge_requests(words: Iterable[str], lists: WordLists | None = None) -> list[RequestVerdict]:
    return [judge_request(word, lists) for word in words]


def first_redirect(words: Iterable[str], lists: WordLists | None = None) -> RequestVerdict | None:
    """The first redirected word of a request, None when every word is allowed."""
    return next((v for v in judge_requests(words, lists) if not v.allowed), None)


def allowed_words(words: Iterable[str], lists: WordLists | None = None) -> list[str]:
    """``words`` without the redirected ones (suggestions must never offer a redirected topic)."""
    return [v.word for v in judge_requests(words, lists) if v.allowed]
