//! Replacing or removing an array never changes what an existing handle reads (new inodes, old maps
//! stay valid, [W4]); a remove is immediate without holders and deferred to the last handle while
//! held ([W8]); opens of one array share one map per process; in-place (`r+`) writes reach the
//! file and restore the checksum when the last writer closes ([W7]); copy-on-write (`c`) writes
//! stay private; a read-only container can read but not write.

use std::fs;
use std::path::Path;

use dafstore::internals::checksum::crc32c;
use dafstore::internals::meta::parse_yaml;
use dafstore::{Array, Container, DType, IndexSlice, Layout, OpenError, Removal, WriteError};
use dafstore_tests::new_container;
use dafstore_tests::{inode, le_bytes, listing};

fn yaml_text(c: &Container, name: &str) -> String {
    fs::read_to_string(c.root().join(format!("{name}.yaml"))).unwrap()
}

fn indices_of(s: IndexSlice<'_>) -> Vec<u64> {
    (0..s.len()).map(|i| s.get(i).unwrap()).collect()
}

#[test]
fn replacing_a_dense_array_leaves_old_handles_reading_old_values() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[3], &[1.0, 2.0, 3.0]).unwrap();
    let old = c.open_dense::<f64>("x").unwrap();
    let old_inode = inode(&c.root().join("x.array"));
    let old_yaml_inode = inode(&c.root().join("x.yaml"));
    let old_generation = old.untyped().generation();

    c.write_dense::<f64>("x", &[4], &[7.0, 8.0, 9.0, 10.0])
        .unwrap();
    assert_eq!(old.as_slice(), &[1.0, 2.0, 3.0]);
    assert_eq!(old.shape(), &[3]);
    let new = c.open_dense::<f64>("x").unwrap();
    assert_eq!(new.as_slice(), &[7.0, 8.0, 9.0, 10.0]);
    assert_eq!(new.shape(), &[4]);
    assert!(new.untyped().generation() > old_generation);
    assert_ne!(inode(&c.root().join("x.array")), old_inode);
    assert_ne!(inode(&c.root().join("x.yaml")), old_yaml_inode);
    assert_eq!(
        fs::read(c.root().join("x.array")).unwrap(),
        le_bytes(&[7.0f64, 8.0, 9.0, 10.0])
    );
    // The old handle is still intact after the new one goes, and vice versa.
    drop(new);
    assert_eq!(old.as_slice(), &[1.0, 2.0, 3.0]);

    // Same length, same dtype: still detected (the cache is keyed by inode, not by size).
    c.write_dense::<f64>("x", &[4], &[-1.0, -2.0, -3.0, -4.0])
        .unwrap();
    assert_eq!(
        c.open_dense::<f64>("x").unwrap().as_slice(),
        &[-1.0, -2.0, -3.0, -4.0]
    );
    // Another dtype and rank.
    let before = c.open_dense::<f64>("x").unwrap();
    c.write_dense::<i32>("x", &[2, 2], &[1, 2, 3, 4]).unwrap();
    assert_eq!(before.as_slice(), &[-1.0, -2.0, -3.0, -4.0]);
    assert!(matches!(
        c.open_dense::<f64>("x"),
        Err(OpenError::DtypeMismatch { .. })
    ));
    let now = c.open_dense::<i32>("x").unwrap();
    assert_eq!(
        (now.shape(), now.as_slice()),
        (&[2u64, 2][..], &[1, 2, 3, 4][..])
    );
    assert_eq!(old.as_slice(), &[1.0, 2.0, 3.0]);
    assert_eq!(c.ls().unwrap(), ["x"]);
}

#[test]
fn replacing_a_sparse_array_leaves_old_handles_reading_old_values() {
    let (_d, c) = new_container();
    c.write_sparse::<f32, i32, i64>("s", Layout::Rows, [2, 3], &[1.0, 2.0], &[0, 2], &[0, 1, 2])
        .unwrap();
    let old = c.open_sparse("s").unwrap();
    let inodes: Vec<u64> = ["data", "indices", "indptr"]
        .iter()
        .map(|s| inode(&c.root().join(format!("s.{s}"))))
        .collect();
    c.write_sparse::<f32, i32, i64>(
        "s",
        Layout::Columns,
        [2, 3],
        &[5.0, 6.0, 7.0],
        &[1, 0, 1],
        &[0, 1, 2, 3],
    )
    .unwrap();
    assert_eq!(old.layout(), Layout::Rows);
    assert_eq!(old.data::<f32>().unwrap(), &[1.0, 2.0]);
    assert_eq!(indices_of(old.indices()), [0, 2]);
    assert_eq!(indices_of(old.indptr()), [0, 1, 2]);
    let new = c.open_sparse("s").unwrap();
    assert_eq!(new.layout(), Layout::Columns);
    assert_eq!(new.nnz(), 3);
    assert_eq!(new.data::<f32>().unwrap(), &[5.0, 6.0, 7.0]);
    assert_eq!(indices_of(new.indices()), [1, 0, 1]);
    assert_eq!(indices_of(new.indptr()), [0, 1, 2, 3]);
    for (i, s) in ["data", "indices", "indptr"].iter().enumerate() {
        assert_ne!(inode(&c.root().join(format!("s.{s}"))), inodes[i], "s.{s}");
    }
}

#[test]
fn replacing_dense_by_sparse_and_back_removes_the_other_kinds_files() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[3], &[1.0, 2.0, 3.0]).unwrap();
    let old = c.open_dense::<f64>("x").unwrap();
    c.write_sparse::<f64, i32, i32>("x", Layout::Rows, [1, 3], &[4.0], &[2], &[0, 1])
        .unwrap();
    let files: Vec<_> = listing(c.root()).into_keys().collect();
    assert_eq!(
        files,
        ["x.data", "x.indices", "x.indptr", "x.yaml"].map(std::path::PathBuf::from)
    );
    assert_eq!(old.as_slice(), &[1.0, 2.0, 3.0]);
    assert!(matches!(
        c.open_dense::<f64>("x"),
        Err(OpenError::KindMismatch {
            actual: "sparse",
            ..
        })
    ));
    let sparse = c.open_sparse("x").unwrap();
    assert_eq!(sparse.data::<f64>().unwrap(), &[4.0]);
    assert!(matches!(c.open_array("x").unwrap(), Array::Sparse(_)));

    c.write_dense::<u8>("x", &[2], &[8, 9]).unwrap();
    let files: Vec<_> = listing(c.root()).into_keys().collect();
    assert_eq!(files, ["x.array", "x.yaml"].map(std::path::PathBuf::from));
    assert_eq!(sparse.data::<f64>().unwrap(), &[4.0]);
    assert_eq!(indices_of(sparse.indices()), [2]);
    assert_eq!(old.as_slice(), &[1.0, 2.0, 3.0]);
    assert_eq!(c.open_dense::<u8>("x").unwrap().as_slice(), &[8, 9]);
    assert_eq!(c.ls().unwrap(), ["x"]);
}

#[test]
fn two_opens_of_one_array_share_one_map() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[512], &[0.5; 512]).unwrap();
    let a = c.open_dense::<f64>("x").unwrap();
    let b = c.open_dense::<f64>("x").unwrap();
    assert_eq!(
        a.untyped().as_bytes().as_ptr(),
        b.untyped().as_bytes().as_ptr()
    );
    let u = c.open_dense_untyped("x").unwrap();
    assert_eq!(u.as_bytes().as_ptr(), a.untyped().as_bytes().as_ptr());
    let Array::Dense(g) = c.open_array("x").unwrap() else {
        panic!("not dense")
    };
    assert_eq!(g.as_bytes().as_ptr(), a.untyped().as_bytes().as_ptr());

    c.write_sparse::<f32, i32, i32>("s", Layout::Rows, [1, 2], &[1.0], &[1], &[0, 1])
        .unwrap();
    let s1 = c.open_sparse("s").unwrap();
    let s2 = c.open_sparse("s").unwrap();
    assert_eq!(s1.data_bytes().as_ptr(), s2.data_bytes().as_ptr());
    assert_eq!(s1.indices_bytes().as_ptr(), s2.indices_bytes().as_ptr());
    assert_eq!(s1.indptr_bytes().as_ptr(), s2.indptr_bytes().as_ptr());
}

#[test]
fn container_handles_on_one_directory_share_maps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    let c1 = Container::create(&path).unwrap();
    c1.write_dense::<i32>("x", &[1024], &[3; 1024]).unwrap();
    let c2 = Container::open(&path).unwrap();
    // Through another spelling of the same directory.
    let c3 = Container::open(dir.path().join("c/../c")).unwrap();
    let ro = Container::options().read_only(true).open(&path).unwrap();
    let a = c1.open_dense::<i32>("x").unwrap();
    let ptr = a.untyped().as_bytes().as_ptr();
    for (which, c) in [("c2", &c2), ("c3", &c3), ("read-only", &ro)] {
        let b = c.open_dense::<i32>("x").unwrap();
        assert_eq!(b.untyped().as_bytes().as_ptr(), ptr, "{which}");
        assert_eq!(b.as_slice(), a.as_slice());
    }
    // A replace through one handle is seen by the others.
    c2.write_dense::<i32>("x", &[2], &[4, 5]).unwrap();
    assert_eq!(c1.open_dense::<i32>("x").unwrap().as_slice(), &[4, 5]);
    assert_eq!(ro.open_dense::<i32>("x").unwrap().as_slice(), &[4, 5]);
    assert_eq!(a.as_slice(), &[3; 1024]);
}

#[test]
fn in_place_writes_reach_the_file_and_restore_the_checksum_on_close() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[2, 2], &[1.0, 2.0, 3.0, 4.0])
        .unwrap();
    let reader = c.open_dense::<f64>("x").unwrap();
    let written_yaml = yaml_text(&c, "x");
    assert!(written_yaml.starts_with("crc32c:\n  array: "));

    let mut w = c.open_dense_mut::<f64>("x").unwrap();
    assert_eq!(w.shape(), &[2, 2]);
    assert_eq!(w.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
    // While a writer is open the checksum is absent from the metadata and stale in the catalog.
    let yaml_open = yaml_text(&c, "x");
    assert!(!yaml_open.contains("crc32c"), "{yaml_open}");
    assert_eq!(
        yaml_open,
        "dtype: float64\nshape:\n- 2\n- 2\nversion:\n- 1\n- 1\n"
    );
    let doc = parse_yaml(yaml_open.as_bytes(), Path::new("x.yaml")).unwrap();
    assert!(doc.crc32c.is_empty());
    assert!(c.info("x").unwrap().checksum_stale);

    w.as_mut_slice().copy_from_slice(&[10.0, 20.0, 30.0, 40.0]);
    // Shared memory: a read handle of the same file sees the writes.
    assert_eq!(reader.as_slice(), &[10.0, 20.0, 30.0, 40.0]);
    w.flush().unwrap();
    w.close().unwrap();

    let new_bytes = le_bytes(&[10.0f64, 20.0, 30.0, 40.0]);
    assert_eq!(fs::read(c.root().join("x.array")).unwrap(), new_bytes);
    drop(reader);
    assert_eq!(
        c.open_dense::<f64>("x").unwrap().as_slice(),
        &[10.0, 20.0, 30.0, 40.0]
    );
    let crc = crc32c(&new_bytes);
    let rec = c.info("x").unwrap();
    assert!(!rec.checksum_stale);
    assert_eq!(rec.files[0].crc32c, Some(crc));
    let yaml = yaml_text(&c, "x");
    assert_eq!(
        yaml,
        format!("crc32c:\n  array: {crc}\ndtype: float64\nshape:\n- 2\n- 2\nversion:\n- 1\n- 1\n")
    );
    let doc = parse_yaml(yaml.as_bytes(), Path::new("x.yaml")).unwrap();
    assert_eq!(doc.crc32c.get("array"), Some(&crc));
}

#[test]
fn the_checksum_comes_back_only_when_the_last_in_place_writer_closes() {
    let (_d, c) = new_container();
    c.write_dense::<i32>("x", &[3], &[1, 2, 3]).unwrap();
    let mut w1 = c.open_dense_mut::<i32>("x").unwrap();
    let mut w2 = c.open_dense_mut::<i32>("x").unwrap();
    w1.as_mut_slice()[0] = 100;
    assert_eq!(w2.as_slice()[0], 100, "writers share the file");
    w2.as_mut_slice()[2] = 300;
    w1.close().unwrap();
    assert!(!yaml_text(&c, "x").contains("crc32c"));
    assert!(c.info("x").unwrap().checksum_stale);
    // Dropping closes too.
    drop(w2);
    let crc = crc32c(&le_bytes(&[100i32, 2, 300]));
    let rec = c.info("x").unwrap();
    assert!(!rec.checksum_stale);
    assert_eq!(rec.files[0].crc32c, Some(crc));
    assert!(yaml_text(&c, "x").contains(&format!("crc32c:\n  array: {crc}\n")));
    assert_eq!(c.open_dense::<i32>("x").unwrap().as_slice(), &[100, 2, 300]);
}

#[test]
fn copy_on_write_opens_keep_their_writes_private() {
    let (_d, c) = new_container();
    c.write_dense::<u16>("x", &[4], &[1, 2, 3, 4]).unwrap();
    let yaml = yaml_text(&c, "x");
    let shared = c.open_dense::<u16>("x").unwrap();
    let mut p = c.open_dense_private::<u16>("x").unwrap();
    assert_eq!(p.shape(), &[4]);
    assert_eq!(p.as_slice(), &[1, 2, 3, 4]);
    p.as_mut_slice().copy_from_slice(&[9, 9, 9, 9]);
    assert_eq!(p.as_slice(), &[9, 9, 9, 9]);
    assert_eq!(shared.as_slice(), &[1, 2, 3, 4]);
    let other = c.open_dense_private::<u16>("x").unwrap();
    assert_eq!(other.as_slice(), &[1, 2, 3, 4]);
    assert_eq!(
        fs::read(c.root().join("x.array")).unwrap(),
        le_bytes(&[1u16, 2, 3, 4])
    );
    drop(p);
    assert_eq!(c.open_dense::<u16>("x").unwrap().as_slice(), &[1, 2, 3, 4]);
    // Private opens are not in-place writes: the checksum stays.
    assert_eq!(yaml_text(&c, "x"), yaml);
    assert!(!c.info("x").unwrap().checksum_stale);
    // Zero-size arrays open privately as empty.
    c.write_dense::<u16>("z", &[0], &[]).unwrap();
    let mut z = c.open_dense_private::<u16>("z").unwrap();
    assert!(z.as_mut_slice().is_empty());
}

fn exists(c: &Container, file: &str) -> bool {
    c.root().join(file).exists()
}

const X_FILES: [&str; 2] = ["x.yaml", "x.array"];
const S_FILES: [&str; 4] = ["grp/s.yaml", "grp/s.data", "grp/s.indices", "grp/s.indptr"];

#[test]
fn remove_without_holders_deletes_the_files_at_once() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[3], &[1.0, 2.0, 3.0]).unwrap();
    c.write_sparse::<f32, i32, i32>("grp/s", Layout::Rows, [1, 2], &[5.0], &[1], &[0, 1])
        .unwrap();
    c.write_dense::<u8>("keep", &[1], &[1]).unwrap();
    // A read-only handle takes no reference (SPEC 9.3): its map survives an immediate removal.
    let ro = Container::options().read_only(true).open(c.root()).unwrap();
    let x = ro.open_dense::<f64>("x").unwrap();
    let s = ro.open_sparse("grp/s").unwrap();

    assert_eq!(c.remove("x").unwrap(), Removal::Removed);
    assert_eq!(c.remove("grp/s").unwrap(), Removal::Removed);
    for f in X_FILES.iter().chain(&S_FILES) {
        assert!(!exists(&c, f), "{f} still exists");
    }
    assert_eq!(c.ls().unwrap(), ["keep"]);
    assert_eq!(x.as_slice(), &[1.0, 2.0, 3.0]);
    assert_eq!(s.data::<f32>().unwrap(), &[5.0]);
    assert_eq!(indices_of(s.indices()), [1]);
    for opener in [&c, &ro] {
        match opener.open_dense::<f64>("x") {
            Err(OpenError::NotFound { name, .. }) => assert_eq!(name, "x"),
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("opened a removed array"),
        }
        assert!(matches!(
            opener.open_sparse("grp/s"),
            Err(OpenError::NotFound { .. })
        ));
    }
    assert!(matches!(c.info("x"), Err(OpenError::NotFound { .. })));
    match c.remove("x") {
        Err(WriteError::NotFound { name, .. }) => assert_eq!(name, "x"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.remove("never"),
        Err(WriteError::NotFound { .. })
    ));
    // The name can be used again.
    c.write_dense::<f64>("x", &[1], &[42.0]).unwrap();
    assert_eq!(c.open_dense::<f64>("x").unwrap().as_slice(), &[42.0]);
    assert_eq!(x.as_slice(), &[1.0, 2.0, 3.0]);
}

#[test]
fn remove_while_held_is_deferred_until_the_last_handle_drops() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[3], &[1.0, 2.0, 3.0]).unwrap();
    c.write_sparse::<f32, i32, i32>("grp/s", Layout::Rows, [1, 2], &[5.0], &[1], &[0, 1])
        .unwrap();
    c.write_dense::<u8>("keep", &[1], &[1]).unwrap();
    let x = c.open_dense::<f64>("x").unwrap();
    let x2 = c.open_dense::<f64>("x").unwrap();
    let s = c.open_sparse("grp/s").unwrap();

    // This process holds both: removal is deferred ([W8]).
    assert_eq!(c.remove("x").unwrap(), Removal::Deferred { holders: 1 });
    assert_eq!(c.remove("grp/s").unwrap(), Removal::Deferred { holders: 1 });
    assert_eq!(c.ls().unwrap(), ["keep"]);
    assert!(matches!(c.info("x"), Err(OpenError::NotFound { .. })));
    for f in X_FILES.iter().chain(&S_FILES) {
        assert!(exists(&c, f), "{f} removed while held");
    }
    assert_eq!(x.as_slice(), &[1.0, 2.0, 3.0]);
    assert_eq!(s.data::<f32>().unwrap(), &[5.0]);
    // A holder may still open it; a read-only handle (no reference) may not.
    assert_eq!(
        c.open_dense::<f64>("x").unwrap().as_slice(),
        &[1.0, 2.0, 3.0]
    );
    let ro = Container::options().read_only(true).open(c.root()).unwrap();
    assert!(matches!(
        ro.open_dense::<f64>("x"),
        Err(OpenError::NotFound { .. })
    ));

    // The last handle of each array performs its removal.
    drop(x);
    assert!(exists(&c, "x.array"), "removed while a handle remains");
    drop(x2);
    for f in X_FILES {
        assert!(!exists(&c, f), "{f} left after the last handle");
    }
    assert!(exists(&c, "grp/s.data"));
    drop(s);
    for f in S_FILES {
        assert!(!exists(&c, f), "{f} left after the last handle");
    }
    assert!(matches!(
        c.open_dense::<f64>("x"),
        Err(OpenError::NotFound { .. })
    ));
    assert!(matches!(c.remove("x"), Err(WriteError::NotFound { .. })));
    assert!(c.info_all().unwrap().iter().all(|r| r.name == "keep"));
    assert_eq!(c.ls().unwrap(), ["keep"]);
}

#[test]
fn republishing_a_name_whose_removal_is_deferred_cancels_the_removal() {
    let (_d, c) = new_container();
    c.write_dense::<f64>("x", &[2], &[1.0, 2.0]).unwrap();
    let old = c.open_dense::<f64>("x").unwrap();
    assert!(matches!(c.remove("x").unwrap(), Removal::Deferred { .. }));
    c.write_dense::<f64>("x", &[1], &[9.0]).unwrap();
    assert_eq!(c.ls().unwrap(), ["x"]);
    assert_eq!(old.as_slice(), &[1.0, 2.0]);
    drop(old);
    // Releasing the old generation must not delete the new one.
    assert_eq!(c.ls().unwrap(), ["x"]);
    assert!(exists(&c, "x.yaml") && exists(&c, "x.array"));
    assert_eq!(c.open_dense::<f64>("x").unwrap().as_slice(), &[9.0]);
}

#[test]
fn a_read_only_container_reads_but_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    {
        let c = Container::create(&path).unwrap();
        c.write_dense::<f64>("x", &[2], &[1.0, 2.0]).unwrap();
        c.write_sparse::<f32, i32, i32>("s", Layout::Rows, [1, 2], &[5.0], &[1], &[0, 1])
            .unwrap();
    }
    let ro = Container::options().read_only(true).open(&path).unwrap();
    assert!(ro.is_read_only());
    assert_eq!(ro.ls().unwrap(), ["s", "x"]);
    assert_eq!(ro.open_dense::<f64>("x").unwrap().as_slice(), &[1.0, 2.0]);
    assert_eq!(ro.open_sparse("s").unwrap().nnz(), 1);
    assert_eq!(
        ro.open_dense_private::<f64>("x").unwrap().as_slice(),
        &[1.0, 2.0]
    );
    let before = listing(&path);
    let yaml = fs::read(path.join("x.yaml")).unwrap();
    match ro.write_dense::<f64>("y", &[1], &[1.0]) {
        Err(WriteError::ReadOnly { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ro.write_dense::<f64>("x", &[1], &[1.0]),
        Err(WriteError::ReadOnly { .. })
    ));
    assert!(matches!(
        ro.write_sparse::<f32, i32, i32>("t", Layout::Rows, [1, 1], &[1.0], &[0], &[0, 1]),
        Err(WriteError::ReadOnly { .. })
    ));
    assert!(matches!(
        ro.create_dense::<f64>("y", &[1]).map(drop),
        Err(WriteError::ReadOnly { .. })
    ));
    assert!(matches!(ro.remove("x"), Err(WriteError::ReadOnly { .. })));
    assert!(matches!(
        ro.open_dense_mut::<f64>("x").map(drop),
        Err(OpenError::ReadOnly { .. })
    ));
    assert_eq!(listing(&path), before);
    assert_eq!(fs::read(path.join("x.yaml")).unwrap(), yaml);
    assert_eq!(ro.ls().unwrap(), ["s", "x"]);
    // A read-only handle sees what a read-write handle publishes.
    let rw = Container::open(&path).unwrap();
    rw.write_dense::<f64>("x", &[1], &[9.0]).unwrap();
    assert_eq!(ro.open_dense::<f64>("x").unwrap().as_slice(), &[9.0]);
    assert_eq!(rw.info("x").unwrap().meta.dtype(), Some(DType::Float64));
}
