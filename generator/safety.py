"""The generator's door to the child-safety gate, which lives in :mod:`safety` (the skill, the
store and the command line ask the same one).

Batch and live generation, the storyteller's judged candidates and its fine-tuning data all call
:func:`check_story`; it returns a :class:`safety.SafetyVerdict` (``ok``, ``reason``,
``as_dict()``). See :mod:`safety.gate` for what it checks.
"""

from __future__ import annotations

from safety.gate import SafetyVerdict, check_stories, check_story, check_text, story_lists

#: The word lists of the gate (kept under its old name for callers of the first gate).
load_blocklist = story_lists

__all__ = ["SafetyVerdict", "check_stories", "check_story", "check_text", "load_blocklist"]
