//! Crash points (cargo feature `failpoints`): a child process stops exactly at one step of a
//! publish (create, replace, replace of another kind), a remove, a release or a gc — by exiting
//! there (status 77, no destructor runs: a crash), or by failing there with an injected error —
//! and this process checks what a reader without our code sees before recovery ([R1]), what the
//! catalog says, and what the next open sees: the old complete generation or the new complete one,
//! never a mix; the catalog and the files agree; nothing is left over; a deep fsck is clean.
//! A crash during recovery is recovered by the next open. Every failpoint named in the engine's
//! sources must be reached by a case here (`every_failpoint_in_the_engine_is_exercised`).
//!
//! Run: `cargo test -p dafstore-tests --features failpoints --test crash_points`.
#![cfg(feature = "failpoints")]

#[path = "../src/bin/dafstore-crash-helper/gen.rs"]
mod gen;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dafstore::{ArrayState, Container, FsckOptions, Removal};
use dafstore_tests::{listing, staging_files, Entry};

const HELPER: &str = env!("CARGO_BIN_EXE_dafstore-crash-helper");
/// Exit status of a process stopped by a failpoint (engine/src/failpoint.rs).
const FAILPOINT_EXIT: i32 = 77;

/// The arrays every case starts with: name and seed (`gen`): dense `d`, sparse `s`, dense `k`.
const START: [(&str, u64); 3] = [("d", 1), ("s", 2), ("k", 3)];
/// Every name a case may touch.
const NAMES: [&str; 4] = ["d", "s", "k", "new"];

fn setup() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    let c = Container::create(&root).unwrap();
    gen::write_dense(&c, "d", 1).unwrap();
    gen::write_sparse(&c, "s", 2).unwrap();
    gen::write_dense(&c, "k", 3).unwrap();
    drop(c);
    let root = root.canonicalize().unwrap();
    (t, root)
}

fn helper(root: &Path, failpoint: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(HELPER);
    cmd.arg("op").arg(root).args(args);
    cmd.env_remove("DAFSTORE_FAILPOINT");
    if let Some(fp) = failpoint {
        cmd.env("DAFSTORE_FAILPOINT", fp);
    }
    cmd.stdin(Stdio::null()).output().expect("run helper")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

/// Runs the helper and expects it to stop at `point` with status 77.
fn crash_at(root: &Path, point: &str, args: &[&str]) {
    let out = helper(root, Some(point), args);
    assert_eq!(
        out.status.code(),
        Some(FAILPOINT_EXIT),
        "{point} {args:?} was not reached: status {}, stdout {:?}, stderr {:?}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains(&format!("failpoint {point}")));
}

/// Runs the helper with an injected error at `point`; returns what the operation printed.
fn fail_at(root: &Path, point: &str, kind: &str, args: &[&str]) -> String {
    let out = helper(root, Some(&format!("{point}:{kind}")), args);
    assert!(
        out.status.success(),
        "{point}:{kind} {args:?}: status {}, stderr {:?}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// What a reader without our code sees, name by name.
fn by_spec(root: &Path) -> BTreeMap<&'static str, Option<u64>> {
    NAMES
        .iter()
        .map(|n| {
            (
                *n,
                gen::read_by_spec(root, n).unwrap_or_else(|e| panic!("{e}")),
            )
        })
        .collect()
}

/// Catalog rows as (state, generation), read without recovering anything.
fn rows(root: &Path) -> BTreeMap<String, (ArrayState, u64)> {
    let c = Container::options().read_only(true).open(root).unwrap();
    c.info_all()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, (r.state, r.generation)))
        .collect()
}

fn start_state() -> BTreeMap<&'static str, Option<u64>> {
    NAMES
        .iter()
        .map(|n| {
            (
                *n,
                START.iter().find(|(s, _)| s == n).map(|(_, seed)| *seed),
            )
        })
        .collect()
}

/// Opens the container (recovery + gc) and checks that it holds exactly `expect`, complete, with
/// catalog and files in agreement, nothing left over, and a clean deep fsck.
fn check_after_open(root: &Path, expect: &BTreeMap<&str, Option<u64>>, context: &str) {
    let c = Container::open(root).unwrap();
    let mut files = BTreeSet::new();
    for (name, want) in expect {
        let seen = gen::open_and_verify(&c, name).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(seen, *want, "{context}: {name} after recovery");
        if seen.is_some() {
            let rec = c.info(name).unwrap();
            files.insert(PathBuf::from(format!("{name}.yaml")));
            for (sfx, _) in rec.meta.files() {
                files.insert(PathBuf::from(format!("{name}.{sfx}")));
            }
        }
    }
    let present: Vec<String> = expect
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(c.ls().unwrap(), present, "{context}");
    for r in c.info_all().unwrap() {
        assert_eq!(r.state, ArrayState::Live, "{context}: {}", r.name);
    }
    assert!(
        c.holders().unwrap().iter().all(|h| h.this_process),
        "{context}: dead holders left"
    );
    let on_disk: BTreeSet<PathBuf> = listing(root)
        .into_iter()
        .filter(|(_, e)| !matches!(e, Entry::Dir))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(on_disk, files, "{context}: files on disk");
    assert_eq!(staging_files(root), Vec::<PathBuf>::new(), "{context}");
    drop(c);
    let opts = FsckOptions {
        deep: true,
        repair: false,
    };
    let r = Container::fsck_dir(root, opts, &mut |_, _| {}).unwrap();
    assert!(r.problems.is_empty(), "{context}: fsck: {:?}", r.problems);
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Gen {
    Old,
    New,
    Absent,
}

/// One publish through one path: the array it writes, the helper op, old and new seeds.
struct Target {
    name: &'static str,
    op: &'static str,
    new: u64,
}

const TARGETS: [Target; 4] = [
    // create (mapped writer)
    Target {
        name: "new",
        op: "dense-mapped",
        new: 21,
    },
    // replace dense (from a slice)
    Target {
        name: "d",
        op: "write-dense",
        new: 11,
    },
    // replace sparse (three data files: the crash lands between their renames)
    Target {
        name: "s",
        op: "sparse",
        new: 12,
    },
    // replace a dense array by a sparse one (the old kind's file is removed)
    Target {
        name: "k",
        op: "sparse",
        new: 13,
    },
];

/// Publish steps in order: name, what a spec reader sees before recovery, what the next open
/// sees, whether the catalog row is `publishing` at that point, and which ops reach it.
const PUBLISH_POINTS: [(&str, Gen, Gen, bool, &[&str]); 13] = [
    (
        "stage.reserve",
        Gen::Old,
        Gen::Old,
        false,
        &["dense-mapped"],
    ),
    (
        "stage.write",
        Gen::Old,
        Gen::Old,
        false,
        &["write-dense", "sparse"],
    ),
    ("publish.after_stage_sync", Gen::Old, Gen::Old, false, &[]),
    ("publish.intent_mid_tx", Gen::Old, Gen::Old, false, &[]),
    ("publish.after_intent", Gen::Old, Gen::New, true, &[]),
    (
        "publish.after_unlink_yaml",
        Gen::Absent,
        Gen::New,
        true,
        &[],
    ),
    (
        "publish.after_data_rename",
        Gen::Absent,
        Gen::New,
        true,
        &[],
    ),
    (
        "publish.before_yaml_rename",
        Gen::Absent,
        Gen::New,
        true,
        &[],
    ),
    ("publish.after_yaml_rename", Gen::New, Gen::New, true, &[]),
    ("publish.before_dir_sync", Gen::New, Gen::New, true, &[]),
    ("publish.after_dir_sync", Gen::New, Gen::New, true, &[]),
    ("publish.before_live", Gen::New, Gen::New, true, &[]),
    ("publish.after_live", Gen::New, Gen::New, false, &[]),
];

fn seed_of(g: Gen, t: &Target) -> Option<u64> {
    match g {
        Gen::Old => start_state()[t.name],
        Gen::New => Some(t.new),
        Gen::Absent => None,
    }
}

fn expect_with(name: &str, v: Option<u64>) -> BTreeMap<&'static str, Option<u64>> {
    let mut e = start_state();
    let key = NAMES.iter().find(|n| **n == name).expect("known name");
    e.insert(key, v);
    e
}

#[test]
fn a_crash_at_each_publish_step_leaves_the_old_or_the_new_generation_complete() {
    for (point, before, after, publishing, ops) in PUBLISH_POINTS {
        for t in TARGETS
            .iter()
            .filter(|t| ops.is_empty() || ops.contains(&t.op))
        {
            let context = format!("crash at {point} publishing {} by {}", t.name, t.op);
            let (_t, root) = setup();
            let rows_before = rows(&root);
            crash_at(&root, point, &[t.op, t.name, &t.new.to_string()]);
            // Before recovery: a reader without our code sees one complete generation, or nothing
            // while the new one is being renamed into place.
            let want_before = expect_with(t.name, seed_of(before, t));
            assert_eq!(by_spec(&root), want_before, "{context}: before recovery");
            let rows_now = rows(&root);
            let row = rows_now.get(t.name).copied();
            if publishing {
                assert_eq!(row.map(|r| r.0), Some(ArrayState::Publishing), "{context}");
            } else if after == Gen::Old {
                assert_eq!(rows_now, rows_before, "{context}: the catalog changed");
            } else {
                assert_eq!(row.map(|r| r.0), Some(ArrayState::Live), "{context}");
            }
            check_after_open(&root, &expect_with(t.name, seed_of(after, t)), &context);
            if after == Gen::New {
                let old_gen = rows_before.get(t.name).map_or(0, |r| r.1);
                assert_eq!(rows(&root)[t.name].1, old_gen + 1, "{context}: generation");
            }
        }
    }
}

#[test]
fn an_error_before_the_publish_intent_is_returned_with_nothing_published_and_after_it_the_publish_succeeds(
) {
    for (point, _, after, publishing, ops) in PUBLISH_POINTS {
        for kind in ["error", "enospc"] {
            let t = TARGETS
                .iter()
                .find(|t| ops.is_empty() || ops.contains(&t.op))
                .expect("a target");
            let context = format!("{point}:{kind} publishing {} by {}", t.name, t.op);
            let (_t, root) = setup();
            let rows_before = rows(&root);
            let files_before = listing(&root);
            let printed = fail_at(&root, point, kind, &[t.op, t.name, &t.new.to_string()]);
            if after == Gen::Old {
                // Before the commit point (the committed intent, SPEC [W9]): an error, and
                // nothing published, nothing left: the catalog, the files and staging are as
                // before (the failed writer removed its staging files itself).
                assert!(printed.starts_with("err "), "{context}: {printed}");
                if kind == "enospc" {
                    // Out of space, in the staging files or in the catalog: NoSpace.
                    assert!(printed.contains("no space left"), "{context}: {printed}");
                    assert!(
                        printed.contains("nothing was published"),
                        "{context}: {printed}"
                    );
                } else if point.starts_with("stage.") {
                    // Real I/O paths: the injected error is reported like the OS's.
                    assert!(
                        printed.contains("Input/output error"),
                        "{context}: {printed}"
                    );
                } else {
                    assert!(
                        printed.contains(&format!("failpoint {point}")),
                        "{context}: {printed}"
                    );
                }
                assert_eq!(rows(&root), rows_before, "{context}: the catalog changed");
                assert_eq!(listing(&root), files_before, "{context}: files changed");
                assert_eq!(staging_files(&root), Vec::<PathBuf>::new(), "{context}");
            } else {
                // After the commit point the publish is committed: the call succeeds, and a
                // failed finishing step leaves the row to recovery (SPEC [W9], 9.4).
                assert_eq!(printed, "ok", "{context}");
                if publishing {
                    assert_eq!(rows(&root)[t.name].0, ArrayState::Publishing, "{context}");
                }
            }
            check_after_open(&root, &expect_with(t.name, seed_of(after, t)), &context);
        }
    }
}

#[test]
fn after_a_failed_finishing_step_of_a_publish_the_same_process_opens_the_new_generation() {
    // Every point after the commit point where the publish is left `publishing`: the write
    // returns ok, and the writer's own next open of the name recovers it and sees the new bytes.
    for (point, _, _, publishing, _) in PUBLISH_POINTS {
        if !publishing {
            continue;
        }
        for name in ["new", "d"] {
            let context = format!("{point}:error then open {name}");
            let (_t, root) = setup();
            let printed = fail_at(&root, point, "error-once", &["write-then-open", name, "9"]);
            assert_eq!(printed, "ok 9", "{context}");
            assert_eq!(
                rows(&root)[name],
                (ArrayState::Live, rows(&root)[name].1),
                "{context}"
            );
            check_after_open(&root, &expect_with(name, Some(9)), &context);
        }
    }
}

/// Remove steps: name, spec reader before recovery, next open, catalog state at that point.
const REMOVE_POINTS: [(&str, Gen, Gen, ArrayState); 5] = [
    ("remove.after_scan", Gen::Old, Gen::Old, ArrayState::Live),
    ("remove.mark_mid_tx", Gen::Old, Gen::Old, ArrayState::Live),
    (
        "remove.after_mark_removing",
        Gen::Old,
        Gen::Absent,
        ArrayState::Removing,
    ),
    (
        "remove.after_unlink_yaml",
        Gen::Absent,
        Gen::Absent,
        ArrayState::Removing,
    ),
    (
        "remove.before_delete_row",
        Gen::Absent,
        Gen::Absent,
        ArrayState::Removing,
    ),
];

#[test]
fn a_crash_or_an_error_at_each_remove_step_is_finished_by_the_next_open() {
    for (point, before, after, state) in REMOVE_POINTS {
        for name in ["d", "s"] {
            for mode in ["exit", "error"] {
                let context = format!("{point}:{mode} removing {name}");
                let (_t, root) = setup();
                if mode == "exit" {
                    crash_at(&root, point, &["remove", name]);
                } else {
                    let printed = fail_at(&root, point, mode, &["remove", name]);
                    assert!(
                        printed.starts_with("err ") && printed.contains("failpoint"),
                        "{context}: {printed}"
                    );
                }
                let t = Target {
                    name,
                    op: "remove",
                    new: 0,
                };
                assert_eq!(
                    by_spec(&root),
                    expect_with(name, seed_of(before, &t)),
                    "{context}: before recovery"
                );
                assert_eq!(rows(&root)[name].0, state, "{context}");
                check_after_open(&root, &expect_with(name, seed_of(after, &t)), &context);
            }
        }
    }
}

/// Whether a live session holds anything, as a read-only handle sees it.
fn live_records(root: &Path) -> Vec<String> {
    let c = Container::options().read_only(true).open(root).unwrap();
    c.holders()
        .unwrap()
        .into_iter()
        .filter(|h| h.alive)
        .flat_map(|h| h.arrays.into_iter().map(|a| a.name))
        .collect()
}

#[test]
fn a_crash_between_a_reference_record_and_the_row_read_leaves_no_holder() {
    // Taking a reference: the record is in the session file, then the process dies before it
    // reads the row. A dead session's records count for nothing (SPEC [P5]).
    let (_t, root) = setup();
    crash_at(&root, "refs.after_record", &["retain", "d"]);
    assert!(live_records(&root).is_empty(), "a dead record counts");
    check_after_open(&root, &start_state(), "refs.after_record");
    let c = Container::open(&root).unwrap();
    assert_eq!(c.remove("d").unwrap(), Removal::Removed, "not deferred");
    drop(c);

    // The same point failing: the retain returns the error, zeroes its record, holds nothing.
    let (_t, root) = setup();
    let printed = fail_at(&root, "refs.after_record", "error", &["retain", "d"]);
    assert!(printed.starts_with("err "), "{printed}");
    let c = Container::options().read_only(true).open(&root).unwrap();
    assert!(c.holders().unwrap().iter().all(|h| h.arrays.is_empty()));
    drop(c);
    check_after_open(&root, &start_state(), "refs.after_record:error");
}

#[test]
fn a_crash_while_releasing_the_last_reference_of_a_deferred_removal_is_finished_by_gc() {
    // hold d, remove d (deferred: this process holds it), release d: the release must delete it.
    for (point, state_before, before) in [
        ("release.before_stripe", ArrayState::Deleting, Gen::Old),
        ("settle.mark_mid_tx", ArrayState::Deleting, Gen::Old),
        (
            "release.after_mark_removing",
            ArrayState::Removing,
            Gen::Old,
        ),
        (
            "remove.after_unlink_yaml",
            ArrayState::Removing,
            Gen::Absent,
        ),
        (
            "remove.before_delete_row",
            ArrayState::Removing,
            Gen::Absent,
        ),
    ] {
        let (_t, root) = setup();
        crash_at(&root, point, &["hold-remove-release", "d"]);
        assert_eq!(rows(&root)["d"].0, state_before, "{point}");
        let t = Target {
            name: "d",
            op: "",
            new: 0,
        };
        assert_eq!(
            by_spec(&root),
            expect_with("d", seed_of(before, &t)),
            "{point}"
        );
        check_after_open(&root, &expect_with("d", None), point);
    }
    // Failing instead of crashing: the error is returned; the process still holds d, and when it
    // ends its reference goes and the deletion runs.
    for point in ["settle.mark_mid_tx", "release.after_mark_removing"] {
        let (_t, root) = setup();
        let printed = fail_at(&root, point, "error", &["hold-remove-release", "d"]);
        assert!(printed.starts_with("err "), "{point}: {printed}");
        check_after_open(&root, &expect_with("d", None), point);
    }
    // Without a failpoint the helper does it all.
    let (_t, root) = setup();
    let out = helper(&root, None, &["hold-remove-release", "d"]);
    assert_eq!(text(&out.stdout), "ok Deferred { holders: 1 }");
    assert_eq!(by_spec(&root)["d"], None);
    check_after_open(&root, &expect_with("d", None), "no failpoint");
}

#[test]
fn a_removal_made_due_by_a_release_never_deletes_an_array_published_under_the_name_meanwhile() {
    // The last release zeroes its record of `d` (a deferred removal), then waits before it
    // looks at the row. In that window this process's gc finishes the removal, it publishes a
    // new `d` and holds it. When the releaser goes on, it must leave the new array, and this
    // process's reference on it, alone ([W8]).
    let (t, root) = setup();
    let go = t.path().join("go");
    let releaser = Command::new(HELPER)
        .arg("op")
        .arg(&root)
        .args(["hold-remove-release", "d"])
        .env(
            "DAFSTORE_FAILPOINT",
            format!("release.before_stripe:wait={}", go.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rows(&root).get("d").map(|r| r.0) != Some(ArrayState::Deleting)
        || !live_records(&root).is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the release never dropped its record of the deferred d"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let c = Container::open(&root).unwrap();
    gen::write_dense(&c, "d", 9).unwrap();
    let held = c.hold("d").unwrap();
    std::fs::write(&go, b"").unwrap();
    let out = releaser.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok Deferred { holders: 1 }");
    assert_eq!(by_spec(&root)["d"], Some(9), "the new d is intact");
    assert_eq!(rows(&root)["d"].0, ArrayState::Live);
    let holders: Vec<String> = c
        .holders()
        .unwrap()
        .into_iter()
        .filter(|h| h.this_process)
        .flat_map(|h| h.arrays.into_iter().map(|a| a.name))
        .collect();
    assert_eq!(
        holders,
        ["d"],
        "this process's reference on the new d survived"
    );
    drop(held);
    drop(c);
    check_after_open(&root, &expect_with("d", Some(9)), "release.before_stripe");
}

#[test]
fn a_holder_that_lets_go_while_a_remove_looks_is_never_left_deferred_forever() {
    // The remover sees this process's record of `d`, then waits; meanwhile this process releases
    // `d`: its release reads the row still `live` and has nothing to do. The remover then marks
    // `d` deleting and must look again ([P4]): it sees no holder and removes. Without the second
    // look, `d` would stay `deleting` with nobody left to finish it.
    let (t, root) = setup();
    let go = t.path().join("go");
    let c = Container::open(&root).unwrap();
    let held = c.hold("d").unwrap();
    let mut remover = Command::new(HELPER)
        .arg("op")
        .arg(&root)
        .args(["remove", "d"])
        .env(
            "DAFSTORE_FAILPOINT",
            format!("remove.after_scan:wait={}", go.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut err = std::io::BufReader::new(remover.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("waiting for") {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "the remover ended");
        }
    }
    drop(held);
    assert_eq!(rows(&root)["d"].0, ArrayState::Live, "nothing due yet");
    std::fs::write(&go, b"").unwrap();
    let out = remover.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "removed");
    assert!(!rows(&root).contains_key("d"), "{:?}", rows(&root));
    drop(c);
    check_after_open(&root, &expect_with("d", None), "remove.after_scan");
}

#[test]
fn a_session_file_removed_by_another_gc_before_it_was_locked_is_started_again() {
    // A starting process has created its temporary session file but not locked it yet; another
    // process's gc takes it for a dead starter's and unlinks it. The starter must start over under
    // a new id, not fail its open.
    let (t, root) = setup();
    let go = t.path().join("go");
    let starter = Command::new(HELPER)
        .arg("op")
        .arg(&root)
        .args(["open-only", "d"])
        .env(
            "DAFSTORE_FAILPOINT",
            format!("session.before_lock:wait={}", go.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sessions = root.join(".dafstore/sessions");
    let temporary = || {
        std::fs::read_dir(&sessions)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !temporary() {
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary session file appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(Container::open(&root).unwrap()); // its gc removes the unlocked temporary file
    assert!(
        !temporary(),
        "the gc removed the unlocked temporary session file"
    );
    std::fs::write(&go, b"").unwrap();
    let out = starter.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok", "{}", text(&out.stderr));
    check_after_open(&root, &start_state(), "session.before_lock");
}

#[test]
fn a_crash_inside_the_reaping_transaction_is_rolled_back_and_gc_runs_again() {
    let (_t, root) = setup();
    // A live holder of d, so the remove is deferred; then the holder dies.
    dead_holder_of_a_deferred_removal(&root);
    // The next open reaps the dead holder and runs the deletion; it crashes inside that
    // transaction: nothing of it is committed.
    crash_at(&root, "gc.reap_mid_tx", &["open-only", "d"]);
    assert_eq!(rows(&root)["d"].0, ArrayState::Deleting);
    assert_eq!(by_spec(&root)["d"], Some(1));
    // The same point failing: the open reports it; nothing changed.
    let printed = fail_at(&root, "gc.reap_mid_tx", "error", &["open-only", "d"]);
    assert!(
        printed.starts_with("err open") && printed.contains("failpoint"),
        "{printed}"
    );
    assert_eq!(rows(&root)["d"].0, ArrayState::Deleting);
    check_after_open(&root, &expect_with("d", None), "gc.reap_mid_tx");
}

#[test]
fn a_crash_during_recovery_is_recovered_by_the_next_open() {
    // A sparse replace stops after its intent; the next open dies after renaming one of the three
    // data files; the one after that dies after syncing the directory, before marking the row
    // live; the last one finishes.
    let (_t, root) = setup();
    crash_at(&root, "publish.after_intent", &["sparse", "s", "12"]);
    crash_at(&root, "publish.after_data_rename", &["open-only", "s"]);
    assert_eq!(by_spec(&root)["s"], None, "invisible while being renamed");
    assert_eq!(rows(&root)["s"].0, ArrayState::Publishing);
    crash_at(&root, "publish.after_dir_sync", &["open-only", "s"]);
    assert_eq!(by_spec(&root)["s"], Some(12));
    assert_eq!(rows(&root)["s"].0, ArrayState::Publishing);
    check_after_open(&root, &expect_with("s", Some(12)), "recovery of a publish");

    // A remove stops after unlinking the YAML; the next open dies before deleting the row.
    let (_t, root) = setup();
    crash_at(&root, "remove.after_unlink_yaml", &["remove", "s"]);
    crash_at(&root, "remove.before_delete_row", &["open-only", "s"]);
    assert_eq!(rows(&root)["s"].0, ArrayState::Removing);
    check_after_open(&root, &expect_with("s", None), "recovery of a remove");
}

/// The SQL of the catalog's `arrays` table.
fn arrays_sql(root: &Path) -> String {
    rusqlite::Connection::open(root.join(".dafstore/catalog.sqlite"))
        .unwrap()
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'arrays'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Gives the catalog's `arrays` the `IN`-list constraints engines before this one wrote (SQLite's
/// documented procedure for a change of constraints that every row satisfies).
fn with_in_list_constraints(root: &Path) {
    let sql = arrays_sql(root)
        .replace(
            "kind = 'dense' OR kind = 'sparse' OR kind = 'table'",
            "kind IN ('dense', 'sparse', 'table')",
        )
        .replace(
            "layout = 'rows' OR layout = 'columns'",
            "layout IN ('rows', 'columns')",
        )
        .replace(
            "state = 'publishing' OR state = 'live' OR state = 'deleting' OR state = 'removing'",
            "state IN ('publishing', 'live', 'deleting', 'removing')",
        );
    assert_eq!(sql.matches(" IN (").count(), 3, "{sql}");
    let conn = rusqlite::Connection::open(root.join(".dafstore/catalog.sqlite")).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch("PRAGMA writable_schema = ON").unwrap();
    conn.execute(
        "UPDATE sqlite_master SET sql = ?1 WHERE type = 'table' AND name = 'arrays'",
        [&sql],
    )
    .unwrap();
    conn.pragma_update(None, "schema_version", v + 1).unwrap();
    conn.execute_batch("PRAGMA writable_schema = OFF").unwrap();
    drop(conn);
    assert_eq!(arrays_sql(root), sql);
}

#[test]
fn a_crash_inside_the_rewrite_of_the_catalogs_constraints_keeps_the_old_table_and_every_row() {
    let (_t, root) = setup();
    with_in_list_constraints(&root);
    let before = rows(&root);
    crash_at(&root, "catalog.rewrite_mid_tx", &["open-only", "d"]);
    assert!(arrays_sql(&root).contains(" IN ("), "rolled back");
    assert_eq!(rows(&root), before);
    // Failing there instead: the rewrite is best effort, the open succeeds on the old table.
    let printed = fail_at(
        &root,
        "catalog.rewrite_mid_tx",
        "error",
        &["open-only", "d"],
    );
    assert!(printed.starts_with("ok"), "{printed}");
    assert!(arrays_sql(&root).contains(" IN ("));
    assert_eq!(rows(&root), before);
    // The next open rewrites it; every array opens and fsck is clean.
    check_after_open(&root, &start_state(), "catalog.rewrite_mid_tx");
    assert!(
        !arrays_sql(&root).contains(" IN ("),
        "{}",
        arrays_sql(&root)
    );
    assert_eq!(rows(&root), before);
}

/// The steps of a batch publish (SPEC [W11]) of `d` (seed 10), `s` (seed 11, dense replacing
/// sparse) and `new` (seed 12), and whether the batch is published after the next open when the
/// writer stops there: none before its intent transaction commits, all after.
const BATCH_POINTS: [(&str, bool); 5] = [
    ("batch.before_intent", false),
    ("batch.intent_mid_tx", false),
    ("batch.after_intent", true),
    ("batch.before_dir_sync", true),
    ("batch.before_live", true),
];
const BATCH_ARGS: [&str; 3] = ["batch", "d,s,new", "10"];

fn batch_state(published: bool) -> BTreeMap<&'static str, Option<u64>> {
    let mut expect = start_state();
    if published {
        expect.insert("d", Some(10));
        expect.insert("s", Some(11));
        expect.insert("new", Some(12));
    }
    expect
}

#[test]
fn a_crash_at_each_step_of_a_batch_publishes_none_before_its_intent_and_all_after_it() {
    // `publish.after_yaml_rename` is reached after the first entry's renames: the others are
    // still staged when the writer dies.
    let points = BATCH_POINTS
        .iter()
        .copied()
        .chain([("publish.after_yaml_rename", true)]);
    for (point, published) in points {
        let (_t, root) = setup();
        crash_at(&root, point, &BATCH_ARGS);
        let before = rows(&root);
        for n in ["d", "s", "new"] {
            let state = before.get(n).map(|(s, _)| *s);
            if published {
                assert_eq!(state, Some(ArrayState::Publishing), "{point}: {n}");
            } else {
                assert_ne!(state, Some(ArrayState::Publishing), "{point}: {n}");
            }
        }
        check_after_open(&root, &batch_state(published), point);
    }
}

#[test]
fn an_error_at_each_step_of_a_batch_is_returned_before_its_intent_and_after_it_the_batch_succeeds()
{
    for (point, published) in BATCH_POINTS {
        let (_t, root) = setup();
        let printed = fail_at(&root, point, "error", &BATCH_ARGS);
        if published {
            assert_eq!(printed, "ok", "{point}");
        } else {
            assert!(
                printed.starts_with("err ") && printed.contains("failpoint"),
                "{point}: {printed}"
            );
        }
        check_after_open(&root, &batch_state(published), point);
    }
}

/// Every failpoint named in the engine's sources: the names in `failpoint!("…")`,
/// `failpoint::hit("…")` and `hit_sql("…")` calls of every `.rs` file under `engine/src`, searched
/// recursively (files move into sub-directories), `failpoint.rs` (the definitions) excepted.
/// Returns the names and how many source files were read.
fn engine_failpoints() -> (BTreeSet<String>, usize) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/src");
    let mut out = BTreeSet::new();
    let mut files = 0;
    let mut dirs = vec![src];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") || p.ends_with("failpoint.rs") {
                continue;
            }
            files += 1;
            let s = std::fs::read_to_string(&p).unwrap();
            for pat in ["failpoint!(\"", "hit(\"", "hit_sql(\""] {
                for (i, _) in s.match_indices(pat) {
                    let rest = &s[i + pat.len()..];
                    out.insert(rest[..rest.find('"').unwrap()].to_string());
                }
            }
        }
    }
    (out, files)
}

/// Makes `d` a deferred removal whose only holder has died (killed): the next read-write open
/// reaps it and runs the deletion (through `gc.reap_mid_tx`).
fn dead_holder_of_a_deferred_removal(root: &Path) {
    let mut holder = Command::new(HELPER)
        .arg("op")
        .arg(root)
        .args(["hold-forever", "d"])
        .env_remove("DAFSTORE_FAILPOINT")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held");
    }
    let c = Container::open(root).unwrap();
    assert_eq!(c.remove("d").unwrap(), Removal::Deferred { holders: 1 });
    drop(c);
    holder.kill().unwrap();
    holder.wait().unwrap();
}

/// How a case of this file reaches one failpoint: the setup before the helper runs and the
/// helper's operation.
struct Scenario {
    point: &'static str,
    prepare: fn(&Path),
    args: Vec<String>,
}

/// How the cases of this file reach each failpoint: the publish and remove steps through the
/// tables their cases iterate ([`PUBLISH_POINTS`] with [`TARGETS`], [`REMOVE_POINTS`]), the
/// others with the helper operation (and the setup) of their own case. `open.after_row` is also
/// paused on by `hardening_catalog.rs` (a read-only reader); a read-write open reaches it too.
fn scenarios() -> Vec<Scenario> {
    fn nothing(_: &Path) {}
    let plain = |point, args: &[&str]| Scenario {
        point,
        prepare: nothing,
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    let mut out = Vec::new();
    for (point, _, _, _, ops) in PUBLISH_POINTS {
        let t = TARGETS
            .iter()
            .find(|t| ops.is_empty() || ops.contains(&t.op))
            .expect("a target for every publish point");
        out.push(plain(point, &[t.op, t.name, &t.new.to_string()]));
    }
    for (point, ..) in REMOVE_POINTS {
        out.push(plain(point, &["remove", "d"]));
    }
    out.push(plain("refs.after_record", &["retain", "d"]));
    for point in [
        "settle.mark_mid_tx",
        "release.before_stripe",
        "release.after_mark_removing",
    ] {
        out.push(plain(point, &["hold-remove-release", "d"]));
    }
    out.push(plain("session.before_lock", &["open-only", "d"]));
    out.push(Scenario {
        prepare: dead_holder_of_a_deferred_removal,
        ..plain("gc.reap_mid_tx", &["open-only", "d"])
    });
    out.push(plain("open.after_row", &["open", "d"]));
    out.push(Scenario {
        prepare: with_in_list_constraints,
        ..plain("catalog.rewrite_mid_tx", &["open-only", "d"])
    });
    for (point, _) in BATCH_POINTS {
        out.push(plain(point, &BATCH_ARGS));
    }
    for (point, _) in EVICT_POINTS {
        out.push(Scenario {
            prepare: cache_full,
            ..plain(point, &["write-dense", "new", "3"])
        });
    }
    out
}

/// Makes `k` a cached entry nobody holds and sets the capacity to the bytes stored: the next
/// write of `new` (seed 3: the size of `k`) must evict `k` first (SPEC [E4]).
fn cache_full(root: &Path) {
    let c = Container::open(root).unwrap();
    c.set_lifecycle("k", dafstore::Lifecycle::Cached).unwrap();
    let used = c.usage().unwrap().entries;
    c.set_capacity(Some(used)).unwrap();
}

/// The steps of a write that evicts (SPEC [E3], [E4]), in order, and whether `k` is still there
/// after the next open when the writer dies at that step: nothing is marked before the evictor
/// holds `k`'s stripe and has seen no holder ([P3]).
const EVICT_POINTS: [(&str, bool); 4] = [
    ("evict.before_stripe", true),
    ("evict.mark_mid_tx", true),
    ("evict.after_remove", false),
    ("reserve.mid_tx", false),
];

#[test]
fn a_crash_or_an_error_at_each_step_of_an_eviction_loses_nothing_but_the_evicted_entry() {
    for (point, k_kept) in EVICT_POINTS {
        let (_t, root) = setup();
        cache_full(&root);
        crash_at(&root, point, &["write-dense", "new", "3"]);
        let mut expect = start_state();
        if !k_kept {
            expect.insert("k", None);
        }
        // The dead writer published nothing; its reservation and staging are collected.
        check_after_open(&root, &expect, point);
        let c = Container::open(&root).unwrap();
        assert_eq!(c.usage().unwrap().reserved, 0, "{point}");
        // The write then succeeds (evicting k if it is still there).
        gen::write_dense(&c, "new", 3).unwrap();
        drop(c);
        expect.insert("k", None);
        expect.insert("new", Some(3));
        check_after_open(&root, &expect, point);
    }
    // An error inside either transaction is returned and leaves everything as it was.
    for point in ["evict.mark_mid_tx", "reserve.mid_tx"] {
        let (_t, root) = setup();
        cache_full(&root);
        let printed = fail_at(&root, point, "error", &["write-dense", "new", "3"]);
        assert!(
            printed.starts_with("err ") && printed.contains("failpoint"),
            "{point}: {printed}"
        );
        let mut expect = start_state();
        if point == "reserve.mid_tx" {
            expect.insert("k", None); // evicted before the reservation's transaction
        }
        check_after_open(&root, &expect, point);
    }
}

#[test]
fn every_failpoint_in_the_engine_is_exercised() {
    let (in_sources, files) = engine_failpoints();
    // An empty or broken scan must not pass: the engine has dozens of source files and more than
    // twenty failpoints.
    assert!(files >= 10, "only {files} .rs files found under engine/src");
    assert!(
        in_sources.len() >= 20,
        "only {} failpoints found in engine/src: {in_sources:?}",
        in_sources.len()
    );
    let scenarios = scenarios();
    let exercised: BTreeSet<String> = scenarios.iter().map(|s| s.point.to_string()).collect();
    assert_eq!(
        exercised.len(),
        scenarios.len(),
        "a failpoint is listed twice"
    );
    assert_eq!(
        exercised, in_sources,
        "left: exercised by the cases of crash_points.rs; right: named in engine/src"
    );
    // Each one is really reached by its case's operation: the process stops exactly there.
    for sc in scenarios {
        let (_t, root) = setup();
        (sc.prepare)(&root);
        let args: Vec<&str> = sc.args.iter().map(String::as_str).collect();
        crash_at(&root, sc.point, &args);
    }
}

/// The lock stripes of `root` that somebody holds now (each probed: taken exclusively and given
/// up at once if free).
fn stripes_taken(root: &Path) -> Vec<String> {
    let mut taken = Vec::new();
    for e in std::fs::read_dir(root.join(".dafstore/locks")).unwrap() {
        let p = e.unwrap().path();
        let f = std::fs::File::open(&p).unwrap();
        if f.try_lock().is_err() {
            taken.push(p.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    taken
}

#[test]
fn a_lock_file_kept_open_and_locked_after_a_fork_is_not_kept_locked_by_the_child_when_the_parent_dies(
) {
    // A process keeps its stripes' lock files open and takes them shared through them (SPEC
    // [W6]). A child forked while one is open but unlocked shares its open file description: if
    // the parent then locks it and dies, the child's copy would keep the stripe locked, and every
    // publish or remove of its names would wait for as long as the child lives ([P2]).
    let (t, root) = setup();
    let go = t.path().join("go");
    std::fs::write(&go, b"").unwrap();
    let mut parent = Command::new(HELPER)
        .args(["fork-then-open", root.to_str().unwrap(), "d"])
        .env(
            "DAFSTORE_FAILPOINT",
            format!("open.after_row:wait={}", go.display()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(parent.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let child: i32 = line
        .trim()
        .strip_prefix("child ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("helper said {line:?}"));
    // The second open waits at the failpoint, holding `d`'s stripe shared.
    std::fs::remove_file(&go).unwrap();
    std::io::Write::write_all(parent.stdin.as_mut().unwrap(), b"open\n").unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stripes_taken(&root).is_empty() {
        assert!(
            std::time::Instant::now() < end,
            "the open never took its stripe"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    parent.kill().unwrap();
    parent.wait().unwrap();
    // SAFETY: kill with signal 0 only checks that the process exists.
    assert_eq!(
        unsafe { libc::kill(child, 0) },
        0,
        "the forked child is alive"
    );
    let taken = stripes_taken(&root);
    // SAFETY: plain signal delivery to the helper's child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
    }
    assert!(
        taken.is_empty(),
        "stripes {taken:?} stay locked by the child after the parent died"
    );
    // And the name can be written.
    let c = Container::open(&root).unwrap();
    gen::write_dense(&c, "d", 9).unwrap();
}
