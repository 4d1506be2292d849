"""The shape of a story as a parent hears it: no chat-assistant habits, an ending that winds down.

An instruction-tuned model sometimes answers like an assistant rather than a storyteller: it
writes markdown ("**Characters:**", numbered lists), talks to the reader ("What do you think?",
"This story teaches us..."), or ends on a high ("They couldn't wait for their next
adventure!"). The first two are not stories at all when read aloud; the last keeps a child
awake. In the session-5 catalogue (1,042 stories) these rules flagged 29, 37 and 212 stories.
Dialogue is exempt from the reader-talk rule: a character may well ask "What do you think?".
Torch-free.
"""

from __future__ import annotations

import re

#: Markdown or outline structure: emphasis, headings, list items, and label lines
#: ("Story:", "Characters:") that an assistant writes around a story.
_FORMAT_RE = re.compile(
    r"\*\*|__|^\s*#|^\s*(?:\d+[.)]|[-*\u2022])\s"
    r"|^\s*(?:title|story|begin|the end|moral|characters?|setting|chapter \w+)\s*[:.\-]?\s*$"
    r"|^\s*(?:title|moral|characters?|setting|note)\s*:",
    re.M | re.I,
)
#: The narrator stepping out of the story to address the reader or to explain it.
_READER_TALK_RE = re.compile(
    r"\b(?:what do you think|would you like (?:to|me)|do you think|i hope you"
    r"|hope you (?:enjoy|like)|let me know|feel free|dear reader"
    r"|this (?:story|tale) (?:teaches|shows|reminds|is about|tells)|the moral of"
    r"|share (?:some|your) thoughts|here(?:'s|\u2019s| is) (?:a|the|your) (?:story|tale|bedtime)"
    r"|as an ai|in this story)\b",
    re.I,
)
_QUOTED_RE = re.compile(r"\"[^\"]*\"|\u201c[^\u201d]*\u201d")
_SENTENCE_RE = re.compile(r"[^.!?]+[.!?]+[\"'\u201d\u2019)]*")
#: Words that leave a child wound up at the very end rather than settled.
_WOUND_UP_RE = re.compile(
    r"\b(?:adventures? (?:await|awaited|ahead|to come|that lay ahead|lay ahead)"
    r"|next (?:big )?adventure|new adventures|can(?:no|'|\u2019)t wait|couldn(?:'|\u2019)t wait"
    r"|excited|exciting|excitement|thrill\w*"
    r"|what (?:else )?(?:the future|tomorrow) (?:would|might) bring)\b",
    re.I,
)


def format_marks(text: str) -> list[str]:
    """Markdown and outline marks found in the story text (not a story read aloud)."""
    return [m.group(0).strip() or "list item" for m in _FORMAT_RE.finditer(text)]


def reader_talk(text: str) -> list[str]:
    """Phrases where the narrator addresses the reader, outside the characters' dialogue."""
    return [m.group(0) for m in _READER_TALK_RE.finditer(_QUOTED_RE.sub(" ", text))]


def ending_problems(text: str) -> list[str]:
    """Why the ending does not wind down: a closing question, or excitement in the last two
    sentences. A text with no sentence at all is the length rule's business."""
    found = [s.strip() for s in _SENTENCE_RE.findall(text) if s.strip()]
    if not found:
        return []
    problems = []
    if found[-1].rstrip("\"'\u201d\u2019) ").endswith("?"):
        problems.append("ends on a question")
    match = _WOUND_UP_RE.search(" ".join(found[-2:]))
    if match:
        problems.append(f'ends wound up ("{match.group(0)}")')
    return problems


def shape_problems(text: str) -> list[str]:
    """Every shape rule's verdict as readable reasons; empty when the story reads as one."""
    problems = []
    marks = format_marks(text)
    if marks:
        problems.append(f"formatted like a document ({', '.join(sorted(set(marks))[:3])})")
    talk = reader_talk(text)
    if talk:
        problems.append(f'talks to the reader ("{talk[0]}")')
    problems.extend(ending_problems(text))
    return problems
