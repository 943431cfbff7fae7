//! Catalog hardening (issue 14): what a process sees of the catalog when it cannot write it (another
//! user, a read-only or full file system), rebuilding a lost or damaged catalog from the array
//! files, and what gc reports. Tests that need root (another user, mounts) say so and skip
//! otherwise.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use dafstore::{CatalogError, Container, ContainerError, FsckOptions, ProblemKind, Removal};
use dafstore_tests::Tmpfs;

const READONLY_HELPER: &str = env!("CARGO_BIN_EXE_dafstore-readonly-helper");

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A directory every user can enter and read (tempdir makes 0700 ones).
fn world_readable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The read-only helper run as user `nobody` (65534), reading DIR.
struct Watcher {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Watcher {
    fn start_as_nobody(dir: &Path) -> Watcher {
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(READONLY_HELPER)
            .arg("watch")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run setpriv");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Watcher {
            child,
            stdin,
            lines,
        }
    }

    /// The state line the reader printed last (the first one after start, the next after `again`).
    fn state(&mut self) -> String {
        match self.lines.next() {
            Some(Ok(l)) => l,
            other => panic!("the reader printed no state: {other:?}"),
        }
    }

    /// Asks the reader, still open, to read everything again.
    fn again(&mut self) -> String {
        writeln!(self.stdin.as_mut().unwrap()).unwrap();
        self.state()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn a_read_only_open_as_another_user_sees_what_the_owner_committed_never_stale_metadata_over_new_bytes(
) {
    if !is_root() {
        eprintln!("skipped: needs root to run a reader as another user (setpriv)");
        return;
    }
    let tmp = world_readable_tempdir();
    let root = tmp.path().join("c");
    {
        let c = Container::create(&root).unwrap();
        c.write_dense::<f64>("a", &[2], &[1.5, 2.5]).unwrap();
        c.write_dense::<f64>("gone", &[1], &[0.0]).unwrap();
    } // closed: the catalog file alone holds this state, the write-ahead log is gone

    // The owner keeps the container open and changes it; the changes wait in the log.
    let owner = Container::open(&root).unwrap();
    owner.write_dense::<i64>("a", &[2], &[7, 8]).unwrap(); // same byte size, another dtype
    owner.remove("gone").unwrap();
    let mut reader = Watcher::start_as_nobody(&root);
    assert_eq!(reader.state(), "names=a a=int64:7,8");
    drop(reader);

    // A reader that opened while nobody else had the container open (no log to read) must still
    // see later commits, made while it stays open.
    drop(owner);
    let mut reader = Watcher::start_as_nobody(&root);
    assert_eq!(reader.state(), "names=a a=int64:7,8");
    let owner = Container::open(&root).unwrap();
    owner.write_dense::<f64>("a", &[2], &[9.5, 10.5]).unwrap();
    owner.write_dense::<f64>("b", &[1], &[1.0]).unwrap();
    assert_eq!(reader.again(), "names=a,b a=float64:9.5,10.5");
    owner.remove("b").unwrap();
    drop(owner); // checkpointed into the catalog file, log removed
    assert_eq!(reader.again(), "names=a a=float64:9.5,10.5");
}

fn sample(root: &Path) {
    let c = Container::create(root).unwrap();
    c.write_dense::<f64>("x/a", &[3], &[1.0, 2.0, 3.0]).unwrap();
    c.write_sparse::<f32, i32, i64>(
        "s",
        dafstore::Layout::Rows,
        [2, 3],
        &[5.0, 6.0],
        &[0, 2],
        &[0, 1, 2],
    )
    .unwrap();
}

fn fsck(root: &Path, repair: bool, deep: bool) -> dafstore::FsckReport {
    Container::fsck_dir(root, FsckOptions { deep, repair }, &mut |_, _| {}).unwrap()
}

fn catalog_files_aside(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(root.join(".dafstore"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("catalog.sqlite.damaged-"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_deleted_empty_or_garbage_catalog_is_named_in_every_error_and_fsck_repair_rebuilds_it_from_the_files_keeping_the_damaged_copy(
) {
    for damage in ["deleted", "empty", "garbage", "no schema"] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("c");
        sample(&root);
        let catalog = root.join(".dafstore/catalog.sqlite");
        let damaged: Option<Vec<u8>> = match damage {
            "deleted" => {
                fs::remove_file(&catalog).unwrap();
                None
            }
            "empty" => Some(Vec::new()),
            "no schema" => {
                // A sound SQLite database that is not a dafstore catalog.
                fs::remove_file(&catalog).unwrap();
                let db = rusqlite::Connection::open(&catalog).unwrap();
                db.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
                    .unwrap();
                drop(db);
                Some(fs::read(&catalog).unwrap())
            }
            _ => Some(b"this is not an SQLite database, it was overwritten".repeat(100)),
        };
        if let Some(bytes) = &damaged {
            fs::write(&catalog, bytes).unwrap();
        }
        for (what, result) in [
            ("open", Container::open(&root).map(|_| ())),
            (
                "open_read_only",
                Container::options().read_only(true).open(&root).map(|_| ()),
            ),
            ("adopt", Container::adopt(&root).map(|_| ())),
        ] {
            let e = result.expect_err(what);
            let text = e.to_string();
            assert!(
                matches!(&e, ContainerError::Catalog(c) if c.needs_rebuild()),
                "{damage} {what}: {e:?}"
            );
            assert!(text.contains(&catalog.display().to_string()), "{text}");
            // The engine names the remedy in neutral words and as a value; dafctl and Python
            // word it as their own command (tests/tests/dafctl_cli.rs, bindings/python/tests).
            assert!(
                text.contains(&format!("repair the container {}", root.display())),
                "{damage} {what}: {text}"
            );
            assert!(
                !text.contains("dafctl"),
                "no CLI wording in the engine: {text}"
            );
            assert_eq!(
                e.remedy(),
                Some(dafstore::Remedy::Repair),
                "{damage} {what}"
            );
        }
        // Without --repair: reported, nothing changed.
        let found = fsck(&root, false, false);
        assert_eq!(found.exit_code(), 4, "{damage}: {:?}", found.problems);
        assert_eq!(found.problems[0].kind, ProblemKind::CatalogCorrupt);
        assert!(
            fs::read(&catalog).ok() == damaged,
            "{damage}: the catalog changed"
        );
        assert!(catalog_files_aside(&root).is_empty());

        let repaired = fsck(&root, true, false);
        assert_eq!(repaired.exit_code(), 1, "{damage}: {:?}", repaired.problems);
        assert_eq!(repaired.problems[0].kind, ProblemKind::CatalogCorrupt);
        assert!(repaired.problems[0].fixed);
        assert_eq!(repaired.problems.len(), 1, "{:?}", repaired.problems);
        // The damaged catalog is kept aside, byte for byte.
        let aside = catalog_files_aside(&root);
        match &damaged {
            None => assert!(aside.is_empty(), "{aside:?}"),
            Some(bytes) => {
                assert_eq!(aside.len(), 1, "{aside:?}");
                assert!(
                    &fs::read(&aside[0]).unwrap() == bytes,
                    "{damage}: copy differs"
                );
            }
        }
        // Every array is back, with its values and the checksums its YAML recorded.
        let c = Container::open(&root).unwrap();
        assert_eq!(c.ls().unwrap(), ["s", "x/a"]);
        assert_eq!(
            c.open_dense::<f64>("x/a").unwrap().as_slice(),
            &[1.0, 2.0, 3.0]
        );
        assert_eq!(c.open_sparse("s").unwrap().nnz(), 2);
        assert!(c
            .info("x/a")
            .unwrap()
            .files
            .iter()
            .all(|f| f.crc32c.is_some()));
        drop(c);
        assert_eq!(fsck(&root, false, true).exit_code(), 0, "{damage}");
    }
}

#[test]
fn a_catalog_rebuild_is_refused_while_a_process_has_the_container_open() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    sample(&root);
    let c = Container::open(&root).unwrap(); // a live session
    let catalog = root.join(".dafstore/catalog.sqlite");
    fs::write(&catalog, b"garbage".repeat(1000)).unwrap();
    let e = Container::rebuild_catalog(&root).unwrap_err();
    assert!(
        matches!(&e, ContainerError::LiveSessions { sessions, .. } if sessions.len() == 1),
        "{e:?}"
    );
    let report = fsck(&root, true, false);
    assert_eq!(report.exit_code(), 4);
    assert!(!report.problems[0].fixed);
    assert!(
        report.problems[0].message.contains("repair refused"),
        "{}",
        report.problems[0].message
    );
    assert_eq!(fs::read(&catalog).unwrap(), b"garbage".repeat(1000));
    assert!(catalog_files_aside(&root).is_empty());
    drop(c);
    assert_eq!(fsck(&root, true, false).exit_code(), 1);
    assert_eq!(Container::open(&root).unwrap().ls().unwrap(), ["s", "x/a"]);
}

#[test]
fn gc_reports_a_removal_deferred_by_a_live_holder_as_deferred_not_as_a_recovered_operation() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    let c = Container::create(&root).unwrap();
    c.write_dense::<f64>("x", &[1], &[1.0]).unwrap();
    let held = c.open_array("x").unwrap();
    assert!(matches!(c.remove("x").unwrap(), Removal::Deferred { .. }));
    let report = c.gc().unwrap();
    assert_eq!(report.recovered, 0, "{report:?}");
    assert_eq!(report.deferred, ["x"]);
    drop(held);
    let report = c.gc().unwrap();
    assert_eq!((report.recovered, report.deferred.len()), (0, 0));
}

/// Fills the file system: writes `filler` until the OS says ENOSPC.
fn fill(tmpfs: &Tmpfs) {
    let mut f = fs::File::create(tmpfs.mnt.join("filler")).unwrap();
    let chunk = vec![7u8; 4096];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    assert_eq!(
        fs::write(tmpfs.mnt.join("one-more"), [1u8; 4096])
            .unwrap_err()
            .raw_os_error(),
        Some(libc::ENOSPC)
    );
}

/// Everything a reader does, none of which may need write access or free space.
fn read_everything(root: &Path, out: &Path) {
    let c = Container::options().read_only(true).open(root).unwrap();
    assert_eq!(c.ls().unwrap(), ["s", "x/a"]);
    assert_eq!(
        c.open_dense::<f64>("x/a").unwrap().as_slice(),
        &[1.0, 2.0, 3.0]
    );
    assert_eq!(c.open_sparse("s").unwrap().nnz(), 2);
    c.holders().unwrap();
    let _ = fs::remove_file(out);
    c.export("x/a", out, None).unwrap();
    assert!(fs::metadata(out).unwrap().len() > 24);
    drop(c);
    for deep in [false, true] {
        let report = fsck(root, false, deep);
        assert_eq!(report.exit_code(), 0, "{:?}", report.problems);
    }
}

#[test]
fn a_container_on_a_read_only_mount_is_read_checked_and_exported_and_a_read_write_open_is_a_typed_permission_error(
) {
    let Some(fs_) = Tmpfs::mount("4m") else {
        return;
    };
    let root = fs_.mnt.join("c");
    sample(&root);
    fs_.remount_read_only();
    let out = tempfile::tempdir().unwrap();
    read_everything(&root, &out.path().join("a.npy"));
    for result in [
        Container::open(&root).map(|_| ()),
        Container::options().gc(false).open(&root).map(|_| ()),
    ] {
        let e = result.unwrap_err();
        assert!(
            matches!(&e, ContainerError::Catalog(CatalogError::NotWritable { source, .. })
                if source.raw_os_error() == Some(libc::EROFS)),
            "{e:?}"
        );
        assert!(e.to_string().contains("catalog.sqlite"), "{e}");
        assert!(
            e.to_string().contains("open the container read-only"),
            "{e}"
        );
    }
}

#[test]
fn on_a_full_file_system_read_only_opens_listing_fsck_and_export_work() {
    let Some(fs_) = Tmpfs::mount("1m") else {
        return;
    };
    let root = fs_.mnt.join("c");
    sample(&root);
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("a.npy");
    // While a writer has the container open (its log and -shm exist)...
    let owner = Container::open(&root).unwrap();
    fill(&fs_);
    read_everything(&root, &out);
    // (Closing writes the catalog: give it space; writes on a full disk are not this test's.)
    fs::remove_file(fs_.mnt.join("filler")).unwrap();
    drop(owner);
    // ... and with nobody else there (no log: SQLite would have to create -shm).
    fill(&fs_);
    read_everything(&root, &out);
}

#[test]
fn a_log_a_reader_cannot_read_is_refused_not_ignored() {
    if !is_root() {
        eprintln!("skipped: needs root to run a reader as another user (setpriv)");
        return;
    }
    let tmp = world_readable_tempdir();
    let root = tmp.path().join("c");
    {
        let c = Container::create(&root).unwrap();
        c.write_dense::<f64>("a", &[1], &[1.0]).unwrap();
    }
    let owner = Container::open(&root).unwrap();
    owner.write_dense::<f64>("b", &[1], &[2.0]).unwrap(); // committed, in the log
                                                          // A copy whose log holds that commit and whose -shm is gone: a reader that cannot create
                                                          // -shm cannot read the log, and the file alone is stale.
    let copy = tmp.path().join("copy");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(&root)
        .arg(&copy)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    drop(owner);
    fs::remove_file(copy.join(".dafstore/catalog.sqlite-shm")).unwrap();
    assert!(
        fs::metadata(copy.join(".dafstore/catalog.sqlite-wal"))
            .unwrap()
            .len()
            > 0
    );
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(READONLY_HELPER)
        .arg("watch")
        .arg(&copy)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("cannot be read consistently"), "{stderr}");
    assert!(stderr.contains("catalog.sqlite"), "{stderr}");
}

/// Needs the `failpoints` feature (a pause between reading the row and opening the files) and
/// root (a reader as another user who may not open the lock stripes).
#[cfg(feature = "failpoints")]
#[test]
fn a_read_only_open_without_the_stripe_lock_never_pairs_a_row_with_the_files_of_a_later_publish() {
    if !is_root() {
        eprintln!("skipped: needs root to run a reader as another user (setpriv)");
        return;
    }
    let tmp = world_readable_tempdir();
    let root = tmp.path().join("c");
    let owner = Container::create(&root).unwrap();
    owner.write_dense::<f64>("a", &[2], &[1.5, 2.5]).unwrap();
    // The reader may not open the lock files, so it reads without the shared stripe.
    for e in fs::read_dir(root.join(".dafstore/locks")).unwrap() {
        fs::set_permissions(e.unwrap().path(), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let go = tmp.path().join("go");
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(READONLY_HELPER)
        .arg("watch")
        .arg(&root)
        .env(
            "DAFSTORE_FAILPOINT",
            format!("open.after_row:wait={}", go.display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the reader has read the row of `a` (float64) and paused before its files.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("failpoint open.after_row"), "{line}");
    owner.write_dense::<i64>("a", &[2], &[7, 8]).unwrap(); // same byte size, another dtype
    fs::write(&go, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "names=a a=int64:7,8"
    );
}

#[test]
fn a_read_write_open_by_a_user_who_may_not_write_is_a_permission_error_naming_the_catalog() {
    if !is_root() {
        eprintln!("skipped: needs root to run a process as another user (setpriv)");
        return;
    }
    let tmp = world_readable_tempdir();
    let root = tmp.path().join("c");
    sample(&root);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(READONLY_HELPER)
        .arg("open-rw")
        .arg(&root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let catalog = root.join(".dafstore/catalog.sqlite");
    assert!(
        stderr.contains(&format!(
            "catalog {}: cannot open for writing",
            catalog.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(stderr.contains("open the container read-only"), "{stderr}");
}

#[test]
fn a_rebuild_registers_only_complete_valid_arrays_and_leaves_the_rest_in_place_for_fsck_to_report()
{
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    sample(&root);
    Container::open(&root)
        .unwrap()
        .write_dense::<f64>("bad", &[4], &[1.0, 2.0, 3.0, 4.0])
        .unwrap();
    // Damage one array (its data file loses its last element) and lose the catalog.
    let bad = root.join("bad.array");
    let bytes = fs::read(&bad).unwrap();
    fs::write(&bad, &bytes[..24]).unwrap();
    fs::remove_file(root.join(".dafstore/catalog.sqlite")).unwrap();

    let report = fsck(&root, true, false);
    assert_eq!(report.exit_code(), 4, "{:?}", report.problems);
    assert!(report.problems[0].fixed);
    assert!(
        report.problems[0]
            .message
            .contains("2 arrays registered, 1 metadata files left"),
        "{}",
        report.problems[0].message
    );
    // Its metadata file and its data file: reported, not fixed.
    let left: Vec<_> = report.problems[1..]
        .iter()
        .map(|p| (p.kind, p.path.clone(), p.fixed))
        .collect();
    assert_eq!(
        left,
        [
            (ProblemKind::OrphanFile, root.join("bad.yaml"), false),
            (ProblemKind::OrphanFile, bad.clone(), false)
        ]
    );
    assert_eq!(fs::read(&bad).unwrap(), &bytes[..24]); // left in place, untouched
    assert_eq!(Container::open(&root).unwrap().ls().unwrap(), ["s", "x/a"]);
}

#[test]
fn a_catalog_that_fails_the_sqlite_integrity_check_is_reported_and_rebuilt_by_fsck_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    sample(&root);
    let catalog = root.join(".dafstore/catalog.sqlite");
    {
        // An index whose entries no longer match its definition: SQLite opens the database,
        // `PRAGMA integrity_check` finds the damage.
        let db = rusqlite::Connection::open(&catalog).unwrap();
        db.execute_batch(
            "UPDATE arrays SET cached = 1, released_at = 5 WHERE name = 'x/a';
             PRAGMA writable_schema = ON;
             UPDATE sqlite_master
               SET sql = 'CREATE INDEX arrays_cached ON arrays(created_at) WHERE cached = 1'
               WHERE name = 'arrays_cached';
             PRAGMA writable_schema = OFF;",
        )
        .unwrap();
    }
    let found = fsck(&root, false, false);
    assert_eq!(found.exit_code(), 4);
    assert_eq!(found.problems[0].kind, ProblemKind::CatalogCorrupt);
    assert!(
        found.problems[0].message.contains("SQLite integrity check"),
        "{:?}",
        found.problems
    );
    let repaired = fsck(&root, true, false);
    assert_eq!(repaired.exit_code(), 1, "{:?}", repaired.problems);
    assert!(repaired.problems[0].fixed);
    assert_eq!(catalog_files_aside(&root).len(), 1);
    assert_eq!(fsck(&root, false, true).exit_code(), 0);
    assert_eq!(Container::open(&root).unwrap().ls().unwrap(), ["s", "x/a"]);
}

#[test]
fn file_sizes_whose_sum_overflows_are_a_corrupt_catalog_error_not_a_panic() {
    // Found by the catalog_rows fuzz target: two file rows of i64::MAX bytes each made the
    // record's total size overflow (`attempt to add with overflow` in a debug build).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    sample(&root);
    {
        let db = rusqlite::Connection::open(root.join(".dafstore/catalog.sqlite")).unwrap();
        db.execute_batch(&format!(
            "UPDATE array_files SET size = {} WHERE name = 's';",
            i64::MAX
        ))
        .unwrap();
    }
    let c = Container::options().read_only(true).open(&root).unwrap();
    let err = c.info("s").unwrap_err().to_string();
    assert!(err.contains("more than 2^64 bytes"), "{err}");
    assert!(err.contains("catalog.sqlite"), "{err}");
    assert!(c.info_all().is_err());
    drop(c);
    let found = fsck(&root, false, false);
    assert_ne!(found.exit_code(), 0, "{:?}", found.problems);
}

#[test]
fn a_schema_3_catalog_is_not_migrated_while_a_process_of_an_older_engine_uses_it() {
    // Found by review: schema 4 moves references out of the catalog; a live schema-3 process
    // would keep recording its references in the dropped `refs` table, unseen, and a removal
    // could delete what it holds.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    sample(&root);
    let id = "0123456789abcdef0123456789abcdef";
    {
        let db = rusqlite::Connection::open(root.join(".dafstore/catalog.sqlite")).unwrap();
        db.execute_batch(&format!(
            "CREATE TABLE refs(session TEXT NOT NULL, name TEXT NOT NULL, since INTEGER NOT NULL,
                               PRIMARY KEY (session, name)) STRICT;
             INSERT INTO sessions VALUES ('{id}', 4242, 0);
             INSERT INTO refs VALUES ('{id}', 'x/a', 0);
             PRAGMA user_version = 3;"
        ))
        .unwrap();
    }
    // The old engine's process: its session file, locked.
    let lock = std::fs::File::create(root.join(format!(".dafstore/sessions/{id}.lock"))).unwrap();
    lock.lock().unwrap();
    match Container::open(&root) {
        Err(dafstore::ContainerError::Catalog(
            e @ dafstore::CatalogError::InUseByOlderEngine { .. },
        )) => {
            let text = e.to_string();
            assert!(text.contains("pid 4242") && text.contains(id), "{text}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("migrated under a live schema-3 process"),
    }
    // Read-only handles read it as it is.
    let ro = Container::options().read_only(true).open(&root).unwrap();
    assert!(ro.ls().unwrap().contains(&"x/a".to_string()));
    drop(ro);
    // Once that process is gone, the next read-write open migrates.
    drop(lock);
    let c = Container::open(&root).unwrap();
    assert!(c.ls().unwrap().contains(&"x/a".to_string()));
    assert_eq!(c.remove("x/a").unwrap(), dafstore::Removal::Removed);
}

fn stamps(root: &Path) -> Vec<Option<u64>> {
    (0..64)
        .map(|i| {
            let b = fs::read(root.join(format!(".dafstore/locks/{i:02}.lock"))).unwrap();
            (b.len() >= 8)
                .then(|| u64::from_le_bytes(b[..8].try_into().unwrap()))
                .filter(|&v| v != 0)
        })
        .collect()
}

/// SPEC [W6]: every lock stripe carries a change stamp from the container's creation; taking a
/// stripe exclusively (a publish) writes a new one into that stripe only; opening reads, never
/// writes it.
#[test]
fn lock_stripes_carry_change_stamps_and_only_an_exclusive_holder_changes_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    let c = Container::create(&root).unwrap();
    let before = stamps(&root);
    assert!(before.iter().all(Option::is_some), "{before:?}");
    c.write_dense::<f64>("a", &[2], &[1.0, 2.0]).unwrap();
    let after = stamps(&root);
    let changed: Vec<usize> = (0..64).filter(|&i| before[i] != after[i]).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(after[changed[0]].is_some());
    drop(c.open_dense::<f64>("a").unwrap());
    drop(c.open_dense::<f64>("a").unwrap());
    assert_eq!(stamps(&root), after);
    c.remove("a").unwrap();
    let removed = stamps(&root);
    assert_ne!(removed[changed[0]], after[changed[0]]);
    assert_eq!(
        (0..64).filter(|&i| removed[i] != after[i]).count(),
        1,
        "only the stripe of `a`"
    );
}

/// A schema-4 catalog (its engines never stamp) is migrated to 5 at the first read-write open,
/// which stamps every stripe, and not while a process of the older engine uses it.
#[test]
fn a_schema_4_catalog_is_migrated_with_stamps_and_not_while_an_older_engine_uses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    sample(&root);
    let id = "0123456789abcdef0123456789abcdef";
    {
        let db = rusqlite::Connection::open(root.join(".dafstore/catalog.sqlite")).unwrap();
        db.execute_batch(&format!(
            "INSERT INTO sessions VALUES ('{id}', 4242, 0); PRAGMA user_version = 4;"
        ))
        .unwrap();
    }
    for i in 0..64 {
        fs::write(root.join(format!(".dafstore/locks/{i:02}.lock")), b"").unwrap();
    }
    let lock = fs::File::create(root.join(format!(".dafstore/sessions/{id}.lock"))).unwrap();
    lock.lock().unwrap();
    match Container::open(&root) {
        Err(ContainerError::Catalog(e @ CatalogError::InUseByOlderEngine { .. })) => {
            let text = e.to_string();
            assert!(text.contains("pid 4242") && text.contains(id), "{text}");
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("migrated under a live schema-4 process"),
    }
    drop(lock);
    // A process of the older engine that locked its session file but has not registered it yet
    // (or is still renaming it into place) is seen too.
    for leaf in [
        "fedcba9876543210fedcba9876543210.lock",
        ".tmp-fedcba9876543210fedcba9876543211",
    ] {
        let early = fs::File::create(root.join(".dafstore/sessions").join(leaf)).unwrap();
        early.lock().unwrap();
        match Container::open(&root) {
            Err(ContainerError::Catalog(e @ CatalogError::InUseByOlderEngine { .. })) => {
                let text = e.to_string();
                assert!(text.contains("fedcba98765432"), "{text}");
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("migrated under {leaf}"),
        }
        drop(early);
        fs::remove_file(root.join(".dafstore/sessions").join(leaf)).unwrap();
    }
    // A read-only handle reads it as it is, keeping no rows (nothing stamps there).
    let ro = Container::options().read_only(true).open(&root).unwrap();
    assert!(ro.ls().unwrap().contains(&"x/a".to_string()));
    drop(ro.open_array("x/a").unwrap());
    drop(ro);
    assert!(stamps(&root).iter().all(Option::is_none));
    let c = Container::open(&root).unwrap();
    let version: i64 = rusqlite::Connection::open(root.join(".dafstore/catalog.sqlite"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    assert!(stamps(&root).iter().all(Option::is_some));
    assert!(c.ls().unwrap().contains(&"x/a".to_string()));
    assert_eq!(c.remove("x/a").unwrap(), Removal::Removed);
}

/// Found by review: a check without `--repair` writes nothing, not even a change stamp ([W6],
/// [Q1]): its probe of whether a writer still holds an interrupted publish's stripe takes the
/// stripe without stamping it (and so also works without write access to the lock files).
#[test]
fn fsck_without_repair_reports_an_interrupted_publish_and_writes_no_change_stamp() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("c");
    sample(&root);
    rusqlite::Connection::open(root.join(".dafstore/catalog.sqlite"))
        .unwrap()
        .execute_batch("UPDATE arrays SET state = 'publishing' WHERE name = 'x/a'")
        .unwrap();
    let before = stamps(&root);
    let found = fsck(&root, false, false);
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::UnfinishedOperation),
        "{:?}",
        found.problems
    );
    assert_eq!(stamps(&root), before);
}
