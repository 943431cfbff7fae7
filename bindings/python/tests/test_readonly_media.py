"""A container on a read-only mount (a real tmpfs remounted read-only; needs root, skipped
otherwise): reading works, and a read-write open is a PermissionError naming the catalog, never a
generic CatalogError (issue 14, SPEC [Q1])."""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import dafstore


@pytest.fixture
def ro_mount() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs and remount it read-only")
    mnt = Path(tempfile.mkdtemp(prefix="dafstore-ro-"))
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)]).returncode:
        os.rmdir(mnt)
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)]).returncode:
            subprocess.run(["umount", "-l", str(mnt)])
        os.rmdir(mnt)


def test_a_read_only_mount_reads_and_a_read_write_open_is_a_permission_error(
    ro_mount: Path,
) -> None:
    path = ro_mount / "c"
    c = dafstore.create(path)
    c.write("a", np.arange(4, dtype=np.float64))
    c.close()
    subprocess.run(["mount", "-o", "remount,ro", str(ro_mount)], check=True)

    with pytest.raises(PermissionError) as info:
        dafstore.open(path)
    assert isinstance(info.value, dafstore.DafstoreError)
    assert not isinstance(info.value, dafstore.CatalogError)
    assert info.value.errno == errno.EROFS
    assert "catalog.sqlite" in str(info.value) and "read-only" in str(info.value)

    r = dafstore.open(path, read_only=True)
    assert r.ls() == ["a"]
    assert np.array_equal(r.open("a"), np.arange(4, dtype=np.float64))
    r.close()
