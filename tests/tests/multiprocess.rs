//! Several processes share one container: a replace by another process is seen by this process's
//! next open while its old handles keep the old values; arrays written by another process read
//! back exactly; a writer killed with SIGKILL before publishing leaves nothing visible and its
//! session and staging files are cleaned by the next open; concurrent writers in several processes
//! all succeed (no SQLITE_BUSY surfaces).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dafstore::{Bool8, Container, IndexSlice, Layout, OpenError};
use dafstore_tests::{listing, new_container_path, session_ids};

const HELPER: &str = env!("CARGO_BIN_EXE_dafstore-test-helper");
/// Generous bound on a child's life, so a hung child fails the test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(60);

fn helper(args: &[&str]) -> Command {
    let mut cmd = Command::new(HELPER);
    cmd.args(args);
    cmd
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// A child killed (by its pid) and reaped if the test fails while it runs.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn spawn(cmd: &mut Command) -> ChildGuard {
        ChildGuard(Some(cmd.spawn().expect("spawn helper")))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child")
    }

    /// Waits for the child to exit (killing it after `DEADLINE`) and returns its output.
    fn wait(mut self) -> Output {
        let start = Instant::now();
        loop {
            if self.child().try_wait().expect("try_wait").is_some() {
                break;
            }
            if start.elapsed() > DEADLINE {
                panic!("helper did not exit within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.0.take().unwrap().wait_with_output().expect("output")
    }

    fn kill(mut self) -> ExitStatus {
        let mut child = self.0.take().unwrap();
        child.kill().expect("kill"); // SIGKILL
        child.wait().expect("wait")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the helper to completion; it must succeed. Returns its stdout.
fn run_ok(args: &[&str]) -> String {
    let out = ChildGuard::spawn(helper(args).stdout(Stdio::piped()).stderr(Stdio::piped())).wait();
    assert!(
        out.status.success(),
        "helper {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn parse_csv(s: &str) -> Vec<f64> {
    let s = s.trim();
    if s.is_empty() {
        return Vec::new();
    }
    s.split(',').map(|v| v.parse().unwrap()).collect()
}

#[test]
fn a_replace_by_another_process_is_seen_by_the_next_open_and_not_by_old_handles() {
    let (_d, path) = new_container_path();
    let p = path_str(&path);
    let c = Container::open(&path).unwrap();
    c.write_dense::<f64>("x", &[3], &[1.0, 2.0, 3.0]).unwrap();
    let old = c.open_dense::<f64>("x").unwrap();
    assert_eq!(old.as_slice(), &[1.0, 2.0, 3.0]);

    run_ok(&["write-dense", p, "x", "7,8,9,10"]);
    assert_eq!(old.as_slice(), &[1.0, 2.0, 3.0]);
    let new = c.open_dense::<f64>("x").unwrap();
    assert_eq!(new.as_slice(), &[7.0, 8.0, 9.0, 10.0]);
    assert!(new.untyped().generation() > old.untyped().generation());

    // Same dtype and length: only the file identity tells the generations apart.
    run_ok(&["write-dense", p, "x", "-1,-2,-3,-4"]);
    assert_eq!(
        c.open_dense::<f64>("x").unwrap().as_slice(),
        &[-1.0, -2.0, -3.0, -4.0]
    );
    assert_eq!(new.as_slice(), &[7.0, 8.0, 9.0, 10.0]);
    assert_eq!(old.as_slice(), &[1.0, 2.0, 3.0]);

    // And the other way: the child reads what this process replaced.
    c.write_dense::<f64>("x", &[2], &[0.5, 1.5]).unwrap();
    assert_eq!(parse_csv(&run_ok(&["read-dense", p, "x"])), [0.5, 1.5]);
    assert_eq!(c.ls().unwrap(), ["x"]);
}

/// A process keeps the rows it read for its next opens while the name's lock stripe is unchanged
/// ([W6]); another process's replace, removal or lifecycle change stamps the stripe anew, so the
/// next open here reads the catalog again: the new generation, not found, the new lifecycle.
#[test]
fn a_row_kept_for_the_next_open_is_not_used_after_another_process_changes_the_name() {
    let (_d, path) = new_container_path();
    let p = path_str(&path);
    let c = Container::open(&path).unwrap();
    c.write_dense::<f64>("x", &[3], &[1.0, 2.0, 3.0]).unwrap();
    for _ in 0..2 {
        // Opened and dropped twice: the second open may use the kept row.
        assert_eq!(
            c.open_dense::<f64>("x").unwrap().as_slice(),
            &[1.0, 2.0, 3.0]
        );
    }
    let first = c.open_dense::<f64>("x").unwrap().untyped().generation();

    run_ok(&["write-dense", p, "x", "7,8,9,10"]);
    let new = c.open_dense::<f64>("x").unwrap();
    assert_eq!(new.as_slice(), &[7.0, 8.0, 9.0, 10.0]);
    assert!(new.untyped().generation() > first);
    drop(new);
    // Same dtype and length, replaced again: only the generation tells them apart.
    run_ok(&["write-dense", p, "x", "-1,-2,-3,-4"]);
    assert_eq!(
        c.open_dense::<f64>("x").unwrap().as_slice(),
        &[-1.0, -2.0, -3.0, -4.0]
    );

    // Made scratch elsewhere while nobody holds it, after it was held: removed at once ([P6]).
    run_ok(&["set-lifecycle", p, "x", "scratch"]);
    assert!(matches!(
        c.open_dense::<f64>("x"),
        Err(OpenError::NotFound { .. })
    ));

    c.write_dense::<f64>("y", &[1], &[5.0]).unwrap();
    assert_eq!(c.open_dense::<f64>("y").unwrap().as_slice(), &[5.0]);
    run_ok(&["remove", p, "y"]);
    assert!(matches!(
        c.open_dense::<f64>("y"),
        Err(OpenError::NotFound { .. })
    ));
    // The read-only handle keeps rows too.
    c.write_dense::<f64>("z", &[1], &[1.0]).unwrap();
    let ro = Container::options().read_only(true).open(&path).unwrap();
    assert_eq!(ro.open_dense::<f64>("z").unwrap().as_slice(), &[1.0]);
    run_ok(&["write-dense", p, "z", "2,3"]);
    assert_eq!(ro.open_dense::<f64>("z").unwrap().as_slice(), &[2.0, 3.0]);
    run_ok(&["remove", p, "z"]);
    assert!(matches!(
        ro.open_dense::<f64>("z"),
        Err(OpenError::NotFound { .. })
    ));
}

#[test]
fn arrays_written_by_another_process_read_back_exactly() {
    let (_d, path) = new_container_path();
    run_ok(&["write-sample", path_str(&path)]);
    // A child that exits normally leaves no session and no staging files behind.
    assert_eq!(session_ids(&path), Vec::<String>::new());
    assert!(listing(&path.join(".dafstore/staging")).is_empty());

    let c = Container::open(&path).unwrap();
    assert_eq!(
        c.ls().unwrap(),
        [
            "dense/f64",
            "dense/i32",
            "flags",
            "sparse/csc",
            "sparse/csr"
        ]
    );
    let d = c.open_dense::<f64>("dense/f64").unwrap();
    assert_eq!(d.shape(), &[2, 3]);
    assert_eq!(d.as_slice(), &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    assert_eq!(
        c.open_dense::<i32>("dense/i32").unwrap().as_slice(),
        &[-2, -1, 0, i32::MAX]
    );
    assert_eq!(
        c.open_dense::<Bool8>("flags").unwrap().as_slice(),
        &[Bool8(1), Bool8(0), Bool8(1)]
    );
    let csr = c.open_sparse("sparse/csr").unwrap();
    assert_eq!(
        (csr.shape(), csr.nnz(), csr.layout()),
        ([3, 4], 3, Layout::Rows)
    );
    assert_eq!(csr.data::<f32>().unwrap(), &[1.0, 2.0, 3.0]);
    assert!(matches!(csr.indices(), IndexSlice::I32(&[1, 3, 0])));
    assert!(matches!(csr.indptr(), IndexSlice::I64(&[0, 2, 2, 3])));
    let csc = c.open_sparse("sparse/csc").unwrap();
    assert_eq!(
        (csc.shape(), csc.nnz(), csc.layout()),
        ([2, 3], 2, Layout::Columns)
    );
    assert_eq!(csc.data::<u16>().unwrap(), &[7, 8]);
    assert!(matches!(csc.indices(), IndexSlice::U64(&[1, 0])));
    assert!(matches!(csc.indptr(), IndexSlice::U32(&[0, 1, 1, 2])));
    assert_eq!(csc.major_range(1), Some(1..1));
    // Another process's checksums are the ones of the bytes.
    let rec = c.info("dense/f64").unwrap();
    assert_eq!(
        rec.files[0].crc32c,
        Some(dafstore::internals::checksum::crc32c(
            d.untyped().as_bytes()
        ))
    );
}

/// Spawns `create-and-hang` and waits for its "ready" line.
fn spawn_hanging_writer(path: &Path, name: &str) -> ChildGuard {
    let mut guard = ChildGuard::spawn(
        helper(&["create-and-hang", path_str(path), name, "1000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let stdout = guard.child().stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(DEADLINE)
        .expect("helper never became ready");
    assert_eq!(
        line.trim(),
        "ready",
        "helper failed before creating its writer"
    );
    guard
}

fn staging_of(path: &Path, session: &str) -> PathBuf {
    path.join(".dafstore/staging").join(session)
}

#[test]
fn a_writer_killed_before_publishing_leaves_nothing_and_is_cleaned_by_the_next_open() {
    let (_d, path) = new_container_path();
    let child = spawn_hanging_writer(&path, "x");
    let sessions = session_ids(&path);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let id = sessions[0].clone();
    let staging = staging_of(&path, &id);
    assert!(
        !listing(&staging).is_empty(),
        "the writer's staging file is missing"
    );

    // While the child lives, an open must not take its session or staging files away.
    {
        let c = Container::open(&path).unwrap();
        assert!(staging.is_dir());
        assert!(session_ids(&path).contains(&id));
        assert!(c.ls().unwrap().is_empty());
    }
    assert!(!listing(&staging).is_empty());

    let status = child.kill();
    assert!(!status.success());
    // Nothing is visible, even before cleanup.
    let ro = Container::options().read_only(true).open(&path).unwrap();
    assert!(ro.ls().unwrap().is_empty());
    assert!(matches!(
        ro.open_array("x"),
        Err(OpenError::NotFound { .. })
    ));
    assert!(listing(&path).is_empty(), "{:?}", listing(&path));
    drop(ro);

    let c = Container::open(&path).unwrap();
    assert!(c.ls().unwrap().is_empty());
    assert!(c.info_all().unwrap().is_empty());
    assert!(!staging.exists(), "dead session's staging dir survived");
    assert!(
        !session_ids(&path).contains(&id),
        "dead session's lock file survived"
    );
    assert!(listing(&path).is_empty());
    // The name is free.
    c.write_dense::<f64>("x", &[1], &[1.0]).unwrap();
    assert_eq!(c.open_dense::<f64>("x").unwrap().as_slice(), &[1.0]);
}

#[test]
fn reopening_while_a_handle_is_held_also_cleans_dead_sessions() {
    let (_d, path) = new_container_path();
    let held = Container::open(&path).unwrap();
    let own = session_ids(&path);
    let child = spawn_hanging_writer(&path, "y");
    let id = session_ids(&path)
        .into_iter()
        .find(|s| !own.contains(s))
        .expect("child session");
    child.kill();
    // Container::open promises to clean up after dead sessions, whether or not this process
    // already has the container open.
    let c = Container::open(&path).unwrap();
    assert!(c.ls().unwrap().is_empty());
    assert!(
        !staging_of(&path, &id).exists(),
        "dead session's staging dir survived Container::open"
    );
    assert!(!session_ids(&path).contains(&id));
    drop(held);
}

/// Threads of one process (one pid) creating one container at once: each writes its own
/// temporary version file, so exactly one makes the container, the others are told it exists,
/// and nobody empties the version file another linked into place.
#[test]
fn threads_of_one_process_creating_one_container_at_once_make_it_once_and_intact() {
    for _ in 0..20 {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c");
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| s.spawn(|| Container::create(&path).map(drop)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let made = results.iter().filter(|r| r.is_ok()).count();
        for r in &results {
            if let Err(e) = r {
                assert!(
                    matches!(e, dafstore::ContainerError::AlreadyExists { .. }),
                    "{e}"
                );
            }
        }
        assert_eq!(made, 1, "{results:?}");
        let yaml = std::fs::read_to_string(path.join(".dafstore/container.yaml")).unwrap();
        assert!(yaml.contains("format"), "{yaml:?}");
        let leftovers: Vec<_> = std::fs::read_dir(path.join(".dafstore"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        Container::open(&path).unwrap();
    }
}

/// Workers of a pool all open the container at once, often before it exists: SQLite answers
/// "database is locked" without waiting while another connection converts a new catalog to WAL,
/// recovers it or cleans up at its last close. None of these may reach the caller.
#[test]
fn many_processes_creating_and_opening_one_container_at_once_all_succeed() {
    for round in 0..6 {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c");
        let p = path_str(&path);
        let children: Vec<ChildGuard> = (0..6)
            .map(|_| {
                ChildGuard::spawn(
                    helper(&["create-or-open", p, "15"])
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped()),
                )
            })
            .collect();
        for (k, child) in children.into_iter().enumerate() {
            let out = child.wait();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "round {round}, child {k}: {stderr}");
        }
        Container::open(&path).unwrap();
    }
}

#[test]
fn concurrent_writers_in_several_processes_all_succeed() {
    let (_d, path) = new_container_path();
    let p = path_str(&path);
    const CHILDREN: u32 = 4;
    const WRITES: u32 = 20;
    let children: Vec<ChildGuard> = (1..=CHILDREN)
        .map(|id| {
            ChildGuard::spawn(
                helper(&["write-many", p, &id.to_string(), &WRITES.to_string()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    // This process writes at the same time.
    let c = Container::open(&path).unwrap();
    for i in 0..WRITES {
        c.write_dense::<f64>(&format!("parent/a{i}"), &[2], &[-1.0, f64::from(i)])
            .unwrap();
    }
    for (k, child) in children.into_iter().enumerate() {
        let out = child.wait();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child {}: {stderr}", k + 1);
        assert!(stderr.is_empty(), "child {}: {stderr}", k + 1);
    }
    let names = c.ls().unwrap();
    assert_eq!(names.len(), ((CHILDREN + 1) * WRITES) as usize);
    for id in 1..=CHILDREN {
        for i in 0..WRITES {
            let name = format!("w{id}/a{i}");
            let a = c
                .open_dense::<f64>(&name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                a.as_slice(),
                &[f64::from(id), f64::from(i), f64::from(id * 1000 + i)],
                "{name}"
            );
        }
    }
    for i in 0..WRITES {
        let a = c.open_dense::<f64>(&format!("parent/a{i}")).unwrap();
        assert_eq!(a.as_slice(), &[-1.0, f64::from(i)]);
    }
    // Every child exited normally: only this process's session remains, no staging files.
    assert_eq!(session_ids(&path).len(), 1);
    assert!(listing(&path.join(".dafstore/staging"))
        .values()
        .all(|e| *e == dafstore_tests::Entry::Dir));
    assert!(c
        .info_all()
        .unwrap()
        .iter()
        .all(|r| r.state == dafstore::ArrayState::Live && r.generation == 1));
}

#[test]
fn concurrent_replaces_of_one_name_by_several_processes_leave_one_complete_generation() {
    let (_d, path) = new_container_path();
    let p = path_str(&path);
    let c = Container::open(&path).unwrap();
    c.write_dense::<f64>("x", &[1], &[0.0]).unwrap();
    let first = c.open_dense::<f64>("x").unwrap();
    let values: Vec<String> = (1..=4)
        .map(|k| {
            (0..k * 10)
                .map(|_| k.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let children: Vec<ChildGuard> = values
        .iter()
        .map(|v| {
            ChildGuard::spawn(
                helper(&["write-dense", p, "x", v])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    for child in children {
        let out = child.wait();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Whichever publish came last, the array is one of the written generations, whole.
    let x = c.open_dense::<f64>("x").unwrap();
    let k = x[0];
    assert!((1.0..=4.0).contains(&k), "{k}");
    assert_eq!(x.len(), k as usize * 10);
    assert!(
        x.iter().all(|&v| v == k),
        "mixed generations: {:?}",
        x.as_slice()
    );
    assert_eq!(c.info("x").unwrap().generation, 5);
    assert_eq!(first.as_slice(), &[0.0]);
}
