"""The compiled request policy: current, equivalent to the live one, and never trusted stale."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from safety import compiled
from safety.requests import REQUEST_POLICY_PATH, build_request_lists, request_inputs

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_compiled_policy_is_current() -> None:
    """Fails after an edit of request_policy.txt until `python -m safety.compiled` is run."""
    assert compiled.load(request_inputs(REQUEST_POLICY_PATH)) is not None


def test_compiled_and_live_policies_judge_every_lexicon_word_alike() -> None:
    from db.noun_forms import vocabulary

    shipped = compiled.load(request_inputs(REQUEST_POLICY_PATH))
    live = build_request_lists(REQUEST_POLICY_PATH)
    assert shipped is not None
    words, lemmas = vocabulary()
    phrases = ["tickle attack", "pillow fight", "a story about a gun", "beat up", "shut up"]
    differences = [
        text
        for text in [*words, *lemmas, *phrases]
        if [(m.category, m.found) for m in shipped.find(text)]
        != [(m.category, m.found) for m in live.find(text)]
    ]
    assert differences == []
    assert len(words) > 50_000  # the whole lexicon was compared, not a sample


def test_a_stale_compiled_file_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stale = tmp_path / "policy.json.gz"
    with gzip.open(compiled.COMPILED_PATH, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    data["inputs"] = "an older policy"
    with gzip.open(stale, "wt", encoding="utf-8") as handle:
        json.dump(data, handle)
    assert compiled.load(request_inputs(REQUEST_POLICY_PATH), stale) is None
    assert "stale" in caplog.text
    assert compiled.load("anything", tmp_path / "missing.json.gz") is None


def test_the_request_path_loads_no_lemminflect() -> None:
    code = (
        "import sys\n"
        "from safety.requests import judge_request\n"
        "assert judge_request('guns').line() == 'redirect (weapons: guns)'\n"
        "assert judge_request('dragons').allowed\n"
        "print('lemminflect' in sys.modules, 'numpy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
