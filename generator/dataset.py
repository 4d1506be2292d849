"""Corpus preparation: shared/corpus -> one versioned JSONL of titled, keyworded stories.

Steps (each a small testable function): read every source into ``(title, text)`` stories, strip
Project Gutenberg boilerplate, split books at their headings, normalise whitespace, drop exact
and near duplicates across overlapping sources, extract keywords, and assign a deterministic
train/validation split from a hash of title+text (stable when sources are added or reordered).

:func:`prepare_catalogue` builds the same dataset layout from a story catalogue JSONL instead
(the storyteller's stories, with the keywords they were asked for): the distillation data for
the light model. Every dataset also gets ``validation.txt``, its held-out stories
``<|endoftext|>``-separated, for ``bedtime eval --text-file``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from generator.artifacts import atomic_write_json
from generator.keywords import extract_keywords

logger = logging.getLogger(__name__)

DATASET_VERSION = "v1"
PG_START_RE = re.compile(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$", re.M)
PG_END_RE = re.compile(
    r"^(\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$",
    re.M | re.I,
)
SNAKES_RE = re.compile(
    r"(?:Write a bedtime story|Tell the child-appropriate tale) called `(?P<title>[^`]*)`\."
    r"<start>(?P<text>.*?)<end>",
    re.S,
)
ROMAN_PREFIX_RE = re.compile(r"^[IVXLC]+\.\s+")
NON_STORY_HEADINGS = re.compile(
    r"^(preface|contents|notes?( and references)?|introduction|list of illustrations|index|"
    r"illustrations|appendix|glossary|bibliography|the end|finis|footnotes?)\b",
    re.I,
)
#: Tales kept out of a children's bedtime corpus altogether (violent/disturbing).
EXCLUDED_TITLES = frozenset({"how children played slaughter with each other"})
MIN_STORY_WORDS = 60


@dataclass
class Story:
    """One story as written to the dataset."""

    source: str
    title: str
    text: str
    keywords: list[str] = field(default_factory=list)
    split: str = "train"
    id: str = ""
    n_words: int = 0


# --------------------------------------------------------------------------- text utilities


def strip_gutenberg(text: str) -> str:
    """Keep only what lies between the PG START and END markers (whole text if none)."""
    start = PG_START_RE.search(text)
    if start:
        text = text[start.end() :]
    end = PG_END_RE.search(text)
    if end:
        text = text[: end.start()]
    return text


def normalize_whitespace(text: str, hard_wrapped: bool = False) -> str:
    """Paragraphs separated by one blank line, single spaces inside lines.

    ``hard_wrapped`` texts (Gutenberg books) break lines inside paragraphs; those lines are
    joined. Otherwise every line break is a paragraph break (TinyStories, synthetic stories).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = re.sub(r"\[Illustration[^\]]*\]", " ", text)
    text = re.sub(r"_([^_\n]+)_", r"\1", text)  # _italics_
    paragraphs = re.split(r"\n\s*\n", text) if hard_wrapped else text.split("\n")
    cleaned = [" ".join(p.split()) for p in paragraphs]
    return "\n\n".join(p for p in cleaned if p)


def is_heading(line: str) -> bool:
    """A short line without sentence punctuation that looks like a chapter/story title."""
    stripped = line.strip()
    if not (2 < len(stripped) <= 80) or stripped.endswith((",", ";", ":")):
        return False
    letters = [c for c in stripped if c.isalpha()]
    if not letters:
        return False
    upper_ratio = sum(c.isupper() for c in letters) / len(letters)
    words_ = stripped.split()
    titled = all(
        w[0].isupper()
        or w.lower()
        in {
            "a",
            "an",
            "the",
            "of",
            "and",
            "in",
            "on",
            "to",
            "who",
            "with",
            "for",
            "at",
            "by",
            "from",
        }
        for w in words_
        if w[0].isalpha()
    )
    return upper_ratio > 0.8 or (
        titled and not stripped.endswith((".", "!", "?")) and len(words_) <= 10
    )


def split_book(text: str) -> list[tuple[str, str]]:
    """Split a hard-wrapped book into ``(title, raw_text)`` at heading lines.

    A heading is preceded by at least two blank lines and followed by a blank line; what lies
    before the first heading, and sections named Preface/Contents/Notes…, are dropped.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    sections: list[tuple[str, list[str]]] = []
    current_title: str | None = None
    current: list[str] = []
    blank_run = 2
    for index, line in enumerate(lines):
        next_blank = index + 1 >= len(lines) or not lines[index + 1].strip()
        if line.strip() and blank_run >= 2 and next_blank and is_heading(line):
            if current_title is not None:
                sections.append((current_title, current))
            current_title, current = line.strip(), []
        elif current_title is not None:
            current.append(line)
        blank_run = blank_run + 1 if not line.strip() else 0
    if current_title is not None:
        sections.append((current_title, current))
    stories = []
    for title, body in sections:
        clean_title = clean_heading(title)
        if NON_STORY_HEADINGS.match(clean_title):
            continue
        stories.append((clean_title, "\n".join(body)))
    return stories


def clean_heading(title: str) -> str:
    """``"XVI. THE SON OF SEVEN QUEENS."`` -> ``"The Son of Seven Queens"``."""
    title = ROMAN_PREFIX_RE.sub("", title.strip()).strip(" .")
    if title.isupper():
        small = {"a", "an", "the", "of", "and", "in", "on", "to", "who", "with", "for", "at"}
        parts = title.lower().split()
        title = " ".join(
            p if (i and p in small) else p[:1].upper() + p[1:] for i, p in enumerate(parts)
        )
    return title


def title_from_filename(path: Path) -> str:
    return " ".join(path.stem.replace("_", " ").split()).title()


# --------------------------------------------------------------------------- source readers

Reader = Callable[[Path], Iterator[tuple[str, str, str]]]


def read_snakes(root: Path) -> Iterator[tuple[str, str, str]]:
    for sub in ("bedtime", "child"):
        for path in sorted((root / sub).glob("*.md")):
            for match in SNAKES_RE.finditer(path.read_text(encoding="utf-8")):
                yield f"snakes_{sub}", match["title"].strip(), match["text"]


def read_tinystories(root: Path) -> Iterator[tuple[str, str, str]]:
    for path in sorted(root.glob("*.txt")):
        if path.name.startswith(("PROVENANCE", "README")):
            continue
        parts = path.read_text(encoding="utf-8").split("<|endoftext|>")
        for part in parts[:-1]:  # the last story is cut mid-text (PROVENANCE)
            yield "tinystories", "", part


def read_aesop(root: Path) -> Iterator[tuple[str, str, str]]:
    for path in sorted(root.glob("*.json")):
        for fable in json.loads(path.read_text(encoding="utf-8")):
            text = fable.get("fable", "")
            lesson = (fable.get("lesson") or "").strip()
            if lesson:
                text = f"{text}\n{lesson}"
            yield "aesop", fable.get("title", ""), text


def read_grimm_per_story(root: Path) -> Iterator[tuple[str, str, str]]:
    for path in sorted(root.rglob("*.txt")):
        if path.name == "PROVENANCE.txt":
            continue
        yield "grimm_per_story", title_from_filename(path), path.read_text(encoding="utf-8")


def read_books(root: Path, source_prefix: str) -> Iterator[tuple[str, str, str]]:
    for path in sorted(root.glob("*.txt")):
        if path.name.startswith("PROVENANCE"):
            continue
        name = path.name.split(".")[0]
        for title, body in split_book(strip_gutenberg(path.read_text(encoding="utf-8"))):
            yield f"{source_prefix}:{name}", title, body


#: Source folder -> (reader, hard-wrapped?). Order sets de-duplication priority: earlier wins.
SOURCES: dict[str, tuple[Reader, bool]] = {
    "tinystories_train_head": (read_tinystories, False),
    "snakes_bedtime_child": (read_snakes, False),
    "aesop": (read_aesop, False),
    "grimm_per_story": (read_grimm_per_story, True),
    "gutenberg_fairy_books": (lambda r: read_books(r, "gutenberg"), True),
    "grimm_andersen_irish": (lambda r: read_books(r, "books"), True),
    "burgess": (lambda r: read_books(r, "burgess"), True),
}


# --------------------------------------------------------------------------- dedup and split


def story_id(title: str, text: str) -> str:
    return hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:16]


def assign_split(title: str, text: str, val_permille: int) -> str:
    """Deterministic by content: the same story always lands in the same split."""
    digest = hashlib.sha256(f"{title}\n{text}".encode()).digest()
    return "validation" if int.from_bytes(digest[:4], "big") % 1000 < val_permille else "train"


class NearDuplicateFilter:
    """Drops stories whose word 8-gram shingles were mostly seen in an earlier story.

    Only 1/4 of shingles (by hash) are kept, which keeps memory small and is plenty to spot
    the same tale copied into two collections.
    """

    def __init__(self, threshold: float = 0.5, shingle: int = 8) -> None:
        self.threshold = threshold
        self.shingle = shingle
        self.seen: set[int] = set()
        self.exact: set[str] = set()

    def _shingles(self, text: str) -> set[int]:
        tokens = re.findall(r"[a-z0-9]+", text.lower())
        out = set()
        for i in range(max(1, len(tokens) - self.shingle + 1)):
            h = zlib.crc32(" ".join(tokens[i : i + self.shingle]).encode())
            if h % 4 == 0:
                out.add(h)
        return out

    def is_duplicate(self, text: str) -> bool:
        key = hashlib.sha1(" ".join(text.lower().split()).encode()).hexdigest()
        if key in self.exact:
            return True
        shingles = self._shingles(text)
        if shingles and len(shingles & self.seen) / len(shingles) >= self.threshold:
            return True
        self.exact.add(key)
        self.seen |= shingles
        return False


# --------------------------------------------------------------------------- pipeline


def iter_raw(
    corpus_dir: Path, source_folders: Iterable[str] | None = None
) -> Iterator[tuple[str, str, str, bool]]:
    """(source, title, raw_text, hard_wrapped) for every story of the selected folders."""
    wanted = list(source_folders) if source_folders else list(SOURCES)
    for folder in wanted:
        if folder not in SOURCES:
            raise ValueError(f"unknown source {folder!r}; known: {sorted(SOURCES)}")
        root = corpus_dir / "train" / folder
        if not root.exists():
            logger.warning("source folder %s missing, skipped", root)
            continue
        reader, wrapped = SOURCES[folder]
        for source, title, text in reader(root):
            yield source, title, text, wrapped


def prepare_stories(
    raw: Iterable[tuple[str, str, str, bool]],
    val_permille: int = 20,
    n_keywords: int = 3,
    progress: bool = True,
) -> tuple[list[Story], Counter[str]]:
    """Clean, de-duplicate, keyword and split raw stories. Returns stories and drop counts."""
    from tqdm import tqdm

    dedup = NearDuplicateFilter()
    dropped: Counter[str] = Counter()
    stories: list[Story] = []
    for source, title, raw_text, wrapped in tqdm(
        raw, desc="stories", disable=not progress, unit="story"
    ):
        text = normalize_whitespace(raw_text, hard_wrapped=wrapped)
        title = " ".join(title.split())
        if title.lower() in EXCLUDED_TITLES:
            dropped["excluded"] += 1
            continue
        story = _admit(
            source, title, text, lambda: extract_keywords(title, text, k=n_keywords),  # noqa: B023
            dedup, dropped, val_permille,
        )  # fmt: skip
        if story is not None:
            stories.append(story)
    return stories, dropped


def _admit(
    source: str,
    title: str,
    text: str,
    keywords: Callable[[], list[str]],
    dedup: NearDuplicateFilter,
    dropped: Counter[str],
    val_permille: int,
) -> Story | None:
    """The story, or None with the reason counted (too short, near duplicate); ``keywords`` is
    called only for a story that is kept (extraction is the slow part)."""
    n_words = len(text.split())
    if n_words < MIN_STORY_WORDS:
        dropped["too_short"] += 1
        return None
    if dedup.is_duplicate(text):
        dropped["duplicate"] += 1
        return None
    return Story(
        source=source,
        title=title,
        text=text,
        keywords=keywords(),
        split=assign_split(title, text, val_permille),
        id=story_id(title, text),
        n_words=n_words,
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_dataset(stories: list[Story], out_dir: Path, manifest_extra: dict[str, Any]) -> Path:
    """Write ``stories.jsonl`` and ``manifest.json`` (counts, sources, sha256) atomically."""
    from generator.artifacts import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = out_dir / "stories.jsonl"
    atomic_write_text(
        jsonl, "".join(json.dumps(asdict(s), ensure_ascii=False) + "\n" for s in stories)
    )
    counts: dict[str, dict[str, int]] = {}
    words_: Counter[str] = Counter()
    for story in stories:
        counts.setdefault(story.source, Counter())[story.split] += 1  # type: ignore[index]
        words_[story.source] += story.n_words
    manifest = {
        "dataset_version": DATASET_VERSION,
        "file": jsonl.name,
        "sha256": sha256_file(jsonl),
        "n_stories": len(stories),
        "n_train": sum(s.split == "train" for s in stories),
        "n_validation": sum(s.split == "validation" for s in stories),
        "counts_by_source": {k: dict(v) for k, v in sorted(counts.items())},
        "words_by_source": dict(sorted(words_.items())),
        **manifest_extra,
    }
    atomic_write_json(out_dir / "manifest.json", manifest)
    atomic_write_text(out_dir / VALIDATION_TEXT, validation_text(stories))
    return jsonl


#: Held-out stories of a dataset as one ``<|endoftext|>``-separated file (bits per character).
VALIDATION_TEXT = "validation.txt"


def validation_text(stories: Iterable[Story]) -> str:
    """The validation stories' texts in the TinyStories eval layout (no titles, no keywords)."""
    from generator.prompting import END_TOKEN

    return "".join(f"{s.text}\n{END_TOKEN}\n" for s in stories if s.split == "validation")


def source_checksums(corpus_dir: Path, folders: Iterable[str]) -> dict[str, str]:
    """sha256 of every input file, so a manifest pins exactly what it was built from."""
    out = {}
    for folder in folders:
        root = corpus_dir / "train" / folder
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            out[str(path.relative_to(corpus_dir))] = sha256_file(path)
    return out


def prepare_corpus(
    corpus_dir: str | Path,
    out_dir: str | Path,
    sources: list[str] | None = None,
    val_permille: int = 20,
    progress: bool = True,
) -> dict[str, Any]:
    """The whole pipeline; returns the manifest."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    folders = sources or list(SOURCES)
    stories, dropped = prepare_stories(
        iter_raw(corpus_dir, folders), val_permille=val_permille, progress=progress
    )
    write_dataset(
        stories,
        out_dir,
        {
            "corpus_dir": str(corpus_dir),
            "sources": folders,
            "val_permille": val_permille,
            "dropped": dict(dropped),
            "source_sha256": source_checksums(corpus_dir, folders),
        },
    )
    manifest = json.loads((out_dir / "manifest.json").read_text())
    logger.info("wrote %d stories to %s (dropped %s)", len(stories), out_dir, dict(dropped))
    return manifest


def read_catalogue(path: str | Path) -> Iterator[dict[str, Any]]:
    """Approved stories of a catalogue JSONL (``title``, ``text``, ``keywords``; the layout of
    ``bedtime stories export`` and ``db/data/starter_catalogue.jsonl``)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("status", "approved") != "approved":
                continue
            if not isinstance(row.get("text"), str) or not row["text"].strip():
                raise ValueError(f"{path}:{number}: a catalogue story needs its text")
            yield row


def catalogue_keywords(keywords: Iterable[str]) -> list[str]:
    """The keywords a catalogue story was asked for, lower-case, de-duplicated, in order."""
    out: list[str] = []
    for keyword in keywords:
        cleaned = " ".join(str(keyword).lower().split())
        if cleaned and cleaned not in out:
            out.append(cleaned)
    return out


def prepare_catalogue(
    catalogue: str | Path,
    out_dir: str | Path,
    val_permille: int = 50,
    source: str = "storyteller",
) -> dict[str, Any]:
    """A dataset (same layout as :func:`prepare_corpus`) from a story catalogue JSONL.

    The keywords are the catalogue's own (what each story was asked for), not extracted; the
    split is by content hash as for the corpus; exact and near duplicates are dropped.
    """
    catalogue, out_dir = Path(catalogue), Path(out_dir)
    dedup = NearDuplicateFilter()
    dropped: Counter[str] = Counter()
    stories: list[Story] = []
    for row in read_catalogue(catalogue):
        text = normalize_whitespace(row["text"])
        title = " ".join(str(row.get("title") or "").split())
        requested = row.get("keywords") or []
        story = _admit(
            source, title, text, lambda: catalogue_keywords(requested),  # noqa: B023
            dedup, dropped, val_permille,
        )  # fmt: skip
        if story is not None:
            stories.append(story)
    if not stories:
        raise ValueError(f"{catalogue} holds no approved story")
    write_dataset(
        stories,
        out_dir,
        {
            "catalogue": str(catalogue),
            "catalogue_sha256": sha256_file(catalogue),
            "sources": [source],
            "val_permille": val_permille,
            "dropped": dict(dropped),
        },
    )
    manifest = json.loads((out_dir / "manifest.json").read_text())
    logger.info(
        "wrote %d catalogue stories to %s (dropped %s)", len(stories), out_dir, dict(dropped)
    )
    return manifest


def load_stories(
    path: str | Path, split: str | None = None, sources: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Read a dataset JSONL (a file or a directory holding ``stories.jsonl``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "stories.jsonl"
    wanted = tuple(sources) if sources else None
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if split and row["split"] != split:
                continue
            if wanted and not row["source"].startswith(wanted):
                continue
            out.append(row)
    return out
