"""Fixtures: a fresh container per test, on /dev/shm (tmpfs, as the seeds use) when available."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

import dafstore


def _scratch_root() -> str:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="dafstore-pytest-", dir=_scratch_root()))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def container(workdir: Path) -> Iterator[dafstore.Container]:
    c = dafstore.create(workdir / "c")
    yield c
    c.close()
