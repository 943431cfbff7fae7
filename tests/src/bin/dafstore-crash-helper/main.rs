//! A child process for the crash tests (`tests/tests/kill_loop.rs`, `crash_points.rs`,
//! `io_errors.rs`). Commands:
//!
//! - `churn DIR SLOT SLOTS SEED LOG`: random creates, replaces (dense through a map or from a
//!   slice, sparse, tables, batches of 2–4 of its dense and sparse names, SPEC [W11]), removes,
//!   retains, releases, opens, open-or-loads, scratch arrays and cached entries (SPEC 9.7: written
//!   `cached`, or loaded by `open_or_load` with its default options), forever (30 s at most),
//!   until the parent kills it. Slot `SLOT` of `SLOTS` owns the names `kSLOT/...` (only it
//!   publishes or removes them); it holds and opens the non-scratch names of every slot. Before
//!   each operation it appends `B OP NAME SEED` to LOG (for a batch, `B batch
//!   NAME=SEED,NAME=SEED,... N`: its N entries), and after the operation returned `E RESULT`,
//!   synced, so the parent knows which operations returned and which one was interrupted. A write
//!   that fails with `WriteError::Capacity` (nothing published) is logged `E full`. Before each
//!   cached write it logs whether the entry is there (`peek`, no reference taken), and after each
//!   operation, while it holds cached entries, that they are all still there (`B held - 0`,
//!   `E ok N`). An unexpected error, a torn array, or a cached entry that this process holds found
//!   evicted (SPEC [E4]: never) is logged as `X MESSAGE` and ends the process with status 3.
//! - `op DIR OP NAME [SEED]`: one operation, then prints `ok`, `ok SEED`, `removed`, `deferred`,
//!   `notfound` or `err MESSAGE`. OP: `dense-mapped`, `write-dense`, `sparse`, `scratch` (dense,
//!   scratch), `bytes-mapped` and `bytes-write` (SEED ones as a uint8 array, through a map or
//!   from a slice), `remove`, `open`, `retain` (and keep it), `hold-remove-release` (hold NAME, remove
//!   it (deferred by this process's own reference), release it: the release runs the deletion),
//!   `open-only` (just open the container: recovery and gc), `write-then-open` (write-dense, then
//!   open NAME in the same process and print `ok SEED`), `hold-forever` (hold NAME, print
//!   `held`, sleep until killed), `batch` (NAME is a comma-separated list: the dense arrays of
//!   seeds SEED, SEED + 1, … published in one batch, SPEC [W11]), `batch-rounds` (SEED batches,
//!   round r publishing `NAME0` … `NAME99` with seeds 1000 r, 1000 r + 1, …).
//! - `fill-holes DIR NAME BYTES`: creates a dense uint8 array with `Allocation::Holes` and fills
//!   every byte through the map, then publishes (on a full file system: SIGBUS).
//! - `fork-then-open DIR NAME`: opens NAME once (its stripe's lock file is then kept open by
//!   this process, SPEC [W6]), forks a child that sleeps 60 s, prints `child PID`, then opens NAME
//!   again when a line arrives on stdin (with a `wait=` failpoint in the open path, the parent
//!   then waits there holding the stripe shared, to be killed).
//! - `rlimit BYTES DIR OP NAME SEED`: sets RLIMIT_FSIZE to BYTES, ignores SIGXFSZ (so writes past
//!   the limit fail with EFBIG), then runs `op DIR OP NAME SEED`.
//!
//! With the `failpoints` feature, `DAFSTORE_FAILPOINT` (see `engine/src/failpoint.rs`) stops any
//! of these at a chosen step.

mod gen;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dafstore::{
    Allocation, Container, CreateOptions, DType, Layout, Lifecycle, LoadOptions, OpenError,
    Removal, WriteError,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["churn", dir, slot, slots, seed, log] => churn(dir, slot, slots, seed, log),
        ["op", dir, op, name, rest @ ..] => {
            println!("{}", one_op(dir, op, name, rest.first().copied()));
            ExitCode::SUCCESS
        }
        ["fill-holes", dir, name, bytes] => fill_holes(dir, name, bytes),
        ["fork-then-open", dir, name] => fork_then_open(dir, name),
        ["rlimit", bytes, dir, op, name, seed] => {
            limit_file_size(bytes.parse().expect("BYTES"));
            println!("{}", one_op(dir, op, name, Some(seed)));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: see the module documentation (got {args:?})");
            ExitCode::from(2)
        }
    }
}

/// See `fork-then-open` in the module documentation.
fn fork_then_open(dir: &str, name: &str) -> ExitCode {
    let c = Container::open(dir).expect("open container");
    drop(c.open_array(name).expect("first open"));
    // SAFETY: single-threaded here; the child only sleeps, then exits without running anything
    // of its parent's state (`_exit`).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        std::thread::sleep(Duration::from_secs(60));
        // SAFETY: ends the child at once, as a crash would.
        unsafe { libc::_exit(0) };
    }
    println!("child {pid}");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    drop(c.open_array(name).expect("second open"));
    println!("opened");
    ExitCode::SUCCESS
}

/// Entries of each batch of `batch-rounds`.
const BATCH_ROUND_LEN: u64 = 100;

/// Publishes the dense arrays of seeds `seed`, `seed + 1`, … under `names` in one batch (SPEC
/// [W11]).
fn write_batch<'a>(
    c: &Container,
    names: impl IntoIterator<Item = &'a str>,
    seed: u64,
) -> Result<(), String> {
    let mut b = c.batch().map_err(gen::write_err)?;
    for (i, n) in names.into_iter().enumerate() {
        let v = gen::dense_values(seed + i as u64);
        b.write_dense::<u64>(n, &[v.len() as u64], &v)
            .map_err(gen::write_err)?;
    }
    b.publish().map_err(gen::write_err)
}

fn one_op(dir: &str, op: &str, name: &str, seed: Option<&str>) -> String {
    let c = match Container::open(dir) {
        Ok(c) => c,
        Err(e) => return format!("err open: {e}"),
    };
    let seed: u64 = seed.and_then(|s| s.parse().ok()).unwrap_or(1);
    let done = |r: Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("err {e}"),
    };
    match op {
        "dense-mapped" => done(gen::publish_dense_mapped(&c, name, seed)),
        "write-dense" => done(gen::write_dense(&c, name, seed)),
        "batch" => done(write_batch(&c, name.split(','), seed)),
        "batch-rounds" => done((1..=seed).try_for_each(|round| {
            let names: Vec<String> = (0..BATCH_ROUND_LEN).map(|i| format!("{name}{i}")).collect();
            write_batch(&c, names.iter().map(String::as_str), round * 1000)
        })),
        "sparse" => done(gen::write_sparse(&c, name, seed)),
        "scratch" => done(publish_scratch(&c, name, seed)),
        "bytes-mapped" => done(bytes_mapped(&c, name, seed)),
        "bytes-write" => done(
            c.write_dense::<u8>(name, &[seed], &vec![1u8; seed as usize])
                .map_err(|e| e.to_string()),
        ),
        "remove" => match c.remove(name) {
            Ok(Removal::Removed) => "removed".into(),
            Ok(Removal::Deferred { .. }) => "deferred".into(),
            Err(WriteError::NotFound { .. }) => "notfound".into(),
            Err(e) => format!("err {e}"),
        },
        "write-then-open" => match gen::write_dense(&c, name, seed) {
            Ok(()) => match gen::open_and_verify(&c, name) {
                Ok(Some(s)) => format!("ok {s}"),
                Ok(None) => "notfound".into(),
                Err(e) => format!("err open: {e}"),
            },
            Err(e) => format!("err {e}"),
        },
        "open" => match gen::open_and_verify(&c, name) {
            Ok(Some(s)) => format!("ok {s}"),
            Ok(None) => "notfound".into(),
            Err(e) => format!("err {e}"),
        },
        "retain" => match c.retain(name) {
            Ok(()) => {
                // Keep the reference: leave without releasing (as a crash would).
                std::mem::forget(c);
                "ok".into()
            }
            Err(OpenError::NotFound { .. }) => "notfound".into(),
            Err(e) => format!("err {e}"),
        },
        "hold-remove-release" => {
            let r = (|| -> Result<String, String> {
                c.retain(name).map_err(|e| e.to_string())?;
                let removal = c.remove(name).map_err(|e| e.to_string())?;
                c.release(name).map_err(|e| e.to_string())?;
                Ok(format!("{removal:?}"))
            })();
            match r {
                Ok(s) => format!("ok {s}"),
                Err(e) => format!("err {e}"),
            }
        }
        "open-only" => "ok".into(),
        "hold-forever" => match c.hold(name) {
            Ok(r) => {
                println!("held");
                let _ = std::io::stdout().flush();
                std::thread::sleep(Duration::from_secs(120));
                drop(r);
                "ok".into()
            }
            Err(e) => format!("err {e}"),
        },
        _ => format!("err unknown op {op}"),
    }
}

/// A dense uint8 array of `len` ones, through a mapped writer (space reserved at create).
fn bytes_mapped(c: &Container, name: &str, len: u64) -> Result<(), String> {
    let mut w = c
        .create_dense::<u8>(name, &[len])
        .map_err(|e| e.to_string())?;
    w.as_bytes_mut().fill(1);
    w.publish().map_err(|e| e.to_string())
}

fn publish_scratch(c: &Container, name: &str, seed: u64) -> Result<(), String> {
    let v = gen::dense_values(seed);
    let opts = CreateOptions {
        scratch: true,
        ..CreateOptions::default()
    };
    let mut w = c
        .create_dense_with(name, DType::UInt64, &[v.len() as u64], opts)
        .map_err(gen::write_err)?;
    w.as_mut_slice::<u64>()
        .map_err(|e| e.to_string())?
        .copy_from_slice(&v);
    w.publish().map_err(gen::write_err)
}

fn fill_holes(dir: &str, name: &str, bytes: &str) -> ExitCode {
    let c = Container::open(dir).expect("open");
    let len: u64 = bytes.parse().expect("BYTES");
    let opts = CreateOptions {
        allocation: Allocation::Holes,
        ..CreateOptions::default()
    };
    let mut w = c
        .create_dense_with(name, DType::UInt8, &[len], opts)
        .expect("create with holes");
    println!("created");
    let _ = std::io::stdout().flush();
    // Touch every page: on a full file system the first page that cannot be allocated is SIGBUS.
    w.as_bytes_mut().fill(1);
    println!("filled");
    match w.publish() {
        Ok(()) => println!("ok"),
        Err(e) => println!("err {e}"),
    }
    ExitCode::SUCCESS
}

/// RLIMIT_FSIZE = `bytes`, SIGXFSZ ignored: a write past the limit fails with EFBIG.
fn limit_file_size(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: plain libc calls with valid arguments; `lim` outlives the call; SIG_IGN is a valid
    // disposition for SIGXFSZ.
    unsafe {
        assert_eq!(libc::signal(libc::SIGXFSZ, libc::SIG_IGN), libc::SIG_DFL);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

/// The operations of `churn`, with their log spellings.
#[derive(Clone, Copy)]
enum Op {
    DenseMapped,
    WriteDense,
    Sparse,
    Table,
    Remove,
    Hold,
    Release,
    Open,
    Load,
    ScratchPublish,
    ScratchHold,
    ScratchRelease,
    ScratchOpen,
    CachedWrite,
    CachedLoad,
    Batch,
}

impl Op {
    fn tag(self) -> &'static str {
        match self {
            Op::DenseMapped => "pub",
            Op::WriteDense => "wr",
            Op::Sparse => "sp",
            Op::Table => "tb",
            Op::Remove => "rm",
            Op::Hold => "hold",
            Op::Release => "rel",
            Op::Open => "open",
            Op::Load => "load",
            Op::ScratchPublish => "spub",
            Op::ScratchHold => "shold",
            Op::ScratchRelease => "srel",
            Op::ScratchOpen => "sopen",
            Op::CachedWrite => "cwr",
            Op::CachedLoad => "cload",
            Op::Batch => "batch",
        }
    }
}

/// The error of a loader in the kill loop (any `open_or_load` failure, as text).
struct LoadFailed(String);

impl From<dafstore::LoadError> for LoadFailed {
    fn from(e: dafstore::LoadError) -> LoadFailed {
        LoadFailed(e.to_string())
    }
}

/// The result of a write: `ok`, or `full` if it failed with [`WriteError::Capacity`] (nothing
/// published), or the failure.
fn written(r: Result<(), String>) -> Result<String, String> {
    match r {
        Ok(()) => Ok("ok".into()),
        Err(e) if e.starts_with(gen::FULL) => Ok("full".into()),
        Err(e) => Err(e),
    }
}

/// `open_or_load` of `name` with `opts` and a loader that writes `seed` with `write`: `loaded`
/// if our loader published `seed`, `ok <seed>` of what it opened, `full` if the loader's write
/// did not fit (nothing published).
fn load(
    c: &Container,
    name: &str,
    seed: u64,
    opts: &LoadOptions,
    write: fn(&Container, &str, u64) -> Result<(), String>,
) -> Result<String, String> {
    let loaded = std::cell::Cell::new(false);
    let r = c.open_or_load_with(
        name,
        opts,
        |c: &Container, n: &str| -> Result<(), LoadFailed> {
            loaded.set(true);
            write(c, n, seed).map_err(LoadFailed)
        },
    );
    match r {
        Ok(a) if loaded.get() => gen::verify_array(&a).and_then(|s| {
            if s == seed {
                Ok("loaded".to_string())
            } else {
                Err(format!("load {name}: loaded {seed}, opened {s}"))
            }
        }),
        Ok(a) => gen::verify_array(&a).map(|s| format!("ok {s}")),
        Err(LoadFailed(e)) if e.starts_with(gen::FULL) => Ok("full".into()),
        Err(LoadFailed(e)) => Err(format!("load {name}: {e}")),
    }
}

struct Log(File);

impl Log {
    /// Appends one line with one `write` (whole or not at all when the process is killed).
    fn line(&mut self, text: &str, sync: bool) {
        let mut buf = text.as_bytes().to_vec();
        buf.push(b'\n');
        self.0.write_all(&buf).expect("write log");
        if sync {
            self.0.sync_data().expect("sync log");
        }
    }
}

fn churn(dir: &str, slot: &str, slots: &str, seed: &str, log: &str) -> ExitCode {
    let slot: u64 = slot.parse().expect("SLOT");
    let slots: u64 = slots.parse().expect("SLOTS");
    let mut rng = gen::Rng::new(seed.parse().expect("SEED"));
    let mut log = Log(OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log"));
    let names = churn_names(slot);
    let all: Vec<String> = (0..slots)
        .flat_map(|s| {
            let n = churn_names(s);
            n.dense.into_iter().chain(n.sparse).chain(n.cached)
        })
        .collect();
    let fail = |log: &mut Log, msg: String| -> ExitCode {
        log.line(&format!("X {msg}"), true);
        eprintln!("churn: {msg}");
        ExitCode::from(3)
    };
    log.line("B open-container - 0", false);
    let c = match Container::open(dir) {
        Ok(c) => c,
        Err(e) => return fail(&mut log, format!("open: {e}")),
    };
    log.line("E ok", true);
    let mut held: HashMap<String, u64> = HashMap::new();
    let end = Instant::now() + Duration::from_secs(30);
    let pick = |rng: &mut gen::Rng, v: &[String]| v[rng.below(v.len() as u64) as usize].clone();
    while Instant::now() < end {
        let p = rng.below(100);
        // Holds and opens go to this slot's cached entries half of the time (to check that
        // what it holds is never evicted), else to any non-scratch name of any slot.
        let target = |rng: &mut gen::Rng| {
            if rng.below(2) == 0 {
                pick(rng, &names.cached)
            } else {
                pick(rng, &all)
            }
        };
        let mut batch: Vec<(String, u64)> = Vec::new();
        let (op, name) = match p {
            0..13 => (Op::DenseMapped, pick(&mut rng, &names.dense)),
            13..16 => (Op::WriteDense, pick(&mut rng, &names.dense)),
            16..19 => (Op::Load, pick(&mut rng, &names.dense)),
            19..23 => (Op::Table, names.table.clone()),
            23..31 => (Op::Sparse, pick(&mut rng, &names.sparse)),
            31..37 => {
                batch = pick_batch(&mut rng, &names);
                let field: Vec<String> = batch.iter().map(|(n, s)| format!("{n}={s}")).collect();
                (Op::Batch, field.join(","))
            }
            37..46 => {
                let own: Vec<String> = names
                    .dense
                    .iter()
                    .chain(&names.sparse)
                    .chain([&names.table])
                    .cloned()
                    .collect();
                (Op::Remove, pick(&mut rng, &own))
            }
            46..54 => (Op::Hold, target(&mut rng)),
            54..62 => {
                let mine: Vec<String> = held
                    .iter()
                    .filter(|(n, k)| **k > 0 && !n.ends_with("/t0"))
                    .map(|(n, _)| n.clone())
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                (Op::Release, pick(&mut rng, &mine))
            }
            62..72 => (Op::Open, target(&mut rng)),
            72..77 => (Op::ScratchPublish, names.scratch.clone()),
            77..80 => (Op::ScratchHold, names.scratch.clone()),
            80..82 => {
                if held.get(&names.scratch).copied().unwrap_or(0) == 0 {
                    continue;
                }
                (Op::ScratchRelease, names.scratch.clone())
            }
            82..84 => (Op::ScratchOpen, names.scratch.clone()),
            84..93 => (Op::CachedWrite, pick(&mut rng, &names.cached)),
            _ => (Op::CachedLoad, pick(&mut rng, &names.cached)),
        };
        // Cached entries are big seven times in eight (written through a map of a file with
        // holes), so that the capacity makes writes evict them often; every other array stays
        // within the sizes the parent's capacity counts on.
        let r = rng.next();
        let seed = match op {
            Op::Batch => batch.len() as u64,
            Op::CachedWrite | Op::CachedLoad if !r.is_multiple_of(8) => gen::big_seed(r >> 3),
            _ => gen::plain_seed(r),
        };
        // A cached entry this process holds is never evicted (SPEC [E4]).
        let held_cached = is_cached(&name) && held.get(&name).copied().unwrap_or(0) > 0;
        if let Op::CachedWrite = op {
            // Whether the generation it replaces is still there, without a reference (which
            // would change the order of eviction): `present` or `absent` (evicted, or never
            // written).
            log.line(&format!("B peek {name} 0"), false);
            let r = match c.info(&name) {
                Ok(i) if i.lifecycle == Lifecycle::Cached => "present",
                Ok(i) => return fail(&mut log, format!("{name} is {:?}", i.lifecycle)),
                Err(OpenError::NotFound { .. }) => "absent",
                Err(e) => return fail(&mut log, format!("info {name}: {e}")),
            };
            if held_cached && r == "absent" {
                let msg = format!("{name} is held by this process but was evicted: absent");
                return fail(&mut log, msg);
            }
            log.line(&format!("E {r}"), true);
        }
        log.line(&format!("B {} {name} {seed}", op.tag()), false);
        let result: Result<String, String> = match op {
            Op::DenseMapped => written(gen::publish_dense_mapped(&c, &name, seed)),
            Op::WriteDense => written(gen::write_dense(&c, &name, seed)),
            Op::Sparse => written(gen::write_sparse(&c, &name, seed)),
            Op::Table => written(gen::write_table(&c, &name, seed)),
            Op::ScratchPublish => written(publish_scratch(&c, &name, seed)),
            Op::CachedWrite => written(gen::write_cached(&c, &name, seed, Some(Lifecycle::Cached))),
            Op::Batch => written(publish_batch(&c, &batch)),
            Op::Remove => match c.remove(&name) {
                Ok(Removal::Removed) => Ok("removed".into()),
                Ok(Removal::Deferred { .. }) => Ok("deferred".into()),
                Err(WriteError::NotFound { .. }) => Ok("notfound".into()),
                Err(e) => Err(format!("remove {name}: {e}")),
            },
            Op::Hold | Op::ScratchHold => match c.retain(&name) {
                Ok(()) => {
                    *held.entry(name.clone()).or_default() += 1;
                    Ok("ok".into())
                }
                Err(OpenError::NotFound { .. }) => Ok("notfound".into()),
                Err(e) => Err(format!("retain {name}: {e}")),
            },
            Op::Release | Op::ScratchRelease => match c.release(&name) {
                Ok(()) => {
                    if let Some(k) = held.get_mut(&name) {
                        *k -= 1;
                    }
                    Ok("ok".into())
                }
                Err(e) => Err(format!("release {name}: {e}")),
            },
            // open_or_load: "loaded" if our loader published `seed`, else "ok <seed>" of what
            // it opened (only this slot changes its names). The dense names stay persistent
            // (never evicted); the cached names take the default, cached.
            Op::Load => {
                let persistent = LoadOptions {
                    lifecycle: Lifecycle::Persistent,
                    ..LoadOptions::default()
                };
                load(&c, &name, seed, &persistent, gen::write_dense)
            }
            Op::CachedLoad => load(&c, &name, seed, &LoadOptions::default(), |c, n, s| {
                gen::write_cached(c, n, s, None)
            }),
            Op::Open | Op::ScratchOpen => match gen::open_and_verify(&c, &name) {
                Ok(Some(s)) => Ok(format!("ok {s}")),
                Ok(None) => Ok("notfound".into()),
                Err(e) => Err(format!("open {e}")),
            },
        };
        // Not found by an open or a hold, or loaded (or a load that did not fit: its loader
        // ran), it was gone; a cached write that does not fit says nothing of the old one.
        if let Ok(r) = &result {
            let gone = matches!(r.as_str(), "notfound" | "loaded" | "full");
            if held_cached && gone && !matches!(op, Op::CachedWrite) {
                let msg = format!("{name} is held by this process but was evicted: {r}");
                return fail(&mut log, msg);
            }
        }
        match result {
            Ok(r) => log.line(&format!("E {r}"), true),
            Err(e) => return fail(&mut log, e),
        }
        // Every cached entry this process holds is still there, whoever wrote since (SPEC
        // [E4]): logged `B held - 0`, `E ok N` (N entries checked).
        let holding: Vec<&String> = held
            .iter()
            .filter(|(n, k)| **k > 0 && is_cached(n))
            .map(|(n, _)| n)
            .collect();
        if !holding.is_empty() {
            log.line("B held - 0", false);
            for n in &holding {
                if let Err(e) = still_there(&c, n) {
                    return fail(&mut log, format!("{n} is held by this process but {e}"));
                }
            }
            log.line(&format!("E ok {}", holding.len()), false);
        }
    }
    ExitCode::SUCCESS
}

/// 2–4 distinct names of this slot's dense and sparse names (new or replaced), each with a seed
/// of its own: a dense entry's is a [`gen::small_seed`].
fn pick_batch(rng: &mut gen::Rng, names: &ChurnNames) -> Vec<(String, u64)> {
    let mut pool: Vec<&String> = names.dense.iter().chain(&names.sparse).collect();
    let k = 2 + rng.below(3);
    (0..k)
        .map(|_| {
            let n = pool.remove(rng.below(pool.len() as u64) as usize).clone();
            let r = rng.next();
            let seed = if names.sparse.contains(&n) {
                gen::plain_seed(r)
            } else {
                gen::small_seed(r)
            };
            (n, seed)
        })
        .collect()
}

/// Publishes `entries` in one batch (SPEC [W11]): sparse names as sparse arrays, dense ones from
/// a typed slice or from bytes, by the seed's parity.
fn publish_batch(c: &Container, entries: &[(String, u64)]) -> Result<(), String> {
    let mut b = c.batch().map_err(gen::write_err)?;
    for (n, seed) in entries {
        let len = gen::dense_len(*seed);
        if n.contains("/s") {
            let p = gen::sparse_parts(*seed);
            b.write_sparse::<u64, u32, u64>(
                n,
                Layout::Rows,
                p.shape,
                &p.data,
                &p.indices,
                &p.indptr,
            )
        } else if seed.is_multiple_of(2) {
            b.write_dense::<u64>(n, &[len], &gen::dense_values(*seed))
        } else {
            b.write_dense_bytes(n, DType::UInt64, &[len], &gen::dense_bytes(*seed))
        }
        .map_err(gen::write_err)?;
    }
    b.publish().map_err(gen::write_err)
}

/// `Ok` if `name` is live, or being replaced by its owner (`publishing`: the row stays; it may be
/// live again by the time `info_all` reads it).
fn still_there(c: &Container, name: &str) -> Result<(), String> {
    use dafstore::ArrayState::{Live, Publishing};
    match c.info(name) {
        Ok(_) => Ok(()),
        Err(OpenError::NotFound { .. }) => {
            let all = c.info_all().map_err(|e| format!("info_all: {e}"))?;
            match all.iter().find(|i| i.name == name) {
                Some(i) if matches!(i.state, Live | Publishing) => Ok(()),
                Some(i) => Err(format!("was evicted (it is {:?})", i.state)),
                None => Err("was evicted".into()),
            }
        }
        Err(e) => Err(format!("info: {e}")),
    }
}

/// Whether `name` is one of the churn's cached names (`kSLOT/cN`).
fn is_cached(name: &str) -> bool {
    name.contains("/c")
}

/// The names a churn slot owns.
struct ChurnNames {
    dense: Vec<String>,
    sparse: Vec<String>,
    table: String,
    scratch: String,
    /// Written and loaded `cached` only (SPEC 9.7), dense.
    cached: Vec<String>,
}

fn churn_names(slot: u64) -> ChurnNames {
    ChurnNames {
        dense: vec![
            format!("k{slot}/d0"),
            format!("k{slot}/d1"),
            format!("k{slot}/n/d2"),
            format!("k{slot}-top"),
        ],
        sparse: vec![format!("k{slot}/s0"), format!("k{slot}/s1")],
        table: format!("k{slot}/a0"),
        scratch: format!("k{slot}/t0"),
        cached: (0..4).map(|i| format!("k{slot}/c{i}")).collect(),
    }
}
