//! Round trips: every dtype and shape written (by slice, by bool slice, by create + fill +
//! publish, with reserved space or holes) reads back with the same dtype, shape and element bytes,
//! and every sparse array (rows or columns, any index dtypes, empty rows, nnz = 0) reads back with
//! the same shape, nnz, layout, data, indices and indptr.

use std::fmt::Debug;

use dafstore::{
    Allocation, Array, Bool8, Container, CreateOptions, DType, Element, IndexElement, IndexSlice,
    Layout, OpenError, SparseArray,
};
use dafstore_tests::new_container;
use dafstore_tests::{le_bytes, ToLeBytes};
use half::f16;

/// The shapes every dtype is tried with: 0-d, 1-d, 2-d, 3-d, and zero-size.
const SHAPES: &[&[u64]] = &[
    &[],
    &[1],
    &[7],
    &[2, 3],
    &[2, 3, 4],
    &[0],
    &[3, 0],
    &[0, 5, 2],
];

fn product(shape: &[u64]) -> usize {
    shape.iter().product::<u64>() as usize
}

macro_rules! int_values {
    ($t:ty) => {
        |n: usize| -> Vec<$t> {
            (0..n)
                .map(|i| match i {
                    0 => <$t>::MIN,
                    1 => <$t>::MAX,
                    _ => (i as i64 * 7919 - 30_000) as $t,
                })
                .collect()
        }
    };
}

fn f64_values(n: usize) -> Vec<f64> {
    let special = [
        f64::MIN,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        -0.0,
        5e-324,
    ];
    (0..n)
        .map(|i| special.get(i).copied().unwrap_or(i as f64 * -1.25))
        .collect()
}

fn f32_values(n: usize) -> Vec<f32> {
    let special = [
        f32::MIN,
        f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
    ];
    (0..n)
        .map(|i| special.get(i).copied().unwrap_or(i as f32 * 0.75))
        .collect()
}

fn f16_values(n: usize) -> Vec<f16> {
    let special = [f16::MIN, f16::MAX, f16::INFINITY, f16::NEG_INFINITY];
    (0..n)
        .map(|i| {
            special
                .get(i)
                .copied()
                .unwrap_or(f16::from_f32(i as f32 * 0.5))
        })
        .collect()
}

fn bool8_values(n: usize) -> Vec<Bool8> {
    (0..n).map(|i| Bool8::from(i % 3 == 1)).collect()
}

/// Checks an opened dense array against what was written.
fn check_dense<T: Element + PartialEq + Debug + ToLeBytes>(
    c: &Container,
    name: &str,
    shape: &[u64],
    data: &[T],
) {
    let a = c
        .open_dense::<T>(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(a.shape(), shape, "{name}");
    assert_eq!(a.as_slice(), data, "{name}");
    let u = a.untyped();
    assert_eq!(u.dtype(), T::DTYPE, "{name}");
    assert_eq!(u.len(), data.len() as u64, "{name}");
    assert_eq!(u.is_empty(), data.is_empty(), "{name}");
    assert_eq!(u.name(), name);
    assert_eq!(u.as_bytes(), le_bytes(data).as_slice(), "{name}");
    let path = c.root().join(format!("{name}.array"));
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        len,
        (data.len() * T::DTYPE.itemsize()) as u64,
        "{}",
        path.display()
    );
    // The untyped and the generic opens agree.
    match c.open_array(name).unwrap() {
        Array::Dense(d) => {
            assert_eq!(d.shape(), shape);
            assert_eq!(d.dtype(), T::DTYPE);
            assert_eq!(d.as_slice::<T>().unwrap(), data);
        }
        other => panic!("{name} opened as {}", other.kind()),
    }
}

fn roundtrip_all_shapes<T: Element + PartialEq + Debug + ToLeBytes>(
    c: &Container,
    values: impl Fn(usize) -> Vec<T>,
) {
    for (i, shape) in SHAPES.iter().enumerate() {
        let name = format!("{}/s{i}", T::DTYPE);
        let data = values(product(shape));
        c.write_dense::<T>(&name, shape, &data)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_dense(c, &name, shape, &data);
    }
}

#[test]
fn every_dtype_and_shape_round_trips_through_write_dense() {
    let (_d, c) = new_container();
    roundtrip_all_shapes(&c, bool8_values);
    roundtrip_all_shapes(&c, int_values!(i8));
    roundtrip_all_shapes(&c, int_values!(i16));
    roundtrip_all_shapes(&c, int_values!(i32));
    roundtrip_all_shapes(&c, int_values!(i64));
    roundtrip_all_shapes(&c, int_values!(u8));
    roundtrip_all_shapes(&c, int_values!(u16));
    roundtrip_all_shapes(&c, int_values!(u32));
    roundtrip_all_shapes(&c, int_values!(u64));
    roundtrip_all_shapes(&c, f16_values);
    roundtrip_all_shapes(&c, f32_values);
    roundtrip_all_shapes(&c, f64_values);
    let mut names = c.ls().unwrap();
    names.sort();
    assert_eq!(names.len(), 12 * SHAPES.len());
    for d in DType::ALL {
        for i in 0..SHAPES.len() {
            assert!(names.contains(&format!("{d}/s{i}")), "{d}/s{i} not listed");
        }
    }
}

#[test]
fn nan_payloads_and_negative_zero_keep_their_bits() {
    let (_d, c) = new_container();
    let nan64 = f64::from_bits(0x7ff8_dead_beef_0001);
    c.write_dense::<f64>("f64", &[3], &[nan64, -0.0, f64::NAN])
        .unwrap();
    let a = c.open_dense::<f64>("f64").unwrap();
    let bits: Vec<u64> = a.iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        bits,
        [nan64.to_bits(), (-0.0f64).to_bits(), f64::NAN.to_bits()]
    );
    let nan32 = f32::from_bits(0x7fc0_1234);
    c.write_dense::<f32>("f32", &[2], &[nan32, -0.0]).unwrap();
    let a = c.open_dense::<f32>("f32").unwrap();
    assert_eq!(a[0].to_bits(), nan32.to_bits());
    assert_eq!(a[1].to_bits(), (-0.0f32).to_bits());
    let nan16 = f16::from_bits(0x7e01);
    c.write_dense::<f16>("f16", &[2], &[nan16, f16::NEG_ZERO])
        .unwrap();
    let a = c.open_dense::<f16>("f16").unwrap();
    assert_eq!(a[0].to_bits(), 0x7e01);
    assert_eq!(a[1].to_bits(), f16::NEG_ZERO.to_bits());
}

#[test]
fn bool_arrays_round_trip_through_write_dense_bool() {
    let (_d, c) = new_container();
    let cases: &[(&[u64], Vec<bool>)] = &[
        (&[], vec![true]),
        (&[5], vec![true, false, false, true, true]),
        (&[2, 2], vec![false, true, true, false]),
        (&[2, 1, 3], vec![true; 6]),
        (&[0], vec![]),
        (&[4, 0], vec![]),
    ];
    for (i, (shape, values)) in cases.iter().enumerate() {
        let name = format!("b{i}");
        c.write_dense_bool(&name, shape, values).unwrap();
        let a = c.open_dense::<Bool8>(&name).unwrap();
        assert_eq!(a.shape(), *shape);
        assert_eq!(a.untyped().dtype(), DType::Bool);
        let back: Vec<bool> = a.iter().map(|b| b.try_get().unwrap()).collect();
        assert_eq!(&back, values, "{name}");
        let bytes: Vec<u8> = values.iter().map(|&b| u8::from(b)).collect();
        assert_eq!(a.untyped().as_bytes(), bytes.as_slice());
    }
}

#[test]
fn bytes_written_by_dtype_round_trip_for_every_dtype() {
    let (_d, c) = new_container();
    for d in DType::ALL {
        let n = 5;
        // Bool bytes must be 0 or 1; any byte pattern is valid for the other dtypes.
        let bytes: Vec<u8> = (0..n * d.itemsize())
            .map(|i| {
                if d == DType::Bool {
                    (i % 2) as u8
                } else {
                    (i * 37 + 11) as u8
                }
            })
            .collect();
        let name = format!("raw_{d}");
        c.write_dense_bytes(&name, d, &[n as u64], &bytes).unwrap();
        let a = c.open_dense_untyped(&name).unwrap();
        assert_eq!(a.dtype(), d);
        assert_eq!(a.shape(), &[n as u64]);
        assert_eq!(a.as_bytes(), bytes.as_slice(), "{d}");
    }
}

/// Fills a writer created with `opts` and publishes it; checks nothing is visible before publish.
fn roundtrip_via_writer<T: Element + PartialEq + Debug + ToLeBytes>(
    c: &Container,
    values: impl Fn(usize) -> Vec<T>,
    allocation: Allocation,
) {
    for (i, shape) in SHAPES.iter().enumerate() {
        let name = format!("w{allocation:?}/{}/s{i}", T::DTYPE);
        let data = values(product(shape));
        let mut w = c
            .create_dense_with(
                &name,
                T::DTYPE,
                shape,
                CreateOptions {
                    allocation,
                    ..CreateOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(w.name(), name);
        assert_eq!(w.shape(), *shape);
        assert_eq!(w.dtype(), T::DTYPE);
        let slice = w.as_mut_slice::<T>().unwrap();
        assert_eq!(slice.len(), data.len());
        // A new array is zero-filled.
        assert!(
            w.as_bytes_mut().iter().all(|&b| b == 0),
            "{name} not zeroed"
        );
        w.as_mut_slice::<T>().unwrap().copy_from_slice(&data);
        // Not visible until published.
        assert!(!c.ls().unwrap().contains(&name));
        assert!(matches!(
            c.open_array(&name),
            Err(OpenError::NotFound { .. })
        ));
        assert!(!c.root().join(format!("{name}.yaml")).exists());
        w.publish().unwrap_or_else(|e| panic!("{name}: {e}"));
        check_dense(c, &name, shape, &data);
    }
}

fn roundtrip_writer_all_dtypes(allocation: Allocation) {
    let (_d, c) = new_container();
    roundtrip_via_writer(&c, bool8_values, allocation);
    roundtrip_via_writer(&c, int_values!(i8), allocation);
    roundtrip_via_writer(&c, int_values!(i16), allocation);
    roundtrip_via_writer(&c, int_values!(i32), allocation);
    roundtrip_via_writer(&c, int_values!(i64), allocation);
    roundtrip_via_writer(&c, int_values!(u8), allocation);
    roundtrip_via_writer(&c, int_values!(u16), allocation);
    roundtrip_via_writer(&c, int_values!(u32), allocation);
    roundtrip_via_writer(&c, int_values!(u64), allocation);
    roundtrip_via_writer(&c, f16_values, allocation);
    roundtrip_via_writer(&c, f32_values, allocation);
    roundtrip_via_writer(&c, f64_values, allocation);
}

#[test]
fn create_dense_fill_publish_round_trips_with_reserved_space() {
    roundtrip_writer_all_dtypes(Allocation::Reserve);
}

#[test]
fn create_dense_with_holes_round_trips() {
    roundtrip_writer_all_dtypes(Allocation::Holes);
}

#[test]
fn create_dense_typed_shortcut_round_trips() {
    let (_d, c) = new_container();
    let mut w = c.create_dense::<i64>("m", &[3, 2]).unwrap();
    assert_eq!(w.dtype(), DType::Int64);
    for (i, v) in w.as_mut_slice::<i64>().unwrap().iter_mut().enumerate() {
        *v = -(i as i64) * 1_000_000_007;
    }
    w.publish().unwrap();
    let a = c.open_dense::<i64>("m").unwrap();
    assert_eq!(a.shape(), &[3, 2]);
    let expected: Vec<i64> = (0..6).map(|i| -i * 1_000_000_007).collect();
    assert_eq!(a.as_slice(), expected.as_slice());
}

#[test]
fn a_discarded_writer_publishes_nothing() {
    let (_d, c) = new_container();
    let mut w = c.create_dense::<f32>("gone", &[4]).unwrap();
    w.as_mut_slice::<f32>().unwrap().fill(1.0);
    w.discard();
    let w2 = c.create_dense::<f32>("dropped", &[4]).unwrap();
    drop(w2);
    assert!(c.ls().unwrap().is_empty());
    assert!(matches!(
        c.open_array("gone"),
        Err(OpenError::NotFound { .. })
    ));
    assert!(dafstore_tests::listing(c.root()).is_empty());
}

/// Index values of an `IndexSlice`, with its dtype.
fn index_values(s: IndexSlice<'_>) -> (DType, Vec<u64>) {
    (s.dtype(), (0..s.len()).map(|i| s.get(i).unwrap()).collect())
}

fn convert<I: TryFrom<u64>>(values: &[u64]) -> Vec<I>
where
    I::Error: Debug,
{
    values.iter().map(|&v| I::try_from(v).unwrap()).collect()
}

/// Writes a sparse array with index dtypes `I`, `P`, reads it back and checks everything.
#[allow(clippy::too_many_arguments)]
fn sparse_case<T, I, P>(
    c: &Container,
    name: &str,
    layout: Layout,
    shape: [u64; 2],
    data: &[T],
    indices: &[u64],
    indptr: &[u64],
) -> SparseArray
where
    T: Element + PartialEq + Debug + ToLeBytes,
    I: IndexElement + TryFrom<u64>,
    P: IndexElement + TryFrom<u64>,
    <I as TryFrom<u64>>::Error: Debug,
    <P as TryFrom<u64>>::Error: Debug,
{
    let idx: Vec<I> = convert(indices);
    let ptr: Vec<P> = convert(indptr);
    c.write_sparse::<T, I, P>(name, layout, shape, data, &idx, &ptr)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let s = c.open_sparse(name).unwrap();
    assert_eq!(s.name(), name);
    assert_eq!(s.shape(), shape, "{name}");
    assert_eq!(s.nnz(), data.len() as u64, "{name}");
    assert_eq!(s.layout(), layout, "{name}");
    assert_eq!(s.data_dtype(), T::DTYPE, "{name}");
    assert_eq!(s.data::<T>().unwrap(), data, "{name}");
    assert_eq!(s.data_bytes(), le_bytes(data).as_slice(), "{name}");
    assert_eq!(
        index_values(s.indices()),
        (I::DTYPE, indices.to_vec()),
        "{name}"
    );
    assert_eq!(
        index_values(s.indptr()),
        (P::DTYPE, indptr.to_vec()),
        "{name}"
    );
    let m = s.sparse_meta();
    assert_eq!(
        (m.indices_dtype, m.indptr_dtype, m.nnz, m.shape, m.layout),
        (I::DTYPE, P::DTYPE, data.len() as u64, shape, layout)
    );
    assert_eq!(s.indices_bytes().len(), indices.len() * I::DTYPE.itemsize());
    assert_eq!(s.indptr_bytes().len(), indptr.len() * P::DTYPE.itemsize());
    s.validate().unwrap();
    // major_range follows indptr, and is None past the last major slot.
    let major = indptr.len() - 1;
    for i in 0..major {
        assert_eq!(
            s.major_range(i as u64),
            Some(indptr[i] as usize..indptr[i + 1] as usize),
            "{name} slot {i}"
        );
    }
    assert_eq!(s.major_range(major as u64), None, "{name}");
    assert_eq!(s.major_range(u64::MAX), None, "{name}");
    match c.open_array(name).unwrap() {
        Array::Sparse(a) => assert_eq!(a.nnz(), data.len() as u64),
        other => panic!("{name} opened as {}", other.kind()),
    }
    s
}

/// The 3x4 matrix used by the sparse tests (row 1 is empty).
const MATRIX: [[f64; 4]; 3] = [[0.0, 1.0, 0.0, 2.0], [0.0; 4], [3.0, 0.0, 4.0, 5.0]];
const CSR: (&[f64], &[u64], &[u64]) = (&[1.0, 2.0, 3.0, 4.0, 5.0], &[1, 3, 0, 2, 3], &[0, 2, 2, 5]);
const CSC: (&[f64], &[u64], &[u64]) = (
    &[3.0, 1.0, 4.0, 2.0, 5.0],
    &[2, 0, 2, 0, 2],
    &[0, 1, 2, 3, 5],
);

/// Rebuilds the dense matrix from a CSR or CSC array, using major_range.
fn densify(s: &SparseArray) -> Vec<Vec<f64>> {
    let [rows, cols] = s.shape();
    let mut m = vec![vec![0.0; cols as usize]; rows as usize];
    let data = s.data::<f64>().unwrap();
    let major = match s.layout() {
        Layout::Rows => rows,
        Layout::Columns => cols,
    };
    for i in 0..major {
        for k in s.major_range(i).unwrap() {
            let j = s.indices().get(k).unwrap();
            let (r, c) = match s.layout() {
                Layout::Rows => (i, j),
                Layout::Columns => (j, i),
            };
            m[r as usize][c as usize] = data[k];
        }
    }
    m
}

fn layouts_with<I, P>(c: &Container, tag: &str)
where
    I: IndexElement + TryFrom<u64>,
    P: IndexElement + TryFrom<u64>,
    <I as TryFrom<u64>>::Error: Debug,
    <P as TryFrom<u64>>::Error: Debug,
{
    let s = sparse_case::<f64, I, P>(
        c,
        &format!("{tag}/csr"),
        Layout::Rows,
        [3, 4],
        CSR.0,
        CSR.1,
        CSR.2,
    );
    assert_eq!(densify(&s), MATRIX.map(Vec::from).to_vec());
    assert_eq!(s.major_range(1), Some(2..2), "empty row");
    let s = sparse_case::<f64, I, P>(
        c,
        &format!("{tag}/csc"),
        Layout::Columns,
        [3, 4],
        CSC.0,
        CSC.1,
        CSC.2,
    );
    assert_eq!(densify(&s), MATRIX.map(Vec::from).to_vec());
    // nnz = 0 with rows present, and with both dimensions zero.
    sparse_case::<f64, I, P>(
        c,
        &format!("{tag}/empty_rows"),
        Layout::Rows,
        [3, 4],
        &[],
        &[],
        &[0, 0, 0, 0],
    );
    sparse_case::<f64, I, P>(
        c,
        &format!("{tag}/empty_cols"),
        Layout::Columns,
        [3, 4],
        &[],
        &[],
        &[0, 0, 0, 0, 0],
    );
    sparse_case::<f64, I, P>(
        c,
        &format!("{tag}/zero"),
        Layout::Rows,
        [0, 0],
        &[],
        &[],
        &[0],
    );
}

#[test]
fn sparse_round_trips_with_every_index_dtype_pair_and_both_layouts() {
    let (_d, c) = new_container();
    layouts_with::<i32, i32>(&c, "i32_i32");
    layouts_with::<i64, i64>(&c, "i64_i64");
    layouts_with::<u32, u32>(&c, "u32_u32");
    layouts_with::<u64, u64>(&c, "u64_u64");
    layouts_with::<i32, i64>(&c, "i32_i64");
    layouts_with::<u32, u64>(&c, "u32_u64");
    layouts_with::<i64, i32>(&c, "i64_i32");
    layouts_with::<u64, u32>(&c, "u64_u32");
}

#[test]
fn sparse_zero_dimensions_and_every_data_dtype_round_trip() {
    let (_d, c) = new_container();
    // A zero dimension: rows with no columns, columns with no rows.
    sparse_case::<f32, i32, i64>(&c, "no_cols", Layout::Rows, [4, 0], &[], &[], &[0; 5]);
    sparse_case::<f32, i32, i64>(&c, "no_rows", Layout::Rows, [0, 4], &[], &[], &[0]);
    sparse_case::<f32, i32, i64>(
        &c,
        "csc_no_rows",
        Layout::Columns,
        [0, 2],
        &[],
        &[],
        &[0; 3],
    );
    // Every data dtype, same structure (2x3, rows: row 0 has columns 0 and 2, row 1 column 1).
    let (idx, ptr): (&[u64], &[u64]) = (&[0, 2, 1], &[0, 2, 3]);
    let shape = [2, 3];
    sparse_case::<Bool8, i32, i32>(
        &c,
        "d/bool",
        Layout::Rows,
        shape,
        &bool8_values(3),
        idx,
        ptr,
    );
    sparse_case::<i8, i32, i32>(
        &c,
        "d/i8",
        Layout::Rows,
        shape,
        &int_values!(i8)(3),
        idx,
        ptr,
    );
    sparse_case::<i16, i32, i32>(
        &c,
        "d/i16",
        Layout::Rows,
        shape,
        &int_values!(i16)(3),
        idx,
        ptr,
    );
    sparse_case::<i32, i32, i32>(
        &c,
        "d/i32",
        Layout::Rows,
        shape,
        &int_values!(i32)(3),
        idx,
        ptr,
    );
    sparse_case::<i64, i32, i32>(
        &c,
        "d/i64",
        Layout::Rows,
        shape,
        &int_values!(i64)(3),
        idx,
        ptr,
    );
    sparse_case::<u8, i32, i32>(
        &c,
        "d/u8",
        Layout::Rows,
        shape,
        &int_values!(u8)(3),
        idx,
        ptr,
    );
    sparse_case::<u16, i32, i32>(
        &c,
        "d/u16",
        Layout::Rows,
        shape,
        &int_values!(u16)(3),
        idx,
        ptr,
    );
    sparse_case::<u32, i32, i32>(
        &c,
        "d/u32",
        Layout::Rows,
        shape,
        &int_values!(u32)(3),
        idx,
        ptr,
    );
    sparse_case::<u64, i32, i32>(
        &c,
        "d/u64",
        Layout::Rows,
        shape,
        &int_values!(u64)(3),
        idx,
        ptr,
    );
    sparse_case::<f16, i32, i32>(&c, "d/f16", Layout::Rows, shape, &f16_values(3), idx, ptr);
    sparse_case::<f32, i32, i32>(&c, "d/f32", Layout::Rows, shape, &f32_values(3), idx, ptr);
    sparse_case::<f64, i32, i32>(&c, "d/f64", Layout::Rows, shape, &f64_values(3), idx, ptr);
}

#[test]
fn sparse_index_extremes_round_trip() {
    let (_d, c) = new_container();
    // The largest index each dtype can hold, in a matrix exactly that wide.
    let max_i32 = i32::MAX as u64;
    sparse_case::<f32, i32, i32>(
        &c,
        "wide_i32",
        Layout::Rows,
        [1, max_i32 + 1],
        &[1.0, 2.0],
        &[0, max_i32],
        &[0, 2],
    );
    let max_u32 = u32::MAX as u64;
    sparse_case::<f32, u32, u32>(
        &c,
        "wide_u32",
        Layout::Rows,
        [1, max_u32 + 1],
        &[1.0],
        &[max_u32],
        &[0, 1],
    );
    let huge = 1u64 << 40;
    sparse_case::<f32, u64, u64>(
        &c,
        "tall_u64",
        Layout::Columns,
        [huge, 1],
        &[1.0, 2.0],
        &[3, huge - 1],
        &[0, 2],
    );
}

#[test]
fn sparse_data_typed_access_checks_the_dtype() {
    let (_d, c) = new_container();
    let s = sparse_case::<f32, i32, i64>(&c, "m", Layout::Rows, [1, 2], &[1.5], &[1], &[0, 1]);
    assert!(matches!(
        s.data::<f64>(),
        Err(OpenError::DtypeMismatch {
            recorded: DType::Float32,
            requested: DType::Float64,
            ..
        })
    ));
}

#[test]
fn info_all_gives_each_entry_the_files_info_gives_whatever_order_they_were_written_in() {
    // info_all joins the files to their rows by name; names written out of order, replaced
    // (new file rows) and of several files each must still each get exactly their own.
    let (_d, c) = new_container();
    for name in ["m", "z", "a", "k"] {
        c.write_dense::<f64>(name, &[2], &[1.0, 2.0]).unwrap();
    }
    c.write_sparse::<f32, u32, u64>(
        "s",
        dafstore::Layout::Rows,
        [2, 3],
        &[1.0],
        &[2],
        &[0, 1, 1],
    )
    .unwrap();
    c.write_dense::<u8>("b", &[3], &[1, 2, 3]).unwrap();
    c.write_dense::<i32>("z", &[1], &[7]).unwrap(); // replaced: its file row is new
    c.remove("k").unwrap();
    let all = c.info_all().unwrap();
    let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "m", "s", "z"]);
    for info in &all {
        let one = c.info(&info.name).unwrap();
        assert_eq!(info.files, one.files, "{}", info.name);
        assert_eq!(info.bytes, one.bytes, "{}", info.name);
    }
    let s = all.iter().find(|i| i.name == "s").unwrap();
    let suffixes: Vec<&str> = s.files.iter().map(|f| f.suffix.as_str()).collect();
    assert_eq!(suffixes.len(), 3, "{suffixes:?}");
    assert_eq!(all.iter().find(|i| i.name == "z").unwrap().bytes, 4);
}

#[test]
fn a_large_write_from_memory_records_the_checksum_of_its_bytes() {
    // From 16 MiB on the checksum is computed on a thread beside the copy into the file; a
    // filled map's publish splits it across threads: both must record the bytes' CRC-32C.
    let (_d, c) = new_container();
    let n = (17 << 20) + 5;
    let data: Vec<u8> = (0..n)
        .map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let expected = dafstore::internals::checksum::crc32c(&data);
    c.write_dense::<u8>("big", &[n as u64], &data).unwrap();
    let mut w = c.create_dense::<u8>("filled", &[n as u64]).unwrap();
    w.as_mut_slice::<u8>().unwrap().copy_from_slice(&data);
    w.publish().unwrap();
    for name in ["big", "filled"] {
        let files = c.info(name).unwrap().files;
        assert_eq!(files.len(), 1, "{name}");
        assert_eq!(files[0].crc32c, Some(expected), "{name}");
        assert_eq!(
            c.open_dense::<u8>(name).unwrap().as_slice(),
            &data[..],
            "{name}"
        );
    }
}
