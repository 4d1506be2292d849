"""The storyteller engine end to end on a tiny random model (CTranslate2 int8), the factory that
picks it, and the LoRA merge that feeds the export."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("ctranslate2")

from generator.generation.assemble import APPROVED, PENDING, REJECTED
from generator.generation.config import StoryConfig
from generator.storyteller.engine import (
    END_TOKEN,
    LENGTHS,
    STORYTELLER_SAMPLING,
    StorytellerGenerator,
    default_config,
    is_storyteller_dir,
)
from generator.storyteller.prompts import story_request
from generator.storyteller.quality import Candidate
from tests.generator.storyteller.test_quality import GOOD

SHORT = StoryConfig(**STORYTELLER_SAMPLING, length="short", best_of=1)


@pytest.fixture(scope="module")
def generator(storyteller_dir: Path) -> StorytellerGenerator:
    return StorytellerGenerator(storyteller_dir, threads=1)


class RecordingCt2:
    """Stands in for the ctranslate2.Generator, passing calls through and keeping kwargs."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[dict[str, Any]] = []

    def generate_batch(self, prompts: list[list[str]], **kwargs: Any) -> Any:
        self.calls.append({"prompts": prompts, **kwargs})
        return self.real.generate_batch(prompts, **kwargs)


def test_is_storyteller_dir(storyteller_dir: Path, tmp_path: Path) -> None:
    assert is_storyteller_dir(storyteller_dir)
    assert is_storyteller_dir(str(storyteller_dir))
    assert not is_storyteller_dir(tmp_path)
    assert not is_storyteller_dir(tmp_path / "absent")
    (tmp_path / "bedtime_model.json").write_text(json.dumps({"family": "light"}))
    assert not is_storyteller_dir(tmp_path)
    (tmp_path / "bedtime_model.json").write_text("{not json")
    assert not is_storyteller_dir(tmp_path)
    assert not is_storyteller_dir(Path(__file__).parents[3] / "generator" / "shipped_model")


def test_default_config(storyteller_dir: Path, tmp_path: Path) -> None:
    assert default_config(storyteller_dir) == StoryConfig(**STORYTELLER_SAMPLING)
    (tmp_path / "story_config.json").write_text(
        json.dumps(StoryConfig(length="short", best_of=3).to_dict())
    )
    assert default_config(tmp_path).best_of == 3


def test_factory_opens_the_storyteller(storyteller_dir: Path) -> None:
    from generator.generation.factory import model_family, open_story_generator

    assert model_family(storyteller_dir) == "storyteller"
    opened = open_story_generator(storyteller_dir, threads=1)
    assert isinstance(opened, StorytellerGenerator)
    assert opened.engine == "ct2"
    assert opened.model_name == "tiny-storyteller"
    assert opened.config == StoryConfig(**STORYTELLER_SAMPLING)
    live = open_story_generator(storyteller_dir, SHORT.replace(best_of=2), live=True, threads=1)
    assert live.config.length == "short"
    assert live.config.best_of == 2
    reviewed = open_story_generator(storyteller_dir, require_human_review=True, threads=1)
    assert reviewed.require_human_review


def test_factory_opens_the_light_model_otherwise() -> None:
    from generator.artifacts import SHIPPED_MODEL_DIR
    from generator.generation.factory import model_family, open_story_generator
    from generator.generation.story_generator import StoryGenerator

    if not (SHIPPED_MODEL_DIR / "model.safetensors").is_file():
        pytest.skip("the shipped light model is not in this checkout")
    assert model_family(SHIPPED_MODEL_DIR) == "light"
    opened = open_story_generator(SHIPPED_MODEL_DIR, engine="torch", live=True, threads=1)
    assert isinstance(opened, StoryGenerator)
    assert opened.config.length == "short"


def test_missing_ct2_export_is_explained(tmp_path: Path) -> None:
    (tmp_path / "bedtime_model.json").write_text(json.dumps({"family": "storyteller"}))
    with pytest.raises(FileNotFoundError, match="bedtime storyteller prepare"):
        StorytellerGenerator(tmp_path)


def test_unknown_length_is_refused(storyteller_dir: Path) -> None:
    with pytest.raises(ValueError, match="length must be one of"):
        StorytellerGenerator(storyteller_dir, SHORT.replace(length="epic"))


def test_prompt_is_the_chat_template(generator: StorytellerGenerator) -> None:
    tokens = generator.prompt_tokens(["kite", "moon"], "short")
    text = generator.tokenizer.convert_tokens_to_string(tokens)
    assert text.startswith("<|im_start|>system\nYou are a gentle storyteller.")
    assert "<|im_start|>user\nWrite a short bedtime story about a kite and the moon.<|im_end|>" in (
        text
    )
    assert text.endswith("<|im_start|>assistant\n")


def test_random_model_stories_are_rejected_in_order(
    generator: StorytellerGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = RecordingCt2(generator.ct2)
    monkeypatch.setattr(generator, "ct2", recorder)
    keyword_sets = [["dragon"], ["kite", "moon"], ["owl"]]
    before = dict(generator.stats)
    stories = generator.generate(keyword_sets, seed=3, config=SHORT)
    assert [s.keywords for s in stories] == [("dragon",), ("kite", "moon"), ("owl",)]
    max_tokens, min_words, _ = LENGTHS["short"]
    for story, keywords in zip(stories, keyword_sets, strict=True):
        # a random model cannot pass the judge: the least bad candidate comes back rejected
        assert story.status == REJECTED
        assert story.rejection_reason
        assert story.prompt == story_request(keywords, "short")
        assert story.model_name == "tiny-storyteller"
        assert story.title and story.text
        assert story.quality["candidates"] == 1
        assert story.quality["accepted_candidates"] == 0
        assert 0 < story.quality["tokens"] <= max_tokens
    assert generator.stats["generated"] - before["generated"] == 3
    assert generator.stats["candidates"] - before["candidates"] == 3
    assert generator.stats["tokens"] > before["tokens"]
    (call,) = recorder.calls
    assert len(call["prompts"]) == 3
    assert call["max_length"] == max_tokens
    assert call["min_length"] == int(min_words * 1.2)
    assert call["end_token"] == END_TOKEN
    assert call["include_prompt_in_result"] is False
    assert call["sampling_temperature"] == SHORT.temperature
    assert call["callback"] is None


def test_best_of_samples_that_many_candidates(
    generator: StorytellerGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = RecordingCt2(generator.ct2)
    monkeypatch.setattr(generator, "ct2", recorder)
    before = generator.stats["candidates"]
    stories = generator.generate([["kite"], ["owl"]], seed=1, config=SHORT.replace(best_of=3))
    assert generator.stats["candidates"] - before == 6
    assert [s.quality["candidates"] for s in stories] == [3, 3]
    (call,) = recorder.calls  # one batch for every candidate of every keyword set
    prompts = call["prompts"]
    assert len(prompts) == 6
    assert prompts[0] == prompts[1] == prompts[2] != prompts[3]


def test_sample_groups_candidates_per_keyword_set(generator: StorytellerGenerator) -> None:
    groups = generator.sample([["kite"], ["owl"]], length="short", n=2, seed=5)
    assert [len(g) for g in groups] == [2, 2]
    for candidate in (c for g in groups for c in g):
        assert isinstance(candidate, Candidate)
        assert END_TOKEN not in candidate.reply
        assert candidate.mean_logprob is not None and candidate.mean_logprob < 0
        assert candidate.tokens <= LENGTHS["short"][0]


def test_same_seed_same_stories_on_a_fresh_generator(storyteller_dir: Path) -> None:
    # CTranslate2 seeds each worker thread's generator on its first use only, so a seed
    # reproduces the stories of a freshly loaded model (reseeding a used one does not).
    texts = [
        StorytellerGenerator(storyteller_dir, SHORT, threads=1)
        .generate([["kite"]], seed=11)[0]
        .text
        for _ in range(2)
    ]
    assert texts[0] == texts[1]


@pytest.mark.parametrize("length", ["short", "medium"])
def test_length_sets_the_token_budget(
    generator: StorytellerGenerator, monkeypatch: pytest.MonkeyPatch, length: str
) -> None:
    recorder = RecordingCt2(generator.ct2)
    monkeypatch.setattr(generator, "ct2", recorder)
    story = generator.generate([["kite"]], seed=2, config=SHORT.replace(length=length))[0]
    max_tokens, min_words, _ = LENGTHS[length]
    assert recorder.calls[0]["max_length"] == max_tokens
    assert recorder.calls[0]["min_length"] == int(min_words * 1.2)
    assert story.prompt == story_request(["kite"], length)
    assert story.quality["tokens"] <= max_tokens


def test_lengths_table_is_ordered() -> None:
    assert list(LENGTHS) == ["short", "medium", "long"]
    budgets = [LENGTHS[k][0] for k in LENGTHS]
    assert budgets == sorted(budgets)
    for max_tokens, min_words, max_words in LENGTHS.values():
        assert min_words < max_words
        assert min_words * 1.2 < max_tokens


def test_deadline_in_the_past_stops_early(
    generator: StorytellerGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = RecordingCt2(generator.ct2)
    monkeypatch.setattr(generator, "ct2", recorder)
    stories = generator.generate(
        [["kite"], ["owl"]], seed=4, deadline=time.monotonic() - 1, config=SHORT
    )
    assert recorder.calls[0]["callback"] is not None
    assert len(stories) == 2
    for story in stories:
        assert story.status == REJECTED
        assert story.quality["tokens"] <= 2
        assert not story.finished
        assert "unfinished (no proper ending)" in story.rejection_reason


def _fake_sample(candidates: list[Candidate]) -> Any:
    def sample(keyword_sets: Any, **_kwargs: Any) -> list[list[Candidate]]:
        return [list(candidates) for _ in keyword_sets]

    return sample


def test_accepted_candidate_is_approved(
    generator: StorytellerGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = Candidate(GOOD, finished=False, mean_logprob=-0.1, tokens=140)
    good = Candidate(GOOD, finished=True, mean_logprob=-1.0, tokens=140)
    monkeypatch.setattr(generator, "sample", _fake_sample([bad, good]))
    story = generator.generate([["dragon", "kite"]], config=SHORT.replace(best_of=2))[0]
    assert story.status == APPROVED
    assert story.rejection_reason is None
    assert story.title == "The Dragon and the Kite"
    assert story.finished
    assert story.quality["accepted_candidates"] == 1
    assert story.quality["candidates"] == 2
    assert story.safety["ok"] is True


def test_human_review_keeps_accepted_stories_pending(
    storyteller_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reviewed = StorytellerGenerator(storyteller_dir, SHORT, require_human_review=True, threads=1)
    good = Candidate(GOOD, finished=True, mean_logprob=-1.0, tokens=140)
    monkeypatch.setattr(reviewed, "sample", _fake_sample([good]))
    assert reviewed.generate([["dragon"]])[0].status == PENDING


def test_rejected_story_without_title_gets_keyword_title(
    generator: StorytellerGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "sample", _fake_sample([Candidate("", finished=False)]))
    story = generator.generate([["kite", "moon"]], config=SHORT)[0]
    assert story.status == REJECTED
    assert story.title == "The Kite and the Moon"
    assert story.text == "(no text)"


def test_merge_adapter_matches_the_peft_model(tiny_base: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generator.storyteller.prepare import merge_adapter
    from tests.generator.storyteller.tiny_storyteller import make_adapter

    peft_model = make_adapter(tiny_base, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    out = merge_adapter(tiny_base, tmp_path / "adapter", tmp_path / "merged")
    assert out == tmp_path / "merged"
    assert not (tmp_path / "merged.tmp").exists()
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32).eval()
    assert not any("lora" in name for name in merged.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(tiny_base).chat_template
    ids = torch.tensor([tokenizer.encode("The owl and the moon.", add_special_tokens=False)])
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
        original = base(input_ids=ids).logits
    assert not torch.allclose(expected, original, atol=1e-3)  # the adapter does something
    assert torch.allclose(got, expected, atol=1e-4)
