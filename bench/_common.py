"""Small helpers shared by the Python scripts in bench/ (stdlib only: the scripts' worker
processes and dask_reduce.py's sampler import it too).

A script imports it with its own directory on sys.path, so that it works however the script is
started (`python bench/x.py` from the repository's root, `python x.py` from bench/, a spawned
worker, `python -c` with the directory inserted):

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import smaps_rollup, ...  # noqa: E402

Memory figures come from Linux's /proc: `pid` is a process id or "self" (this process). All
sizes returned are in bytes; the kernel's "kB" fields are KiB, multiplied by 1024.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import subprocess
import time

# ---------------------------------------------------------------------------------------------
# memory of a process, and of the machine


def status_bytes(pid, field, missing=0):
    """The `kB` field `field` of /proc/<pid>/status (RssAnon, VmRSS, VmHWM, ...) in bytes.

    RssAnon is the process's resident anonymous memory (private copies, heap), VmRSS all its
    resident pages, VmHWM the peak of VmRSS (reset by writing 5 to /proc/<pid>/clear_refs).
    Reading it costs next to nothing (no page-table walk). Returns `missing` if the process is
    gone or has no such field."""
    key = field + ":"
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return missing


def smaps_rollup(pid):
    """Every `kB` field of /proc/<pid>/smaps_rollup, in bytes, by name without the colon: Rss,
    Pss (pages shared by k processes count 1/k), Pss_Anon, Pss_File, Pss_Shmem, Anonymous, ...

    The kernel walks the process's page tables to make it (milliseconds for gigabytes mapped).
    Raises OSError if the process is gone."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def rollup_pss_anon(pid):
    """(Pss, Anonymous) of /proc/<pid>/smaps_rollup in bytes (0 for a field not there), or None
    if the process is gone."""
    try:
        r = smaps_rollup(pid)
    except OSError:
        return None
    return r.get("Pss", 0), r.get("Anonymous", 0)


def mapping_mem(pid, path):
    """What the process's mappings of the file `path` hold, from /proc/<pid>/smaps, summed over
    all its maps of that file (also if the file was deleted since): {"map_rss": bytes resident,
    "map_pss": bytes of PSS, "maps": how many maps}. Raises OSError if the process is gone."""
    want, rss, pss, inside, maps = os.path.realpath(path), 0, 0, False, 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(maxsplit=5)
            if "-" in first[0] and len(first) >= 5 and ":" in first[3]:
                inside = len(first) == 6 and first[5].strip().removesuffix(" (deleted)") == want
                maps += inside
            elif inside and first[0] == "Rss:":
                rss += int(first[1]) * 1024
            elif inside and first[0] == "Pss:":
                pss += int(first[1]) * 1024
    return {"map_rss": rss, "map_pss": pss, "maps": maps}


def holders_memory(cmd, nprocs, n, data_file, how=None):
    """Memory of `nprocs` processes holding one array: starts `nprocs` copies of `cmd`, each of
    which maps or loads the n float64 values 0..n-1, sums them, prints one JSON line (the sum, or
    {"how": ..., "sum": ...}) and holds the array until its stdin closes (suite.py --peer pss,
    suite_bench pss-worker, pss_sweep.py --worker). Once all hold it (every sum checked against
    n(n-1)/2), reads each process's smaps_rollup and the PSS of its mappings of `data_file`;
    then closes their stdin and waits for them.

    Returns (how, rolls, file_pss): the last report's "how" (else the `how` given), the
    smaps_rollup dict of each process (bytes), the PSS of each one's maps of `data_file` (bytes)."""
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(nprocs)]
    try:
        for p in procs:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"{' '.join(map(str, cmd))} exited with no report")
            info = json.loads(line)
            if isinstance(info, dict):
                how, got = info["how"], info["sum"]
            else:
                got = float(info)
            assert got == n * (n - 1) / 2, (cmd, info)
        rolls = [smaps_rollup(p.pid) for p in procs]
        file_pss = [mapping_mem(p.pid, data_file)["map_pss"] for p in procs]
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            p.wait()
    return how, rolls, file_pss


def mem_available():
    """MemAvailable of /proc/meminfo (the kernel's estimate of what can still be allocated
    without swapping), in bytes; 0 if the field is not there."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# ---------------------------------------------------------------------------------------------
# bytes of the files in a directory tree


def _file_stats(root, keep=None):
    """os.stat (not following links) of every non-directory under `root` whose name `keep`
    accepts (all if None), walking down without following links to directories. Entries that
    vanish or cannot be read while it walks are skipped: it runs while other processes write."""
    stack = [str(root)]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif keep is None or keep(e.name):
                    yield e.stat(follow_symlinks=False)
            except OSError:
                pass


def tree_size_bytes(root, keep=None):
    """Apparent size: the sum of st_size, in bytes, of the files under `root` whose name `keep`
    accepts (all if None). A sparse or preallocated file counts its length, not its pages."""
    return sum(st.st_size for st in _file_stats(root, keep))


def tree_allocated_bytes(root):
    """Allocated size: the sum of st_blocks * 512, in bytes, of every file under `root`: the
    storage (on tmpfs, RAM) its files take, whatever their lengths."""
    return sum(st.st_blocks * 512 for st in _file_stats(root))


# ---------------------------------------------------------------------------------------------
# timing and files


def median_ns(f, runs):
    """Median wall time of `runs` calls of `f()`, in nanoseconds (time.perf_counter_ns)."""
    t = []
    for _ in range(runs):
        s = time.perf_counter_ns()
        f()
        t.append(time.perf_counter_ns() - s)
    return statistics.median(t)


def fsync_path(path):
    """os.fsync of the file at `path` (opened read-only for it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# describing the machine


def cpu_model():
    """The CPU's "Model name" from lscpu, or "?"."""
    cpu = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def module_versions(names):
    """{name: the module's __version__, or None if it does not import} for each name."""
    vers = {}
    for mod in names:
        try:
            vers[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            vers[mod] = None
    return vers


def utc_now():
    """The time now, UTC, to the minute: "YYYY-MM-DD HH:MM UTC"."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
