"""Batch publish from Python (SPEC [W11]): ``c.write_many`` and ``with c.batch() as b`` publish
every array or none; an error (an invalid array, a name twice, an exception in the block)
publishes nothing and leaves no staged file; the lifecycle applies to every array."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import dafstore


def staged_files(c: dafstore.Container) -> list[str]:
    root = Path(c.path) / ".dafstore" / "staging"
    return [f for _, _, files in os.walk(root) for f in files]


def test_write_many_publishes_every_array_with_its_dtype_shape_and_values(
    container: dafstore.Container,
) -> None:
    arrays = {f"v{i}": np.full(4, i, dtype=np.float64) for i in range(500)}
    arrays["m"] = np.arange(6, dtype=np.int32).reshape(2, 3)
    arrays["flags"] = np.array([True, False])
    arrays["sub/x"] = np.arange(3, dtype=">u2")  # big-endian in, stored little-endian
    container.write_many(arrays)
    assert len(container.ls()) == 503
    for name, a in arrays.items():
        got = container.open(name)
        assert got.dtype == a.dtype.newbyteorder("=")
        np.testing.assert_array_equal(got, a)
    assert staged_files(container) == []


def test_write_many_takes_name_array_pairs_and_replaces_existing_arrays(
    container: dafstore.Container,
) -> None:
    container.write("a", np.zeros(2))
    container.write_many([("a", np.ones(3)), ("b", [1, 2])])
    np.testing.assert_array_equal(container.open("a"), np.ones(3))
    np.testing.assert_array_equal(container.open("b"), [1, 2])
    assert container.info("a").generation == 2


def test_an_invalid_array_in_write_many_publishes_none_of_them(
    container: dafstore.Container,
) -> None:
    container.write("a", np.zeros(2))
    bad = np.array(["text"])
    with pytest.raises(dafstore.UnsupportedDtypeError):
        container.write_many({"a": np.ones(2), "new": np.ones(2), "bad": bad})
    with pytest.raises(dafstore.InvalidNameError):
        container.write_many({"a": np.ones(2), "../x": np.ones(2)})
    assert container.ls() == ["a"]
    np.testing.assert_array_equal(container.open("a"), np.zeros(2))
    assert staged_files(container) == []


def test_a_batch_block_publishes_at_its_end_and_nothing_before(
    container: dafstore.Container,
) -> None:
    with container.batch() as b:
        b.write("x", np.arange(3))
        b.write("y", np.arange(4))
        assert len(b) == 2
        assert container.ls() == []
    assert container.ls() == ["x", "y"]


def test_a_batch_block_that_raises_publishes_nothing(container: dafstore.Container) -> None:
    with pytest.raises(RuntimeError, match="stop"):
        with container.batch() as b:
            b.write("x", np.arange(3))
            raise RuntimeError("stop")
    assert container.ls() == []
    assert staged_files(container) == []


def test_a_name_written_twice_in_a_batch_is_refused_at_once(
    container: dafstore.Container,
) -> None:
    with container.batch() as b:
        b.write("x", np.arange(3))
        with pytest.raises(dafstore.InvalidArrayError, match="already in this batch"):
            b.write("x", np.arange(4))
    np.testing.assert_array_equal(container.open("x"), np.arange(3))


def test_a_batch_gives_its_lifecycle_to_every_array(container: dafstore.Container) -> None:
    container.write_many({"p": np.ones(1), "q": np.ones(1)}, lifecycle="cached")
    assert container.info("p").lifecycle == "cached"
    assert container.info("q").lifecycle == "cached"
    with pytest.raises(ValueError, match="lifecycle"):
        container.write_many({"r": np.ones(1)}, lifecycle="forever")
