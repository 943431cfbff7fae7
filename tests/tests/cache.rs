//! The cache (SPEC 9.7): lifecycles, the capacity and its exact reservations, eviction of the
//! least recently released unreferenced `cached` entries, and what is never evicted.
// Loaders return `dafstore::Result`, whose error is 128 bytes (clippy's `result_large_err`).
#![allow(clippy::result_large_err)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use dafstore::arrow_array::{Int64Array, RecordBatch};
use dafstore::{Container, CreateOptions, DType, Lifecycle, Limits, LoadOptions, WriteError};
use dafstore_tests::{new_container, staging_files};

const HELPER: &str = env!("CARGO_BIN_EXE_dafstore-test-helper");

fn cached() -> CreateOptions {
    CreateOptions::lifecycle(Lifecycle::Cached)
}

fn put(c: &Container, name: &str, len: u64, opts: &CreateOptions) -> Result<(), WriteError> {
    let bytes = vec![len as u8; len as usize];
    c.write_dense_bytes_with(name, DType::UInt8, &[len], &bytes, opts)
}

/// Opens and drops `name`: a release now.
fn touch(c: &Container, name: &str) {
    drop(c.open_array(name).unwrap());
    // Release times are in ms: keep them apart.
    thread::sleep(Duration::from_millis(3));
}

#[test]
fn a_write_over_the_capacity_evicts_the_least_recently_released_unreferenced_cached_entries() {
    let (_d, c) = new_container();
    c.set_capacity(Some(30)).unwrap();
    for n in ["a", "b", "c"] {
        put(&c, n, 10, &cached()).unwrap();
    }
    // Released last to first: c, then a, then b.
    for n in ["c", "a", "b"] {
        touch(&c, n);
    }
    put(&c, "d", 10, &cached()).unwrap();
    assert_eq!(c.ls().unwrap(), ["a", "b", "d"], "c was released first");
    put(&c, "e", 20, &cached()).unwrap();
    // d was published (which counts as a release) after b was released: a, then b.
    assert_eq!(c.ls().unwrap(), ["d", "e"], "a then b went, in that order");
    let u = c.usage().unwrap();
    assert_eq!((u.entries, u.reserved, u.evictable), (30, 0, 30));
    let info = c.info("e").unwrap();
    assert_eq!(info.lifecycle, Lifecycle::Cached);
    assert!(info.released_at.is_some());
}

#[test]
fn held_persistent_and_scratch_entries_are_never_evicted_and_a_write_that_cannot_fit_says_who_holds_what(
) {
    let (_d, c) = new_container();
    c.set_capacity(Some(40)).unwrap();
    put(&c, "persistent", 10, &CreateOptions::default()).unwrap();
    put(
        &c,
        "scratch",
        10,
        &CreateOptions::lifecycle(Lifecycle::Scratch),
    )
    .unwrap();
    put(&c, "held", 10, &cached()).unwrap();
    put(&c, "free", 10, &cached()).unwrap();
    let held = c.open_array("held").unwrap();
    // 10 more fits only by evicting "free".
    put(&c, "x", 10, &cached()).unwrap();
    assert_eq!(c.ls().unwrap(), ["held", "persistent", "scratch", "x"]);
    let x = c.open_array("x").unwrap();
    // Nothing evictable is left: the write fails, names the holder, publishes nothing.
    let e = put(&c, "y", 10, &cached()).unwrap_err();
    let WriteError::Capacity { shortfall, .. } = &e else {
        panic!("expected a capacity error, got {e}")
    };
    assert_eq!(
        (shortfall.needed, shortfall.used, shortfall.evictable),
        (10, 40, 0)
    );
    let msg = e.to_string();
    assert!(msg.contains("\"held\"") && msg.contains(&format!("pid {}", std::process::id())));
    assert!(msg.contains("capacity 40"), "{msg}");
    assert!(c.info("y").is_err());
    assert!(staging_files(c.root()).is_empty());
    assert_eq!(c.usage().unwrap().reserved, 0);
    // Released, "held" is evictable again (least recently released of the two).
    drop(held);
    thread::sleep(Duration::from_millis(3));
    drop(x);
    put(&c, "y", 10, &cached()).unwrap();
    assert_eq!(c.ls().unwrap(), ["persistent", "scratch", "x", "y"]);
}

#[test]
fn open_or_load_makes_cached_entries_that_outlive_their_last_release_until_room_is_needed() {
    let (_d, c) = new_container();
    c.set_capacity(Some(16)).unwrap();
    let loads = AtomicU64::new(0);
    let load = |c: &Container, n: &str| -> dafstore::Result<()> {
        loads.fetch_add(1, Ordering::SeqCst);
        put(c, n, 8, &CreateOptions::default())?;
        Ok(())
    };
    drop(c.open_or_load("in/1", load).unwrap());
    drop(c.open_or_load("in/1", load).unwrap());
    assert_eq!(loads.load(Ordering::SeqCst), 1, "kept after the release");
    assert_eq!(c.info("in/1").unwrap().lifecycle, Lifecycle::Cached);
    assert_eq!(
        c.local_refs("in/1"),
        0,
        "the loader's reference was given back"
    );
    drop(c.open_or_load("in/2", load).unwrap());
    thread::sleep(Duration::from_millis(3));
    drop(c.open_or_load("in/3", load).unwrap());
    assert_eq!(c.ls().unwrap(), ["in/2", "in/3"]);
    // Asked otherwise, the loaded entry is persistent.
    let opts = LoadOptions {
        lifecycle: Lifecycle::Persistent,
        ..LoadOptions::default()
    };
    c.set_capacity(None).unwrap();
    drop(c.open_or_load_with("in/4", &opts, load).unwrap());
    assert_eq!(c.info("in/4").unwrap().lifecycle, Lifecycle::Persistent);
}

#[test]
fn a_replace_counts_the_old_generation_until_it_is_renamed_over() {
    let (_d, c) = new_container();
    c.set_capacity(Some(30)).unwrap();
    put(&c, "a", 20, &CreateOptions::default()).unwrap();
    // Old 20 and new 20 both exist until the publish renames: 40 > 30.
    let e = put(&c, "a", 20, &CreateOptions::default()).unwrap_err();
    assert!(matches!(e, WriteError::Capacity { .. }), "{e}");
    c.set_capacity(Some(40)).unwrap();
    put(&c, "a", 20, &CreateOptions::default()).unwrap();
    assert_eq!(c.info("a").unwrap().generation, 2);
    let u = c.usage().unwrap();
    assert_eq!((u.entries, u.reserved), (20, 0));
}

#[test]
fn a_streamed_table_reserves_as_it_grows_and_stops_before_writing_past_the_capacity() {
    let (_d, c) = new_container();
    c.set_capacity(Some(4 << 20)).unwrap();
    let batch =
        RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from_iter_values(0..65_536)) as _)])
            .unwrap();
    let mut w = c
        .create_table("t", batch.schema(), &CreateOptions::default())
        .unwrap();
    let mut pushed = 0;
    let err = loop {
        match w.push(&batch) {
            Ok(()) => pushed += 1,
            Err(e) => break e,
        }
        assert!(pushed < 100, "never refused");
    };
    assert!(matches!(err, WriteError::Capacity { .. }), "{err}");
    // Each batch is 512 KiB of values: some fit, and what was staged stayed under 4 MiB.
    assert!(pushed >= 4, "{pushed}");
    let staged: u64 = staging_files(c.root())
        .iter()
        .map(|p| {
            std::fs::metadata(c.root().join(".dafstore/staging").join(p))
                .unwrap()
                .len()
        })
        .sum();
    assert!(staged <= 4 << 20, "{staged}");
    drop(w);
    assert_eq!(c.usage().unwrap().reserved, 0);
    assert!(staging_files(c.root()).is_empty());
    // A table that fits is published, and its reservation ends with the publish.
    c.write_table_with("t", batch.schema(), std::slice::from_ref(&batch), &cached())
        .unwrap();
    assert_eq!(c.open_table("t").unwrap().num_rows(), 65_536);
    let u = c.usage().unwrap();
    assert_eq!(u.reserved, 0);
    assert_eq!(u.entries, c.info("t").unwrap().bytes);
}

#[test]
fn a_write_told_to_wait_for_room_waits_until_a_holder_releases() {
    let (_d, c) = new_container();
    c.set_capacity(Some(20)).unwrap();
    put(&c, "a", 10, &cached()).unwrap();
    put(&c, "b", 10, &cached()).unwrap();
    let held = c.open_array("a").unwrap();
    let other = Container::open(c.root()).unwrap();
    let pinned = other.open_array("b").unwrap();
    let released = Arc::new(AtomicBool::new(false));
    let r = released.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        r.store(true, Ordering::SeqCst);
        drop(pinned);
    });
    c.wait_for_room(Some(Duration::from_secs(20)));
    put(&c, "c", 10, &cached()).unwrap();
    assert!(released.load(Ordering::SeqCst), "it waited for the release");
    t.join().unwrap();
    assert_eq!(c.ls().unwrap(), ["a", "c"]);
    drop(held);
    // Without waiting, it fails at once.
    c.wait_for_room(None);
    let _a = c.open_array("a").unwrap();
    let _c = c.open_array("c").unwrap();
    assert!(matches!(
        put(&c, "d", 10, &cached()),
        Err(WriteError::Capacity { .. })
    ));
}

#[test]
fn a_killed_writers_reservation_is_collected_when_room_is_needed() {
    let (_d, c) = new_container();
    c.set_capacity(Some(64 * 8)).unwrap();
    let mut child = Command::new(HELPER)
        .args(["create-and-hang", &c.root().to_string_lossy(), "big", "48"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    assert_eq!(c.usage().unwrap().reserved, 48 * 8);
    assert!(matches!(
        put(&c, "x", 200, &cached()),
        Err(WriteError::Capacity { .. })
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    // The dead writer's staged bytes are collected, then the write fits.
    put(&c, "x", 200, &cached()).unwrap();
    assert_eq!(c.usage().unwrap().reserved, 0);
    assert!(staging_files(c.root()).is_empty());
}

#[test]
fn set_lifecycle_changes_what_the_last_release_does() {
    let (_d, c) = new_container();
    put(&c, "a", 4, &CreateOptions::default()).unwrap();
    assert_eq!(c.info("a").unwrap().lifecycle, Lifecycle::Persistent);
    c.set_lifecycle("a", Lifecycle::Cached).unwrap();
    assert_eq!(c.info("a").unwrap().lifecycle, Lifecycle::Cached);
    touch(&c, "a");
    assert_eq!(
        c.ls().unwrap(),
        ["a"],
        "cached: kept after the last release"
    );
    c.set_lifecycle("a", Lifecycle::Scratch).unwrap();
    assert!(
        c.ls().unwrap().is_empty(),
        "scratch, held before: removed at once"
    );
    assert!(matches!(
        c.set_lifecycle("a", Lifecycle::Cached),
        Err(WriteError::NotFound { .. })
    ));
    // Limits are stored with the container.
    c.set_limits(Limits {
        capacity: Some(1 << 30),
        min_free: Some(1 << 20),
    })
    .unwrap();
    let again = Container::open(c.root()).unwrap();
    assert_eq!(
        again.limits().unwrap(),
        Limits {
            capacity: Some(1 << 30),
            min_free: Some(1 << 20)
        }
    );
}

#[test]
fn evict_trims_to_a_lowered_capacity_least_recently_released_first() {
    let (_d, c) = new_container();
    for n in ["a", "b", "c", "d"] {
        put(&c, n, 10, &cached()).unwrap();
    }
    put(&c, "p", 10, &CreateOptions::default()).unwrap();
    for n in ["d", "b", "a", "c"] {
        touch(&c, n);
    }
    c.set_capacity(Some(30)).unwrap();
    let evicted = c.evict().unwrap();
    let evicted: Vec<(&str, u64)> = evicted.iter().map(|e| (e.name.as_str(), e.bytes)).collect();
    assert_eq!(evicted, [("d", 10), ("b", 10)]);
    assert_eq!(c.ls().unwrap(), ["a", "c", "p"]);
    // Below what cannot be evicted, everything evictable goes.
    c.set_capacity(Some(5)).unwrap();
    assert_eq!(c.evict().unwrap().len(), 2);
    assert_eq!(c.ls().unwrap(), ["p"]);
}

/// The container's data files and staged data files: size by inode.
fn data_files(root: &Path) -> std::collections::HashMap<u64, u64> {
    use std::os::unix::fs::MetadataExt;
    fn walk(dir: &Path, skip_reserved: bool, out: &mut std::collections::HashMap<u64, u64>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                if !(skip_reserved && p.file_name().is_some_and(|n| n == ".dafstore")) {
                    walk(&p, false, out);
                }
            } else if p.extension().is_some_and(|x| {
                ["array", "data", "indices", "indptr", "arrow"]
                    .iter()
                    .any(|s| x == *s)
            }) {
                out.insert(m.ino(), m.len());
            }
        }
    }
    let mut out = std::collections::HashMap::new();
    walk(root, true, &mut out);
    walk(&root.join(".dafstore/staging"), false, &mut out);
    out
}

/// Bytes that the container's data files (staged ones included) certainly took together at one
/// instant: two walks, one right after the other, and the files (by inode, so a file renamed
/// from staging into place counts once) seen in both. Each of those existed all the time
/// between the walks, so their sum is a lower bound of what was there at that instant. (One
/// walk alone is not a snapshot: it can count a file unlinked just after it was seen together
/// with one created just before it is seen, which never coexisted: an eviction is followed by
/// the write that needed the room.)
fn data_bytes(root: &Path) -> u64 {
    let first = data_files(root);
    let second = data_files(root);
    second
        .iter()
        .filter_map(|(ino, len)| first.get(ino).map(|l| (*l).min(*len)))
        .sum()
}

#[test]
fn four_processes_loading_under_a_capacity_never_exceed_it_and_always_read_the_right_bytes() {
    let (_d, c) = new_container();
    let capacity = 1 << 20;
    c.set_capacity(Some(capacity)).unwrap();
    let root = c.root().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let (s, r) = (stop.clone(), root.clone());
    let monitor = thread::spawn(move || {
        let (mut samples, mut peak) = (0u64, 0u64);
        while !s.load(Ordering::SeqCst) {
            peak = peak.max(data_bytes(&r));
            samples += 1;
            thread::sleep(Duration::from_millis(1));
        }
        (samples, peak)
    });
    let procs: Vec<_> = (10..14)
        .map(|id| {
            Command::new(HELPER)
                .args([
                    "cache-churn",
                    &root.to_string_lossy(),
                    &id.to_string(),
                    "300",
                    "24",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut loads = 0u64;
    for p in procs {
        let out = p.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        loads += text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("loads="))
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let (samples, peak) = monitor.join().unwrap();
    eprintln!("samples {samples}, peak {peak} of {capacity}, loads {loads}");
    assert!(samples > 50, "{samples}");
    assert!(peak <= capacity, "peak {peak} > capacity {capacity}");
    // 24 names of 32–128 KiB (1.9 MiB) under 1 MiB: entries were evicted and loaded again.
    assert!(loads > 24, "{loads}");
    let u = c.usage().unwrap();
    assert!(u.entries <= capacity && u.reserved == 0, "{u:?}");
}

#[test]
fn a_publish_under_lock_load_is_cached_and_held_until_the_lock_is_dropped() {
    let (_d, c) = new_container();
    let lock = c.lock_load("x", None).unwrap();
    put(&c, "x", 8, &CreateOptions::default()).unwrap();
    assert_eq!(c.info("x").unwrap().lifecycle, Lifecycle::Cached);
    assert_eq!(c.local_refs("x"), 1, "held from its live flip (SPEC [E6])");
    c.set_capacity(Some(8)).unwrap();
    assert!(matches!(
        put(&c, "y", 8, &cached()),
        Err(WriteError::Capacity { .. })
    ));
    drop(lock);
    assert_eq!(c.local_refs("x"), 0, "given back with the lock");
    put(&c, "y", 8, &cached()).unwrap();
    assert_eq!(c.ls().unwrap(), ["y"]);
}

#[test]
fn a_free_space_floor_evicts_like_a_capacity_on_a_small_tmpfs() {
    let Some(fs) = dafstore_tests::Tmpfs::mount("8m") else {
        return;
    };
    let c = Container::create(fs.mnt.join("c")).unwrap();
    let free = || {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&fs.mnt)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let floor = 4 << 20;
    c.set_min_free(Some(floor)).unwrap();
    let len = 1 << 20;
    let mut written = Vec::new();
    for i in 0..8 {
        let n = format!("e{i}");
        put(&c, &n, len, &cached()).unwrap();
        written.push(n);
        thread::sleep(Duration::from_millis(3));
        // The floor holds after every write (less a little catalog growth).
        assert!(free() + (256 << 10) >= floor, "{} free after {i}", free());
    }
    let kept = c.ls().unwrap();
    assert!(kept.len() < 8 && !kept.is_empty(), "{kept:?}");
    // The oldest went first: what is kept is the newest, in order.
    assert_eq!(kept, written[written.len() - kept.len()..]);
    // Nothing evictable: a persistent write that would break the floor is refused, saying so.
    for n in kept {
        c.set_lifecycle(&n, Lifecycle::Persistent).unwrap();
    }
    let e = put(&c, "big", 2 * len, &CreateOptions::default()).unwrap_err();
    let WriteError::Capacity { shortfall, .. } = &e else {
        panic!("{e}")
    };
    assert!(shortfall.fs_free.is_some() && shortfall.limits.min_free == Some(floor));
    assert!(e.to_string().contains("to be kept free"), "{e}");
}

/// Found by the `catalog_rows` fuzz target (a 60 s timeout): a damaged catalog's `cached` row
/// whose name the engine refuses can never be evicted through its stripe, and a write that had
/// to make room picked it again and again forever. It is not evictable now, and a write that
/// cannot evict what it picked does not pick it again: the write ends (here with the capacity
/// error) instead of spinning.
#[test]
fn a_write_that_cannot_evict_what_it_picked_ends_instead_of_retrying_forever() {
    let (_d, c) = new_container();
    let root = c.root().to_path_buf();
    c.set_capacity(Some(20)).unwrap();
    put(&c, "a", 10, &cached()).unwrap();
    put(&c, "b", 10, &cached()).unwrap();
    {
        let db = rusqlite::Connection::open(root.join(".dafstore/catalog.sqlite")).unwrap();
        db.execute_batch(
            "PRAGMA foreign_keys = OFF;
             UPDATE arrays SET name = 'x/../a' WHERE name = 'a';
             UPDATE array_files SET name = 'x/../a' WHERE name = 'a';",
        )
        .unwrap();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let c = c.clone();
        thread::spawn(move || {
            let r = put(&c, "e", 15, &cached());
            let _ = tx.send(r.map(|_| ()));
        })
    };
    let r = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the write did not end within 60 s");
    writer.join().unwrap();
    // "b" could go (10 bytes) but that is not enough while the damaged row's 10 bytes stay.
    let e = r.expect_err("15 bytes cannot fit beside the damaged row's 10 under 20");
    assert!(matches!(e, WriteError::Capacity { .. }), "{e}");
}
