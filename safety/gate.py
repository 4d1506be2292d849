"""The one gate every story passes before it can be served: words, meaning, a calm ending.

:func:`check_story` is what generation (batch and live, through ``generator.safety``), imports,
``stories approve`` and ``stories recheck`` all call. Three layers, each with its reasons:

1. **words** (torch-free): ``safety/data/story_words.txt`` plus better-profanity's list, every
   inflection, anywhere in the title or text;
2. **meaning**: every sentence of the title and text judged by the embedding classifier
   (:mod:`safety.meaning`); a sentence at or above the head's ``sentence_threshold`` fails;
3. **calm ending**: the final two sentences (before "The end.") may not be sad, frightening or
   unresolved: no word of ``safety/data/ending_words.txt`` (unless negated, "not sad anymore", or
   resolved in its sentence, "scared, but Mom hugged her") and no sentence at or above the
   stricter ``ending_threshold``.

``meaning=None`` runs the meaning check wherever its model is installed and says so in the
verdict's ``checker`` ("…+words-only" where it is not), so a stored verdict shows what judged it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from safety import meaning as meaning_check
from safety.lists import DATA_DIR, WordLists, parse_lists, profanity_words

STORY_WORDS_PATH = DATA_DIR / "story_words.txt"
ENDING_WORDS_PATH = DATA_DIR / "ending_words.txt"
PROFANITY = "profanity"
ENDING_SENTENCES = 2
#: Sentences with fewer words than this (and titles) are judged with a neighbour too.
SHORT_WORDS = 5
#: A text of fewer words, with no neighbour to read it with, is judged by the word lists only.
MIN_MEANING_WORDS = 3
_NEGATION = re.compile(r"\b(?:not|no|never|n't|nothing|nobody|without|longer)\b")
_AFTER_NEGATION = re.compile(r"^\W*(?:\w+\W+){0,2}?(?:anymore|any more)\b")
_RESOLVED = re.compile(r"\b(?:but|until|then|so)\b")
_CLOSING = re.compile(r"^(?:the end|goodnight|good night|sweet dreams)\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class SafetyVerdict:
    """The gate's answer: ``ok``, and each reason it failed."""

    ok: bool
    matches: tuple[tuple[str, str], ...] = ()  # (category, word as written, lower-cased)
    sentences: tuple[meaning_check.SentenceJudgement, ...] = ()  # failed the meaning check
    ending: tuple[str, ...] = ()  # why the ending is not calm
    checker: str = ""

    @property
    def reason(self) -> str | None:
        """Short human-readable reason for the rejection, None when ok."""
        if self.ok:
            return None
        parts: list[str] = []
        found: dict[str, list[str]] = {}
        for category, word in self.matches:
            if word not in found.setdefault(category, []):
                found[category].append(word)
        parts += [f"{cat} ({', '.join(ws[:5])})" for cat, ws in found.items()]
        for judged in self.sentences[:3]:
            parts.append(f"{judged.category} ({_quote(judged.sentence)} {judged.unsuitable:.2f})")
        parts += [f"ending: {why}" for why in self.ending[:2]]
        return "unsafe: " + "; ".join(parts)

    @property
    def categories(self) -> list[str]:
        seen = [c for c, _ in self.matches] + [s.category for s in self.sentences]
        return list(dict.fromkeys(seen + (["calm ending"] if self.ending else [])))

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "matches": [list(m) for m in self.matches],
            "sentences": [s.as_dict() for s in self.sentences],
            "ending": list(self.ending),
            "reason": self.reason,
            "checker": self.checker,
        }

    def line(self) -> str:
        """``ok`` or ``flagged: reasons``, as ``bedtime safety check`` prints."""
        return "ok" if self.ok else "flagged: " + str(self.reason).removeprefix("unsafe: ")


def _quote(sentence: str, limit: int = 60) -> str:
    text = " ".join(sentence.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


@lru_cache(maxsize=4)
def story_lists(path: str | None = None) -> WordLists:
    """The word layer's lists (cached: building the inflections takes ~0.1 s)."""
    source = STORY_WORDS_PATH if path is None else DATA_DIR.joinpath(path)
    return parse_lists(
        source.read_text(encoding="utf-8"), {PROFANITY: profanity_words()}, inflect_extra=True
    )


@lru_cache(maxsize=1)
def ending_lists() -> WordLists:
    return parse_lists(ENDING_WORDS_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def words_version() -> str:
    digest = hashlib.sha256()
    for path in (STORY_WORDS_PATH, ENDING_WORDS_PATH):
        digest.update(path.read_bytes())
    return "words-" + digest.hexdigest()[:10]


def checker_version(meaning: bool) -> str:
    """What judged a verdict: the lists' and the classifier's content hashes."""
    if not meaning:
        return f"{words_version()}+words-only"
    return f"{words_version()}+{meaning_check.load_head().version}"


def _use_meaning(meaning: bool | None) -> bool:
    return meaning_check.available() if meaning is None else meaning


def _ending_words(sentences: Sequence[str]) -> list[str]:
    """Sad, frightening or unresolved words in the final sentences, negated ones left out."""
    reasons = []
    for sentence in sentences:
        lowered = sentence.lower().replace("\u2019", "'")
        for match in ending_lists().find(sentence):
            at = lowered.find(match.found)
            before = " ".join(lowered[: max(at, 0)].split()[-3:])
            after = lowered[at + len(match.found) :] if at >= 0 else ""
            if _NEGATION.search(before.replace("n't", " n't")) or _AFTER_NEGATION.match(after):
                continue  # "not sad", "never lonely again", "wasn't scared anymore"
            if _RESOLVED.search(after):
                continue  # "Lily was scared, but Mom hugged her."
            reasons.append(f"{match.category.removesuffix(' ending')} ({match.found!r})")
    return reasons


def ending_of(sentences: Sequence[str]) -> list[str]:
    """The story's final sentences, after any closing formula ("The end.", "Goodnight.")."""
    while sentences and _CLOSING.match(sentences[-1].strip()):
        sentences = sentences[:-1]
    return list(sentences[-ENDING_SENTENCES:])


def check_stories(
    stories: Sequence[tuple[str, str]],
    *,
    meaning: bool | None = None,
    lists: WordLists | None = None,
) -> list[SafetyVerdict]:
    """Judge many (title, text) pairs; the meaning check embeds all their sentences in one go."""
    use_meaning = _use_meaning(meaning)
    checker = checker_version(use_meaning)
    lists = lists or story_lists()
    split = [(split_title(title), meaning_check.split_sentences(text)) for title, text in stories]
    contexts = [short_contexts(title, body) for title, body in split]
    judged: dict[str, meaning_check.SentenceJudgement] = {}
    if use_meaning:
        every = [s for (title, body), ctx in zip(split, contexts, strict=True)
                 for s in (*title, *body, *ctx.values())]  # fmt: skip
        judged = {j.sentence: j for j in meaning_check.judge_sentences(list(dict.fromkeys(every)))}
    head = meaning_check.load_head() if use_meaning else None
    verdicts = []
    for (title, text), (title_sentences, body), context in zip(
        stories, split, contexts, strict=True
    ):
        matches = tuple((m.category, m.found) for m in lists.find(f"{title}\n{text}"))
        failed: list[meaning_check.SentenceJudgement] = []
        last = ending_of(body)
        ending = _ending_words(last)
        if head is not None:
            judged_here = {
                s: _in_context(judged[s], judged.get(context.get(s, "")))
                for s in (*title_sentences, *body)
            }
            failed = [j for j in judged_here.values() if j.unsuitable >= head.sentence_threshold]
            if failed and head.meta.get(CONTEXT_WINDOW):
                failed = _confirmed_in_context(failed, body, head)
            ending += [
                f"{judged_here[s].category} ({_quote(s)} {judged_here[s].unsuitable:.2f})"
                for s in last
                if head.ending_threshold <= judged_here[s].unsuitable < head.sentence_threshold
            ]
        ok = not matches and not failed and not ending
        verdicts.append(SafetyVerdict(ok, matches, tuple(failed), tuple(ending), checker))
    return verdicts


#: A head whose meta sets this reads a flagged story sentence with its neighbours before it
#: fails the story (session 9's round 9c, bench/safety_rounds/session9_rule.md).
CONTEXT_WINDOW = "context_window"


def _confirmed_in_context(
    failed: Sequence[meaning_check.SentenceJudgement],
    body: Sequence[str],
    head: meaning_check.Head,
) -> list[meaning_check.SentenceJudgement]:
    """Keep a flagged sentence (of :data:`SHORT_WORDS` words or more) only if its window - the
    previous sentence, itself and the next - also reads unsuitable: odd but harmless prose
    ("They heard a big noise coming from inside.") scores high alone and calm among its
    neighbours, while harm stays harm in its story."""
    windows: dict[str, str] = {}
    for judgement in failed:
        sentence = judgement.sentence
        if len(sentence.split()) < SHORT_WORDS or sentence not in body:
            continue
        index = body.index(sentence)
        windows[sentence] = " ".join(body[max(0, index - 1) : index + 2])
    if not windows:
        return list(failed)
    read = {j.sentence: j for j in meaning_check.judge_sentences(list(set(windows.values())), head)}
    kept = []
    for judgement in failed:
        window = windows.get(judgement.sentence)
        if window is None or read[window].unsuitable >= head.sentence_threshold:
            kept.append(judgement)
    return kept


def short_contexts(title: Sequence[str], body: Sequence[str]) -> dict[str, str]:
    """The title and each short sentence (under :data:`SHORT_WORDS` words), read together with
    its neighbour: a bare "The Fox" or "It was the snail." says too little for the classifier
    to judge alone (measured: 0.99 violence, 0.87 fear), so the story's own next sentence
    (the previous one for the last) gives the meaning."""
    out: dict[str, str] = {}
    for piece in title:
        if body:
            out[piece] = f"{piece}. {body[0]}"
    for index, sentence in enumerate(body):
        if len(sentence.split()) < SHORT_WORDS and len(body) > 1:
            neighbour = body[index + 1] if index + 1 < len(body) else body[index - 1]
            pair = (sentence, neighbour) if index + 1 < len(body) else (neighbour, sentence)
            out[sentence] = " ".join(pair)
    return out


def _in_context(
    alone: meaning_check.SentenceJudgement, together: meaning_check.SentenceJudgement | None
) -> meaning_check.SentenceJudgement:
    """A short piece fails only when it reads unsuitable both alone and with its neighbour."""
    if together is None or together.unsuitable >= alone.unsuitable:
        return alone
    return meaning_check.SentenceJudgement(alone.sentence, together.unsuitable, together.category)


def split_title(title: str) -> list[str]:
    return [title.strip()] if title.strip() else []


def check_story(
    title: str, text: str, blocklist: WordLists | None = None, *, meaning: bool | None = None
) -> SafetyVerdict:
    """The gate on a whole story: title and text, every sentence, and the ending."""
    return check_stories([(title, text)], meaning=meaning, lists=blocklist)[0]


def check_text(
    text: str, blocklist: WordLists | None = None, *, meaning: bool | None = None
) -> SafetyVerdict:
    """The gate on a piece of text (a keyword, a line): words and meaning, no ending rule.

    A bare word or two ("snail", "pirate") has no meaning beyond its words for the classifier
    to judge (it scored both 0.86): pieces under :data:`MIN_MEANING_WORDS` words are left to
    the word lists."""
    use_meaning = _use_meaning(meaning)
    lists = blocklist or story_lists()
    matches = tuple((m.category, m.found) for m in lists.find(text))
    failed: tuple[meaning_check.SentenceJudgement, ...] = ()
    if use_meaning:
        head = meaning_check.load_head()
        sentences = [
            s for s in meaning_check.split_sentences(text) if len(s.split()) >= MIN_MEANING_WORDS
        ]
        failed = tuple(
            j
            for j in meaning_check.judge_sentences(sentences, head)
            if j.unsuitable >= head.sentence_threshold
        )
    ok = not matches and not failed
    return SafetyVerdict(ok, matches, failed, (), checker_version(use_meaning))


def verdict_summary(verdict: SafetyVerdict, limit: int = 200) -> str:
    """What ``stories.safety_verdict`` keeps: ``ok`` or the reason, cut to the column."""
    text = "ok" if verdict.ok else str(verdict.reason)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def verdict_record(verdict: SafetyVerdict) -> dict[str, Any]:
    return verdict.as_dict()
