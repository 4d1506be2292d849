"""The shape of a story as a parent hears it: no chat-assistant habits, an ending that winds down.

An instruction-tuned model sometimes answers like an assistant rather than a storyteller: it
writes markdown ("**Characters:**", numbered lists), talks to the reader ("What do you think?",
"This story teaches us...", "Description: ..."), or ends on a question. None of these is a
story read aloud. Checked against four parent-readers who read the whole session-5 catalogue
(1,042 stories) and marked 151 "broken" in this sense: the format and reader-talk rules flag
124, of which 119 the readers marked (precision 0.96, recall 0.79). Dialogue is exempt from
the reader-talk rule: a character may well ask "What do you think?".
Torch-free.
"""

from __future__ import annotations

import re

#: Markdown or outline structure: emphasis, headings, list items, and label lines that an
#: assistant writes around a story ("Story: 2013", "Description:", "Author's Note:", "Genre:").
_FORMAT_RE = re.compile(
    r"\*\*|__|^\s*#|^\s*(?:\d+[.)]|[-*\u2022])\s"
    r"|^\s*(?:the end|begin|chapter \w+)\s*[:.\-]?\s*$"
    r"|^\s*(?:description|story|story origin|author|author'?s (?:note|story|name)|genre|subtitle"
    r"|type|chat history|in summary|summary|synopsis|storytelling|age|title|moral|characters?"
    r"|setting|note|p\.s|dedication)\b[^:\n]{0,20}:",
    re.M | re.I,
)
#: The narrator stepping out of the story to address the reader, describe the story, or
#: explain its lesson.
_READER_TALK_RE = re.compile(
    r"\b(?:what do you think|would you like (?:to|me)|do you think|i hope you"
    r"|hope you (?:enjoy|like)|let me know|dear reader|young readers"
    r"|your (?:child|kids|little ones)|click here|i'm glad you|finish your story"
    r"|based on (?:a )?real|in this paragraph|as an ai|in this story|in summary"
    r"|(?:this|that|my|our|the) (?:\w+ ){0,4}(?:story|tale|fairy tale)"
    r" (?:teaches|shows|reminds|is about|tells|has been|was inspired|is based|follows)"
    r"|the moral of|teaches (?:kids|children|us|them|young)"
    r"|share (?:some|your) thoughts"
    # The request leaking into the story (parent readers, run 7): "You are a gentle
    # storyteller...", "Finish the story by having Finn return...", "Chat about your favorite".
    r"|you are a (?:\w+ )?storyteller|you write calm|finish the story|finish with (?:their|the)"
    r"|chat about your"
    r"|here(?:'s|\u2019s| is) (?:a|the|your) (?:\w+ )?(?:story|tale))\b",
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


def sentences(text: str) -> list[str]:
    """The story's sentences, closing quotes kept (the judge's and the ending rules' splitter)."""
    return [s.strip() for s in _SENTENCE_RE.findall(text) if s.strip()]


def ends_on_a_question(text: str) -> bool:
    found = sentences(text)
    return bool(found) and found[-1].rstrip("\"'\u201d\u2019) ").endswith("?")


def wound_up_ending(text: str) -> str | None:
    """The excitement in the last two sentences ("couldn't wait for their next adventure"), if
    any. A preference, not a rule: parent-readers of the whole catalogue removed only 15 of
    the 212 stories it marks (they remove endings on fear or mid-action, which it does not
    see), so best-of-N is nudged away from it instead."""
    found = sentences(text)
    match = _WOUND_UP_RE.search(" ".join(found[-2:]))
    return match.group(0) if match else None


def shape_problems(text: str) -> list[str]:
    """Every shape rule's verdict as readable reasons; empty when the story reads as one."""
    problems = []
    marks = format_marks(text)
    if marks:
        problems.append(f"formatted like a document ({', '.join(sorted(set(marks))[:3])})")
    talk = reader_talk(text)
    if talk:
        problems.append(f'talks to the reader ("{talk[0]}")')
    if ends_on_a_question(text):
        problems.append("ends on a question")
    return problems
