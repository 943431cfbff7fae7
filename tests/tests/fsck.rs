//! fsck through the engine API: a clean container is clean; each kind of damage is found with a
//! message naming the file; repair fixes what can be fixed without losing committed data (a second
//! repair finds nothing) and leaves damage to committed data reported.

use std::fs;
use std::path::Path;

use dafstore::{Container, FsckOptions, FsckReport, ProblemKind};
use dafstore_tests::container_with_x_and_m;

fn fsck(dir: &Path, deep: bool, repair: bool) -> FsckReport {
    Container::fsck_dir(dir, FsckOptions { deep, repair }, &mut |_, _| {}).unwrap()
}

fn kinds(r: &FsckReport) -> Vec<ProblemKind> {
    r.problems.iter().map(|p| p.kind).collect()
}

#[test]
fn a_clean_container_is_clean_even_deep() {
    let (_t, dir) = container_with_x_and_m();
    let r = fsck(&dir, true, false);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.arrays_checked, 2);
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn garbage_yaml_is_rewritten_from_the_catalog_and_a_second_repair_is_clean() {
    let (_t, dir) = container_with_x_and_m();
    fs::write(dir.join("x.yaml"), b"::: not yaml [").unwrap();
    let r = fsck(&dir, false, false);
    assert_eq!(kinds(&r), vec![ProblemKind::MetadataMismatch]);
    assert!(
        r.problems[0].message.contains("x.yaml"),
        "{}",
        r.problems[0].message
    );
    assert_eq!(r.exit_code(), 4);
    assert_eq!(fsck(&dir, false, true).exit_code(), 1);
    assert_eq!(fsck(&dir, true, true).exit_code(), 0);
    let doc = dafstore::internals::inspect::read_array_files(&dir, "x", true).unwrap();
    assert_eq!(doc.meta.shape(), vec![2, 3]);
}

#[test]
fn a_yaml_that_disagrees_with_the_catalog_is_found() {
    let (_t, dir) = container_with_x_and_m();
    let text = fs::read_to_string(dir.join("x.yaml"))
        .unwrap()
        .replace("- 2\n- 3\n", "- 3\n- 2\n");
    fs::write(dir.join("x.yaml"), text).unwrap();
    let r = fsck(&dir, false, true);
    assert_eq!(kinds(&r), vec![ProblemKind::MetadataMismatch]);
    assert_eq!(r.exit_code(), 1);
    assert_eq!(fsck(&dir, false, false).exit_code(), 0);
}

#[test]
fn damage_to_committed_data_is_reported_never_repaired_or_deleted() {
    let (_t, dir) = container_with_x_and_m();
    let f = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("x.array"))
        .unwrap();
    f.set_len(8).unwrap();
    // indptr decreasing: [0, 2, 1] as int64
    let mut ptr = Vec::new();
    for v in [0i64, 2, 1] {
        ptr.extend_from_slice(&v.to_le_bytes());
    }
    fs::write(dir.join("m.indptr"), &ptr).unwrap();
    let r = fsck(&dir, false, true);
    let mut k = kinds(&r);
    k.sort();
    assert_eq!(
        k,
        vec![ProblemKind::SizeMismatch, ProblemKind::SparseInvariant]
    );
    assert_eq!(r.exit_code(), 4);
    assert!(r.problems.iter().any(|p| p.path.ends_with("x.array")));
    assert!(
        dir.join("x.array").exists() && dir.join("m.indptr").exists(),
        "nothing deleted"
    );
    assert_eq!(fsck(&dir, false, true).exit_code(), 4, "still reported");
}

#[test]
fn deep_finds_a_flipped_byte_plain_does_not() {
    let (_t, dir) = container_with_x_and_m();
    let mut bytes = fs::read(dir.join("x.array")).unwrap();
    bytes[3] ^= 0x40;
    // Rewrite in place (same inode, same size), as bit rot would.
    fs::OpenOptions::new()
        .write(true)
        .open(dir.join("x.array"))
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(&bytes)
        })
        .unwrap();
    assert_eq!(fsck(&dir, false, false).exit_code(), 0);
    let r = fsck(&dir, true, false);
    assert_eq!(kinds(&r), vec![ProblemKind::ChecksumMismatch]);
    assert!(r.problems[0].path.ends_with("x.array"));
}

#[test]
fn orphans_staging_leftovers_and_missing_files() {
    let (_t, dir) = container_with_x_and_m();
    // A complete orphan array (files in place, unknown to the catalog).
    fs::write(
        dir.join("o.yaml"),
        "dtype: int8\nshape:\n- 2\nversion:\n- 1\n- 0\n",
    )
    .unwrap();
    fs::write(dir.join("o.array"), [1u8, 2]).unwrap();
    // A lone array file.
    fs::write(dir.join("lone.indices"), [0u8; 4]).unwrap();
    // Staging files of a dead session.
    let st = dir.join(".dafstore/staging/0123456789abcdef0123456789abcdef");
    fs::create_dir_all(&st).unwrap();
    fs::write(st.join("0.array"), [0u8; 8]).unwrap();
    // A missing data file.
    fs::remove_file(dir.join("m.data")).unwrap();
    let r = fsck(&dir, false, false);
    let mut k = kinds(&r);
    k.sort();
    assert_eq!(
        k,
        vec![
            ProblemKind::MissingFile,
            ProblemKind::StagingLeftover,
            ProblemKind::OrphanArray,
            ProblemKind::OrphanFile
        ]
    );
    let r = fsck(&dir, false, true);
    assert_eq!(
        r.exit_code(),
        4,
        "the missing file and the lone file cannot be fixed"
    );
    let fixed: Vec<_> = r
        .problems
        .iter()
        .filter(|p| p.fixed)
        .map(|p| p.kind)
        .collect();
    assert!(
        fixed.contains(&ProblemKind::OrphanArray) && fixed.contains(&ProblemKind::StagingLeftover)
    );
    assert!(!st.exists());
    assert!(
        dir.join("lone.indices").exists(),
        "never deletes what it cannot explain"
    );
    let c = Container::open(&dir).unwrap();
    assert_eq!(&*c.open_dense::<i8>("o").unwrap(), &[1, 2]);
}

#[test]
fn a_catalog_staging_location_outside_the_container_is_corrupt_and_never_followed() {
    // A damaged (or hostile) catalog row claims an unfinished publish of `x` whose staged files
    // are `../../outside/o.*`. Recovery would rename them onto `x.*`: it must refuse the row
    // and leave both the files outside and the published `x` alone.
    let (t, dir) = container_with_x_and_m();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    for sfx in ["yaml", "array"] {
        fs::copy(
            dir.join(format!("x.{sfx}")),
            outside.join(format!("o.{sfx}")),
        )
        .unwrap();
    }
    let before: Vec<Vec<u8>> = ["yaml", "array"]
        .iter()
        .map(|s| fs::read(outside.join(format!("o.{s}"))).unwrap())
        .collect();
    let x_before = fs::read(dir.join("x.array")).unwrap();
    let db = rusqlite::Connection::open(dir.join(".dafstore/catalog.sqlite")).unwrap();
    db.execute(
        "UPDATE arrays SET state = 'publishing', staging = '../../../outside/o' WHERE name = 'x'",
        [],
    )
    .unwrap();
    drop(db);
    let c = Container::open(&dir).expect("the rest of the container stays usable");
    assert_eq!(c.open_sparse("m").unwrap().nnz(), 2);
    let err = c
        .open_dense::<f64>("x")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    drop(c);
    assert!(err.contains("staging location"), "{err}");
    assert!(err.contains("fsck"), "the error says what to do: {err}");
    for (s, b) in ["yaml", "array"].iter().zip(&before) {
        assert_eq!(
            &fs::read(outside.join(format!("o.{s}"))).unwrap(),
            b,
            "outside o.{s} kept"
        );
    }
    assert_eq!(fs::read(dir.join("x.array")).unwrap(), x_before);
    let r = fsck(&dir, false, false);
    assert_eq!(kinds(&r), [ProblemKind::CatalogCorrupt], "{r:?}");
    assert!(r.problems[0].message.contains("staging location"), "{r:?}");
    let r = fsck(&dir, false, true);
    assert_eq!(
        kinds(&r),
        [ProblemKind::CatalogCorrupt],
        "repair leaves it reported: {r:?}"
    );
    assert!(!r.problems[0].fixed);
    assert_eq!(
        fs::read(dir.join("x.array")).unwrap(),
        x_before,
        "x's files kept by repair"
    );
}
