//! Writes dafstore's exports for the Python interop test (`tests/python/test_interop_export.py`):
//! `dafstore-export-fixtures OUT_DIR` creates a scratch container, writes arrays of every dtype
//! (1-d with each type's extremes, 2-d, 3-d, 0-d, zero-size) and sparse matrices (CSR and CSC with
//! empty rows and columns, nnz = 0, several index dtypes), exports them to `OUT_DIR/npy/*.npy`,
//! `OUT_DIR/feather/*.feather` (and one `.arrow`) and `OUT_DIR/npz/*.npz`, and writes
//! `OUT_DIR/expected.json`: for each file, the values numpy, pyarrow, polars or scipy must read.
//! Errors go to stderr with exit status 2.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use dafstore::{Container, DType, Layout};
use serde_json::{json, Value};

/// `n` values of `dtype` as little-endian bytes and as the JSON values Python's `tolist()` gives:
/// ordinary values (negative for signed types, quarters for floats) with the type's extremes at
/// positions 0 and 1 when `extremes` is set.
fn sample(dtype: DType, n: usize, extremes: bool) -> (Vec<u8>, Vec<Value>) {
    macro_rules! ints {
        ($t:ty) => {{
            let vals: Vec<$t> = (0..n)
                .map(|i| match i {
                    0 if extremes => <$t>::MIN,
                    1 if extremes => <$t>::MAX,
                    _ => {
                        (i as i64 * if <$t>::MIN == 0 { 3 } else { 1 }
                            - if <$t>::MIN == 0 { 0 } else { n as i64 / 2 })
                            as $t
                    }
                })
                .collect();
            (
                vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
                vals.iter().map(|&v| json!(v)).collect(),
            )
        }};
    }
    let quarter = |i: usize| (i as f64 - (n / 2) as f64) * 0.25;
    match dtype {
        DType::Bool => (
            (0..n).map(|i| u8::from(i % 3 == 0)).collect(),
            (0..n).map(|i| json!(i % 3 == 0)).collect(),
        ),
        DType::Int8 => ints!(i8),
        DType::Int16 => ints!(i16),
        DType::Int32 => ints!(i32),
        DType::Int64 => ints!(i64),
        DType::UInt8 => ints!(u8),
        DType::UInt16 => ints!(u16),
        DType::UInt32 => ints!(u32),
        DType::UInt64 => ints!(u64),
        DType::Float16 => {
            let vals: Vec<half::f16> = (0..n)
                .map(|i| match i {
                    0 if extremes => half::f16::MIN,
                    1 if extremes => half::f16::MAX,
                    _ => half::f16::from_f64(quarter(i)),
                })
                .collect();
            (
                vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
                vals.iter().map(|v| json!(v.to_f64())).collect(),
            )
        }
        DType::Float32 => {
            let vals: Vec<f32> = (0..n)
                .map(|i| match i {
                    0 if extremes => f32::MIN,
                    1 if extremes => f32::MAX,
                    _ => quarter(i) as f32,
                })
                .collect();
            (
                vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
                vals.iter().map(|&v| json!(f64::from(v))).collect(),
            )
        }
        DType::Float64 => {
            let vals: Vec<f64> = (0..n)
                .map(|i| match i {
                    0 if extremes => f64::MIN,
                    1 if extremes => f64::MAX,
                    _ => quarter(i),
                })
                .collect();
            (
                vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
                vals.iter().map(|&v| json!(v)).collect(),
            )
        }
    }
}

fn dense(
    c: &Container,
    out: &Path,
    expected: &mut BTreeMap<String, Value>,
    name: &str,
    dtype: DType,
    shape: &[u64],
    files: &[&str],
) -> Result<(), String> {
    let n = shape.iter().product::<u64>() as usize;
    let (bytes, values) = sample(dtype, n, shape.len() == 1);
    c.write_dense_bytes(name, dtype, shape, &bytes)
        .map_err(|e| e.to_string())?;
    for file in files {
        c.export(name, out.join(file), None)
            .map_err(|e| e.to_string())?;
        expected.insert(
            file.to_string(),
            json!({
                "kind": "dense",
                "dtype": dtype.name(),
                "shape": shape,
                "column": name.rsplit('/').next(),
                "values": values,
            }),
        );
    }
    Ok(())
}

/// A sparse matrix given densely (row-major `rows × cols`), stored in `layout` with index dtypes
/// `I` and `P`, exported to `file`.
#[allow(clippy::too_many_arguments)]
fn sparse<I, P>(
    c: &Container,
    out: &Path,
    expected: &mut BTreeMap<String, Value>,
    name: &str,
    layout: Layout,
    rows: usize,
    cols: usize,
    dense: &[f64],
    file: &str,
) -> Result<(), String>
where
    I: dafstore::IndexElement + TryFrom<usize>,
    P: dafstore::IndexElement + TryFrom<usize>,
{
    let (major, minor) = match layout {
        Layout::Rows => (rows, cols),
        Layout::Columns => (cols, rows),
    };
    let (mut data, mut indices, mut indptr) = (Vec::new(), Vec::new(), vec![0usize]);
    for a in 0..major {
        for b in 0..minor {
            let v = match layout {
                Layout::Rows => dense[a * cols + b],
                Layout::Columns => dense[b * cols + a],
            };
            if v != 0.0 {
                data.push(v);
                indices.push(b);
            }
        }
        indptr.push(data.len());
    }
    let conv = |v: usize| -> Result<I, String> { I::try_from(v).map_err(|_| "index".to_string()) };
    let indices: Vec<I> = indices.into_iter().map(conv).collect::<Result<_, _>>()?;
    let indptr: Vec<P> = indptr
        .into_iter()
        .map(|v| P::try_from(v).map_err(|_| "indptr".to_string()))
        .collect::<Result<_, _>>()?;
    c.write_sparse::<f64, I, P>(
        name,
        layout,
        [rows as u64, cols as u64],
        &data,
        &indices,
        &indptr,
    )
    .map_err(|e| e.to_string())?;
    c.export(name, out.join(file), None)
        .map_err(|e| e.to_string())?;
    let dense_rows: Vec<&[f64]> = dense.chunks(cols.max(1)).take(rows).collect();
    expected.insert(
        file.to_string(),
        json!({
            "kind": "sparse",
            "format": match layout { Layout::Rows => "csr", Layout::Columns => "csc" },
            "shape": [rows, cols],
            "nnz": data.len(),
            "dense": if cols == 0 { json!(vec![Vec::<f64>::new(); rows]) } else { json!(dense_rows) },
        }),
    );
    Ok(())
}

fn run(out: &Path) -> Result<(), String> {
    for sub in ["npy", "feather", "npz"] {
        std::fs::create_dir_all(out.join(sub)).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let c = Container::create(scratch.path().join("c")).map_err(|e| e.to_string())?;
    let mut expected = BTreeMap::new();
    for dtype in DType::ALL {
        let d = dtype.name();
        dense(
            &c,
            out,
            &mut expected,
            &format!("d1/{d}"),
            dtype,
            &[7],
            &[
                &format!("npy/{d}_1d.npy"),
                &format!("feather/{d}_1d.feather"),
            ],
        )?;
        dense(
            &c,
            out,
            &mut expected,
            &format!("d2/{d}"),
            dtype,
            &[3, 4],
            &[
                &format!("npy/{d}_2d.npy"),
                &format!("feather/{d}_2d.feather"),
            ],
        )?;
    }
    dense(
        &c,
        out,
        &mut expected,
        "x/zerod",
        DType::Float64,
        &[],
        &["npy/float64_0d.npy"],
    )?;
    dense(
        &c,
        out,
        &mut expected,
        "x/empty",
        DType::Int32,
        &[0, 3],
        &["npy/int32_0x3.npy"],
    )?;
    dense(
        &c,
        out,
        &mut expected,
        "x/cube",
        DType::UInt8,
        &[2, 3, 4],
        &["npy/uint8_2x3x4.npy", "feather/uint8_2x3x4.arrow"],
    )?;
    dense(
        &c,
        out,
        &mut expected,
        "x/none",
        DType::Float32,
        &[0],
        &["feather/float32_empty.feather"],
    )?;
    #[rustfmt::skip]
    let m: [f64; 20] = [
        0.0, 1.5, 0.0, 0.0, 2.0,
        0.0, 0.0, 0.0, 0.0, 0.0,
        3.0, 0.0, 0.0, -4.25, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    sparse::<i32, i32>(
        &c,
        out,
        &mut expected,
        "s/csr",
        Layout::Rows,
        4,
        5,
        &m,
        "npz/csr_4x5.npz",
    )?;
    sparse::<i32, i64>(
        &c,
        out,
        &mut expected,
        "s/csc",
        Layout::Columns,
        4,
        5,
        &m,
        "npz/csc_4x5.npz",
    )?;
    sparse::<i64, i64>(
        &c,
        out,
        &mut expected,
        "s/csr64",
        Layout::Rows,
        4,
        5,
        &m,
        "npz/csr_int64idx.npz",
    )?;
    sparse::<u32, u64>(
        &c,
        out,
        &mut expected,
        "s/csru",
        Layout::Rows,
        4,
        5,
        &m,
        "npz/csr_uintidx.npz",
    )?;
    sparse::<i32, i32>(
        &c,
        out,
        &mut expected,
        "s/nnz0",
        Layout::Rows,
        3,
        4,
        &[0.0; 12],
        "npz/csr_nnz0.npz",
    )?;
    sparse::<i32, i32>(
        &c,
        out,
        &mut expected,
        "s/cnnz0",
        Layout::Columns,
        2,
        5,
        &[0.0; 10],
        "npz/csc_nnz0.npz",
    )?;
    let text = serde_json::to_string_pretty(&expected).map_err(|e| e.to_string())?;
    std::fs::write(out.join("expected.json"), text + "\n").map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, out] = args.as_slice() else {
        eprintln!("usage: dafstore-export-fixtures OUT_DIR");
        return ExitCode::from(2);
    };
    match run(Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dafstore-export-fixtures: {e}");
            ExitCode::from(2)
        }
    }
}
