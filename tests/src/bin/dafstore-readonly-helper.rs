//! Helper process for `tests/tests/hardening_catalog.rs`: a read-only reader of a container, run
//! as another user (`setpriv`) to check what a process without write access sees.
//!
//! `watch DIR`: opens DIR read-only, prints one state line, then one more for every line read on
//! stdin, until end of input. A state line is `names=N1,N2 a=DTYPE:V1,V2` (the live names, then
//! the dtype and values of the dense array `a`, or `a=none`), or `error=MESSAGE`. Exit status 2 if
//! the container cannot be opened.
//!
//! `open-rw DIR`: opens DIR read-write; prints `ok`, or the error on stderr (exit status 2).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use dafstore::{Container, DType};

fn state(c: &Container) -> String {
    let names = match c.ls() {
        Ok(n) => n.join(","),
        Err(e) => return format!("error={e}"),
    };
    let a = match c.open_dense_untyped("a") {
        Err(_) => "none".to_string(),
        Ok(a) => {
            let values: Result<Vec<String>, _> = match a.dtype() {
                DType::Float64 => a
                    .as_slice::<f64>()
                    .map(|v| v.iter().map(f64::to_string).collect()),
                DType::Int64 => a
                    .as_slice::<i64>()
                    .map(|v| v.iter().map(i64::to_string).collect()),
                _ => Ok(vec!["?".into()]),
            };
            match values {
                Ok(v) => format!("{}:{}", a.dtype().name(), v.join(",")),
                Err(e) => return format!("error={e}"),
            }
        }
    };
    format!("names={names} a={a}")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cmd, dir] = args.as_slice() else {
        eprintln!("usage: dafstore-readonly-helper watch DIR");
        return ExitCode::from(2);
    };
    if cmd == "open-rw" {
        // A read-write open: prints `ok`, or the error on stderr with exit status 2.
        return match Container::open(dir) {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    if cmd != "watch" {
        eprintln!("unknown command {cmd:?}");
        return ExitCode::from(2);
    }
    let c = match Container::options().read_only(true).open(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", state(&c));
    let _ = out.flush();
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
        let _ = writeln!(out, "{}", state(&c));
        let _ = out.flush();
    }
    ExitCode::SUCCESS
}
