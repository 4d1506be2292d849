"""A blind, mixed read of stories as a parent would judge them, and its report.

    .venv/bin/python bench/rubric.py make --group new=db/data/starter_catalogue.jsonl:40 \\
        --group live=bench/rubric/live_stories.jsonl:20 --group old=runs/old_catalogue.jsonl:40
    (score bench/rubric/blind_set.md into bench/rubric/scores.json without looking at key.json)
    .venv/bin/python bench/rubric.py report

``make`` draws the stories at random (seeded), shuffles them together and writes them with
neutral ids only; which group each id came from goes to ``key.json``, read only by ``report``.
Rubric (RUBRIC below): five criteria scored 0-2, total /10, plus a count of made-up words.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent / "rubric"
CRITERIA = ("grammar", "coherence", "keyword_use", "ending", "bedtime_calm")
RUBRIC = """\
Score each story 0, 1 or 2 on each criterion (total /10), as a parent choosing what their child
hears at bedtime; count made-up words (non-words, not names).
- grammar: 2 fluent and correct; 1 a few slips; 0 frequent broken sentences.
- coherence: 2 a story that makes sense from start to end (same characters, events follow);
  1 mostly follows with odd jumps or contradictions; 0 does not hang together.
- keyword_use: 2 the requested things are real parts of the story; 1 mentioned in passing or
  oddly; 0 missing or used as nonsense.
- ending: 2 a real, settled ending; 1 abrupt or tacked-on; 0 stops mid-thought or no ending.
- bedtime_calm: 2 gentle and safe, winds down; 1 some excitement or mild worry; 0 frightening,
  sad or unsuitable for a young child.
"""


def make(groups: list[str], seed: int) -> None:
    rng = random.Random(seed)
    items = []
    for spec in groups:
        name, rest = spec.split("=", 1)
        path, count = rest.rsplit(":", 1)
        lines = [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x]
        lines = [x for x in lines if x.get("status", "approved") == "approved"]
        for story in rng.sample(lines, min(int(count), len(lines))):
            items.append((name, story))
    rng.shuffle(items)
    HERE.mkdir(exist_ok=True)
    key, out = {}, [RUBRIC, ""]
    for number, (name, story) in enumerate(items, start=1):
        sid = f"S{number:03d}"
        key[sid] = name
        words = ", ".join(story.get("keywords") or [])
        out += [f"## {sid} — requested: {words}", f"### {story['title']}", "", story["text"], ""]
    (HERE / "blind_set.md").write_text("\n".join(out), encoding="utf-8")
    (HERE / "key.json").write_text(json.dumps(key, indent=1) + "\n", encoding="utf-8")
    print(f"{len(items)} stories in {HERE / 'blind_set.md'}; key in key.json (do not read)")


def report() -> None:
    key = json.loads((HERE / "key.json").read_text(encoding="utf-8"))
    scores = json.loads((HERE / "scores.json").read_text(encoding="utf-8"))
    by_group: dict[str, list[dict]] = {}
    for sid, score in scores.items():
        by_group.setdefault(key[sid], []).append(score)
    print(f"{'group':6s} {'n':>3s} {'total':>6s} " + " ".join(f"{c[:9]:>9s}" for c in CRITERIA)
          + "  made-up words")  # fmt: skip
    for group, rows in sorted(by_group.items()):
        total = statistics.mean(sum(r[c] for c in CRITERIA) for r in rows)
        parts = " ".join(f"{statistics.mean(r[c] for r in rows):9.2f}" for c in CRITERIA)
        made_up = sum(r.get("made_up_words", 0) for r in rows)
        print(f"{group:6s} {len(rows):3d} {total:6.2f} {parts}  {made_up}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--group", action="append", required=True, help="name=path.jsonl:count")
    mk.add_argument("--seed", type=int, default=2026)
    sub.add_parser("report")
    args = parser.parse_args()
    if args.what == "make":
        make(args.group, args.seed)
    else:
        report()


if __name__ == "__main__":
    main()
