//! The removal counter (SPEC [P4]) and the release clock (SPEC [E5]).
//!
//! The removal counter `.dafstore/locks/removals` (a little-endian u64) grows by one whenever a
//! removal is deferred or an entry becomes scratch; a release may skip reading the row if it has
//! not changed since the reference was taken.
//!
//! The release clock (SPEC [E5]): `.dafstore/locks/released`, 65,536 little-endian u64 slots of
//! ms since the epoch, slot `key mod 65536` stamped by every last release of a name. Releases
//! write no catalog row ([P3]), so this is what orders eviction besides the catalog's
//! `released_at` (set at publish): approximate, since names share slots, and best effort.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::shared::{path_io, Shared};
use crate::fs::beneath;

/// Slots of the release clock.
pub(crate) const SLOTS: u64 = 65_536;

/// The clock file's name in `.dafstore/locks/`.
pub(crate) const FILE: &str = "released";

/// The removal counter's name in `.dafstore/locks/`.
pub(crate) const REMOVALS: &str = "removals";

/// Opens (creating it if missing) the release clock of the container at `root`.
pub(crate) fn open(root: &std::path::Path) -> io::Result<File> {
    open_locks_file(root, FILE)
}

/// Opens (creating it if missing) `.dafstore/locks/<leaf>`, a regular file.
fn open_locks_file(root: &std::path::Path, leaf: &str) -> io::Result<File> {
    let locks = beneath::reserved(root, "locks").map_err(path_io)?;
    let (file, md) = locks
        .open_or_create_file(std::ffi::OsStr::new(leaf))
        .map_err(path_io)?;
    if !md.is_file() {
        return Err(io::Error::other(format!(
            "{}: not a regular file",
            root.join(crate::format::RESERVED_DIR)
                .join("locks")
                .join(leaf)
                .display()
        )));
    }
    Ok(file)
}

/// The removal counter now ([P4]); an error if it cannot be read (then a release reads the row).
pub(crate) fn removals(shared: &Shared) -> io::Result<u64> {
    let p = shared.here();
    let mut guard = crate::sync::lock(&p.removals);
    if guard.is_none() {
        *guard = Some(open_locks_file(&shared.root, REMOVALS)?);
    }
    let Some(file) = guard.as_ref() else {
        return Err(io::Error::other("no removal counter"));
    };
    let mut b = [0u8; 8];
    let n = file.read_at(&mut b, 0)?;
    Ok(if n == 8 { u64::from_le_bytes(b) } else { 0 })
}

/// Adds one to the removal counter ([P4]), under an exclusive `flock` of it so that no increment
/// is lost.
pub(crate) fn bump_removals(shared: &Shared) -> io::Result<()> {
    let file = open_locks_file(&shared.root, REMOVALS)?;
    file.lock()?;
    let mut b = [0u8; 8];
    let n = file.read_at(&mut b, 0)?;
    let now = if n == 8 { u64::from_le_bytes(b) } else { 0 };
    file.write_all_at(&now.wrapping_add(1).to_le_bytes(), 0)?;
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    file.unlock()
}

/// Stamps `key`'s slot with `ms`.
pub(crate) fn stamp(shared: &Shared, key: u64, ms: i64) -> io::Result<()> {
    let p = shared.here();
    let mut guard = crate::sync::lock(&p.clock);
    if guard.is_none() {
        *guard = Some(open(&shared.root)?);
    }
    let Some(file) = guard.as_ref() else {
        return Ok(());
    };
    file.write_all_at(&ms.to_le_bytes(), (key % SLOTS) * 8)
}

/// The stamps of the release clock: each read with one `pread` of its 8 bytes, or, after
/// [`Stamps::WHOLE_AFTER`] lookups, the whole file read once.
#[derive(Default)]
pub(crate) struct Stamps {
    file: std::sync::OnceLock<Option<File>>,
    whole: std::sync::OnceLock<Vec<u8>>,
    lookups: std::sync::atomic::AtomicUsize,
}

impl Stamps {
    /// Lookups answered one `pread` each before the whole file is read.
    const WHOLE_AFTER: usize = 256;

    /// `key`'s stamp (0 when never stamped or unreadable).
    pub(crate) fn get(&self, root: &std::path::Path, key: u64) -> i64 {
        let Some(file) = self
            .file
            .get_or_init(|| {
                // Never created by a reader (read-only handles change nothing): missing is zeros.
                beneath::reserved(root, "locks")
                    .and_then(|d| d.open_file(std::ffi::OsStr::new(FILE), false))
                    .ok()
                    .flatten()
                    .filter(|(_, md)| md.is_file())
                    .map(|(f, _)| f)
            })
            .as_ref()
        else {
            return 0;
        };
        let at = (key % SLOTS) * 8;
        let n = self
            .lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n < Self::WHOLE_AFTER && self.whole.get().is_none() {
            let mut b = [0u8; 8];
            return match file.read_at(&mut b, at) {
                Ok(8) => i64::from_le_bytes(b),
                _ => 0,
            };
        }
        let buf = self.whole.get_or_init(|| {
            let mut chunk = vec![0u8; (SLOTS * 8) as usize];
            match file.read_at(&mut chunk, 0) {
                Ok(n) => {
                    chunk.truncate(n);
                    chunk
                }
                Err(_) => Vec::new(),
            }
        });
        let at = at as usize;
        buf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, i64::from_le_bytes)
    }
}
