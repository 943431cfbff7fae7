//! Batch publish (SPEC [W11]): every entry of a batch is published, or none; duplicates are
//! refused before anything is written; a dropped batch leaves nothing; replaces (of another kind
//! too) leave the files of one kind; limits reserve once; a reader in another process never sees
//! a strict subset of a batch.

use std::process::{Command, Stdio};

use dafstore::{Container, CreateOptions, DType, Lifecycle, OpenError, WriteError};
use dafstore_tests::{listing, new_container, staging_files};

const HELPER: &str = env!("CARGO_BIN_EXE_dafstore-crash-helper");

fn values(c: &Container, name: &str) -> Vec<f32> {
    c.open_dense::<f32>(name).unwrap().as_slice().to_vec()
}

#[test]
fn a_published_batch_makes_every_entry_readable_with_its_own_bytes() {
    let (_t, c) = new_container();
    let mut b = c.batch().unwrap();
    for i in 0..300u32 {
        let name = if i % 3 == 0 {
            format!("sub/dir/v{i}")
        } else {
            format!("v{i}")
        };
        b.write_dense::<f32>(&name, &[2, 4], &[i as f32; 8])
            .unwrap();
    }
    b.write_dense_bytes("raw", DType::UInt8, &[3], &[1, 2, 3])
        .unwrap();
    assert_eq!(b.len(), 301);
    assert!(
        c.ls().unwrap().is_empty(),
        "nothing is visible before publish"
    );
    b.publish().unwrap();
    assert_eq!(c.ls().unwrap().len(), 301);
    assert_eq!(values(&c, "v4"), vec![4.0; 8]);
    assert_eq!(values(&c, "sub/dir/v3"), vec![3.0; 8]);
    assert_eq!(
        c.open_dense::<u8>("raw").unwrap().as_slice().to_vec(),
        vec![1, 2, 3]
    );
    assert!(staging_files(c.root()).is_empty());
    let opts = dafstore::FsckOptions {
        deep: true,
        repair: false,
    };
    let report = Container::fsck_dir(c.root(), opts, &mut |_, _| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn a_name_given_twice_in_a_batch_is_refused_and_the_first_stays_staged() {
    let (_t, c) = new_container();
    let mut b = c.batch().unwrap();
    b.write_dense::<f32>("a", &[1], &[1.0]).unwrap();
    let staged = staging_files(c.root()).len();
    let err = b.write_dense::<f32>("a", &[1], &[2.0]).unwrap_err();
    assert!(
        matches!(&err, WriteError::DuplicateInBatch { name } if name == "a"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"a\""), "{err}");
    assert_eq!(
        staging_files(c.root()).len(),
        staged,
        "nothing of the duplicate was written"
    );
    b.publish().unwrap();
    assert_eq!(values(&c, "a"), vec![1.0]);
}

#[test]
fn a_dropped_batch_publishes_nothing_and_removes_its_staged_files() {
    let (_t, c) = new_container();
    c.write_dense::<f32>("keep", &[1], &[7.0]).unwrap();
    let mut b = c.batch().unwrap();
    b.write_dense::<f32>("keep", &[1], &[8.0]).unwrap();
    b.write_dense::<f32>("new", &[1], &[9.0]).unwrap();
    assert_eq!(staging_files(c.root()).len(), 4);
    drop(b);
    assert!(staging_files(c.root()).is_empty());
    assert_eq!(c.ls().unwrap(), vec!["keep".to_string()]);
    assert_eq!(values(&c, "keep"), vec![7.0]);
}

#[test]
fn an_invalid_entry_is_refused_and_leaves_the_batch_as_it_was() {
    let (_t, c) = new_container();
    let mut b = c.batch().unwrap();
    b.write_dense::<f32>("ok", &[2], &[1.0, 2.0]).unwrap();
    let short = b.write_dense::<f32>("short", &[3], &[1.0]).unwrap_err();
    assert!(
        matches!(short, WriteError::LengthMismatch { .. }),
        "{short:?}"
    );
    let bad_bool = b
        .write_dense_bytes("flags", DType::Bool, &[2], &[0, 2])
        .unwrap_err();
    assert!(
        matches!(bad_bool, WriteError::InvalidBool { .. }),
        "{bad_bool:?}"
    );
    let bad_name = b.write_dense::<f32>("a/../b", &[1], &[1.0]).unwrap_err();
    assert!(matches!(bad_name, WriteError::Name(_)), "{bad_name:?}");
    assert_eq!(b.len(), 1);
    assert_eq!(staging_files(c.root()).len(), 2);
    b.publish().unwrap();
    assert_eq!(c.ls().unwrap(), vec!["ok".to_string()]);
}

#[test]
fn a_batch_replacing_a_sparse_array_by_a_dense_one_leaves_only_dense_files() {
    let (t, c) = new_container();
    c.write_sparse::<f64, u32, u64>(
        "s",
        dafstore::Layout::Rows,
        [2, 2],
        &[1.0],
        &[1],
        &[0, 1, 1],
    )
    .unwrap();
    c.write_dense::<f32>("d", &[1], &[1.0]).unwrap();
    let before = c.info("d").unwrap().generation;
    let mut b = c.batch().unwrap();
    b.write_dense::<f32>("s", &[2], &[5.0, 6.0]).unwrap();
    b.write_dense::<f32>("d", &[1], &[2.0]).unwrap();
    b.publish().unwrap();
    assert_eq!(values(&c, "s"), vec![5.0, 6.0]);
    assert_eq!(values(&c, "d"), vec![2.0]);
    assert_eq!(c.info("d").unwrap().generation, before + 1);
    let root = t.path().join("c");
    let files: Vec<String> = listing(&root)
        .into_keys()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.starts_with(".dafstore"))
        .collect();
    assert_eq!(files, vec!["d.array", "d.yaml", "s.array", "s.yaml"]);
}

#[test]
fn a_batch_publishes_sparse_and_dense_entries_together_and_refuses_an_invalid_sparse_one() {
    let (_t, c) = new_container();
    let mut b = c.batch().unwrap();
    b.write_sparse::<f32, u32, u64>(
        "m",
        dafstore::Layout::Columns,
        [3, 2],
        &[1.0, 2.0],
        &[0, 2],
        &[0, 1, 2],
    )
    .unwrap();
    // indptr does not end at nnz: refused, nothing of it staged.
    let staged = staging_files(c.root()).len();
    let err = b
        .write_sparse::<f32, u32, u64>(
            "bad",
            dafstore::Layout::Rows,
            [2, 2],
            &[1.0],
            &[0],
            &[0, 1, 2],
        )
        .unwrap_err();
    assert!(matches!(err, WriteError::Sparse { .. }), "{err:?}");
    assert_eq!(staging_files(c.root()).len(), staged);
    let dup = b
        .write_sparse::<f32, u32, u64>("m", dafstore::Layout::Rows, [1, 1], &[], &[], &[0, 0])
        .unwrap_err();
    assert!(
        matches!(dup, WriteError::DuplicateInBatch { .. }),
        "{dup:?}"
    );
    b.write_dense::<f32>("v", &[1], &[3.0]).unwrap();
    b.publish().unwrap();
    assert_eq!(c.ls().unwrap(), vec!["m".to_string(), "v".to_string()]);
    let m = c.open_sparse("m").unwrap();
    assert_eq!(m.data::<f32>().unwrap(), &[1.0, 2.0]);
    assert_eq!(m.shape(), [3, 2]);
}

#[test]
fn a_batch_takes_the_lifecycle_it_is_given_for_every_entry() {
    let (_t, c) = new_container();
    let mut b = c
        .batch_with(&CreateOptions::lifecycle(Lifecycle::Cached))
        .unwrap();
    b.write_dense::<f32>("x", &[1], &[1.0]).unwrap();
    b.write_dense::<f32>("y", &[1], &[1.0]).unwrap();
    b.publish().unwrap();
    assert_eq!(c.info("x").unwrap().lifecycle, Lifecycle::Cached);
    assert_eq!(c.info("y").unwrap().lifecycle, Lifecycle::Cached);
}

#[test]
fn under_a_capacity_a_batch_reserves_its_bytes_and_ends_the_reservation_at_publish() {
    let (_t, c) = new_container();
    c.set_capacity(Some(1000)).unwrap();
    let mut b = c.batch().unwrap();
    b.write_dense::<u8>("a", &[400], &[1; 400]).unwrap();
    assert_eq!(c.usage().unwrap().reserved, 400);
    b.write_dense::<u8>("b", &[400], &[2; 400]).unwrap();
    assert_eq!(c.usage().unwrap().reserved, 800);
    // A third entry would exceed the capacity with the two staged ones: refused.
    let err = b.write_dense::<u8>("c", &[400], &[3; 400]).unwrap_err();
    assert!(matches!(err, WriteError::Capacity { .. }), "{err:?}");
    b.publish().unwrap();
    let usage = c.usage().unwrap();
    assert_eq!((usage.entries, usage.reserved), (800, 0));
    assert!(c.open_dense::<u8>("c").is_err());
}

#[test]
fn an_empty_batch_publishes_nothing_and_succeeds() {
    let (_t, c) = new_container();
    let b = c.batch().unwrap();
    assert!(b.is_empty());
    b.publish().unwrap();
    assert!(c.ls().unwrap().is_empty());
}

/// The seed of each of `names` as opened now (`None`: not found).
fn seeds(c: &Container, names: &[String]) -> Vec<Option<u64>> {
    names
        .iter()
        .map(|n| match c.open_dense::<u64>(n) {
            Ok(a) => Some(a.as_slice()[0]),
            Err(OpenError::NotFound { .. }) => None,
            Err(e) => panic!("{n}: {e}"),
        })
        .collect()
}

#[test]
fn a_reader_in_another_process_never_sees_a_strict_subset_of_a_batch() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("c");
    drop(Container::create(&root).unwrap());
    const ROUNDS: u64 = 20;
    let mut writer = Command::new(HELPER)
        .arg("op")
        .arg(&root)
        .args(["batch-rounds", "b", &ROUNDS.to_string()])
        .env_remove("DAFSTORE_FAILPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let names: Vec<String> = (0..100).map(|i| format!("b{i}")).collect();
    let c = Container::open(&root).unwrap();
    // A listing is one catalog snapshot: all of a batch's names or none. Listed by a thread of
    // its own, which never waits for a stripe as the opens below do.
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let lister = {
        let (c, writing, n) = (c.clone(), writing.clone(), names.len());
        std::thread::spawn(move || {
            let mut listings = 0u64;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                let listed = c.ls().unwrap();
                assert!(
                    listed.is_empty() || listed.len() == n,
                    "a listing showed {} of the batch's {n} names",
                    listed.len()
                );
                listings += 1;
            }
            listings
        })
    };
    let mut looks = 0u64;
    let mut rounds_seen = std::collections::BTreeSet::new();
    loop {
        let done = writer.try_wait().unwrap().is_some();
        // Opening one after the other: once one is found, every later one is found, of the
        // same round or a later one (entry i of round r has seed 1000 r + i); the ones not found
        // before it (the batch committed in between) are found when opened again.
        let seen = seeds(&c, &names);
        if let Some(first) = seen.iter().position(Option::is_some) {
            let mut round = 0;
            for (i, s) in seen.iter().enumerate().skip(first) {
                let s =
                    s.unwrap_or_else(|| panic!("b{i} missing after b{first} was found: {seen:?}"));
                assert_eq!(s % 1000, i as u64, "b{i} has another entry's bytes");
                assert!(s / 1000 >= round, "b{i} is of an older round: {seen:?}");
                round = s / 1000;
                rounds_seen.insert(round);
            }
            let again = seeds(&c, &names[..first]);
            assert!(
                again.iter().all(Option::is_some),
                "b0..b{first} still missing after b{first} was found: {again:?}"
            );
        }
        looks += 1;
        if done {
            break;
        }
    }
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(lister.join().unwrap() > 0);
    let out = writer.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    assert!(looks > 1);
    assert_eq!(
        seeds(&c, &names),
        (0..100)
            .map(|i| Some(ROUNDS * 1000 + i))
            .collect::<Vec<_>>()
    );
    // Not an assertion on timing: the last look is after the last round.
    assert!(rounds_seen.contains(&ROUNDS));
}

#[test]
fn a_batch_published_under_a_load_lock_is_held_from_its_live_flip_until_the_lock_is_dropped() {
    // SPEC [E6] for a batch: the loader's reference records are written before the `live` flip,
    // so no eviction falls between the publish and the loader's open.
    let (_d, c) = new_container();
    let lock = c.lock_load("x", None).unwrap();
    let mut b = c.batch().unwrap();
    b.write_dense_bytes("x", DType::UInt8, &[8], &[1; 8])
        .unwrap();
    b.publish().unwrap();
    assert_eq!(c.info("x").unwrap().lifecycle, Lifecycle::Cached);
    assert_eq!(c.local_refs("x"), 1, "held from its live flip");
    assert_eq!(
        c.info("x").unwrap().holders,
        1,
        "its record is in the session file"
    );
    c.set_capacity(Some(8)).unwrap();
    assert!(
        matches!(
            c.write_dense_bytes_with(
                "y",
                DType::UInt8,
                &[8],
                &[2; 8],
                &CreateOptions::lifecycle(Lifecycle::Cached)
            ),
            Err(WriteError::Capacity { .. })
        ),
        "a held entry is never evicted"
    );
    drop(lock);
    assert_eq!(c.local_refs("x"), 0, "given back with the lock");
    assert_eq!(c.info("x").unwrap().holders, 0);
}
