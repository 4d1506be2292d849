"""The reader model on tiny handmade data: features, the logistic fit, the JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generator.generation.config import StoryConfig
from generator.storyteller import reader_model
from generator.storyteller.quality import Judgement, best_of
from generator.storyteller.reader_model import (
    ReaderModel,
    ReaderScorer,
    apply_reader,
    embedding_features,
    fit_logistic,
    logprob_features,
    story_features,
    text_features,
)

STORY = (
    "Once upon a time, a little owl named Pip lived in an old oak tree. Every night Pip "
    "watched the moon rise over the hill. One evening the moon looked sad, so Pip flew up to "
    "sing it a soft song. The moon smiled and the stars twinkled. Pip flew home, tucked his "
    "wings in and fell fast asleep, dreaming of the sky."
)


def test_text_features_read_the_story() -> None:
    features = text_features("Pip and the Moon", STORY, ["owl", "moon"])
    assert features["sentences"] == 5
    assert features["keywords"] == 2
    assert features["names"] == 1  # Pip
    assert features["sleepy_words_in_ending"] >= 2  # asleep, dreaming
    assert features["numbers_per_100_words"] == 0
    assert features["title_words"] == 4
    assert 0 < features["keyword_first_mention"] < 0.5
    more = text_features("T", STORY + " Then 20 bees came, then over 100 bees.", ["owl"])
    assert more["numbers_per_100_words"] > 0
    assert more["sentences"] == 6


def test_logprob_features_find_the_weak_sentence() -> None:
    tokens = ["Title", ":", "ĠPip", "ĊĊ", "Pip", "Ġslept", ".", "ĠThe", "Ġmoon", "Ġate"]
    tokens += ["Ġsoup", "."]
    tokens.append("<|im_end|>")
    logprobs = [-1.0, -0.1, -2.0, -0.1, -0.5, -0.5, -0.1, -0.2, -0.3, -6.0, -5.0, -0.1, -0.05]
    features = logprob_features(tokens, logprobs)
    body = logprobs[4:]
    assert features["lp_mean"] == pytest.approx(np.mean(body))
    assert features["lp_title"] == pytest.approx(np.mean(logprobs[:4]))
    assert features["lp_sentence_min"] == pytest.approx(np.mean([-0.2, -0.3, -6.0, -5.0, -0.1]))
    assert features["lp_low_share"] == pytest.approx(2 / len(body))
    assert features["lp_end_token"] == -0.05
    with pytest.raises(ValueError):
        logprob_features(tokens, logprobs[:-1])


def test_story_features_add_logprobs_only_when_given() -> None:
    plain = story_features("Pip", STORY, ["owl"])
    assert not any(k.startswith("lp_") for k in plain)
    scored = story_features("Pip", STORY, ["owl"], ["Title", "Ċ", "A", "."], [-1, -1, -2, -3])
    assert scored["lp_mean"] == pytest.approx(-2.5)


def test_logistic_fit_separates_and_ranks() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=400) > 0).astype(float)
    weights, bias = fit_logistic(x, y, l2=1.0)
    assert weights[0] > 1.0 and weights[1] < -0.3 and abs(weights[2]) < 0.5
    assert abs(bias) < 0.5
    heavy, _ = fit_logistic(x, y, l2=1e4)
    assert np.abs(heavy).max() < np.abs(weights).max() / 5  # the penalty shrinks


def test_reader_model_scores_round_trip(tmp_path: Path) -> None:
    rows = [{"a": float(i), "b": float(i % 3)} for i in range(40)]
    labels = [int(i >= 20) for i in range(40)]
    model = ReaderModel.fit(rows, labels, ["a", "b"], l2=0.1, record={"data": "handmade"})
    assert model.score({"a": 39.0, "b": 0.0}) > 0.9 > 0.1 > model.score({"a": 0.0, "b": 0.0})
    assert not model.needs_logprobs()
    path = tmp_path / "reader.json"
    model.save(path)
    assert path.stat().st_size < 4000
    again = reader_model.load(path)
    assert again.record == {"data": "handmade"}
    assert again.score({"a": 25.0, "b": 1.0}) == pytest.approx(model.score({"a": 25.0, "b": 1.0}))
    with pytest.raises(KeyError):
        model.scores([{"a": 1.0}])
    bad = json.loads(path.read_text())
    bad["weights"] = bad["weights"][:1]
    with pytest.raises(ValueError):
        ReaderModel.from_json(bad)


def test_embedding_features_measure_cohesion() -> None:
    rng = np.random.default_rng(1)
    topic = rng.normal(size=8)
    close = np.stack([topic + 0.1 * rng.normal(size=8) for _ in range(5)])
    wandering = np.stack([rng.normal(size=8) for _ in range(5)])
    # rows as the encoder gives them: mean-pooled half, then max-pooled half
    mean_close, near = embedding_features(np.hstack([close, close]))
    _, far = embedding_features(np.hstack([wandering, wandering]))
    assert mean_close.shape == (16,)
    assert near["adj_mean"] > 0.9 > far["adj_mean"]
    assert near["centroid_min"] > far["centroid_min"]
    assert near["adj_min"] <= near["adj_p10"] <= near["adj_mean"]
    _, one = embedding_features(np.hstack([topic, topic])[None])
    assert one["adj_mean"] == 1.0 and one["first_last"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        embedding_features(np.zeros((0, 16)))


def test_embedding_weights_enter_the_score(tmp_path: Path) -> None:
    model = ReaderModel(
        ["a"], np.zeros(1), np.ones(1), np.array([1.0]), 0.0, {}, np.array([2.0, -2.0])
    )
    assert model.needs_embedding()
    assert model.score({"a": 0.0}, np.array([1.0, 0.0])) == pytest.approx(1 / (1 + np.exp(-2)))
    assert model.score({"a": 0.0}, np.array([0.0, 1.0])) < 0.5
    with pytest.raises(KeyError):
        model.score({"a": 0.0})
    model.save(tmp_path / "m.json")
    again = reader_model.load(tmp_path / "m.json")
    assert again.score({"a": 1.0}, np.array([0.5, 0.5])) == pytest.approx(1 / (1 + np.exp(-1)))


def _judgement(text: str, score: float) -> Judgement:
    return Judgement("T", text, [], score, {})


def test_apply_reader_scores_accepted_and_rejects_below_the_threshold() -> None:
    low, high = _judgement("a low story", -0.5), _judgement("a high story", -1.5)
    rejected = Judgement("T", "a rejected story", ["too short"], -0.1, {})
    seen: list[tuple] = []

    def scorer(stories: list[tuple]) -> list[float]:
        seen.extend(stories)
        return [0.2 if "low" in text else 0.8 for _, _, text in stories]

    judgements = [low, high, rejected]
    apply_reader(judgements, ["owl"], scorer, min_score=0.0)
    assert [s[2] for s in seen] == ["a low story", "a high story"]  # accepted ones only
    assert low.metrics["reader_score"] == 0.2 and "reader_score" not in rejected.metrics
    assert best_of(judgements) is low  # the judge's score (fluency) by default
    assert best_of(judgements, by_reader=True) is high
    apply_reader(judgements, ["owl"], scorer, min_score=0.5)
    assert not low.accepted and "reader model" in low.problems[0]
    assert high.accepted
    assert best_of(judgements) is high


def test_scorer_builds_the_model_features() -> None:
    rows = [text_features("T", STORY, ["owl"]), text_features("T", STORY + " Then 20 bees.", [])]
    features = ["numbers_per_100_words", "keywords", "lp_mean"]
    for row, lp in zip(rows, (-1.0, -2.0), strict=True):
        row["lp_mean"] = lp
    model = ReaderModel.fit(rows * 5, [1, 0] * 5, features, l2=0.1)
    calls: list[int] = []

    def logprobs(stories: list[tuple]) -> list[tuple[list[str], list[float]]]:
        calls.append(len(stories))
        return [(["Title", "Ċ", "A", "."], [-1.0] * 4)] * len(stories)

    scorer = ReaderScorer(model, logprobs)
    kept, removed = scorer([(["owl"], "T", STORY), ([], "T", STORY + " Then 20 bees.")])
    assert calls == [2]
    assert kept > 0.5 > removed
    assert scorer([]) == []
    with pytest.raises(ValueError):
        ReaderScorer(model)([(["owl"], "T", STORY)])


def test_story_config_reader_settings_default_off() -> None:
    config = StoryConfig()
    assert config.reader_rank is False and config.reader_min_score == 0.0
    on = StoryConfig.from_dict({"reader_rank": True, "reader_min_score": 0.3})
    assert on.reader_rank and on.reader_min_score == 0.3


def test_shipped_reader_model_loads_and_records_its_training() -> None:
    if not reader_model.MODEL_PATH.is_file():
        pytest.skip("no shipped reader model")
    model = reader_model.load()
    assert model.record["stories"] > 1000
    assert model.record["measured_train_session5_test_session7"]["temporal_auc_keep"] > 0.5
    assert reader_model.MODEL_PATH.stat().st_size < 40_000
    row = text_features("Pip and the Moon", STORY, ["owl", "moon"])
    row.update(dict.fromkeys(model.features, 0.0) | row)
    embedding = np.zeros(768) if model.embedding_weights is not None else None
    assert 0.0 < model.score(row, embedding) < 1.0


def test_engine_ranks_and_rejects_by_the_reader(
    storyteller_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("ctranslate2")
    from generator.generation.assemble import APPROVED, REJECTED
    from generator.storyteller.engine import STORYTELLER_SAMPLING, StorytellerGenerator
    from generator.storyteller.quality import Candidate
    from tests.generator.storyteller.test_quality import GOOD

    other = GOOD.replace("red kite", "blue kite")
    fluent = Candidate(GOOD, finished=True, mean_logprob=-0.5, tokens=140)
    liked = Candidate(other, finished=True, mean_logprob=-1.5, tokens=140)
    generator = StorytellerGenerator(storyteller_dir, threads=1)
    monkeypatch.setattr(generator, "sample", lambda sets, **_: [[fluent, liked] for _ in sets])

    def scorer(stories: list[tuple]) -> list[float]:
        return [0.7 if "blue kite" in text else 0.3 for _, _, text in stories]

    generator._reader = scorer
    config = StoryConfig(**STORYTELLER_SAMPLING, length="short", best_of=2)
    keywords = [["dragon", "kite"]]
    assert "red kite" in generator.generate(keywords, config=config)[0].text  # off: fluency
    ranked = generator.generate(keywords, config=config.replace(reader_rank=True))[0]
    assert ranked.status == APPROVED and "blue kite" in ranked.text
    assert ranked.quality["reader_score"] == 0.7
    strict = config.replace(reader_min_score=0.9)
    story = generator.generate(keywords, config=strict)[0]
    assert story.status == REJECTED and "reader model" in story.rejection_reason


def test_engine_scores_replies_token_by_token(storyteller_dir: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("ctranslate2")
    from generator.storyteller.engine import StorytellerGenerator
    from generator.storyteller.prompts import END_TOKEN, format_reply

    generator = StorytellerGenerator(storyteller_dir, threads=1)
    stories = [(["owl"], "Pip", STORY), (["moon"], "The Moon", "The moon slept.")]
    scored = generator._reply_logprobs(stories, "short")
    assert len(scored) == 2
    for (_, title, text), (tokens, logprobs) in zip(stories, scored, strict=True):
        assert tokens == [*generator.tokenizer.tokenize(format_reply(title, text)), END_TOKEN]
        assert len(logprobs) == len(tokens) and all(lp <= 0 for lp in logprobs)
    features = logprob_features(*scored[0])
    assert features["lp_mean"] < 0 and 0 <= features["lp_low_share"] <= 1
