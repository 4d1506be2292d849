"""Training the meaning check: weak labels, the softmax head, thresholds, the confusion matrix,
and the shipped evaluation set's shape (hand-labelled, apart from training)."""

from __future__ import annotations

import json
import re

import pytest

from safety import meaning, training
from safety.meaning import CATEGORIES, CLASSES, SUITABLE, Head, head_from_json
from safety.training import (
    EVAL_PATH,
    SEED_PATH,
    Example,
    evaluate,
    read_jsonl,
    threshold_for,
    train_head,
    weak_label,
)


@pytest.mark.parametrize(
    ("sentence", "label"),
    [
        ("The giant slew the knight.", "violence"),
        ("The old dog died in the night.", "injury or death"),
        ("The robbers carried her off to the forest.", "strangers and abduction"),
        ("The children were terrified.", "fear and menace"),
        ("The sisters mocked her.", "cruelty and insults"),
        ("The soldier was drunk.", "adult themes"),
        ("The bunny ate a carrot in the sun.", SUITABLE),
        ("The witch smiled.", None),  # neither: not used for training
    ],
)
def test_weak_labels(sentence: str, label: str | None) -> None:
    assert weak_label(sentence) == label


def test_the_head_learns_and_thresholds_bound_false_alarms() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(CLASSES), 8)).astype(np.float32) * 3
    labels = [CLASSES[i % len(CLASSES)] for i in range(700)]
    x = np.stack([centres[CLASSES.index(y)] + rng.normal(size=8) for y in labels]).astype(
        np.float32
    )
    w, b = train_head(x, labels, steps=300)
    head = Head(((w, b),), CLASSES, 0.5, 0.3, "test", {})
    unsuitable = 1.0 - head.probabilities(x)[:, CLASSES.index(SUITABLE)]
    suitable_scores = [s for s, y in zip(unsuitable, labels, strict=True) if y == SUITABLE]
    threshold = threshold_for(suitable_scores, 0.02)
    assert sum(s >= threshold for s in suitable_scores) <= 0.02 * len(suitable_scores)
    examples = [Example("", y, "t") for y in labels]
    result = evaluate(examples, [s >= threshold for s in unsuitable], list(unsuitable))
    assert result.recall > 0.9 and result.false_alarm_rate <= 0.02
    assert "recall" in result.report() and "violence" in result.report()
    again = head_from_json(json.loads(json.dumps(head.to_json())), "v")
    assert np.allclose(again.probabilities(x[:5]), head.probabilities(x[:5]), atol=2e-2)


def test_the_two_layer_head_trains_and_round_trips() -> None:
    import numpy as np

    pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    labels = [CLASSES[i % len(CLASSES)] for i in range(140)]
    x = rng.normal(size=(140, 16)).astype(np.float32)
    x[:, 0] += [3.0 * CLASSES.index(y) for y in labels]
    layers = training.train_mlp(x, labels, hidden=8, epochs=50)
    assert [w.shape for w, _ in layers] == [(8, 16), (len(CLASSES), 8)]
    head = Head(layers, CLASSES, 0.5, 0.3, "t", {})
    again = head_from_json(json.loads(json.dumps(head.to_json())))
    assert np.allclose(again.probabilities(x), head.probabilities(x), atol=2e-2)


def test_the_evaluation_set_is_hand_labelled_and_apart_from_training() -> None:
    evaluation = read_jsonl(EVAL_PATH)
    seeds = read_jsonl(SEED_PATH)
    assert len(evaluation) >= 300
    labels = {e.label for e in evaluation}
    assert labels == set(CLASSES)
    assert not {e.text for e in evaluation} & {e.text for e in seeds}
    assert not any(e.source.startswith(s) for e in evaluation for s in ("grimm_per_story",))
    texts = {e.text for e in evaluation}
    for example in (
        "The wolf ate grandma.",
        "Her mommy fell asleep and never woke up.",
        "The man tried to take her head.",
        "The knight put down his sword and sat by the fire.",
        "Casper the friendly ghost floated over to say hello.",
    ):
        assert example in texts
    assert sum(e.label != SUITABLE for e in evaluation) >= 100
    assert set(CATEGORIES) <= {e.label for e in seeds}


def test_the_shipped_head_matches_the_classes() -> None:
    if not meaning.HEAD_PATH.is_file():
        pytest.skip("no trained head shipped")
    head = meaning.load_head()
    assert head.classes == CLASSES
    assert 0 < head.ending_threshold <= head.sentence_threshold < 1
    assert head.layers[0][0].shape[1] == meaning.DIMENSIONS and head.layers[-1][0].shape[0] == len(
        CLASSES
    )
    assert head.version.startswith("head-")
    assert training.EVAL_SOURCES  # documented


def test_the_development_set_is_apart_from_training_and_evaluation() -> None:
    """Thresholds are chosen on the development set, so it may share nothing with the others."""
    development = read_jsonl(training.DEV_PATH)
    hard = read_jsonl(training.HARD_PATH)
    evaluation = {e.text for e in read_jsonl(EVAL_PATH)}
    seeds = {e.text for e in read_jsonl(SEED_PATH)}
    assert {e.label for e in development} == set(CLASSES) == {e.label for e in hard}
    assert not {e.text for e in development} & (evaluation | seeds | {e.text for e in hard})
    assert not {e.text for e in hard} & evaluation


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"[a-z']+", text.lower()))


def test_every_hand_written_set_is_apart_from_the_others() -> None:
    """Sets written later (train_more, train_voices, dev_more) share no sentence, exactly or up to
    case and punctuation, with any other set, and training shares none with development or
    evaluation. (Near paraphrases were dropped when the session-9 sets were curated.)"""
    sets = {
        path.name: {_normalised(e.text) for e in read_jsonl(path)}
        for path in (
            SEED_PATH, training.HARD_PATH, training.MORE_PATH, training.VOICES_PATH,
            training.DEV_PATH, training.DEV_MORE_PATH, EVAL_PATH,
        )
    }  # fmt: skip
    names = sorted(sets)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not sets[first] & sets[second], (first, second, sets[first] & sets[second])
    voices = read_jsonl(training.VOICES_PATH)
    assert {e.label for e in voices} == set(CLASSES)
    assert {e.source for e in read_jsonl(training.DEV_MORE_PATH)} == {"devmore"}
    assert "devmore" in training.HARD_DEV_SOURCES


def test_feeling_words_are_suitable_but_harm_is_not() -> None:
    assert not training.SOFT_EXCLUDE.search("Tom was scared of the thunder and cried.")
    assert training.SOFT_EXCLUDE.search("Tom hit his sister and she cried.")


_TUNE_TRAIN = [
    Example("The wolf bit the little boy.", "violence", "t"),
    Example("The man hit the dog with a stick.", "violence", "t"),
    Example("The stranger grabbed the girl and drove away.", "strangers and abduction", "t"),
    Example("The cat purred on the warm rug.", SUITABLE, "t"),
    Example("The bunny hopped to the garden for a carrot.", SUITABLE, "t"),
    Example("Mom sang a soft song at bedtime.", SUITABLE, "t"),
] * 3
_TUNE_DEV = [
    Example("The fox bit the hen.", "violence", "d"),
    Example("A stranger took the boy away in a van.", "strangers and abduction", "d"),
    Example("The puppy slept by the fire.", SUITABLE, "d"),
    Example("Grandpa read a story about the stars.", SUITABLE, "d"),
]


@pytest.mark.skipif(not meaning.available(), reason="needs the sentence-embedding model")
def test_the_tuned_encoder_ships_only_its_layers_and_judges_as_it_was_trained(tmp_path) -> None:
    import numpy as np
    from safetensors import safe_open

    head, meta = training.tune_encoder(
        _TUNE_TRAIN, _TUNE_DEV, tune_layers=1, epochs=2, batch_size=6, out_dir=tmp_path
    )
    shipped = tmp_path / meta["encoder"]["file"]
    with safe_open(str(shipped), "pt") as handle:
        names = list(handle.keys())
    assert names and all(name.startswith("encoder.layer.5.") for name in names)
    assert meta["encoder"]["layers"] == [5]
    assert meta["training"]["steps"] == 6

    tuned = meaning.Embedder(meaning.model_dir(), tuned=dict(meta["encoder"], file=str(shipped)))
    base = meaning.Embedder(meaning.model_dir())
    texts = [e.text for e in _TUNE_DEV]
    assert not np.allclose(tuned(texts), base(texts), atol=1e-4)  # the tuned layer is in use
    # What ships judges the development set exactly as training measured it.
    scores = training.score(_TUNE_DEV, head, tuned)
    dev = evaluate(_TUNE_DEV, [s >= head.sentence_threshold for s in scores], scores)
    assert {"recall": round(dev.recall, 4), "false_alarms": round(dev.false_alarm_rate, 4)} == (
        meta["dev"]
    )

    shipped.write_bytes(shipped.read_bytes()[:-1] + b"\0")
    with pytest.raises(meaning.MeaningUnavailable, match="sha256"):
        meaning.Embedder(meaning.model_dir(), tuned=dict(meta["encoder"], file=str(shipped)))


def _has_read_catalogue() -> bool:
    try:
        training.read_catalogue()
    except Exception:  # no git or no history here
        return False
    return True


def test_the_catalogue_split_is_whole_stories_and_reproducible() -> None:
    split = training.catalogue_split()
    assert split == training.catalogue_split(0) != training.catalogue_split(1)
    groups = training.reader_groups()
    halves = (split.train_unsafe, split.held_unsafe, split.train_kept, split.held_kept)
    assert sum(map(len, halves)) == len(set().union(*halves))  # no story in two halves
    assert split.train_unsafe | split.held_unsafe == {k for k, g in groups.items() if g == "unsafe"}
    assert split.train_kept | split.held_kept == {k for k, g in groups.items() if g == "kept"}
    assert (len(split.train_unsafe), len(split.held_unsafe)) == (80, 80)


@pytest.mark.skipif(not _has_read_catalogue(), reason="needs the git history (commit d904156)")
def test_the_held_out_half_of_the_parents_read_never_enters_training() -> None:
    """Training takes only the training halves; no sentence of a held-out story, reader-unsafe
    or reader-kept, is a training example (as the labelled sets share no sentence)."""
    split = training.catalogue_split()
    stories = training.read_catalogue()
    examples = training.catalogue_examples(split, stories, kept_sentences=10**6)
    held = {s for key in split.held for s in training.story_sentences(*stories[key])}
    assert not {e.text for e in examples} & held
    misses = [json.loads(line) for line in training.MISSES_PATH.read_text("utf-8").splitlines()]
    assert {e.text for e in examples if e.source == "catalogue_misses"} == {
        m["sentence"] for m in misses if m["id"] in split.train_unsafe
    } - held
    assert {e.label for e in examples} <= set(CLASSES)
    kept = [e for e in examples if e.source == "catalogue_kept"]
    assert kept and all(e.label == SUITABLE for e in kept)
    train_kept = {s for key in split.train_kept for s in training.story_sentences(*stories[key])}
    assert {e.text for e in kept} <= train_kept
    evaluation = {e.text for e in read_jsonl(EVAL_PATH)} | {
        e.text for e in read_jsonl(training.DEV_PATH)
    }
    assert not {e.text for e in examples} & evaluation
