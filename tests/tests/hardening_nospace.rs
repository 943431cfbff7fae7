//! Running out of space at every step of a publish, for real: a small tmpfs mounted by the test
//! (when it runs as root; skipped with a message otherwise), filled by a file outside the container
//! until exactly k bytes are left, for many k, from 0 to more than a publish needs, in steps of a
//! page, so each phase runs out in turn: the staged data, the staged metadata, the catalog's WAL
//! growing for the intent, the `live` flip. For every k a write either returns Ok and a fresh
//! handle sees the array with its exact bytes, or returns `WriteError::NoSpace` and a fresh handle
//! sees the array absent (or its old generation, for a replace); staging is empty and a deep fsck
//! is clean (SPEC [W9]). And removing on a completely full file system works ([Q3]).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use dafstore::{ArrayState, Container, FsckOptions, Layout, WriteError};
use dafstore_tests::{staging_files, Tmpfs};

/// The tests of this file run one at a time: each fills a tmpfs and then frees the space by
/// unlinking a file, and a `mount`/`umount` process forked by a test running in parallel holds a
/// copy of every open descriptor until it execs — under load long enough that the unlinked
/// filler's space is not back yet when the test goes on.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const PAGE: u64 = 4096;

/// Fills the file system of `path` with the file `path` until exactly `free` bytes (whole pages)
/// are left.
fn fill_leaving(path: &Path, free: u64) {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0xA5u8; PAGE as usize];
    let mut len = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => len += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filler: {e}"),
        }
    }
    f.set_len(len.saturating_sub(free)).unwrap();
    f.sync_all().unwrap();
}

fn fsck_clean(root: &Path, context: &str) {
    let opts = FsckOptions {
        deep: true,
        repair: false,
    };
    let r = Container::fsck_dir(root, opts, &mut |_, _| {}).unwrap();
    assert!(r.problems.is_empty(), "{context}: fsck: {:?}", r.problems);
}

/// The dense generation `seed`: 6,000 u64 (47 KiB, about 12 pages).
fn dense_values(seed: u64) -> Vec<u64> {
    (0..6000u64)
        .map(|i| seed.wrapping_mul(1_000_003) ^ i)
        .collect()
}

/// The sparse generation `seed`: CSR 300x300 with 2 entries a row (data 4.7 KiB, indices 2.3 KiB).
fn sparse_parts(seed: u64) -> (Vec<u64>, Vec<u32>, Vec<u64>) {
    let data: Vec<u64> = (0..600u64).map(|i| seed * 7 + i).collect();
    let indices: Vec<u32> = (0..600u32)
        .map(|i| (i * 37) % 300 / 2 * 2 + i % 2)
        .collect();
    let indptr: Vec<u64> = (0..=300u64).map(|r| r * 2).collect();
    (data, indices, indptr)
}

fn bytes_of<T: Copy + Into<u64>>(v: &[T]) -> Vec<u8> {
    let width = std::mem::size_of::<T>();
    v.iter()
        .flat_map(|x| (*x).into().to_le_bytes()[..width].to_vec())
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// `create_dense` + fill through the map + `publish`.
    DenseMapped,
    /// `write_dense` from a slice.
    WriteDense,
    /// `write_sparse`.
    Sparse,
}

fn write(c: &Container, op: Op, name: &str, seed: u64) -> Result<(), WriteError> {
    match op {
        Op::DenseMapped => {
            let v = dense_values(seed);
            let mut w = c.create_dense::<u64>(name, &[v.len() as u64])?;
            w.as_mut_slice::<u64>()?.copy_from_slice(&v);
            w.publish()
        }
        Op::WriteDense => {
            let v = dense_values(seed);
            c.write_dense::<u64>(name, &[v.len() as u64], &v)
        }
        Op::Sparse => {
            let (data, indices, indptr) = sparse_parts(seed);
            c.write_sparse::<u64, u32, u64>(
                name,
                Layout::Rows,
                [300, 300],
                &data,
                &indices,
                &indptr,
            )
        }
    }
}

/// The generation of `name` a fresh handle sees, checked byte for byte; `None` if absent.
fn seen(c: &Container, op: Op, name: &str, context: &str) -> Option<u64> {
    if !c.ls().unwrap().iter().any(|n| n == name) {
        return None;
    }
    for seed in [1u64, 2] {
        let same = match op {
            Op::DenseMapped | Op::WriteDense => {
                c.open_dense::<u64>(name).unwrap().as_slice() == dense_values(seed).as_slice()
            }
            Op::Sparse => {
                let a = c.open_sparse(name).unwrap();
                let (data, indices, indptr) = sparse_parts(seed);
                a.data::<u64>().unwrap() == data.as_slice()
                    && a.indices_bytes() == bytes_of(&indices)
                    && a.indptr_bytes() == bytes_of(&indptr)
            }
        };
        if same {
            return Some(seed);
        }
    }
    panic!("{context}: {name} has bytes of no generation");
}

/// One case: `op` writes generation 2 of `name` (over generation 1 when `replace`) with `free`
/// bytes left on a 2 MiB tmpfs; with or without the space reserve. Returns the outcome: `+` Ok,
/// `p` Ok with the row left `publishing` for recovery, `s` NoSpace in a staging file, `c`
/// NoSpace in the catalog.
fn one(op: Op, replace: bool, keep_reserve: bool, free: u64) -> Option<char> {
    let fs = Tmpfs::mount("2m")?;
    let root = fs.mnt.join("c");
    let name = "a/x";
    let context = format!("{op:?} replace={replace} reserve={keep_reserve} free={free}");
    let c = Container::create(&root).unwrap();
    c.write_dense::<u64>("keep", &[3], &[7, 8, 9]).unwrap();
    if replace {
        write(&c, op, name, 1).unwrap();
    }
    drop(c);
    let c = Container::open(&root).unwrap();
    if !keep_reserve {
        fs::remove_file(root.join(".dafstore/reserve")).unwrap();
    }
    let filler = fs.mnt.join("filler");
    fill_leaving(&filler, free);
    let result = write(&c, op, name, 2);
    let outcome = match &result {
        // Committed, but a finishing step (the `live` flip) failed: recovery finishes it.
        Ok(())
            if c.info_all()
                .unwrap()
                .iter()
                .any(|r| r.state == ArrayState::Publishing) =>
        {
            'p'
        }
        Ok(()) => '+',
        Err(e @ WriteError::NoSpace { path, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("no space left"), "{context}: {msg}");
            assert!(msg.contains(path.to_str().unwrap()), "{context}: {msg}");
            if path.ends_with("catalog.sqlite") {
                'c'
            } else {
                assert!(
                    path.starts_with(root.join(".dafstore/staging")),
                    "{context}: {msg}"
                );
                's'
            }
        }
        Err(e) => panic!("{context}: neither Ok nor NoSpace: {e:?}"),
    };
    let ok = matches!(outcome, '+' | 'p');
    // Before anything is freed: no staging file of a failed write is left.
    if !ok {
        assert_eq!(staging_files(&root), Vec::<PathBuf>::new(), "{context}");
    }
    drop(c);
    fs::remove_file(&filler).unwrap();
    let c = Container::open(&root).unwrap();
    let want = if ok {
        Some(2)
    } else if replace {
        Some(1)
    } else {
        None
    };
    assert_eq!(seen(&c, op, name, &context), want, "{context}: {result:?}");
    assert_eq!(
        c.open_dense::<u64>("keep").unwrap().as_slice(),
        &[7, 8, 9],
        "{context}"
    );
    for r in c.info_all().unwrap() {
        assert_eq!(r.state, ArrayState::Live, "{context}: {}", r.name);
    }
    if let Some(g) = want {
        // Generation 1 was the old one of a replace; a new array's first generation is 1.
        let generation = c.info(name).unwrap().generation;
        let expected = if replace { g } else { 1 };
        assert_eq!(generation, expected, "{context}: generation");
    }
    drop(c);
    assert_eq!(staging_files(&root), Vec::<PathBuf>::new(), "{context}");
    fsck_clean(&root, &context);
    Some(outcome)
}

#[test]
fn a_write_with_k_bytes_left_for_every_k_either_publishes_completely_or_fails_with_no_space_and_changes_nothing(
) {
    let _serial = serial();
    let cases = [
        (Op::DenseMapped, false, true),
        (Op::WriteDense, true, true),
        (Op::Sparse, true, true),
        (Op::WriteDense, false, false),
        (Op::Sparse, false, false),
    ];
    for (op, replace, reserve) in cases {
        let mut outcomes = String::new();
        for pages in 0..=40u64 {
            let Some(outcome) = one(op, replace, reserve, pages * PAGE) else {
                return; // not root: skipped (said once by Tmpfs::mount)
            };
            outcomes.push(outcome);
        }
        eprintln!("{op:?} replace={replace} reserve={reserve}, 0..=40 pages free: {outcomes}");
        // The sweep spans both outcomes: it starts too small and ends large enough.
        assert!(outcomes.starts_with(['s', 'c']), "{op:?}: {outcomes}");
        assert!(outcomes.ends_with('+'), "{op:?}: {outcomes}");
        assert!(
            outcomes.contains('c'),
            "{op:?}: the catalog never ran out: {outcomes}"
        );
        if !reserve {
            // Without the reserve, some k lets the intent commit and the `live` flip fail.
            assert!(
                outcomes.contains('p'),
                "{op:?}: the flip never failed: {outcomes}"
            );
        }
    }
}

#[test]
fn rm_on_a_completely_full_file_system_succeeds_and_frees_the_space_for_the_next_write() {
    let _serial = serial();
    let Some(fs) = Tmpfs::mount("2m") else {
        return;
    };
    let root = fs.mnt.join("c");
    let c = Container::create(&root).unwrap();
    assert!(
        root.join(".dafstore/reserve").is_file(),
        "create makes the space reserve"
    );
    let big = vec![5u64; 40_000];
    c.write_dense::<u64>("big", &[40_000], &big).unwrap();
    c.write_dense::<u64>("keep", &[3], &[7, 8, 9]).unwrap();
    drop(c);
    // Full to the last byte, by a file outside the container (and the WAL and its index closed:
    // the next open must create them).
    fill_leaving(&fs.mnt.join("filler"), 0);
    let out = Command::new(env!("CARGO_BIN_EXE_dafstore-crash-helper"))
        .args(["op", root.to_str().unwrap(), "remove", "big"])
        .env_remove("DAFSTORE_FAILPOINT")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "removed",
        "{out:?}"
    );
    // The space is back: the next write works, and the reserve is made again.
    let c = Container::open(&root).unwrap();
    assert_eq!(c.ls().unwrap(), vec!["keep".to_string()]);
    c.write_dense::<u64>("after", &[1000], &[1; 1000]).unwrap();
    assert_eq!(c.open_dense::<u64>("after").unwrap().as_slice(), &[1; 1000]);
    drop(c);
    assert!(
        root.join(".dafstore/reserve").is_file(),
        "the reserve is back"
    );
    fsck_clean(&root, "after rm on a full file system");
}

/// Closes an in-place writer of `m` (all 7s written) with `free` bytes left, without the reserve;
/// returns the close's result, after checking that the writes are kept and fsck is clean.
fn close_in_place(free: u64) -> Option<Result<(), WriteError>> {
    let fs = Tmpfs::mount("2m")?;
    let root = fs.mnt.join("c");
    let context = format!("in-place close with {free} bytes free");
    let c = Container::create(&root).unwrap();
    c.write_dense::<u64>("m", &[1000], &[0; 1000]).unwrap();
    let mut w = c.open_dense_mut::<u64>("m").unwrap();
    w.as_mut_slice().fill(7);
    // Without the reserve, so the catalog's own slack is all there is.
    fs::remove_file(root.join(".dafstore/reserve")).unwrap();
    fill_leaving(&fs.mnt.join("filler"), free);
    let result = w.close();
    // Whether the writer is still registered, read from the catalog by SQLite itself.
    let db = rusqlite::Connection::open_with_flags(
        root.join(".dafstore/catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let registered: i64 = db
        .query_row(
            "SELECT COALESCE(SUM(count), 0) FROM inplace_writers WHERE name = 'm'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(db);
    // An error means the close did not happen (the writer is still registered); Ok that it did.
    assert_eq!(
        registered,
        i64::from(result.is_err()),
        "{context}: {result:?}"
    );
    drop(c);
    fs::remove_file(fs.mnt.join("filler")).unwrap();
    let c = Container::open(&root).unwrap();
    assert_eq!(
        c.open_dense::<u64>("m").unwrap().as_slice(),
        &[7; 1000],
        "{context}"
    );
    drop(c);
    // Clean, or (when the checksums could not be recorded) stale checksums that repair recomputes.
    let check = |repair| {
        let opts = FsckOptions { deep: true, repair };
        Container::fsck_dir(&root, opts, &mut |_, _| {}).unwrap()
    };
    let found = check(false);
    assert!(
        found
            .problems
            .iter()
            .all(|p| p.kind == dafstore::ProblemKind::ChecksumStale),
        "{context}: fsck: {:?}",
        found.problems
    );
    if !found.problems.is_empty() {
        check(true);
    }
    fsck_clean(&root, &context);
    Some(result)
}

#[test]
fn closing_an_in_place_writer_with_k_bytes_left_fails_only_before_it_is_unregistered() {
    let _serial = serial();
    // The writer's unregistration in the catalog commits the close ([W7], [W9]); recording the
    // new checksums and rewriting the metadata file with them are finishing steps: running out of
    // space there is not a failure of the close (the checksums stay stale, or the metadata file
    // stays without them; both are valid).
    let mut outcomes = String::new();
    for pages in 0..=12u64 {
        let Some(result) = close_in_place(pages * PAGE) else {
            return;
        };
        outcomes.push(match result {
            Ok(()) => '+',
            Err(WriteError::NoSpace { path, .. }) => {
                assert!(
                    path.ends_with("catalog.sqlite"),
                    "{pages} pages free: NoSpace after the close was committed, at {}",
                    path.display()
                );
                'c'
            }
            Err(e) => panic!("{pages} pages free: {e:?}"),
        });
    }
    eprintln!("in-place close, 0..=12 pages free: {outcomes}");
    assert!(outcomes.ends_with('+'), "{outcomes}");
}
