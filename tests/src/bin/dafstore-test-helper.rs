//! Helper process for the multi-process integration tests (`tests/tests/multiprocess.rs`): each
//! subcommand does one thing to a container from a separate process, so the tests can check what
//! another process sees. Errors go to stderr with exit status 2.
//!
//! Subcommands:
//! - `write-dense DIR NAME v1,v2,...` — writes a 1-d float64 array (an empty list is shape `[0]`).
//! - `read-dense DIR NAME` — prints the float64 values of NAME, comma separated.
//! - `write-sample DIR` — writes the fixed set of arrays checked by `multiprocess.rs`.
//! - `write-many DIR ID COUNT` — writes COUNT arrays `w<ID>/a<i>` = `[ID, i, ID * 1000 + i]`.
//! - `create-and-hang DIR NAME LEN` — creates a float64 DenseWriter of LEN elements, fills it,
//!   does not publish, prints `ready`, then sleeps until killed.
//! - `load-loop DIR LOG ID ROUNDS NAMES` — ROUNDS times: `open_or_load` of one of NAMES (`n0` …)
//!   picked at random, whose loader appends `start <name> <ns>` and `end <name> <ns>` lines
//!   (CLOCK_REALTIME) to LOG and writes `[k, k, k]` for name `nk` after a short pause; checks the
//!   values it opened; now and then removes the name again, so loads repeat.
//! - `load-hang DIR NAME` — takes NAME's load lock, prints `ready`, sleeps until killed.
//! - `cache-churn DIR ID ROUNDS NAMES` — ROUNDS times: `open_or_load` of one of NAMES (`c0` …)
//!   picked at random, whose loader writes `c<k>` as `(k % 4 + 1) * 32 KiB` bytes of value
//!   `k` (cached, the load's default); checks the bytes it opened, holds them a few ms. A write
//!   that does not fit (`WriteError::Capacity`) is counted, not an error. Prints
//!   `loads=<n> capacity_errors=<n>`.
//! - `fill-staged DIR TOKEN START END` — opens the staged float64 array of TOKEN
//!   (`Container::open_staged`) and sets elements START..END to their index.
//! - `stage-and-hang DIR NAME LEN` — creates a float64 DenseWriter of LEN elements, prints its
//!   token, then sleeps until killed.
// The `load-loop` loader returns `dafstore::Result` (a 128-byte error, as a user's would).
#![allow(clippy::result_large_err)]

use std::io::Write;
use std::process::ExitCode;

use dafstore::{Container, Layout};

fn parse_values(csv: &str) -> Result<Vec<f64>, String> {
    if csv.is_empty() {
        return Ok(Vec::new());
    }
    csv.split(',')
        .map(|v| {
            v.parse::<f64>()
                .map_err(|e| format!("bad value {v:?}: {e}"))
        })
        .collect()
}

fn run(args: &[String]) -> Result<(), String> {
    let s = |e: &dyn std::fmt::Display| e.to_string();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["create-or-open", dir, rounds] => {
            // Opens (making it if there is none) and closes the container `rounds` times, as
            // every worker of a pool does at start: no attempt may fail with "locked".
            let rounds: u32 = rounds.parse().map_err(|e| s(&e))?;
            for _ in 0..rounds {
                let c = match Container::create(dir) {
                    Ok(c) => c,
                    Err(dafstore::ContainerError::AlreadyExists { .. }) => {
                        Container::open(dir).map_err(|e| s(&e))?
                    }
                    Err(e) => return Err(s(&e)),
                };
                drop(c);
            }
            Ok(())
        }
        ["write-dense", dir, name, csv] => {
            let values = parse_values(csv)?;
            let c = Container::open(dir).map_err(|e| s(&e))?;
            c.write_dense::<f64>(name, &[values.len() as u64], &values)
                .map_err(|e| s(&e))
        }
        ["remove", dir, name] => {
            let c = Container::open(dir).map_err(|e| s(&e))?;
            c.remove(name).map(|_| ()).map_err(|e| s(&e))
        }
        ["set-lifecycle", dir, name, lifecycle] => {
            let c = Container::open(dir).map_err(|e| s(&e))?;
            let l = match *lifecycle {
                "scratch" => dafstore::Lifecycle::Scratch,
                "cached" => dafstore::Lifecycle::Cached,
                _ => dafstore::Lifecycle::Persistent,
            };
            c.set_lifecycle(name, l).map_err(|e| s(&e))
        }
        ["read-dense", dir, name] => {
            let c = Container::options()
                .read_only(true)
                .open(dir)
                .map_err(|e| s(&e))?;
            let a = c.open_dense::<f64>(name).map_err(|e| s(&e))?;
            let text: Vec<String> = a.iter().map(f64::to_string).collect();
            println!("{}", text.join(","));
            Ok(())
        }
        ["write-sample", dir] => {
            let c = Container::open(dir).map_err(|e| s(&e))?;
            let d: Vec<f64> = (0..6).map(|i| f64::from(i) * 0.5).collect();
            c.write_dense::<f64>("dense/f64", &[2, 3], &d)
                .map_err(|e| s(&e))?;
            c.write_dense::<i32>("dense/i32", &[4], &[-2, -1, 0, i32::MAX])
                .map_err(|e| s(&e))?;
            c.write_dense_bool("flags", &[3], &[true, false, true])
                .map_err(|e| s(&e))?;
            c.write_sparse::<f32, i32, i64>(
                "sparse/csr",
                Layout::Rows,
                [3, 4],
                &[1.0, 2.0, 3.0],
                &[1, 3, 0],
                &[0, 2, 2, 3],
            )
            .map_err(|e| s(&e))?;
            c.write_sparse::<u16, u64, u32>(
                "sparse/csc",
                Layout::Columns,
                [2, 3],
                &[7, 8],
                &[1, 0],
                &[0, 1, 1, 2],
            )
            .map_err(|e| s(&e))
        }
        ["write-many", dir, id, count] => {
            let id: u32 = id.parse().map_err(|e| s(&e))?;
            let count: u32 = count.parse().map_err(|e| s(&e))?;
            let c = Container::open(dir).map_err(|e| s(&e))?;
            for i in 0..count {
                let values = [f64::from(id), f64::from(i), f64::from(id * 1000 + i)];
                c.write_dense::<f64>(&format!("w{id}/a{i}"), &[3], &values)
                    .map_err(|e| format!("write w{id}/a{i}: {e}"))?;
            }
            Ok(())
        }
        ["create-and-hang", dir, name, len] => {
            let len: u64 = len.parse().map_err(|e| s(&e))?;
            let c = Container::open(dir).map_err(|e| s(&e))?;
            let mut w = c.create_dense::<f64>(name, &[len]).map_err(|e| s(&e))?;
            for (i, v) in w
                .as_mut_slice::<f64>()
                .map_err(|e| s(&e))?
                .iter_mut()
                .enumerate()
            {
                *v = i as f64 + 1.0;
            }
            println!("ready");
            std::io::stdout().flush().map_err(|e| s(&e))?;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        ["load-loop", dir, log, id, rounds, names] => {
            let id: u64 = id.parse().map_err(|e| s(&e))?;
            let rounds: u32 = rounds.parse().map_err(|e| s(&e))?;
            let names: u64 = names.parse().map_err(|e| s(&e))?;
            let c = Container::open(dir).map_err(|e| s(&e))?;
            let mut log = std::fs::OpenOptions::new()
                .append(true)
                .open(log)
                .map_err(|e| s(&e))?;
            let now = || {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            };
            let mut rng = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for _ in 0..rounds {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let k = rng % names;
                let name = format!("n{k}");
                let a = c.open_or_load(&name, |c: &Container, n: &str| -> dafstore::Result<()> {
                    // One write(2) per line: O_APPEND keeps concurrent lines whole.
                    log.write_all(format!("start {n} {}\n", now()).as_bytes())
                        .map_err(|e| {
                            dafstore::Error::Io(dafstore::IoError::new("log", "write", e))
                        })?;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    let v = k as f64;
                    c.write_dense::<f64>(n, &[3], &[v, v, v])?;
                    log.write_all(format!("end {n} {}\n", now()).as_bytes())
                        .map_err(|e| {
                            dafstore::Error::Io(dafstore::IoError::new("log", "write", e))
                        })?;
                    Ok(())
                });
                let a = match a {
                    Ok(a) => a,
                    // Another process removed it between our loader's publish and our open.
                    Err(dafstore::Error::Load(dafstore::LoadError::NotPublished { .. })) => {
                        continue
                    }
                    Err(e) => return Err(format!("open_or_load {name}: {e}")),
                };
                let dafstore::Array::Dense(d) = a else {
                    return Err(format!("{name} is not dense"));
                };
                let values = d.as_slice::<f64>().map_err(|e| s(&e))?;
                if values != [k as f64; 3] {
                    return Err(format!("{name} holds {values:?}"));
                }
                drop(d);
                if rng.is_multiple_of(4) {
                    // Another process may have removed it first.
                    match c.remove(&name) {
                        Ok(_) | Err(dafstore::WriteError::NotFound { .. }) => {}
                        Err(e) => return Err(format!("remove {name}: {e}")),
                    }
                }
            }
            Ok(())
        }
        ["cache-churn", dir, id, rounds, names] => {
            let id: u64 = id.parse().map_err(|e| s(&e))?;
            let rounds: u32 = rounds.parse().map_err(|e| s(&e))?;
            let names: u64 = names.parse().map_err(|e| s(&e))?;
            let c = Container::open(dir).map_err(|e| s(&e))?;
            let mut rng = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let (mut loads, mut full) = (0u64, 0u64);
            for _ in 0..rounds {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let k = rng % names;
                let name = format!("c{k}");
                let len = (k % 4 + 1) * 32 * 1024;
                let a = c.open_or_load(&name, |c: &Container, n: &str| -> dafstore::Result<()> {
                    loads += 1;
                    let bytes = vec![k as u8; len as usize];
                    c.write_dense_bytes(n, dafstore::DType::UInt8, &[len], &bytes)?;
                    Ok(())
                });
                let a = match a {
                    Ok(a) => a,
                    Err(dafstore::Error::Write(dafstore::WriteError::Capacity { .. })) => {
                        full += 1;
                        continue;
                    }
                    Err(e) => return Err(format!("open_or_load {name}: {e}")),
                };
                let dafstore::Array::Dense(d) = a else {
                    return Err(format!("{name} is not dense"));
                };
                let bytes = d.as_bytes();
                if bytes.len() as u64 != len || bytes.iter().any(|&b| b != k as u8) {
                    return Err(format!("{name} holds wrong bytes"));
                }
                std::thread::sleep(std::time::Duration::from_micros(rng % 3000));
                drop(d);
            }
            println!("loads={loads} capacity_errors={full}");
            Ok(())
        }
        ["fill-staged", dir, token, start, end] => {
            let start: usize = start.parse().map_err(|e| s(&e))?;
            let end: usize = end.parse().map_err(|e| s(&e))?;
            let c = Container::open(dir).map_err(|e| s(&e))?;
            let mut fill = c.open_staged(token).map_err(|e| s(&e))?;
            let v = fill.as_mut_slice::<f64>().map_err(|e| s(&e))?;
            for (i, x) in v[start..end].iter_mut().enumerate() {
                *x = (start + i) as f64;
            }
            Ok(())
        }
        ["stage-and-hang", dir, name, len] => {
            let len: u64 = len.parse().map_err(|e| s(&e))?;
            let c = Container::open(dir).map_err(|e| s(&e))?;
            let w = c.create_dense::<f64>(name, &[len]).map_err(|e| s(&e))?;
            println!("{}", w.token());
            std::io::stdout().flush().map_err(|e| s(&e))?;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        ["load-hang", dir, name] => {
            let c = Container::open(dir).map_err(|e| s(&e))?;
            let _lock = c.lock_load(name, None).map_err(|e| s(&e))?;
            println!("ready");
            std::io::stdout().flush().map_err(|e| s(&e))?;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        _ => Err(format!(
            "usage: dafstore-test-helper COMMAND ARGS... (got {args:?})"
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dafstore-test-helper: {e}");
            ExitCode::from(2)
        }
    }
}
