//! Open or load (SPEC 9.6): exactly one loader per absent name across threads and processes,
//! waiters that take over from a failed or killed loader, timeouts that name the loader.
// Loaders return `dafstore::Result`, whose error is 128 bytes (clippy's `result_large_err`
// threshold): what a user's loader returns too.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use dafstore::{Array, Container, LoadError, LoadOptions};
use dafstore_tests::{dafctl_bin, new_container};

const HELPER: &str = env!("CARGO_BIN_EXE_dafstore-test-helper");

fn values(a: Array) -> Vec<f64> {
    let Array::Dense(d) = a else {
        panic!("not dense")
    };
    d.as_slice::<f64>().unwrap().to_vec()
}

#[test]
fn eight_threads_asking_for_an_absent_name_at_once_load_it_once_and_all_map_it() {
    let (_d, c) = new_container();
    let loads = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            // Each thread its own handle: as separate processes would, they meet on the lock file.
            let c = Container::open(c.root()).unwrap();
            let (loads, start) = (loads.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let a = c
                    .open_or_load("in/x", |c: &Container, n: &str| -> dafstore::Result<()> {
                        loads.fetch_add(1, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(50));
                        c.write_dense::<f64>(n, &[3], &[1.0, 2.0, 3.0])?;
                        Ok(())
                    })
                    .unwrap();
                values(a)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), [1.0, 2.0, 3.0]);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert!(c.loads().unwrap().is_empty());
}

#[test]
fn a_failing_loader_returns_its_error_publishes_nothing_and_the_next_waiter_loads() {
    let (_d, c) = new_container();
    let attempts = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = Container::open(c.root()).unwrap();
            let (attempts, start) = (attempts.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                c.open_or_load("x", |c: &Container, n: &str| -> Result<(), Failed> {
                    // The first loader fails (after the others queued on the lock).
                    if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                        thread::sleep(Duration::from_millis(50));
                        return Err(Failed("the source is unreachable".into()));
                    }
                    c.write_dense::<f64>(n, &[1], &[7.0])
                        .map_err(|e| Failed(e.to_string()))
                })
                .map(values)
                .map_err(|Failed(e)| e)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed, [&"the source is unreachable".to_string()]);
    assert!(results.iter().flatten().all(|v| v == &[7.0]));
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "one failure, then one load"
    );
}

/// A loader's own error type: `open_or_load` returns it as it is.
struct Failed(String);

impl From<LoadError> for Failed {
    fn from(e: LoadError) -> Failed {
        Failed(e.to_string())
    }
}

#[test]
fn a_loader_that_publishes_nothing_is_an_error_and_a_read_only_handle_cannot_load() {
    let (_d, c) = new_container();
    let e = c
        .open_or_load("x", |_: &Container, _: &str| -> dafstore::Result<()> {
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(e, dafstore::Error::Load(LoadError::NotPublished { .. })),
        "{e}"
    );
    let ro = Container::options().read_only(true).open(c.root()).unwrap();
    let e = ro
        .open_or_load("x", |_: &Container, _: &str| -> dafstore::Result<()> {
            unreachable!()
        })
        .unwrap_err();
    assert!(
        matches!(e, dafstore::Error::Load(LoadError::ReadOnly { .. })),
        "{e}"
    );
    // A published entry opens through a read-only handle without any lock.
    c.write_dense::<f64>("x", &[1], &[1.0]).unwrap();
    let a = ro
        .open_or_load("x", |_: &Container, _: &str| -> dafstore::Result<()> {
            unreachable!()
        })
        .unwrap();
    assert_eq!(values(a), [1.0]);
}

#[test]
fn a_waiter_that_times_out_is_told_which_process_is_loading_what() {
    let (_d, c) = new_container();
    let held = c.lock_load("day/1", None).unwrap();
    assert!(held
        .path()
        .ends_with(".dafstore/locks/load-ad14eb57e462f525.lock"));
    let loads = c.loads().unwrap();
    assert_eq!(loads.len(), 1);
    assert_eq!(
        (loads[0].pid, loads[0].name.as_str()),
        (std::process::id(), "day/1")
    );
    let other = Container::open(c.root()).unwrap();
    let t0 = Instant::now();
    let e = other
        .open_or_load_with(
            "day/1",
            &LoadOptions {
                timeout: Some(Duration::from_millis(150)),
                ..LoadOptions::default()
            },
            |_: &Container, _: &str| -> dafstore::Result<()> { unreachable!() },
        )
        .unwrap_err();
    assert!(t0.elapsed() >= Duration::from_millis(150));
    let msg = e.to_string();
    assert!(
        matches!(e, dafstore::Error::Load(LoadError::Timeout { .. })),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("process {}", std::process::id())) && msg.contains("\"day/1\""),
        "{msg}"
    );
    drop(held);
    assert!(c.loads().unwrap().is_empty());
    let a = other
        .open_or_load("day/1", |c: &Container, n: &str| -> dafstore::Result<()> {
            c.write_dense::<f64>(n, &[1], &[1.0])?;
            Ok(())
        })
        .unwrap();
    assert_eq!(values(a), [1.0]);
}

#[test]
fn a_loader_killed_with_sigkill_is_taken_over_by_a_waiter_at_once() {
    let (_d, c) = new_container();
    let mut child = Command::new(HELPER)
        .args(["load-hang", c.root().to_str().unwrap(), "big"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    assert_eq!(c.loads().unwrap()[0].pid, child.id());
    // dafctl holders shows who is loading what, in text and JSON.
    let text = Command::new(dafctl_bin())
        .args(["holders", c.root().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with(&child.id().to_string()) && l.contains("big (loading)")),
        "{text}"
    );
    let json = Command::new(dafctl_bin())
        .args(["holders", c.root().to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let loader = json
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["pid"] == child.id())
        .unwrap();
    assert_eq!(loader["loading"], serde_json::json!(["big"]));
    let waiter = {
        let c = Container::open(c.root()).unwrap();
        thread::spawn(move || {
            let t0 = Instant::now();
            let a = c
                .open_or_load("big", |c: &Container, n: &str| -> dafstore::Result<()> {
                    c.write_dense::<f64>(n, &[2], &[4.0, 2.0])?;
                    Ok(())
                })
                .unwrap();
            (values(a), t0.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(300));
    assert!(
        !waiter.is_finished(),
        "the waiter waits while the loader lives"
    );
    let killed = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got, [4.0, 2.0]);
    assert!(waited >= Duration::from_millis(300));
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "taken over at once"
    );
    assert!(c.loads().unwrap().is_empty());
}

#[test]
fn eight_processes_over_random_names_never_overlap_two_loads_of_a_name() {
    let (_d, c) = new_container();
    let log = c.root().parent().unwrap().join("loads.log");
    std::fs::write(&log, "").unwrap();
    let children: Vec<_> = (0..8)
        .map(|id| {
            Command::new(HELPER)
                .args([
                    "load-loop",
                    c.root().to_str().unwrap(),
                    log.to_str().unwrap(),
                    &id.to_string(),
                    "60",
                    "6",
                ])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for ch in children {
        let out = ch.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Per name, the loads' [start, end] intervals never overlap.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut open: BTreeMap<String, u128> = BTreeMap::new();
    let mut events: Vec<(u128, bool, String)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[2].parse().unwrap(), f[0] == "start", f[1].to_string())
        })
        .collect();
    // Ends sort before starts at the same instant (a load may start as the previous one ends).
    events.sort_by_key(|(t, start, _)| (*t, *start));
    let mut loads = 0;
    for (t, start, name) in events {
        if start {
            assert!(
                open.insert(name.clone(), t).is_none(),
                "two loads of {name} at once"
            );
            loads += 1;
        } else {
            assert!(
                open.remove(&name).is_some(),
                "an end of {name} without a start"
            );
        }
    }
    assert!(open.is_empty());
    assert!(loads >= 6, "every name was loaded at least once ({loads})");
    assert!(
        loads < 8 * 60,
        "most opens found the name published ({loads})"
    );
}

#[test]
fn gc_removes_idle_load_locks_and_a_waiter_on_an_unlinked_lock_locks_the_new_file() {
    let (_d, c) = new_container();
    let held = c.lock_load("x", None).unwrap();
    let path = held.path().to_path_buf();
    // gc leaves a held load lock alone ([L4]).
    c.gc().unwrap();
    assert!(path.exists());

    // A waiter blocks on the file; the file is unlinked under it (as a cleaner would); when it
    // gets the lock it must see that the path no longer names its file and lock the new one.
    let waiter = {
        let c = Container::open(c.root()).unwrap();
        thread::spawn(move || c.lock_load("x", None).unwrap())
    };
    thread::sleep(Duration::from_millis(200));
    std::fs::remove_file(&path).unwrap();
    drop(held);
    let relocked = waiter.join().unwrap();
    // It holds the file the path names now: a third locker waits (a waiter left holding the
    // unlinked file would let it through at once).
    assert!(path.exists());
    let third = Container::open(c.root()).unwrap();
    let e = third
        .lock_load("x", Some(Duration::from_millis(100)))
        .unwrap_err();
    assert!(matches!(e, LoadError::Timeout { .. }), "{e}");
    drop(relocked);

    // Idle now: an explicit gc removes it; the next load makes it again.
    c.gc().unwrap();
    assert!(!path.exists());
    drop(c.lock_load("x", None).unwrap());
    assert!(path.exists());
}

#[test]
fn a_child_forked_while_a_load_lock_is_held_does_not_keep_it() {
    let (_d, c) = new_container();
    let held = c.lock_load("x", None).unwrap();
    // SAFETY (test): the child only sleeps and exits with `_exit` (async-signal-safe calls).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::sleep(3);
            libc::_exit(0);
        }
    }
    assert!(pid > 0);
    drop(held);
    // The child still has its copy of the descriptor, but not the lock.
    let other = Container::open(c.root()).unwrap();
    let relocked = other.lock_load("x", Some(Duration::from_millis(500)));
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(relocked.is_ok(), "{:?}", relocked.err());
}
