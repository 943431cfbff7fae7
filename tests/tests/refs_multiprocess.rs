//! Cross-process reference counts with real processes: files are deleted only when no live
//! process holds them; a removal while held is deferred to the last release, by whichever process
//! releases it; a holder that dies however it dies (SIGKILL, exit without releasing, panic) is
//! reaped without help; liveness never trusts pids; a forked child does not keep its parent's
//! references; concurrent random traffic ends with catalog counts equal to an independent tally.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use dafstore::{Container, Removal};
use dafstore_tests::holders_of;

const HELPER: &str = env!("CARGO_BIN_EXE_dafstore-refs-helper");

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(HELPER)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn helper");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Proc {
            child,
            stdin,
            stdout,
        }
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).expect("read helper output");
        s.trim().to_string()
    }

    fn expect(&mut self, what: &str) {
        let got = self.line();
        assert!(
            got.starts_with(what),
            "expected {what:?}, helper said {got:?}"
        );
    }

    fn send(&mut self, cmd: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{cmd}").expect("write to helper");
        stdin.flush().expect("flush");
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap child");
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait")
    }
}

fn hold(dir: &Path, names: &[&str]) -> Proc {
    let mut args = vec!["hold", dir.to_str().unwrap()];
    args.extend_from_slice(names);
    let mut p = Proc::spawn(&args);
    p.expect("held");
    p
}

fn setup(names: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let c = Container::create(&dir).unwrap();
    for n in names {
        c.write_dense::<f64>(n, &[3], &[1.0, 2.0, 3.0]).unwrap();
    }
    (tmp, dir)
}

#[test]
fn two_holders_the_files_go_only_after_both_release() {
    let (_t, dir) = setup(&["x"]);
    let mut a = hold(&dir, &["x"]);
    let mut b = hold(&dir, &["x"]);
    let c = Container::open(&dir).unwrap();
    assert_eq!(holders_of(&c, "x"), 2);
    assert_eq!(c.remove("x").unwrap(), Removal::Deferred { holders: 2 });
    assert!(dir.join("x.array").exists() && dir.join("x.yaml").exists());
    assert!(c.open_dense::<f64>("x").is_err(), "gone for new holders");
    a.send("release");
    a.expect("released");
    assert!(dir.join("x.array").exists(), "b still holds it");
    b.send("release");
    b.expect("released");
    assert!(
        !dir.join("x.array").exists(),
        "the last release, in another process, deletes"
    );
    assert!(!dir.join("x.yaml").exists());
    a.close_stdin();
    b.close_stdin();
    assert!(a.wait().success() && b.wait().success());
}

#[test]
fn a_holder_killed_with_sigkill_is_reaped_by_the_next_open_and_its_deletion_runs() {
    let (_t, dir) = setup(&["x", "y"]);
    let mut a = hold(&dir, &["x", "y"]);
    {
        let c = Container::open(&dir).unwrap();
        assert!(matches!(
            c.remove("x").unwrap(),
            Removal::Deferred { holders: 1 }
        ));
    }
    a.kill9();
    assert!(dir.join("x.array").exists(), "nobody has looked yet");
    let c = Container::open(&dir).unwrap();
    assert!(
        !dir.join("x.array").exists(),
        "open reaped the dead holder and ran the deletion"
    );
    assert_eq!(holders_of(&c, "y"), 0, "its other references are gone too");
    assert!(
        c.holders().unwrap().iter().all(|h| h.alive),
        "no dead session left"
    );
    assert_eq!(c.ls().unwrap(), vec!["y".to_string()]);
}

#[test]
fn a_release_by_another_process_reaps_the_dead_holder_blocking_a_deletion() {
    let (_t, dir) = setup(&["x"]);
    let mut dead = hold(&dir, &["x"]);
    let mut live = hold(&dir, &["x"]);
    let c = Container::open(&dir).unwrap();
    assert!(matches!(
        c.remove("x").unwrap(),
        Removal::Deferred { holders: 2 }
    ));
    drop(c);
    dead.kill9();
    live.send("release");
    live.expect("released");
    assert!(
        !dir.join("x.array").exists(),
        "the releasing process reaped the dead holder and deleted"
    );
    live.close_stdin();
    live.wait();
}

#[test]
fn liveness_does_not_trust_pids_a_reused_pid_is_still_dead() {
    let (_t, dir) = setup(&["x"]);
    let mut a = hold(&dir, &["x"]);
    a.kill9();
    // Pretend the dead session's pid was reused by a live process: ours.
    {
        let db = rusqlite::Connection::open(dir.join(".dafstore/catalog.sqlite")).unwrap();
        let n = db
            .execute("UPDATE sessions SET pid = ?1", [std::process::id()])
            .unwrap();
        assert_eq!(n, 1, "the dead holder's session row");
    }
    let c = Container::open(&dir).unwrap();
    assert_eq!(
        holders_of(&c, "x"),
        0,
        "reaped: its lock is free, whatever its pid"
    );
    assert_eq!(c.remove("x").unwrap(), Removal::Removed);
}

#[test]
fn scratch_arrays_vanish_after_the_last_release_across_processes() {
    let (_t, dir) = setup(&["s"]);
    Container::open(&dir)
        .unwrap()
        .set_scratch("s", true)
        .unwrap();
    let mut a = hold(&dir, &["s"]);
    let mut b = hold(&dir, &["s"]);
    a.send("release");
    a.expect("released");
    assert!(dir.join("s.array").exists());
    b.send("release");
    b.expect("released");
    assert!(!dir.join("s.array").exists());
    for p in [&mut a, &mut b] {
        p.close_stdin();
        p.wait();
    }
}

#[test]
fn exiting_without_releasing_leaks_nothing_normal_exit_panic_or_sigkill() {
    let (_t, dir) = setup(&["n", "p", "k"]);
    let c = Container::open(&dir).unwrap();
    for n in ["n", "p", "k"] {
        c.set_scratch(n, true).unwrap();
    }
    drop(c);
    let mut normal = hold(&dir, &["n"]);
    let mut panics = hold(&dir, &["p"]);
    let mut killed = hold(&dir, &["k"]);
    normal.send("exit"); // std::process::exit: no destructors, no release
    assert!(normal.wait().success());
    panics.send("panic");
    assert!(!panics.wait().success());
    killed.kill9();
    let c = Container::open(&dir).unwrap();
    for n in ["n", "p", "k"] {
        assert_eq!(holders_of(&c, n), 0, "{n}: no reference leaked");
        assert!(
            !dir.join(format!("{n}.array")).exists(),
            "{n}: the scratch deletion ran"
        );
    }
}

#[test]
fn a_forked_child_does_not_keep_its_parents_references_alive() {
    let (_t, dir) = setup(&["x"]);
    let mut p = Proc::spawn(&["fork-hold", dir.to_str().unwrap(), "x"]);
    let line = p.line();
    let child: i32 = line
        .strip_prefix("held ")
        .and_then(|s| s.parse().ok())
        .expect("child pid");
    {
        let c = Container::open(&dir).unwrap();
        assert!(matches!(c.remove("x").unwrap(), Removal::Deferred { .. }));
    }
    p.kill9();
    // The forked child is still alive and shares the parent's open files; its inherited session
    // lock descriptor was pointed at /dev/null, so the parent's session is dead.
    // SAFETY: kill with signal 0 only checks that the process exists.
    assert_eq!(
        unsafe { libc::kill(child, 0) },
        0,
        "the forked child is alive"
    );
    let c = Container::open(&dir).unwrap();
    assert!(
        !dir.join("x.array").exists(),
        "the parent's reference was reaped despite the child"
    );
    assert_eq!(holders_of(&c, "x"), 0);
    // SAFETY: plain signal delivery to our grandchild.
    unsafe {
        libc::kill(child, libc::SIGKILL);
    }
}

#[test]
fn a_forked_child_using_inherited_handles_gets_its_own_session_and_references() {
    // The pattern of every fork-based Python pool: a container opened before the fork, used by
    // the children. Each child must hold what it opens under its own session (so the parent can
    // remove what no child holds), and re-take the references its inherited views stand for.
    let (_t, dir) = setup(&["b", "held"]);
    let text = run_helper(&["fork-use", dir.to_str().unwrap()]);
    expect_lines(
        &text,
        &[
            "child own-session true",
            "child recorded-pid true",
            "child holds b,held",
            "child holds-after-drop held",
            "parent remove-b Removed",
            "parent remove-held Deferred { holders: 1 }",
            "parent held-file-while-child-holds true",
            "child held-file-after-release false",
            "parent child-exit 0",
            "parent holders-left 0",
        ],
    );
    assert!(!dir.join("b.array").exists());
    assert!(!dir.join("held.array").exists());
}

#[test]
fn a_writer_created_before_a_fork_is_published_only_by_the_parent() {
    let (_t, dir) = setup(&[]);
    let text = run_helper(&["fork-writer", dir.to_str().unwrap()]);
    assert!(
        text.lines().any(|l| l.starts_with("child publish ")
            && l.contains("created by the parent process before fork()")),
        "{text}"
    );
    expect_lines(&text, &["parent publish ok [7.0, 8.0, 9.0]"]);
}

fn run_helper(args: &[&str]) -> String {
    let out = Command::new(HELPER)
        .args(args)
        .output()
        .expect("run helper");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn expect_lines(text: &str, lines: &[&str]) {
    for want in lines {
        assert!(
            text.lines().any(|l| l == *want),
            "missing {want:?} in:\n{text}"
        );
    }
}

#[test]
fn a_forked_child_keeps_publishing_after_its_parent_closed_the_container_and_nothing_is_lost() {
    // SQLite tracks its POSIX locks per process and file: a new connection in a child must not
    // take the parent's (which the child does not hold) for its own, or the parent's close
    // checkpoints and deletes the log under it and the child's commits are lost.
    let (_t, dir) = setup(&[]);
    let text = run_helper(&["fork-parent-closes", dir.to_str().unwrap()]);
    expect_lines(
        &text,
        &[
            "child names x",
            "child wrote-y",
            "parent child-exit 0",
            "parent sees-y [4.0, 5.0, 6.0]",
        ],
    );
}

#[test]
fn an_inherited_view_of_an_array_removed_before_the_childs_first_use_releases_nothing_of_a_new_one()
{
    let (_t, dir) = setup(&[]);
    let text = run_helper(&["fork-removed-before-use", dir.to_str().unwrap()]);
    expect_lines(
        &text,
        &[
            "parent remove-x Removed",
            "child refs-after-inherited-drop 1",
            "child remove-x Deferred { holders: 1 }",
            "child new-x-file-while-held true",
            "child new-x-file-after-release false",
            "parent child-exit 0",
        ],
    );
}

#[test]
fn an_in_place_writer_inherited_through_fork_keeps_the_checksums_stale_until_the_child_closes_it() {
    let (_t, dir) = setup(&[]);
    let text = run_helper(&["fork-inplace", dir.to_str().unwrap()]);
    expect_lines(
        &text,
        &[
            "parent stale-while-child-writes true",
            "child stale-after-own-close false",
            "parent child-exit 0",
            "parent deep-fsck-problems 0",
            "parent x [42.0, 43.0, 3.0]",
        ],
    );
}

#[test]
fn eight_processes_of_random_traffic_match_an_independent_tally() {
    let names = ["a", "b", "c", "d"];
    let (_t, dir) = setup(&[]);
    let c = Container::open(&dir).unwrap();
    for n in names {
        c.write_dense::<u64>(n, &[4], &[0; 4]).unwrap(); // what the stress processes write
    }
    drop(c);
    let mut procs: Vec<Proc> = (0..8)
        .map(|i| {
            let seed = (i * 7919 + 17).to_string();
            let mut args = vec!["stress", dir.to_str().unwrap(), seed.as_str(), "2000"];
            args.extend_from_slice(&names);
            Proc::spawn(&args)
        })
        .collect();
    // Expected holders per name: the pids of the processes whose own tally says they hold it.
    let mut expected: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let mut total_ops = 0u64;
    for p in &mut procs {
        let pid = p.child.id();
        loop {
            let l = p.line();
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts.as_slice() {
                ["tally", n, _] => {
                    expected.entry(n.to_string()).or_default().insert(pid);
                }
                ["errors", e] => {
                    assert_eq!(*e, "0", "process {pid} saw unexpected errors (see stderr)")
                }
                ["ops", o] => total_ops += o.parse::<u64>().unwrap(),
                ["done"] => break,
                _ => panic!("unexpected helper output {l:?}"),
            }
        }
    }
    // Each process does at least 200 operations (more in its 2 s if the machine allows).
    assert!(
        total_ops >= 1600,
        "the processes did work ({total_ops} ops)"
    );
    eprintln!("stress: {total_ops} operations by 8 processes");
    let c = Container::open(&dir).unwrap();
    let mut actual: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for h in c.holders().unwrap() {
        assert!(h.alive, "no dead holder while all are alive");
        for a in h.arrays {
            actual.entry(a.name).or_default().insert(h.pid.unwrap());
        }
    }
    assert_eq!(
        actual, expected,
        "catalog holders == what each process says it holds"
    );
    for p in &mut procs {
        p.close_stdin();
        assert!(p.wait().success());
    }
    assert!(c
        .holders()
        .unwrap()
        .iter()
        .all(|h| h.this_process || h.arrays.is_empty()));
    // Every array left is live or was deleted once its holders were gone.
    for r in c.info_all().unwrap() {
        assert_eq!(
            r.state,
            dafstore::ArrayState::Live,
            "{}: {:?} after every holder left",
            r.name,
            r.state
        );
    }
}
