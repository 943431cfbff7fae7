//! Reference-count benchmark (run by `bench/refs.sh`, which compares against numpy in the same
//! run). Prints one JSON object on stdout:
//! - `first_open_ns`: median of open + drop cycles of a dense array with no other handle alive,
//!   i.e. the full slow path (reference 0→1 in the catalog, catalog read, open, fstat, mmap; the
//!   drop's munmap and 1→0 release are timed separately as `drop_ns`);
//! - `cached_open_ns`: median re-open while a handle keeps the map alive (no catalog access);
//! - `retain_release_ops_per_s` for 1, 2 and 8 processes hammering retain+release on one array
//!   (each call a catalog transaction: the process's count goes 0→1→0).
//!
//! Usage: `refs_bench DIR ELEMENTS` (makes DIR a container holding `big`, f64 × ELEMENTS), or the
//! internal `refs_bench --worker DIR MILLIS`.

use std::time::{Duration, Instant};

use dafstore::Container;

fn median(mut v: Vec<u128>) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn worker(dir: &str, millis: u64) {
    let c = Container::open(dir).expect("open");
    let end = Instant::now() + Duration::from_millis(millis);
    let mut ops = 0u64;
    while Instant::now() < end {
        c.retain("big").expect("retain");
        c.release("big").expect("release");
        ops += 2;
    }
    println!("{ops}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--worker") {
        worker(&args[2], args[3].parse().expect("millis"));
        return;
    }
    let dir = &args[1];
    let elements: u64 = args[2].parse().expect("elements");
    let c = if std::path::Path::new(dir).join(".dafstore").exists() {
        Container::open(dir).expect("open")
    } else {
        Container::create(dir).expect("create")
    };
    if c.info("big").is_err() {
        let mut w = c.create_dense::<f64>("big", &[elements]).expect("create");
        for (i, v) in w.as_mut_slice::<f64>().expect("f64").iter_mut().enumerate() {
            *v = i as f64;
        }
        w.publish().expect("publish");
    }

    let (mut open, mut drop_t) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let t = Instant::now();
        let a = c.open_dense::<f64>("big").expect("open");
        open.push(t.elapsed().as_nanos());
        std::hint::black_box(a.as_slice().len());
        let t = Instant::now();
        drop(a);
        drop_t.push(t.elapsed().as_nanos());
    }
    let keep = c.open_dense::<f64>("big").expect("open");
    let mut cached = Vec::new();
    for _ in 0..10_000 {
        let t = Instant::now();
        let a = c.open_dense::<f64>("big").expect("open");
        cached.push(t.elapsed().as_nanos());
        std::hint::black_box(a.as_slice().len());
    }
    drop(keep);

    let exe = std::env::current_exe().expect("exe");
    let mut throughput = serde_json::Map::new();
    for procs in [1usize, 2, 8] {
        let children: Vec<_> = (0..procs)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args(["--worker", dir, "2000"])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn worker")
            })
            .collect();
        let total: u64 = children
            .into_iter()
            .map(|ch| {
                let out = ch.wait_with_output().expect("worker");
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse::<u64>()
                    .expect("ops")
            })
            .sum();
        throughput.insert(procs.to_string(), serde_json::json!(total as f64 / 2.0));
    }
    let out = serde_json::json!({
        "bytes": elements * 8,
        "first_open_ns": median(open),
        "drop_ns": median(drop_t),
        "cached_open_ns": median(cached),
        "retain_release_ops_per_s": throughput,
    });
    println!("{out}");
}
