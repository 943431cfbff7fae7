#!/usr/bin/env python3
"""Draws the committed benchmark results as PNG figures (matplotlib, a bench-only dependency).

    python bench/plots.py [--results bench/results] [--out bench/results/plots]

It runs nothing: it reads the JSON the benchmarks wrote and draws what they measured, nothing else.

  open_latency.png        first open of an array by size, dafstore and each peer      suite.json
  publish_throughput.png  create + fill + publish (and the persisting step alone) by
                          size, as the array's bytes ÷ the median time                 suite.json
  pss_8_processes.png     total PSS of 8 processes reading one 1 GiB array / table     suite.json,
                                                                                        tables_share.json
  pss_by_processes.png    total PSS (and its anonymous part) of 1, 2, 4, 8 processes
                          reading one 1 GiB array, per reader                          pss_sweep.json
  refs_by_processes.png   retain + release ops/s by number of processes                suite.json
  scale.png               catalog operations by number of arrays in the container      suite.json
  tables_publish.png      publishing a 1 GiB table, every round                        tables_share_publish.json

A figure whose input file is missing or lacks the case is skipped with a message (and an older PNG
of that name in the output directory is removed, since it no longer shows these results); the
others are still drawn. Missing file systems or sizes (`run.sh --only-shm`, `--quick`) just leave
out those panels or points. Titles carry the run's date and machine as recorded in the JSON.
Output is deterministic: the Agg backend, no software or date metadata in the PNG, fixed sizes,
fonts and colours; re-running on the same results with the same matplotlib rewrites identical bytes.

suite.py and tables_share.py measure memory at 8 processes only (pss_8_processes.png); PSS
*against* the number of processes (1, 2, 4, 8) comes from bench/pss_sweep.py (pss_by_processes.png),
arrays only: tables are still measured at 8 processes alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator  # noqa: E402

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
GIB = 1 << 30
DPI = 100

plt.rcParams.update({
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same glyphs everywhere
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
})

# One colour per tool in every figure: dafstore blue, each peer its own.
DAF = "#1f5fa8"
DAF_LIGHT = "#6fa8dc"
COLOURS = {
    "np.memmap": "#e07b00",
    "np.load": "#c0392b",
    "pyarrow": "#2e8b57",
    "polars": "#8e44ad",
    "polars1": "#b784d1",
    "safetensors": "#d4a017",
    "seed000": "#7f5539",
    "std": "#555555",
    "np.save": "#c0392b",
    "np.save_nosync": "#f1948a",
    "pyarrow+polars": "#76b39d",
    "floor": "#999999",
}


# ---------------------------------------------------------------------------------------------
# helpers


def load(results: Path, name: str):
    p = results / name
    if not p.is_file():
        return None
    with open(p) as f:
        return json.load(f)


def size_bytes(label: str) -> int:
    n, unit = label.split()
    return int(n) * {"MiB": MIB, "GiB": GIB}[unit]


def size_label(b: float) -> str:
    return f"{b / GIB:g} GiB" if b >= GIB else f"{b / MIB:g} MiB"


def fmt_ns(ns: float) -> str:
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.3g} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.3g} ms"
    return f"{ns / 1e9:.3g} s"


def fs_sizes(raw_fs: dict) -> list[str]:
    """The array sizes measured on one file system (suite.json's raw[fs]), smallest first."""
    return sorted((k for k in raw_fs if k.endswith(("MiB", "GiB"))), key=size_bytes)


def file_systems(suite: dict) -> list[str]:
    return [fs for fs in ("/dev/shm", "disk") if fs in suite["raw"]]


def fs_title(suite: dict, fs: str) -> str:
    info = suite["machine"].get("file_systems", {}).get(fs, {})
    return f"{fs} ({info['fstype']})" if info.get("fstype") else fs


def suite_title(suite: dict) -> str:
    m = suite["machine"]
    q = " --quick" if suite.get("config", {}).get("quick") else ""
    load = m.get("loadavg_1min_during", {}).get("median")
    load = f"; median load {load:.1f}" if load is not None else ""
    return (f"bench/run.sh{q}, {m['date']}: {m['cpus']} CPUs ({m['cpu']}), {m['memory']} RAM, "
            f"Linux {m['kernel']}{load} (bench/results/suite.json)")


def size_axis(ax, sizes):
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: size_label(v)))
    lo, hi = min(sizes), max(sizes)
    ax.set_xlim(lo / 2, hi * 2)
    ax.set_xlabel("array size (f64)")


def log_y(ax, fmt):
    """Log y axis with ticks at 1, 2 and 5 of each decade, labelled by FMT."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))


def time_axis(ax):
    """Log axis in ns labelled with units."""
    log_y(ax, fmt_ns)


def count_formatter(v, _=None):
    return f"{v:,.0f}"


def save(fig, out: Path, name: str) -> Path:
    path = out / name
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def footnote(fig, text: str, y: float = 0.01):
    fig.text(0.01, y, text, ha="left", va="bottom", fontsize=7, color="#333333", wrap=True)


# ---------------------------------------------------------------------------------------------
# figures


def open_latency(suite, out):
    """First open of one f64 array by size: dafstore and every peer, one panel per file system."""
    fss = file_systems(suite)
    if not fss or not any(fs_sizes(suite["raw"][fs]) for fs in fss):
        return "suite.json has no open-latency case"
    lines = [  # (label, where, key, colour, style, marker)
        ("dafstore first open incl. reference (Rust)", "open", "first_open_ns", DAF, "-", "o"),
        ("dafstore Python c.open(name), first", "open_peers", "python_dafstore_first_open_ns", DAF, "--", "s"),
        ("dafstore read-only handle, no reference (Rust)", "open", "read_only_first_open_ns", DAF_LIGHT, ":", "o"),
        ("np.memmap", "open_peers", "np_memmap_ns", COLOURS["np.memmap"], "-", "^"),
        ('np.load(mmap_mode="r")', "open_peers", "np_load_mmap_ns", COLOURS["np.load"], "-", "v"),
        ("pyarrow ipc.open_file(pa.memory_map) + column", "open_peers", "pyarrow_ipc_mmap_ns", COLOURS["pyarrow"],
         "-", "D"),
        ("safetensors.safe_open (header only)", "open_peers", "safetensors_safe_open_ns", COLOURS["safetensors"],
         "-", "P"),
        ("seed 000: count file +1 under flock, then np.memmap", "open_peers", "handrolled_memmap_ns",
         COLOURS["seed000"], "-", "X"),
        ("floor: open + fstat + mmap (Rust, memmap2)", "open", "raw_open_fstat_mmap_ns", COLOURS["floor"], ":", "."),
    ]
    fig, axes = plt.subplots(1, len(fss), figsize=(10, 5.6), sharey=True, squeeze=False)
    handles = {}
    for ax, fs in zip(axes[0], fss):
        raw = suite["raw"][fs]
        sizes = fs_sizes(raw)
        xs = [size_bytes(s) for s in sizes]
        for label, where, key, colour, style, marker in lines:
            pts = [(x, raw[s][where][key]) for x, s in zip(xs, sizes) if key in raw[s].get(where, {})]
            if not pts:
                continue
            h, = ax.plot(*zip(*pts), style, color=colour, marker=marker, lw=2 if label.startswith("dafstore first")
                         else 1.3, ms=5, label=label)
            handles.setdefault(label, h)
        size_axis(ax, xs)
        time_axis(ax)
        ax.set_title(fs_title(suite, fs))
    axes[0][0].set_ylabel("first open latency (log scale)")
    fig.suptitle("First open of one array, by size\n" + suite_title(suite), fontsize=9)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=2, bbox_to_anchor=(0.5, 0.085),
               frameon=False)
    footnote(fig, "Each point: the lowest of 3 rounds' medians (a fresh process per round, 500 opens a round up to "
                  "64 MiB, 200 above; dafstore and the peers alternate). dafstore rows are Rust except 'Python "
                  "c.open'; the peers are Python calling C. Files were just written: page cache, warm dentries. "
                  "Source: bench/results/suite.json (raw.<fs>.<size>.open / open_peers).")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.86, bottom=0.36, wspace=0.06)
    return save(fig, out, "open_latency.png")


def publish_throughput(suite, out):
    """Array bytes ÷ median time: create + fill + publish against the peers' fill + write + fsync
    (top), and the persisting step alone (bottom)."""
    fss = file_systems(suite)
    if not fss or not any(fs_sizes(suite["raw"][fs]) for fs in fss):
        return "suite.json has no create + fill + publish case"
    top = [  # (label, where, key, colour, style, marker)
        ("dafstore create_dense + fill + publish (Rust)", "write", "create_fill_publish_ns", DAF, "-", "o"),
        ("Vec fill + write_all + sync_all (Rust std)", "write", "raw_fill_write_fsync_ns", COLOURS["std"], "-", "s"),
        ("np.arange + np.save + fsync", "np_save", "np_save_fsync_ns", COLOURS["np.save"], "-", "^"),
        ("np.arange + np.save (no fsync)", "np_save", "np_save_ns", COLOURS["np.save_nosync"], "--", "v"),
    ]
    bottom = [
        ("dafstore publish() alone: CRC-32C, syncs, catalog, renames (data already in the map)", "write",
         "publish_ns", DAF, "-", "o"),
        ("write_all + sync_all alone (Rust std, the filled Vec)", "write", "raw_write_fsync_ns", COLOURS["std"], "-",
         "s"),
    ]
    fig, axes = plt.subplots(2, len(fss), figsize=(10, 7.6), sharey="row", squeeze=False)
    handles = [{}, {}]
    for col, fs in enumerate(fss):
        raw = suite["raw"][fs]
        sizes = fs_sizes(raw)
        xs = [size_bytes(s) for s in sizes]
        for row, lines in enumerate((top, bottom)):
            ax = axes[row][col]
            for label, where, key, colour, style, marker in lines:
                pts = [(x, x / MIB / (raw[s][where][key] / 1e9)) for x, s in zip(xs, sizes)
                       if raw[s].get(where, {}).get(key)]
                if not pts:
                    continue
                h, = ax.plot(*zip(*pts), style, color=colour, marker=marker, lw=2 if "dafstore" in label else 1.3,
                             ms=5, label=label)
                handles[row].setdefault(label, h)
            size_axis(ax, xs)
            log_y(ax, count_formatter)
            ax.set_title(fs_title(suite, fs) + (": the whole write" if row == 0 else ": the persisting step alone"))
        axes[0][col].set_xlabel("")
    axes[0][0].set_ylabel("MiB/s (array bytes ÷ median time)")
    axes[1][0].set_ylabel("MiB/s (array bytes ÷ median time)")
    for row, y in ((0, 0.545), (1, 0.095)):
        fig.legend(handles[row].values(), handles[row].keys(), loc="upper center", ncol=2,
                   bbox_to_anchor=(0.5, y), frameon=False)
    fig.suptitle("Writing an array, by size\n" + suite_title(suite), fontsize=9)
    footnote(fig, "Throughput = the array's bytes ÷ the median time over 20 runs (1 MiB), 5 (64 MiB), 3 (1 GiB), "
                  "1 (8 GiB); higher is better. The components' medians are taken separately. "
                  "Source: bench/results/suite.json (raw.<fs>.<size>.write, .np_save).")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.89, bottom=0.18, hspace=0.62, wspace=0.06)
    return save(fig, out, "publish_throughput.png")


def _hbars(ax, names, totals, anons, colours, xmax, goal=1.1):
    """Horizontal bars: total PSS (full colour) and its anonymous part (hatched), ÷ the data's size.
    Bars beyond XMAX are cut at the edge and labelled with their value."""
    y = range(len(names))
    h = 0.38
    for i, (tot, anon, c) in enumerate(zip(totals, anons, colours)):
        for off, v, kw in ((-h / 2, tot, {}), (h / 2, anon, {"hatch": "////", "alpha": 0.55})):
            shown = min(v, xmax * 0.97)
            ax.barh(i + off, shown, height=h, color=c, edgecolor="black", linewidth=0.4, **kw)
            cut = v > xmax * 0.97
            txt = f"{v:.2f}×" + (" (bar cut)" if cut else "")
            ax.text((shown if not cut else xmax * 0.97) - (0.02 * xmax if cut else -0.02 * xmax), i + off, txt,
                    va="center", ha="right" if cut else "left", fontsize=7,
                    color="white" if cut else "black")
    ax.axvline(goal, color="black", lw=0.8, ls="--")
    ax.set_yticks(list(y))
    ax.set_yticklabels(names)
    ax.set_xlim(0, xmax)
    ax.set_ylim(len(names) - 0.45, -0.55)
    ax.grid(axis="y", visible=False)


def pss_8_processes(suite, tables, out):
    """Total PSS of 8 processes that each map (or load) and read all of one 1 GiB array / table."""
    panels = []
    if suite:
        fss = [fs for fs in file_systems(suite) if any("pss" in suite["raw"][fs].get(s, {})
                                                       for s in fs_sizes(suite["raw"][fs]))]
        if fss:
            fs = fss[0]
            sz = next(s for s in fs_sizes(suite["raw"][fs]) if "pss" in suite["raw"][fs][s])
            size = size_bytes(sz)
            pss = suite["raw"][fs][sz]["pss"]
            order = [("dafstore", "dafstore open_dense (Rust)", DAF), ("numpy", None, COLOURS["np.memmap"]),
                     ("pyarrow", None, COLOURS["pyarrow"]), ("polars 1.x", None, COLOURS["polars1"]),
                     ("polars", None, COLOURS["polars"])]
            rows = [(how or pss[k]["how"].replace(" (", "\n("), pss[k]["Pss"] / size, pss[k]["Pss_Anon"] / size, c)
                    for k, how, c in order if k in pss]
            other = [f for f in fss[1:] if sz in suite["raw"][f] and "pss" in suite["raw"][f][sz]]
            diff = ""
            if other:
                d = max(abs(suite["raw"][f][sz]["pss"][k]["Pss"] - pss[k]["Pss"]) / size
                        for f in other for k in pss if k in suite["raw"][f][sz]["pss"])
                diff = (f"; {', '.join(other)}: total ratios differ by < 0.001" if d < 0.001 else
                        f"; {', '.join(other)}: total ratios differ by up to {d:.3f}")
            panels.append({
                "title": f"{sz} f64 array on {fs}, 8 processes each mapped (or loaded) and summed all of it:\n"
                         f"sum of their PSS ÷ the array\n"
                         f"bench/run.sh, {suite['machine']['date']}, {suite['machine']['cpu']}; measured once{diff}",
                "rows": rows,
            })
    if tables and "memory" in tables and tables["memory"].get("readers"):
        mem = tables["memory"]
        names = {
            "dafstore_pyarrow": ("dafstore c.open_table (pyarrow)", DAF),
            "dafstore_polars": ("dafstore c.open_polars", DAF_LIGHT),
            "dafstore_polars_nocat": ("dafstore open_table + pl.from_arrow,\nthe Categorical column left out",
                                      "#9fc5e8"),
            "pa_mmap": ("pyarrow ipc.open_file(pa.memory_map)\n.read_all()", COLOURS["pyarrow"]),
            "pa_mmap_polars": ("pyarrow mmap + pl.from_arrow(rechunk=False)", COLOURS["pyarrow+polars"]),
            "pl_read_ipc": ("polars pl.read_ipc (copies)", COLOURS["polars"]),
        }
        rows = [(label, mem["readers"][k]["pss_scan"], mem["readers"][k]["anon_scan"], c)
                for k, (label, c) in names.items() if "pss_scan" in mem["readers"].get(k, {})]
        data = tables.get("data", {})
        m = tables["machine"]
        panels.append({
            "title": f"~1 GiB table ({data.get('rows', 0):,} rows, 6 columns incl. a Categorical) on /dev/shm, "
                     f"{mem['workers']} processes after a full scan:\n"
                     f"growth of their PSS over their baselines ÷ the reader's file\n"
                     f"tables_share.py, {m['date']}, {m['cpu']}; median of {mem['rounds']} rounds",
            "rows": rows,
        })
    if not panels:
        return "neither suite.json nor tables_share.json has a memory case"
    heights = [len(p["rows"]) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.6 + 1.25 * len(panels) + 0.42 * sum(heights)),
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, p in zip(axes[:, 0], panels):
        names, tots, anons, cols = zip(*p["rows"])
        _hbars(ax, names, tots, anons, cols, xmax=2.0)
        ax.set_title(p["title"], fontsize=8, loc="left")
        ax.set_xlabel("× the data's size — solid: total PSS; hatched: of which anonymous; "
                      "dashed line: goal ≤ 1.1×")
    fig.suptitle("Memory of 8 processes sharing one dataset (1, 2, 4, 8 processes, arrays: pss_by_processes.png)",
                 fontsize=10)
    footnote(fig, "PSS counts a shared page once across the processes that map it; anonymous memory is each "
                  "process's private copy. Array case: totals of /proc/PID/smaps_rollup Pss and Pss_Anon, each "
                  "process having mapped (or loaded) and summed the whole array. Table case: growth over each "
                  "process's baseline after its imports (negative = warm-up memory freed, < 1 MiB).")
    fig.subplots_adjust(left=0.29, right=0.98, top=0.9, bottom=0.11, hspace=0.55)
    return save(fig, out, "pss_8_processes.png")


def pss_by_processes(sweep, out):
    """Total PSS of N = 1, 2, 4, 8 processes that each map (or load) and read all of one array."""
    if not sweep or not sweep.get("results"):
        return "pss_sweep.json has no results"
    size, m = sweep["size"], sweep["machine"]
    styles = {  # reader: (colour, marker, line width)
        "dafstore (Rust)": (DAF, "o", 2.0),
        "dafstore (Python)": (DAF_LIGHT, "s", 1.6),
        "np.memmap": (COLOURS["np.memmap"], "D", 1.3),
        "pyarrow": (COLOURS["pyarrow"], "^", 1.3),
        "polars": (COLOURS["polars"], "v", 1.3),
    }
    lines, procs, skipped = [], set(), []
    for name, by_n in sweep["results"].items():
        pts = sorted((int(k), r["Pss"] / size, r["Pss_Anon"] / size) for k, r in by_n.items() if "Pss" in r)
        skipped += [f"{name} at {k} processes" for k, r in by_n.items() if "skipped" in r]
        if pts:
            how = next((r["how"] for r in by_n.values() if r.get("how")), "")
            lines.append((name, how, pts, *styles.get(name, ("#555555", "x", 1.2))))
            procs.update(p for p, _, _ in pts)
    if not lines:
        return "pss_sweep.json has no measured case"
    procs = sorted(procs)
    top = max(t for _, _, pts, *_ in lines for _, t, _ in pts)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.4), squeeze=False)
    for ax, ymax, title in ((axes[0][0], max(top, max(procs)) * 1.08, "every reader"),
                            (axes[0][1], 1.35, "zoom: 0 to 1.35× (readers that copy leave the frame)")):
        ax.plot(procs, procs, ":", color=COLOURS["floor"], lw=0.9, label="N × the array (a private copy each)")
        ax.axhline(1.1, color="black", lw=0.8, ls="--", label="goal ≤ 1.1× (at 8 processes)")
        for name, how, pts, colour, marker, lw in lines:
            xs, tots, anons = zip(*pts)
            ax.plot(xs, tots, "-", color=colour, marker=marker, lw=lw,
                    label=f"{name}: {how}" if how else name)
            ax.plot(xs, anons, "--", color=colour, marker=marker, lw=0.9, ms=4, mfc="none")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(procs))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(count_formatter))
        ax.set_xlim(procs[0] / 1.15, procs[-1] * 1.15)
        ax.set_ylim(0, ymax)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.set_xlabel("processes reading the array at once")
        ax.set_title(title, fontsize=9)
    axes[0][0].set_ylabel("sum of the processes' PSS ÷ the array")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, bbox_to_anchor=(0.5, 0.085), frameon=False, fontsize=7)
    fs = m.get("file_system", {})
    fig.suptitle(f"Memory against the number of processes: one {size_label(size)} f64 array, "
                 f"each process maps (or loads) and sums all of it\n"
                 f"bench/pss_sweep.py, {m['date']}: {m['cpus']} CPUs ({m['cpu']}), {m['memory']} RAM, "
                 f"Linux {m['kernel']}, data on {fs.get('fstype', '?')}; measured once per point", fontsize=9)
    note = ("Solid: total PSS (sum of /proc/PID/smaps_rollup Pss over the N processes, each holding the array); "
            "dashed, same colour and hollow marker: of which anonymous (Pss_Anon: private copies, heaps, "
            "interpreters). A shared page counts once across the processes that map it, so a reader that maps "
            "stays near 1× plus each process's own baseline. Source: bench/results/pss_sweep.json.")
    if skipped:
        note += " Not measured (memory): " + ", ".join(skipped) + "."
    footnote(fig, note)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.86, bottom=0.36, wspace=0.15)
    return save(fig, out, "pss_by_processes.png")


def refs_by_processes(suite, out):
    fss = [fs for fs in file_systems(suite) if "refs" in suite["raw"][fs]]
    if not fss:
        return "suite.json has no retain/release case"
    fig, axes = plt.subplots(1, len(fss), figsize=(10, 4.6), sharey=True, squeeze=False)
    handles = {}
    for ax, fs in zip(axes[0], fss):
        r = suite["raw"][fs]["refs"]
        for key, label, colour, marker in (
                ("retain_release_ops_per_s", "dafstore retain + release (catalog write transactions)", DAF, "o"),
                ("handrolled_ops_per_s", "seed 000's count file under flock (Python, no fsync)", COLOURS["seed000"],
                 "X")):
            pts = sorted((int(k), v) for k, v in r.get(key, {}).items())
            if pts:
                h, = ax.plot(*zip(*pts), "-", color=colour, marker=marker, lw=2 if key.startswith("retain") else 1.3,
                             label=label)
                handles.setdefault(label, h)
                procs = [p for p, _ in pts]
        ax.axhline(20000, color="black", lw=0.8, ls="--")
        ax.text(procs[0], 20000, " goal ≥ 20,000 ops/s at 8 processes", fontsize=7, va="bottom")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(procs))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(count_formatter))
        ax.set_xlabel("processes")
        ax.yaxis.set_major_formatter(FuncFormatter(count_formatter))
        ax.set_title(fs_title(suite, fs))
    axes[0][0].set_ylim(0, axes[0][0].get_ylim()[1])
    axes[0][0].set_ylabel("ops/s, all processes together")
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=2, bbox_to_anchor=(0.5, 0.07),
               frameon=False)
    fig.suptitle("Retain + release on one array, by number of processes\n" + suite_title(suite), fontsize=9)
    footnote(fig, "ops = retains + releases per second, summed over the processes, started together, 2 s each. "
                  "Source: bench/results/suite.json (raw.<fs>.refs).")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.84, bottom=0.27, wspace=0.06)
    return save(fig, out, "refs_by_processes.png")


def scale(suite, out):
    fss = [fs for fs in file_systems(suite) if suite["raw"][fs].get("scale", {}).get("ours")]
    if not fss:
        return "suite.json has no scale case"
    lines = [  # (label, side, key, colour, style, marker)
        ("dafstore fsck (once; no checksums)", "ours", "fsck_ns", "#0b3d75", "-", "D"),
        ("dafstore container close (a process's last handle)", "ours", "container_drop_ns", DAF, "-", "o"),
        ("dafstore ls: records(), full metadata", "ours", "ls_records_ns", DAF_LIGHT, "-", "s"),
        ("os.listdir of a .npy directory (names only)", "npy_dir", "listdir_ns", COLOURS["np.memmap"], "--", "s"),
        ("dafstore container open (a process's first handle)", "ours", "container_open_ns", "#3d85c6", ":", "^"),
        ("dafstore first open of one array", "ours", "first_open_one_ns", DAF, "-.", "v"),
        ('np.load(mmap_mode="r") of one .npy', "npy_dir", "np_load_one_ns", COLOURS["np.load"], "--", "v"),
    ]
    fig, axes = plt.subplots(1, len(fss), figsize=(10, 5.4), sharey=True, squeeze=False)
    handles = {}
    for ax, fs in zip(axes[0], fss):
        sc = suite["raw"][fs]["scale"]
        counts = [o["arrays"] for o in sc["ours"]]
        copied = [o["arrays"] for o in sc["ours"] if o.get("built", "written here") != "written here"]
        for label, side, key, colour, style, marker in lines:
            pts = [(o["arrays"], p[key]) for o, p in zip(sc["ours"], sc[side]) if p.get(key)]
            if pts:
                h, = ax.plot(*zip(*pts), style, color=colour, marker=marker, ms=4.5, lw=1.5, label=label)
                handles.setdefault(label, h)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(counts))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(count_formatter))
        time_axis(ax)
        ax.set_xlabel("arrays in the container" + (f" ({', '.join(f'{c:,}' for c in copied)}: copied from "
                                                    "/dev/shm)" if copied else ""))
        ax.set_title(fs_title(suite, fs))
    axes[0][0].set_ylabel("time (log scale)")
    fig.suptitle("Catalog operations by number of arrays\n" + suite_title(suite), fontsize=9)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=2, bbox_to_anchor=(0.5, 0.075),
               frameon=False)
    footnote(fig, "One-element arrays, one publish each. Medians: ls and container open/close of 3-5 runs, first open "
                  "of 200; fsck once. Source: bench/results/suite.json (raw.<fs>.scale).")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.86, bottom=0.33, wspace=0.06)
    return save(fig, out, "scale.png")


def tables_publish(pub, out):
    if not pub or "publish" not in pub or not pub["publish"].get("samples"):
        return "tables_share_publish.json has no publish rounds"
    p, m, data = pub["publish"], pub["machine"], pub.get("data", {})
    writers = [
        ("dafstore_write_table", "dafstore c.write_table(name, df)", DAF),
        ("polars_write_ipc_fsync", "polars write_ipc + fsync", COLOURS["polars"]),
        ("pyarrow_new_file_fsync", "pyarrow ipc.new_file + fsync", COLOURS["pyarrow"]),
    ]
    locs = [loc for loc in ("shm", "disk") if any(f"{loc}/{w}" in p["samples"] for w, _, _ in writers)]
    fig, axes = plt.subplots(1, len(locs), figsize=(10, 4.6), sharey=True, squeeze=False)
    top = 0.0
    for ax, loc in zip(axes[0], locs):
        for i, (w, label, colour) in enumerate(writers):
            v = p["samples"].get(f"{loc}/{w}")
            if not v:
                continue
            xs = [i + (j - (len(v) - 1) / 2) * 0.035 for j in range(len(v))]
            ax.scatter(xs, v, s=16, color=colour, alpha=0.75, edgecolor="none")
            top = max(top, max(v))
            med = p["median"][f"{loc}/{w}"]
            ax.hlines(med, i - 0.3, i + 0.3, color="black", lw=1.6)
            ax.text(i + 0.32, med, f"{med:.2f} s", va="center", fontsize=7)
        ax.set_xticks(range(len(writers)))
        ax.set_xticklabels([label.replace(" + ", "\n+ ").replace("(name, df)", "") for _, label, _ in writers])
        ax.set_xlim(-0.6, len(writers) - 0.2)
        ax.set_title({"shm": "/dev/shm (tmpfs)", "disk": "disk (ext4)"}.get(loc, loc))
        ax.grid(axis="x", visible=False)
    axes[0][0].set_ylim(0, top * 1.06)  # shared: covers every panel's rounds
    axes[0][0].set_ylabel("seconds to write and sync the table")
    fig.suptitle(f"Publishing a ~1 GiB table ({data.get('rows', 0):,} rows), {p['rounds']} interleaved rounds\n"
                 f"tables_share.py --phases publish, {m['date']}: {m['cpus']} CPUs ({m['cpu']}), 1-minute load "
                 f"{m['loadavg_at_start'][0]:.1f} at start, {m['loadavg_at_end'][0]:.1f} at end", fontsize=9)
    fig_bytes = {w: next((d["bytes"] for d in p.get("details", {}).get(f"shm/{w}", []) if d.get("bytes")), 0)
                 for w in ("polars_write_ipc_fsync", "pyarrow_new_file_fsync")}
    footnote(fig, "Dots: every round; bar: the median. The same polars frame each time: dafstore c.write_table "
                  f"(one record batch, {p.get('dafstore_file_bytes', {}).get('shm', 0) / MIB:.0f} MiB, CRC-32C, "
                  f"fdatasync, catalog); polars write_ipc uncompressed ({fig_bytes['polars_write_ipc_fsync'] / MIB:.0f}"
                  f" MiB) + fsync; pyarrow ipc.new_file of the frame's Arrow table (converted before, untimed; "
                  f"{fig_bytes['pyarrow_new_file_fsync'] / MIB:.0f} MiB) + fsync. "
                  "Source: bench/results/tables_share_publish.json (publish.samples).")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.84, bottom=0.22, wspace=0.06)
    return save(fig, out, "tables_publish.png")


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results", help="where the JSON results are")
    ap.add_argument("--out", type=Path, default=None, help="where to write the PNGs (default RESULTS/plots)")
    a = ap.parse_args(argv)
    out = a.out or a.results / "plots"
    out.mkdir(parents=True, exist_ok=True)
    suite = load(a.results, "suite.json")
    tables = load(a.results, "tables_share.json")
    pub = load(a.results, "tables_share_publish.json")
    sweep = load(a.results, "pss_sweep.json")
    jobs = [
        ("open_latency.png", lambda: open_latency(suite, out) if suite else "no suite.json"),
        ("publish_throughput.png", lambda: publish_throughput(suite, out) if suite else "no suite.json"),
        ("pss_8_processes.png", lambda: pss_8_processes(suite, tables, out)),
        ("pss_by_processes.png", lambda: pss_by_processes(sweep, out) if sweep else "no pss_sweep.json"),
        ("refs_by_processes.png", lambda: refs_by_processes(suite, out) if suite else "no suite.json"),
        ("scale.png", lambda: scale(suite, out) if suite else "no suite.json"),
        ("tables_publish.png", lambda: tables_publish(pub, out)),
    ]
    for name, job in jobs:
        res = job()
        if isinstance(res, Path):
            print(f"plots: wrote {res} ({res.stat().st_size // 1024} KiB)")
            continue
        stale = out / name
        if stale.is_file():  # drawn from results that are no longer there: it would mislead
            stale.unlink()
            res += f"; removed the old {stale}"
        print(f"plots: skipped {name}: {res}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
