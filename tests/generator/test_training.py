import json
import random
from pathlib import Path

import pytest
import torch

from generator.config import DataArguments, KeywordTrainingArguments, ModelArguments
from generator.prompting import STORY_TOKEN, build_prompt
from generator.training import collate, make_windows, source_repeats

TEXT = " ".join(f"The fox ran to the moon number {i}." for i in range(40))


def _windows(tokenizer, **overrides):  # type: ignore[no-untyped-def]
    overrides.setdefault("keyword_skip_tokens", 0)
    args = DataArguments(block_size=64, keyword_dropout=0.0, **overrides)
    return make_windows(tokenizer, "The Fox", TEXT, ["fox", "moon"], args, random.Random(0))


def test_every_window_starts_with_the_keyword_prompt(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    windows = _windows(tiny_tokenizer)
    assert len(windows) > 2
    title_id = tiny_tokenizer.convert_tokens_to_ids("<|title|>")
    for index, window in enumerate(windows):
        assert len(window.input_ids) <= 64
        text = tiny_tokenizer.decode(window.input_ids)
        assert text.startswith("<|keywords|>") and STORY_TOKEN in text
        prompt_len = window.story_mask.index(True) + 1
        assert tiny_tokenizer.decode(window.input_ids[:prompt_len]).endswith(STORY_TOKEN)
        title_at = window.input_ids.index(title_id)
        assert set(window.labels[: title_at + 1]) == {-100}  # keywords are never targets
        if index == 0:  # the first window teaches the title and <|story|> ...
            assert window.labels[title_at + 1 :] == window.input_ids[title_at + 1 :]
        else:  # ... later windows use the repeated prompt as context only
            assert set(window.labels[:prompt_len]) == {-100}
            assert window.labels[prompt_len:] == window.input_ids[prompt_len:]
        assert not window.story_mask[-1]
    first = tiny_tokenizer.decode(windows[0].input_ids)
    kws = first.split("<|title|>")[0]
    assert first.startswith(build_prompt([k.strip() for k in kws[12:].split(",")], "The Fox"))


def test_keyword_loss_skips_the_opening_tokens(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    plain = _windows(tiny_tokenizer)
    skipped = _windows(tiny_tokenizer, keyword_skip_tokens=4)
    first = plain[0].story_mask.index(True)
    assert skipped[0].story_mask.index(True) == first + 4
    assert skipped[1].story_mask == plain[1].story_mask  # continuations keep every position
    assert skipped[0].labels == plain[0].labels  # the LM loss is unchanged


def test_keyword_ids_are_whole_keywords(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    window = _windows(tiny_tokenizer, max_keywords=2)[0]
    text = tiny_tokenizer.decode(window.input_ids)
    expected = set()
    for kw in ("fox", "moon"):
        if f" {kw}" in text.split("<|title|>")[0]:
            expected |= set(tiny_tokenizer(" " + kw, add_special_tokens=False)["input_ids"])
    assert set(window.keyword_ids) == expected


def test_labels_same_as_input_and_mask_nouns(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    same = _windows(tiny_tokenizer, labels_same_as_input=True)[0]
    assert same.labels == same.input_ids
    masked = _windows(tiny_tokenizer, mask_nouns=True)[0]
    prompt_len = masked.story_mask.index(True) + 1
    story_targets = masked.input_ids[prompt_len:]
    for token, label in zip(story_targets, masked.labels[prompt_len:], strict=True):
        assert label == (-100 if token in masked.keyword_ids else token)


def test_keyword_dropout_gives_unconditional_windows(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    args = DataArguments(block_size=64, keyword_dropout=0.999)
    window = make_windows(tiny_tokenizer, "T", TEXT, ["fox"], args, random.Random(1))[0]
    assert tiny_tokenizer.decode(window.input_ids).startswith(STORY_TOKEN)
    assert window.keyword_ids == []


def test_title_dropout_gives_the_untitled_prompt(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    def first_prompts(title_dropout: float) -> list[str]:
        args = DataArguments(block_size=64, keyword_dropout=0.0, title_dropout=title_dropout)
        rng = random.Random(3)
        windows = [
            make_windows(tiny_tokenizer, "The Fox", TEXT, ["fox"], args, rng)[0] for _ in range(40)
        ]
        return [tiny_tokenizer.decode(w.input_ids).split(STORY_TOKEN)[0] for w in windows]

    untitled = "<|keywords|> fox<|title|>"
    assert all(p == untitled + " The Fox" for p in first_prompts(0.0))
    assert all(p == untitled for p in first_prompts(1.0))
    half = first_prompts(0.5)
    assert 5 < sum(p == untitled for p in half) < 35
    assert set(half) == {untitled, untitled + " The Fox"}
    # without title dropout the data order is exactly what it was before the option existed
    plain = DataArguments(block_size=64, keyword_dropout=0.0)
    rng_a, rng_b = random.Random(5), random.Random(5)
    make_windows(tiny_tokenizer, "T", TEXT, ["fox", "moon"], plain, rng_a)
    rng_b.random()  # keyword dropout
    rng_b.sample(range(2), rng_b.randint(1, 2))  # the keyword subset; no draw for the title
    assert rng_a.getstate() == rng_b.getstate()
    with pytest.raises(ValueError):
        DataArguments(title_dropout=1.5)


def test_collate_pads(tiny_tokenizer) -> None:  # type: ignore[no-untyped-def]
    windows = _windows(tiny_tokenizer)
    batch = collate([windows[0].__dict__, windows[-1].__dict__], pad_id=0)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["story_mask"].shape
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()


def test_source_weights_longest_prefix() -> None:
    weights = {"snakes": 0.5, "snakes_child": 2.0}
    assert source_repeats("snakes_child", weights) == 2.0
    assert source_repeats("snakes_bedtime", weights) == 0.5
    assert source_repeats("aesop", weights) == 1.0


@pytest.mark.parametrize(
    "bad",
    [{"init": "nope"}, {"preset": "huge"}, {"init": "fine_tune"}, {"lora": True}],
)
def test_model_arguments_are_checked(bad: dict) -> None:
    with pytest.raises(ValueError):
        ModelArguments(**bad)


def test_data_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        DataArguments(source_weights="tinystories")
    with pytest.raises(ValueError):
        DataArguments(block_size=4)


def test_cos_similarity_selects_cosine_loss(tmp_path: Path) -> None:
    args = KeywordTrainingArguments(
        output_dir=str(tmp_path),
        cos_similarity=True,
        load_best_model=False,
        use_cpu=True,
        report_to="none",
    )
    assert args.keyword_loss == "cosine"


@pytest.mark.slow
def test_train_end_to_end_and_resume(mini_dataset: Path, tmp_path: Path) -> None:
    """Tiny model, 4 steps: a loadable model dir with metadata; then resume to 6 steps."""
    from generator.artifacts import load_model
    from generator.config import parse_args
    from generator.training import train

    out = tmp_path / "run"
    argv = [
        "--dataset_path",
        str(mini_dataset),
        "--preset",
        "tiny",
        "--vocab_size",
        "400",
        "--block_size",
        "64",
        "--output_dir",
        str(out),
        "--max_steps",
        "4",
        "--per_device_train_batch_size",
        "4",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
        "--load_best_model",
        "false",
        "--use_cpu",
        "--report_to",
        "none",
        "--keyword_loss_weight",
        "0.5",
        "--disable_tqdm",
        "true",
        "--logging_steps",
        "1",
        "--bf16",
    ]
    final = train(*parse_args(argv))
    meta = json.loads((final / "bedtime_model.json").read_text())
    assert meta["preset"] == "tiny" and meta["n_params"] > 0
    assert meta["metrics"]["train_tokens_seen"] > 0
    assert (
        meta["dataset_sha256"] == json.loads((mini_dataset / "manifest.json").read_text())["sha256"]
    )
    assert meta["hyperparameters"]["KeywordTrainingArguments"]["keyword_loss_weight"] == 0.5
    assert (out / "checkpoint-4").is_dir()
    loaded = load_model(final)
    assert loaded.tokenizer.convert_tokens_to_ids(STORY_TOKEN) == 3
    argv[argv.index("--max_steps") + 1] = "6"
    train(*parse_args(argv))
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6


def test_time_box_schedule_and_resume(tmp_path: Path) -> None:
    import time

    from generator.training import TimeBox, time_cosine_lambda

    box = TimeBox.load_or_start(tmp_path / "tb.json", minutes=10)
    assert TimeBox.load_or_start(tmp_path / "tb.json", minutes=10).start == box.start  # resume
    assert TimeBox.load_or_start(tmp_path / "tb.json", minutes=5).start >= box.start  # new box
    lam = time_cosine_lambda(box, warmup_steps=10, min_ratio=0.1)
    assert lam(0) == pytest.approx(0.1, abs=0.01)  # warming up
    assert lam(50) == pytest.approx(1.0, abs=0.01)  # start of the box: peak
    box.start = time.time() - box.seconds / 2
    assert lam(50) == pytest.approx(0.55, abs=0.01)  # half-way: cosine mid-point
    box.start = time.time() - 2 * box.seconds
    assert lam(50) == pytest.approx(0.1)  # spent: floor


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True])
def test_fine_tune_from_saved_model(  # type: ignore[no-untyped-def]
    tiny_model, tiny_tokenizer, mini_dataset: Path, tmp_path: Path, lora: bool
) -> None:
    from generator.artifacts import load_model, save_model
    from generator.config import parse_args
    from generator.training import train

    base = save_model(tiny_model, tiny_tokenizer, tmp_path / "base", {})
    argv = [
        "--init",
        "fine_tune",
        "--pretrained_path",
        str(base),
        "--lora",
        str(lora),
        "--lora_r",
        "2",
        "--dataset_path",
        str(mini_dataset),
        "--block_size",
        "64",
        "--output_dir",
        str(tmp_path / "ft"),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model",
        "false",
        "--use_cpu",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--learning_rate",
        "0.01",
    ]
    final = train(*parse_args(argv))
    loaded = load_model(final)
    assert loaded.meta["init"] == "fine_tune"
    assert len(loaded.tokenizer) == len(tiny_tokenizer)  # kept the base model's tokenizer
    before = tiny_model.transformer.h[0].attn.c_attn.weight
    after = loaded.model.transformer.h[0].attn.c_attn.weight
    assert not torch.allclose(before, after)


def test_latest_complete_checkpoint_skips_torn_ones(tmp_path: Path) -> None:
    from generator.training import latest_complete_checkpoint

    assert latest_complete_checkpoint(tmp_path) is None
    for step, state in ((100, '{"global_step": 100}'), (200, '{"global_st'), (300, None)):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        if state is not None:
            (ckpt / "trainer_state.json").write_text(state)
    assert latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-100"
