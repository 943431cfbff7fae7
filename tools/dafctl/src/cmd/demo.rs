//! `dafctl demo`: the end-to-end tour. Writes a dense array through a map and a sparse matrix
//! from slices, reopens the container as a fresh handle would, checks every value, and shows the
//! files, the checksums and the one-map-per-file cache. Each step prints one line.

use std::error::Error;
use std::path::{Path, PathBuf};

use dafstore::{cache_stats, Container, Layout};

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
            println!(
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
    println!(
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
    println!("dense: wrote cells/umis, float32 {ROWS}x{COLS}, space reserved at create, filled through a map, published atomically");

    let (data, indices, indptr) = sparse_rows();
    c.write_sparse::<f64, i32, i64>(
        "cells/genes",
        Layout::Rows,
        [ROWS, COLS],
        &data,
        &indices,
        &indptr,
    )?;
    println!("sparse: wrote cells/genes, CSR {ROWS}x{COLS} float64 with nnz={} (invariants validated before publishing)", data.len());
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
    println!(
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
    println!(
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
            c.record(n)
                .map(|r| r.files.iter().filter(|f| f.size > 0).count())
        })
        .sum::<std::result::Result<usize, _>>()?;
    println!(
        "cache: second open reused the same map (same address: {}); {} maps made for {} non-empty files",
        std::ptr::eq(umis.as_ptr(), again.as_ptr()),
        after.maps_created - before.maps_created,
        nonempty_files
    );

    for name in c.names()? {
        let rec = c.record(&name)?;
        for f in &rec.files {
            println!(
                "file: {}.{} {} bytes crc32c={:08x}",
                name,
                f.suffix,
                f.size,
                f.crc32c.unwrap_or(0)
            );
        }
    }
    println!("done: read the files from any language with format-spec/SPEC.md");
    Ok(())
}
