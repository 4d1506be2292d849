import json
from pathlib import Path

from generator.dataset import (
    assign_split,
    load_stories,
    normalize_whitespace,
    prepare_catalogue,
    prepare_corpus,
    sha256_file,
    split_book,
    strip_gutenberg,
)


def test_strip_gutenberg_keeps_body_only() -> None:
    text = (
        "header\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nbody\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nlicence"
    )
    assert strip_gutenberg(text).strip() == "body"
    old_style = (
        "*** START OF THIS PROJECT GUTENBERG EBOOK Y ***\nbody\n"
        "End of the Project Gutenberg EBook of Y\n"
    )
    assert strip_gutenberg(old_style).strip() == "body"


def test_normalize_whitespace_unwraps_paragraphs() -> None:
    raw = "One  line\nwrapped _here_.\n\n[Illustration: x]\nNext\tpara."
    assert normalize_whitespace(raw, hard_wrapped=True) == "One line wrapped here.\n\nNext para."
    assert normalize_whitespace("a\nb") == "a\n\nb"


def test_split_book_finds_titles_and_skips_contents() -> None:
    book = (
        "\n\n\nCONTENTS\n\n  A\n\n\n\nTHE GLASS MOUNTAIN\n\nText one.\n\n\n"
        "II. THE RED ETIN.\n\nText two.\n"
    )
    assert [(t, b.strip()) for t, b in split_book(book)] == [
        ("The Glass Mountain", "Text one."),
        ("The Red Etin", "Text two."),
    ]


def test_split_is_deterministic_by_content() -> None:
    assert assign_split("t", "x", 500) == assign_split("t", "x", 500)
    assert assign_split("t", "x", 0) == "train"
    assert assign_split("t", "x", 1000) == "validation"


def test_prepare_corpus_on_mini_corpus(mini_corpus: Path, tmp_path: Path) -> None:
    manifest = prepare_corpus(mini_corpus, tmp_path / "a", val_permille=300, progress=False)
    rows = load_stories(tmp_path / "a")
    by_source: dict[str, int] = {}
    for row in rows:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
    # truncated last TinyStory dropped; the book's Rumpelstiltskin duplicates grimm_per_story
    assert by_source == {
        "tinystories": 3,
        "snakes_bedtime": 2,
        "snakes_child": 1,
        "aesop": 1,
        "grimm_per_story": 1,
        "gutenberg:tiny_fairy_book": 1,
    }
    assert manifest["dropped"]["duplicate"] == 1
    assert manifest["n_stories"] == len(rows) == manifest["n_train"] + manifest["n_validation"]
    assert manifest["sha256"] == sha256_file(tmp_path / "a" / "stories.jsonl")
    glass = next(r for r in rows if r["source"].startswith("gutenberg"))
    assert glass["title"] == "The Glass Mountain"
    assert "Illustration" not in glass["text"] and "_" not in glass["text"]
    assert "Gutenberg" not in glass["text"]
    fox = next(r for r in rows if r["title"] == "The Fox Who Visited the Moon")
    assert fox["keywords"][:2] == ["fox", "moon"]
    # deterministic: same corpus -> byte-identical dataset
    again = prepare_corpus(mini_corpus, tmp_path / "b", val_permille=300, progress=False)
    assert again["sha256"] == manifest["sha256"]
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["source_sha256"]


def _catalogue(path: Path) -> Path:
    import random

    vocab = [
        "owl",
        "moon",
        "tree",
        "star",
        "hill",
        "river",
        "cloud",
        "lamp",
        "boat",
        "cat",
        "dog",
        "fox",
        "bed",
        "night",
        "sky",
        "song",
    ]

    def story(seed: int) -> str:  # distinct stories (the near-duplicate filter keeps them)
        rng = random.Random(seed)
        return " ".join(f"The {rng.choice(vocab)} saw a {rng.choice(vocab)}." for _ in range(20))

    rows = [
        {"title": f"Owl {i}", "text": f"{story(i)}\nShe slept.", "keywords": ["Owl ", "moon"]}
        for i in range(30)
    ]
    rows.append({**rows[0], "title": "Owl copy"})  # same text: dropped as a duplicate
    rows.append({"title": "Held", "text": story(99), "keywords": ["owl"], "status": "pending"})
    rows.append({"title": "Short", "text": "Too short.", "keywords": ["owl"]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_prepare_catalogue_keeps_its_keywords(tmp_path: Path) -> None:
    from generator.dataset import VALIDATION_TEXT
    from generator.evaluate import split_documents

    catalogue = _catalogue(tmp_path / "cat.jsonl")
    manifest = prepare_catalogue(catalogue, tmp_path / "a", val_permille=300)
    rows = load_stories(tmp_path / "a")
    assert len(rows) == 30 == manifest["n_stories"]
    assert manifest["dropped"] == {"duplicate": 1, "too_short": 1}
    assert {r["source"] for r in rows} == {"storyteller"}
    assert all(r["keywords"] == ["owl", "moon"] for r in rows)
    assert rows[0]["text"].endswith("\n\nShe slept.")
    held_out = [r for r in rows if r["split"] == "validation"]
    assert 0 < len(held_out) < 30
    assert all(r["split"] == assign_split(r["title"], r["text"], 300) for r in rows)
    docs = split_documents((tmp_path / "a" / VALIDATION_TEXT).read_text(encoding="utf-8"))
    assert docs == [r["text"] for r in held_out]
    again = prepare_catalogue(catalogue, tmp_path / "b", val_permille=300)
    assert again["sha256"] == manifest["sha256"]
    assert manifest["catalogue_sha256"] == sha256_file(catalogue)


def test_source_filter(mini_dataset: Path) -> None:
    rows = load_stories(mini_dataset, sources=["snakes"])
    assert rows and all(r["source"].startswith("snakes") for r in rows)


def test_real_corpus_readers_match_provenance(shared_corpus: Path) -> None:
    """Counts stated in the corpus PROVENANCE files (skipped without ../shared)."""
    from generator.dataset import read_snakes, read_tinystories

    snakes = list(read_snakes(shared_corpus / "train" / "snakes_bedtime_child"))
    assert sum(s == "snakes_bedtime" for s, _, _ in snakes) == 3014
    assert sum(s == "snakes_child" for s, _, _ in snakes) == 2727
    tiny = list(read_tinystories(shared_corpus / "train" / "tinystories_train_head"))
    assert len(tiny) == 2316  # 2,316 separators: 2,316 complete stories, the cut tail dropped
