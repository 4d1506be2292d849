"""bench/bench_http.py's CPU accounting: a process tree's CPU read from /proc, children included."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_http.py"


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_http", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_parent_counts_the_cpu_its_busy_child_spends() -> None:
    bench = _bench()
    # A shell parent (idle) whose child spins for ~3 s of CPU, then both wait to be read.
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 3: pass\n"
    parent = subprocess.Popen(
        ["sh", "-c", f'{sys.executable} -c "{spin}" & wait; sleep 5'],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline_cpu = 0.0
        for _ in range(100):
            deadline_cpu = bench.process_cpu_seconds(parent.pid, with_children=True)
            if deadline_cpu >= 0.5:
                break
            subprocess.run(["sleep", "0.05"], check=True)
        alone = bench.process_cpu_seconds(parent.pid)
        assert deadline_cpu >= 0.5  # the child's spinning is counted
        assert alone < 0.2  # the idle shell itself is not busy
    finally:
        parent.kill()
        parent.wait()
