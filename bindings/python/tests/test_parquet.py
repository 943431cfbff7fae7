"""Parquet (issue 17, interop): files written by polars (``write_parquet``) and pyarrow
(``pq.write_table``, several row groups, snappy) import as tables that polars and pyarrow read back
equal to what was written; an exported table reads back in polars and pyarrow with the same schema
and values; damaged files are typed errors naming the path."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dafstore

pl = pytest.importorskip("polars")


def frame(n: int = 3000) -> "pl.DataFrame":
    """A frame of the column types polars users have, with nulls."""
    k = np.arange(n)
    return pl.DataFrame(
        {
            "i64": pl.Series([int(v) if v % 7 else None for v in k], dtype=pl.Int64),
            "u8": pl.Series(k % 256, dtype=pl.UInt8),
            "i16": pl.Series(k - n // 2, dtype=pl.Int16),
            "f32": pl.Series(k / 3, dtype=pl.Float32),
            "f64": [float(v) / 7 if v % 5 else None for v in k],
            "bool": [bool(v % 2) if v % 11 else None for v in k],
            "s": [f"cell-{v}" if v % 3 else None for v in k],
            "bin": [bytes([v % 256]) * (v % 4) for v in k],
            "date": [dt.date(2026, 1, 1) + dt.timedelta(days=int(v)) for v in k],
            "ts": pl.datetime_range(
                dt.datetime(2026, 1, 1),
                dt.datetime(2026, 1, 1) + dt.timedelta(seconds=n - 1),
                "1s",
                eager=True,
            ),
            "ts_tz": pl.datetime_range(
                dt.datetime(2026, 1, 1),
                dt.datetime(2026, 1, 1) + dt.timedelta(seconds=n - 1),
                "1s",
                time_zone="Europe/Paris",
                eager=True,
                time_unit="ns",
            ),
            "cat": pl.Series([("a", "b", "c", None)[v % 4] for v in k], dtype=pl.Categorical),
            "list": [[int(v), int(v) + 1] if v % 6 else None for v in k],
            "struct": [{"x": int(v), "y": f"y{v}"} for v in k],
        }
    )


def test_a_polars_parquet_file_imports_as_a_table_equal_to_the_frame(
    container: dafstore.Container, workdir: Path
) -> None:
    df = frame()
    path = workdir / "polars.parquet"
    df.write_parquet(path, row_group_size=1000)
    assert pq.ParquetFile(path).metadata.num_row_groups > 1
    (imported,) = container.import_file("frame", path)
    assert imported.kind == "table"
    assert container.info("frame").rows == df.height
    back = container.open_polars("frame")
    assert back.schema == df.schema
    assert back.equals(df)


def test_a_pyarrow_parquet_file_of_many_row_groups_imports_with_one_dictionary(
    container: dafstore.Container, workdir: Path
) -> None:
    n = 10_000
    k = np.arange(n)
    # Each row group of 1,000 rows has its own dictionary (values change along the file).
    table = pa.table(
        {
            "id": pa.array(k, pa.int64()),
            "cat": pa.array([f"g{v // 1500}" if v % 9 else None for v in k]).dictionary_encode(),
            "big": pa.array([f"x{v}" for v in k], pa.large_string()),
            "when": pa.array(k * 1_000_000, pa.timestamp("us", tz="UTC")),
            "tags": pa.array([[f"t{v % 3}"] * (v % 3) for v in k], pa.list_(pa.string())),
        }
    )
    path = workdir / "pyarrow.pq"
    pq.write_table(table, path, row_group_size=1000)  # snappy, pyarrow's default
    assert pq.ParquetFile(path).metadata.num_row_groups == 10
    container.import_file("t", path)
    got = container.open_table("t")
    assert got.schema.equals(table.schema)
    assert got.to_pylist() == table.to_pylist()
    # One dictionary for the whole column, holding each value once.
    dictionaries = {tuple(chunk.dictionary.to_pylist()) for chunk in got.column("cat").chunks}
    assert len(dictionaries) == 1
    (values,) = dictionaries
    assert sorted(values) == sorted({f"g{v // 1500}" for v in k if v % 9})
    assert container.open_polars("t").equals(pl.from_arrow(table))


def test_an_exported_table_reads_back_in_polars_and_pyarrow(
    container: dafstore.Container, workdir: Path
) -> None:
    df = frame()
    container.write_table("frame", df)
    stored = container.open_table("frame")
    out = workdir / "out.parquet"
    container.export("frame", out)
    # The file carries the table's exact Arrow schema (field metadata too), which polars and
    # arrow-rs honour.
    embedded = pq.read_metadata(out).metadata[b"ARROW:schema"]
    assert pa.ipc.read_schema(pa.py_buffer(base64.b64decode(embedded))).equals(
        stored.schema, check_metadata=True
    )
    # pyarrow reads the same types, except that it decodes every dictionary with plain `string`
    # values (the table stores polars' `string_view`), and the same values.
    read = pq.read_table(out)
    assert read.column_names == stored.column_names
    for want, got in zip(stored.schema, read.schema):
        if pa.types.is_dictionary(want.type):
            assert got.type == pa.dictionary(want.type.index_type, pa.string()), got
        else:
            assert got.type == want.type, got
    assert read.to_pylist() == stored.to_pylist()
    assert pl.read_parquet(out).equals(df)
    assert pl.read_parquet(out).equals(container.open_polars("frame"))
    # Compressed with ZSTD.
    meta = pq.ParquetFile(out).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    # A dense array exports as one column.
    container.write("x", np.arange(12.0))
    container.export("x", workdir / "x.parquet", format="parquet")
    assert pq.read_table(workdir / "x.parquet").column("x").to_pylist() == list(np.arange(12.0))


def test_damaged_parquet_files_are_interop_errors_naming_the_path(
    container: dafstore.Container, workdir: Path
) -> None:
    good = workdir / "good.parquet"
    frame(100).write_parquet(good)
    data = good.read_bytes()
    for name, content in [
        ("truncated.parquet", data[: len(data) // 2]),
        ("random.parquet", bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8))),
        ("footer_length.parquet", data[:-8] + len(data).to_bytes(4, "little") + b"PAR1"),
        ("no_magic.parquet", b"XXXX" + data[4:]),
    ]:
        path = workdir / name
        path.write_bytes(content)
        with pytest.raises(dafstore.InteropError) as e:
            container.import_file("bad", path)
        assert str(path) in str(e.value)
        assert "bad" not in container.ls()
    with pytest.raises(ValueError, match="parquet"):
        container.import_file("bad", good, format="parquett")
