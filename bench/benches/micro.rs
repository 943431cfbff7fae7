//! In-process microbenchmarks (criterion), on a container in /dev/shm (or `$DAFSTORE_BENCH_DIR`):
//! cached re-open, first open (reference 0→1 + map, then drop: 1→0 + unmap), retain + release,
//! the raw floor (open + fstat + mmap + munmap with memmap2), and the same sum over a map and over
//! a `Vec` copy. `bench/run.sh` runs them with short settings; alone:
//! `cargo bench -p dafstore-bench --bench micro -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dafstore::Container;
use dafstore_bench::sum_f64;

/// 64 MiB of f64: larger than the last-level cache, so the scans measure memory, not cache.
const ELEMENTS: u64 = 8 << 20;

fn setup() -> (tempfile::TempDir, Container) {
    let base = std::env::var("DAFSTORE_BENCH_DIR").unwrap_or_else(|_| "/dev/shm".into());
    let dir = tempfile::Builder::new()
        .prefix("dafstore-criterion-")
        .tempdir_in(base)
        .expect("temp dir");
    let c = Container::create(dir.path().join("c")).expect("create");
    let mut w = c.create_dense::<f64>("x", &[ELEMENTS]).expect("create x");
    for (i, v) in w.as_mut_slice::<f64>().expect("f64").iter_mut().enumerate() {
        *v = i as f64;
    }
    w.publish().expect("publish");
    (dir, c)
}

fn open(c: &mut Criterion) {
    let (_dir, con) = setup();
    let mut g = c.benchmark_group("open");
    g.bench_function("first_open_and_drop", |b| {
        b.iter(|| {
            let a = con.open_dense::<f64>("x").expect("open");
            black_box(a.as_slice().len());
        })
    });
    let keep = con.open_dense::<f64>("x").expect("open");
    g.bench_function("cached_reopen", |b| {
        b.iter(|| black_box(con.open_dense::<f64>("x").expect("open")))
    });
    drop(keep);
    g.bench_function("retain_release", |b| {
        b.iter(|| {
            con.retain("x").expect("retain");
            con.release("x").expect("release");
        })
    });
    let path = con.root().join("x.array");
    g.bench_function("raw_open_fstat_mmap_munmap", |b| {
        b.iter(|| {
            let f = std::fs::File::open(&path).expect("open");
            black_box(f.metadata().expect("fstat").len());
            // SAFETY: the benchmark's own file; nothing truncates it while mapped.
            let m = unsafe { memmap2::Mmap::map(&f) }.expect("mmap");
            black_box(m.len());
        })
    });
    g.finish();
}

fn scan(c: &mut Criterion) {
    let (_dir, con) = setup();
    let a = con.open_dense::<f64>("x").expect("open");
    let v = a.as_slice().to_vec();
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(ELEMENTS * 8));
    g.bench_function("sum_map_64MiB", |b| {
        b.iter(|| black_box(sum_f64(black_box(a.as_slice()))))
    });
    g.bench_function("sum_vec_64MiB", |b| {
        b.iter(|| black_box(sum_f64(black_box(&v))))
    });
    g.finish();
}

criterion_group!(benches, open, scan);
criterion_main!(benches);
