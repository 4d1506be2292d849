"""Moved to :mod:`generator.generation.assemble` (and :mod:`generator.generation.config`).

Kept as a re-export for code outside generator/ that still imports this path: the skill's
tests and the storyteller work in progress. New code imports from ``generator.generation``.
"""

from generator.generation.assemble import (
    APPROVED,
    PENDING,
    REJECTED,
    GeneratedStory,
    assemble_story,
    clean_text,
    content_hash,
    cut_at_last_sentence,
    keyword_in_text,
    keyword_pattern,
    keyword_surface_forms,
    keyword_title,
    prompt_title,
    quality_metrics,
    quality_problem,
    story_prompt,
    tidy_title,
    trim_to_max_words,
    unknown_word_ratio,
)
from generator.generation.config import StoryConfig

__all__ = [
    "APPROVED",
    "PENDING",
    "REJECTED",
    "GeneratedStory",
    "StoryConfig",
    "assemble_story",
    "clean_text",
    "content_hash",
    "cut_at_last_sentence",
    "keyword_in_text",
    "keyword_pattern",
    "keyword_surface_forms",
    "keyword_title",
    "prompt_title",
    "quality_metrics",
    "quality_problem",
    "story_prompt",
    "tidy_title",
    "trim_to_max_words",
    "unknown_word_ratio",
]
