"""Would word patterns for copyable risky acts catch what parent readers flagged as unsafe?

Why: the parents' reads (bench/catalogue_read/) flag stories the gate passes because a child
could copy what happens in them: eating found things, going off alone or with a stranger,
climbing high, swimming, roads, fire, touching bees or wild animals, knives. This measures one
sentence-level pattern per kind, written from the session 7-8 reads, on session 9's reads
(held out) and over the starter catalogue. Session 10 measured it and did not ship it (README,
"Child safety"): 20% of the held-out reader-unsafe stories at 9% of the others flagged.

    .venv/bin/python bench/bench_risky_acts.py [--show 20]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safety.meaning import split_sentences  # noqa: E402

READS = ROOT / "bench" / "catalogue_read"
CATALOGUE = ROOT / "db" / "data" / "starter_catalogue.jsonl"
_BODY = r"[^.!?]{0,%d}"

PATTERNS = {
    "eating found things": r"\b(ate|eat|eats|eating|chew\w*|swallow\w*|tasted|nibbl\w*|put (it|"
    r"them|\w+) in (his|her|their) mouth)\b" + _BODY % 40 + r"\b(acorns?|berr(y|ies)|mushrooms?|"
    r"petals?|flowers?|leaf|leaves|seeds?|bark|grass|worms?|bugs?|rocks?|stones?|dirt|mud|snow|"
    r"pills?|medicine)\b",
    "a stranger": r"\b(strangers?|strange (man|woman|lady|men)|(man|woman|lady) (she|he|they) "
    r"(didn't|did not|had never) (know|met|seen)|followed (the|a) (man|woman|lady|stranger)|"
    r"(man|woman|lady)" + _BODY % 40 + r"asked if (she|he|they) wanted to (come|play|go|ride))\b",
    "going off alone": r"\b(snuck|sneak\w*) (out|off|away|into)\b|\bwithout telling (his|her|"
    r"their|anyone)\b|\b(went|walked|ran|wandered|set off|go|went off|headed) "
    + _BODY % 30
    + r"\b(alone|all by (him|her)self|by (him|her)self)\b|\bran away from home\b",
    "climbing high": r"\bclimb\w*\b" + _BODY % 50 + r"\b(the top|higher and higher|very tall|"
    r"tallest|the roof|a cliff|the cliff)\b|\breached the top of (a|the) (very )?(tall|big|high)\b",
    "water": r"\b(swim|swam|swimming|jumped into|dove into|dived into|waded into)\b"
    + _BODY % 40
    + r"\b(pond|lake|river|sea|ocean|waves?|deep water)\b",
    "roads and cars": r"\b(ran|run|running|played|playing|stood|standing|walked|walking) (into|"
    r"across|onto|in the middle of) the (road|street)\b|\bdrove (the|a|his|her) car\b|"
    r"\bchase\w* (a|the) [^.!?]{0,15}car\b",
    "fire": r"\b(play\w* with|lit|touch\w*) (the |a |some )?(matches|fire|candles?|stove|"
    r"lighter)\b",
    "touching wild animals": r"\b(touch\w*|pett?\w*|grab\w*|pick\w* up|squeez\w*|poke\w*|"
    r"caught)\b" + _BODY % 30 + r"\b(bees?|wasps?|snakes?|jellyfish|wild \w+|bears?|stray \w+)\b",
    "sharp things": r"\b(took|grabbed|used|held|picked up) (a|the) (small |sharp |big )?(knife|"
    r"knives|scissors)\b",
}
COMPILED = {kind: re.compile(pattern, re.IGNORECASE) for kind, pattern in PATTERNS.items()}


def risky_sentences(title: str, text: str) -> list[tuple[str, str]]:
    """(kind, sentence) for every sentence a pattern matches."""
    found = []
    for sentence in split_sentences(f"{title}. {text}"):
        found += [(kind, sentence) for kind, rx in COMPILED.items() if rx.search(sentence)]
    return found


def read_rows(names: str) -> list[dict]:
    rows = []
    for path in sorted(READS.glob(names)):
        rows += [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    return [row for row in rows if row.get("text")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", type=int, default=0, help="flagged held-out others to list")
    args = parser.parse_args()
    for label, names in (
        ("written from (sessions 7-8)", "session[78]_read.jsonl"),
        ("held out (session 9)", "session9*_read.jsonl"),
    ):
        rows = read_rows(names)
        unsafe = [r for r in rows if "unsafe" in (r.get("categories") or [])]
        others = [r for r in rows if "unsafe" not in (r.get("categories") or [])]
        caught = [r for r in unsafe if risky_sentences(r["title"], r["text"])]
        flagged = [r for r in others if risky_sentences(r["title"], r["text"])]
        print(
            f"{label}: reader-unsafe caught {len(caught)}/{len(unsafe)} "
            f"({len(caught) / len(unsafe):.0%}); others flagged {len(flagged)}/{len(others)} "
            f"({len(flagged) / len(others):.0%})"
        )
        if label.startswith("held out"):
            for row in flagged[: args.show]:
                print(f"  {row['id']}: {risky_sentences(row['title'], row['text'])[0]}")
    catalogue = [json.loads(line) for line in CATALOGUE.read_text("utf-8").splitlines() if line]
    hits = sum(1 for story in catalogue if risky_sentences(story["title"], story["text"]))
    print(f"starter catalogue: {hits}/{len(catalogue)} stories flagged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
