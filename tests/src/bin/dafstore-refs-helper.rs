//! A child process for the multi-process reference-count tests. Commands:
//!
//! - `hold DIR NAME...`: holds the arrays, prints `held`, then obeys stdin lines:
//!   `release` (drop the references, print `released`), `exit` (exit now without releasing and
//!   without running destructors), `panic` (panic in main), EOF (return from main normally).
//! - `fork-hold DIR NAME`: holds NAME, forks a child that sleeps (never execs), prints
//!   `held CHILD_PID`, then sleeps until killed.
//! - `fork-use DIR`: opens `held` (a view kept across the fork) and forks; the child uses the
//!   inherited handle (opens `b`, lists holders, drops views) and the parent removes `b` and
//!   `held` in between; both print `child KEY VALUE` / `parent KEY VALUE` lines for the test.
//! - `fork-writer DIR`: creates a writer of `w`, forks; the child tries to publish it (prints
//!   `child publish ERROR`), then the parent publishes it (prints `parent publish ok`).
//! - `fork-parent-closes DIR`: the child uses the inherited handle, then the parent closes the
//!   container (the last connection: SQLite checkpoints and deletes the log) while the child goes
//!   on and publishes `y`; the parent then opens again and prints `parent sees-y VALUES`.
//! - `fork-removed-before-use DIR`: the parent holds a view of `x`, removes it (deferred), forks;
//!   the parent releases (x is deleted) before the child's first use; the child writes and opens
//!   a new `x`, drops the inherited view, and removes `x` (prints `child remove-x ...`).
//! - `fork-inplace DIR`: the parent opens `x` for in-place writing and forks; the child writes
//!   through the inherited writer; the parent closes its writer, then the child closes its own;
//!   both print whether the checksums are stale, and the parent runs a deep fsck at the end.
//! - `stress DIR SEED MILLIS NAME...`: random retain/release/remove/open/write for MILLIS ms
//!   (and at least 200 operations),
//!   then prints `tally NAME COUNT` for every name it still holds, `errors N` (unexpected errors,
//!   e.g. SQLITE_BUSY), `done`, and waits for stdin EOF before releasing everything.

use std::collections::HashMap;
use std::io::BufRead;
use std::time::{Duration, Instant};

use dafstore::{Container, OpenError, Ref, WriteError};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cmd = args.get(1).map(String::as_str).unwrap_or("");
    let dir = args.get(2).cloned().unwrap_or_default();
    match cmd {
        "hold" => hold(&dir, &args[3..]),
        "fork-hold" => fork_hold(&dir, &args[3]),
        "fork-use" => fork_use(&dir),
        "fork-writer" => fork_writer(&dir),
        "fork-parent-closes" => fork_parent_closes(&dir),
        "fork-removed-before-use" => fork_removed_before_use(&dir),
        "fork-inplace" => fork_inplace(&dir),
        "stress" => stress(&dir, &args[3], &args[4], &args[5..]),
        _ => {
            eprintln!("usage: see the module doc");
            std::process::exit(2);
        }
    }
}

fn hold(dir: &str, names: &[String]) {
    let c = Container::open(dir).expect("open");
    let mut refs: Vec<Ref> = names.iter().map(|n| c.hold(n).expect("hold")).collect();
    println!("held");
    for line in std::io::stdin().lock().lines() {
        match line.expect("stdin").trim() {
            "release" => {
                for r in refs.drain(..) {
                    r.release().expect("release");
                }
                println!("released");
            }
            "exit" => std::process::exit(0),
            "panic" => panic!("asked to panic while holding references"),
            _ => {}
        }
    }
}

fn fork_hold(dir: &str, name: &str) {
    let c = Container::open(dir).expect("open");
    let _r = c.hold(name).expect("hold");
    // SAFETY: this test helper is single-threaded here; the child only sleeps (async-signal-safe
    // until it returns from fork, then plain Rust in a single-threaded process).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        std::thread::sleep(Duration::from_secs(60));
        std::process::exit(0);
    }
    println!("held {pid}");
    std::thread::sleep(Duration::from_secs(60));
}

fn held_by_this_process(c: &Container) -> (String, Option<u32>, String) {
    let me = c.holders().expect("holders");
    let me = me
        .into_iter()
        .find(|h| h.this_process)
        .expect("own session");
    let names: Vec<String> = me.arrays.iter().map(|a| a.name.clone()).collect();
    (me.session, me.pid, names.join(","))
}

fn wait_byte(fd: i32) {
    let mut b = [0u8; 1];
    // SAFETY: reads one byte into a live local buffer from a pipe we own.
    let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) };
    assert_eq!(n, 1, "pipe read");
}

fn send_byte(fd: i32) {
    // SAFETY: writes one byte from a static buffer to a pipe we own.
    let n = unsafe { libc::write(fd, b"1".as_ptr().cast(), 1) };
    assert_eq!(n, 1, "pipe write");
}

fn fork_use(dir: &str) {
    let c = Container::open(dir).expect("open");
    let held = c.open_dense::<f64>("held").expect("open held");
    let (parent_session, _, _) = held_by_this_process(&c);
    let (to_parent, to_child) = pipes();
    // SAFETY: single-threaded here; both sides go on as plain single-threaded Rust processes.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The child: everything below goes through handles inherited from the parent.
        let b = c.open_dense::<f64>("b").expect("child: open b");
        assert_eq!(&*b, &[1.0, 2.0, 3.0]);
        let (session, recorded_pid, names) = held_by_this_process(&c);
        println!("child own-session {}", session != parent_session);
        println!(
            "child recorded-pid {}",
            recorded_pid == Some(std::process::id())
        );
        println!("child holds {names}");
        drop(b);
        println!("child holds-after-drop {}", held_by_this_process(&c).2);
        send_byte(to_parent[1]);
        wait_byte(to_child[0]);
        // The parent has removed `held` (deferred: this child holds it). The last release runs
        // the deletion here.
        drop(held);
        println!(
            "child held-file-after-release {}",
            std::path::Path::new(dir).join("held.array").exists()
        );
        drop(c);
        std::process::exit(0);
    }
    wait_byte(to_parent[0]);
    println!("parent remove-b {:?}", c.remove("b").expect("remove b"));
    drop(held);
    println!(
        "parent remove-held {:?}",
        c.remove("held").expect("remove held")
    );
    println!(
        "parent held-file-while-child-holds {}",
        std::path::Path::new(dir).join("held.array").exists()
    );
    send_byte(to_child[1]);
    println!("parent child-exit {}", wait_child(pid));
    let holding: Vec<String> = c
        .holders()
        .expect("holders")
        .into_iter()
        .filter(|h| !h.arrays.is_empty())
        .map(|h| h.session)
        .collect();
    println!("parent holders-left {}", holding.len());
}

fn fork_writer(dir: &str) {
    let c = Container::open(dir).expect("open");
    let mut w = c.create_dense::<f64>("w", &[3]).expect("create");
    w.as_mut_slice::<f64>()
        .expect("typed")
        .copy_from_slice(&[7.0, 8.0, 9.0]);
    // SAFETY: single-threaded here; both sides go on as plain single-threaded Rust processes.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        match w.publish() {
            Ok(()) => println!("child publish ok"),
            Err(e) => println!("child publish {e}"),
        }
        std::process::exit(0);
    }
    wait_child(pid);
    w.publish().expect("parent publish");
    let v = c.open_dense::<f64>("w").expect("open w");
    println!("parent publish ok {:?}", &*v);
}

fn pipes() -> ([i32; 2], [i32; 2]) {
    let (mut a, mut b) = ([0i32; 2], [0i32; 2]);
    // SAFETY: pipe() fills the two-element arrays we pass.
    unsafe {
        assert_eq!(libc::pipe(a.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(b.as_mut_ptr()), 0);
    }
    (a, b)
}

fn wait_child(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a live local.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    status
}

fn fork_parent_closes(dir: &str) {
    let c = Container::open(dir).expect("open");
    c.write_dense::<f64>("x", &[2], &[1.0, 2.0])
        .expect("write x");
    let (to_parent, to_child) = pipes();
    // SAFETY: single-threaded here; both sides go on as plain single-threaded Rust processes.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let names = c.ls().expect("child: first use");
        println!("child names {}", names.join(","));
        send_byte(to_parent[1]);
        wait_byte(to_child[0]); // the parent has closed the container
        c.write_dense::<f64>("y", &[3], &[4.0, 5.0, 6.0])
            .expect("child: write y");
        println!("child wrote-y");
        drop(c);
        std::process::exit(0);
    }
    wait_byte(to_parent[0]);
    drop(c); // the last handle of the parent: its session ends, its connection closes
    send_byte(to_child[1]);
    println!("parent child-exit {}", wait_child(pid));
    let c = Container::open(dir).expect("reopen");
    match c.open_dense::<f64>("y") {
        Ok(y) => println!("parent sees-y {:?}", &*y),
        Err(e) => println!("parent sees-y {e}"),
    }
}

fn fork_removed_before_use(dir: &str) {
    let c = Container::open(dir).expect("open");
    c.write_dense::<f64>("x", &[2], &[1.0, 2.0])
        .expect("write x");
    let v = c.open_dense::<f64>("x").expect("open x");
    let (to_parent, to_child) = pipes();
    // SAFETY: single-threaded here; both sides go on as plain single-threaded Rust processes.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        wait_byte(to_child[0]); // the parent released x: deleted before this child's first use
        c.write_dense::<f64>("x", &[2], &[3.0, 4.0])
            .expect("child: write new x");
        let v2 = c.open_dense::<f64>("x").expect("child: open new x");
        drop(v); // the inherited view of the deleted x: not held here, releases nothing
        println!("child refs-after-inherited-drop {}", c.local_refs("x"));
        println!("child remove-x {:?}", c.remove("x").expect("child: remove"));
        println!(
            "child new-x-file-while-held {}",
            std::path::Path::new(dir).join("x.array").exists()
        );
        drop(v2);
        println!(
            "child new-x-file-after-release {}",
            std::path::Path::new(dir).join("x.array").exists()
        );
        drop(c);
        std::process::exit(0);
    }
    drop(v);
    println!("parent remove-x {:?}", c.remove("x").expect("remove x"));
    send_byte(to_child[1]);
    let _ = to_parent;
    println!("parent child-exit {}", wait_child(pid));
}

fn fork_inplace(dir: &str) {
    let c = Container::open(dir).expect("open");
    c.write_dense::<f64>("x", &[3], &[1.0, 2.0, 3.0])
        .expect("write x");
    let mut w = c.open_dense_mut::<f64>("x").expect("open x in place");
    let (to_parent, to_child) = pipes();
    // SAFETY: single-threaded here; both sides go on as plain single-threaded Rust processes.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        w.as_mut_slice()[0] = 42.0; // registers this process as a writer of x first
        send_byte(to_parent[1]);
        wait_byte(to_child[0]); // the parent closed its writer
        w.as_mut_slice()[1] = 43.0;
        w.close().expect("child: close");
        let rec = c.info("x").expect("child: record");
        println!("child stale-after-own-close {}", rec.checksum_stale);
        drop(c);
        std::process::exit(0);
    }
    wait_byte(to_parent[0]);
    w.close().expect("parent: close");
    let rec = c.info("x").expect("record");
    println!("parent stale-while-child-writes {}", rec.checksum_stale);
    send_byte(to_child[1]);
    println!("parent child-exit {}", wait_child(pid));
    drop(c);
    let report = Container::fsck_dir(
        std::path::Path::new(dir),
        dafstore::FsckOptions {
            deep: true,
            repair: false,
        },
        &mut |_, _| {},
    )
    .expect("fsck");
    println!("parent deep-fsck-problems {}", report.problems.len());
    let c = Container::open(dir).expect("reopen");
    let x = c.open_dense::<f64>("x").expect("open x");
    println!("parent x {:?}", &*x);
}

/// xorshift64*: a deterministic generator so a failing run can be replayed from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn stress(dir: &str, seed: &str, millis: &str, names: &[String]) {
    let c = Container::open(dir).expect("open");
    let mut rng = Rng(seed.parse::<u64>().expect("seed") | 1);
    let end = Instant::now() + Duration::from_millis(millis.parse().expect("millis"));
    let mut held: HashMap<String, u64> = HashMap::new();
    let mut errors = 0u64;
    let mut ops = 0u64;
    // At least MIN_OPS operations whatever the machine's load (the test asserts that work was
    // done, not how fast), and otherwise for MILLIS ms.
    const MIN_OPS: u64 = 200;
    while ops < MIN_OPS || Instant::now() < end {
        let name = &names[(rng.next() % names.len() as u64) as usize];
        ops += 1;
        match rng.next() % 10 {
            0..=3 => match c.retain(name) {
                Ok(()) => *held.entry(name.clone()).or_default() += 1,
                Err(OpenError::NotFound { .. }) => {}
                Err(e) => {
                    eprintln!("retain {name}: {e}");
                    errors += 1;
                }
            },
            4..=6 => {
                if held.get(name).copied().unwrap_or(0) > 0 {
                    match c.release(name) {
                        Ok(()) => *held.entry(name.clone()).or_default() -= 1,
                        Err(e) => {
                            eprintln!("release {name}: {e}");
                            errors += 1;
                        }
                    }
                }
            }
            7 => match c.remove(name) {
                Ok(_) | Err(WriteError::NotFound { .. }) => {}
                Err(e) => {
                    eprintln!("remove {name}: {e}");
                    errors += 1;
                }
            },
            8 => match c.open_dense::<u64>(name) {
                Ok(a) => {
                    if a.len() != 4 {
                        eprintln!("open {name}: wrong length {}", a.len());
                        errors += 1;
                    }
                }
                Err(OpenError::NotFound { .. }) => {}
                Err(e) => {
                    eprintln!("open {name}: {e}");
                    errors += 1;
                }
            },
            _ => {
                if let Err(e) = c.write_dense::<u64>(name, &[4], &[ops; 4]) {
                    eprintln!("write {name}: {e}");
                    errors += 1;
                }
            }
        }
    }
    for (n, k) in &held {
        if *k > 0 {
            println!("tally {n} {k}");
        }
    }
    println!("errors {errors}");
    println!("ops {ops}");
    println!("done");
    let mut sink = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut sink)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
    for (n, k) in held {
        for _ in 0..k {
            c.release(&n).expect("final release");
        }
    }
}
