//! The kill loop: two child processes create, replace, remove, retain, release, open and
//! open-or-load arrays (and scratch arrays) on one container while this process SIGKILLs them at random instants. After
//! every round (both children dead) it checks, from the children's synced operation logs:
//!
//! - before any recovery, what a reader without our code sees ([R1], `inspect::read_array_files`
//!   with checksums): every visible array is complete and is a generation the log allows — an
//!   array whose publish returned is there, unless a later operation on it was interrupted;
//! - fsck before recovery finds only what crashes leave (interrupted operations, dead holders,
//!   due deletions, staging leftovers), never damage;
//! - after `Container::open` (recovery + gc): every array whose publish returned is there with the
//!   exact bytes (or the interrupted operation's result, complete), nothing else is there (files
//!   included), every row is live, dead holders are reaped, deferred and scratch deletions ran, no
//!   staging file is left, and a deep fsck is clean.
//!
//! `DAFSTORE_KILL_LOOP=N` sets the number of rounds (default 30, a few seconds);
//! `DAFSTORE_KILL_SEED=S` replays a run (the seed is printed).

#[path = "../src/bin/dafstore-crash-helper/gen.rs"]
mod gen;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dafstore::{ArrayState, Container, FsckOptions, ProblemKind};
use dafstore_tests::{listing, Entry};

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
    ]
}

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
        _ => st.clone(),
    })
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
                stats.returned_ops += 1;
                if op == "load" {
                    stats.loads[usize::from(result != "loaded")] += 1;
                }
                if matches!(op.as_str(), "pub" | "wr" | "sp" | "tb" | "spub")
                    || (op == "load" && result == "loaded")
                {
                    stats.returned_publishes += 1;
                }
                if !name.starts_with(&format!("k{slot}")) {
                    continue; // another slot's array: only its owner changes it
                }
                let st = model.get(&name).cloned().unwrap_or(St::Absent);
                let next = apply(&st, &op, seed, result, is_scratch(&name))
                    .map_err(|e| format!("{name}: {e} (log line {line:?})"))?;
                model.insert(name, next);
            }
            (Some("X"), Some(msg)) => return Err(format!("child {slot} failed: {msg}")),
            _ => {} // a torn last line cannot happen (one write per line), but is harmless
        }
    }
    if let Some((op, _, _)) = &pending {
        stats.interrupted_ops += 1;
        if matches!(op.as_str(), "pub" | "wr" | "sp" | "tb" | "spub" | "load") {
            stats.interrupted_publishes += 1;
        }
        if op == "load" {
            stats.loads[2] += 1;
        }
    }
    Ok(pending)
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
    for (slot, _, _, log, _) in &children {
        let text = fs::read_to_string(log).unwrap_or_default();
        let interrupted = replay(&text, *slot, model, stats)?;
        for n in slot_names(*slot) {
            let st = model.get(&n).cloned().unwrap_or(St::Absent);
            allowed.insert(
                n.clone(),
                Allowed {
                    before: visible_before_recovery(&st, is_scratch(&n)),
                    after: present_after_recovery(&st, is_scratch(&n)),
                },
            );
        }
        // The interrupted operation may have taken effect or not (a publish is rolled forward
        // once its intent is committed, SPEC [W5]).
        if let Some((op, name, seed)) = interrupted {
            let owned = name.starts_with(&format!("k{slot}"));
            if let Some(a) = allowed.get_mut(&name).filter(|_| owned) {
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
    drop(Container::create(&dir).unwrap());
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
         times; open_or_load: {} loaded, {} opened, {} interrupted",
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
        stats.loads[2]
    );
    assert_eq!(stats.rounds, rounds);
    assert!(stats.returned_publishes > 0, "the children never published");
    assert!(
        rounds < 50 || stats.loads[0] > 0,
        "the children never loaded through open_or_load"
    );
}
