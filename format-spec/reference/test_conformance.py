"""Runs every conformance vector (format-spec/vectors/*/expected.json) through dafreader, and
checks the suite itself: the committed vectors are what generate.py writes, SPEC.md cites exactly
the vectors of each rule, every error class is exercised, and the [R2] snapshot retry works."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import dafreader
from expectations import check

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "format-spec" / "vectors"
SPEC = REPO / "format-spec" / "SPEC.md"


def vector_ids() -> list[str]:
    return sorted(p.parent.name for p in VECTORS.glob("*/expected.json"))


def expected(vid: str) -> dict:
    return json.loads((VECTORS / vid / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("vid", vector_ids())
def test_vector(vid):
    check(expected(vid), VECTORS / vid)


def test_vectors_present():
    assert len(vector_ids()) >= 100


def test_every_error_class_has_a_vector():
    """Except `busy` ([R2]: a replace on every attempt), which static files cannot produce:
    test_snapshot_gives_up_with_busy_after_max_attempts."""
    classes = {expected(v).get("error_class") for v in vector_ids()}
    assert set(dafreader.ERROR_CLASSES) - {"busy"} <= classes


def test_crc32c_check_value():
    assert dafreader.crc32c(b"123456789") == 0xE3069283
    assert dafreader.crc32c(b"") == 0
    assert dafreader.crc32c(b"56789", dafreader.crc32c(b"1234")) == 0xE3069283


def test_committed_vectors_are_generated():
    run = subprocess.run(
        [sys.executable, str(VECTORS / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


def spec_citations() -> dict[str, set[str]]:
    """Rule tag -> vectors cited after it in SPEC.md ("Vectors: `a`, `b`.")."""
    text = SPEC.read_text(encoding="utf-8")
    # A rule is defined where its back-quoted tag is not inside parentheses (those are references).
    defs = [(m.start(), m.group(1)) for m in re.finditer(r"(?<!\()`\[([A-Z]\d+)\]`", text)]
    out: dict[str, set[str]] = {}
    for m in re.finditer(r"Vectors: ((?:`[a-z0-9-]+`(?:,\s+)?)+)\.", text):
        rule = [tag for pos, tag in defs if pos < m.start()][-1]
        out.setdefault(rule, set()).update(re.findall(r"`([a-z0-9-]+)`", m.group(1)))
    return out


def test_spec_cites_exactly_the_vectors_of_each_rule():
    by_rule: dict[str, set[str]] = {}
    for vid in vector_ids():
        for rule in expected(vid)["rules"]:
            by_rule.setdefault(rule, set()).add(vid)
    cited = spec_citations()
    for rule in sorted(set(by_rule) | set(cited)):
        want, got = by_rule.get(rule, set()), cited.get(rule, set())
        assert got == want, (
            f"[{rule}]: SPEC.md cites {sorted(got - want)} that do not list it, "
            f"and misses {sorted(want - got)}"
        )


# ---------------------------------------------------------------------------------------------
# Reader behaviour beyond the vectors.


def write_dense(root: Path, name: str, values: list[float]) -> None:
    """Publishes a float64 1-d array as a writer does ([W3] steps 2-4): unlink the old metadata,
    rename the new data file into place, then the new metadata."""
    data = np.asarray(values, dtype="<f8").tobytes()
    (root / f"{name}.array.new").write_bytes(data)
    (root / f"{name}.yaml.new").write_text(
        f"crc32c:\n  array: {dafreader.crc32c(data)}\ndtype: float64\nshape:\n- {len(values)}\n"
        "version:\n- 1\n- 1\n"
    )
    if (root / f"{name}.yaml").exists():
        (root / f"{name}.yaml").unlink()
    os.rename(root / f"{name}.array.new", root / f"{name}.array")
    os.rename(root / f"{name}.yaml.new", root / f"{name}.yaml")


def test_snapshot_retries_after_a_replace(tmp_path, monkeypatch):
    write_dense(tmp_path, "x", [1.0, 2.0])
    calls = []

    def replace_once():
        calls.append(1)
        if len(calls) == 1:
            write_dense(tmp_path, "x", [7.0, 8.0, 9.0])

    monkeypatch.setattr(dafreader, "_after_open_hook", replace_once)
    a = dafreader.read_array(tmp_path, "x", verify=True)
    assert len(calls) == 2, "the first attempt saw the replace and started again"
    assert a.array.tolist() == [7.0, 8.0, 9.0]


def test_snapshot_gives_up_with_busy_after_max_attempts(tmp_path, monkeypatch):
    write_dense(tmp_path, "x", [1.0, 2.0])
    calls = []

    def replace_always():
        calls.append(1)
        write_dense(tmp_path, "x", [1.0, 2.0])

    monkeypatch.setattr(dafreader, "_after_open_hook", replace_always)
    with pytest.raises(dafreader.FormatError) as e:
        dafreader.read_array(tmp_path, "x")
    assert (e.value.error_class, e.value.rule) == ("busy", "R2")
    assert len(calls) == dafreader.MAX_ATTEMPTS


def test_an_array_removed_while_it_is_read_is_missing(tmp_path, monkeypatch):
    write_dense(tmp_path, "x", [1.0, 2.0])

    def remove():
        (tmp_path / "x.yaml").unlink()
        (tmp_path / "x.array").unlink()

    monkeypatch.setattr(dafreader, "_after_open_hook", remove)
    with pytest.raises(dafreader.FormatError) as e:
        dafreader.read_array(tmp_path, "x")
    assert e.value.error_class == "missing"


def test_a_publish_between_unlink_and_rename_is_waited_for_under_the_shared_stripe(
    tmp_path, monkeypatch
):
    """[R2] and [W3]: between steps 2 (old x.yaml unlinked) and 4 (new x.yaml renamed in) a reader
    of a container sees no x.yaml; it looks again under the shared stripe lock, which the writer
    holds exclusively until step 6, so it reads the new generation, not `missing`."""
    import fcntl

    locks = tmp_path / ".dafstore" / "locks"
    locks.mkdir(parents=True)
    for i in range(64):
        (locks / f"{i:02d}.lock").touch()
    write_dense(tmp_path, "x", [1.0, 2.0])
    stripe = os.open(locks / f"{dafreader.crc32c(b'x') % 64:02d}.lock", os.O_RDONLY)
    fcntl.flock(stripe, fcntl.LOCK_EX)  # the writer, steps 1-6
    (tmp_path / "x.yaml").unlink()  # step 2
    data = np.asarray([5.0, 6.0, 7.0], dtype="<f8").tobytes()
    (tmp_path / "x.array.new").write_bytes(data)
    os.rename(tmp_path / "x.array.new", tmp_path / "x.array")  # step 3

    def finish_publish():  # the reader found no x.yaml and is about to take the stripe
        (tmp_path / "x.yaml.new").write_text("dtype: float64\nshape:\n- 3\nversion:\n- 1\n- 1\n")
        os.rename(tmp_path / "x.yaml.new", tmp_path / "x.yaml")  # step 4
        os.close(stripe)  # step 6 done: the writer releases the stripe

    monkeypatch.setattr(dafreader, "_absent_hook", finish_publish)
    a = dafreader.read_array(tmp_path, "x")
    assert a.array.tolist() == [5.0, 6.0, 7.0]


def test_maps_keep_the_old_generation(tmp_path):
    write_dense(tmp_path, "x", [1.0, 2.0])
    old = dafreader.read_array(tmp_path, "x")
    write_dense(tmp_path, "x", [5.0])
    (tmp_path / "x.yaml").unlink()
    (tmp_path / "x.array").unlink()
    assert old.array.tolist() == [1.0, 2.0]


def test_dense_is_a_read_only_zero_copy_map(tmp_path):
    write_dense(tmp_path, "x", [1.0, 2.0, 3.0])
    a = dafreader.read_array(tmp_path, "x")
    assert isinstance(a.array, np.memmap)
    assert not a.array.flags.writeable
    with pytest.raises(ValueError):
        a.array[0] = 5.0


def test_zero_size_is_not_mapped():
    a = dafreader.read_array(VECTORS / "dense-zero-size-2d", "x")
    assert not isinstance(a.array, np.memmap) and a.array.shape == (3, 0)


def test_sparse_to_dense():
    rows = dafreader.read_array(VECTORS / "sparse-rows", "x")
    assert rows.to_dense().tolist() == [[0, 1.5, 0, -2], [0, 0, 0, 0], [4.25, 0, 0, 0]]
    cols = dafreader.read_array(VECTORS / "sparse-columns", "x")
    assert cols.to_dense().tolist() == [[1, 0, 0, 0], [0, 0, 3, 0], [2, 0, 0, 0]]


@pytest.mark.parametrize(
    "text",
    [
        "shape:\n- 0x3\n",
        "shape:\n- 1_0\n",
        "shape:\n- 1:30\n",
        "shape:\n- !!int 0x3\n",
        "shape:\n- 3e0\n",
        "shape:\n- .inf\n",
    ],
)
def test_only_plain_decimal_integers_are_sizes(text):
    with pytest.raises(dafreader.FormatError) as e:
        dafreader.parse_metadata(("dtype: int8\n" + text + "version:\n- 1\n- 1\n").encode())
    assert e.value.error_class == "invalid_metadata"


@pytest.mark.parametrize("size", ["010", "+2", "00", "1_0"])
def test_leading_zeros_and_signs_are_outside_the_subset(size):
    with pytest.raises(dafreader.FormatError) as e:
        dafreader.parse_metadata(f"dtype: int8\nshape:\n- {size}\nversion:\n- 1\n- 1\n".encode())
    assert (e.value.error_class, e.value.rule) == ("invalid_metadata", "Y6")


def test_metadata_larger_than_64_kib_is_refused():
    text = b"dtype: int8\nshape:\n- 3\nversion:\n- 1\n- 1\n" + b"#" * (64 * 1024)
    with pytest.raises(dafreader.FormatError) as e:
        dafreader.parse_metadata(text)
    assert (e.value.error_class, e.value.rule) == ("invalid_metadata", "Y4")


def test_lone_surrogate_name_is_not_utf8():
    with pytest.raises(dafreader.FormatError) as e:
        dafreader.check_name("x\udcff")
    assert e.value.rule == "N1"


def test_hold_command():
    assert dafreader.hold_command("/c", ["a", "b/c"], ["python3", "s.py"]) == [
        "dafctl",
        "hold",
        "/c",
        "a",
        "b/c",
        "--",
        "python3",
        "s.py",
    ]


def test_a_fifo_in_place_of_an_array_file_is_refused_without_blocking(tmp_path):
    """[N9]: no open can block; a FIFO is refused after a non-blocking open (no vector: git
    cannot store a FIFO)."""
    (tmp_path / "x.yaml").write_text("dtype: int8\nshape:\n- 2\nversion:\n- 1\n- 1\n")
    os.mkfifo(tmp_path / "x.array")
    with pytest.raises(dafreader.FormatError) as e:
        dafreader.read_array(tmp_path, "x")
    assert e.value.error_class == "missing_file" and e.value.rule == "N9"
    assert "FIFO" in str(e.value)
    os.mkfifo(tmp_path / "y.yaml")
    with pytest.raises(dafreader.FormatError) as e:
        dafreader.read_array(tmp_path, "y")
    assert e.value.error_class == "missing_file"


def test_no_link_is_followed_in_a_directory_component(tmp_path):
    """[N7]: a directory link is refused even when it points inside the container."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.yaml").write_text("dtype: int8\nshape:\n- 1\nversion:\n- 1\n- 1\n")
    (tmp_path / "real" / "x.array").write_bytes(b"\x01")
    assert dafreader.read_array(tmp_path, "real/x").array.tolist() == [1]
    (tmp_path / "d").symlink_to("real")
    with pytest.raises(dafreader.FormatError) as e:
        dafreader.read_array(tmp_path, "d/x")
    assert e.value.rule == "N7" and "symbolic link" in str(e.value)


def _subset_documents() -> list[tuple[str, str]]:
    """(vector, text) of every metadata or container file of the vectors inside the subset."""
    out = []
    for vid in vector_ids():
        for p in sorted((VECTORS / vid).rglob("*.yaml")):
            if p.is_symlink() or not p.is_file():
                continue
            try:
                text = p.read_bytes().decode("utf-8")
                dafreader.parse_subset(text)
            except Exception:
                continue
            out.append((f"{vid}/{p.relative_to(VECTORS / vid)}", text))
    return out


def _plain(v):
    """parse_subset's value with decimal fractions made floats, for comparison."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def test_every_subset_document_of_the_vectors_means_the_same_in_yaml_1_1_and_1_2():
    """SPEC 5.1.1: PyYAML (YAML 1.1) and ruamel.yaml (YAML 1.2) load every document the reader
    accepts to the same values, and so does parse_subset (decimal fractions aside: their value is
    never needed, parse_subset does not compute it)."""
    ruamel = pytest.importorskip("ruamel.yaml")
    docs = _subset_documents()
    assert len(docs) > 150
    y12 = ruamel.YAML(typ="safe", pure=True)
    for where, text in docs:
        a = yaml.safe_load(text)
        b = y12.load(text)
        assert a == b, f"{where}: YAML 1.1 {a!r} != YAML 1.2 {b!r}"
        mine = dafreader.parse_subset(text)

        def same(x, y):
            if x is dafreader._FLOAT:
                return isinstance(y, float)
            if isinstance(x, dict):
                return isinstance(y, dict) and x.keys() == y.keys() and all(
                    same(x[k], y[k]) for k in x
                )
            if isinstance(x, list):
                return isinstance(y, list) and len(x) == len(y) and all(map(same, x, y))
            return type(x) is type(y) and x == y

        assert same(mine, a), f"{where}: parse_subset {mine!r} != {a!r}"


# ---------------------------------------------------------------------------------------------
# Tables: the type grammar of SPEC [G1] is pyarrow's str(type), form by form.


def _grammar_types():
    import pyarrow as pa

    f = pa.field
    return [
        pa.null(), pa.bool_(), pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(),
        pa.uint16(), pa.uint32(), pa.uint64(), pa.float16(), pa.float32(), pa.float64(),
        pa.decimal128(1, 0), pa.decimal128(38, -3), pa.decimal256(76, 10), pa.date32(),
        pa.date64(), pa.time32("s"), pa.time32("ms"), pa.time64("us"), pa.time64("ns"),
        *(pa.timestamp(u) for u in ("s", "ms", "us", "ns")),
        pa.timestamp("us", tz="UTC"), pa.timestamp("ns", tz="Europe/Paris"),
        pa.timestamp("ms", tz="+01:00"), *(pa.duration(u) for u in ("s", "ms", "us", "ns")),
        pa.string(), pa.large_string(), pa.string_view(), pa.binary(), pa.large_binary(),
        pa.binary_view(), pa.binary(0), pa.binary(16),
        pa.dictionary(pa.int32(), pa.string()), pa.dictionary(pa.uint8(), pa.large_string(), True),
        pa.dictionary(pa.int64(), pa.list_(pa.string_view())),
        pa.list_(pa.int64()), pa.list_(f("x", pa.int32(), nullable=False)),
        pa.large_list(pa.float32()), pa.list_(pa.int8(), 3), pa.list_(pa.bool_(), 0),
        pa.struct([]), pa.struct([("a", pa.int32()), ("b w", pa.list_(pa.string()))]),
        pa.struct([f("k", pa.int16(), nullable=False), ("d", pa.dictionary(pa.int8(), pa.string()))]),
        pa.list_(pa.struct([("a", pa.large_list(pa.timestamp("ns", tz="UTC")))])),
    ]


def test_the_grammar_renders_every_form_as_pyarrow_prints_it():
    for t in _grammar_types():
        assert dafreader.render_type(t) == str(t), t
        dafreader.parse_type(str(t))  # and the grammar accepts it


def test_types_outside_the_grammar_render_as_nothing_and_do_not_parse():
    import pyarrow as pa

    outside = [pa.map_(pa.string(), pa.int32()), pa.month_day_nano_interval(),
               pa.list_view(pa.int32()), pa.decimal32(5, 2), pa.decimal64(12, 3),
               pa.run_end_encoded(pa.int32(), pa.string()),
               pa.dense_union([pa.field("a", pa.int32())]), pa.list_(pa.decimal32(3, 1))]
    for t in outside:
        assert dafreader.render_type(t) is None, t
        with pytest.raises(dafreader._GrammarError):
            dafreader.parse_type(str(t))
    for text in ("float64", "timestamp[us,tz=UTC]", "decimal128(39, 2)", "int", "list<int64>",
                 "dictionary<values=string, indices=float, ordered=0>", "bool ", "fixed_size_binary[01]"):
        with pytest.raises(dafreader._GrammarError):
            dafreader.parse_type(text)
