"""Tables from Python (issue 17): write_table from polars, pyarrow and pandas; open_table and
open_polars over the one map of the table's Arrow IPC file."""

from __future__ import annotations

import datetime as dt
import gc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather
import pytest

import dafstore

pl = pytest.importorskip("polars")


def mixed_frame(n: int = 1000) -> "pl.DataFrame":
    """The seeds' kind of frame: floats, ints, timestamps with a time zone, strings, a category."""
    return pl.DataFrame(
        {
            "f": np.arange(n, dtype=np.float64) / 7,
            "i": np.arange(n, dtype=np.int64),
            "t": pl.datetime_range(
                dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1) + dt.timedelta(seconds=n - 1),
                "1s", time_zone="UTC", eager=True,
            ),
            "s": [f"cell-{k}" if k % 5 else None for k in range(n)],
            "c": pl.Series([("a", "b", "c")[k % 3] for k in range(n)], dtype=pl.Categorical),
        }
    )


def buffers_inside(table: pa.Table, lo: int, hi: int) -> list[bool]:
    """For every non-empty buffer of every column chunk (children and dictionaries too): does it
    lie inside [lo, hi)?"""
    seen: list[bool] = []

    def walk(arr: pa.Array) -> None:
        for b in arr.buffers():
            if b is not None and b.size:
                seen.append(lo <= b.address and b.address + b.size <= hi)
        if isinstance(arr, pa.DictionaryArray):
            walk(arr.dictionary)

    for col in table.columns:
        for chunk in col.chunks:
            walk(chunk)
    return seen


def test_a_polars_frame_round_trips_and_every_pyarrow_buffer_is_the_map(
    container: dafstore.Container,
) -> None:
    df = mixed_frame()
    container.write_table("day/2026-01-01", df)
    assert container.kind("day/2026-01-01") == "table"
    info = container.info("day/2026-01-01")
    assert (info.kind, info.rows, info.columns) == ("table", 1000, ("f", "i", "t", "s", "c"))
    t = container.open_table("day/2026-01-01")
    assert t.num_rows == 1000 and t.column_names == ["f", "i", "t", "s", "c"]
    # Zero-copy: every buffer is a slice of this process's map of the .arrow file.
    view = container._c.open_table_file("day/2026-01-01")
    inside = buffers_inside(t, view.address, view.address + view.nbytes)
    assert inside and all(inside), inside
    back = container.open_polars("day/2026-01-01")
    assert back.equals(df), (back, df)
    # The stored layout is the one polars maps: strings as views.
    assert t.schema.field("s").type == pa.string_view()


def test_pyarrow_tables_readers_and_pandas_frames_are_accepted(
    container: dafstore.Container,
) -> None:
    t = pa.table({"x": pa.array([1, 2, 3], pa.int32()), "y": ["a", None, "c"]})
    container.write_table("t", t)
    container.write_table("r", pa.RecordBatchReader.from_batches(t.schema, t.to_batches()))
    for name in ("t", "r"):
        got = container.open_table(name)
        assert got.column("x").to_pylist() == [1, 2, 3]
        assert got.column("y").to_pylist() == ["a", None, "c"]
    assert sorted(container) == ["r", "t"]
    assert isinstance(container["t"], pa.Table)
    with pytest.raises(TypeError, match="write_table takes"):
        container.write_table("bad", [1, 2, 3])


def test_pandas_frames_are_accepted(container: dafstore.Container) -> None:
    pd = pytest.importorskip("pandas")  # an optional extra, not installed by run-tests.sh
    container.write_table("p", pd.DataFrame({"x": [1.5, 2.5], "y": ["u", "v"]}))
    assert container.open_table("p").column("y").to_pylist() == ["u", "v"]


def test_an_open_frame_keeps_its_bytes_through_a_replace_and_a_deferred_remove(
    container: dafstore.Container,
) -> None:
    container.write_table("x", pa.table({"v": [1.0, 2.0, 3.0]}))
    df = container.open_polars("x")
    container.write_table("x", pa.table({"v": [9.0]}))
    assert container.open_table("x").column("v").to_pylist() == [9.0]
    removal = container.remove("x")
    assert removal.deferred  # this process still holds x through the old frame
    gc.collect()
    assert df["v"].to_list() == [1.0, 2.0, 3.0]  # the old generation's bytes


def test_only_the_frame_keeps_the_map_and_the_reference_alive(
    container: dafstore.Container, workdir: Path
) -> None:
    container.write_table("x", pa.table({"v": np.arange(100, dtype=np.float64)}))
    df = container.open_polars("x")
    gc.collect()
    assert container.local_refs("x") >= 1
    assert float(df["v"].sum()) == float(np.arange(100).sum())
    del df
    gc.collect()
    assert container.local_refs("x") == 0
    assert container.remove("x") == dafstore.Removal(deferred=False, holders=0)
    assert not (workdir / "c" / "x.arrow").exists()


def test_a_scratch_table_goes_at_its_last_release(container: dafstore.Container) -> None:
    container.write_table("s", pa.table({"v": [1, 2]}), scratch=True)
    t = container.open_table("s")
    assert "s" in container
    del t
    gc.collect()
    assert "s" not in container


def test_a_corrupt_table_file_is_a_typed_error_naming_it(
    container: dafstore.Container, workdir: Path
) -> None:
    container.write_table("x", pa.table({"v": np.arange(1000, dtype=np.int64)}))
    gc.collect()
    path = workdir / "c" / "x.arrow"
    data = bytearray(path.read_bytes())
    data[:6] = b"XXXXXX"  # the magic
    path.write_bytes(bytes(data))  # same size: only the content is wrong
    with pytest.raises(dafstore.DafstoreError, match="x.arrow"):
        container.open_table("x")


def staged_bytes(workdir: Path) -> int:
    """Bytes in the container's staging directory (a table being written lives there)."""
    return sum(p.stat().st_size for p in (workdir / "c" / ".dafstore" / "staging").rglob("*")
               if p.is_file())


def test_a_stream_is_written_batch_by_batch_never_held_whole(
    container: dafstore.Container, workdir: Path
) -> None:
    batch_rows, batches = 100_000, 8
    schema = pa.schema([("i", pa.int64()), ("s", pa.string())])
    staged_when_made: list[int] = []

    def make():
        for k in range(batches):
            # What the engine has already written when the producer is asked for batch k.
            staged_when_made.append(staged_bytes(workdir))
            i = np.arange(k * batch_rows, (k + 1) * batch_rows, dtype=np.int64)
            yield pa.record_batch([pa.array(i), pa.array([f"r{v}" for v in i])], schema=schema)

    container.write_table("big", pa.RecordBatchReader.from_batches(schema, make()))
    # Batch k was asked for only after batches 0..k-1 were in the staging file: streamed.
    assert staged_when_made[0] < 1 << 16  # the file's header and schema at most
    assert all(b > a + batch_rows * 8 for a, b in zip(staged_when_made, staged_when_made[1:]))
    t = container.open_table("big")
    assert t.num_rows == batch_rows * batches
    assert t.column("i").num_chunks == batches  # stored as the producer's batches
    assert t.schema.field("s").type == pa.string_view()  # normalized batch by batch
    assert t.column("i").to_numpy().tolist() == list(range(batch_rows * batches))
    assert t.column("s")[batch_rows * batches - 1].as_py() == f"r{batch_rows * batches - 1}"


def test_a_stream_whose_producer_fails_publishes_nothing(
    container: dafstore.Container, workdir: Path
) -> None:
    schema = pa.schema([("i", pa.int64())])

    def make():
        yield pa.record_batch([pa.array([1, 2, 3])], schema=schema)
        raise RuntimeError("the source went away")

    with pytest.raises(Exception, match="the source went away"):
        container.write_table("t", pa.RecordBatchReader.from_batches(schema, make()))
    assert container.ls() == []
    assert staged_bytes(workdir) == 0


def test_a_stream_with_another_dictionary_in_a_later_batch_is_refused_naming_the_column(
    container: dafstore.Container, workdir: Path
) -> None:
    cat = pa.dictionary(pa.int32(), pa.string())
    schema = pa.schema([("venue", cat)])
    batches = [
        pa.record_batch([pa.array(["XPAR", "XLON"]).dictionary_encode()], schema=schema),
        pa.record_batch([pa.array(["XNYS"]).dictionary_encode()], schema=schema),
    ]
    with pytest.raises(dafstore.InvalidArrayError, match=r"\(venue\).*unify_dictionaries"):
        container.write_table("t", pa.RecordBatchReader.from_batches(schema, iter(batches)))
    assert container.ls() == [] and staged_bytes(workdir) == 0
    # The same batches as an in-memory table: one dictionary per column, written as one batch.
    container.write_table("t", pa.Table.from_batches(batches))
    assert container.open_table("t").column("venue").to_pylist() == ["XPAR", "XLON", "XNYS"]


def test_import_file_with_table_makes_a_table_of_a_one_column_file(
    container: dafstore.Container, workdir: Path
) -> None:
    path = workdir / "names.feather"
    pa.feather.write_feather(pa.table({"name": ["ann", None, "bo"]}), str(path))
    with pytest.raises(dafstore.DafstoreError):
        container.import_file("dense", path)  # one column: a dense array, strings refused
    (imported,) = container.import_file("names", path, table=True)
    assert imported.kind == "table"
    assert container.open_table("names").column("name").to_pylist() == ["ann", None, "bo"]
    with pytest.raises(dafstore.DafstoreError, match="does not apply"):
        container.import_file("other", path, table=True, column="name")
