"""The request policy, compiled ahead of time so a skill worker never loads lemminflect.

Why: expanding the policy's lists to every inflection, and reducing each requested word to its
lemmas, loads lemminflect's whole lexicon and numpy (~0.4-1.4 s and ~20 MB on the first request
of every worker, the largest part of the skill's cold start). The answers depend only on the
list files, better-profanity's word list and the lemminflect version, so they are computed once
here and shipped as ``data/request_policy.compiled.json.gz``. The file records a fingerprint of
its inputs; when it does not match (a list was edited and not recompiled), the policy is built
live instead, with a warning, so a stale file can never change a verdict.

Rebuild after editing ``request_policy.txt`` or upgrading lemminflect/better-profanity:
``python -m safety.compiled`` (a test fails while the shipped file is stale).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from safety.lists import DATA_DIR, WordLists, lemmas_of, lexicon_words

log = logging.getLogger(__name__)

COMPILED_PATH = DATA_DIR / "request_policy.compiled.json.gz"


def fingerprint(policy_text: str, profanity: set[str]) -> str:
    """What the compiled answers depend on: the lists and the versions of the libraries."""
    digest = hashlib.sha256()
    for part in (
        policy_text,
        "\n".join(sorted(profanity)),
        version("lemminflect"),
        version("better-profanity"),
    ):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def lemma_index(lists: WordLists) -> dict[str, frozenset[str]]:
    """For every lexicon word, its lemmas that matter to ``lists`` (listed or allowed)."""
    wanted = set(lists.lemmas) | set(lists.allowed)
    index = {}
    for word in lexicon_words():
        relevant = lemmas_of(word) & wanted
        if relevant:
            index[word] = relevant
    return index


def to_json(lists: WordLists, inputs: str) -> dict[str, Any]:
    index = lists.lemma_index if lists.lemma_index is not None else lemma_index(lists)
    return {
        "inputs": inputs,
        "words": lists.words,
        "lemmas": lists.lemmas,
        "phrases": [[pattern.pattern, category] for pattern, category in lists.phrases],
        "allowed": sorted(lists.allowed),
        "allowed_phrases": [pattern.pattern for pattern in lists.allowed_phrases],
        "categories": list(lists.categories),
        "lemma_index": {word: sorted(lemmas) for word, lemmas in sorted(index.items())},
    }


def from_json(data: dict[str, Any]) -> WordLists:
    return WordLists(
        words=dict(data["words"]),
        lemmas=dict(data["lemmas"]),
        phrases=[(re.compile(source), category) for source, category in data["phrases"]],
        allowed=frozenset(data["allowed"]),
        allowed_phrases=tuple(re.compile(source) for source in data["allowed_phrases"]),
        categories=tuple(data["categories"]),
        lemma_index={word: frozenset(lemmas) for word, lemmas in data["lemma_index"].items()},
    )


def load(inputs: str, path: Path = COMPILED_PATH) -> WordLists | None:
    """The compiled lists when they were built from exactly these inputs, else None."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        log.warning("compiled request policy unreadable (%s); building it live", exc)
        return None
    if data.get("inputs") != inputs:
        log.warning(
            "compiled request policy is stale (run `python -m safety.compiled`); building it live"
        )
        return None
    return from_json(data)


def write(lists: WordLists, inputs: str, path: Path = COMPILED_PATH) -> None:
    payload = json.dumps(to_json(lists, inputs), sort_keys=True, separators=(",", ":"))
    with gzip.GzipFile(path, "wb", mtime=0) as handle:  # mtime 0: the same bytes every build
        handle.write(payload.encode("utf-8"))


def main() -> int:
    from safety.requests import REQUEST_POLICY_PATH, build_request_lists, request_inputs

    lists = build_request_lists(REQUEST_POLICY_PATH)
    write(lists, request_inputs(REQUEST_POLICY_PATH))
    size = COMPILED_PATH.stat().st_size
    print(f"wrote {COMPILED_PATH} ({size:,} bytes, {len(lists.words):,} forms)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
