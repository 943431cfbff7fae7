//! Writes, with the engine, a fixed set of arrays for the Rust→Python round trip
//! (`format-spec/reference/test_roundtrip.py`) and its Rust twin (`tests/tests/conformance.rs`).
//!
//! Usage: `dafstore-write-fixtures OUT` creates the container `OUT/container` (dense arrays of
//! every dtype, 0-d, zero-size, 1-d to 3-d; sparse arrays by rows and by columns, with `nnz = 0`
//! and empty rows) and writes `OUT/fixtures.json`:
//! `{"container": "container", "arrays": [...]}`, each entry in the format of a conformance
//! vector's `expected.json` (format-spec/vectors/README.md) with `verify: true`, so the same
//! checker reads both. Errors go to stderr with exit status 2.

use std::path::Path;
use std::process::ExitCode;

use dafstore::internals::checksum::crc32c;
use dafstore::{Bool8, Container, Element, IndexElement, Layout};
use half::f16;
use serde_json::{json, Value};

/// An element that can be described in fixtures.json.
trait Fixture: Element + Copy {
    /// The JSON value (floats: numbers, or "nan", "inf", "-inf").
    fn json(self) -> Value;
    /// The little-endian bytes.
    fn le(self) -> Vec<u8>;
}

macro_rules! fixture_int {
    ($($t:ty),*) => {
        $(impl Fixture for $t {
            fn json(self) -> Value {
                json!(self)
            }
            fn le(self) -> Vec<u8> {
                self.to_le_bytes().to_vec()
            }
        })*
    };
}

fixture_int!(i8, i16, i32, i64, u8, u16, u32, u64);

fn float_json(v: f64) -> Value {
    if v.is_nan() {
        json!("nan")
    } else if v == f64::INFINITY {
        json!("inf")
    } else if v == f64::NEG_INFINITY {
        json!("-inf")
    } else {
        json!(v)
    }
}

impl Fixture for Bool8 {
    fn json(self) -> Value {
        json!(self.0 == 1)
    }
    fn le(self) -> Vec<u8> {
        vec![self.0]
    }
}

impl Fixture for f16 {
    fn json(self) -> Value {
        float_json(self.to_f64())
    }
    fn le(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

impl Fixture for f32 {
    fn json(self) -> Value {
        float_json(f64::from(self))
    }
    fn le(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

impl Fixture for f64 {
    fn json(self) -> Value {
        float_json(self)
    }
    fn le(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

fn le_all<T: Fixture>(values: &[T]) -> Vec<u8> {
    values.iter().flat_map(|v| v.le()).collect()
}

fn json_all<T: Fixture>(values: &[T]) -> Value {
    Value::Array(values.iter().map(|v| v.json()).collect())
}

struct Fixtures {
    container: Container,
    arrays: Vec<Value>,
}

impl Fixtures {
    fn dense<T: Fixture>(&mut self, name: &str, shape: &[u64], values: &[T]) -> Result<(), String> {
        self.container
            .write_dense(name, shape, values)
            .map_err(|e| format!("write_dense {name}: {e}"))?;
        let crc = crc32c(&le_all(values));
        self.arrays.push(json!({
            "description": "written by Container::write_dense",
            "name": name,
            "verify": true,
            "rules": [],
            "expect": "ok",
            "kind": "dense",
            "version": [1, 1],
            "dtype": T::DTYPE.name(),
            "shape": shape,
            "values": json_all(values),
            "crc32c": {"array": crc},
            "computed_crc32c": {"array": crc},
        }));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn sparse<T: Fixture, I: Fixture + IndexElement, P: Fixture + IndexElement>(
        &mut self,
        name: &str,
        layout: Layout,
        shape: [u64; 2],
        data: &[T],
        indices: &[I],
        indptr: &[P],
    ) -> Result<(), String> {
        self.container
            .write_sparse(name, layout, shape, data, indices, indptr)
            .map_err(|e| format!("write_sparse {name}: {e}"))?;
        let crcs = json!({
            "data": crc32c(&le_all(data)),
            "indices": crc32c(&le_all(indices)),
            "indptr": crc32c(&le_all(indptr)),
        });
        self.arrays.push(json!({
            "description": "written by Container::write_sparse",
            "name": name,
            "verify": true,
            "rules": [],
            "expect": "ok",
            "kind": "sparse",
            "version": [1, 1],
            "data_dtype": T::DTYPE.name(),
            "indices_dtype": I::DTYPE.name(),
            "indptr_dtype": P::DTYPE.name(),
            "shape": shape,
            "nnz": data.len(),
            "layout": layout.name(),
            "data": json_all(data),
            "indices": json_all(indices),
            "indptr": json_all(indptr),
            "crc32c": crcs,
            "computed_crc32c": crcs,
        }));
        Ok(())
    }
}

fn write_all(f: &mut Fixtures) -> Result<(), String> {
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    // Every dtype, 1-d.
    f.dense(
        "dtypes/bool",
        &[4],
        &[Bool8(0), Bool8(1), Bool8(1), Bool8(0)],
    )?;
    f.dense("dtypes/int8", &[3], &[i8::MIN, -1, i8::MAX])?;
    f.dense("dtypes/int16", &[3], &[i16::MIN, 256, i16::MAX])?;
    f.dense("dtypes/int32", &[3], &[i32::MIN, 65536, i32::MAX])?;
    f.dense("dtypes/int64", &[3], &[i64::MIN, 1 << 40, i64::MAX])?;
    f.dense("dtypes/uint8", &[3], &[0u8, 128, u8::MAX])?;
    f.dense("dtypes/uint16", &[3], &[0u16, 256, u16::MAX])?;
    f.dense("dtypes/uint32", &[3], &[0u32, 65536, u32::MAX])?;
    f.dense("dtypes/uint64", &[3], &[0u64, 1 << 40, u64::MAX])?;
    let halfs: Vec<f16> = [0.0, -0.0, 1.5, -65504.0, 2f64.powi(-24), inf, nan]
        .iter()
        .map(|&v| f16::from_f64(v))
        .collect();
    f.dense("dtypes/float16", &[7], &halfs)?;
    f.dense(
        "dtypes/float32",
        &[8],
        &[
            0.1f32,
            -0.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-45,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ],
    )?;
    f.dense(
        "dtypes/float64",
        &[8],
        &[
            0.1,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            std::f64::consts::PI,
            -inf,
            nan,
        ],
    )?;
    // Shapes.
    f.dense::<f64>("shapes/zero_d", &[], &[-3.5])?;
    f.dense::<f32>("shapes/zero_size_1d", &[0], &[])?;
    f.dense::<i32>("shapes/zero_size_3d", &[2, 0, 3], &[])?;
    f.dense(
        "shapes/two_d",
        &[2, 3],
        &[0.5, -1.0, 2.25, 1e-300, 1e300, -0.0],
    )?;
    let three_d: Vec<u16> = (0..24).map(|i| i * 2731).collect();
    f.dense("shapes/three_d", &[2, 3, 4], &three_d)?;
    f.dense("a/b/c", &[1], &[42i32])?;
    // Sparse, by rows and by columns, with an empty row/column and with nnz = 0.
    f.sparse::<f64, i32, i64>(
        "sparse/rows",
        Layout::Rows,
        [3, 4],
        &[1.5, -2.0, 4.25],
        &[1, 3, 0],
        &[0, 2, 2, 3],
    )?;
    f.sparse::<f32, i64, i32>(
        "sparse/columns",
        Layout::Columns,
        [3, 4],
        &[1.0, f32::NAN, 3.0],
        &[0, 2, 1],
        &[0, 2, 2, 3, 3],
    )?;
    f.sparse::<u8, u32, u64>(
        "sparse/rows_nnz0",
        Layout::Rows,
        [2, 5],
        &[],
        &[],
        &[0, 0, 0],
    )?;
    f.sparse::<i16, i32, i32>(
        "sparse/columns_nnz0",
        Layout::Columns,
        [4, 3],
        &[],
        &[],
        &[0, 0, 0, 0],
    )?;
    f.sparse::<Bool8, u64, u32>(
        "sparse/bool_rows",
        Layout::Rows,
        [2, 2],
        &[Bool8(1), Bool8(0)],
        &[1, 0],
        &[0, 1, 2],
    )?;
    f.sparse::<f16, i32, i32>(
        "sparse/float16_columns",
        Layout::Columns,
        [2, 3],
        &[f16::from_f32(0.5), f16::from_f32(-1.0)],
        &[1, 0],
        &[0, 0, 1, 2],
    )?;
    Ok(())
}

fn run(out: &Path) -> Result<(), String> {
    let container = Container::create(out.join("container")).map_err(|e| e.to_string())?;
    let mut f = Fixtures {
        container,
        arrays: Vec::new(),
    };
    write_all(&mut f)?;
    let doc = json!({"container": "container", "arrays": f.arrays});
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())? + "\n";
    std::fs::write(out.join("fixtures.json"), text).map_err(|e| format!("fixtures.json: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: dafstore-write-fixtures OUT");
        return ExitCode::from(2);
    };
    match run(Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dafstore-write-fixtures: {e}");
            ExitCode::from(2)
        }
    }
}
