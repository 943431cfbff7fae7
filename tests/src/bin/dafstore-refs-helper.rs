//! A child process for the multi-process reference-count tests. Commands:
//!
//! - `hold DIR NAME...`: holds the arrays, prints `held`, then obeys stdin lines:
//!   `release` (drop the references, print `released`), `exit` (exit now without releasing and
//!   without running destructors), `panic` (panic in main), EOF (return from main normally).
//! - `fork-hold DIR NAME`: holds NAME, forks a child that sleeps (never execs), prints
//!   `held CHILD_PID`, then sleeps until killed.
//! - `stress DIR SEED MILLIS NAME...`: random retain/release/remove/open/write for MILLIS ms,
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
    while Instant::now() < end {
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
