//! Running out of space, for real: a 1 MiB tmpfs mounted by the test when it runs as root (as in a
//! Docker container whose /dev/shm is small), and RLIMIT_FSIZE in a child process (any user).
//! Every failure is a clear error (`WriteError::NoSpace` when the OS said ENOSPC or EFBIG), nothing
//! is published, staging files are removed and the catalog is unchanged; the container stays
//! consistent (deep fsck clean) and usable once space is freed. Dense arrays reserve their space at
//! create, so filling one never faults; `Allocation::Holes` on a full tmpfs kills the process with
//! SIGBUS while filling — shown in a child process, as the documented risk of holes.
//!
//! Injected EIO/ENOSPC at every step of publish and remove (failpoints) are in `crash_points.rs`.

#[path = "../src/bin/dafstore-crash-helper/gen.rs"]
mod gen;

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dafstore::{ArrayState, Container, FsckOptions, Layout, WriteError};
use dafstore_tests::{listing, staging_files, Tmpfs};

const HELPER: &str = env!("CARGO_BIN_EXE_dafstore-crash-helper");

fn rows(c: &Container) -> Vec<(String, ArrayState, u64)> {
    c.info_all()
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.state, r.generation))
        .collect()
}

fn fsck_clean(root: &Path) {
    let opts = FsckOptions {
        deep: true,
        repair: false,
    };
    let r = Container::fsck_dir(root, opts, &mut |_, _| {}).unwrap();
    assert!(r.problems.is_empty(), "fsck: {:?}", r.problems);
}

fn no_space(r: Result<(), WriteError>, what: &str) -> String {
    match r {
        Err(e @ WriteError::NoSpace { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("no space left"), "{what}: {msg}");
            msg
        }
        other => panic!("{what}: expected NoSpace, got {other:?}"),
    }
}

#[test]
fn enospc_on_a_small_tmpfs_is_an_error_at_create_and_publishes_nothing() {
    let Some(fs) = Tmpfs::mount("1m") else {
        return;
    };
    let root = fs.mnt.join("c");
    let c = Container::create(&root).unwrap();
    gen::write_dense(&c, "keep", 5).unwrap();
    gen::write_sparse(&c, "keep-sparse", 6).unwrap();
    let before = rows(&c);
    let files_before = listing(&root);

    // Reserved at create: the error comes before a single byte is filled.
    let msg = no_space(
        c.create_dense::<u8>("big", &[2 << 20]).map(drop),
        "create_dense",
    );
    assert!(msg.contains("2097152 bytes"), "{msg}");
    no_space(
        c.write_dense::<u8>("big", &[2 << 20], &vec![1; 2 << 20]),
        "write_dense",
    );
    let n = 200_000u64;
    let indptr = [0u64, n];
    let indices: Vec<u32> = (0..n as u32).collect();
    no_space(
        c.write_sparse::<f64, u32, u64>(
            "big",
            Layout::Rows,
            [1, n],
            &vec![1.0; n as usize],
            &indices,
            &indptr,
        ),
        "write_sparse",
    );
    assert_eq!(rows(&c), before, "the catalog changed");
    assert_eq!(listing(&root), files_before, "files changed");
    assert_eq!(staging_files(&root), Vec::<PathBuf>::new());

    // Fill up with small arrays until the space runs out: each either publishes completely or
    // fails with NoSpace (staging) or SQLite's "database or disk is full" (the catalog's WAL could
    // not grow, the intent is rolled back); every published one stays intact.
    let mut published = Vec::new();
    let mut failures = Vec::new();
    for i in 0..200u64 {
        let name = format!("fill/{i}");
        match c.write_dense::<u64>(&name, &[8192], &vec![i; 8192]) {
            Ok(()) => published.push(name),
            Err(e @ (WriteError::NoSpace { .. } | WriteError::Catalog(_))) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("no space left") || msg.contains("database or disk is full"),
                    "{name}: {msg}"
                );
                failures.push(msg);
                if failures.len() == 3 {
                    break;
                }
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    eprintln!(
        "filling a 1 MiB tmpfs: {} published, then {failures:?}",
        published.len()
    );
    assert!(!failures.is_empty(), "the tmpfs never filled up");
    assert!(c
        .info_all()
        .unwrap()
        .iter()
        .all(|r| r.state == ArrayState::Live));
    assert!(!published.is_empty());
    assert_eq!(staging_files(&root), Vec::<PathBuf>::new());
    let mut want: Vec<String> = published.clone();
    want.extend(["keep".to_string(), "keep-sparse".to_string()]);
    want.sort();
    assert_eq!(c.ls().unwrap(), want);
    // Read through a read-only handle: a read-write open takes a reference, a catalog write,
    // which a full file system refuses too.
    let ro = Container::options().read_only(true).open(&root).unwrap();
    for (i, name) in published.iter().enumerate() {
        let a = ro.open_dense::<u64>(name).unwrap();
        assert!(a.as_slice().iter().all(|&v| v == i as u64), "{name}");
    }
    assert_eq!(gen::open_and_verify(&ro, "keep").unwrap(), Some(5));
    assert_eq!(gen::open_and_verify(&ro, "keep-sparse").unwrap(), Some(6));
    drop(ro);

    // Freeing space makes room again (a remove is a catalog write too: it may be refused while
    // the file system is full, with the same clear error and nothing changed).
    let mut removed = 0;
    for name in &published {
        match c.remove(name) {
            Ok(_) => removed += 1,
            Err(e) => eprintln!("remove {name} on a full tmpfs: {e}"),
        }
    }
    eprintln!("removed {removed} of {} on the full tmpfs", published.len());
    assert!(c
        .info_all()
        .unwrap()
        .iter()
        .all(|r| r.state == ArrayState::Live));
    drop(c);
    let c = Container::open(&root).unwrap();
    c.write_dense::<u64>("after", &[8192], &vec![7; 8192])
        .unwrap();
    drop(c);
    fsck_clean(&root);
}

#[test]
fn a_completely_full_file_system_fails_cleanly_even_in_the_catalog() {
    let Some(fs) = Tmpfs::mount("1m") else {
        return;
    };
    let root = fs.mnt.join("c");
    let c = Container::create(&root).unwrap();
    gen::write_dense(&c, "keep", 5).unwrap();
    let before = rows(&c);
    // Fill every last block with a file outside the container.
    let filler = fs.mnt.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filler: {e}"),
        }
    }
    drop(f);
    // Staging data, staging metadata, the catalog's WAL: whichever runs out first, the call fails
    // with an error and nothing is published.
    let mut errors = Vec::new();
    for (i, len) in [1usize, 100, 5000].into_iter().enumerate() {
        let name = format!("x{i}");
        match c.write_dense::<u64>(&name, &[len as u64], &vec![3; len]) {
            Ok(()) => {
                // A tiny array may fit in blocks SQLite or the staging dir already had; it must
                // then be complete.
                assert_eq!(c.open_dense::<u64>(&name).unwrap().as_slice(), vec![3; len]);
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    no_space(
        c.create_dense::<u64>("y", &[10_000]).map(drop),
        "create_dense on a full file system",
    );
    assert!(!errors.is_empty(), "nothing failed on a full file system");
    for e in &errors {
        assert!(
            e.contains("no space") || e.contains("full") || e.contains("No space"),
            "unclear error: {e}"
        );
    }
    let live: Vec<(String, ArrayState, u64)> = rows(&c)
        .into_iter()
        .filter(|r| before.iter().all(|b| b.0 != r.0))
        .collect();
    assert!(
        live.iter().all(|r| r.1 == ArrayState::Live),
        "half-published rows: {live:?}"
    );
    assert_eq!(staging_files(&root), Vec::<PathBuf>::new());
    drop(c); // its session row may stay (the catalog was full): the next open reaps it
    fs::remove_file(&filler).unwrap();
    // With space back: consistent and usable.
    let c = Container::open(&root).unwrap();
    assert_eq!(gen::open_and_verify(&c, "keep").unwrap(), Some(5));
    gen::write_sparse(&c, "after", 9).unwrap();
    drop(c);
    fsck_clean(&root);
    eprintln!("on a full file system: {errors:?}");
}

fn helper(args: &[&str]) -> Output {
    Command::new(HELPER)
        .args(args)
        .env_remove("DAFSTORE_FAILPOINT")
        .stdin(Stdio::null())
        .output()
        .expect("run helper")
}

#[test]
fn holes_on_a_full_tmpfs_die_of_sigbus_while_filling_and_the_next_open_cleans_up() {
    let Some(fs) = Tmpfs::mount("1m") else {
        return;
    };
    let root = fs.mnt.join("c");
    let c = Container::create(&root).unwrap();
    gen::write_dense(&c, "keep", 5).unwrap();
    let before = rows(&c);
    drop(c);
    // The documented risk of Allocation::Holes: creating succeeds (nothing is allocated), filling
    // through the map faults on the first page the file system cannot provide.
    let out = helper(&["fill-holes", root.to_str().unwrap(), "holey", "4194304"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGBUS),
        "expected SIGBUS, got {} (stdout {stdout:?})",
        out.status
    );
    assert_eq!(stdout.trim(), "created", "it died while filling");
    // The file system is now full of the dead writer's staging file: opening read-write fails
    // with a clear error (SQLite cannot register the session), it does not hang.
    // (If SQLite still had room in its WAL, the open succeeds and its gc frees the space.)
    if let Err(e) = Container::open(&root).map(drop) {
        let msg = e.to_string();
        assert!(msg.contains("database or disk is full"), "{msg}");
        // Freeing it by hand (a dead session's staging files are garbage, SPEC [W5]) makes the
        // container usable again.
        for e in fs::read_dir(root.join(".dafstore/staging")).unwrap() {
            fs::remove_dir_all(e.unwrap().path()).unwrap();
        }
    }
    // The same array with the default allocation: a clean error at create.
    let c = Container::open(&root).unwrap();
    no_space(
        c.create_dense::<u8>("holey", &[4 << 20]).map(drop),
        "reserve",
    );
    // The dead writer's staging file was removed by the open (its space is back).
    assert_eq!(staging_files(&root), Vec::<PathBuf>::new());
    assert_eq!(rows(&c), before);
    c.write_dense::<u8>("after", &[300_000], &vec![1; 300_000])
        .unwrap();
    drop(c);
    fsck_clean(&root);
}

#[test]
fn rlimit_fsize_turns_oversized_staging_files_into_no_space_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    let c = Container::create(&root).unwrap();
    gen::write_dense(&c, "keep", 5).unwrap();
    let before = rows(&c);
    drop(c);
    let r = root.to_str().unwrap();
    // A 1 MiB file size limit in the child (SIGXFSZ ignored, so writes fail with EFBIG):
    // posix_fallocate (mapped writer) and write (slice writer) both fail; small arrays still work.
    for (op, bytes, ok) in [
        ("bytes-mapped", "2097152", false),
        ("bytes-write", "2097152", false),
        ("bytes-mapped", "1000", true),
    ] {
        let out = helper(&["rlimit", "1048576", r, op, "big", bytes]);
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(out.status.success(), "{op}: {}", out.status);
        if ok {
            assert_eq!(printed, "ok", "{op} {bytes}");
            continue;
        }
        assert!(
            printed.starts_with("err ") && printed.contains("no space left to reserve"),
            "{op}: {printed}"
        );
        assert!(printed.contains(bytes), "{op}: {printed}");
        let c = Container::open(&root).unwrap();
        assert_eq!(rows(&c), before, "{op}: the catalog changed");
        assert_eq!(staging_files(&root), Vec::<PathBuf>::new(), "{op}");
        drop(c);
    }
    let c = Container::open(&root).unwrap();
    assert_eq!(
        c.open_dense::<u8>("big").unwrap().as_slice(),
        vec![1u8; 1000]
    );
    drop(c);
    fsck_clean(&root);
}
