//! Invalid input is refused with a typed error and touches nothing: invalid names (SPEC section 3),
//! broken sparse invariants ([S3]–[S5]), bad dense data, dtype and kind mismatches, files changed
//! or replaced by symlinks behind the engine's back ([D3], [N7]), and invalid containers and
//! metadata ([C2], [Y2], [T1]).

use std::fs::{self, OpenOptions};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use dafstore::internals::meta::parse_yaml;
use dafstore::{
    Allocation, Container, ContainerError, CreateOptions, DType, Layout, MetaError, OpenError,
    SparseError, WriteError,
};
use dafstore_tests::listing;
use dafstore_tests::{new_container, staging_files};

/// Every invalid name of SPEC section 3 with the rule it breaks.
fn invalid_names() -> Vec<(String, &'static str)> {
    vec![
        (String::new(), "N2"),
        ("/a".into(), "N2"),
        ("a/".into(), "N2"),
        ("a//b".into(), "N2"),
        (".".into(), "N3"),
        ("..".into(), "N3"),
        ("a/../b".into(), "N3"),
        (".hidden".into(), "N3"),
        ("a/.dafstore".into(), "N3"),
        (".dafstore/catalog".into(), "N3"),
        ("a\0b".into(), "N4"),
        ("a\\b".into(), "N4"),
        ("x".repeat(248), "N5"),
        (format!("{}/a", "d".repeat(256)), "N5"),
        ("x.array/y".into(), "N6"),
        ("x.yaml/y".into(), "N6"),
        ("x.data/y".into(), "N6"),
        ("x.indices/y".into(), "N6"),
        ("x.indptr/y".into(), "N6"),
    ]
}

fn check_name_error(op: &str, name: &str, rule: &str, e: &dafstore::NameError) {
    assert_eq!(e.name, name, "{op}({name:?})");
    assert_eq!(e.rule, rule, "{op}({name:?}): {e}");
    assert!(e.to_string().contains(rule), "{op}({name:?}): {e}");
}

#[test]
fn invalid_names_are_refused_by_every_operation_without_touching_a_file() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("ok", &[2], &[1.0, 2.0]).unwrap();
    c.write_dense::<f64>("x/y", &[1], &[3.0]).unwrap();
    let before = listing(c.root());
    let names_before = c.ls().unwrap();
    for (name, rule) in invalid_names() {
        let name = name.as_str();
        match c.write_dense::<f64>(name, &[2], &[1.0, 2.0]) {
            Err(WriteError::Name(e)) => check_name_error("write_dense", name, rule, &e),
            other => panic!("write_dense({name:?}): {other:?}"),
        }
        match c.write_dense_bool(name, &[1], &[true]) {
            Err(WriteError::Name(e)) => check_name_error("write_dense_bool", name, rule, &e),
            other => panic!("write_dense_bool({name:?}): {other:?}"),
        }
        match c.write_dense_bytes(name, DType::UInt8, &[1], &[1]) {
            Err(WriteError::Name(e)) => check_name_error("write_dense_bytes", name, rule, &e),
            other => panic!("write_dense_bytes({name:?}): {other:?}"),
        }
        match c.create_dense::<f64>(name, &[2]) {
            Err(WriteError::Name(e)) => check_name_error("create_dense", name, rule, &e),
            Err(other) => panic!("create_dense({name:?}): {other:?}"),
            Ok(_) => panic!("create_dense({name:?}) accepted"),
        }
        let holes = CreateOptions {
            allocation: Allocation::Holes,
            ..CreateOptions::default()
        };
        match c.create_dense_with(name, DType::Int8, &[2], holes) {
            Err(WriteError::Name(e)) => check_name_error("create_dense_with", name, rule, &e),
            Err(other) => panic!("create_dense_with({name:?}): {other:?}"),
            Ok(_) => panic!("create_dense_with({name:?}) accepted"),
        }
        match c.write_sparse::<f64, i32, i64>(name, Layout::Rows, [1, 1], &[1.0], &[0], &[0, 1]) {
            Err(WriteError::Name(e)) => check_name_error("write_sparse", name, rule, &e),
            other => panic!("write_sparse({name:?}): {other:?}"),
        }
        match c.open_array(name) {
            Err(OpenError::Name(e)) => check_name_error("open_array", name, rule, &e),
            Err(other) => panic!("open_array({name:?}): {other:?}"),
            Ok(_) => panic!("open_array({name:?}) accepted"),
        }
        match c.open_dense::<f64>(name) {
            Err(OpenError::Name(e)) => check_name_error("open_dense", name, rule, &e),
            Err(other) => panic!("open_dense({name:?}): {other:?}"),
            Ok(_) => panic!("open_dense({name:?}) accepted"),
        }
        match c.open_sparse(name) {
            Err(OpenError::Name(e)) => check_name_error("open_sparse", name, rule, &e),
            Err(other) => panic!("open_sparse({name:?}): {other:?}"),
            Ok(_) => panic!("open_sparse({name:?}) accepted"),
        }
        match c.open_dense_mut::<f64>(name) {
            Err(OpenError::Name(e)) => check_name_error("open_dense_mut", name, rule, &e),
            Err(other) => panic!("open_dense_mut({name:?}): {other:?}"),
            Ok(_) => panic!("open_dense_mut({name:?}) accepted"),
        }
        match c.open_dense_private::<f64>(name) {
            Err(OpenError::Name(e)) => check_name_error("open_dense_private", name, rule, &e),
            Err(other) => panic!("open_dense_private({name:?}): {other:?}"),
            Ok(_) => panic!("open_dense_private({name:?}) accepted"),
        }
        match c.info(name) {
            Err(OpenError::Name(e)) => check_name_error("record", name, rule, &e),
            other => panic!("record({name:?}): {other:?}"),
        }
        match c.remove(name) {
            Err(WriteError::Name(e)) => check_name_error("remove", name, rule, &e),
            other => panic!("remove({name:?}): {other:?}"),
        }
        assert_eq!(dafstore::ArrayName::new(name).unwrap_err().rule, rule);
        assert_eq!(listing(c.root()), before, "a file changed after {name:?}");
    }
    assert_eq!(c.ls().unwrap(), names_before);
    assert_eq!(staging_files(c.root()), Vec::<PathBuf>::new());
    // The arrays that were there are intact.
    assert_eq!(c.open_dense::<f64>("ok").unwrap().as_slice(), &[1.0, 2.0]);
}

#[test]
fn names_at_the_length_limits_are_accepted() {
    let (_d, c) = new_container();
    let last = "x".repeat(247);
    let dir = "d".repeat(255);
    let name = format!("{dir}/{last}");
    c.write_sparse::<f32, i32, i32>(&name, Layout::Rows, [1, 1], &[1.0], &[0], &[0, 1])
        .unwrap();
    let indices = c.root().join(&dir).join(format!("{last}.indices"));
    assert_eq!(indices.file_name().unwrap().len(), 255);
    assert!(indices.is_file());
    assert_eq!(c.open_sparse(&name).unwrap().nnz(), 1);
    c.write_dense::<u8>(&last, &[1], &[1]).unwrap();
    assert_eq!(c.open_dense::<u8>(&last).unwrap().as_slice(), &[1]);
}

/// Writes `data`/`indices`/`indptr` and expects `WriteError::Sparse` with a `SparseError`
/// accepted by `check`; nothing may be published or left behind.
fn expect_sparse_error<I: dafstore::IndexElement, P: dafstore::IndexElement>(
    c: &Container,
    case: &str,
    layout: Layout,
    shape: [u64; 2],
    arrays: (&[f64], &[I], &[P]),
    check: impl Fn(&SparseError) -> bool,
) {
    let before = listing(c.root());
    let names = c.ls().unwrap();
    let (data, indices, indptr) = arrays;
    match c.write_sparse::<f64, I, P>(case, layout, shape, data, indices, indptr) {
        Err(WriteError::Sparse { name, source }) => {
            assert_eq!(name, case);
            assert!(check(&source), "{case}: unexpected {source:?}");
        }
        other => panic!("{case}: expected WriteError::Sparse, got {other:?}"),
    }
    assert_eq!(c.ls().unwrap(), names, "{case}: published");
    assert_eq!(listing(c.root()), before, "{case}: files changed");
    assert!(matches!(
        c.open_array(case),
        Err(OpenError::NotFound { .. })
    ));
    assert_eq!(staging_files(c.root()), Vec::<PathBuf>::new(), "{case}");
}

#[test]
fn every_sparse_invariant_violation_is_refused_before_publishing() {
    let (_d, c) = new_container();
    let rows = Layout::Rows;
    let data3: &[f64] = &[1.0, 2.0, 3.0];
    expect_sparse_error::<i32, i64>(
        &c,
        "indptr_too_short",
        rows,
        [2, 3],
        (data3, &[0, 1, 2], &[0, 3]),
        |e| {
            *e == SparseError::IndptrLength {
                expected: 3,
                actual: 2,
            }
        },
    );
    expect_sparse_error::<i32, i64>(
        &c,
        "indptr_too_long",
        rows,
        [2, 3],
        (data3, &[0, 1, 2], &[0, 1, 2, 3]),
        |e| {
            *e == SparseError::IndptrLength {
                expected: 3,
                actual: 4,
            }
        },
    );
    // Columns: indptr has columns + 1 entries.
    expect_sparse_error::<i32, i64>(
        &c,
        "csc_indptr_rows_long",
        Layout::Columns,
        [2, 3],
        (data3, &[0, 1, 1], &[0, 1, 3]),
        |e| {
            *e == SparseError::IndptrLength {
                expected: 4,
                actual: 3,
            }
        },
    );
    expect_sparse_error::<i32, i64>(
        &c,
        "indptr_start",
        rows,
        [2, 3],
        (data3, &[0, 1, 2], &[1, 2, 3]),
        |e| matches!(e, SparseError::IndptrStart { found } if found == "1"),
    );
    expect_sparse_error::<i32, i64>(
        &c,
        "indptr_decreasing",
        rows,
        [3, 3],
        (data3, &[0, 1, 2], &[0, 2, 1, 3]),
        |e| {
            matches!(e, SparseError::IndptrDecreasing { at: 2, before, after }
                if before == "2" && after == "1")
        },
    );
    expect_sparse_error::<i32, i64>(
        &c,
        "indptr_end_short",
        rows,
        [2, 3],
        (data3, &[0, 1, 2], &[0, 1, 2]),
        |e| matches!(e, SparseError::IndptrEnd { found, nnz: 3 } if found == "2"),
    );
    expect_sparse_error::<i32, i64>(
        &c,
        "indptr_end_long",
        rows,
        [2, 3],
        (data3, &[0, 1, 2], &[0, 1, 4]),
        |e| matches!(e, SparseError::IndptrEnd { found, nnz: 3 } if found == "4"),
    );
    expect_sparse_error::<i32, i64>(
        &c,
        "index_equal_to_minor",
        rows,
        [2, 3],
        (data3, &[0, 3, 1], &[0, 1, 3]),
        |e| matches!(e, SparseError::IndexOutOfRange { at: 1, index, bound: 3 } if index == "3"),
    );
    // Columns: indices are rows, bounded by the row count.
    expect_sparse_error::<u64, u32>(
        &c,
        "csc_index_out_of_range",
        Layout::Columns,
        [2, 5],
        (&[1.0], &[2], &[0, 0, 1, 1, 1, 1]),
        |e| matches!(e, SparseError::IndexOutOfRange { at: 0, index, bound: 2 } if index == "2"),
    );
    expect_sparse_error::<i32, i64>(
        &c,
        "negative_index",
        rows,
        [2, 3],
        (data3, &[0, -1, 1], &[0, 1, 3]),
        |e| matches!(e, SparseError::IndexOutOfRange { at: 1, index, bound: 3 } if index == "-1"),
    );
    expect_sparse_error::<i64, i64>(
        &c,
        "negative_index_i64",
        rows,
        [2, 3],
        (data3, &[0, 1, i64::MIN], &[0, 1, 3]),
        |e| matches!(e, SparseError::IndexOutOfRange { at: 2, .. }),
    );
    expect_sparse_error::<i32, i64>(
        &c,
        "indices_length",
        rows,
        [2, 3],
        (data3, &[0, 1], &[0, 1, 3]),
        |e| {
            *e == SparseError::NnzMismatch {
                what: "indices",
                expected: 3,
                actual: 2,
            }
        },
    );
    // Indptr and indices agree on nnz = 3; only data is short.
    expect_sparse_error::<i32, i64>(
        &c,
        "data_length",
        rows,
        [2, 3],
        (&[1.0, 2.0], &[0, 1, 2], &[0, 1, 3]),
        |e| {
            *e == SparseError::NnzMismatch {
                what: "data",
                expected: 3,
                actual: 2,
            }
        },
    );
    // 3e9 columns do not fit int32 (or uint32 beyond 2^32) indices.
    expect_sparse_error::<i32, i64>(
        &c,
        "i32_indices_too_small",
        rows,
        [1, 3_000_000_000],
        (&[], &[], &[0, 0]),
        |e| {
            *e == SparseError::IndexDtypeTooSmall {
                what: "minor dimension - 1",
                value: 2_999_999_999,
                dtype: DType::Int32,
            }
        },
    );
    expect_sparse_error::<u32, u64>(
        &c,
        "u32_indices_too_small",
        rows,
        [1, 5_000_000_000],
        (&[], &[], &[0, 0]),
        |e| {
            *e == SparseError::IndexDtypeTooSmall {
                what: "minor dimension - 1",
                value: 4_999_999_999,
                dtype: DType::UInt32,
            }
        },
    );
    expect_sparse_error::<i32, i32>(
        &c,
        "csc_i32_indices_too_small",
        Layout::Columns,
        [3_000_000_000, 1],
        (&[], &[], &[0, 0]),
        |e| {
            matches!(
                e,
                SparseError::IndexDtypeTooSmall {
                    dtype: DType::Int32,
                    ..
                }
            )
        },
    );
    assert!(c.ls().unwrap().is_empty());
    assert!(listing(c.root()).is_empty());
}

#[test]
fn a_sparse_error_message_names_the_array_and_rule() {
    let (_d, c) = new_container();
    let e = c
        .write_sparse::<f64, i32, i64>("m", Layout::Rows, [2, 3], &[1.0], &[0], &[0, 1, 0])
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("\"m\"") && msg.contains("[S4]"), "{msg}");
}

#[test]
fn invalid_dense_input_is_refused_and_nothing_is_published() {
    let (_d, c) = new_container();
    match c.write_dense::<f64>("len", &[2, 3], &[1.0; 5]) {
        Err(WriteError::LengthMismatch {
            name,
            shape,
            expected: 6,
            actual: 5,
        }) => {
            assert_eq!(name, "len");
            assert_eq!(shape, [2, 3]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.write_dense::<f64>("len0", &[], &[]),
        Err(WriteError::LengthMismatch {
            expected: 1,
            actual: 0,
            ..
        })
    ));
    assert!(matches!(
        c.write_dense::<f64>("len_zero_size", &[0], &[1.0]),
        Err(WriteError::LengthMismatch {
            expected: 0,
            actual: 1,
            ..
        })
    ));
    // Bytes that are not a whole number of elements.
    assert!(matches!(
        c.write_dense_bytes("partial", DType::Float64, &[1], &[0; 7]),
        Err(WriteError::LengthMismatch { expected: 1, .. })
    ));
    assert!(matches!(
        c.write_dense_bool("bools", &[3], &[true]),
        Err(WriteError::LengthMismatch { .. })
    ));
    // Bool bytes other than 0 and 1 ([T2]).
    match c.write_dense_bytes("bool2", DType::Bool, &[4], &[0, 1, 2, 1]) {
        Err(WriteError::InvalidBool {
            name,
            at: 2,
            byte: 2,
        }) => assert_eq!(name, "bool2"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.write_dense::<dafstore::Bool8>("bool255", &[1], &[dafstore::Bool8(255)]),
        Err(WriteError::InvalidBool {
            at: 0,
            byte: 255,
            ..
        })
    ));
    assert!(matches!(
        c.write_sparse::<dafstore::Bool8, i32, i32>(
            "sparse_bool",
            Layout::Rows,
            [1, 2],
            &[dafstore::Bool8(1), dafstore::Bool8(7)],
            &[0, 1],
            &[0, 2]
        ),
        Err(WriteError::InvalidBool { at: 1, byte: 7, .. })
    ));
    // Through a writer: checked at publish.
    let mut w = c
        .create_dense_with("bool_writer", DType::Bool, &[3], CreateOptions::default())
        .unwrap();
    w.as_bytes_mut().copy_from_slice(&[1, 0, 3]);
    assert!(matches!(
        w.publish(),
        Err(WriteError::InvalidBool { at: 2, byte: 3, .. })
    ));
    // A writer's typed view must match its dtype.
    let mut w = c.create_dense::<f32>("typed", &[2]).unwrap();
    assert!(w.as_mut_slice::<f64>().is_err());
    drop(w);
    assert!(c.ls().unwrap().is_empty());
    assert!(listing(c.root()).is_empty());
    assert_eq!(staging_files(c.root()), Vec::<PathBuf>::new());
}

#[test]
fn shapes_whose_byte_size_overflows_are_refused() {
    let (_d, c) = new_container();
    let overflowing: &[(&[u64], DType)] = &[
        (&[u64::MAX, 2], DType::Float64),
        (&[u64::MAX, 2], DType::UInt8),
        (&[1 << 32, 1 << 32], DType::Int8),
        (&[1 << 61], DType::Float64), // elements fit, bytes (2^64) do not
        (&[2, 3, u64::MAX], DType::Bool),
    ];
    for (shape, dtype) in overflowing {
        let check = |r: Result<(), WriteError>, op: &str| match r {
            Err(WriteError::Meta(MetaError::ShapeOverflow {
                shape: s, dtype: d, ..
            })) => {
                assert_eq!(&s, shape, "{op}");
                assert_eq!(d, *dtype, "{op}");
            }
            other => panic!("{op} {shape:?} {dtype}: {other:?}"),
        };
        check(
            c.write_dense_bytes("big", *dtype, shape, &[]),
            "write_dense_bytes",
        );
        check(
            c.create_dense_with("big", *dtype, shape, CreateOptions::default())
                .map(drop),
            "create_dense_with",
        );
        check(
            c.create_dense_with(
                "big",
                *dtype,
                shape,
                CreateOptions {
                    allocation: Allocation::Holes,
                    ..CreateOptions::default()
                },
            )
            .map(drop),
            "create_dense_with holes",
        );
    }
    match c.write_dense::<f64>("big", &[u64::MAX, 2], &[]) {
        Err(WriteError::Meta(e @ MetaError::ShapeOverflow { .. })) => {
            assert!(e.to_string().contains("D2"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(c.ls().unwrap().is_empty());
    assert!(listing(c.root()).is_empty());
}

#[test]
fn dtype_and_kind_mismatches_are_typed_errors() {
    let (_d, c) = new_container();
    c.write_dense::<i64>("ints", &[2], &[1, 2]).unwrap();
    c.write_sparse::<f32, i32, i32>("sp", Layout::Rows, [1, 1], &[1.0], &[0], &[0, 1])
        .unwrap();
    match c.open_dense::<f32>("ints") {
        Err(OpenError::DtypeMismatch {
            name,
            recorded: DType::Int64,
            requested: DType::Float32,
        }) => assert_eq!(name, "ints"),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("opened int64 as f32"),
    }
    // u8 views uint8 only, never bool; i64 and u64 are distinct.
    assert!(matches!(
        c.open_dense::<u64>("ints"),
        Err(OpenError::DtypeMismatch { .. })
    ));
    assert!(matches!(
        c.open_dense_private::<f64>("ints"),
        Err(OpenError::DtypeMismatch { .. })
    ));
    assert!(matches!(
        c.open_dense_mut::<i32>("ints"),
        Err(OpenError::DtypeMismatch { .. })
    ));
    c.write_dense_bool("flags", &[1], &[true]).unwrap();
    assert!(matches!(
        c.open_dense::<u8>("flags"),
        Err(OpenError::DtypeMismatch {
            recorded: DType::Bool,
            requested: DType::UInt8,
            ..
        })
    ));
    let untyped = c.open_dense_untyped("ints").unwrap();
    assert!(untyped.as_slice::<f64>().is_err());
    assert!(untyped.clone().typed::<u32>().is_err());
    match c.open_sparse("ints") {
        Err(OpenError::KindMismatch {
            name,
            actual: "dense",
            requested: "sparse",
            ..
        }) => assert_eq!(name, "ints"),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("opened dense as sparse"),
    }
    for r in [
        c.open_dense::<f32>("sp").map(drop),
        c.open_dense_untyped("sp").map(drop),
        c.open_dense_mut::<f32>("sp").map(drop),
        c.open_dense_private::<f32>("sp").map(drop),
    ] {
        assert!(
            matches!(
                r,
                Err(OpenError::KindMismatch {
                    actual: "sparse",
                    requested: "dense",
                    ..
                })
            ),
            "{r:?}"
        );
    }
    // Missing arrays.
    assert!(matches!(
        c.open_array("nope"),
        Err(OpenError::NotFound { .. })
    ));
    assert!(matches!(
        c.open_array("no/such/dir"),
        Err(OpenError::NotFound { .. })
    ));
}

/// Changes the length of `path` behind the engine's back.
fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn expect_size_mismatch(r: Result<(), OpenError>, path: &Path, expected: u64, actual: u64) {
    match r {
        Err(e @ OpenError::SizeMismatch { .. }) => {
            let OpenError::SizeMismatch {
                path: p,
                expected: x,
                actual: a,
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(p, path);
            assert_eq!((*x, *a), (expected, actual));
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(&expected.to_string()) && msg.contains(&actual.to_string()));
        }
        other => panic!("expected SizeMismatch for {}: {other:?}", path.display()),
    }
}

#[test]
fn a_truncated_or_extended_file_is_a_size_mismatch_naming_the_path() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[4], &[1.0, 2.0, 3.0, 4.0])
        .unwrap();
    let path = c.root().join("x.array");
    set_len(&path, 16);
    expect_size_mismatch(c.open_dense::<f64>("x").map(drop), &path, 32, 16);
    expect_size_mismatch(c.open_array("x").map(drop), &path, 32, 16);
    expect_size_mismatch(c.open_dense_private::<f64>("x").map(drop), &path, 32, 16);
    set_len(&path, 40);
    expect_size_mismatch(c.open_dense::<f64>("x").map(drop), &path, 32, 40);
    set_len(&path, 0);
    expect_size_mismatch(c.open_dense::<f64>("x").map(drop), &path, 32, 0);

    // A zero-size array whose empty file grew.
    c.write_dense::<f64>("z", &[0, 3], &[]).unwrap();
    let zpath = c.root().join("z.array");
    set_len(&zpath, 8);
    expect_size_mismatch(c.open_dense::<f64>("z").map(drop), &zpath, 0, 8);

    // Each sparse file is checked.
    c.write_sparse::<f32, i32, i64>("s", Layout::Rows, [2, 3], &[1.0, 2.0], &[0, 2], &[0, 1, 2])
        .unwrap();
    for (suffix, expected) in [("data", 8), ("indices", 8), ("indptr", 24)] {
        let p = c.root().join(format!("s.{suffix}"));
        set_len(&p, expected + 4);
        expect_size_mismatch(c.open_sparse("s").map(drop), &p, expected, expected + 4);
        set_len(&p, expected);
    }
}

#[test]
fn a_failed_in_place_open_leaves_the_metadata_as_it_was() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[4], &[1.0, 2.0, 3.0, 4.0])
        .unwrap();
    let array = c.root().join("x.array");
    let yaml = c.root().join("x.yaml");
    let original = fs::read(&array).unwrap();
    let yaml_before = fs::read_to_string(&yaml).unwrap();
    set_len(&array, 16);
    expect_size_mismatch(c.open_dense_mut::<f64>("x").map(drop), &array, 32, 16);
    // The file is repaired; no in-place writer was ever handed out, so the checksum must still be
    // recorded, in the catalog and in the metadata file ([W7], [K1]).
    fs::write(&array, &original).unwrap();
    assert_eq!(fs::read_to_string(&yaml).unwrap(), yaml_before);
    let rec = c.info("x").unwrap();
    assert!(!rec.checksum_stale, "checksum left stale by a failed open");
    assert_eq!(
        rec.files[0].crc32c,
        Some(dafstore::internals::checksum::crc32c(&original))
    );
}

#[test]
fn a_symlink_in_place_of_an_array_file_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let c = Container::create(dir.path().join("c")).unwrap();
    c.write_dense::<f64>("x", &[2], &[1.0, 2.0]).unwrap();
    c.write_sparse::<f32, i32, i32>("s", Layout::Rows, [1, 2], &[5.0], &[1], &[0, 1])
        .unwrap();
    // The same bytes, reached through a link: only the link itself is wrong.
    for file in ["x.array", "s.indices"] {
        let path = c.root().join(file);
        let copy = dir.path().join(format!("copy-{file}"));
        fs::copy(&path, &copy).unwrap();
        fs::remove_file(&path).unwrap();
        symlink(&copy, &path).unwrap();
    }
    let x = c.root().join("x.array");
    for r in [
        c.open_dense::<f64>("x").map(drop),
        c.open_array("x").map(drop),
        c.open_dense_private::<f64>("x").map(drop),
        c.open_dense_mut::<f64>("x").map(drop),
    ] {
        match r {
            Err(e @ OpenError::NotRegularFile { .. }) => {
                assert!(matches!(&e, OpenError::NotRegularFile { path } if *path == x));
                assert!(e.to_string().contains(&x.display().to_string()), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    let s = c.root().join("s.indices");
    assert!(matches!(
        c.open_sparse("s"),
        Err(OpenError::NotRegularFile { path }) if path == s
    ));
    // A symlink to a file inside the container is refused too (array files must be regular).
    fs::remove_file(&x).unwrap();
    c.write_dense::<f64>("y", &[2], &[1.0, 2.0]).unwrap();
    symlink(c.root().join("y.array"), &x).unwrap();
    assert!(matches!(
        c.open_dense::<f64>("x"),
        Err(OpenError::NotRegularFile { .. })
    ));
}

#[test]
fn a_symlinked_subdirectory_pointing_outside_is_neither_written_nor_read() {
    let dir = tempfile::tempdir().unwrap();
    let c = Container::create(dir.path().join("c")).unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    // First a legitimate "sub/x", then "sub" is moved out and replaced by a link to it: the
    // catalog row and the files exist, but reading them would follow a link out of the container.
    c.write_dense::<f64>("sub/x", &[2], &[1.0, 2.0]).unwrap();
    fs::rename(c.root().join("sub"), outside.join("sub")).unwrap();
    symlink(outside.join("sub"), c.root().join("sub")).unwrap();
    let snap = |dir: &Path| -> Vec<(PathBuf, dafstore_tests::FileSnapshot)> {
        listing(dir)
            .into_keys()
            .map(|p| {
                let s = dafstore_tests::snapshot(&dir.join(&p));
                (p, s)
            })
            .collect()
    };
    let outside_sub = snap(&outside.join("sub"));
    assert_eq!(outside_sub.len(), 2);
    assert!(c.open_dense::<f64>("sub/x").is_err());
    assert!(c.open_array("sub/x").is_err());
    assert!(c.open_dense_private::<f64>("sub/x").is_err());
    assert!(c.open_dense_mut::<f64>("sub/x").is_err());
    assert_eq!(
        snap(&outside.join("sub")),
        outside_sub,
        "a file outside the container was changed"
    );

    // An empty outside directory behind a link: writing through it is refused.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    symlink(&empty, c.root().join("link")).unwrap();
    let outside_before = (listing(&outside), listing(&empty));
    // Refused as a link ([N7]: no link is followed in a directory component), naming it.
    match c.write_dense::<f64>("link/x", &[1], &[1.0]) {
        Err(WriteError::Path(dafstore::PathError::Link { path })) => {
            assert_eq!(path, c.root().join("link"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.write_dense::<f64>("sub/x", &[1], &[9.0]),
        Err(WriteError::Path(dafstore::PathError::Link { .. }))
    ));
    assert!(matches!(
        c.write_sparse::<f64, i32, i32>("link/s", Layout::Rows, [1, 1], &[1.0], &[0], &[0, 1]),
        Err(WriteError::Path(dafstore::PathError::Link { .. }))
    ));
    let mut w = c.create_dense::<f64>("link/w", &[1]).unwrap();
    w.as_mut_slice::<f64>().unwrap()[0] = 1.0;
    assert!(matches!(
        w.publish(),
        Err(WriteError::Path(dafstore::PathError::Link { .. }))
    ));
    assert!(c.open_array("link/x").is_err());
    assert_eq!((listing(&outside), listing(&empty)), outside_before);
    assert_eq!(c.ls().unwrap(), ["sub/x"]);
    assert_eq!(staging_files(c.root()), Vec::<PathBuf>::new());
}

#[test]
fn a_file_in_the_way_of_a_directory_component_is_a_name_conflict() {
    let (_d, c) = new_container();
    fs::write(c.root().join("plain"), b"not a directory").unwrap();
    assert!(matches!(
        c.write_dense::<u8>("plain/x", &[1], &[1]),
        Err(WriteError::NameConflict { .. })
    ));
    assert_eq!(
        fs::read(c.root().join("plain")).unwrap(),
        b"not a directory"
    );
    assert!(c.ls().unwrap().is_empty());
}

#[test]
fn directories_that_are_not_containers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(
        plain.join("x.yaml"),
        "dtype: int8\nshape:\n- 1\nversion:\n- 1\n- 0\n",
    )
    .unwrap();
    fs::write(plain.join("x.array"), [1u8]).unwrap();
    let before = listing(&plain);
    for r in [
        Container::open(&plain),
        Container::options().read_only(true).open(&plain),
    ] {
        match r {
            Err(e @ ContainerError::NotAContainer { .. }) => {
                assert!(e.to_string().contains(&plain.display().to_string()), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(listing(&plain), before);
    assert!(!plain.join(".dafstore").exists());
    assert!(Container::open(dir.path().join("missing")).is_err());
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn creating_over_an_existing_container_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Container::create(&path).unwrap();
    c.write_dense::<u8>("x", &[1], &[5]).unwrap();
    assert!(matches!(
        Container::create(&path),
        Err(ContainerError::AlreadyExists { .. })
    ));
    drop(c);
    assert!(matches!(
        Container::create(&path),
        Err(ContainerError::AlreadyExists { .. })
    ));
    let c = Container::open(&path).unwrap();
    assert_eq!(c.open_dense::<u8>("x").unwrap().as_slice(), &[5]);
}

#[test]
fn a_container_of_another_major_version_is_refused_naming_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    drop(Container::create(&path).unwrap());
    let version_file = path.join(".dafstore/container.yaml");
    fs::write(&version_file, "format: dafstore\nversion:\n- 2\n- 0\n").unwrap();
    for r in [
        Container::open(&path),
        Container::options().read_only(true).open(&path),
    ] {
        match r {
            Err(ContainerError::Meta(
                e @ MetaError::UnsupportedVersion {
                    found_major: 2,
                    found_minor: 0,
                    supported: 1,
                    ..
                },
            )) => {
                let msg = e.to_string();
                assert!(msg.contains("2.0"), "{msg}");
                assert!(msg.contains("container.yaml"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Another minor version of major 1 is accepted; unknown keys are ignored.
    fs::write(
        &version_file,
        "format: dafstore\nversion:\n- 1\n- 9\nfuture: true\n",
    )
    .unwrap();
    Container::open(&path).unwrap();
    // A wrong format string is refused.
    fs::write(&version_file, "format: zarr\nversion:\n- 1\n- 0\n").unwrap();
    assert!(matches!(
        Container::open(&path),
        Err(ContainerError::Meta(MetaError::Invalid { .. }))
    ));
}

#[test]
fn metadata_of_another_major_version_or_an_unknown_dtype_is_refused() {
    let p = Path::new("some/dir/x.yaml");
    match parse_yaml(b"dtype: float64\nshape:\n- 3\nversion:\n- 2\n- 0\n", p) {
        Err(
            e @ MetaError::UnsupportedVersion {
                found_major: 2,
                found_minor: 0,
                supported: 1,
                ..
            },
        ) => {
            let msg = e.to_string();
            assert!(
                msg.contains("2.0") && msg.contains("some/dir/x.yaml"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    match parse_yaml(b"dtype: float\nshape:\n- 3\nversion:\n- 1\n- 0\n", p) {
        Err(e @ MetaError::UnknownDtype { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("float"), "{msg}");
            for d in DType::ALL {
                assert!(msg.contains(d.name()), "{msg} does not list {d}");
            }
        }
        other => panic!("{other:?}"),
    }
    for bad in ["f8", "<f8", "Float64", "int", "complex64"] {
        let text = format!("dtype: {bad:?}\nshape:\n- 3\nversion:\n- 1\n- 0\n");
        assert!(
            matches!(
                parse_yaml(text.as_bytes(), p),
                Err(MetaError::UnknownDtype { .. })
            ),
            "{bad}"
        );
    }
    // A 1.x minor version is accepted.
    let doc = parse_yaml(b"dtype: int8\nshape:\n- 3\nversion:\n- 1\n- 5\n", p).unwrap();
    assert_eq!(doc.version, (1, 5));
}

#[test]
fn adopt_refuses_metadata_of_another_major_version() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[1], &[1.0]).unwrap();
    let (c2, report) = {
        // An array file a newer writer left: adopt must refuse it, not register it.
        let dir = c.root().to_path_buf();
        fs::write(
            dir.join("v2.yaml"),
            "dtype: int8\nshape:\n- 1\nversion:\n- 2\n- 0\n",
        )
        .unwrap();
        fs::write(dir.join("v2.array"), [1u8]).unwrap();
        Container::adopt(&dir).unwrap()
    };
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert!(report.refused[0].reason.contains("2.0"), "{report:?}");
    assert!(!c2.ls().unwrap().contains(&"v2".to_string()));
}
