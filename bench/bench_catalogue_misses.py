"""What a change to the story word lists does to the parent-read catalogue (measured only).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_catalogue_misses.py
    # --before REV: the lists to compare with (default main); --no-meaning: torch-free layers only
    # (the meaning check takes ~2.5 minutes for the catalogue on this 2-core CPU)

Four parents read the whole session-5 starter catalogue (``db/data/starter_catalogue.jsonl`` at
commit d904156, 1,042 stories, which had passed the gate) and gave each story a verdict
(``bench/catalogue_read/session5_verdicts.json``: id -> {verdict keep|remove, categories
[unsafe|broken|nonsense|unsettled_ending], coherence, note}; ``C0123`` is line 123 of that file).
The sentences that made the "unsafe" ones unsafe are kept in
``safety/data/catalogue_misses.jsonl``. This compares the gate with
``safety/data/story_words.txt`` as it is now against the same file at ``--before`` and prints:

* stories the whole gate flags (words, meaning, calm ending), before and after, among the
  reader-unsafe stories, the reader-kept stories (must not grow) and the other removed ones;
* the catalogue_misses sentences the word lists flag, before and after;
* the suitable sentences of ``eval_set.jsonl`` and ``dev_set.jsonl`` the word lists flag, before
  and after, and every newly flagged one (must be none);
* each entry new since ``--before``: the stories and sentences it catches.

The meaning and calm-ending layers do not read the word lists, so they are judged once (with
empty lists) and a story fails the whole gate when they fail it or a listed word or phrase is
in its title or text: exactly ``check_stories`` with each list. ``--check`` exits 1 when a
reader-kept story or a suitable eval/dev sentence is newly flagged. The meaning check on the
held-out half of this read (split by story, never trained on) is ``bench/bench_meaning_heldout.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from safety.lists import WordLists

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from safety.training import READ_VERDICTS_PATH, read_catalogue, reader_groups

ROOT = Path(__file__).resolve().parents[1]
WORDS = "safety/data/story_words.txt"
MISSES = ROOT / "safety/data/catalogue_misses.jsonl"
SETS = ("eval_set", "dev_set")


def lists_at(text: str) -> WordLists:
    """The gate's story lists (``safety.gate.story_lists``) built from ``text``."""
    from safety.gate import PROFANITY
    from safety.lists import parse_lists, profanity_words

    return parse_lists(text, {PROFANITY: profanity_words()}, inflect_extra=True)


def words_before(rev: str) -> str:
    return subprocess.run(
        ["git", "show", f"{rev}:{WORDS}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def entries(text: str) -> list[tuple[str, str]]:
    """(category, entry) for each listed (not '!') line, in file order."""
    out, category = [], "unsuitable"
    for raw in text.splitlines():
        line = " ".join(raw.split("#", 1)[0].strip().lower().split())
        if line.startswith("[") and line.endswith("]"):
            category = line[1:-1]
        elif line and not line.startswith("!"):
            out.append((category, line))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--verdicts",
        type=Path,
        default=READ_VERDICTS_PATH,
        help="the readers' verdicts (file or folder)",
    )
    parser.add_argument("--before", default="main", help="git revision of the old word list")
    parser.add_argument("--no-meaning", action="store_true", help="words and ending words only")
    parser.add_argument("--check", action="store_true", help="exit 1 if a constraint fails")
    args = parser.parse_args()

    from safety.gate import STORY_WORDS_PATH, check_stories
    from safety.lists import WordLists, parse_lists

    old_text, new_text = words_before(args.before), STORY_WORDS_PATH.read_text("utf-8")
    lists = {"before": lists_at(old_text), "after": lists_at(new_text)}
    added = [e for e in entries(new_text) if e not in set(entries(old_text))]
    groups = reader_groups(args.verdicts)
    if not groups:
        sys.exit(f"no verdicts in {args.verdicts} (pass --verdicts)")
    catalogue = read_catalogue()
    ids = list(catalogue)
    records = [{"title": title, "text": text} for title, text in catalogue.values()]
    texts = [f"{r['title']}\n{r['text']}" for r in records]

    # The layers that do not read the word lists, judged once.
    other = check_stories(
        [(r["title"], r["text"]) for r in records], meaning=not args.no_meaning, lists=WordLists()
    )
    checker = other[0].checker.split("+", 1)[1] if other else ""
    print(f"word lists: {WORDS} at {args.before!r} (before) vs the working tree (after)")
    print(f"other layers: {checker} (+ calm ending); {len(added)} entries added\n")

    flagged: dict[str, set[str]] = {}
    for name, wl in lists.items():
        flagged[name] = {
            key
            for key, text, verdict in zip(ids, texts, other, strict=True)
            if not verdict.ok or wl.find(text)
        }
    sizes = {group: sum(1 for key in ids if groups.get(key) == group) for group in groups.values()}
    print("catalogue stories the whole gate flags (reader group: before -> after, of n)")
    for group in ("unsafe", "kept", "removed"):
        before, after = (
            sum(1 for key in flagged[name] if groups.get(key) == group) for name in lists
        )
        print(f"  {group:8} {before:4} -> {after:4}  of {sizes.get(group, 0)}")
    kept_new = sorted(k for k in flagged["after"] - flagged["before"] if groups.get(k) == "kept")
    print(f"  reader-kept stories newly flagged: {kept_new or 'none'}")

    misses = [json.loads(line) for line in MISSES.read_text("utf-8").splitlines()]
    caught = {name: sum(1 for m in misses if wl.find(m["sentence"])) for name, wl in lists.items()}
    print(
        f"\ncatalogue_misses sentences the word lists flag: {caught['before']} -> "
        f"{caught['after']} of {len(misses)} "
        f"({len({m['id'] for m in misses})} stories)"
    )

    sentences = []
    for name in SETS:
        path = ROOT / f"safety/data/{name}.jsonl"
        sentences += [(name, json.loads(line)) for line in path.read_text("utf-8").splitlines()]
    print("\neval/dev sentences the word lists flag (before -> after)")
    newly_suitable = []
    for name in SETS:
        for suitable in (True, False):
            rows = [r for n, r in sentences if n == name and (r["label"] == "suitable") == suitable]
            hit = {
                k: {i for i, r in enumerate(rows) if wl.find(r["text"])} for k, wl in lists.items()
            }
            label = "suitable" if suitable else "unsuitable"
            before, after = len(hit["before"]), len(hit["after"])
            print(f"  {name:8} {label:10} {before:3} -> {after:3} of {len(rows)}")
            if suitable:
                newly_suitable += [rows[i]["text"] for i in sorted(hit["after"] - hit["before"])]
    print(f"  suitable sentences newly flagged: {len(newly_suitable)}")
    for text in newly_suitable:
        print(f"    {text}")

    print("\nentries added: the catalogue_misses sentences and stories (reader group) each catches")
    allowed = _allowed(new_text)
    blanked = [_blank(text, lists["after"]) for text in texts]
    blanked_misses = [_blank(m["sentence"], lists["after"]) for m in misses]
    for category, entry in added:
        wl = parse_lists(f"[{category}]\n{entry}\n{allowed}")
        if wl.phrases:  # a phrase: its pattern on the texts, lower-cased and exemptions blanked
            pattern = wl.phrases[0][0]
            story_hit = [bool(pattern.search(text)) for text in blanked]
            sentence_hits = sum(1 for text in blanked_misses if pattern.search(text))
        else:
            story_hit = [bool(wl.find(text)) for text in texts]
            sentence_hits = sum(1 for m in misses if wl.find(m["sentence"]))
        hits: dict[str, list[str]] = defaultdict(list)
        for key, hit in zip(ids, story_hit, strict=True):
            if hit:
                hits[groups.get(key, "?")].append(key)
        shown = " ".join(f"{group}: {' '.join(keys)}" for group, keys in sorted(hits.items()))
        print(f"  [{category}] {entry!r}: {sentence_hits} sentences; {shown or '-'}")

    if args.check and (kept_new or newly_suitable):
        return 1
    return 0


def _blank(text: str, lists: WordLists) -> str:
    """``text`` as ``WordLists.find`` reads it for phrases: lower-cased, exemptions blanked."""
    lowered = text.lower().replace("\u2019", "'")
    for pattern in lists.allowed_phrases:
        lowered = pattern.sub(lambda m: " " * len(m.group(0)), lowered)
    return lowered


def _allowed(text: str) -> str:
    """The '!' lines of a list file: an entry alone is matched as the whole file matches it."""
    return "\n".join(line for line in text.splitlines() if line.strip().startswith("!"))


if __name__ == "__main__":
    sys.exit(main())
