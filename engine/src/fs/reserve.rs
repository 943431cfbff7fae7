//! The space reserve (SPEC 9.1 [Q3]): `.dafstore/reserve`, a small file of allocated blocks that a
//! catalog transaction which frees space or finishes committed work (a removal, a release, a
//! session start, the `live` flip of a committed publish) deletes when the file system is full,
//! so that removing arrays — how a user frees space — works on a full file system. It is made at
//! create and re-made (by gc and after a removal) only when the file system has room for it twice
//! over, so it never takes a user's last free bytes. Publish intents never use it.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

/// Smallest and largest reserve: 1/64 of the file system, rounded to 4 KiB, within these bounds.
const MIN_BYTES: u64 = 64 << 10;
const MAX_BYTES: u64 = 1 << 20;

/// `.dafstore/reserve` of the reserved directory `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join("reserve")
}

/// The reserve's size on a file system of `total` bytes.
pub(crate) fn size_for(total: u64) -> u64 {
    (total / 64).clamp(MIN_BYTES, MAX_BYTES) & !4095
}

/// Deletes the reserve; returns whether there was one (so a retry can make use of its space).
pub(crate) fn release(dir: &Path) -> bool {
    fs::remove_file(path(dir)).is_ok()
}

/// Makes the reserve if it is missing or short and the file system has room for it twice over.
/// Best effort: any failure leaves no partial file and is not an error (the reserve is a help,
/// not a promise).
pub(crate) fn ensure(dir: &Path) {
    let Ok((free, total)) = crate::fs::sys::fs_space(dir) else {
        return;
    };
    let want = size_for(total);
    let fin = path(dir);
    if fs::metadata(&fin).is_ok_and(|m| m.len() >= want) {
        return;
    }
    if free < want.saturating_mul(2) {
        return;
    }
    let tmp = dir.join("reserve.tmp");
    let made = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|f| crate::fs::sys::reserve(&f, want))
        .and_then(|()| fs::rename(&tmp, &fin));
    if made.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_a_64th_of_the_file_system_between_64_kib_and_1_mib() {
        assert_eq!(size_for(1 << 20), 64 << 10);
        assert_eq!(size_for(32 << 20), 512 << 10);
        assert_eq!(size_for(64 << 30), 1 << 20);
        assert_eq!(size_for((32 << 20) + 100) % 4096, 0);
    }
}
