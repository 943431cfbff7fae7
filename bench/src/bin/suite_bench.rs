//! The Rust half of the benchmark suite (`bench/run.sh` drives it through `bench/suite.py`, which
//! measures the peers on the same files in the same run). Each subcommand prints one JSON object
//! on stdout; times are nanoseconds (medians unless named otherwise), sizes bytes.
//!
//! ```text
//! suite_bench write DIR ELEMENTS RUNS   create+fill+publish and write from memory vs Vec fill +
//!                                       write + fsync; leaves `x`
//! suite_bench open DIR RUNS             open latency of `x` and its components
//! suite_bench profile-open DIR MILLIS   first open + drop in a loop (for perf / strace)
//! suite_bench profile-publish DIR COUNT ELEMENTS   COUNT create+fill+publish (for strace)
//! suite_bench profile-ls DIR MILLIS     records() in a loop (for perf)
//! suite_bench profile-cached DIR MILLIS cached re-open of `x` in a loop (for perf)
//! suite_bench profile-container DIR COUNT   container open + drop in a loop (for strace)
//! suite_bench profile-gc DIR MILLIS     a second handle's open (gc) in a loop (for perf)
//! suite_bench write-bytes DIR BYTES RUNS  write_dense_bytes vs File write_all + sync_data
//! suite_bench ls-times DIR RUNS        info_all() and ls() of an existing container: medians
//! suite_bench scan DIR RUNS             sum over the map (first touch, warm) vs over a Vec copy
//! suite_bench sparse DIR ROWS COLS NNZ RUNS   write, open and row slices of a CSR `m`
//! suite_bench pss-worker DIR            open `x`, read all of it, print, wait for stdin to close
//! suite_bench leak DIR CYCLES           open/read/release cycles: RSS and fds before and after
//! suite_bench scale DIR COUNT...        catalog operations with COUNT tiny arrays
//! ```
//!
//! `x` is always f64 × ELEMENTS with `x[i] = i`, so every reader can check the sum.

use std::fs::File;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use dafstore::{Container, FsckOptions, Layout};
use dafstore_bench::{median, minor_faults, open_fds, proc_kb, rss_bytes, sum_f64};
use serde_json::json;

fn ns(t: Instant) -> u128 {
    t.elapsed().as_nanos()
}

fn container(dir: &str) -> Container {
    if Path::new(dir).join(".dafstore").exists() {
        Container::open(dir).expect("open container")
    } else {
        Container::create(dir).expect("create container")
    }
}

fn fill(x: &mut [f64]) {
    for (i, v) in x.iter_mut().enumerate() {
        *v = i as f64;
    }
}

/// create + fill + publish of `x` vs a `Vec` filled the same way, written and synced with std.
fn write(dir: &str, n: u64, runs: usize) -> serde_json::Value {
    let c = container(dir);
    let (mut ours, mut create, mut fill_t, mut publish) = (vec![], vec![], vec![], vec![]);
    let (mut raw, mut raw_write, mut write_bytes) = (vec![], vec![], vec![]);
    let raw_path = Path::new(dir).join("raw.bin");
    for run in 0..runs {
        let name = format!("w{run}");
        let t = Instant::now();
        let mut w = c.create_dense::<f64>(&name, &[n]).expect("create");
        let t1 = Instant::now();
        fill(w.as_mut_slice::<f64>().expect("f64"));
        let t2 = Instant::now();
        w.publish().expect("publish");
        let t3 = Instant::now();
        ours.push((t3 - t).as_nanos());
        create.push((t1 - t).as_nanos());
        fill_t.push((t2 - t1).as_nanos());
        publish.push((t3 - t2).as_nanos());
        c.remove(&name).expect("remove");

        let t = Instant::now();
        let mut v = vec![0f64; n as usize];
        fill(&mut v);
        let t1 = Instant::now();
        let mut f = File::create(&raw_path).expect("create raw");
        f.write_all(bytemuck::cast_slice(&v)).expect("write raw");
        f.sync_all().expect("sync raw");
        drop(f);
        raw.push(ns(t));
        raw_write.push(ns(t1));
        // The same bytes from memory through the engine (copy and checksum, then publish).
        let t = Instant::now();
        c.write_dense::<f64>(&name, &[n], &v).expect("write");
        write_bytes.push(ns(t));
        c.remove(&name).expect("remove");
        drop(v);
        std::fs::remove_file(&raw_path).expect("remove raw");
    }
    if c.info("x").is_err() {
        let mut w = c.create_dense::<f64>("x", &[n]).expect("create");
        fill(w.as_mut_slice::<f64>().expect("f64"));
        w.publish().expect("publish");
    }
    json!({
        "bytes": n * 8,
        "runs": runs,
        "create_fill_publish_ns": median(ours),
        "create_ns": median(create),
        "fill_ns": median(fill_t),
        "publish_ns": median(publish),
        "raw_fill_write_fsync_ns": median(raw),
        "raw_write_fsync_ns": median(raw_write),
        "write_from_memory_ns": median(write_bytes),
    })
}

/// Open latency of `x`: first open (reference 0→1, catalog row, fstat, mmap), its components,
/// a read-only handle (no reference), the raw floor (open + fstat + mmap with memmap2), and the
/// cached re-open.
fn open(dir: &str, runs: usize) -> serde_json::Value {
    let (mut container_open, mut container_drop) = (vec![], vec![]);
    for _ in 0..20 {
        let t = Instant::now();
        let c = Container::open(dir).expect("open container");
        container_open.push(ns(t));
        let t = Instant::now();
        drop(c);
        container_drop.push(ns(t));
    }
    let c = Container::open(dir).expect("open container");
    let (mut first, mut drop_t) = (vec![], vec![]);
    for _ in 0..runs {
        let t = Instant::now();
        let a = c.open_dense::<f64>("x").expect("open");
        first.push(ns(t));
        black_box(a.as_slice().len());
        let t = Instant::now();
        drop(a);
        drop_t.push(ns(t));
    }
    let (mut retain, mut release, mut record) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        let t = Instant::now();
        c.retain("x").expect("retain");
        retain.push(ns(t));
        let t = Instant::now();
        c.release("x").expect("release");
        release.push(ns(t));
        let t = Instant::now();
        black_box(c.info("x").expect("record"));
        record.push(ns(t));
    }
    let path = Path::new(dir).join("x.array");
    let (mut raw_map, mut raw_unmap) = (vec![], vec![]);
    for _ in 0..runs {
        let t = Instant::now();
        let f = File::open(&path).expect("open file");
        let len = f.metadata().expect("fstat").len();
        // SAFETY: the benchmark's own file; nothing truncates it while mapped.
        let m = unsafe { memmap2::Mmap::map(&f) }.expect("mmap");
        drop(f);
        raw_map.push(ns(t));
        black_box((len, m.len()));
        let t = Instant::now();
        drop(m);
        raw_unmap.push(ns(t));
    }
    let ro = Container::options()
        .read_only(true)
        .open(dir)
        .expect("open read-only");
    let mut ro_first = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        let a = ro.open_dense::<f64>("x").expect("open read-only");
        ro_first.push(ns(t));
        black_box(a.as_slice().len());
    }
    drop(ro);
    // The cached path is about a microsecond, so it is timed in batches of 1000 (the clock read
    // would otherwise be a visible part of it): the median over 50 batches, per open.
    let keep = c.open_dense::<f64>("x").expect("open");
    let (mut cached, mut cached_single) = (vec![], vec![]);
    for _ in 0..50 {
        let t = Instant::now();
        for _ in 0..1000 {
            let a = c.open_dense::<f64>("x").expect("open");
            black_box(a.as_slice().len());
        }
        cached.push(ns(t) / 1000);
    }
    for _ in 0..10_000 {
        let t = Instant::now();
        let a = c.open_dense::<f64>("x").expect("open");
        cached_single.push(ns(t));
        black_box(a.as_slice().len());
    }
    drop(keep);
    // What the cached path cannot avoid as written: one stat(2) of the data file (it checks the
    // file was not replaced), timed the same way.
    let mut stat = vec![];
    for _ in 0..50 {
        let t = Instant::now();
        for _ in 0..1000 {
            black_box(std::fs::metadata(black_box(&path)).expect("stat"));
        }
        stat.push(ns(t) / 1000);
    }
    json!({
        "runs": runs,
        "container_open_ns": median(container_open),
        "container_drop_ns": median(container_drop),
        "stat_ns": median(stat),
        "cached_open_single_ns": median(cached_single),
        "first_open_ns": median(first),
        "drop_ns": median(drop_t),
        "retain_ns": median(retain),
        "release_ns": median(release),
        "record_read_ns": median(record),
        "raw_open_fstat_mmap_ns": median(raw_map),
        "raw_munmap_ns": median(raw_unmap),
        "read_only_first_open_ns": median(ro_first),
        "cached_open_ns": median(cached),
    })
}

/// First open + drop of `x` in a loop, for a profiler to sample.
fn profile_open(dir: &str, millis: u64) -> serde_json::Value {
    let c = Container::open(dir).expect("open container");
    let end = Instant::now() + std::time::Duration::from_millis(millis);
    let mut cycles = 0u64;
    while Instant::now() < end {
        let a = c.open_dense::<f64>("x").expect("open");
        black_box(a.as_slice().len());
        drop(a);
        cycles += 1;
    }
    json!({"cycles": cycles, "millis": millis})
}

/// Cached re-open of `x` (a handle keeps the map alive) in a loop, for a profiler to sample.
fn profile_cached(dir: &str, millis: u64) -> serde_json::Value {
    let c = Container::open(dir).expect("open container");
    let keep = c.open_dense::<f64>("x").expect("open");
    let end = Instant::now() + std::time::Duration::from_millis(millis);
    let mut cycles = 0u64;
    while Instant::now() < end {
        for _ in 0..100 {
            let a = c.open_dense::<f64>("x").expect("open");
            black_box(a.as_slice().len());
        }
        cycles += 100;
    }
    drop(keep);
    json!({"cycles": cycles, "millis": millis})
}

/// Second-handle container opens (the first handle stays, so each open is the registry hit plus
/// gc) in a loop, for a profiler to sample.
fn profile_gc(dir: &str, millis: u64) -> serde_json::Value {
    let c = Container::open(dir).expect("open container");
    let end = Instant::now() + std::time::Duration::from_millis(millis);
    let mut cycles = 0u64;
    while Instant::now() < end {
        black_box(Container::open(dir).expect("open container"));
        cycles += 1;
    }
    drop(c);
    json!({"cycles": cycles, "millis": millis})
}

/// COUNT container open + drop cycles (a process's session: start, register, end), for strace.
fn profile_container(dir: &str, count: u64) -> serde_json::Value {
    drop(container(dir));
    let t = Instant::now();
    for _ in 0..count {
        drop(Container::open(dir).expect("open container"));
    }
    json!({"cycles": count, "ns_per_cycle": ns(t) / u128::from(count.max(1))})
}

/// COUNT create + fill + publish of f64 × ELEMENTS arrays `p0`, `p1`, ... (for strace -c).
fn profile_publish(dir: &str, count: u64, n: u64) -> serde_json::Value {
    let c = container(dir);
    let t = Instant::now();
    for i in 0..count {
        let mut w = c
            .create_dense::<f64>(&format!("p{i}"), &[n])
            .expect("create");
        fill(w.as_mut_slice::<f64>().expect("f64"));
        w.publish().expect("publish");
    }
    json!({"cycles": count, "ns_per_publish": ns(t) / u128::from(count.max(1))})
}

/// `records()` (what `dafctl ls` shows) in a loop, for a profiler to sample.
fn profile_ls(dir: &str, millis: u64) -> serde_json::Value {
    let c = Container::open(dir).expect("open container");
    let end = Instant::now() + std::time::Duration::from_millis(millis);
    let mut cycles = 0u64;
    while Instant::now() < end {
        black_box(c.info_all().expect("records"));
        cycles += 1;
    }
    json!({"cycles": cycles, "millis": millis})
}

/// `write_dense_bytes` of BYTES bytes under a new name against `File::create` + `write_all` +
/// `sync_data` of the same bytes, alternating, RUNS each; each output is removed after it is
/// timed (not timed). Medians (ns) and the median of per-round ratios.
fn write_bytes(dir: &str, bytes: usize, runs: usize) -> serde_json::Value {
    let c = container(dir);
    let data: Vec<u8> = (0..bytes).map(|i| (i * 31 % 251) as u8).collect();
    let raw = Path::new(dir).join("raw.bin");
    let (mut ours, mut plain, mut ratio) = (vec![], vec![], vec![]);
    for run in 0..runs {
        let name = format!("wb{run}");
        let ours_once = || {
            let t = Instant::now();
            c.write_dense_bytes(&name, dafstore::DType::UInt8, &[bytes as u64], &data)
                .expect("write");
            let took = ns(t);
            c.remove(&name).expect("remove");
            took
        };
        let plain_once = || {
            let t = Instant::now();
            let mut f = File::create(&raw).expect("create");
            f.write_all(&data).expect("write");
            f.sync_data().expect("sync");
            let took = ns(t);
            std::fs::remove_file(&raw).expect("remove");
            took
        };
        let (a, b) = if run % 2 == 0 {
            let a = ours_once();
            (a, plain_once())
        } else {
            let b = plain_once();
            (ours_once(), b)
        };
        ours.push(a);
        plain.push(b);
        ratio.push(a * 1000 / b.max(1));
    }
    json!({"bytes": bytes, "ours_ns": median(ours), "plain_ns": median(plain),
           "ratio": median(ratio) as f64 / 1000.0})
}

/// `info_all()` and `ls()` of an existing container, RUNS times each, alternating: medians (ns).
fn ls_times(dir: &str, runs: usize) -> serde_json::Value {
    let c = Container::open(dir).expect("open container");
    let (mut info_all, mut names) = (vec![], vec![]);
    for _ in 0..runs {
        let t = Instant::now();
        black_box(c.info_all().expect("info_all"));
        info_all.push(ns(t));
        let t = Instant::now();
        black_box(c.ls().expect("ls"));
        names.push(ns(t));
    }
    json!({"arrays": c.ls().expect("ls").len(), "info_all_ns": median(info_all), "ls_ns": median(names)})
}

/// The same sum over the map (first touch after a fresh open in a fresh process, then warm) and
/// over an in-RAM copy (`Vec`) in the same process.
fn scan(dir: &str, runs: usize) -> serde_json::Value {
    let c = Container::open(dir).expect("open container");
    let a = c.open_dense::<f64>("x").expect("open");
    let x = a.as_slice();
    let n = x.len() as f64;
    let expect = n * (n - 1.0) / 2.0;
    let faults = minor_faults();
    let t = Instant::now();
    let s = black_box(sum_f64(black_box(x)));
    let first = ns(t);
    let first_faults = minor_faults() - faults;
    assert_eq!(s, expect, "sum over the map");
    let t = Instant::now();
    let v = x.to_vec();
    let copy = ns(t);
    // Alternate the two so drift (frequency, other load) hits both alike.
    let (mut warm, mut in_ram) = (vec![], vec![]);
    let faults = minor_faults();
    for run in 0..runs * 2 {
        let (slice, into) = if run % 2 == 0 {
            (x, &mut warm)
        } else {
            (&v[..], &mut in_ram)
        };
        let t = Instant::now();
        black_box(sum_f64(black_box(slice)));
        into.push(ns(t));
    }
    let warm_faults = minor_faults() - faults;
    // Run 2k (map) and 2k+1 (Vec) ran back to back, under the same foreign load: the median of
    // their ratios is the estimate least moved by load that comes and goes.
    let mut pairs: Vec<f64> = warm
        .iter()
        .zip(&in_ram)
        .map(|(&m, &v)| m as f64 / v.max(1) as f64)
        .collect();
    pairs.sort_by(f64::total_cmp);
    let paired_ratio = pairs.get(pairs.len() / 2).copied().unwrap_or(0.0);
    // Huge pages would make the two differ by TLB misses alone: say which side had them.
    let rollup = "/proc/self/smaps_rollup";
    let huge = |field| proc_kb(rollup, field).unwrap_or(0);
    assert_eq!(sum_f64(&v), expect, "sum over the copy");
    json!({
        "bytes": x.len() * 8,
        "runs": runs,
        "map_first_sum_ns": first,
        "map_first_minor_faults": first_faults,
        "map_warm_sum_ns": median(warm.clone()),
        "map_warm_sum_min_ns": warm.iter().min().copied().unwrap_or(0),
        "copy_to_vec_ns": copy,
        "vec_sum_ns": median(in_ram.clone()),
        "vec_sum_min_ns": in_ram.iter().min().copied().unwrap_or(0),
        "warm_minor_faults": warm_faults,
        "paired_ratio_median": paired_ratio,
        "anon_huge_bytes": huge("AnonHugePages"),
        "file_huge_bytes": huge("FilePmdMapped") + huge("ShmemPmdMapped"),
    })
}

/// A CSR `m` of ROWS × COLS with NNZ entries, NNZ/ROWS per row at evenly spread columns
/// (sorted, unique), data `(e % 1000) * 0.5`: written, opened, sliced.
fn sparse(dir: &str, rows: u64, cols: u64, nnz: u64, runs: usize) -> serde_json::Value {
    let c = container(dir);
    let per_row = nnz / rows;
    let step = cols / per_row;
    assert!(
        per_row > 0 && step > 0 && per_row * rows == nnz,
        "nnz must be a multiple of rows"
    );
    let mut write_ns = None;
    if c.info("m").is_err() {
        let mut indptr = Vec::with_capacity(rows as usize + 1);
        let mut indices = Vec::with_capacity(nnz as usize);
        indptr.push(0i64);
        for r in 0..rows {
            for j in 0..per_row {
                indices.push((j * step + r % step) as i32);
            }
            indptr.push(indices.len() as i64);
        }
        let data: Vec<f64> = (0..nnz).map(|e| (e % 1000) as f64 * 0.5).collect();
        let t = Instant::now();
        c.write_sparse::<f64, i32, i64>("m", Layout::Rows, [rows, cols], &data, &indices, &indptr)
            .expect("write sparse");
        write_ns = Some(ns(t));
    }
    let (mut first, mut drop_t) = (vec![], vec![]);
    for _ in 0..runs {
        let t = Instant::now();
        let m = c.open_sparse("m").expect("open sparse");
        first.push(ns(t));
        black_box(m.nnz());
        let t = Instant::now();
        drop(m);
        drop_t.push(ns(t));
    }
    // Row slices on a fresh open (first touch of those pages in this process), then warm.
    let m = c.open_sparse("m").expect("open sparse");
    let data = m.data::<f64>().expect("f64 data");
    let block = 1000.min(rows);
    let r0 = rows / 2;
    let block_sum = |m: &dafstore::SparseArray| {
        let a = m.major_range(r0).expect("row").start;
        let b = m.major_range(r0 + block - 1).expect("row").end;
        let idx = match m.indices() {
            dafstore::IndexSlice::I32(s) => s[a..b].iter().map(|&i| i as i64).sum::<i64>(),
            _ => unreachable!("written as i32"),
        };
        sum_f64(&data[a..b]) + idx as f64
    };
    let t = Instant::now();
    let s = black_box(block_sum(&m));
    let block_first = ns(t);
    let mut block_warm = vec![];
    for _ in 0..runs.max(10) {
        let t = Instant::now();
        black_box(block_sum(&m));
        block_warm.push(ns(t));
    }
    // Single rows at pseudo-random places (a fixed LCG, the Python side uses the same rows).
    let picks: Vec<u64> = lcg_rows(rows, 1000);
    let t = Instant::now();
    let mut acc = 0.0;
    for &r in &picks {
        let range = m.major_range(r).expect("row");
        acc += sum_f64(&data[range]);
    }
    black_box(acc);
    let rows_ns = ns(t);
    json!({
        "shape": [rows, cols],
        "nnz": nnz,
        "bytes": nnz * 12 + (rows + 1) * 8,
        "write_ns": write_ns,
        "first_open_ns": median(first),
        "drop_ns": median(drop_t),
        "block_rows": block,
        "block_first_ns": block_first,
        "block_warm_ns": median(block_warm),
        "block_check": s,
        "single_rows": picks.len(),
        "single_rows_total_ns": rows_ns,
    })
}

/// `count` row numbers below `rows` from a fixed linear congruential generator (the Python side
/// computes the same list).
fn lcg_rows(rows: u64, count: usize) -> Vec<u64> {
    let mut state: u64 = 12345;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % rows
        })
        .collect()
}

/// Maps `x`, reads all of it, prints the sum, and keeps the map until stdin closes (the parent
/// reads this process's `/proc/PID/smaps_rollup` meanwhile).
fn pss_worker(dir: &str) {
    let c = Container::open(dir).expect("open container");
    let a = c.open_dense::<f64>("x").expect("open");
    let s = sum_f64(a.as_slice());
    println!("{s}");
    std::io::stdout().flush().expect("flush");
    let mut buf = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut buf);
    drop(a);
}

/// CYCLES × (open `small`, sum it, drop: reference 0→1→0, mmap, munmap).
fn leak(dir: &str, cycles: u64) -> serde_json::Value {
    let start_rss = rss_bytes();
    let start_fds = open_fds();
    let c = container(dir);
    if c.info("small").is_err() {
        let v: Vec<f64> = (0..8192).map(|i| i as f64).collect();
        c.write_dense::<f64>("small", &[8192], &v)
            .expect("write small");
    }
    let cycle = |c: &Container| {
        let a = c.open_dense::<f64>("small").expect("open");
        black_box(sum_f64(a.as_slice()));
    };
    for _ in 0..1000 {
        cycle(&c);
    }
    let (rss0, fds0) = (rss_bytes(), open_fds());
    let t = Instant::now();
    for _ in 0..cycles {
        cycle(&c);
    }
    let total = ns(t);
    let (rss1, fds1) = (rss_bytes(), open_fds());
    let stats = dafstore::cache_stats();
    json!({
        "cycles": cycles,
        "array_bytes": 8192 * 8,
        "warmup_cycles": 1000,
        "rss_at_start": start_rss,
        "fds_at_start": start_fds,
        "rss_before": rss0,
        "rss_after": rss1,
        "rss_growth": rss1 as i64 - rss0 as i64,
        "fds_before": fds0,
        "fds_after": fds1,
        "ns_per_cycle": total / u128::from(cycles.max(1)),
        "live_maps_after": stats.live_maps,
        "maps_created": stats.maps_created,
    })
}

/// Catalog operations as the container grows to each COUNT of one-element arrays.
fn scale(dir: &str, counts: &[u64]) -> serde_json::Value {
    let mut c = container(dir);
    let mut have = c.ls().expect("names").len() as u64;
    let mut out = vec![];
    for &target in counts {
        let t = Instant::now();
        let added = target.saturating_sub(have);
        for i in have..target {
            c.write_dense::<f64>(&format!("a{i:06}"), &[1], &[i as f64])
                .expect("write tiny");
        }
        let write_total = ns(t);
        have = have.max(target);
        let probe = format!("a{:06}", target / 2);
        // A second handle while `c` lives shares its connection and session: only gc runs.
        let mut second_open = vec![];
        for _ in 0..5 {
            let t = Instant::now();
            black_box(Container::open(dir).expect("open container"));
            second_open.push(ns(t));
        }
        let mut ls = vec![];
        for _ in 0..3 {
            let t = Instant::now();
            let r = c.info_all().expect("records");
            ls.push(ns(t));
            assert_eq!(r.len() as u64, have);
        }
        let mut names = vec![];
        for _ in 0..3 {
            let t = Instant::now();
            black_box(c.ls().expect("names"));
            names.push(ns(t));
        }
        let (mut first, mut record) = (vec![], vec![]);
        for _ in 0..200 {
            let t = Instant::now();
            let a = c.open_dense::<f64>(&probe).expect("open one");
            first.push(ns(t));
            black_box(a.as_slice()[0]);
            drop(a);
            let t = Instant::now();
            black_box(c.info(&probe).expect("record"));
            record.push(ns(t));
        }
        let t = Instant::now();
        let report = Container::fsck_dir(Path::new(dir), FsckOptions::default(), &mut |_, _| {})
            .expect("fsck");
        let fsck = ns(t);
        assert!(
            report.problems.is_empty(),
            "fsck found {:?}",
            report.problems
        );
        // What a process pays to start and end with the container: with no other handle alive,
        // open starts a session (connection, session file, catalog row, gc) and drop ends it.
        drop(c);
        let (mut container_open, mut container_drop) = (vec![], vec![]);
        for _ in 0..3 {
            let t = Instant::now();
            let h = Container::open(dir).expect("open container");
            container_open.push(ns(t));
            let t = Instant::now();
            drop(h);
            container_drop.push(ns(t));
        }
        c = Container::open(dir).expect("open container");
        out.push(json!({
            "arrays": have,
            "write_per_array_ns": if added > 0 { write_total / u128::from(added) } else { 0 },
            "container_open_ns": median(container_open),
            "container_drop_ns": median(container_drop),
            "second_handle_open_ns": median(second_open),
            "ls_records_ns": median(ls),
            "names_ns": median(names),
            "first_open_one_ns": median(first),
            "record_one_ns": median(record),
            "fsck_ns": fsck,
            "fsck_arrays_checked": report.arrays_checked,
        }));
    }
    json!({ "scale": out })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| -> &str { args.get(i).map(String::as_str).unwrap_or_else(|| usage()) };
    let num = |i: usize| -> u64 { arg(i).parse().unwrap_or_else(|_| usage()) };
    let out = match arg(1) {
        "write" => write(arg(2), num(3), num(4) as usize),
        "open" => open(arg(2), num(3) as usize),
        "profile-open" => profile_open(arg(2), num(3)),
        "profile-publish" => profile_publish(arg(2), num(3), num(4)),
        "profile-ls" => profile_ls(arg(2), num(3)),
        "profile-cached" => profile_cached(arg(2), num(3)),
        "profile-container" => profile_container(arg(2), num(3)),
        "profile-gc" => profile_gc(arg(2), num(3)),
        "write-bytes" => write_bytes(arg(2), num(3) as usize, num(4) as usize),
        "ls-times" => ls_times(arg(2), num(3) as usize),
        "scan" => scan(arg(2), num(3) as usize),
        "sparse" => sparse(arg(2), num(3), num(4), num(5), num(6) as usize),
        "pss-worker" => {
            pss_worker(arg(2));
            return;
        }
        "leak" => leak(arg(2), num(3)),
        "scale" => {
            let counts: Vec<u64> = (3..args.len()).map(num).collect();
            scale(arg(2), &counts)
        }
        _ => usage(),
    };
    println!("{out}");
}

fn usage() -> ! {
    eprintln!("usage: see the header of bench/src/bin/suite_bench.rs");
    std::process::exit(2)
}
