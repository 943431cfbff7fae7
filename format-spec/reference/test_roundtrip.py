"""Rust -> Python round trip: arrays written by the engine (`dafstore-write-fixtures`, a binary of
the dafstore-tests crate) are read by dafreader and compared value by value with the
`fixtures.json` the writer produces (same format as a vector's expected.json).

The writer is `$DAFSTORE_FIXTURE_WRITER`, else `<target>/debug/dafstore-write-fixtures` with
<target> = `$CARGO_TARGET_DIR` or `<repo>/target`. Build it with
`cargo build -p dafstore-tests --bins`. `dafctl` (for the `dafctl hold` test) is `$DAFCTL`, else
`<target>/debug/dafctl`; that test is skipped when it is not built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dafreader
from expectations import check

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
if not TARGET.is_absolute():
    TARGET = REPO / TARGET


def tool(env_var: str, name: str) -> Path:
    return Path(os.environ.get(env_var) or TARGET / "debug" / name)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    writer = tool("DAFSTORE_FIXTURE_WRITER", "dafstore-write-fixtures")
    if not writer.is_file():
        pytest.fail(
            f"{writer} not found: run `cargo build -p dafstore-tests --bins` or set "
            "DAFSTORE_FIXTURE_WRITER"
        )
    out = tmp_path_factory.mktemp("fixtures")
    subprocess.run([str(writer), str(out)], check=True)
    doc = json.loads((out / "fixtures.json").read_text(encoding="utf-8"))
    return out / doc["container"], doc["arrays"]


def test_writer_covers_the_shapes(fixtures):
    _, arrays = fixtures
    dense = [a for a in arrays if a["kind"] == "dense"]
    sparse = [a for a in arrays if a["kind"] == "sparse"]
    assert {a["dtype"] for a in dense} == set(dafreader.DTYPES)
    assert any(a["shape"] == [] for a in dense)
    assert any(0 in a["shape"] for a in dense)
    assert any(len(a["shape"]) >= 3 for a in dense)
    assert {a["layout"] for a in sparse} == {"rows", "columns"}
    assert any(a["nnz"] == 0 for a in sparse)


def test_every_engine_written_array(fixtures):
    root, arrays = fixtures
    for exp in arrays:
        try:
            assert check(exp, root) == "ok"
        except AssertionError as e:
            raise AssertionError(f"{exp['name']}: {e}") from None


def test_engine_writes_pyyaml_style_metadata(fixtures):
    root, _ = fixtures
    text = (root / "shapes" / "two_d.yaml").read_text()
    crc = dafreader.read_array(root, "shapes/two_d").crc32c["array"]
    assert (
        text == f"crc32c:\n  array: {crc}\ndtype: float64\nshape:\n- 2\n- 3\nversion:\n- 1\n- 1\n"
    )


def test_dafctl_hold_runs_a_python_reader(fixtures):
    """The documented way for a Python process to take part in reference counting ([R4])."""
    root, _ = fixtures
    dafctl = tool("DAFCTL", "dafctl")
    if not dafctl.is_file():
        pytest.skip(f"{dafctl} not built")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import dafreader
        a = dafreader.read_array({str(root)!r}, "sparse/rows", verify=True)
        print("read", a.nnz)
    """)
    argv = dafreader.hold_command(
        root, ["sparse/rows", "a/b/c"], [sys.executable, "-c", script], dafctl=str(dafctl)
    )
    run = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["held sparse/rows a/b/c", "read 3"]


def test_the_reference_key_is_the_spec_example():
    assert dafreader.reference_key("date/2026-01-02") == 0xE2F0B1F1952DBD01
    assert dafreader.reference_key("date/2026-01-02").to_bytes(8, "little").hex(" ") == (
        "01 bd 2d 95 f1 b1 f0 e2"
    )


def test_a_held_name_is_a_record_in_the_holders_session_file(fixtures):
    """What `dafctl hold` holds is in its session file as [P3] says: a reader in another language
    can see (and take) references without the catalog."""
    root, _ = fixtures
    dafctl = tool("DAFCTL", "dafctl")
    if not dafctl.is_file():
        pytest.skip(f"{dafctl} not built")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import dafreader
        keys = [k for recs in dafreader.session_references({str(root)!r}).values() for k, _ in recs]
        print(sorted(keys) == sorted([dafreader.reference_key("sparse/rows"),
                                      dafreader.reference_key("a/b/c")]))
    """)
    argv = dafreader.hold_command(
        root, ["sparse/rows", "a/b/c"], [sys.executable, "-c", script], dafctl=str(dafctl)
    )
    run = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["held sparse/rows a/b/c", "True"]
    after = [k for recs in dafreader.session_references(root).values() for k, _ in recs]
    assert after == [], "the holder's records went with its session"


def test_run_held_reexecutes_under_dafctl_hold(fixtures, tmp_path):
    """`run_held` at the top of a script: the script runs again under `dafctl hold`."""
    root, _ = fixtures
    dafctl = tool("DAFCTL", "dafctl")
    if not dafctl.is_file():
        pytest.skip(f"{dafctl} not built")
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import dafreader
        print("start")
        dafreader.run_held({str(root)!r}, ["a/b/c"], dafctl={str(dafctl)!r})
        print("value", int(dafreader.read_array({str(root)!r}, "a/b/c").array[0]))
    """)
    )
    env = {k: v for k, v in os.environ.items() if k != "DAFREADER_HELD"}
    run = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["start", "held a/b/c", "start", "value 42"]
