"""Child safety, asked by the skill, the store, the generator and the command line.

* :mod:`safety.requests`: may a child ask for a story about this word? (allow / redirect)
* :mod:`safety.gate`: may this story be served? (words, meaning, calm ending)
* :mod:`safety.lists`: the word-list format and matcher both use; the lists are ``safety/data``.

The request policy and the word lists import no torch; the meaning check
(:mod:`safety.meaning`) loads its sentence-embedding model only when a story is judged.
"""

from __future__ import annotations

from safety.gate import SafetyVerdict, check_stories, check_story, check_text, checker_version
from safety.requests import RequestVerdict, first_redirect, judge_request, judge_requests

__all__ = [
    "RequestVerdict",
    "SafetyVerdict",
    "check_stories",
    "check_story",
    "check_text",
    "checker_version",
    "first_redirect",
    "judge_request",
    "judge_requests",
]
