"""The README's Python code works as written: each ```python block runs as a script (in a fresh
interpreter, as a user would paste it) and prints what the comments say; the open-latency benchmark
script next to it runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.S | re.M)


def run(code: str, workdir: Path) -> list[str]:
    # The examples make their containers in /dev/shm; here in the test's own directory, which the
    # fixture removes.
    assert 'tempfile.mkdtemp(dir="/dev/shm")' in code
    script = workdir / "readme.py"
    here = f"tempfile.mkdtemp(dir={str(workdir)!r})"
    script.write_text(code.replace('tempfile.mkdtemp(dir="/dev/shm")', here))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=180, cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def test_the_readme_has_its_five_examples() -> None:
    assert len(blocks()) == 5


def test_quick_start(workdir: Path) -> None:
    out = run(blocks()[0], workdir)
    assert out[0].endswith(" 108.0")  # the polars Series' sum: 0 + ... + 11, with x[0, 0] = 42
    assert out[1] == "Removal(deferred=True, holders=1)"
    assert out[2] == "False ['m', 'x']"
    assert out[3] == "2 ndarray csr_matrix"
    assert out[4] == "1002 7.0"
    assert out[5] == str(float(np.arange(12.0).sum() * 2 + (42.0 - 0.0) * 2))
    assert out[6] == "False"
    assert out[7] == "(3, 4) ['m', 'x']"
    assert out[8] == "() True"
    # The engine's remedy is worded as the Python call.
    assert out[9].endswith('/demo: no array named "nope"; `c.ls()` lists the arrays')
    assert len(out) == 10


def test_processes_example(workdir: Path) -> None:
    assert run(blocks()[1], workdir) == ["['x']"]


def test_tables_example(workdir: Path) -> None:
    assert run(blocks()[2], workdir) == [
        "True 31.25",
        "3 string_view",
        "table 3 ('price', 'ticker', 'venue', 'at')",
        "Removal(deferred=True, holders=1)",
    ]


def test_cache_example(workdir: Path) -> None:
    assert run(blocks()[3], workdir) == [
        "Limits(capacity=24576, min_free=None)",
        "cached Usage(entries=24576, reserved=0, evictable=16384)",
        "['day/2', 'day/3', 'model']",
        "8192 24576 0 ['day/2', 'day/3', 'model']",
        "[Evicted(name='day/2', bytes=8192)]",
        "['day/3', 'model']",
    ]


def test_dask_example(workdir: Path) -> None:
    pytest.importorskip("distributed")
    pytest.importorskip("dask.array")
    assert run(blocks()[4], workdir) == [
        "(1000, 1000, 1000, 1000) True",
        "499999500000.0 True",
        "['x']",
    ]


def test_the_open_latency_benchmark_runs(workdir: Path) -> None:
    bench = README.parent / "bench_open.py"
    r = subprocess.run(
        [sys.executable, str(bench), str(workdir / "b"), "--elements", "4096", "--runs", "20",
         "--json", str(workdir / "open.json")],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| `np.memmap` of the same file |" in r.stdout
    got = json.loads((workdir / "open.json").read_text())
    assert set(got["median_ns"]) == {"first", "cached", "np.memmap", "np.load(mmap_mode='r')"}
