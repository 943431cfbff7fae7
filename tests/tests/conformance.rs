//! Conformance of the engine's catalog-free reader (`dafstore::internals::inspect::read_array_files`) with
//! the format's conformance vectors (`format-spec/vectors/*/expected.json`, schema in
//! `format-spec/vectors/README.md`), checked the way `format-spec/reference/test_conformance.py`
//! checks the Python reference reader: the same error class, or the same metadata and the same
//! values decoded from the little-endian bytes (floats exactly, the sign of zero included, NaN by
//! `is_nan`). Also the engine's own files: arrays written by `dafstore-write-fixtures` read back
//! by the spec alone, as `test_roundtrip.py` reads them from Python.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use dafstore::internals::inspect::{
    daf_own_file, read_array_files, read_container_version, ArrayFiles, DafFileKind, InspectError,
};
use dafstore::{ArrayMeta, ArrayName, DType};
use half::f16;
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors")
}

fn vector_ids() -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(vectors_dir())
        .expect("format-spec/vectors")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("expected.json").is_file())
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

fn load_json(path: &Path) -> Value {
    let text = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Reads the array an expectation names (`name`, or `name_hex` for bytes that need not be UTF-8:
/// `read_array_files` takes a `&str`, so a non-UTF-8 name is judged by `ArrayName::from_bytes`).
fn read(root: &Path, exp: &Value) -> Result<ArrayFiles, InspectError> {
    let verify = exp["verify"].as_bool().expect("verify is a bool");
    match exp.get("name_hex").and_then(Value::as_str) {
        Some(hex) => {
            let bytes = decode_hex(hex);
            match std::str::from_utf8(&bytes) {
                Ok(name) => read_array_files(root, name, verify),
                Err(_) => Err(ArrayName::from_bytes(&bytes).expect_err("not UTF-8").into()),
            }
        }
        None => read_array_files(root, exp["name"].as_str().expect("name"), verify),
    }
}

/// A `"check": "daf_file"` vector ([A1]): whether the file `name` is one of daf's own files.
fn check_daf_file(dir: &Path, exp: &Value) -> Result<(), String> {
    let file = exp["name"].as_str().expect("name");
    let got = daf_own_file(dir, file).map(DafFileKind::name);
    check_eq("daf_file", got, exp["daf_file"].as_str())
}

/// A `"check": "container"` vector ([C2]): the container version, or the error class.
fn check_container(dir: &Path, exp: &Value) -> Result<(), String> {
    match (read_container_version(dir), exp["expect"].as_str()) {
        (Ok(v), Some("ok")) => check_eq(
            "container_version",
            vec![v.0, v.1],
            u64s(&exp["container_version"]),
        ),
        (Ok(v), _) => Err(format!(
            "expected {}, engine reads container version {v:?}",
            exp["error_class"]
        )),
        (Err(e), _) if exp["expect"] == "error" && e.class() == exp["error_class"] => Ok(()),
        (Err(e), _) => Err(format!(
            "expected {}, engine refuses with {}: {e}",
            exp["expect"],
            e.class()
        )),
    }
}

fn outcome(result: &Result<ArrayFiles, InspectError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => e.class().into(),
    }
}

/// Whether one element (little-endian bytes of `dtype`) is the JSON value `want`.
fn same_value(dtype: DType, b: &[u8], want: &Value) -> bool {
    /// `round` is `Some` for float16/float32: the rounding of a float64 to that precision.
    fn float(got: f64, want: &Value, round: Option<fn(f64) -> f64>) -> bool {
        match want {
            Value::String(s) => match s.as_str() {
                "nan" => got.is_nan(),
                "inf" => got == f64::INFINITY,
                "-inf" => got == f64::NEG_INFINITY,
                _ => false,
            },
            // Bit for bit (so -0.0 is not 0.0). serde_json's default parser may read a decimal
            // one float64 ulp off; a float16/float32 element is exact in float64, so a value
            // within one ulp of it that rounds to it in its own precision is that exact value.
            Value::Number(n) => n.as_f64().is_some_and(|w| {
                w.to_bits() == got.to_bits()
                    || round.is_some_and(|round| {
                        round(w).to_bits() == got.to_bits()
                            && w.to_bits().abs_diff(got.to_bits()) <= 1
                    })
            }),
            _ => false,
        }
    }
    let arr = |n: usize| -> &[u8] { &b[..n] };
    match dtype {
        DType::Bool => b[0] <= 1 && want.as_bool() == Some(b[0] == 1),
        DType::Int8 => want.as_i64() == Some(i64::from(b[0] as i8)),
        DType::Int16 => {
            want.as_i64() == Some(i64::from(i16::from_le_bytes(arr(2).try_into().unwrap())))
        }
        DType::Int32 => {
            want.as_i64() == Some(i64::from(i32::from_le_bytes(arr(4).try_into().unwrap())))
        }
        DType::Int64 => want.as_i64() == Some(i64::from_le_bytes(arr(8).try_into().unwrap())),
        DType::UInt8 => want.as_u64() == Some(u64::from(b[0])),
        DType::UInt16 => {
            want.as_u64() == Some(u64::from(u16::from_le_bytes(arr(2).try_into().unwrap())))
        }
        DType::UInt32 => {
            want.as_u64() == Some(u64::from(u32::from_le_bytes(arr(4).try_into().unwrap())))
        }
        DType::UInt64 => want.as_u64() == Some(u64::from_le_bytes(arr(8).try_into().unwrap())),
        DType::Float16 => {
            let got = f16::from_le_bytes(arr(2).try_into().unwrap()).to_f64();
            float(got, want, Some(|w| f16::from_f64(w).to_f64()))
        }
        DType::Float32 => {
            let got = f64::from(f32::from_le_bytes(arr(4).try_into().unwrap()));
            float(got, want, Some(|w| f64::from(w as f32)))
        }
        DType::Float64 => float(f64::from_le_bytes(arr(8).try_into().unwrap()), want, None),
    }
}

fn compare_values(what: &str, dtype: DType, bytes: &[u8], want: &Value) -> Result<(), String> {
    let want = want
        .as_array()
        .ok_or_else(|| format!("{what}: not a list"))?;
    let size = dtype.itemsize();
    if bytes.len() != want.len() * size {
        return Err(format!(
            "{what}: {} bytes of {dtype}, expected {} elements",
            bytes.len(),
            want.len()
        ));
    }
    for (i, (chunk, w)) in bytes.chunks_exact(size).zip(want).enumerate() {
        if !same_value(dtype, chunk, w) {
            return Err(format!(
                "{what}[{i}]: bytes {chunk:02x?} ({dtype}), expected {w}"
            ));
        }
    }
    Ok(())
}

fn check_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: engine has {got:?}, expected {want:?}"))
    }
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_u64().expect("u64"))
        .collect()
}

fn crc_map(v: &Value) -> BTreeMap<String, u32> {
    v.as_object()
        .expect("crc32c mapping")
        .iter()
        .map(|(k, x)| {
            let crc = x.as_u64().and_then(|c| u32::try_from(c).ok()).expect("u32");
            (k.clone(), crc)
        })
        .collect()
}

fn compare_ok(exp: &Value, f: &ArrayFiles) -> Result<(), String> {
    check_eq(
        "kind",
        f.meta.kind().name(),
        exp["kind"].as_str().expect("kind"),
    )?;
    let v = u64s(&exp["version"]);
    check_eq("version", [f.version.0, f.version.1].to_vec(), v)?;
    if !matches!(f.meta, ArrayMeta::Table(_)) {
        check_eq("shape", f.meta.shape(), u64s(&exp["shape"]))?;
    }
    match &f.meta {
        // Tables: the metadata as the vector states it (the file itself was read and validated
        // by `read_array_files`). TODO: compare values once the spec's table vectors state them.
        ArrayMeta::Table(t) => {
            check_eq("rows", Some(t.rows), exp["rows"].as_u64())?;
            let strings = |k: &str| -> Vec<String> {
                exp[k]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            check_eq("columns", t.columns.clone(), strings("columns"))?;
            check_eq("types", t.types.clone(), strings("types"))?;
        }
        ArrayMeta::Dense(d) => {
            check_eq(
                "dtype",
                d.dtype.name(),
                exp["dtype"].as_str().expect("dtype"),
            )?;
            compare_values("values", d.dtype, f.bytes(0), &exp["values"])?;
        }
        ArrayMeta::Sparse(s) => {
            let s_str = |k: &str| exp[k].as_str().unwrap_or_default().to_string();
            check_eq(
                "data_dtype",
                s.data_dtype.name().to_string(),
                s_str("data_dtype"),
            )?;
            check_eq(
                "indices_dtype",
                s.indices_dtype.name().to_string(),
                s_str("indices_dtype"),
            )?;
            check_eq(
                "indptr_dtype",
                s.indptr_dtype.name().to_string(),
                s_str("indptr_dtype"),
            )?;
            check_eq("nnz", Some(s.nnz), exp["nnz"].as_u64())?;
            check_eq("layout", s.layout.name().to_string(), s_str("layout"))?;
            compare_values("data", s.data_dtype, f.bytes(0), &exp["data"])?;
            compare_values("indices", s.indices_dtype, f.bytes(1), &exp["indices"])?;
            compare_values("indptr", s.indptr_dtype, f.bytes(2), &exp["indptr"])?;
        }
    }
    check_eq("recorded crc32c", &f.crc32c, &crc_map(&exp["crc32c"]))?;
    if let Some(computed) = exp.get("computed_crc32c") {
        check_eq("computed crc32c", &f.computed_crc32c, &crc_map(computed))?;
    }
    Ok(())
}

/// Checks the engine's result against an expectation; `Err` says how they differ.
fn check(exp: &Value, result: Result<ArrayFiles, InspectError>) -> Result<(), String> {
    let want_error = exp["expect"] == "error";
    let class = exp["error_class"].as_str().unwrap_or_default();
    match result {
        Err(e) if want_error && e.class() == class => Ok(()),
        Err(e) => Err(format!(
            "expected {}, engine refuses with {}: {e}",
            if want_error { class } else { "ok" },
            e.class()
        )),
        Ok(f) => {
            if want_error && exp["ok_allowed"] != Value::Bool(true) {
                return Err(format!("expected {class}, engine reads the array"));
            }
            compare_ok(exp, &f)
        }
    }
}

#[test]
fn every_conformance_vector() {
    let ids = vector_ids();
    assert!(ids.len() >= 100, "only {} vectors found", ids.len());
    let mut failures = Vec::new();
    for id in &ids {
        let dir = vectors_dir().join(id);
        let exp = load_json(&dir.join("expected.json"));
        if exp["check"] == "container" {
            if let Err(why) = check_container(&dir, &exp) {
                failures.push(format!("{id}: {why}"));
            }
            continue;
        }
        if exp["check"] == "daf_file" {
            if let Err(why) = check_daf_file(&dir, &exp) {
                failures.push(format!("{id}: {why}"));
            }
            continue;
        }
        let result = read(&dir, &exp);
        let got = outcome(&result);
        if exp["ok_allowed"] == Value::Bool(true) {
            eprintln!(
                "{id}: a MAY (ok or {}): the engine gives {got}",
                exp["error_class"]
            );
        }
        if let Err(why) = check(&exp, result) {
            failures.push(format!("{id}: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance vectors fail:\n{}",
        failures.len(),
        ids.len(),
        failures.join("\n")
    );
}

/// Arrays written by the engine (every dtype, 0-d, zero-size, n-d, sparse rows and columns with
/// nnz = 0) read back by the spec alone, value by value, with their checksums verified.
#[test]
fn engine_written_arrays_read_back_by_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_dafstore-write-fixtures"))
        .arg(dir.path())
        .status()
        .expect("run dafstore-write-fixtures");
    assert!(status.success(), "dafstore-write-fixtures failed");
    let fixtures = load_json(&dir.path().join("fixtures.json"));
    let root = dir
        .path()
        .join(fixtures["container"].as_str().expect("container"));
    let arrays = fixtures["arrays"].as_array().expect("arrays");
    assert!(arrays.len() >= 20);
    for exp in arrays {
        let name = exp["name"].as_str().expect("name");
        check(exp, read(&root, exp)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The element comparison itself: exact, sign of zero included, NaN only by `is_nan`.
#[test]
fn value_comparison_is_exact() {
    let j = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
    assert!(same_value(
        DType::Float64,
        &(-0.0f64).to_le_bytes(),
        &j("-0.0")
    ));
    assert!(!same_value(
        DType::Float64,
        &0.0f64.to_le_bytes(),
        &j("-0.0")
    ));
    assert!(!same_value(
        DType::Float64,
        &f64::NAN.to_le_bytes(),
        &j("0.0")
    ));
    assert!(same_value(
        DType::Float32,
        &f32::NAN.to_le_bytes(),
        &j("\"nan\"")
    ));
    assert!(!same_value(
        DType::Float32,
        &0.1f32.to_le_bytes(),
        &j("0.1")
    ));
    assert!(same_value(
        DType::Float32,
        &0.1f32.to_le_bytes(),
        &j("0.10000000149011612")
    ));
    assert!(same_value(
        DType::UInt64,
        &u64::MAX.to_le_bytes(),
        &j("18446744073709551615")
    ));
    assert!(!same_value(DType::Int8, &[0xff], &j("255")));
    assert!(!same_value(DType::Bool, &[2], &j("true")));
}

/// Writes generation `values` of the int8 array `x` in `dir` the way [W3] replaces an array:
/// new files under temporary names, the old `x.yaml` unlinked, the data file renamed into place,
/// the new `x.yaml` renamed last. The metadata records the data file's CRC-32C.
fn replace_int8(dir: &Path, values: &[u8]) {
    let yaml = format!(
        "crc32c:\n  array: {}\ndtype: int8\nshape:\n- {}\nversion:\n- 1\n- 1\n",
        dafstore::internals::checksum::crc32c(values),
        values.len()
    );
    fs::write(dir.join("x.array.new"), values).unwrap();
    fs::write(dir.join("x.yaml.new"), yaml).unwrap();
    match fs::remove_file(dir.join("x.yaml")) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("{e}"),
    }
    fs::rename(dir.join("x.array.new"), dir.join("x.array")).unwrap();
    fs::rename(dir.join("x.yaml.new"), dir.join("x.yaml")).unwrap();
}

fn int8_values(f: &ArrayFiles) -> Vec<u8> {
    f.bytes(0).to_vec()
}

#[test]
fn a_replace_between_reading_the_metadata_and_opening_the_files_is_read_again_not_reported_as_a_size_mismatch(
) {
    let dir = tempfile::tempdir().unwrap();
    replace_int8(dir.path(), &[1, 2, 3]);
    let mut hook = |attempt: u32| {
        if attempt == 0 {
            replace_int8(dir.path(), &[4, 5, 6, 7]);
        }
    };
    let f =
        dafstore::internals::inspect::read_array_files_with_hook(dir.path(), "x", true, &mut hook)
            .unwrap_or_else(|e| panic!("{} {e}", e.class()));
    assert_eq!(int8_values(&f), vec![4, 5, 6, 7]);
    assert_eq!(f.meta.shape(), vec![4]);
}

#[test]
fn a_same_size_replace_after_reading_the_metadata_never_mixes_two_generations() {
    let dir = tempfile::tempdir().unwrap();
    replace_int8(dir.path(), &[1, 2, 3]);
    let mut hook = |attempt: u32| {
        if attempt == 0 {
            replace_int8(dir.path(), &[7, 8, 9]);
        }
    };
    // Without verify: the recorded checksum must still be the one of the bytes returned.
    let f =
        dafstore::internals::inspect::read_array_files_with_hook(dir.path(), "x", false, &mut hook)
            .unwrap_or_else(|e| panic!("{} {e}", e.class()));
    assert_eq!(int8_values(&f), vec![7, 8, 9]);
    assert_eq!(
        f.crc32c.get("array"),
        Some(&dafstore::internals::checksum::crc32c(&[7, 8, 9]))
    );
}

#[test]
fn a_reader_whose_array_is_replaced_on_every_attempt_gives_up_with_busy_after_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    replace_int8(dir.path(), &[1, 2, 3]);
    let mut attempts = 0u32;
    let mut hook = |_attempt: u32| {
        attempts += 1;
        replace_int8(dir.path(), &[1, 2, 3]);
    };
    let err =
        dafstore::internals::inspect::read_array_files_with_hook(dir.path(), "x", false, &mut hook)
            .err()
            .expect("replaced on every attempt");
    assert_eq!(err.class(), "busy", "{err}");
    assert_eq!(attempts, dafstore::internals::inspect::MAX_READ_ATTEMPTS);
}

#[test]
fn an_array_removed_while_it_is_read_is_missing_not_a_missing_data_file() {
    let dir = tempfile::tempdir().unwrap();
    replace_int8(dir.path(), &[1, 2, 3]);
    let mut hook = |attempt: u32| {
        if attempt == 0 {
            // [W8]: the metadata file first, then the data files.
            fs::remove_file(dir.path().join("x.yaml")).unwrap();
            fs::remove_file(dir.path().join("x.array")).unwrap();
        }
    };
    let err =
        dafstore::internals::inspect::read_array_files_with_hook(dir.path(), "x", false, &mut hook)
            .err()
            .expect("removed");
    assert_eq!(err.class(), "missing", "{err}");
}

/// [N7]: no directory link is followed, not even an absolute one that resolves inside the
/// container (no static vector can hold an absolute link).
#[test]
fn an_absolute_directory_link_is_refused_inside_the_container_and_outside() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("real")).unwrap();
    replace_int8(&dir.path().join("real"), &[5, 6]);
    let f = read_array_files(dir.path(), "real/x", false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(int8_values(&f), vec![5, 6]);
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("d")).unwrap();
    let err = read_array_files(dir.path(), "d/x", false)
        .err()
        .expect("a link inside the container");
    assert_eq!(err.class(), "missing_file", "{err}");
    std::os::unix::fs::symlink(vectors_dir().join("dtype-int8"), dir.path().join("out")).unwrap();
    let err = read_array_files(dir.path(), "out/x", false)
        .err()
        .expect("outside the container");
    assert_eq!(err.class(), "missing_file", "{err}");
}

/// [R2] and [W3]: between steps 2 (old `x.yaml` unlinked) and 4 (new `x.yaml` renamed in) a
/// reader of a container finds no `x.yaml`; it looks again under the shared stripe lock, which
/// the writer holds exclusively until step 6, so it reads the new generation, not `missing`.
#[test]
fn a_publish_between_unlink_and_rename_is_waited_for_under_the_shared_stripe_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join(".dafstore/locks");
    fs::create_dir_all(&locks).unwrap();
    let stripe = locks.join(format!(
        "{:02}.lock",
        dafstore::internals::checksum::crc32c(b"x") % dafstore::internals::LOCK_STRIPES
    ));
    fs::write(&stripe, b"").unwrap();
    replace_int8(dir.path(), &[1, 2, 3]);
    let writer = fs::File::open(&stripe).unwrap();
    writer.lock().unwrap(); // steps 1-6 run under the exclusive stripe
    fs::remove_file(dir.path().join("x.yaml")).unwrap(); // step 2
    fs::write(dir.path().join("x.array"), [7u8, 8, 9, 10]).unwrap(); // step 3 (a new file)
    let mut writer = Some(writer);
    let mut hook = |event: u32| {
        if event == dafstore::internals::inspect::HOOK_ABSENT {
            fs::write(
                dir.path().join("x.yaml.new"),
                "dtype: int8\nshape:\n- 4\nversion:\n- 1\n- 1\n",
            )
            .unwrap();
            fs::rename(dir.path().join("x.yaml.new"), dir.path().join("x.yaml")).unwrap(); // step 4
            drop(writer.take()); // step 6 done: the stripe is released
        }
    };
    let f =
        dafstore::internals::inspect::read_array_files_with_hook(dir.path(), "x", false, &mut hook)
            .unwrap_or_else(|e| panic!("{} {e}", e.class()));
    assert_eq!(int8_values(&f), vec![7, 8, 9, 10]);
}
