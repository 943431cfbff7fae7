//! Path hardening (issue 14): containers never nest ([C4]); no open can block on a FIFO or other
//! special file ([N9]); no link is followed in any directory component, by readers, writers,
//! removers, fsck or gc ([N7]); names with control or bidi characters are refused and never
//! printed raw ([N8]); names too long for PATH_MAX are refused before anything is touched
//! ([N10]); a removed container is never re-created ([C5]).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use dafstore::{
    ArrayState, Container, ContainerError, FsckOptions, FsckReport, OpenError, PathError,
    ProblemKind, WriteError,
};
use dafstore_tests::dafctl_bin;

/// Generous bound on an operation that must not block, so a hang fails the test instead of
/// hanging the suite (not a timing assertion: the operations take microseconds).
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `f` on a thread; panics if it has not returned within [`DEADLINE`] (it blocked).
fn without_blocking<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("{what} blocked (a FIFO was opened for reading)"))
}

fn fsck(dir: &Path, deep: bool, repair: bool) -> FsckReport {
    Container::fsck_dir(dir, FsckOptions { deep, repair }, &mut |_, _| {}).unwrap()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

fn problems_of(r: &FsckReport, kind: ProblemKind) -> Vec<&dafstore::Problem> {
    r.problems.iter().filter(|p| p.kind == kind).collect()
}

// ---------------------------------------------------------------------------------------------
// [C4] Containers never nest.

#[test]
fn a_container_cannot_be_created_inside_another_container_even_deeper_down() {
    let t = tempfile::tempdir().unwrap();
    let outer = t.path().join("o");
    Container::create(&outer).unwrap();
    for inner in [outer.join("inner"), outer.join("a/b/inner")] {
        match Container::create(&inner) {
            Err(ContainerError::Path(PathError::WouldNest { other, .. })) => {
                assert_eq!(other, fs::canonicalize(&outer).unwrap())
            }
            other => panic!("{}: {other:?}", inner.display()),
        }
        assert!(
            !inner.exists(),
            "nothing is created for a refused container"
        );
    }
    assert!(!outer.join("a").exists());
}

#[test]
fn a_container_cannot_be_created_above_another_container() {
    let t = tempfile::tempdir().unwrap();
    let outer = t.path().join("o");
    let inner = outer.join("deep/inner");
    Container::create(&inner).unwrap();
    let err = Container::create(&outer).unwrap_err();
    assert!(
        matches!(&err, ContainerError::Path(PathError::WouldNest { other, .. }) if *other == outer.join("deep/inner")),
        "{err:?}"
    );
    assert!(err.to_string().contains("[C4]"), "{err}");
    assert!(!outer.join(".dafstore").exists());
    // adopt of the parent makes a container there too: refused the same way.
    assert!(matches!(
        Container::adopt(&outer),
        Err(ContainerError::Path(PathError::WouldNest { .. }))
    ));
}

/// A container moved into another one (or made before containers refused to nest).
fn nested_pair() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let outer = t.path().join("o");
    Container::create(&outer)
        .unwrap()
        .write_dense::<i64>("top", &[1], &[1])
        .unwrap();
    let elsewhere = t.path().join("inner");
    let c = Container::create(&elsewhere).unwrap();
    c.write_dense::<i64>("x", &[2], &[7, 8]).unwrap();
    c.write_dense::<i64>("y", &[2], &[9, 10]).unwrap();
    drop(c);
    let inner = outer.join("inner");
    fs::rename(&elsewhere, &inner).unwrap();
    (t, outer, inner)
}

#[test]
fn fsck_repair_and_adopt_of_the_outer_container_never_take_a_nested_containers_arrays() {
    let (_t, outer, inner) = nested_pair();
    let r = fsck(&outer, false, true);
    let nested = problems_of(&r, ProblemKind::NestedContainer);
    assert_eq!(nested.len(), 1, "{:?}", r.problems);
    assert_eq!(nested[0].path, fs::canonicalize(&inner).unwrap());
    assert!(!nested[0].fixed);
    assert!(
        problems_of(&r, ProblemKind::OrphanArray).is_empty(),
        "{:?}",
        r.problems
    );
    let (c, report) = Container::adopt(&outer).unwrap();
    assert!(report.adopted.is_empty(), "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(c.ls().unwrap(), ["top"]);
}

#[test]
fn writes_removes_and_opens_through_a_nested_container_are_refused_and_touch_nothing() {
    let (_t, outer, inner) = nested_pair();
    let c = Container::open(&outer).unwrap();
    let before = fs::read(inner.join("y.array")).unwrap();
    assert!(matches!(
        c.write_dense::<i64>("inner/y", &[2], &[0, 0]),
        Err(WriteError::Path(PathError::NestedContainer { .. }))
    ));
    assert!(matches!(
        c.write_dense::<i64>("inner/new/z", &[1], &[0]),
        Err(WriteError::Path(PathError::NestedContainer { .. }))
    ));
    assert_eq!(fs::read(inner.join("y.array")).unwrap(), before);
    assert!(!inner.join("new").exists());
    // Even with a row for it in the outer catalog (registered before the fix), open and
    // remove refuse to go into the inner container.
    assert!(matches!(
        c.open_dense::<i64>("inner/x"),
        Err(OpenError::NotFound { .. } | OpenError::Path(PathError::NestedContainer { .. }))
    ));
    assert!(matches!(
        dafstore::internals::inspect::read_array_files(&outer, "inner/x", false),
        Err(dafstore::internals::inspect::InspectError::Path(
            PathError::NestedContainer { .. }
        ))
    ));
    assert!(inner.join("x.array").is_file() && inner.join("x.yaml").is_file());
    // The inner container itself is untouched and usable.
    let ci = Container::open(&inner).unwrap();
    assert_eq!(&*ci.open_dense::<i64>("y").unwrap(), &[9, 10]);
}

// ---------------------------------------------------------------------------------------------
// [N9] No open blocks: FIFOs and other special files are refused after a non-blocking open.

#[test]
fn opening_an_array_whose_files_are_fifos_fails_at_once_naming_the_path_and_type() {
    let t = tempfile::tempdir().unwrap();
    let c = Container::create(t.path().join("c")).unwrap();
    c.write_dense::<i64>("x", &[2], &[1, 2]).unwrap();
    c.write_dense::<i64>("y", &[2], &[1, 2]).unwrap();
    let root = c.root().to_path_buf();
    fs::remove_file(root.join("x.array")).unwrap();
    mkfifo(&root.join("x.array"));
    fs::remove_file(root.join("y.yaml")).unwrap();
    mkfifo(&root.join("y.yaml"));
    let c2 = c.clone();
    let err = without_blocking("open", move || c2.open_dense::<i64>("x").map(drop)).unwrap_err();
    match &err {
        OpenError::Path(PathError::WrongType { path, found, .. }) => {
            assert_eq!(*path, root.join("x.array"));
            assert!(found.contains("FIFO"), "{found}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("FIFO"), "{err}");
    let r2 = root.clone();
    let err = without_blocking("read", move || {
        dafstore::internals::inspect::read_array_files(&r2, "y", false).map(|_| ())
    })
    .unwrap_err();
    assert!(err.to_string().contains("FIFO"), "{err}");
    // The name's stripe is free again: remove and replace do not block either.
    let c3 = c.clone();
    without_blocking("replace", move || {
        c3.write_dense::<i64>("x", &[1], &[5]).unwrap()
    });
    assert_eq!(&*c.open_dense::<i64>("x").unwrap(), &[5]);
    let c4 = c.clone();
    without_blocking("remove", move || c4.remove("y").unwrap());
}

#[test]
fn fsck_and_deep_fsck_report_fifos_and_never_block_on_them() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    let c = Container::create(&dir).unwrap();
    c.write_dense::<i64>("x", &[2], &[1, 2]).unwrap();
    drop(c);
    let root = fs::canonicalize(&dir).unwrap();
    fs::remove_file(root.join("x.array")).unwrap();
    mkfifo(&root.join("x.array"));
    mkfifo(&root.join("stray.yaml"));
    mkfifo(&root.join("stray.array"));
    for deep in [false, true] {
        let d = dir.clone();
        let r = without_blocking("fsck", move || fsck(&d, deep, false));
        let missing = problems_of(&r, ProblemKind::MissingFile);
        assert!(
            missing
                .iter()
                .any(|p| p.path == root.join("x.array") && p.message.contains("FIFO")),
            "{:?}",
            r.problems
        );
        let special = problems_of(&r, ProblemKind::SpecialFile);
        assert_eq!(special.len(), 2, "{:?}", r.problems);
    }
    let d = dir.clone();
    without_blocking("fsck --repair", move || fsck(&d, true, true));
    assert!(root.join("stray.yaml").exists(), "reported, never removed");
}

#[test]
fn a_fifo_in_place_of_a_lock_or_session_file_is_an_error_not_a_hang() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    let c = Container::create(&dir).unwrap();
    c.write_dense::<i64>("x", &[2], &[1, 2]).unwrap();
    drop(c);
    let root = fs::canonicalize(&dir).unwrap();
    let locks = root.join(".dafstore/locks");
    for e in fs::read_dir(&locks).unwrap() {
        let p = e.unwrap().path();
        fs::remove_file(&p).unwrap();
        mkfifo(&p);
    }
    let d = dir.clone();
    let r = without_blocking("open + write", move || {
        let c = Container::open(&d)?;
        c.write_dense::<i64>("y", &[1], &[1]).map_err(|e| {
            ContainerError::Io(dafstore::IoError {
                path: d.clone(),
                op: "write",
                source: std::io::Error::other(e.to_string()),
            })
        })
    });
    let err = r.unwrap_err();
    assert!(err.to_string().contains("FIFO"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// [N7] No link is followed in a directory component.

#[test]
fn writers_never_follow_a_directory_link_even_one_inside_the_container() {
    let t = tempfile::tempdir().unwrap();
    let c = Container::create(t.path().join("c")).unwrap();
    c.write_dense::<i64>("real/x", &[1], &[1]).unwrap();
    symlink(c.root().join("real"), c.root().join("d")).unwrap();
    match c.write_dense::<i64>("d/y", &[1], &[2]) {
        Err(WriteError::Path(PathError::Link { path })) => assert_eq!(path, c.root().join("d")),
        other => panic!("{other:?}"),
    }
    assert!(!c.root().join("real/y.yaml").exists());
    assert!(matches!(
        c.open_dense::<i64>("d/x"),
        Err(OpenError::Path(PathError::Link { .. }) | OpenError::NotFound { .. })
    ));
}

#[test]
fn deep_fsck_never_reads_through_a_directory_link_and_reports_the_link() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    let c = Container::create(&dir).unwrap();
    c.write_dense::<i64>("d/x", &[2], &[1, 2]).unwrap();
    let root = c.root().to_path_buf();
    drop(c);
    // The same bytes outside, and d replaced by a link to them: nothing may be read there.
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    for f in ["x.array", "x.yaml"] {
        fs::copy(root.join("d").join(f), outside.join(f)).unwrap();
    }
    fs::remove_dir_all(root.join("d")).unwrap();
    symlink(&outside, root.join("d")).unwrap();
    let r = fsck(&dir, true, false);
    let links = problems_of(&r, ProblemKind::Link);
    assert_eq!(links.len(), 1, "one report for the link: {:?}", r.problems);
    assert_eq!(links[0].path, root.join("d"));
    assert_eq!(links[0].name.as_deref(), Some("d/x"));
    assert!(links[0].message.contains("symbolic link"), "{:?}", links);
}

#[test]
fn removing_an_array_under_a_directory_link_is_refused_and_its_row_stays_live() {
    let t = tempfile::tempdir().unwrap();
    let c = Container::create(t.path().join("c")).unwrap();
    c.write_dense::<i64>("d/x", &[2], &[1, 2]).unwrap();
    let outside = t.path().join("outside");
    fs::rename(c.root().join("d"), &outside).unwrap();
    symlink(&outside, c.root().join("d")).unwrap();
    match c.remove("d/x") {
        Err(WriteError::Path(PathError::Link { path })) => assert_eq!(path, c.root().join("d")),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.info("d/x").unwrap().state, ArrayState::Live);
    assert!(outside.join("x.array").exists() && outside.join("x.yaml").exists());
    c.gc().unwrap();
}

#[test]
fn a_due_removal_under_a_directory_link_deletes_the_row_touches_nothing_outside_and_gc_succeeds() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    let c = Container::create(&dir).unwrap();
    c.write_dense::<i64>("d/x", &[2], &[1, 2]).unwrap();
    let held = c.hold("d/x").unwrap();
    // Deferred while held; the directory becomes a link before the last release runs it.
    assert!(matches!(
        c.remove("d/x").unwrap(),
        dafstore::Removal::Deferred { .. }
    ));
    let outside = t.path().join("outside");
    fs::rename(c.root().join("d"), &outside).unwrap();
    symlink(&outside, c.root().join("d")).unwrap();
    held.release().unwrap(); // the last release runs the removal
    c.gc().unwrap();
    assert!(c.info_all().unwrap().iter().all(|r| r.name != "d/x"));
    assert!(outside.join("x.array").exists() && outside.join("x.yaml").exists());
    let r = fsck(&dir, false, false);
    assert_eq!(
        problems_of(&r, ProblemKind::Link).len(),
        1,
        "{:?}",
        r.problems
    );
}

#[test]
fn gc_never_deletes_anything_through_a_linked_staging_directory_and_fsck_reports_the_link() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    Container::create(&dir).unwrap();
    let root = fs::canonicalize(&dir).unwrap();
    // Outside: a directory named like a dead session's staging directory, with a file.
    let outside = t.path().join("outside");
    let victim = outside.join("0123456789abcdef0123456789abcdef");
    fs::create_dir_all(&victim).unwrap();
    fs::write(victim.join("precious"), b"keep me").unwrap();
    let staging = root.join(".dafstore/staging");
    fs::remove_dir_all(&staging).unwrap();
    symlink(&outside, &staging).unwrap();
    let c = Container::open(&dir).unwrap();
    c.gc().unwrap();
    drop(c);
    assert_eq!(fs::read(victim.join("precious")).unwrap(), b"keep me");
    let r = fsck(&dir, false, true);
    let links = problems_of(&r, ProblemKind::Link);
    assert!(links.iter().any(|p| p.path == staging), "{:?}", r.problems);
    assert_eq!(fs::read(victim.join("precious")).unwrap(), b"keep me");
}

#[test]
fn a_write_with_staging_replaced_by_a_link_is_refused_and_writes_nothing_outside() {
    let t = tempfile::tempdir().unwrap();
    let c = Container::create(t.path().join("c")).unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let staging = c.root().join(".dafstore/staging");
    fs::remove_dir_all(&staging).unwrap();
    symlink(&outside, &staging).unwrap();
    assert!(matches!(
        c.write_dense::<i64>("x", &[1], &[1]),
        Err(WriteError::Path(PathError::Link { .. }))
    ));
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

// ---------------------------------------------------------------------------------------------
// [N8] [N10] [C5] Names and removed containers.

#[test]
fn names_with_control_bidi_or_separator_characters_are_refused_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    let c = Container::create(t.path().join("c")).unwrap();
    for name in [
        "a\nb",
        "a\u{1b}[2Jb",
        "a\u{7f}",
        "a\u{85}",
        "a\u{9b}",
        "a\u{202e}b",
        "a\u{2066}",
        "a\u{2028}",
        "d\t/x",
    ] {
        match c.write_dense::<i64>(name, &[1], &[1]) {
            Err(WriteError::Name(e)) => assert_eq!(e.rule, "N8", "{name:?}"),
            other => panic!("{name:?}: {other:?}"),
        }
    }
    let entries: Vec<_> = fs::read_dir(c.root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, [OsStr::new(".dafstore")]);
}

#[test]
fn a_name_whose_path_exceeds_path_max_is_refused_before_any_directory_is_created() {
    let t = tempfile::tempdir().unwrap();
    let c = Container::create(t.path().join("c")).unwrap();
    let comp = "d".repeat(250);
    let name = format!("{}x", vec![comp.as_str(); 17].join("/") + "/");
    assert!(name.len() > 4096);
    match c.write_dense::<i64>(&name, &[1], &[1]) {
        Err(e @ WriteError::Path(PathError::TooLong { .. })) => {
            assert!(e.to_string().contains("[N10]"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.root().join(&comp).exists(), "no directory was created");
    // The container's own path counts: a name that fits under / does not fit here.
    let fits_alone = format!("{}/x", vec![comp.as_str(); 16].join("/"));
    let root_len = c.root().as_os_str().len();
    if root_len + 1 + fits_alone.len() + ".indices".len() >= 4096 {
        assert!(matches!(
            c.write_dense::<i64>(&fits_alone, &[1], &[1]),
            Err(WriteError::Path(PathError::TooLong { .. }))
        ));
    }
}

#[test]
fn a_write_after_the_container_was_removed_is_a_typed_error_and_recreates_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    let c = Container::create(&dir).unwrap();
    c.write_dense::<i64>("x", &[1], &[1]).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    match c.write_dense::<i64>("y", &[1], &[2]) {
        Err(e @ WriteError::Path(PathError::ContainerRemoved { .. })) => {
            assert!(e.to_string().contains("removed"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!dir.exists(), "nothing of the container was re-created");
    drop(c);
    assert!(!dir.exists());
}

#[test]
fn a_write_after_dafstore_was_removed_does_not_recreate_it() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    let c = Container::create(&dir).unwrap();
    c.write_dense::<i64>("x", &[1], &[1]).unwrap();
    fs::remove_dir_all(dir.join(".dafstore")).unwrap();
    assert!(matches!(
        c.write_dense::<i64>("y", &[1], &[2]),
        Err(WriteError::Path(PathError::ContainerRemoved { .. }))
    ));
    assert!(!dir.join(".dafstore").exists());
    assert!(!dir.join("y.yaml").exists());
}

// ---------------------------------------------------------------------------------------------
// dafctl never prints a name from disk raw ([N8]).

#[test]
fn dafctl_fsck_prints_orphan_file_names_with_control_characters_escaped() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    Container::create(&dir).unwrap();
    fs::write(
        dir.join("evil\nfound: fake_row\u{1b}[2J\u{202e}.array"),
        b"x",
    )
    .unwrap();
    let out = Command::new(dafctl_bin())
        .arg("fsck")
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("found: fake_row")),
        "{text}"
    );
    assert!(
        text.contains("evil\\u{000A}found: fake_row\\u{001B}[2J\\u{202E}.array"),
        "{text}"
    );
}

#[test]
fn importing_from_a_fifo_fails_at_once_naming_the_file_type() {
    let t = tempfile::tempdir().unwrap();
    let c = Container::create(t.path().join("c")).unwrap();
    let fifo = t.path().join("in.npy");
    mkfifo(&fifo);
    let err = without_blocking("import", move || {
        c.import("x", &fifo, dafstore::ImportOptions::default())
            .map(drop)
    })
    .unwrap_err();
    assert!(err.to_string().contains("FIFO"), "{err}");
}

#[test]
fn a_fifo_or_link_in_place_of_the_catalog_is_refused_at_open_without_blocking() {
    for file in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("c");
        Container::create(&dir)
            .unwrap()
            .write_dense::<i64>("x", &[1], &[1])
            .unwrap();
        let p = dir.join(".dafstore").join(file);
        let _ = fs::remove_file(&p);
        mkfifo(&p);
        let d = dir.clone();
        let err = without_blocking("open", move || Container::open(&d).map(drop)).unwrap_err();
        assert!(
            matches!(&err, ContainerError::Path(PathError::WrongType { path, .. }) if *path == p),
            "{file}: {err:?}"
        );
        fs::remove_file(&p).unwrap();
        symlink(t.path().join("elsewhere"), &p).unwrap();
        let d = dir.clone();
        let err = without_blocking("open", move || Container::open(&d).map(drop)).unwrap_err();
        assert!(
            matches!(&err, ContainerError::Path(PathError::Link { path }) if *path == p),
            "{file}: {err:?}"
        );
    }
}

#[test]
fn a_directory_in_place_of_the_removal_counter_fails_a_deferred_remove_naming_it_and_changes_nothing(
) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    let c = Container::create(&root).unwrap();
    c.write_dense::<f64>("x", &[2], &[1.0, 2.0]).unwrap();
    let counter = root.join(".dafstore/locks/removals");
    let _ = fs::remove_file(&counter);
    fs::create_dir(&counter).unwrap();
    let held = c.hold("x").unwrap();
    match c.remove("x") {
        Err(WriteError::Io(e)) => assert!(e.path.ends_with("locks/removals"), "{e}"),
        other => panic!("{other:?}"),
    }
    // The counter comes before the mark (SPEC [P4]): nothing was committed.
    assert_eq!(c.ls().unwrap(), ["x"]);
    drop(held);
    assert!(
        root.join("x.array").exists(),
        "not removed: the remove failed"
    );
    // With the counter a file again, the same remove works.
    fs::remove_dir(&counter).unwrap();
    let held = c.hold("x").unwrap();
    assert_eq!(
        c.remove("x").unwrap(),
        dafstore::Removal::Deferred { holders: 1 }
    );
    drop(held);
    assert!(
        !root.join("x.array").exists(),
        "the last release removed it"
    );
    // The release clock in the same state: releases and eviction order go on without it.
    let clock = root.join(".dafstore/locks/released");
    let _ = fs::remove_file(&clock);
    fs::create_dir(&clock).unwrap();
    c.write_dense::<f64>("y", &[1], &[3.0]).unwrap();
    drop(c.hold("y").unwrap());
    assert!(c.info("y").unwrap().released_at.is_some());
}

#[test]
fn after_the_container_is_renamed_or_its_locks_swapped_a_handle_never_uses_the_old_directories() {
    // The open path keeps descriptors of the container directory and `.dafstore/locks`; each use
    // checks the path still names them ([C5]: a container gone from its path fails every
    // operation; a `locks/` replaced by a copy must not leave two sets of stripes in use).
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    let c = Container::create(&dir).unwrap();
    c.write_dense::<i64>("x", &[1], &[1]).unwrap();
    drop(c.open_dense::<i64>("x").unwrap()); // the descriptors are cached now
    fs::rename(&dir, t.path().join("moved")).unwrap();
    let e = c.open_dense::<i64>("x").map(|_| ()).unwrap_err();
    assert!(e.to_string().contains(dir.to_str().unwrap()), "{e}");
    fs::rename(t.path().join("moved"), &dir).unwrap();
    assert_eq!(c.open_dense::<i64>("x").unwrap().as_slice(), &[1]);

    // `locks/` swapped for a copy: this handle's stripe locks are taken in the new one, where a
    // process that opens the container now takes them, so holding them there makes it wait.
    let locks = dir.join(".dafstore/locks");
    let old = dir.join(".dafstore/locks.old");
    fs::rename(&locks, &old).unwrap();
    fs::create_dir(&locks).unwrap();
    for e in fs::read_dir(&old).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), locks.join(e.file_name())).unwrap();
    }
    let x_stripe = fs::read_dir(&locks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().ends_with(".lock"))
        .collect::<Vec<_>>();
    let held: Vec<fs::File> = x_stripe
        .iter()
        .filter(|p| p.file_name().unwrap().to_str().unwrap().len() == "00.lock".len())
        .map(|p| {
            let f = fs::File::open(p).unwrap();
            f.lock().unwrap();
            f
        })
        .collect();
    assert!(!held.is_empty());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| tx.send(c.open_dense::<i64>("x").map(|_| ())).unwrap());
        // Every stripe of the new `locks/` is held: the open must wait for it.
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "the open used the old locks/"
        );
        drop(held);
        assert!(rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap()
            .is_ok());
    });
}
