//! `dafctl demo`: the end-to-end tour. Writes a dense array through a map and a sparse matrix
//! from slices, reopens the container as a fresh handle would, checks every value, and shows the
//! files, the checksums and the one-map-per-file cache. Each step prints one line.

use std::error::Error;
use std::path::{Path, PathBuf};

use dafstore::{cache_stats, Container, Layout};

use super::common::out;

const ROWS: u64 = 2_000;
const COLS: u64 = 500;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    match dir {
        Some(dir) => tour(&dir),
        None => {
            let base = if Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm")
            } else {
                std::env::temp_dir()
            };
            let tmp = tempfile::Builder::new()
                .prefix("dafstore-demo-")
                .tempdir_in(&base)?;
            let r = tour(&tmp.path().join("container"));
            out!(
                "cleanup: removed {} (pass a DIR to keep the container)",
                tmp.path().display()
            );
            r
        }
    }
}

fn dense_value(r: u64, c: u64) -> f32 {
    (r * COLS + c) as f32 * 0.5
}

/// A deterministic CSR pattern: row r holds columns (r * 7 + k * 37) % COLS for k < r % 6,
/// sorted, so there are empty rows (every r % 6 == 0).
fn sparse_rows() -> (Vec<f64>, Vec<i32>, Vec<i64>) {
    let (mut data, mut indices, mut indptr) = (Vec::new(), Vec::new(), vec![0i64]);
    for r in 0..ROWS {
        let mut cols: Vec<u64> = (0..r % 6).map(|k| (r * 7 + k * 37) % COLS).collect();
        cols.sort_unstable();
        cols.dedup();
        for c in cols {
            indices.push(c as i32);
            data.push((r as f64) + (c as f64) / 1000.0);
        }
        indptr.push(indices.len() as i64);
    }
    (data, indices, indptr)
}

fn tour(dir: &Path) -> Result<()> {
    let c = if dir.join(dafstore::RESERVED_DIR).exists() {
        Container::open(dir)?
    } else {
        Container::create(dir)?
    };
    out!(
        "container: {} (catalog, locks and staging in {}/)",
        c.root().display(),
        dafstore::RESERVED_DIR
    );

    let mut w = c.create_dense::<f32>("cells/umis", &[ROWS, COLS])?;
    for (i, v) in w.as_mut_slice::<f32>()?.iter_mut().enumerate() {
        let i = i as u64;
        *v = dense_value(i / COLS, i % COLS);
    }
    w.publish()?;
    out!("dense: wrote cells/umis, float32 {ROWS}x{COLS}, space reserved at create, filled through a map, published atomically");

    let (data, indices, indptr) = sparse_rows();
    c.write_sparse::<f64, i32, i64>(
        "cells/genes",
        Layout::Rows,
        [ROWS, COLS],
        &data,
        &indices,
        &indptr,
    )?;
    out!("sparse: wrote cells/genes, CSR {ROWS}x{COLS} float64 with nnz={} (invariants validated before publishing)", data.len());
    drop(c);

    let c = Container::open(dir)?;
    let before = cache_stats();
    let umis = c.open_dense::<f32>("cells/umis")?;
    let mismatches = (0..ROWS * COLS)
        .filter(|&i| umis[i as usize] != dense_value(i / COLS, i % COLS))
        .count();
    if mismatches != 0 {
        return Err(format!("cells/umis: {mismatches} values differ after reopen").into());
    }
    out!(
        "reopen: cells/umis shape {:?}, all {} values match, sum = {}",
        umis.shape(),
        ROWS * COLS,
        umis.iter().map(|&v| f64::from(v)).sum::<f64>()
    );

    let genes = c.open_sparse("cells/genes")?;
    genes.validate()?;
    if genes.data::<f64>()? != data.as_slice() {
        return Err("cells/genes: data differs after reopen".into());
    }
    let row5 = genes.major_range(5).ok_or("row 5 out of range")?;
    out!(
        "reopen: cells/genes shape {:?}, nnz {}, layout {}, row 5 holds {} entries, invariants re-checked",
        genes.shape(),
        genes.nnz(),
        genes.layout().name(),
        row5.len()
    );

    let again = c.open_dense::<f32>("cells/umis")?;
    let after = cache_stats();
    let nonempty_files: usize = ["cells/umis", "cells/genes"]
        .iter()
        .map(|n| {
            c.info(n)
                .map(|r| r.files.iter().filter(|f| f.size > 0).count())
        })
        .sum::<std::result::Result<usize, _>>()?;
    out!(
        "cache: second open reused the same map (same address: {}); {} maps made for {} non-empty files",
        std::ptr::eq(umis.as_ptr(), again.as_ptr()),
        after.maps_created - before.maps_created,
        nonempty_files
    );

    for name in c.ls()? {
        let rec = c.info(&name)?;
        for f in &rec.files {
            out!(
                "file: {}.{} {} bytes crc32c={:08x}",
                name,
                f.suffix,
                f.size,
                f.crc32c.unwrap_or(0)
            );
        }
    }
    drop((umis, again, genes));
    drop(c);
    shared_by_processes(dir)?;
    out!("done: read the files from any language with format-spec/SPEC.md");
    Ok(())
}

/// A worker process of the demo (`dafctl demo-worker DIR NAME...`): opens the arrays, reads every
/// element (so every page is mapped in), prints `ready`, and keeps its handles (and so its
/// references) until told `release` on stdin, or until it dies.
pub fn worker(dir: &Path, names: &[String]) -> Result<()> {
    use std::io::BufRead;
    let c = Container::open(dir)?;
    let mut handles = Vec::new();
    let mut total = 0.0f64;
    for n in names {
        let a = c.open_dense::<f32>(n)?;
        total += a.iter().map(|&v| f64::from(v)).sum::<f64>();
        handles.push(a);
    }
    out!("ready {total}");
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "release" {
            handles.clear();
            out!("released");
        }
    }
    Ok(())
}

struct Worker {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Worker {
    fn spawn(dir: &Path, name: &str) -> Result<Worker> {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .arg("demo-worker")
            .arg(dir)
            .arg(name)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let out = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Worker { child, out })
    }

    fn expect(&mut self, word: &str) -> Result<()> {
        use std::io::BufRead;
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        if line.starts_with(word) {
            Ok(())
        } else {
            Err(format!(
                "demo worker {} said {line:?}, expected {word}",
                self.child.id()
            )
            .into())
        }
    }

    fn send(&mut self, what: &str) -> Result<()> {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        writeln!(stdin, "{what}")?;
        Ok(())
    }

    /// Proportional set size (kB) of the worker's map of `file`: each shared page counts
    /// 1/n in each of the n processes mapping it, so the sum over processes is what the file
    /// costs in memory.
    fn map_pss_kib(&self, file: &Path) -> Result<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/smaps", self.child.id()))?;
        let target = file.to_string_lossy();
        let mut in_map = false;
        let mut total = 0;
        for line in text.lines() {
            let is_header = line.split_whitespace().next().is_some_and(|f| {
                f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            });
            if is_header {
                in_map = line.ends_with(target.as_ref());
            } else if in_map {
                if let Some(v) = line.strip_prefix("Pss:") {
                    total += v.trim().trim_end_matches("kB").trim().parse::<u64>()?;
                }
            }
        }
        Ok(total)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The seed 000 workflow with real processes: workers share one array, the catalog counts them,
/// memory is paid once, a removal waits for them, a killed worker is reaped, the last release
/// deletes.
fn shared_by_processes(dir: &Path) -> Result<()> {
    let name = "cells/umis";
    let bytes = ROWS * COLS * 4;
    let mut workers = (0..3)
        .map(|_| Worker::spawn(dir, name))
        .collect::<Result<Vec<_>>>()?;
    let c = Container::open(dir)?;
    let array_file = c.root().join(format!("{name}.array"));
    let mut pss = Vec::new();
    for w in &mut workers {
        w.expect("ready")?;
    }
    for w in &workers {
        pss.push(w.map_pss_kib(&array_file)?);
    }
    let holders: Vec<u32> = c
        .holders()?
        .iter()
        .filter(|h| h.arrays.iter().any(|a| a.name == name))
        .filter_map(|h| h.pid)
        .collect();
    out!("processes: 3 workers mapped and read {name}; the catalog counts {} holders (pids {holders:?})", holders.len());
    let sum: u64 = pss.iter().sum();
    out!(
        "memory: each worker's map of it costs {:?} kB of PSS, {:.2} MB together for a {:.2} MB array: the pages are shared, paid once",
        pss,
        sum as f64 * 1024.0 / 1e6,
        bytes as f64 / 1e6
    );
    let removal = c.remove(name)?;
    out!("remove: {name} -> {removal:?}: gone for new holders, files kept for the 3 workers");
    let mut killed = workers.remove(0);
    let pid = killed.child.id();
    killed.child.kill()?;
    killed.child.wait()?;
    drop(killed);
    let report = c.gc()?;
    out!("crash: worker {pid} killed with SIGKILL; gc reaped {} dead session(s); the array stays for the 2 live workers", report.reaped_sessions.len());
    let live = workers.len();
    for (i, w) in workers.iter_mut().enumerate() {
        w.send("release")?;
        w.expect("released")?;
        out!(
            "release: worker {} released {name}; its files {}",
            w.child.id(),
            if array_file.exists() {
                "stay (still held)"
            } else if i + 1 == live {
                "were deleted by this last release"
            } else {
                "are gone"
            }
        );
    }
    if array_file.exists() {
        return Err(format!(
            "{} still exists after the last release",
            array_file.display()
        )
        .into());
    }
    Ok(())
}
