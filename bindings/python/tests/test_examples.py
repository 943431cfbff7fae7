"""The runnable examples in bindings/python/examples/ work as written and print what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_dated_frames_example_shares_every_date_and_leaves_nothing_behind() -> None:
    pytest.importorskip("polars")
    r = subprocess.run([sys.executable, str(EXAMPLES / "dated_frames.py")], capture_output=True,
                       text=True, timeout=300, cwd=EXAMPLES)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("published 6 dates: ")
    # Task t's volume-weighted price over dates t and t+1 (price = (k % 97) / 4 + day).
    assert [line.split(": vwap")[0] for line in out[1:6]] == [
        f"task {t}: dates {t} and {t + 1}" for t in range(5)
    ]
    vwaps = [float(line.split("vwap ")[1]) for line in out[1:6]]
    assert all(abs((v2 - v1) - 1.0) < 1e-3 for v1, v2 in zip(vwaps, vwaps[1:])), vwaps
    assert out[6:] == ["entries left: []", "files left: []"]
