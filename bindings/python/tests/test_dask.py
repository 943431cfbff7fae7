"""dafstore.dask with the real dask and distributed: a LocalCluster of 2 worker processes (one per
module), whose tasks open the container themselves and map what they read."""

from __future__ import annotations

import gc
import logging
import os
import pickle
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")
cloudpickle = pytest.importorskip("cloudpickle")

import dafstore  # noqa: E402
import dafstore.dask as ddask  # noqa: E402

# The workers cannot import this file: its functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_one_handle_per_process_and_a_forked_child_opens_its_own(workdir: Path) -> None:
    # First in the file: it forks before the cluster's threads exist.
    path = str(workdir / "c")
    dafstore.create(path).write("x", np.arange(10.0))
    c = ddask.container(path)
    assert ddask.container(workdir / "c") is c  # one per path, however it is spelled
    x = c.open("x")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: reports through the pipe, exits without running pytest's code
        ok = False
        try:
            mine = ddask.container(path)
            y = mine.open("x")
            me = [hd for hd in mine.holders() if hd.pid == os.getpid()]
            ok = mine is not c and float(y.sum()) == 45.0 and len(me) == 1 and any(
                a.name == "x" for a in me[0].arrays)
        finally:
            os.write(w, b"1" if ok else b"0")
            os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    assert got == b"1"
    assert ddask.container(path) is c and float(x.sum()) == 45.0


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as cl:
        yield cl


def poll(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Whether ``cond()`` becomes true within ``timeout`` seconds (a bounded poll)."""
    end = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.05)


def files_named(root: Path, token: str) -> list[Path]:
    return [p for p in root.rglob("*") if token in p.name]


def dense_probe(block: np.ndarray, path: str, name: str) -> tuple[int, bool, bool]:
    """In the worker: (pid, the block is a view, its bytes lie inside this process's map)."""
    c = ddask.container(path)
    start = c._map_address(name)
    end = start + c.info(name).bytes
    ptr = block.__array_interface__["data"][0]
    view = block.base is not None and not block.flags.owndata
    return os.getpid(), view, start <= ptr and ptr + block.nbytes <= end


def test_dense_chunks_are_views_of_the_map(client: Any, workdir: Path) -> None:
    path = str(workdir / "c")
    c = dafstore.create(path)
    x = np.random.default_rng(0).random((1000, 300))
    c.write("x", x)
    a = ddask.from_container(path, "x", chunks=(125, 300))
    assert a.chunks == ((125,) * 8, (300,))
    assert np.isclose(a.sum().compute(), x.sum(), rtol=1e-12)
    np.testing.assert_array_equal(a[::7, 3].compute(), x[::7, 3])
    # Deterministic keys: the same path, name and generation make the same graph.
    assert ddask.from_container(path, "x", chunks=(125, 300)).name == a.name

    probes = [dask.delayed(dense_probe)(b, path, "x") for b in a.to_delayed().ravel()]
    got = dask.compute(*probes)
    assert all(view and inside for _, view, inside in got), got
    worker_pids = set(client.run(os.getpid).values())
    assert {pid for pid, _, _ in got} <= worker_pids
    assert len({pid for pid, _, _ in got}) >= 2, got  # both workers served chunks

    # Published again: a new generation, a new graph; the old one refuses to mix generations.
    c.write("x", x + 1)
    b = ddask.from_container(path, "x", chunks=(125, 300))
    assert b.name != a.name
    assert np.isclose(b.sum().compute(), (x + 1).sum(), rtol=1e-12)
    with pytest.raises(dafstore.DafstoreError, match="published again"):
        a.sum().compute()


def sparse_probe(block: Any, path: str, name: str) -> bool:
    """In the worker: the block's data and indices are slices of the maps."""
    parts = ddask.container(path).open_sparse_arrays(name)

    def inside(a: np.ndarray, whole: np.ndarray) -> bool:
        p, w = a.__array_interface__["data"][0], whole.__array_interface__["data"][0]
        return w <= p and p + a.nbytes <= w + whole.nbytes

    return inside(block.data, parts.data) and inside(block.indices, parts.indices)


def test_sparse_row_blocks(client: Any, workdir: Path) -> None:
    sp = pytest.importorskip("scipy.sparse")
    path = str(workdir / "c")
    c = dafstore.create(path)
    m = sp.random(1000, 200, density=0.05, format="csr", random_state=1)
    c.write_sparse("m", m)
    s = ddask.from_container(path, "m", chunks=300)
    assert s.chunks == ((300, 300, 300, 100), (200,))
    blocks = dask.compute(*s.to_delayed().ravel())
    assert len(blocks) == 4
    for i, b in enumerate(blocks):
        want = m[i * 300:(i + 1) * 300]
        assert sp.isspmatrix_csr(b) and b.shape == want.shape
        assert (b != want).nnz == 0
    assert all(dask.compute(*[dask.delayed(sparse_probe)(b, path, "m")
                              for b in s.to_delayed().ravel()]))
    whole = s.compute()  # dask concatenates the blocks with scipy
    assert whole.shape == m.shape and (whole != m).nnz == 0


def test_table_as_dataframe(client: Any, workdir: Path) -> None:
    pl = pytest.importorskip("polars")
    import pandas as pd

    path = str(workdir / "c")
    c = dafstore.create(path)
    n = 1000
    rng = np.random.default_rng(3)
    df = pl.DataFrame({"i": np.arange(n), "f": rng.random(n), "s": [f"r{i % 17}" for i in range(n)]})
    c.write_table("t", df)
    ddf = ddask.from_container(path, "t", chunks=300)
    assert ddf.npartitions == 4
    got = ddf.compute()
    want = c.open_table("t").to_pandas()
    assert list(got.columns) == ["i", "f", "s"]
    assert got.index.equals(pd.RangeIndex(n))
    np.testing.assert_array_equal(got["i"].to_numpy(), want["i"].to_numpy())
    np.testing.assert_array_equal(got["f"].to_numpy(), want["f"].to_numpy())
    assert got["s"].astype(str).tolist() == want["s"].astype(str).tolist()
    assert np.isclose(ddf["f"].sum().compute(), df["f"].sum(), rtol=1e-12)
    assert ddf.loc[450:460].compute()["i"].tolist() == list(range(450, 461))

    # arrow=True: pyarrow-backed columns; the numeric ones keep the mapped buffers.
    adf = ddask.from_container(path, "t", chunks=300, arrow=True)
    got = adf.compute()
    assert str(got["f"].dtype) == "double[pyarrow]"
    np.testing.assert_array_equal(got["f"].to_numpy(), want["f"].to_numpy())
    assert got["s"].astype(str).tolist() == want["s"].astype(str).tolist()
    assert all(dask.compute(*[dask.delayed(arrow_probe)(p, path, "t") for p in adf.to_delayed()]))


def arrow_probe(df: Any, path: str, name: str) -> bool:
    """In the worker: the partition's "f" column is a slice of the mapped table's buffer."""
    whole = ddask.container(path).open_table(name).column("f").chunks[0].buffers()[1]
    part = df["f"].array.__arrow_array__()
    buf = part.chunks[0].buffers()[1]
    return whole.address <= buf.address and buf.address + buf.size <= whole.address + whole.size


def share_task(h: Any, i: int) -> tuple[int, float, bool]:
    x = h.get()
    return os.getpid(), float(x[i::8].sum()), x.base is not None and not x.flags.owndata


def test_share_64_mib_with_8_tasks(client: Any, workdir: Path) -> None:
    path = workdir / "share"
    x = np.random.default_rng(2).random(8 * 2**20)  # 64 MiB
    h = ddask.share(x, path)
    c = ddask.container(path)
    assert h.kind == "dense" and h.owner and h.name in c.ls()
    assert files_named(path, h.name.rsplit("/", 1)[-1])
    # A copy owns nothing: dropping it releases nothing.
    copy = pickle.loads(pickle.dumps(h))
    assert not copy.owner
    copy.close()
    del copy
    gc.collect()
    assert c.local_refs(h.name) == 1 and h.name in c.ls()

    futs = client.map(share_task, [h] * 8, range(8), pure=False)
    got = client.gather(futs)
    for i, (_, total, view) in enumerate(got):
        assert view
        assert np.isclose(total, x[i::8].sum(), rtol=1e-12)
    # The copies the workers unpickled and dropped released nothing.
    assert h.name in c.ls()
    del futs, got

    h.close()
    assert not h.owner
    token = h.name.rsplit("/", 1)[-1]
    assert poll(lambda: h.name not in c.ls() and not files_named(path, token)), c.info_all()


def test_share_with_block_and_tables(client: Any, workdir: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    sp = pytest.importorskip("scipy.sparse")
    path = workdir / "share"
    t = pa.table({"a": np.arange(10), "b": [str(i) for i in range(10)]})
    m = sp.random(50, 20, density=0.2, format="coo", random_state=4)
    with ddask.share(t, path) as ht, ddask.share(m, path) as hm:
        assert (ht.kind, hm.kind) == ("table", "sparse")
        rows = client.submit(lambda h: h.get().num_rows, ht).result()
        sums = client.submit(lambda h: float(h.get().sum()), hm).result()
        assert rows == 10 and np.isclose(sums, m.sum())
    c = ddask.container(path)
    assert poll(lambda: ht.name not in c.ls() and hm.name not in c.ls()), c.ls()
    # The owner's garbage collection releases its hold too.
    h = ddask.share(np.ones(5), path)
    name = h.name
    assert name in c.ls()
    del h
    gc.collect()
    assert poll(lambda: name not in c.ls()), c.ls()


def test_plugin_opens_and_closes(client: Any, workdir: Path) -> None:
    path = str(workdir / "p")
    dafstore.create(path).close()
    key = os.path.realpath(path)
    ddask.register(client, path)
    opened = client.run(lambda: key in ddask._containers)
    assert len(opened) == 2 and all(opened.values()), opened
    client.unregister_worker_plugin(f"dafstore:{key}")
    closed = client.run(lambda: key not in ddask._containers)
    assert all(closed.values()), closed


def get_value(h: Any) -> Any:
    return h.get()


def test_killed_worker_leaks_nothing(client: Any, workdir: Path) -> None:
    path = workdir / "share"
    x = np.random.default_rng(5).random(2**20)
    h = ddask.share(x, path)
    c = ddask.container(path)
    addr, pid = next(iter(client.run(os.getpid).items()))
    # The result, a view, stays in that worker; once it dies, Dask may recompute it elsewhere.
    fut = client.submit(get_value, h, workers=[addr], allow_other_workers=True, pure=False)
    distributed.wait(fut)
    assert any(hd.pid == pid and any(a.name == h.name for a in hd.arrays)
               for hd in c.holders()), c.holders()

    os.kill(pid, signal.SIGKILL)

    def reaped() -> bool:
        c.gc()
        hs = c.holders()
        return not any(hd.pid == pid for hd in hs) and all(hd.alive for hd in hs)

    assert poll(reaped), c.holders()
    # Dask recomputes the lost result on a worker still alive: right values.
    np.testing.assert_array_equal(fut.result(timeout=60), x)
    del fut
    h.close()
    token = h.name.rsplit("/", 1)[-1]
    assert poll(lambda: h.name not in c.ls() and not files_named(path, token)), c.holders()
    client.wait_for_workers(2, timeout=60)


def staged_files(container_path: Path) -> list[Path]:
    return [p for p in (container_path / ".dafstore" / "staging").rglob("*") if p.is_file()]


def test_to_container_fills_one_array_from_the_workers_and_publishes_it_once(
    client: Any, workdir: Path
) -> None:
    import dask.array as da

    path = workdir / "out"
    x = da.arange(300_000, dtype="float64", chunks=40_000).reshape((600, 500)).rechunk((150, 250))
    ddask.to_container(x * 2.0, path, "m")
    c = dafstore.open(path)
    m = c.open("m")
    assert m.shape == (600, 500)
    np.testing.assert_array_equal(m, (np.arange(300_000.0) * 2.0).reshape(600, 500))
    assert c.info("m").generation == 1 and c.info("m").lifecycle == "persistent"
    assert staged_files(path) == []
    assert not c.fsck(deep=True).problems
    # The chunks were written by the worker processes, not gathered here.
    pids = client.run(os.getpid)
    assert os.getpid() not in pids.values()


def test_to_container_with_a_failing_task_publishes_nothing_and_removes_the_staging(
    client: Any, workdir: Path
) -> None:
    import dask.array as da

    def boom(b: np.ndarray, block_info: Any = None) -> np.ndarray:
        if block_info[0]["chunk-location"] == (2,):
            raise ValueError("chunk 2 failed")
        return b

    path = workdir / "fail"
    x = da.ones(40_000, chunks=10_000).map_blocks(boom, dtype="float64")
    with pytest.raises(ValueError, match="chunk 2 failed"):
        ddask.to_container(x, path, "v")
    c = dafstore.open(path)
    assert "v" not in c
    assert staged_files(path) == []


def _fill_part(path: str, token: str, start: int, stop: int) -> None:
    a = dafstore.open(path).open_staged(token)
    a[start:stop] = np.arange(start, stop, dtype=a.dtype)


def test_a_process_pool_fills_one_staged_array_by_its_token(workdir: Path) -> None:
    import multiprocessing as mp

    path = str(workdir / "pool")
    c = dafstore.create(path)
    w = c.create("v", (100_000,), "int64")
    with mp.get_context("spawn").Pool(4) as pool:
        pool.starmap(_fill_part, [(path, w.token, k * 25_000, (k + 1) * 25_000) for k in range(4)])
    w.publish()
    np.testing.assert_array_equal(c.open("v"), np.arange(100_000))
    with pytest.raises(dafstore.DafstoreError, match="published or discarded"):
        c.open_staged(w.token)


def test_a_file_handle_is_loaded_once_per_host_and_mapped_by_every_worker(
    workdir: Path,
) -> None:
    # Two "hosts": two node-local containers, each the container of its own cluster's workers.
    src = workdir / "shared" / "day1.npy"
    src.parent.mkdir()
    np.save(src, np.arange(1_000_000, dtype="float64"))
    h = ddask.share_file(src)
    assert pickle.loads(pickle.dumps(h)).name == h.name
    hosts = [workdir / "host-a", workdir / "host-b"]
    for host in hosts:
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster, distributed.Client(cluster) as cl:
            ddask.register(cl, host, create=True)
            futures = cl.map(lambda h, i: float(h.get()[i::8].sum()), [h] * 8, range(8))
            sums = cl.gather(futures)
            assert sum(sums) == float(np.arange(1_000_000.0).sum())
            # Both workers mapped it; the host's container holds it once, loaded once.
            info = dafstore.open(host).info(h.name)
            assert info.generation == 1 and info.lifecycle == "cached"
            assert set(cl.run(ddask.node_path).values()) == {os.path.realpath(host)}
    # Each host has its own copy; the shared file was not touched.
    for host in hosts:
        assert h.name in dafstore.open(host)
    assert np.load(src).shape == (1_000_000,)
