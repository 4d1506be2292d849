"""bench/bench_safety_judge.py's choosing logic, without the storyteller (no model needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from safety.training import Example

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_safety_judge.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_safety_judge", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dev() -> list[Example]:
    """4 unsuitable, 50 corpus-suitable and 34 hand-written hard suitable sentences."""
    unsafe = [Example(f"bad {i}", "violence", "devhand") for i in range(4)]
    corpus = [Example(f"corpus {i}", "suitable", "tinystories_valid") for i in range(50)]
    hard = [Example(f"hard {i}", "suitable", "devhand") for i in range(34)]
    return unsafe + corpus + hard


def test_rule_allows_one_hard_and_one_corpus_false_alarm() -> None:
    bench, dev = _bench(), _dev()
    flags = [False] * len(dev)
    assert bench.rule_ok(flags, dev)
    flags[4] = flags[54] = True  # one corpus (2% of 50) and one hard (3% of 34)
    assert bench.rule_ok(flags, dev)
    flags[55] = True
    assert not bench.rule_ok(flags, dev)


def test_band_lets_the_judge_decide_between_its_edges() -> None:
    bench = _bench()
    band = (0.3, 0.85, 1.0)
    assert bench.combine(0.9, -5.0, band)  # above the band: the head flags
    assert not bench.combine(0.1, 5.0, band)  # below: passed whatever the judge says
    assert bench.combine(0.5, 1.0, band) and not bench.combine(0.5, 0.9, band)


def test_choose_band_takes_the_judge_only_where_it_adds_recall() -> None:
    bench, dev = _bench(), _dev()
    head = [0.95, 0.5, 0.5, 0.1] + [0.0] * 50 + [0.5] * 34
    # the judge tells the two in-band unsuitable sentences from the in-band hard ones
    judged = [0.0, 2.0, 3.0, 0.0] + [0.0] * 50 + [1.0] * 34
    lo, hi, threshold = bench.choose_band(dev, head, judged)
    flags = [bench.combine(h, j, (lo, hi, threshold)) for h, j in zip(head, judged, strict=True)]
    assert flags[:4] == [True, True, True, False]
    assert bench.rule_ok(flags, dev) and lo <= 0.5 < hi and threshold == 2.0
    assert bench.choose_alone(dev, judged) == 2.0
    assert bench.auc(dev, judged) > bench.auc(dev, [0.0] * len(dev)) == 0.5
