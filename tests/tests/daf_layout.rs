//! The files written by this engine are byte-for-byte daf's memory-mapped layout (raw
//! little-endian `.array` / `.data` / `.indices` / `.indptr` files and PyYAML-style `.yaml`
//! metadata at `<container>/<name>.<suffix>`), and a daf 1.0 directory written by hand is adopted
//! without changing a byte, then read correctly; invalid daf arrays are refused, not adopted.

use std::fs;
use std::path::{Path, PathBuf};

use dafstore::internals::checksum::crc32c;
use dafstore::{Bool8, Container, DType, IndexSlice, Layout};
use dafstore_tests::new_container;
use dafstore_tests::{le_bytes, listing, snapshot, Entry};
use half::f16;

fn read(root: &Path, file: &str) -> Vec<u8> {
    fs::read(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn read_text(root: &Path, file: &str) -> String {
    String::from_utf8(read(root, file)).unwrap()
}

/// The dense metadata daf (PyYAML) would write, plus the 1.1 `crc32c` key.
fn dense_yaml(dtype: &str, shape: &[u64], crc: u32) -> String {
    let shape = if shape.is_empty() {
        "shape: []\n".to_string()
    } else {
        "shape:\n".to_string() + &shape.iter().map(|d| format!("- {d}\n")).collect::<String>()
    };
    format!("crc32c:\n  array: {crc}\ndtype: {dtype}\n{shape}version:\n- 1\n- 1\n")
}

#[test]
fn dense_float64_file_is_exactly_its_little_endian_bytes_and_yaml() {
    let (_d, c) = new_container();
    let values: Vec<f64> = (0..12).map(|i| f64::from(i) * 1.5 - 4.0).collect();
    c.write_dense::<f64>("m", &[3, 4], &values).unwrap();
    let root = c.root();
    let expected = le_bytes(&values);
    let array = read(root, "m.array");
    assert_eq!(array.len(), 3 * 4 * 8);
    assert_eq!(fs::metadata(root.join("m.array")).unwrap().len(), 96);
    assert_eq!(array, expected);
    let crc = crc32c(&expected);
    assert_eq!(
        read_text(root, "m.yaml"),
        format!("crc32c:\n  array: {crc}\ndtype: float64\nshape:\n- 3\n- 4\nversion:\n- 1\n- 1\n")
    );
    // The catalog records the same size and checksum.
    let rec = c.info("m").unwrap();
    assert_eq!(rec.files.len(), 1);
    assert_eq!(rec.files[0].suffix, "array");
    assert_eq!(rec.files[0].size, 96);
    assert_eq!(rec.files[0].crc32c, Some(crc));
    // Nothing else outside .dafstore.
    let files: Vec<PathBuf> = listing(root).into_keys().collect();
    assert_eq!(files, [PathBuf::from("m.array"), PathBuf::from("m.yaml")]);
}

#[test]
fn every_dtype_is_stored_as_its_numpy_spelling_and_little_endian_bytes() {
    let (_d, c) = new_container();
    let root = c.root().to_path_buf();
    let check = |name: &str, dtype: &str, shape: &[u64], bytes: Vec<u8>| {
        assert_eq!(read(&root, &format!("{name}.array")), bytes, "{name}");
        assert_eq!(
            read_text(&root, &format!("{name}.yaml")),
            dense_yaml(dtype, shape, crc32c(&bytes)),
            "{name}"
        );
    };
    c.write_dense_bool("bool", &[3], &[true, false, true])
        .unwrap();
    check("bool", "bool", &[3], vec![1, 0, 1]);
    c.write_dense::<Bool8>("bool8", &[2], &[Bool8(0), Bool8(1)])
        .unwrap();
    check("bool8", "bool", &[2], vec![0, 1]);
    c.write_dense::<i8>("int8", &[3], &[-1, 127, -128]).unwrap();
    check("int8", "int8", &[3], vec![0xff, 0x7f, 0x80]);
    c.write_dense::<i16>("int16", &[2], &[-2, 0x1234]).unwrap();
    check("int16", "int16", &[2], vec![0xfe, 0xff, 0x34, 0x12]);
    c.write_dense::<i32>("int32", &[1], &[0x0102_0304]).unwrap();
    check("int32", "int32", &[1], vec![4, 3, 2, 1]);
    c.write_dense::<i64>("int64", &[1], &[-2]).unwrap();
    check(
        "int64",
        "int64",
        &[1],
        vec![0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    );
    c.write_dense::<u8>("uint8", &[2], &[0, 255]).unwrap();
    check("uint8", "uint8", &[2], vec![0, 255]);
    c.write_dense::<u16>("uint16", &[1], &[0xabcd]).unwrap();
    check("uint16", "uint16", &[1], vec![0xcd, 0xab]);
    c.write_dense::<u32>("uint32", &[1], &[0xdead_beef])
        .unwrap();
    check("uint32", "uint32", &[1], vec![0xef, 0xbe, 0xad, 0xde]);
    c.write_dense::<u64>("uint64", &[1], &[0x0102_0304_0506_0708])
        .unwrap();
    check("uint64", "uint64", &[1], vec![8, 7, 6, 5, 4, 3, 2, 1]);
    c.write_dense::<f16>("float16", &[2], &[f16::ONE, f16::from_f32(-2.0)])
        .unwrap();
    check("float16", "float16", &[2], vec![0x00, 0x3c, 0x00, 0xc0]);
    c.write_dense::<f32>("float32", &[1], &[1.0]).unwrap();
    check("float32", "float32", &[1], vec![0x00, 0x00, 0x80, 0x3f]);
    c.write_dense::<f64>("float64", &[1], &[-1.0]).unwrap();
    check(
        "float64",
        "float64",
        &[1],
        vec![0, 0, 0, 0, 0, 0, 0xf0, 0xbf],
    );
    // Every dtype was covered.
    for d in DType::ALL {
        assert!(root.join(format!("{d}.yaml")).is_file(), "{d}");
    }
}

#[test]
fn n_dimensional_zero_d_and_zero_size_arrays_have_exact_files() {
    let (_d, c) = new_container();
    let root = c.root().to_path_buf();
    // 3-d: row-major order.
    let v: Vec<i16> = (0..24).map(|i| i * 100 - 1000).collect();
    c.write_dense::<i16>("cube", &[2, 3, 4], &v).unwrap();
    assert_eq!(read(&root, "cube.array"), le_bytes(&v));
    assert_eq!(
        read_text(&root, "cube.yaml"),
        dense_yaml("int16", &[2, 3, 4], crc32c(&le_bytes(&v)))
    );
    // 0-d: one element, `shape: []`.
    c.write_dense::<u32>("scalar", &[], &[42]).unwrap();
    assert_eq!(read(&root, "scalar.array"), vec![42, 0, 0, 0]);
    assert_eq!(
        read_text(&root, "scalar.yaml"),
        format!(
            "crc32c:\n  array: {}\ndtype: uint32\nshape: []\nversion:\n- 1\n- 1\n",
            crc32c(&[42, 0, 0, 0])
        )
    );
    // Zero-size: an empty file, crc32c of nothing is 0.
    c.write_dense::<f64>("empty", &[3, 0], &[]).unwrap();
    assert_eq!(fs::metadata(root.join("empty.array")).unwrap().len(), 0);
    assert_eq!(
        read_text(&root, "empty.yaml"),
        "crc32c:\n  array: 0\ndtype: float64\nshape:\n- 3\n- 0\nversion:\n- 1\n- 1\n"
    );
}

#[test]
fn sparse_files_and_yaml_are_exact() {
    let (_d, c) = new_container();
    let root = c.root().to_path_buf();
    let data = [1.0f32, 2.0, 3.0];
    let indices = [0i32, 2, 1];
    let indptr = [0i64, 2, 3];
    c.write_sparse::<f32, i32, i64>("s", Layout::Rows, [2, 3], &data, &indices, &indptr)
        .unwrap();
    let (d, i, p) = (le_bytes(&data), le_bytes(&indices), le_bytes(&indptr));
    assert_eq!(read(&root, "s.data"), d);
    assert_eq!(read(&root, "s.indices"), i);
    assert_eq!(read(&root, "s.indptr"), p);
    assert_eq!((d.len(), i.len(), p.len()), (12, 12, 24));
    assert_eq!(
        read_text(&root, "s.yaml"),
        format!(
            "crc32c:\n  data: {}\n  indices: {}\n  indptr: {}\ndata_dtype: float32\n\
             indices_dtype: int32\nindptr_dtype: int64\nlayout: rows\nnnz: 3\nshape:\n- 2\n- 3\n\
             version:\n- 1\n- 1\n",
            crc32c(&d),
            crc32c(&i),
            crc32c(&p)
        )
    );
    // Columns layout, unsigned indices, nnz = 0 (empty data and indices files).
    c.write_sparse::<u8, u32, u64>("e", Layout::Columns, [4, 2], &[], &[], &[0, 0, 0])
        .unwrap();
    assert_eq!(read(&root, "e.data"), Vec::<u8>::new());
    assert_eq!(read(&root, "e.indices"), Vec::<u8>::new());
    assert_eq!(read(&root, "e.indptr"), vec![0u8; 24]);
    assert_eq!(
        read_text(&root, "e.yaml"),
        format!(
            "crc32c:\n  data: 0\n  indices: 0\n  indptr: {}\ndata_dtype: uint8\n\
             indices_dtype: uint32\nindptr_dtype: uint64\nlayout: columns\nnnz: 0\nshape:\n- 4\n- 2\n\
             version:\n- 1\n- 1\n",
            crc32c(&[0u8; 24])
        )
    );
    let files: Vec<PathBuf> = listing(&root).into_keys().collect();
    let expected: Vec<PathBuf> = [
        "e.data",
        "e.indices",
        "e.indptr",
        "e.yaml",
        "s.data",
        "s.indices",
        "s.indptr",
        "s.yaml",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(files, expected);
}

#[test]
fn nested_names_are_subdirectories() {
    let (_d, c) = new_container();
    let root = c.root().to_path_buf();
    c.write_dense::<u8>("a/b/c", &[2], &[1, 2]).unwrap();
    c.write_sparse::<f64, i32, i32>("a/s", Layout::Rows, [1, 1], &[9.0], &[0], &[0, 1])
        .unwrap();
    c.write_dense::<u8>("a.b/x.array", &[1], &[7]).unwrap();
    let l = listing(&root);
    let mut expected = std::collections::BTreeMap::new();
    for (p, e) in [
        ("a", Entry::Dir),
        ("a/b", Entry::Dir),
        ("a/b/c.array", Entry::File(2)),
        ("a/s.data", Entry::File(8)),
        ("a/s.indices", Entry::File(4)),
        ("a/s.indptr", Entry::File(8)),
        ("a.b", Entry::Dir),
        ("a.b/x.array.array", Entry::File(1)),
    ] {
        expected.insert(PathBuf::from(p), e);
    }
    for yaml in ["a/b/c.yaml", "a/s.yaml", "a.b/x.array.yaml"] {
        let len = fs::metadata(root.join(yaml)).unwrap().len();
        expected.insert(PathBuf::from(yaml), Entry::File(len));
    }
    assert_eq!(l, expected);
    assert_eq!(read(&root, "a/b/c.array"), vec![1, 2]);
    assert_eq!(
        read_text(&root, "a/b/c.yaml"),
        dense_yaml("uint8", &[2], crc32c(&[1, 2]))
    );
    assert_eq!(c.ls().unwrap(), ["a.b/x.array", "a/b/c", "a/s"]);
    assert_eq!(c.open_dense::<u8>("a/b/c").unwrap().as_slice(), &[1, 2]);
}

/// Writes a daf 1.0 directory by hand, exactly as daf's Python writer does (PyYAML `dump`).
struct DafDir {
    dense: Vec<f32>,
    sparse: ([f32; 3], [i32; 3], [i32; 3]),
    nested: Vec<i64>,
}

fn write_daf_dir(root: &Path) -> DafDir {
    fs::create_dir_all(root.join("grp")).unwrap();
    let dense: Vec<f32> = (0..200).map(|i| i as f32 * 0.25 - 7.0).collect();
    fs::write(
        root.join("cells.yaml"),
        "dtype: float32\nshape:\n- 10\n- 20\nversion:\n- 1\n- 0\n",
    )
    .unwrap();
    fs::write(root.join("cells.array"), le_bytes(&dense)).unwrap();
    // [[0, 1.5, 0], [2.5, 0, 3.5]] in CSR.
    let sparse = ([1.5f32, 2.5, 3.5], [1i32, 0, 2], [0i32, 1, 3]);
    fs::write(
        root.join("umis.yaml"),
        "data_dtype: float32\nindices_dtype: int32\nindptr_dtype: int32\nnnz: 3\nshape:\n- 2\n- 3\nversion:\n- 1\n- 0\n",
    )
    .unwrap();
    fs::write(root.join("umis.data"), le_bytes(&sparse.0)).unwrap();
    fs::write(root.join("umis.indices"), le_bytes(&sparse.1)).unwrap();
    fs::write(root.join("umis.indptr"), le_bytes(&sparse.2)).unwrap();
    let nested: Vec<i64> = vec![-5, 0, i64::MAX];
    fs::write(
        root.join("grp/ids.yaml"),
        "dtype: int64\nshape:\n- 3\nversion:\n- 1\n- 0\n",
    )
    .unwrap();
    fs::write(root.join("grp/ids.array"), le_bytes(&nested)).unwrap();
    DafDir {
        dense,
        sparse,
        nested,
    }
}

fn snapshots(root: &Path) -> Vec<(PathBuf, dafstore_tests::FileSnapshot)> {
    listing(root)
        .into_iter()
        .filter(|(_, e)| matches!(e, Entry::File(_)))
        .map(|(p, _)| {
            let s = snapshot(&root.join(&p));
            (p, s)
        })
        .collect()
}

#[test]
fn adopting_a_daf_directory_registers_arrays_without_touching_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("daf");
    let daf = write_daf_dir(&root);
    assert!(!root.join(".dafstore").exists());
    let before = snapshots(&root);
    assert_eq!(before.len(), 8);
    // Let a clock tick pass, so a rewrite would show in mtimes even on coarse clocks.
    std::thread::sleep(std::time::Duration::from_millis(20));

    let (c, report) = Container::adopt(&root).unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let mut adopted = report.adopted.clone();
    adopted.sort();
    assert_eq!(adopted, ["cells", "grp/ids", "umis"]);
    assert!(report.already.is_empty());
    assert_eq!(snapshots(&root), before, "adopt changed an array file");
    assert!(root.join(".dafstore/container.yaml").is_file());
    assert_eq!(c.ls().unwrap(), ["cells", "grp/ids", "umis"]);

    let cells = c.open_dense::<f32>("cells").unwrap();
    assert_eq!(cells.shape(), &[10, 20]);
    assert_eq!(cells.as_slice(), daf.dense.as_slice());
    let ids = c.open_dense::<i64>("grp/ids").unwrap();
    assert_eq!(ids.as_slice(), daf.nested.as_slice());
    let umis = c.open_sparse("umis").unwrap();
    assert_eq!(umis.shape(), [2, 3]);
    assert_eq!(umis.nnz(), 3);
    assert_eq!(umis.layout(), Layout::Rows);
    assert_eq!(umis.data::<f32>().unwrap(), &daf.sparse.0);
    assert!(matches!(umis.indices(), IndexSlice::I32(s) if s == daf.sparse.1));
    assert!(matches!(umis.indptr(), IndexSlice::I32(s) if s == daf.sparse.2));
    assert_eq!(umis.major_range(1), Some(1..3));
    // Checksummed at adoption.
    let rec = c.info("cells").unwrap();
    assert_eq!(rec.files[0].crc32c, Some(crc32c(&le_bytes(&daf.dense))));
    drop((cells, ids, umis));

    // Adopting again changes nothing and reports them as already registered.
    drop(c);
    let (_c, again) = Container::adopt(&root).unwrap();
    assert!(again.adopted.is_empty());
    assert!(again.refused.is_empty());
    let mut already = again.already.clone();
    already.sort();
    assert_eq!(already, ["cells", "grp/ids", "umis"]);
    assert_eq!(snapshots(&root), before);
}

#[test]
fn adopt_refuses_a_wrong_size_and_a_decreasing_indptr_but_adopts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("daf");
    write_daf_dir(&root);
    // A dense array whose data file is one element short.
    fs::write(
        root.join("short.yaml"),
        "dtype: float64\nshape:\n- 4\nversion:\n- 1\n- 0\n",
    )
    .unwrap();
    fs::write(root.join("short.array"), le_bytes(&[1.0f64, 2.0, 3.0])).unwrap();
    // A sparse array whose indptr decreases.
    fs::write(
        root.join("bad.yaml"),
        "data_dtype: float32\nindices_dtype: int32\nindptr_dtype: int32\nnnz: 3\nshape:\n- 3\n- 3\nversion:\n- 1\n- 0\n",
    )
    .unwrap();
    fs::write(root.join("bad.data"), le_bytes(&[1.0f32, 2.0, 3.0])).unwrap();
    fs::write(root.join("bad.indices"), le_bytes(&[0i32, 1, 2])).unwrap();
    fs::write(root.join("bad.indptr"), le_bytes(&[0i32, 2, 1, 3])).unwrap();
    // A bool array holding a byte other than 0 or 1 ([T2]).
    fs::write(
        root.join("flags.yaml"),
        "dtype: bool\nshape:\n- 3\nversion:\n- 1\n- 0\n",
    )
    .unwrap();
    fs::write(root.join("flags.array"), [1u8, 2, 0]).unwrap();
    // A data file that is a symlink to a file outside the directory ([N7]).
    let outside = dir.path().join("outside.bin");
    fs::write(&outside, le_bytes(&[1.0f64, 2.0])).unwrap();
    fs::write(
        root.join("link.yaml"),
        "dtype: float64\nshape:\n- 2\nversion:\n- 1\n- 0\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link.array")).unwrap();
    let before = snapshots(&root);

    let (c, report) = Container::adopt(&root).unwrap();
    let mut refused: Vec<PathBuf> = report.refused.iter().map(|r| r.path.clone()).collect();
    refused.sort();
    let croot = c.root().to_path_buf();
    assert_eq!(
        refused,
        ["bad.yaml", "flags.yaml", "link.yaml", "short.yaml"].map(|f| croot.join(f))
    );
    for r in &report.refused {
        assert!(!r.reason.is_empty(), "{}: empty reason", r.path.display());
    }
    let short_reason = &report
        .refused
        .iter()
        .find(|r| r.path.ends_with("short.yaml"))
        .unwrap()
        .reason;
    assert!(short_reason.contains("short.array"), "{short_reason}");
    let bad_reason = &report
        .refused
        .iter()
        .find(|r| r.path.ends_with("bad.yaml"))
        .unwrap()
        .reason;
    assert!(bad_reason.contains("decreases"), "{bad_reason}");
    let mut adopted = report.adopted.clone();
    adopted.sort();
    assert_eq!(adopted, ["cells", "grp/ids", "umis"]);
    assert_eq!(c.ls().unwrap(), ["cells", "grp/ids", "umis"]);
    assert!(c.open_array("short").is_err());
    assert!(c.open_array("bad").is_err());
    assert!(c.open_array("flags").is_err());
    assert!(c.open_array("link").is_err());
    // Refused files are left as they were, like the adopted ones.
    assert_eq!(snapshots(&root), before);
}

#[test]
fn the_reserved_directory_has_the_specified_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c = Container::create(&path).unwrap();
    let reserved = path.join(".dafstore");
    assert_eq!(
        fs::read_to_string(reserved.join("container.yaml")).unwrap(),
        "format: dafstore\nversion:\n- 1\n- 0\n"
    );
    assert!(reserved.join("catalog.sqlite").is_file());
    let mut locks: Vec<String> = fs::read_dir(reserved.join("locks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    locks.sort();
    let expected: Vec<String> = (0..64).map(|i| format!("{i:02}.lock")).collect();
    assert_eq!(locks, expected);
    // This process's session: 32 lowercase hex digits.
    let sessions = dafstore_tests::session_ids(&path);
    assert_eq!(sessions.len(), 1);
    assert!(
        sessions[0].len() == 32
            && sessions[0]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    // Writing arrays adds nothing else to the container's top level.
    c.write_dense::<u8>("x", &[1], &[1]).unwrap();
    let mut top: Vec<String> = fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, [".dafstore", "x.array", "x.yaml"]);
    drop(c);
    // A closed container leaves no session behind.
    assert!(dafstore_tests::session_ids(&path).is_empty());
}
