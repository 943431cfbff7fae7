"""Every error path raises the documented exception: a DafstoreError subclass that is also the
matching built-in exception, carrying the engine's message (which names the path or array)."""

from __future__ import annotations

import errno
import gc
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import dafstore
from dafstore import _errors


def test_every_class_derives_from_the_base_and_its_builtin() -> None:
    expected = {
        "ArrayNotFoundError": (FileNotFoundError, KeyError),
        "NotAContainerError": FileNotFoundError,
        "DafstoreFileNotFoundError": FileNotFoundError,
        "ContainerExistsError": FileExistsError,
        "NameConflictError": FileExistsError,
        "InvalidNameError": ValueError,
        "InvalidArrayError": ValueError,
        "UnsupportedDtypeError": TypeError,
        "KindMismatchError": TypeError,
        "DtypeMismatchError": TypeError,
        "ReadOnlyError": PermissionError,
        "DafstorePermissionError": PermissionError,
        "NotHeldError": RuntimeError,
        "LoadTimeoutError": TimeoutError,
        "ContainerClosedError": ValueError,
        "NoSpaceError": OSError,
        "CapacityError": (OSError, dafstore.NoSpaceError),
        "CorruptArrayError": OSError,
        "UnsupportedVersionError": OSError,
        "UnsupportedFileSystemError": OSError,
        "CatalogError": OSError,
        "InteropError": ValueError,
        "DafstoreOSError": OSError,
    }
    assert set(expected) | {"DafstoreError"} == set(_errors.__all__)
    for name, builtins in expected.items():
        cls = getattr(dafstore, name)
        assert issubclass(cls, dafstore.DafstoreError), name
        for builtin in builtins if isinstance(builtins, tuple) else (builtins,):
            assert issubclass(cls, builtin), (name, builtin)
    # Only the not-found error is a KeyError (the mapping interface's missing key).
    assert [n for n in _errors.__all__ if issubclass(getattr(_errors, n), KeyError)] == [
        "ArrayNotFoundError"
    ]


def test_container_errors(workdir: Path) -> None:
    with pytest.raises(dafstore.NotAContainerError, match="cannot open container") as e:
        dafstore.open(workdir / "missing")
    assert isinstance(e.value, FileNotFoundError)
    (workdir / "plain").mkdir()
    with pytest.raises(dafstore.NotAContainerError, match="is not a dafstore container") as e:
        dafstore.open(workdir / "plain")
    # The engine's remedy is given as the Python call; adopting a daf directory has none.
    assert e.value.remedy == "create_or_adopt"
    assert "`dafstore.create(path)` makes a container" in str(e.value)
    assert "dafctl init" not in str(e.value) and "`dafctl adopt DIR`" in str(e.value)
    dafstore.create(workdir / "c")
    with pytest.raises(dafstore.ContainerExistsError, match="already a dafstore container"):
        dafstore.create(workdir / "c")
    yaml = workdir / "c" / ".dafstore" / "container.yaml"
    yaml.write_text("format: dafstore\nversion:\n- 9\n- 0\n")
    with pytest.raises(dafstore.UnsupportedVersionError, match="upgrade dafstore"):
        dafstore.open(workdir / "c", read_only=True)
    yaml.write_text("format: other\n")
    with pytest.raises(dafstore.CorruptArrayError, match="invalid metadata"):
        dafstore.open(workdir / "c", read_only=True)


def test_array_not_found(container: dafstore.Container) -> None:
    for call in (
        lambda: container.open("nope"),
        lambda: container.open("nope", "r+"),
        lambda: container.open("nope", "c"),
        lambda: container.open_sparse("nope"),
        lambda: container.open_arrow("nope"),
        lambda: container.info("nope"),
        lambda: container.remove("nope"),
        lambda: container.hold("nope"),
        lambda: container.retain("nope"),
        lambda: container.set_scratch("nope"),
        lambda: container.kind("nope"),
        lambda: container._map_address("nope"),
    ):
        with pytest.raises(dafstore.ArrayNotFoundError, match='no array named "nope"') as e:
            call()
        assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, KeyError)
        # str() is the message (an OSError's), not a KeyError's repr of it.
        assert str(e.value) == e.value.args[0] and not str(e.value).startswith("'")
    with pytest.raises(KeyError):
        container.open("nope")
    with pytest.raises(dafstore.ArrayNotFoundError) as e:
        container.open("nope")
    assert str(e.value).endswith("; `c.ls()` lists the arrays"), str(e.value)
    assert e.value.remedy == "list" and "dafctl" not in str(e.value)


@pytest.mark.parametrize("name", ["", "../x", "a//b", ".hidden", "a/./b", "x\\y", "a/"])
def test_invalid_names(container: dafstore.Container, name: str) -> None:
    with pytest.raises(dafstore.InvalidNameError, match="invalid array name") as e:
        container.write(name, np.zeros(1))
    assert isinstance(e.value, ValueError)
    with pytest.raises(dafstore.InvalidNameError):
        container.open(name)
    with pytest.raises(dafstore.InvalidNameError):
        container.create(name, (1,), "int8")


def test_kind_mismatch(container: dafstore.Container, workdir: Path) -> None:
    container.write("d", np.zeros(3))
    container.write_sparse("s", sp.eye(3, format="csr"))
    for call in (
        lambda: container.open("s"),
        lambda: container.open("s", "r+"),
        lambda: container.open("s", "c"),
        lambda: container.open_arrow("s"),
        lambda: container.open_sparse("d"),
        lambda: container.export("s", workdir / "s.npy"),
    ):
        with pytest.raises(dafstore.KindMismatchError) as e:
            call()
        assert isinstance(e.value, TypeError)


@pytest.mark.parametrize(
    "bad", [np.zeros(2, np.complex64), np.array(["a"]), np.array([object()]),
            np.zeros(2, "datetime64[s]"), np.zeros(2, np.longdouble)]
)
def test_unsupported_dtypes(container: dafstore.Container, bad: np.ndarray) -> None:
    with pytest.raises(dafstore.UnsupportedDtypeError, match="not stored by dafstore") as e:
        container.write("x", bad)
    assert isinstance(e.value, TypeError)


def test_unsupported_dtype_spellings(container: dafstore.Container) -> None:
    for dt in ("complex64", "object", "U3"):
        with pytest.raises(dafstore.UnsupportedDtypeError):
            container.create("x", (2,), dt)
    with pytest.raises(dafstore.UnsupportedDtypeError):
        container.create("x", (2,), "not a dtype")
    with pytest.raises(dafstore.UnsupportedDtypeError):
        container.write_sparse("x", sp.eye(2, format="csr", dtype=np.complex128))
    container.write("h", np.zeros(2, np.float16))
    half = sp.eye(2, format="csr", dtype=np.float32)
    half.data = half.data.astype(np.float16)  # scipy cannot make one, other writers can
    container.write_sparse("hs", half)
    assert container.open_sparse_arrays("hs").data.dtype == np.float16
    with pytest.raises(dafstore.UnsupportedDtypeError, match="scipy.sparse does not support"):
        container.open_sparse("hs")


def test_invalid_arrays(container: dafstore.Container) -> None:
    bad = sp.csr_matrix((np.array([1.0]), np.array([7]), np.array([0, 1, 1])), shape=(2, 3))
    with pytest.raises(dafstore.InvalidArrayError, match="out of range") as e:
        container.write_sparse("m", bad)
    assert isinstance(e.value, ValueError)
    assert "m" not in container
    with pytest.raises(dafstore.InvalidArrayError, match="bool element"):
        container.write("b", np.array([0, 2], np.uint8).view(bool))
    with pytest.raises(dafstore.InvalidArrayError, match="bool element"):
        with container.create("b", (2,), "bool") as a:
            a.view(np.uint8)[0] = 7
    assert "b" not in container and not a.flags.writeable
    for shape in ((-1,), (2.5,), ("x",), (2**40, 2**40)):
        with pytest.raises(dafstore.InvalidArrayError):
            container.create("x", shape, "float64")


def test_dtype_mismatch(container: dafstore.Container) -> None:
    container.write("x", np.zeros(2, np.int64))
    with pytest.raises(dafstore.DtypeMismatchError, match="holds int64, not uint64") as e:
        container.open("x", dtype="uint64")
    assert isinstance(e.value, TypeError)


def test_read_only(container: dafstore.Container) -> None:
    container.write("x", np.zeros(2))
    ro = dafstore.open(container.path, read_only=True)
    for call in (
        lambda: ro.write("y", np.zeros(2)),
        lambda: ro.write_sparse("y", sp.eye(2, format="csr")),
        lambda: ro.create("y", (2,), "int8"),
        lambda: ro.remove("x"),
        lambda: ro.open("x", "r+"),
        lambda: ro.set_scratch("x"),
    ):
        with pytest.raises(dafstore.ReadOnlyError, match="read-only") as e:
            call()
        assert isinstance(e.value, PermissionError)


def test_not_held(container: dafstore.Container) -> None:
    container.write("x", np.zeros(2))
    with pytest.raises(dafstore.NotHeldError, match="holds no reference") as e:
        container.release("x")
    assert isinstance(e.value, RuntimeError)


def test_name_conflict(container: dafstore.Container) -> None:
    Path(container.path, "d").write_text("not a directory")
    with pytest.raises(dafstore.NameConflictError, match="collides") as e:
        container.write("d/x", np.zeros(2))
    assert isinstance(e.value, FileExistsError)


def test_corrupt_array(container: dafstore.Container) -> None:
    container.write("x", np.zeros(4))
    gc.collect()
    os.truncate(Path(container.path, "x.array"), 8)
    with pytest.raises(dafstore.CorruptArrayError, match="truncated or changed outside") as e:
        container.open("x")
    assert isinstance(e.value, OSError)
    assert str(e.value).endswith("; `c.fsck()` reports what is wrong") and "dafctl" not in str(e.value)
    assert e.value.remedy == "check"
    container.write("y", np.zeros(4))
    gc.collect()
    target = Path(container.path, "y.array")
    target.unlink()
    target.symlink_to("/etc/hostname")
    with pytest.raises(dafstore.CorruptArrayError, match="not a regular file"):
        container.open("y")


def test_closed(container: dafstore.Container) -> None:
    container.close()
    with pytest.raises(dafstore.ContainerClosedError, match="is closed") as e:
        container.open("x")
    assert isinstance(e.value, ValueError)


def test_bad_mode_and_bad_arguments(container: dafstore.Container) -> None:
    container.write("x", np.zeros(2))
    with pytest.raises(ValueError, match="mode 'w'"):
        container.open("x", "w")
    with pytest.raises(TypeError):
        dafstore.Container(object())


def test_interop_errors(container: dafstore.Container, workdir: Path) -> None:
    (workdir / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(dafstore.InteropError, match="not a valid npy file") as e:
        container.import_file("x", workdir / "bad.npy")
    assert isinstance(e.value, ValueError)
    with pytest.raises(dafstore.InteropError, match="cannot tell the file format"):
        container.import_file("x", workdir / "file.txt")
    with pytest.raises(dafstore.DafstoreFileNotFoundError) as nf:
        container.import_file("x", workdir / "missing.npy")
    assert nf.value.errno == errno.ENOENT
    with pytest.raises(dafstore.InteropError, match="unknown format"):
        container.export("x", workdir / "x.bin", format="xlsx")
    np.save(workdir / "c.npy", np.zeros(2, np.complex64))
    with pytest.raises(dafstore.UnsupportedDtypeError):
        container.import_file("x", workdir / "c.npy")


def _mount_tiny_tmpfs(where: Path) -> bool:
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                       capture_output=True)
    return r.returncode == 0


def test_no_space_is_an_error_at_create_not_a_crash(workdir: Path) -> None:
    mnt = workdir / "tiny"
    if os.geteuid() != 0 or not _mount_tiny_tmpfs(mnt):
        pytest.skip("needs root to mount a 1 MiB tmpfs")
    try:
        c = dafstore.create(mnt / "c")
        with pytest.raises(dafstore.NoSpaceError, match="no space left") as e:
            c.create("big", (4 << 20,), "uint8")
        assert e.value.errno == errno.ENOSPC and isinstance(e.value, OSError)
        assert "remove arrays with `c.remove(name)`" in str(e.value), str(e.value)
        assert "dafctl" not in str(e.value)
        with pytest.raises(dafstore.NoSpaceError):
            c.write("big", np.zeros(4 << 20, np.uint8))
        c.close()
        del c
        gc.collect()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_operating_system_errors_carry_errno(workdir: Path) -> None:
    (workdir / "file").write_text("not a directory")
    for call in (
        lambda: dafstore.create(workdir / "file" / "c"),
        lambda: dafstore.open(workdir / "file" / "c"),
    ):
        with pytest.raises(dafstore.DafstoreOSError, match="Not a directory") as e:
            call()
        assert isinstance(e.value, OSError) and e.value.errno == errno.ENOTDIR


def test_a_damaged_catalog_is_a_catalog_error(workdir: Path) -> None:
    c = dafstore.create(workdir / "c")
    c.write("x", np.zeros(3))
    c.close()
    del c
    gc.collect()
    catalog = workdir / "c" / ".dafstore" / "catalog.sqlite"
    for extra in catalog.parent.glob("catalog.sqlite-*"):  # -wal, -shm
        extra.unlink()
    catalog.write_bytes(b"not a database" * 1000)
    with pytest.raises(dafstore.CatalogError, match="catalog.sqlite") as e:
        dafstore.open(workdir / "c")
    # Rebuilding the catalog has no Python call (it needs the container closed everywhere, and a
    # Python handle is an open one): the remedy names the command for that part.
    assert isinstance(e.value, OSError) and e.value.remedy == "repair"
    assert "repair the container" in str(e.value) and "`dafctl fsck --repair DIR`" in str(e.value)


# Every remedy the engine names (dafstore::Remedy), as the extension passes it, and the Python
# call a user reads at the end of the message (also those no test here can provoke, such as a full
# catalog).
REMEDIES = [
    ("check", "`c.fsck()` reports what is wrong"),
    ("repair", "`c.fsck(repair=True)` repairs what it can"),
    ("free_space", "remove arrays with `c.remove(name)`"),
    ("list", "`c.ls()` lists the arrays"),
    ("create_or_adopt", "`dafstore.create(path)` makes a container"),
    ("open_read_only", "open it with `dafstore.open(path, read_only=True)`"),
]


@pytest.mark.parametrize("remedy, python", REMEDIES)
def test_the_engine_remedy_is_given_as_the_python_call(remedy: str, python: str) -> None:
    message = "catalog /c/.dafstore/catalog.sqlite: begin: database is locked"
    for cls in (dafstore.CatalogError, dafstore.NoSpaceError, dafstore.DafstoreError):
        e = cls(message, remedy=remedy)
        assert str(e).startswith(message + "; ") and python in str(e), str(e)
        assert e.remedy == remedy and e.args == (str(e),)
    # Without a remedy the message is the engine's, unchanged.
    assert str(dafstore.CatalogError(message)) == message
    assert dafstore.CatalogError(message).remedy is None


PERMISSION = textwrap.dedent(
    """
    import errno, os, sys
    import dafstore

    os.makedirs(sys.argv[1], mode=0o555)
    try:
        dafstore.create(os.path.join(sys.argv[1], "c"))
    except dafstore.DafstorePermissionError as e:
        assert isinstance(e, PermissionError) and e.errno == errno.EACCES, e
        print("ok", e)
    """
)


def test_an_os_refusal_is_a_permission_error(workdir: Path) -> None:
    script = workdir / "permission.py"
    script.write_text(PERMISSION)
    # Root would be let through: drop every capability (CAP_DAC_OVERRIDE...) first.
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv to drop capabilities")
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
    r = subprocess.run([*prefix, sys.executable, str(script), str(workdir / "ro")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.stdout, r.stderr)
    assert "Permission denied" in r.stdout
