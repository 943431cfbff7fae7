//! The kill loop: two child processes create, replace, remove, retain, release, open and
//! open-or-load arrays (and scratch arrays, and cached entries, and batches of 2–4 dense and sparse
//! arrays published all or none, SPEC [W11]) on one container while this process SIGKILLs them at
//! random instants. The container has a capacity (SPEC 9.7, [`capacity`]) that always fits every
//! persistent, scratch, sparse and table array of the children with a write of each in flight,
//! but only a couple of cached entries besides: the children's writes evict cached entries often.
//! After every round (both children dead) it checks, from the children's synced operation logs:
//!
//! - while they ran (replaying each log in order): every open, hold and open-or-load of a name
//!   found the generation its owner last published; a cached entry may have been evicted at any
//!   time by any process, unless its owner held it (then it must be found: never evicted while
//!   held, [E4]); a write that did not fit (`full`) published nothing;
//! - before any recovery, what a reader without our code sees ([R1], `inspect::read_array_files`
//!   with checksums): every visible array is complete and is a generation the log allows — an
//!   array whose publish returned is there, unless a later operation on it was interrupted (or it
//!   is cached: then it may be gone); the data files, staged ones included, take at most the
//!   capacity;
//! - fsck before recovery finds only what crashes leave (interrupted operations, dead holders,
//!   due deletions, staging leftovers), never damage;
//! - after `Container::open` (recovery + gc): every persistent, scratch, sparse and table array
//!   whose publish returned is there with the exact bytes (or the interrupted operation's result,
//!   complete) — never evicted —, a cached one is there with its last generation or gone, nothing
//!   else is there (files included), every row is live, dead holders are reaped, deferred and
//!   scratch deletions ran, no staging file is left, no reservation is left, the entries fit the
//!   capacity, and a deep fsck is clean;
//! - a batch is all or none ([W11], 9.4): one that returned is there whole (as any publish that
//!   returned); after one that a kill interrupted, every entry is at its new generation or every
//!   one at what it was before, never some of each (before recovery, a reader without our code
//!   may see some of each: its renames are not one step).
//!
//! `DAFSTORE_KILL_LOOP=N` sets the number of rounds (default 30, a few seconds);
//! `DAFSTORE_KILL_SEED=S` replays a run (the seed is printed); `DAFSTORE_KILL_CAPACITY=BYTES`
//! sets another capacity.

#[path = "../src/bin/dafstore-crash-helper/gen.rs"]
mod gen;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dafstore::{ArrayState, Container, FsckOptions, Lifecycle, ProblemKind};
use dafstore_tests::{listing, Entry};
use gen::{DENSE_MAX_LEN, SPARSE_MAX_BYTES, TABLE_MAX_BYTES};

const HELPER: &str = env!("CARGO_BIN_EXE_dafstore-crash-helper");
const SLOTS: u64 = 2;

/// The state of one name as the logs tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum St {
    Absent,
    /// Published; for scratch names, whether it was ever held and how often its owner holds it.
    Live {
        seed: u64,
        ever_held: bool,
        held: u64,
    },
    /// Removal deferred while held ([W8]): gone after every holder died.
    Deleting(u64),
}

fn is_scratch(name: &str) -> bool {
    name.ends_with("/t0")
}

fn is_sparse(name: &str) -> bool {
    name.contains("/s")
}

fn is_table(name: &str) -> bool {
    name.contains("/a")
}

/// Written and loaded `cached` only (SPEC 9.7): evictable whenever its owner does not hold it.
fn is_cached(name: &str) -> bool {
    name.contains("/c")
}

fn slot_names(slot: u64) -> Vec<String> {
    vec![
        format!("k{slot}/d0"),
        format!("k{slot}/d1"),
        format!("k{slot}/n/d2"),
        format!("k{slot}-top"),
        format!("k{slot}/s0"),
        format!("k{slot}/s1"),
        format!("k{slot}/a0"),
        format!("k{slot}/t0"),
        format!("k{slot}/c0"),
        format!("k{slot}/c1"),
        format!("k{slot}/c2"),
        format!("k{slot}/c3"),
    ]
}

/// The capacity the container gets (SPEC 9.7): what every array of every slot but the cached ones
/// may take at most, each at its biggest (gen's maximum sizes), with one write of each slot in
/// flight, plus room for two of the biggest cached entries. A batch is a slot's one write in flight
/// too: its 2–4 entries are small (dense ones of [`gen::small_seed`], sparse ones), less in all
/// than the biggest single write ([`batch_max_bytes`]).
///
/// A write in flight adds at most twice its new bytes `N` to what is counted: its reservation `N`
/// before its publish intent; after it, the entry's rows count the new files (`N`, instead of the
/// old generation's `O`) and the reservation grows by `O` (the old files stay until renamed over)
/// until the `live` flip, so `O` is counted once and `N` twice (engine/src/catalog/mod.rs,
/// `begin_publish`). A killed writer's reservation counts until gc collects it; it was its
/// slot's one write in flight.
///
/// `DAFSTORE_KILL_CAPACITY=BYTES` sets another (a smaller one makes writes of every kind fail
/// with `full` too, and the checks still hold).
fn capacity() -> u64 {
    if let Some(c) = std::env::var("DAFSTORE_KILL_CAPACITY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return c;
    }
    let dense = DENSE_MAX_LEN * 8;
    let biggest = |name: &str| {
        if is_sparse(name) {
            SPARSE_MAX_BYTES
        } else if is_table(name) {
            TABLE_MAX_BYTES
        } else {
            dense
        }
    };
    let names = slot_names(0);
    let kept = names.iter().filter(|n| !is_cached(n));
    let stored: u64 = kept.clone().map(|n| biggest(n)).sum();
    let in_flight = 2 * kept
        .map(|n| biggest(n))
        .max()
        .unwrap_or(0)
        .max(batch_max_bytes());
    SLOTS * (stored + in_flight) + 2 * gen::BIG_MAX_LEN * 8
}

/// The most bytes of data files a batch of the children stages: 4 entries, each a small dense
/// array or a sparse one.
fn batch_max_bytes() -> u64 {
    4 * (gen::SMALL_MAX_LEN * 8).max(SPARSE_MAX_BYTES)
}

/// The entries of a batch as its log line names them (`NAME=SEED,NAME=SEED,...`).
fn batch_entries(field: &str) -> Result<Vec<(String, u64)>, String> {
    field
        .split(',')
        .map(|e| {
            let (n, s) = e.split_once('=').ok_or(format!("bad batch entry {e:?}"))?;
            let s = s
                .parse()
                .map_err(|_| format!("bad seed in batch entry {e:?}"))?;
            Ok((n.to_string(), s))
        })
        .collect()
}

/// Whether `name` is one of the dense or sparse names of `slot`, the names its batches publish.
fn owned_batch_name(name: &str, slot: u64) -> bool {
    slot_names(slot).iter().any(|n| n == name)
        && !(is_cached(name) || is_scratch(name) || is_table(name))
}

/// An interrupted batch: each entry's name, what recovery leaves of it if the batch did not reach
/// its commit point (its old state), and its new generation.
type Cut = Vec<(String, BTreeSet<Option<u64>>, u64)>;

/// What a reader without our code may see before recovery.
fn visible_before_recovery(st: &St, scratch: bool) -> BTreeSet<Option<u64>> {
    match st {
        St::Absent => [None].into(),
        St::Live {
            seed, ever_held, ..
        } if scratch && *ever_held => [Some(*seed), None].into(),
        St::Live { seed, .. } => [Some(*seed)].into(),
        St::Deleting(s) => [Some(*s), None].into(),
    }
}

/// What must be there once recovery and gc ran (every holder is dead by then).
fn present_after_recovery(st: &St, scratch: bool) -> BTreeSet<Option<u64>> {
    match st {
        St::Live {
            seed, ever_held, ..
        } if !(scratch && *ever_held) => [Some(*seed)].into(),
        _ => [None].into(),
    }
}

/// Applies one returned operation of the owner of `name`. `Err` when the result contradicts the
/// state (a lost or resurrected array).
fn apply(st: &St, op: &str, seed: u64, result: &str, scratch: bool) -> Result<St, String> {
    let lost = || Err(format!("{op} returned {result:?} but the array was {st:?}"));
    Ok(match (op, result) {
        ("pub" | "wr" | "sp" | "tb" | "spub", "ok") => match st {
            St::Live {
                ever_held, held, ..
            } if scratch => St::Live {
                seed,
                ever_held: *ever_held,
                held: *held,
            },
            _ => St::Live {
                seed,
                ever_held: false,
                held: 0,
            },
        },
        ("rm", "removed") => match st {
            St::Absent => return lost(),
            _ => St::Absent,
        },
        ("rm", "deferred") => match st {
            St::Live { seed, .. } | St::Deleting(seed) => St::Deleting(*seed),
            St::Absent => return lost(),
        },
        ("rm", "notfound") => match st {
            St::Live { .. } => return lost(),
            _ => St::Absent,
        },
        ("shold", "ok") => match st {
            St::Live { seed, held, .. } => St::Live {
                seed: *seed,
                ever_held: true,
                held: held + 1,
            },
            _ => return lost(),
        },
        ("shold" | "sopen", "notfound") => match st {
            St::Live { .. } => return lost(),
            _ => St::Absent,
        },
        ("srel", "ok") => match st {
            St::Live { seed, held, .. } if *held > 1 => St::Live {
                seed: *seed,
                ever_held: true,
                held: held - 1,
            },
            St::Live { .. } => St::Absent, // its last release deleted it ([P6])
            _ => return lost(),
        },
        ("sopen", r) if r.starts_with("ok ") => match st {
            St::Live { seed: s, held, .. } if r == format!("ok {s}") => {
                if *held == 0 {
                    St::Absent // opened (held) and closed: deleted ([P6])
                } else {
                    St::Live {
                        seed: *s,
                        ever_held: true,
                        held: *held,
                    }
                }
            }
            _ => return lost(),
        },
        ("open", r) if r.starts_with("ok ") => match st {
            St::Live { seed: s, .. } | St::Deleting(s) if r == format!("ok {s}") => st.clone(),
            _ => return lost(),
        },
        // open_or_load: loaded (published `seed`) only if it was not live; else opened it.
        ("load", "loaded") => match st {
            St::Live { .. } => return lost(),
            _ => St::Live {
                seed,
                ever_held: false,
                held: 0,
            },
        },
        // Opened: live, or deleting but still held by this process (as `open`, [P4]).
        ("load", r) if r.starts_with("ok ") => match st {
            St::Live { seed: s, .. } | St::Deleting(s) if r == format!("ok {s}") => st.clone(),
            _ => return lost(),
        },
        ("open", "notfound") => match st {
            St::Live { .. } => return lost(),
            _ => st.clone(),
        },
        // The loader ran (the name was not live), but its write did not fit: nothing published.
        ("load", "full") => match st {
            St::Live { .. } => return lost(),
            _ => st.clone(),
        },
        _ => st.clone(),
    })
}

/// Applies one returned operation of the owner of the cached name `name`. Its state is `Absent` or
/// `Live { seed, held }`: `seed` was published last, and it is there while this process holds it
/// (`held` > 0), else there or evicted. `Err` when the result contradicts that: a stale or
/// resurrected generation, or an entry evicted while held.
fn apply_cached(st: &St, op: &str, seed: u64, result: &str) -> Result<St, String> {
    let (cur, held) = match st {
        St::Live { seed, held, .. } => (Some(*seed), *held),
        St::Absent => (None, 0),
        St::Deleting(_) => return Err(format!("cached entry in state {st:?}")),
    };
    let live = |seed: u64, held: u64| St::Live {
        seed,
        ever_held: false,
        held,
    };
    let wrong = |why: &str| {
        Err(format!(
            "{op} returned {result:?} but the entry was {st:?}{why}"
        ))
    };
    let gone = || {
        if held > 0 {
            wrong(": evicted while this process held it")
        } else {
            Ok(St::Absent) // never published, or evicted
        }
    };
    match (op, result) {
        ("cwr", "ok") => Ok(live(seed, held)), // a replace keeps this process's references
        ("cwr", "full") => Ok(st.clone()),
        ("cload", "loaded") => gone().map(|_| live(seed, 0)),
        ("cload", "full") => gone(), // absent when it looked; its loader published nothing
        ("cload" | "open", r) if r.starts_with("ok ") => match cur {
            Some(s) if r == format!("ok {s}") => Ok(st.clone()),
            _ => wrong(""),
        },
        ("open" | "hold", "notfound") | ("peek", "absent") => gone(),
        ("peek", "present") => match cur {
            Some(_) => Ok(st.clone()),
            None => wrong(": resurrected"),
        },
        ("hold", "ok") => match cur {
            Some(s) => Ok(live(s, held + 1)),
            None => wrong(""),
        },
        ("rel", "ok") => match cur {
            Some(s) if held > 0 => Ok(live(s, held - 1)),
            _ => wrong(": released without a hold"),
        },
        _ => wrong(": unexpected"),
    }
}

/// The result an interrupted operation would have had, had it returned.
fn assumed_result(op: &str, st: &St) -> String {
    match (op, st) {
        ("rm", St::Absent) => "notfound".into(),
        ("rm", _) => "removed".into(),
        ("sopen", St::Live { seed, .. }) => format!("ok {seed}"),
        ("open", St::Live { seed, .. } | St::Deleting(seed)) => format!("ok {seed}"),
        ("load", St::Live { seed, .. }) => format!("ok {seed}"),
        ("load", _) => "loaded".into(),
        _ => "ok".into(),
    }
}

struct Allowed {
    before: BTreeSet<Option<u64>>,
    after: BTreeSet<Option<u64>>,
}

#[derive(Default)]
struct Stats {
    rounds: u64,
    kills: u64,
    interrupted_ops: u64,
    interrupted_publishes: u64,
    returned_publishes: u64,
    returned_ops: u64,
    /// open_or_load calls that returned having loaded, having opened, and that a kill interrupted.
    loads: [u64; 3],
    recovered: usize,
    reaped_sessions: usize,
    deleted: usize,
    staging_removed: usize,
    fsck_problems_before_recovery: BTreeMap<&'static str, u64>,
    repairs_needed: u64,
    /// Cached writes (`cwr`) that returned `ok`, `full`, and that a kill interrupted.
    cached_writes: [u64; 3],
    /// Cached open-or-loads (`cload`) that returned: loaded where nothing was known to be, loaded
    /// again after their entry was evicted, opened, `full`; interrupted.
    cached_loads: [u64; 5],
    /// Opens, holds, open-or-loads and presence checks (`peek`, before each cached write) by the
    /// owner that found its published cached entry evicted (a lower bound of the evictions: a
    /// generation evicted and replaced by an interrupted write, or evicted by the last writes of a
    /// round and found gone when it ended, is counted in `cached_at_check`, or not at all).
    evictions_seen: u64,
    /// Opens, holds, open-or-loads and presence checks by the owner of a cached entry it held:
    /// found (never evicted).
    held_found: u64,
    /// Cached entries (of any slot) that a child found still there when it checked, after each
    /// of its operations, every cached entry it held (it fails if one is gone).
    held_checked: u64,
    /// Writes that did not fit (`full`), by operation.
    full: BTreeMap<String, u64>,
    /// Batches that returned `ok`, `full`, and that a kill interrupted.
    batches: [u64; 3],
    /// Entries of the batches that returned `ok`.
    batch_entries: u64,
    /// Interrupted batches found after recovery: every entry at its new generation (its intent
    /// was committed), every entry as before.
    batches_after_kill: [u64; 2],
    /// Published cached entries, when the round ended: still there, evicted.
    cached_at_check: [u64; 2],
    /// The most bytes of data files (staged ones included) seen on disk before recovery, and of
    /// entries after it.
    peak_bytes: [u64; 2],
}

/// An operation whose `B` line has no `E` line: the kill interrupted it.
type Interrupted = Option<(String, String, u64)>;

/// Replays the returned operations of one child's log over `model`; returns the interrupted one.
fn replay(
    log: &str,
    slot: u64,
    model: &mut BTreeMap<String, St>,
    stats: &mut Stats,
) -> Result<Interrupted, String> {
    let mut pending: Option<(String, String, u64)> = None;
    for line in log.lines() {
        let mut parts = line.splitn(2, ' ');
        match (parts.next(), parts.next()) {
            (Some("B"), Some(rest)) => {
                let f: Vec<&str> = rest.split(' ').collect();
                let [op, name, seed] = f.as_slice() else {
                    return Err(format!("bad log line {line:?}"));
                };
                let seed = seed.parse().map_err(|_| format!("bad seed in {line:?}"))?;
                pending = Some((op.to_string(), name.to_string(), seed));
            }
            (Some("E"), Some(result)) => {
                let (op, name, seed) = pending.take().ok_or("E without B")?;
                if op == "held" {
                    // The child's check that every cached entry it holds is still there.
                    let n = result
                        .strip_prefix("ok ")
                        .and_then(|n| n.parse::<u64>().ok());
                    stats.held_checked += n.ok_or_else(|| format!("bad log line {line:?}"))?;
                    continue;
                }
                stats.returned_ops += 1;
                if op == "load" && result != "full" {
                    stats.loads[usize::from(result != "loaded")] += 1;
                }
                if (matches!(
                    op.as_str(),
                    "pub" | "wr" | "sp" | "tb" | "spub" | "cwr" | "batch"
                ) && result == "ok")
                    || (matches!(op.as_str(), "load" | "cload") && result == "loaded")
                {
                    stats.returned_publishes += 1;
                }
                if result == "full" {
                    *stats.full.entry(op.clone()).or_default() += 1;
                }
                if op == "batch" {
                    // Every entry published (as a `pub` of it that returned), or none (`full`).
                    let entries = batch_entries(&name)?;
                    match result {
                        "ok" => {
                            stats.batches[0] += 1;
                            stats.batch_entries += entries.len() as u64;
                        }
                        "full" => stats.batches[1] += 1,
                        _ => return Err(format!("batch returned {result:?} ({line:?})")),
                    }
                    for (n, s) in entries {
                        if !owned_batch_name(&n, slot) {
                            return Err(format!("batch of {n}, not of slot {slot} ({line:?})"));
                        }
                        let st = model.get(&n).cloned().unwrap_or(St::Absent);
                        let next = apply(&st, "pub", s, result, false)
                            .map_err(|e| format!("{n}: {e} (log line {line:?})"))?;
                        model.insert(n, next);
                    }
                    continue;
                }
                if !name.starts_with(&format!("k{slot}")) {
                    continue; // another slot's array: only its owner changes it
                }
                let st = model.get(&name).cloned().unwrap_or(St::Absent);
                let next = if is_cached(&name) {
                    apply_cached(&st, &op, seed, result)
                } else {
                    apply(&st, &op, seed, result, is_scratch(&name))
                }
                .map_err(|e| format!("{name}: {e} (log line {line:?})"))?;
                if is_cached(&name) {
                    count_cached(stats, &st, &op, result);
                }
                model.insert(name, next);
            }
            (Some("X"), Some(msg)) => return Err(format!("child {slot} failed: {msg}")),
            _ => {} // a torn last line cannot happen (one write per line), but is harmless
        }
    }
    if let Some((op, _, _)) = pending.as_ref().filter(|p| p.0 != "held") {
        stats.interrupted_ops += 1;
        if matches!(
            op.as_str(),
            "pub" | "wr" | "sp" | "tb" | "spub" | "load" | "cwr" | "cload" | "batch"
        ) {
            stats.interrupted_publishes += 1;
        }
        if op == "load" {
            stats.loads[2] += 1;
        }
        match op.as_str() {
            "batch" => stats.batches[2] += 1,
            "cwr" => stats.cached_writes[2] += 1,
            "cload" => stats.cached_loads[4] += 1,
            _ => {}
        }
    }
    Ok(pending)
}

/// Counts a returned operation of the owner of a cached entry that was in state `st` (the
/// result agreed with it).
fn count_cached(stats: &mut Stats, st: &St, op: &str, result: &str) {
    let (published, held) = match st {
        St::Live { held, .. } => (true, *held > 0),
        _ => (false, false),
    };
    let found = result.starts_with("ok");
    match (op, result) {
        ("cwr", "ok") => stats.cached_writes[0] += 1,
        ("cwr", "full") => stats.cached_writes[1] += 1,
        ("cload", "loaded") => stats.cached_loads[usize::from(published)] += 1,
        ("cload", "full") => stats.cached_loads[3] += 1,
        ("cload", _) => stats.cached_loads[2] += 1,
        _ => {}
    }
    if published && matches!(result, "notfound" | "loaded" | "full" | "absent") && op != "cwr" {
        stats.evictions_seen += 1;
    }
    let found = found || result == "present";
    if held && found && matches!(op, "open" | "hold" | "cload" | "peek") {
        stats.held_found += 1;
    }
}

fn expected_files(root: &Path, present: &BTreeMap<String, u64>) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for name in present.keys() {
        let sfx: &[&str] = if is_sparse(name) {
            &["yaml", "data", "indices", "indptr"]
        } else if is_table(name) {
            &["yaml", "arrow"]
        } else {
            &["yaml", "array"]
        };
        for s in sfx {
            out.insert(PathBuf::from(format!("{name}.{s}")));
        }
    }
    let _ = root;
    out
}

/// Bytes of the container's data files and staged data files (SPEC 9.7 counts these). Final
/// places are listed before staging: nothing runs while this counts (every child is dead).
fn data_bytes(root: &Path) -> u64 {
    let data = |p: &Path| {
        p.extension().is_some_and(|x| {
            ["array", "data", "indices", "indptr", "arrow"]
                .iter()
                .any(|s| x == *s)
        })
    };
    [root.to_path_buf(), root.join(".dafstore/staging")]
        .iter()
        .flat_map(|d| listing(d)) // `listing` skips `.dafstore` under the root
        .map(|(p, e)| match e {
            Entry::File(len) if data(&p) => len,
            _ => 0,
        })
        .sum()
}

fn kill_at(child: &mut Child, at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
    let _ = child.kill(); // SIGKILL; an error means it already exited
}

fn round(
    dir: &Path,
    logs: &Path,
    r: u64,
    rng: &mut gen::Rng,
    model: &mut BTreeMap<String, St>,
    stats: &mut Stats,
) -> Result<(), String> {
    let start = Instant::now();
    let mut children = Vec::new();
    for slot in 0..SLOTS {
        let log = logs.join(format!("r{r}-k{slot}.log"));
        let err = logs.join(format!("r{r}-k{slot}.err"));
        let child = Command::new(HELPER)
            .args(["churn", dir.to_str().unwrap(), &slot.to_string()])
            .args([SLOTS.to_string(), rng.next().to_string()])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&err).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        // Each child dies at its own random instant, 5–150 ms after the round started: most
        // kills land inside an operation (or inside the open and its recovery).
        let at = start + Duration::from_millis(5 + rng.below(145));
        children.push((slot, child, at, log, err));
    }
    children.sort_by_key(|c| c.2);
    for (slot, child, at, _, err) in &mut children {
        kill_at(child, *at);
        let status = child.wait().map_err(|e| e.to_string())?;
        stats.kills += 1;
        if status.code().is_some() {
            let msg = fs::read_to_string(&*err).unwrap_or_default();
            return Err(format!("child {slot} exited by itself ({status}): {msg}"));
        }
    }

    // Bounds for every name: exact unless its owner was interrupted on it.
    let mut allowed: BTreeMap<String, Allowed> = BTreeMap::new();
    let mut cut_batches: Vec<Cut> = Vec::new();
    for (slot, _, _, log, _) in &children {
        let text = fs::read_to_string(log).unwrap_or_default();
        let interrupted = replay(&text, *slot, model, stats)?;
        for n in slot_names(*slot) {
            let st = model.get(&n).cloned().unwrap_or(St::Absent);
            let a = if is_cached(&n) {
                // Its last generation, or evicted (its owner's holds died with it).
                let mut any: BTreeSet<Option<u64>> = [None].into();
                if let St::Live { seed, .. } = st {
                    any.insert(Some(seed));
                }
                Allowed {
                    before: any.clone(),
                    after: any,
                }
            } else {
                Allowed {
                    before: visible_before_recovery(&st, is_scratch(&n)),
                    after: present_after_recovery(&st, is_scratch(&n)),
                }
            };
            allowed.insert(n.clone(), a);
        }
        // The interrupted operation may have taken effect or not (a publish is rolled forward
        // once its intent is committed, SPEC [W5]).
        if let Some((op, field, _)) = interrupted.as_ref().filter(|i| i.0 == "batch") {
            // Each entry may be old or new (checked together after recovery: all or none).
            let mut cut = Cut::new();
            for (name, seed) in batch_entries(field)? {
                let a = allowed
                    .get_mut(&name)
                    .filter(|_| owned_batch_name(&name, *slot))
                    .ok_or_else(|| format!("{op} of {name}, not of slot {slot}"))?;
                let st = model.get(&name).cloned().unwrap_or(St::Absent);
                let next = apply(&st, "pub", seed, "ok", false)?;
                a.before.extend(visible_before_recovery(&next, false));
                a.before.insert(None); // between the unlink of its old YAML and the rename
                a.after.extend(present_after_recovery(&next, false));
                cut.push((name, present_after_recovery(&st, false), seed));
            }
            cut_batches.push(cut);
        } else if let Some((op, name, seed)) = interrupted {
            let owned = name.starts_with(&format!("k{slot}"));
            if let Some(a) = allowed.get_mut(&name).filter(|_| owned && is_cached(&name)) {
                if matches!(op.as_str(), "cwr" | "cload") {
                    a.before.insert(Some(seed));
                    a.after.insert(Some(seed));
                }
            } else if let Some(a) = allowed.get_mut(&name).filter(|_| owned) {
                let scratch = is_scratch(&name);
                let st = model.get(&name).cloned().unwrap_or(St::Absent);
                let next = apply(&st, &op, seed, &assumed_result(&op, &st), scratch)
                    .unwrap_or_else(|_| st.clone());
                a.before.extend(visible_before_recovery(&next, scratch));
                a.after.extend(present_after_recovery(&next, scratch));
                if matches!(op.as_str(), "pub" | "wr" | "sp" | "tb" | "spub" | "rm") {
                    // Between unlinking the old YAML and renaming the new one (or the removal).
                    a.before.insert(None);
                }
            }
        }
    }

    // 1. Before recovery: what a reader without our code sees.
    for (name, a) in &allowed {
        let seen = gen::read_by_spec(dir, name)?;
        if !a.before.contains(&seen) {
            return Err(format!(
                "before recovery {name} is {seen:?}, expected one of {:?}",
                a.before
            ));
        }
    }
    // The data files, staged ones included, never take more than the capacity ([E3]).
    let on_disk = data_bytes(dir);
    stats.peak_bytes[0] = stats.peak_bytes[0].max(on_disk);
    if on_disk > capacity() {
        return Err(format!(
            "before recovery the data files take {on_disk} bytes, over the capacity {}",
            capacity()
        ));
    }
    // 2. fsck before recovery finds only what crashes leave.
    let report = Container::fsck_dir(dir, FsckOptions::default(), &mut |_, _| {})
        .map_err(|e| format!("fsck before recovery: {e}"))?;
    for p in &report.problems {
        *stats
            .fsck_problems_before_recovery
            .entry(p.kind.name())
            .or_default() += 1;
        let expected = matches!(
            p.kind,
            ProblemKind::UnfinishedOperation
                | ProblemKind::DeadHolder
                | ProblemKind::DeletionDue
                | ProblemKind::StagingLeftover
        );
        if !expected {
            return Err(format!("fsck before recovery found damage: {}", p.message));
        }
    }
    // 3. Recovery and gc, then the exact state.
    let c = Container::options()
        .gc(false)
        .open(dir)
        .map_err(|e| format!("open: {e}"))?;
    let gc = c.gc().map_err(|e| format!("gc: {e}"))?;
    if !gc.failed.is_empty() {
        return Err(format!("recovery failed: {:?}", gc.failed));
    }
    stats.recovered += gc.recovered;
    stats.reaped_sessions += gc.reaped_sessions.len();
    stats.deleted += gc.deleted.len();
    stats.staging_removed += gc.staging_removed;
    // Every reservation ended with its write (or its writer's death), and the entries fit.
    let usage = c.usage().map_err(|e| format!("usage: {e}"))?;
    stats.peak_bytes[1] = stats.peak_bytes[1].max(usage.entries);
    if usage.reserved != 0 || usage.entries > capacity() {
        return Err(format!(
            "after recovery {usage:?} with all writers dead, capacity {}",
            capacity()
        ));
    }
    if c.limits().map_err(|e| e.to_string())?.capacity != Some(capacity()) {
        return Err("the capacity was lost".into());
    }
    let mut present = BTreeMap::new();
    for (name, a) in &allowed {
        // Opening a scratch array holds it, and its release would delete it ([P6]): read those
        // by the spec (checksums verified) and check that the catalog has the row.
        let seen = if is_scratch(name) {
            let seen = gen::read_by_spec(dir, name)?;
            let rec = c.info(name).ok().map(|r| r.generation);
            if seen.is_some() != rec.is_some() {
                return Err(format!("{name}: files say {seen:?}, catalog says {rec:?}"));
            }
            seen
        } else {
            gen::open_and_verify(&c, name)?
        };
        if !a.after.contains(&seen) {
            return Err(format!(
                "after recovery {name} is {seen:?}, expected one of {:?} (lost or resurrected)",
                a.after
            ));
        }
        if is_cached(name) && matches!(model.get(name), Some(St::Live { .. })) {
            stats.cached_at_check[usize::from(seen.is_none())] += 1;
        }
        let st = match seen {
            Some(seed) => {
                present.insert(name.clone(), seed);
                St::Live {
                    seed,
                    ever_held: false,
                    held: 0,
                }
            }
            None => St::Absent,
        };
        model.insert(name.clone(), st);
    }
    // An interrupted batch is all or none ([W11]): every entry new, or every one as before.
    for cut in &cut_batches {
        let seen: Vec<(&str, Option<u64>)> = cut
            .iter()
            .map(|(n, _, _)| (n.as_str(), present.get(n).copied()))
            .collect();
        let all_new = cut
            .iter()
            .zip(&seen)
            .all(|((_, _, new), (_, s))| *s == Some(*new));
        let all_old = cut
            .iter()
            .zip(&seen)
            .all(|((_, old, _), (_, s))| old.contains(s));
        if !(all_new || all_old) {
            let want: Vec<String> = cut
                .iter()
                .map(|(n, old, new)| format!("{n}: new {new} or old {old:?}"))
                .collect();
            return Err(format!(
                "after recovery an interrupted batch is partly published: {seen:?}, expected all \
                 new or all old of {want:?}"
            ));
        }
        stats.batches_after_kill[usize::from(!all_new)] += 1;
    }
    // Lifecycles ([E1]): only the cached names may be evicted.
    for name in present.keys() {
        let want = if is_cached(name) {
            Lifecycle::Cached
        } else if is_scratch(name) {
            Lifecycle::Scratch
        } else {
            Lifecycle::Persistent
        };
        let got = c.info(name).map_err(|e| e.to_string())?.lifecycle;
        if got != want {
            return Err(format!("{name} is {got:?}, expected {want:?}"));
        }
    }
    let names: Vec<String> = c.ls().map_err(|e| e.to_string())?;
    if names != present.keys().cloned().collect::<Vec<_>>() {
        return Err(format!("catalog lists {names:?}, expected {present:?}"));
    }
    for rec in c.info_all().map_err(|e| e.to_string())? {
        if rec.state != ArrayState::Live {
            return Err(format!("{} is {:?} after recovery", rec.name, rec.state));
        }
    }
    let holders = c.holders().map_err(|e| e.to_string())?;
    if holders.iter().any(|h| !h.this_process) {
        return Err(format!("dead holders not reaped: {holders:?}"));
    }
    let files: BTreeSet<PathBuf> = listing(dir)
        .into_iter()
        .filter(|(_, e)| !matches!(e, Entry::Dir))
        .map(|(p, _)| p)
        .collect();
    let want = expected_files(dir, &present);
    if files != want {
        return Err(format!(
            "files on disk differ: extra {:?}, missing {:?}",
            files.difference(&want).collect::<Vec<_>>(),
            want.difference(&files).collect::<Vec<_>>()
        ));
    }
    let staged: Vec<PathBuf> = listing(&dir.join(".dafstore/staging"))
        .into_iter()
        .filter(|(_, e)| !matches!(e, Entry::Dir))
        .map(|(p, _)| p)
        .collect();
    if !staged.is_empty() {
        return Err(format!("staging files left: {staged:?}"));
    }
    drop(c);
    // 4. A deep fsck is clean (or repair makes it clean).
    let deep = FsckOptions {
        deep: true,
        repair: false,
    };
    let report = Container::fsck_dir(dir, deep, &mut |_, _| {}).map_err(|e| e.to_string())?;
    if !report.problems.is_empty() {
        stats.repairs_needed += 1;
        let msgs: Vec<&str> = report.problems.iter().map(|p| p.message.as_str()).collect();
        let repair = FsckOptions {
            deep: true,
            repair: true,
        };
        Container::fsck_dir(dir, repair, &mut |_, _| {}).map_err(|e| e.to_string())?;
        let again = Container::fsck_dir(dir, deep, &mut |_, _| {}).map_err(|e| e.to_string())?;
        if !again.problems.is_empty() {
            return Err(format!(
                "fsck after recovery: {msgs:?}; repair left {:?}",
                again.problems
            ));
        }
    }
    stats.rounds += 1;
    Ok(())
}

#[test]
fn children_killed_at_random_points_lose_nothing_that_returned() {
    let rounds: u64 = std::env::var("DAFSTORE_KILL_LOOP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("DAFSTORE_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("kill loop: {rounds} rounds, seed {seed} (replay with DAFSTORE_KILL_SEED={seed})");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let c = Container::create(&dir).unwrap();
    c.set_capacity(Some(capacity())).unwrap();
    drop(c);
    let dir = dir.canonicalize().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let mut rng = gen::Rng::new(seed);
    let mut model = BTreeMap::new();
    let mut stats = Stats::default();
    let started = Instant::now();
    for r in 0..rounds {
        if let Err(e) = round(&dir, &logs, r, &mut rng, &mut model, &mut stats) {
            let kept = tmp.keep();
            panic!(
                "kill loop round {r} (seed {seed}): {e}\ncontainer and logs kept in {}",
                kept.display()
            );
        }
    }
    eprintln!(
        "kill loop: {} rounds, {} kills survived with nothing lost in {:.1} s; {} operations \
         returned ({} publishes); {} kills interrupted an operation ({} a publish); recovery rolled \
         {} operations forward, reaped {} dead sessions, ran {} due deletions, removed {} staging \
         directories; fsck before recovery saw {:?}; deep fsck after recovery needed repair {} \
         times; open_or_load: {} loaded, {} opened, {} interrupted; batches: {} returned ({} \
         entries), {} full, {} interrupted (after recovery: {} all published, {} none)",
        stats.rounds,
        stats.kills,
        started.elapsed().as_secs_f64(),
        stats.returned_ops,
        stats.returned_publishes,
        stats.interrupted_ops,
        stats.interrupted_publishes,
        stats.recovered,
        stats.reaped_sessions,
        stats.deleted,
        stats.staging_removed,
        stats.fsck_problems_before_recovery,
        stats.repairs_needed,
        stats.loads[0],
        stats.loads[1],
        stats.loads[2],
        stats.batches[0],
        stats.batch_entries,
        stats.batches[1],
        stats.batches[2],
        stats.batches_after_kill[0],
        stats.batches_after_kill[1],
    );
    let [w_ok, w_full, w_cut] = stats.cached_writes;
    let [l_new, l_again, l_open, l_full, l_cut] = stats.cached_loads;
    let [kept, evicted] = stats.cached_at_check;
    eprintln!(
        "kill loop cache: capacity {} bytes; cached writes {w_ok} returned, {w_full} full, {w_cut} \
         interrupted; cached open_or_load {l_new} loaded, {l_again} loaded again after an \
         eviction, {l_open} opened, {l_full} full, {l_cut} interrupted; evictions seen: {} by the \
         owner's opens, holds and loads, {evicted} when a round ended ({kept} published cached \
         entries were there); {} opens, holds, loads or presence checks of a cached entry its \
         process held found it, and {} checks after each operation found every cached entry a \
         process held still there; full results {:?}; peak bytes {} of data files before recovery, {} of entries \
         after",
        capacity(),
        stats.evictions_seen,
        stats.held_found,
        stats.held_checked,
        stats.full,
        stats.peak_bytes[0],
        stats.peak_bytes[1],
    );
    assert_eq!(stats.rounds, rounds);
    assert!(stats.returned_publishes > 0, "the children never published");
    assert!(
        rounds < 20 || stats.batches[0] > 0,
        "the children never published a batch"
    );
    assert!(
        rounds < 50 || stats.loads[0] > 0,
        "the children never loaded through open_or_load"
    );
    assert!(
        rounds < 50 || (stats.cached_writes[0] > 0 && stats.cached_loads[0] > 0),
        "the children never wrote or loaded a cached entry"
    );
    assert!(
        rounds < 50 || stats.evictions_seen + stats.cached_at_check[1] > 0,
        "no cached entry was ever seen evicted"
    );
}
