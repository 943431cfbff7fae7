//! Interop: files written by the real libraries (numpy, scipy, pyarrow, polars; see
//! `tests/fixtures/interop/MANIFEST.md`) import with exactly the values those libraries read back
//! (`expected.json`), in every dtype, shape and layout they write; our exports read back the same
//! (and `.npy` exports are byte-identical to `numpy.save`, `.npz` entries to scipy's); whatever
//! cannot be stored exactly (strings, nested types, nulls without a fill value, complex numbers,
//! coo matrices) is refused with a typed error and nothing is published; no malformed input panics;
//! and an Arrow view of a mapped array is the map itself and keeps it alive on its own.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use dafstore::arrow_array::cast::AsArray;
use dafstore::arrow_array::types::{Float16Type, Float64Type, Int32Type, Int64Type};
use dafstore::arrow_array::Array as _;
use dafstore::arrow_schema::DataType;
use dafstore::{
    cache_stats, Container, DType, DenseArray, Format, ImportOptions, InteropError, Layout,
    Removal, SparseArray,
};
use dafstore_tests::new_container;
use serde_json::Value;

/// Tests that count live maps take this exclusively; every other test takes it shared, so the
/// process-wide map counters move only because of the counting test.
static MAPS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    MAPS.read().unwrap_or_else(|e| e.into_inner())
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/interop")
}

fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

fn expected() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(fixture("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json parses")
}

fn import(c: &Container, name: &str, rel: &str) -> Result<dafstore::ImportReport, InteropError> {
    c.import(name, fixture(rel), ImportOptions::default())
}

fn import_column(
    c: &Container,
    name: &str,
    rel: &str,
    column: &str,
    fill: Option<f64>,
) -> Result<dafstore::ImportReport, InteropError> {
    let opts = ImportOptions {
        column: Some(column.to_string()),
        fill,
        ..Default::default()
    };
    c.import(name, fixture(rel), opts)
}

/// Element `i` of little-endian `bytes` of `dtype`, as the JSON value Python's `tolist()` gives.
fn element(dtype: DType, bytes: &[u8], i: usize) -> Value {
    let n = dtype.itemsize();
    let b = &bytes[i * n..(i + 1) * n];
    match dtype {
        DType::Bool => Value::Bool(b[0] != 0),
        DType::Int8 => (b[0] as i8).into(),
        DType::Int16 => i16::from_le_bytes(b.try_into().unwrap()).into(),
        DType::Int32 => i32::from_le_bytes(b.try_into().unwrap()).into(),
        DType::Int64 => i64::from_le_bytes(b.try_into().unwrap()).into(),
        DType::UInt8 => b[0].into(),
        DType::UInt16 => u16::from_le_bytes(b.try_into().unwrap()).into(),
        DType::UInt32 => u32::from_le_bytes(b.try_into().unwrap()).into(),
        DType::UInt64 => u64::from_le_bytes(b.try_into().unwrap()).into(),
        DType::Float16 => half::f16::from_le_bytes(b.try_into().unwrap())
            .to_f64()
            .into(),
        DType::Float32 => f64::from(f32::from_le_bytes(b.try_into().unwrap())).into(),
        DType::Float64 => f64::from_le_bytes(b.try_into().unwrap()).into(),
    }
}

fn values(dtype: DType, bytes: &[u8]) -> Vec<Value> {
    (0..bytes.len() / dtype.itemsize())
        .map(|i| element(dtype, bytes, i))
        .collect()
}

/// Equal JSON values; floats within a relative 1e-15 (JSON float parsing may differ by an ulp).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        _ => a == b,
    }
}

fn assert_values(what: &str, dtype: DType, bytes: &[u8], expected: &Value) {
    let actual = Value::Array(values(dtype, bytes));
    assert!(
        same(&actual, expected),
        "{what}: values differ\n  actual:   {actual}\n  expected: {expected}"
    );
}

fn shape_of(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect()
}

fn check_dense(what: &str, d: &DenseArray, e: &Value) {
    assert_eq!(
        d.dtype().name(),
        e["dtype"].as_str().unwrap(),
        "{what}: dtype"
    );
    assert_eq!(d.shape(), shape_of(&e["shape"]).as_slice(), "{what}: shape");
    assert_values(what, d.dtype(), d.as_bytes(), &e["values"]);
}

fn npy_fixtures(e: &BTreeMap<String, Value>) -> Vec<(String, Value)> {
    e.iter()
        .filter(|(k, v)| k.starts_with("npy/") && !v["values"].is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn npy_every_dtype_and_layout_written_by_numpy_imports_with_numpys_values() {
    let _g = shared();
    let (_d, c) = new_container();
    let e = expected();
    let all = npy_fixtures(&e);
    assert!(all.len() >= 30, "fixtures missing: {}", all.len());
    let mut seen = std::collections::BTreeSet::new();
    for (i, (key, exp)) in all.iter().enumerate() {
        let name = format!("a{i}");
        let report = import(&c, &name, key).unwrap_or_else(|err| panic!("{key}: {err}"));
        assert_eq!(report.format, Format::Npy);
        assert_eq!(report.arrays.len(), 1);
        let conv = &report.arrays[0].conversions;
        let fortran =
            exp["fortran_order"].as_bool().unwrap() && exp["shape"].as_array().unwrap().len() >= 2;
        let big = exp["descr"].as_str().unwrap().starts_with('>');
        assert_eq!(
            conv.iter().any(|c| c.contains("Fortran")),
            fortran,
            "{key}: {conv:?}"
        );
        assert_eq!(
            conv.iter().any(|c| c.contains("big-endian")),
            big,
            "{key}: {conv:?}"
        );
        assert_eq!(
            report.bytes_read,
            std::fs::metadata(fixture(key)).unwrap().len()
        );
        let d = c.open_dense_untyped(&name).unwrap();
        check_dense(key, &d, exp);
        seen.insert(d.dtype());
    }
    assert_eq!(seen.len(), DType::ALL.len(), "every dtype is covered");
}

#[test]
fn npy_fortran_and_big_endian_are_converted_to_row_major_little_endian() {
    let _g = shared();
    let (_d, c) = new_container();
    import(&c, "f", "npy/fortran_float64_3x4.npy").unwrap();
    let f = c.open_dense::<f64>("f").unwrap();
    // numpy's sample: (i - 6) * 0.25 in row-major order, whatever the file's order.
    assert_eq!(f.shape(), &[3, 4]);
    let at = |row: usize, col: usize| f[row * 4 + col];
    assert_eq!(at(1, 2), (6.0 - 6.0) * 0.25);
    assert_eq!(at(2, 3), (11.0 - 6.0) * 0.25);
    import(&c, "b", "npy/bigendian_int32_3x4.npy").unwrap();
    let b = c.open_dense::<i32>("b").unwrap();
    assert_eq!(&b[..], &(0..12).map(|i| i - 6).collect::<Vec<i32>>()[..]);
    import(&c, "bf", "npy/bigendian_fortran_uint16_3x4.npy").unwrap();
    let bf = c.open_dense::<u16>("bf").unwrap();
    assert_eq!(&bf[..], &(0..12).map(|i| i * 3).collect::<Vec<u16>>()[..]);
    import(&c, "f3", "npy/fortran_int16_2x3x4.npy").unwrap();
    let f3 = c.open_dense::<i16>("f3").unwrap();
    assert_eq!(&f3[..], &(0..24).map(|i| i - 12).collect::<Vec<i16>>()[..]);
}

#[test]
fn npy_export_is_byte_identical_to_numpy_save() {
    let _g = shared();
    let (dir, c) = new_container();
    let e = expected();
    let mut compared = 0;
    for (i, (key, exp)) in npy_fixtures(&e).iter().enumerate() {
        let name = format!("a{i}");
        import(&c, &name, key).unwrap();
        let out = dir.path().join(format!("out{i}.npy"));
        c.export(&name, &out, None).unwrap();
        let ours = std::fs::read(&out).unwrap();
        let numpys = std::fs::read(fixture(key)).unwrap();
        let header_len = u16::from_le_bytes([ours[8], ours[9]]) as usize + 10;
        assert_eq!(header_len % 64, 0, "{key}: data starts 64-byte aligned");
        let plain = !key.contains("fortran") && !key.contains("bigendian") && !key.contains("/v");
        if plain {
            assert_eq!(ours, numpys, "{key}: byte-identical to numpy.save");
            compared += 1;
        }
        // Every export re-imports to the same values (Fortran/big-endian ones included).
        c.import(&format!("back{i}"), &out, ImportOptions::default())
            .unwrap();
        let back = c.open_dense_untyped(&format!("back{i}")).unwrap();
        check_dense(key, &back, exp);
    }
    assert!(compared >= 25);
}

/// A `.npy` header as numpy writes it (v1.0, padded to 64 bytes), built by hand.
fn npy_header(descr: &str, fortran: bool, shape: &str) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

#[test]
fn npy_larger_than_a_chunk_streams_in_both_orders() {
    let _g = shared();
    let (dir, c) = new_container();
    // 1500 x 1000 float64 = 12 MB: more than one 8 MiB chunk, so chunk boundaries are crossed.
    let (rows, cols) = (1500usize, 1000usize);
    let value = |r: usize, k: usize| (r * cols + k) as f64;
    let mut fortran = npy_header("<f8", true, "(1500, 1000)");
    for k in 0..cols {
        for r in 0..rows {
            fortran.extend_from_slice(&value(r, k).to_le_bytes());
        }
    }
    let path = dir.path().join("big_f.npy");
    std::fs::write(&path, &fortran).unwrap();
    c.import("f", &path, ImportOptions::default()).unwrap();
    let f = c.open_dense::<f64>("f").unwrap();
    assert_eq!(f.shape(), &[1500, 1000]);
    assert!(f.iter().enumerate().all(|(i, &v)| v == i as f64));
    // Export (row-major) and import again; big-endian too.
    let out = dir.path().join("big_c.npy");
    c.export("f", &out, None).unwrap();
    c.import("c", &out, ImportOptions::default()).unwrap();
    assert_eq!(&c.open_dense::<f64>("c").unwrap()[..], &f[..]);
    let mut big = npy_header(">f8", false, "(1500, 1000)");
    for i in 0..rows * cols {
        big.extend_from_slice(&(i as f64).to_be_bytes());
    }
    let path = dir.path().join("big_be.npy");
    std::fs::write(&path, &big).unwrap();
    c.import("be", &path, ImportOptions::default()).unwrap();
    assert_eq!(&c.open_dense::<f64>("be").unwrap()[..], &f[..]);
}

#[test]
fn npy_versions_2_and_3_headers_import() {
    let _g = shared();
    let (_d, c) = new_container();
    for (rel, version) in [("npy/v2_float32_2x3.npy", 2u8), ("npy/v3_int64_4.npy", 3)] {
        assert_eq!(std::fs::read(fixture(rel)).unwrap()[6], version);
        import(&c, "v", rel).unwrap();
        let v = c.open_dense_untyped("v").unwrap();
        check_dense(rel, &v, &expected()[rel]);
    }
}

#[test]
fn npy_unsupported_dtypes_are_refused_and_nothing_is_published() {
    let _g = shared();
    let (_d, c) = new_container();
    for (rel, descr) in [("npy/complex64.npy", "<c8"), ("npy/unicode.npy", "<U3")] {
        match import(&c, "x", rel) {
            Err(InteropError::UnsupportedDtype { descr: d, .. }) => {
                assert!(d.contains(descr), "{rel}: {d}")
            }
            other => panic!("{rel}: {other:?}"),
        }
    }
    assert!(c.ls().unwrap().is_empty());
}

#[test]
fn npy_truncated_or_corrupted_files_are_errors_never_panics() {
    let _g = shared();
    let (dir, c) = new_container();
    let good = std::fs::read(fixture("npy/float64_2d.npy")).unwrap();
    let path = dir.path().join("bad.npy");
    for n in 0..good.len() {
        std::fs::write(&path, &good[..n]).unwrap();
        let err = c.import("x", &path, ImportOptions::default()).unwrap_err();
        assert!(
            matches!(err, InteropError::Malformed { .. }),
            "truncated at {n}: {err}"
        );
    }
    // Every single-byte change of the header is either refused or still a valid header.
    for at in 0..128 {
        for byte in [
            b'0', b'9', b'(', b')', b',', b'\'', b'{', b'}', 0xff, b'\n', 0,
        ] {
            let mut bad = good.clone();
            bad[at] = byte;
            std::fs::write(&path, &bad).unwrap();
            let _ = c.import("x", &path, ImportOptions::default());
        }
    }
    // Trailing bytes after the data.
    let mut long = good.clone();
    long.push(0);
    std::fs::write(&path, &long).unwrap();
    assert!(matches!(
        c.import("x", &path, ImportOptions::default()),
        Err(InteropError::Malformed { .. })
    ));
    // A header that claims a huge shape is refused before reserving anything.
    let (from, to) = (b"(3, 4), }             ", b"(99999999999999, 4), }");
    let at = good.windows(from.len()).position(|w| w == from).unwrap();
    let mut huge = good.clone();
    huge.splice(at..at + from.len(), to.iter().copied());
    assert_eq!(huge.len(), good.len());
    std::fs::write(&path, &huge).unwrap();
    assert!(matches!(
        c.import("x", &path, ImportOptions::default()),
        Err(InteropError::Malformed { .. })
    ));
}

#[test]
fn npz_truncated_or_corrupted_archives_are_errors_never_panics() {
    let _g = shared();
    let (dir, c) = new_container();
    let path = dir.path().join("bad.npz");
    for key in [
        "npz/csr_float64_4x5.npz",
        "npz/csr_uint8_int64idx_uncompressed.npz",
        "npz/plain.npz",
    ] {
        let good = std::fs::read(fixture(key)).unwrap();
        for n in 0..good.len() {
            std::fs::write(&path, &good[..n]).unwrap();
            assert!(
                c.import("x", &path, ImportOptions::default()).is_err(),
                "{key} truncated at {n}"
            );
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&path, &bad).unwrap();
            // Bytes that do not matter (timestamps, an entry's name) may change and still import;
            // data is protected by the entries' CRC-32.
            if let Ok(report) = c.import("x", &path, ImportOptions::default()) {
                for a in report.arrays {
                    c.remove(&a.name).unwrap();
                }
            }
        }
    }
    // No plain import left a partial set of arrays behind.
    assert!(
        c.ls().unwrap().iter().all(|n| !n.starts_with("x/")),
        "{:?}",
        c.ls()
    );
}

fn check_sparse(what: &str, s: &SparseArray, e: &Value) {
    let layout = match e["format"].as_str().unwrap() {
        "csr" => Layout::Rows,
        _ => Layout::Columns,
    };
    assert_eq!(s.layout(), layout, "{what}");
    assert_eq!(s.shape().to_vec(), shape_of(&e["shape"]), "{what}");
    let m = s.sparse_meta();
    assert_eq!(
        m.data_dtype.name(),
        e["data_dtype"].as_str().unwrap(),
        "{what}"
    );
    assert_eq!(
        m.indices_dtype.name(),
        e["indices_dtype"].as_str().unwrap(),
        "{what}"
    );
    assert_eq!(
        m.indptr_dtype.name(),
        e["indptr_dtype"].as_str().unwrap(),
        "{what}"
    );
    assert_values(what, m.data_dtype, s.data_bytes(), &e["data"]);
    assert_values(what, m.indices_dtype, s.indices_bytes(), &e["indices"]);
    assert_values(what, m.indptr_dtype, s.indptr_bytes(), &e["indptr"]);
    s.validate().unwrap();
}

fn scipy_fixtures() -> Vec<(String, Value)> {
    expected()
        .into_iter()
        .filter(|(k, v)| k.starts_with("npz/") && v.get("indptr").is_some())
        .collect()
}

#[test]
fn npz_scipy_csr_and_csc_with_empty_rows_and_nnz_0_import() {
    let _g = shared();
    let (_d, c) = new_container();
    let all = scipy_fixtures();
    assert_eq!(all.len(), 5);
    for (i, (key, exp)) in all.iter().enumerate() {
        let report = import(&c, &format!("s{i}"), key).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(report.arrays[0].meta.kind(), dafstore::Kind::Sparse);
        let s = c.open_sparse(&format!("s{i}")).unwrap();
        check_sparse(key, &s, exp);
        if key.contains("nnz0") {
            assert_eq!(s.nnz(), 0);
        }
    }
}

#[test]
fn npz_sparse_export_matches_scipy_entries_and_reimports() {
    let _g = shared();
    let (dir, c) = new_container();
    for (i, (key, exp)) in scipy_fixtures().iter().enumerate() {
        import(&c, &format!("s{i}"), key).unwrap();
        let out = dir.path().join(format!("s{i}.npz"));
        c.export(&format!("s{i}"), &out, None).unwrap();
        c.import(&format!("back{i}"), &out, ImportOptions::default())
            .unwrap();
        check_sparse(key, &c.open_sparse(&format!("back{i}")).unwrap(), exp);
        // Entry by entry, the .npy files are what scipy (numpy.savez) wrote.
        let ours = entries(&out);
        let scipys = entries(&fixture(key));
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            scipys
                .keys()
                .filter(|k| *k != "_is_array.npy")
                .collect::<Vec<_>>(),
            "{key}"
        );
        for (name, bytes) in &ours {
            assert_eq!(bytes, &scipys[name], "{key}: entry {name}");
        }
    }
}

/// The decompressed entries of a zip archive.
fn entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        out.insert(f.name().unwrap().to_string(), bytes);
    }
    out
}

#[test]
fn npz_coo_is_refused_with_what_to_do() {
    let _g = shared();
    let (_d, c) = new_container();
    let err = import(&c, "m", "npz/coo.npz").unwrap_err();
    assert!(
        matches!(&err, InteropError::SparseFormat { format, .. } if format == "coo"),
        "{err}"
    );
    assert!(err.to_string().contains("tocsr"), "{err}");
    assert!(c.ls().unwrap().is_empty());
}

#[test]
fn npz_plain_arrays_import_as_name_slash_key() {
    let _g = shared();
    let (_d, c) = new_container();
    let report = import(&c, "p", "npz/plain.npz").unwrap();
    assert_eq!(report.arrays.len(), 3);
    let e = &expected()["npz/plain.npz"];
    for key in ["a", "b", "c"] {
        let d = c.open_dense_untyped(&format!("p/{key}")).unwrap();
        check_dense(key, &d, &e[key]);
    }
}

#[test]
fn exports_refuse_the_wrong_kind() {
    let _g = shared();
    let (dir, c) = new_container();
    c.write_dense::<f64>("d", &[2], &[1.0, 2.0]).unwrap();
    c.write_sparse::<f64, i32, i32>("s", Layout::Rows, [1, 2], &[1.0], &[1], &[0, 1])
        .unwrap();
    for (name, file) in [("d", "d.npz"), ("s", "s.npy"), ("s", "s.feather")] {
        let err = c.export(name, dir.path().join(file), None).unwrap_err();
        assert!(matches!(err, InteropError::CannotExport { .. }), "{err}");
        assert!(!dir.path().join(file).exists());
    }
    let err = c.export("d", dir.path().join("d.csv"), None).unwrap_err();
    assert!(matches!(err, InteropError::UnknownFormat { .. }), "{err}");
    // An explicit format overrides the extension.
    c.export("d", dir.path().join("d.bin"), Some(Format::Npy))
        .unwrap();
    c.import(
        "d2",
        dir.path().join("d.bin"),
        ImportOptions {
            format: Some(Format::Npy),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(&c.open_dense::<f64>("d2").unwrap()[..], &[1.0, 2.0]);
}

fn feather_columns(key: &str) -> Vec<(String, Value)> {
    let e = &expected()[key];
    e["columns"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The dtype a Feather column of Arrow type `t` (as pyarrow prints it) imports as.
fn dtype_of_arrow(t: &str) -> Option<DType> {
    Some(match t {
        "bool" => DType::Bool,
        "int8" => DType::Int8,
        "int16" => DType::Int16,
        "int32" => DType::Int32,
        "int64" => DType::Int64,
        "uint8" => DType::UInt8,
        "uint16" => DType::UInt16,
        "uint32" => DType::UInt32,
        "uint64" => DType::UInt64,
        "halffloat" => DType::Float16,
        "float" => DType::Float32,
        "double" => DType::Float64,
        _ => return None,
    })
}

#[test]
fn feather_uncompressed_lz4_and_zstd_from_pyarrow_import_every_type() {
    let _g = shared();
    let (_d, c) = new_container();
    for comp in ["uncompressed", "lz4", "zstd"] {
        let key = format!("feather/all_types_{comp}.feather");
        let cols = feather_columns(&key);
        assert_eq!(cols.len(), 12);
        for (col, exp) in cols {
            let dtype = dtype_of_arrow(exp["type"].as_str().unwrap()).unwrap();
            let name = format!("{comp}/{col}");
            let report = import_column(&c, &name, &key, &col, None)
                .unwrap_or_else(|e| panic!("{key} {col}: {e}"));
            let conv = &report.arrays[0].conversions;
            assert_eq!(
                conv.iter().any(|c| c.starts_with("decompressed")),
                comp != "uncompressed",
                "{key}: {conv:?}"
            );
            let d = c.open_dense_untyped(&name).unwrap();
            assert_eq!(d.dtype(), dtype);
            assert_eq!(d.shape(), &[10]);
            assert_values(&format!("{key} {col}"), dtype, d.as_bytes(), &exp["values"]);
        }
    }
}

#[test]
fn feather_default_lz4_with_several_batches_imports_its_only_column_and_reports_progress() {
    let _g = shared();
    let (_d, c) = new_container();
    let key = "feather/one_column_chunked.feather";
    let mut calls = Vec::new();
    let mut progress = |done: u64, total: u64| calls.push((done, total));
    let opts = ImportOptions {
        progress: Some(&mut progress),
        ..Default::default()
    };
    let report = c.import("x", fixture(key), opts).unwrap();
    let total = std::fs::metadata(fixture(key)).unwrap().len();
    assert!(calls.len() >= 4, "one call per batch at least: {calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(calls.iter().all(|&(d, t)| t == total && d <= total));
    assert_eq!(report.bytes_read, total);
    assert_eq!(calls.last().unwrap().0, total);
    let d = c.open_dense_untyped("x").unwrap();
    assert_values(
        key,
        DType::Float64,
        d.as_bytes(),
        &feather_columns(key)[0].1["values"],
    );
}

#[test]
fn feather_from_polars_default_and_oldest_compat_level_import() {
    let _g = shared();
    let (_d, c) = new_container();
    for key in [
        "feather/polars_default.arrow",
        "feather/polars_oldest.arrow",
    ] {
        for (col, exp) in feather_columns(key) {
            let name = format!(
                "{}/{col}",
                key.trim_start_matches("feather/")
                    .trim_end_matches(".arrow")
            );
            match dtype_of_arrow(exp["type"].as_str().unwrap()) {
                Some(dtype) => {
                    import_column(&c, &name, key, &col, None)
                        .unwrap_or_else(|e| panic!("{key} {col}: {e}"));
                    let d = c.open_dense_untyped(&name).unwrap();
                    assert_eq!(d.dtype(), dtype);
                    assert_values(&format!("{key} {col}"), dtype, d.as_bytes(), &exp["values"]);
                }
                None => {
                    // polars' strings (string_view, or large_string at the oldest level).
                    let err = import_column(&c, &name, key, &col, None).unwrap_err();
                    assert!(
                        matches!(err, InteropError::UnsupportedColumn { .. }),
                        "{key} {col}: {err}"
                    );
                }
            }
        }
    }
}

#[test]
fn feather_nulls_are_refused_unless_a_fill_value_is_given() {
    let _g = shared();
    let (_d, c) = new_container();
    let key = "feather/mixed.feather";
    match import_column(&c, "i", key, "ints", None) {
        Err(InteropError::Nulls { count, column, .. }) => {
            assert_eq!((count, column.as_str()), (2, "ints"))
        }
        other => panic!("{other:?}"),
    }
    assert!(c.ls().unwrap().is_empty(), "nothing published");
    let report = import_column(&c, "i", key, "ints", Some(-1.0)).unwrap();
    assert!(report.arrays[0]
        .conversions
        .iter()
        .any(|c| c.contains("2 nulls")));
    assert_eq!(&c.open_dense::<i32>("i").unwrap()[..], &[1, -1, 3, -1, 5]);
    import_column(&c, "f", key, "floats", Some(f64::NAN)).unwrap();
    let f = c.open_dense::<f64>("f").unwrap();
    assert_eq!((f[0], f[1], f[3], f[4]), (0.5, 1.5, 3.5, 4.5));
    assert!(f[2].is_nan());
    import_column(&c, "b", key, "flags", Some(0.0)).unwrap();
    let b: Vec<u8> = c.open_dense_untyped("b").unwrap().as_bytes().to_vec();
    assert_eq!(b, vec![1, 0, 0, 1, 0]);
    for (col, fill) in [("ints", 0.5), ("ints", 1e12), ("flags", 2.0)] {
        let err = import_column(&c, "bad", key, col, Some(fill)).unwrap_err();
        assert!(
            matches!(err, InteropError::BadFill { .. }),
            "{col} {fill}: {err}"
        );
    }
}

#[test]
fn feather_strings_nested_and_dictionary_columns_are_refused_others_beside_them_import() {
    let _g = shared();
    let (_d, c) = new_container();
    let key = "feather/mixed.feather";
    for col in ["strings", "lists", "dict"] {
        let err = import_column(&c, "x", key, col, Some(0.0)).unwrap_err();
        assert!(
            matches!(err, InteropError::UnsupportedColumn { .. }),
            "{col}: {err}"
        );
    }
    assert!(c.ls().unwrap().is_empty());
    import_column(&c, "clean", key, "clean", None).unwrap();
    assert_eq!(
        &c.open_dense::<u16>("clean").unwrap()[..],
        &[10, 20, 30, 40, 50]
    );
    // Several columns and none chosen: the file becomes a table.
    let report = import(&c, "x", key).unwrap();
    assert_eq!(report.arrays[0].meta.kind(), dafstore::Kind::Table);
    let err = import_column(&c, "x", key, "nope", None).unwrap_err();
    assert!(matches!(err, InteropError::NoSuchColumn { .. }), "{err}");
}

#[test]
fn feather_truncated_or_wrong_files_are_errors_never_panics() {
    let _g = shared();
    let (dir, c) = new_container();
    let path = dir.path().join("bad.feather");
    for key in [
        "feather/all_types_lz4.feather",
        "feather/all_types_uncompressed.feather",
    ] {
        let good = std::fs::read(fixture(key)).unwrap();
        let step = (good.len() / 200).max(1);
        for n in (0..good.len()).step_by(step) {
            std::fs::write(&path, &good[..n]).unwrap();
            let r = c.import(
                "x",
                &path,
                ImportOptions {
                    column: Some("int32".into()),
                    ..Default::default()
                },
            );
            assert!(r.is_err(), "truncated at {n}");
        }
        // Corrupt bytes one at a time across the file: an error or (if the byte was padding)
        // the right values, never a panic.
        for at in (0..good.len()).step_by(step) {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&path, &bad).unwrap();
            let _ = c.import(
                "x",
                &path,
                ImportOptions {
                    column: Some("int32".into()),
                    ..Default::default()
                },
            );
        }
    }
    // Not Arrow at all.
    std::fs::write(&path, b"FEA1 not really").unwrap();
    assert!(matches!(
        c.import("x", &path, ImportOptions::default()),
        Err(InteropError::Malformed { .. })
    ));
}

#[test]
fn feather_export_reimports_every_dtype() {
    let _g = shared();
    let (dir, c) = new_container();
    let e = expected();
    for dtype in DType::ALL {
        let key = format!("npy/{}_1d.npy", dtype.name());
        import(&c, &format!("src/{}", dtype.name()), &key).unwrap();
        let out = dir.path().join(format!("{}.feather", dtype.name()));
        c.export(&format!("src/{}", dtype.name()), &out, None)
            .unwrap();
        let report = c
            .import(
                &format!("back/{}", dtype.name()),
                &out,
                ImportOptions::default(),
            )
            .unwrap();
        assert!(report.arrays[0]
            .conversions
            .iter()
            .all(|c| !c.starts_with("decompressed")));
        let back = c
            .open_dense_untyped(&format!("back/{}", dtype.name()))
            .unwrap();
        check_dense(&key, &back, &e[&key]);
        // The file is Arrow IPC with 64-byte aligned body: the magic, then the schema message.
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..6], b"ARROW1");
    }
    // A 2-d array exports as one fixed-size-list column, which import refuses (it is nested).
    import(&c, "m", "npy/float64_2d.npy").unwrap();
    c.export("m", dir.path().join("m.arrow"), None).unwrap();
    let err = c
        .import("m2", dir.path().join("m.arrow"), ImportOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, InteropError::UnsupportedColumn { .. }),
        "{err}"
    );
}

#[test]
fn export_replaces_an_existing_file_by_rename_never_in_place() {
    let _g = shared();
    let (dir, c) = new_container();
    c.write_dense::<f64>("x", &[3], &[1.0, 2.0, 3.0]).unwrap();
    let out = dir.path().join("x.npy");
    std::fs::write(&out, b"old").unwrap();
    let old_inode = dafstore_tests::inode(&out);
    c.export("x", &out, None).unwrap();
    assert_ne!(dafstore_tests::inode(&out), old_inode);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("dafstore-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn arrow_view_is_the_map_and_keeps_it_alive_until_dropped() {
    let _g = MAPS.write().unwrap_or_else(|e| e.into_inner());
    let (_d, c) = new_container();
    let values: Vec<f64> = (0..1000).map(f64::from).collect();
    c.write_dense::<f64>("x", &[1000], &values).unwrap();
    let before = cache_stats().live_maps;
    let x = c.open_dense_untyped("x").unwrap();
    let map_ptr = x.as_bytes().as_ptr();
    assert_eq!(cache_stats().live_maps, before + 1);
    let arrow = x.to_arrow().unwrap();
    let prim = arrow.as_primitive::<Float64Type>();
    assert_eq!(
        prim.values().as_ptr().cast::<u8>(),
        map_ptr,
        "no copy: the buffer is the map"
    );
    assert_eq!(prim.values()[999], 999.0);
    drop(x);
    // Only the Arrow array holds the map now (and the array's reference: removal is deferred).
    assert_eq!(
        cache_stats().live_maps,
        before + 1,
        "the Arrow array keeps the map alive"
    );
    assert!(matches!(c.remove("x").unwrap(), Removal::Deferred { .. }));
    assert_eq!(prim.values()[500], 500.0);
    drop(arrow);
    assert_eq!(
        cache_stats().live_maps,
        before,
        "released with the Arrow array"
    );
    // The reference went with it, so the deferred removal ran.
    assert!(c.ls().unwrap().is_empty());
}

#[test]
fn arrow_views_of_2d_float16_bool_and_sparse() {
    let _g = shared();
    let (_d, c) = new_container();
    c.write_dense::<f64>("m", &[2, 3], &[1., 2., 3., 4., 5., 6.])
        .unwrap();
    let m = c.open_dense_untyped("m").unwrap();
    let a = m.to_arrow().unwrap();
    let list = a.as_fixed_size_list();
    assert_eq!((list.len(), list.value_length()), (2, 3));
    let inner = list.values().as_primitive::<Float64Type>();
    assert_eq!(inner.values().as_ptr().cast::<u8>(), m.as_bytes().as_ptr());
    assert_eq!(
        list.value(1)
            .as_primitive::<Float64Type>()
            .values()
            .to_vec(),
        vec![4., 5., 6.]
    );

    c.write_dense::<u8>("t", &[2, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7])
        .unwrap();
    let t = c.open_dense_untyped("t").unwrap().to_arrow().unwrap();
    assert_eq!(t.len(), 2);
    assert!(
        matches!(t.data_type(), DataType::FixedSizeList(f, 2) if matches!(f.data_type(), DataType::FixedSizeList(_, 2)))
    );

    let h: Vec<half::f16> = [0.5f32, -2.0].map(half::f16::from_f32).to_vec();
    c.write_dense::<half::f16>("h", &[2], &h).unwrap();
    let hd = c.open_dense_untyped("h").unwrap();
    let ha = hd.to_arrow().unwrap();
    let hp = ha.as_primitive::<Float16Type>();
    assert_eq!(hp.values().to_vec(), h);
    assert_eq!(hp.values().as_ptr().cast::<u8>(), hd.as_bytes().as_ptr());

    c.write_dense_bool("b", &[3], &[true, false, true]).unwrap();
    let b = c.open_dense_untyped("b").unwrap().to_arrow().unwrap();
    let b = b.as_boolean();
    assert_eq!(
        b.iter().collect::<Vec<_>>(),
        vec![Some(true), Some(false), Some(true)]
    );

    c.write_dense::<f32>("z", &[], &[7.0]).unwrap();
    assert_eq!(
        c.open_dense_untyped("z").unwrap().to_arrow().unwrap().len(),
        1
    );
    c.write_dense::<f32>("e", &[0, 3], &[]).unwrap();
    let e = c.open_dense_untyped("e").unwrap().to_arrow().unwrap();
    assert_eq!(e.len(), 0);

    c.write_sparse::<f64, i32, i64>(
        "s",
        Layout::Columns,
        [2, 3],
        &[1.0, 2.0],
        &[0, 1],
        &[0, 1, 1, 2],
    )
    .unwrap();
    let s = c.open_sparse("s").unwrap();
    let parts = s.to_arrow_buffers().unwrap();
    assert_eq!(parts.layout, Layout::Columns);
    assert_eq!(
        parts
            .data
            .as_primitive::<Float64Type>()
            .values()
            .as_ptr()
            .cast::<u8>(),
        s.data_bytes().as_ptr()
    );
    assert_eq!(
        parts
            .indices
            .as_primitive::<Int32Type>()
            .values()
            .as_ptr()
            .cast::<u8>(),
        s.indices_bytes().as_ptr()
    );
    assert_eq!(
        parts.indptr.as_primitive::<Int64Type>().values().to_vec(),
        vec![0, 1, 1, 2]
    );
    c.write_sparse::<f64, i32, i64>("s0", Layout::Rows, [2, 3], &[], &[], &[0, 0, 0])
        .unwrap();
    let s0 = c.open_sparse("s0").unwrap().to_arrow_buffers().unwrap();
    assert_eq!(
        (s0.data.len(), s0.indices.len(), s0.indptr.len()),
        (0, 0, 3)
    );
}

#[test]
fn a_compressed_buffer_declaring_a_huge_uncompressed_length_is_refused_before_any_allocation() {
    // Found by the import_feather fuzz target: an LZ4 buffer whose 8-byte length prefix promises
    // far more than its batch's rows can hold; arrow-ipc would allocate it before decompressing.
    let _g = shared();
    let (_t, c) = new_container();
    let opts = ImportOptions {
        fill: Some(0.0),
        ..Default::default()
    };
    let err = c
        .import(
            "a",
            fixture("bad/lz4-huge-uncompressed-length.feather"),
            opts,
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("lz4-huge-uncompressed-length.feather"),
        "{msg}"
    );
    assert!(
        msg.contains("declares") && msg.contains("uncompressed"),
        "{msg}"
    );
    assert!(c.info_all().unwrap().is_empty(), "nothing published");
}

#[test]
fn a_compressed_table_whose_buffer_declares_a_huge_uncompressed_length_is_refused_before_allocating(
) {
    // Found by the import_feather fuzz target: a multi-column (table) import let arrow-ipc
    // allocate a buffer's declared uncompressed length (0x70ffffffff bytes) before decompressing.
    let (_t, c) = new_container();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions/import_feather/table-compressed-declared-length.feather");
    let e = c
        .import("t", &file, ImportOptions::default())
        .expect_err("a damaged file");
    assert!(matches!(e, InteropError::Malformed { .. }), "{e:?}");
    assert!(c.ls().unwrap().is_empty(), "nothing published");
}
