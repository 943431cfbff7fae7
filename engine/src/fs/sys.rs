//! Every `unsafe` block of dafstore lives here: making maps, viewing them as slices, an Arrow
//! buffer over a map, a `pthread_atfork` handler, and a few libc calls (`posix_fallocate`,
//! `statfs`, `access`, `getrandom`, and the fd-relative `openat`, `mkdirat`, `unlinkat`, `renameat` that let
//! [`crate::fs::beneath`] resolve paths under a container without following links). Each block has a
//! `// SAFETY:` comment naming the check that
//! makes it sound. The rest of the crate is safe code built on these few functions.
//!
//! The contract every map relies on (memmap2's: the file must not be truncated while mapped) is
//! made true by construction for files dafstore publishes: they are never truncated, extended or
//! rewritten in place (SPEC [W4]); replacement makes new inodes. A process outside dafstore that
//! truncates a published file breaks it; `dafctl fsck` detects that.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

use memmap2::{MmapMut, MmapOptions, MmapRaw};

/// A shared map of a whole, non-empty file, read-only or writable. The file descriptor used to
/// make it is not kept (a map does not need it).
pub(crate) struct SharedMap {
    raw: MmapRaw,
    writable: bool,
}

impl SharedMap {
    /// Maps `len` bytes of `file` (`len` > 0 and equal to the file's length, checked by callers
    /// against the metadata before calling).
    pub(crate) fn new(file: &File, len: usize, writable: bool) -> io::Result<SharedMap> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map zero bytes",
            ));
        }
        let opts = {
            let mut o = MmapOptions::new();
            o.len(len);
            o
        };
        let raw = if writable {
            opts.map_raw(file)?
        } else {
            opts.map_raw_read_only(file)?
        };
        Ok(SharedMap { raw, writable })
    }

    /// Whether the map can be written.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `raw` maps exactly `len()` readable bytes for as long as `self` lives (the
        // borrow ties the slice to it). The file is one dafstore never truncates (module doc), so
        // every page stays backed. Concurrent in-place writers (r+ opens, in this or another
        // process) may change values while the slice is borrowed; that is the documented
        // shared-memory contract of `DenseArray` (values may change, memory stays valid).
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr(), self.raw.len()) }
    }

    /// A write-access token for this map, only if it is writable. One in-place writer handle
    /// owns one token; writing needs `&mut` of it, so a handle never has two `&mut` views at once.
    pub(crate) fn write_access(&self) -> Option<WriteAccess> {
        self.writable.then_some(WriteAccess(()))
    }

    /// The mapped bytes, writable, for the holder of a token from [`SharedMap::write_access`].
    pub(crate) fn bytes_mut<'a>(&'a self, _access: &'a mut WriteAccess) -> &'a mut [u8] {
        // SAFETY: a token exists only for a writable map (PROT_WRITE, MAP_SHARED; checked in
        // `write_access`); `len()` bytes stay mapped while `self` is borrowed; the `&mut` borrow of
        // the token makes this the only `&mut` view of its owner (an in-place writer handle) in use.
        // Other handles on the same file share the memory and see the writes: the documented
        // shared-memory contract of `DenseMut`, the same as numpy's `r+` memmap.
        unsafe { std::slice::from_raw_parts_mut(self.raw.as_mut_ptr(), self.raw.len()) }
    }

    /// Writes dirty pages of a writable map back to the file (msync).
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.raw.flush()
    }
}

/// Permission to write through a writable [`SharedMap`] (see [`SharedMap::write_access`]).
pub(crate) struct WriteAccess(());

/// Makes a writable shared map of a whole non-empty file owned by one writer (a staging file,
/// outside the cache): `&mut` access then goes through `&mut MmapMut`, safely.
pub(crate) fn map_owned_writable(file: &File, len: usize) -> io::Result<MmapMut> {
    if len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot map zero bytes",
        ));
    }
    // SAFETY: the file is a staging file this writer created with `create_new` and sized to `len`
    // (reserved or set) before mapping; nobody else knows it until it is published, and it is never
    // truncated afterwards (module doc).
    unsafe { MmapOptions::new().len(len).map_mut(file) }
}

/// Maps, shared and writable, the staged data file of another writer (a fill by token,
/// `Container::open_staged`): writes land in the file that writer publishes.
pub(crate) fn map_staged_shared(file: &File, len: usize) -> io::Result<MmapMut> {
    if len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot map zero bytes",
        ));
    }
    // SAFETY: the file is a staged data file of a live writer, opened without following a link,
    // regular, and of exactly `len` bytes (checked by the caller against the token's shape). A
    // staged file is never truncated: it is only renamed into place or unlinked (module doc), so
    // the map never reaches past the end of the file (no SIGBUS).
    unsafe { MmapOptions::new().len(len).map_mut(file) }
}

/// Makes a private copy-on-write map of a whole non-empty file: writes stay in this process.
pub(crate) fn map_private(file: &File, len: usize) -> io::Result<MmapMut> {
    if len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot map zero bytes",
        ));
    }
    // SAFETY: the map is MAP_PRIVATE of a file dafstore never truncates (module doc), of exactly
    // the file's length, checked by the caller against the metadata. Writes go to private pages.
    unsafe { MmapOptions::new().len(len).map_copy(file) }
}

/// Reserves `len` bytes for `file` so later writes through a map cannot fail for lack of space
/// (a SIGBUS otherwise, SPEC [W1]). Errors are the OS's, e.g. ENOSPC.
pub(crate) fn reserve(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length does not fit off_t"))?;
    // SAFETY: posix_fallocate takes a file descriptor we own for the duration of the call and two
    // integers; it touches no memory of ours.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// The `f_type` magic number of the file system holding `path`.
pub(crate) fn fs_magic(path: &Path) -> io::Result<i64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated string and `buf` points to writable memory of the
    // size statfs expects; both outlive the call.
    let rc = unsafe { libc::statfs(c.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statfs returned 0, so it initialised `buf` (and `zeroed` already made every byte
    // valid for this plain-old-data struct).
    let st = unsafe { buf.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

/// Descriptors of lock files (sessions, held stripes) that a forked child must not keep: a child
/// shares its parent's open file descriptions, so an inherited descriptor would keep the parent's
/// `flock` (and therefore its references) alive after the parent dies (SPEC [P2]).
static FORK_SLOTS: [AtomicI32; 512] = [const { AtomicI32::new(-1) }; 512];
static ATFORK: Once = Once::new();
/// How many `fork()`s separate this process from the one that first used dafstore: every object
/// records the epoch it was made in, so a forked child tells inherited state from its own
/// (SPEC [P2]) with one atomic load, no `getpid` system call.
static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);

extern "C" fn neutralise_locks_in_child() {
    // Runs in the child right after fork(), before it returns: only async-signal-safe calls
    // (an atomic add is one instruction).
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
    // SAFETY: open, dup3 and close are async-signal-safe; the path is a NUL-terminated literal.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null < 0 {
            return;
        }
        for slot in &FORK_SLOTS {
            let fd = slot.load(Ordering::Relaxed);
            if fd >= 0 && fd != null {
                // Atomically makes `fd` refer to /dev/null: the child drops its share of the lock's
                // open file description while the fd number stays valid for the File that owns it.
                libc::dup3(null, fd, libc::O_CLOEXEC);
            }
        }
        libc::close(null);
    }
}

/// Registers `file` so a forked child does not keep its lock; returns the slot to release with
/// [`release_fork_slot`] before the file is closed. `None` if every slot is taken (the lock then
/// stays inherited, as without this protection).
pub(crate) fn forget_in_forked_child(file: &File) -> Option<usize> {
    register_atfork();
    let fd = file.as_raw_fd();
    FORK_SLOTS.iter().position(|slot| {
        slot.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })
}

fn register_atfork() {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only makes async-signal-safe calls (see above).
        unsafe {
            libc::pthread_atfork(None, None, Some(neutralise_locks_in_child));
        }
    });
}

/// The fork epoch of this process (see `FORK_EPOCH`). The first call registers the `fork()`
/// handler, so every fork after it is counted; call it before making anything a child must not
/// use as its own.
pub(crate) fn fork_epoch() -> u64 {
    register_atfork();
    FORK_EPOCH.load(Ordering::Relaxed)
}

/// Discards a SQLite connection inherited through `fork()` (SPEC [P2]) the way sqlite3-ruby does
/// on fork: its database file and its log are closed at the VFS level (`xClose`: gives up the
/// process's record of its POSIX locks on them, which a forked child does not hold, and closes
/// the descriptors), and the connection itself is leaked, never closed through SQLite (a close
/// could checkpoint or delete the log under the parent). A new connection of this process then
/// takes real locks of its own.
pub(crate) fn discard_sqlite_connection(conn: rusqlite::Connection) {
    use rusqlite::ffi;
    // SAFETY: `handle` returns the live `sqlite3*` of `conn`, which we own and leak below, so it
    // stays valid for these calls and is never used or closed afterwards.
    let db = unsafe { conn.handle() };
    for op in [
        ffi::SQLITE_FCNTL_FILE_POINTER,
        ffi::SQLITE_FCNTL_JOURNAL_POINTER,
    ] {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: `db` is valid (above); "main" is a NUL-terminated literal; for these two
        // opcodes SQLite writes a `sqlite3_file*` (or leaves it null) into the pointer we pass.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                db,
                c"main".as_ptr(),
                op,
                (&raw mut file).cast::<std::ffi::c_void>(),
            )
        };
        if rc != ffi::SQLITE_OK || file.is_null() {
            continue;
        }
        // SAFETY: `file` points to an open `sqlite3_file` owned by the leaked connection;
        // `pMethods` is null for a file that is not open (checked). After `xClose` the methods
        // pointer is cleared so nothing can close it twice.
        unsafe {
            let methods = (*file).pMethods;
            if let Some(close) = methods.as_ref().and_then(|m| m.xClose) {
                close(file);
                (*file).pMethods = std::ptr::null();
            }
        }
    }
    std::mem::forget(conn);
}

/// Unregisters a slot from [`forget_in_forked_child`] (call before closing the file).
pub(crate) fn release_fork_slot(slot: Option<usize>) {
    if let Some(s) = slot.and_then(|i| FORK_SLOTS.get(i)) {
        s.store(-1, Ordering::Release);
    }
}

/// An Arrow [`arrow_buffer::Buffer`] over the bytes of the map that `map_of` finds in `owner`,
/// An Arrow IPC file decoder that does not validate the data it decodes (offsets, UTF-8, null
/// counts): for a table file whose exact bytes passed full validation before (SPEC [B8]).
///
/// # Caller's duty
///
/// Only for bytes that passed full validation (`ArrayData::validate_full` of every column, as
/// `format::table::read_file` does with validation on) and are provably unchanged since: the
/// caller compares the file's device, inode, size and change time with those recorded when it was
/// validated (`table.rs`, `TableInner::decode`).
pub(crate) fn ipc_decoder_trusting(
    decoder: arrow_ipc::reader::FileDecoder,
) -> arrow_ipc::reader::FileDecoder {
    // SAFETY: the flag only skips validation; its contract is that the data is valid. The one
    // caller passes it only for a file whose bytes were fully validated on this boot by this
    // engine version, and whose identity, size, change time and recorded checksum are unchanged
    // since, so the bytes are the validated ones under SPEC section 8's assumption that only
    // dafstore writes a container's files while it is in use (the change time catches writes
    // behind its back as far as the kernel moves it; see SPEC [B8] for where it does not);
    // dafstore never maps a table file writable. Structure (footer, blocks, buffers inside the
    // file) is still checked before decoding.
    unsafe { decoder.with_skip_validation(true) }
}

/// with no copy. The buffer owns `owner` (for an array: the `Arc` of its mapped generation, which
/// owns the maps, their cache entries and the array's reference), so the map lives until the last
/// Arrow array using the buffer is dropped. `None` if `map_of` finds no map (an empty file).
pub(crate) fn arrow_buffer_over_map<O: Send + Sync + 'static>(
    owner: std::sync::Arc<O>,
    map_of: impl for<'a> Fn(&'a O) -> Option<&'a SharedMap>,
) -> Option<arrow_buffer::Buffer> {
    let bytes = map_of(&owner)?.bytes();
    let len = bytes.len();
    if len == 0 {
        return None;
    }
    let ptr = std::ptr::NonNull::new(bytes.as_ptr().cast_mut())?;
    // The owner is only ever dropped, never used, by Arrow: asserting unwind safety is harmless.
    let owner: std::sync::Arc<dyn arrow_buffer::alloc::Allocation> =
        std::sync::Arc::new(std::panic::AssertUnwindSafe(owner));
    // SAFETY: `ptr`..`ptr + len` is the whole of one `SharedMap` (a `MAP_SHARED` map, read-only or
    // writable) borrowed from `owner` (the signature of `map_of` ties the map's lifetime to the
    // owner's), so it is unmapped only after `owner` drops, which Arrow delays until the buffer's
    // last clone drops (Deallocation::Custom only drops the owner). The mapped file is never
    // truncated by dafstore (SPEC [W4]), so every page stays backed for that whole time. Arrow
    // never writes through a custom-allocated buffer (it cannot be turned into a
    // `MutableBuffer`). Values may still change under an in-place writer of the same array
    // (`open_dense_mut`, in this or another process): the documented shared-memory contract of
    // `DenseArray`, which the Arrow view inherits; the memory itself stays valid.
    Some(unsafe { arrow_buffer::Buffer::from_custom_allocation(ptr, len, owner) })
}

/// Fills `buf` from the kernel's random source (`getrandom(2)`: no file to open, blocks only
/// until the pool is first initialised at boot).
pub(crate) fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, writable and alive for the call;
        // getrandom writes at most that many bytes into it.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Whether this process may write `path` (`access(2)` with `W_OK`): the OS error says why not
/// (`EROFS` on a read-only file system, `EACCES` without permission).
pub(crate) fn write_access(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; access reads only it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The OS error number behind the last failed call of SQLite on `conn` (0 if none): tells an
/// SQLITE_IOERR caused by a full file system (ENOSPC) from other I/O errors.
pub(crate) fn sqlite_system_errno(conn: &rusqlite::Connection) -> i32 {
    // SAFETY: `handle` is the live sqlite3 pointer owned by `conn`, borrowed for this call only;
    // sqlite3_system_errno only reads an integer from the connection and changes nothing.
    unsafe { rusqlite::ffi::sqlite3_system_errno(conn.handle()) }
}

/// Bytes available to unprivileged users and total size of the file system holding `path`.
pub(crate) fn fs_space(path: &Path) -> io::Result<(u64, u64)> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut buf = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated string and `buf` points to writable memory of the
    // size statvfs expects; both outlive the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `buf` (and `zeroed` already made every byte
    // valid for this plain-old-data struct).
    let st = unsafe { buf.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    let frsize = st.f_frsize as u64;
    #[allow(clippy::unnecessary_cast)]
    Ok((
        (st.f_bavail as u64).saturating_mul(frsize),
        (st.f_blocks as u64).saturating_mul(frsize),
    ))
}

/// A path component (no `/`, no NUL) as a C string for the `*at` calls below.
fn c_name(name: &std::ffi::OsStr) -> io::Result<CString> {
    if name.as_bytes().contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a path component cannot contain '/'",
        ));
    }
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// `openat(dir, name, flags | O_CLOEXEC, mode)`: opens `name` relative to the directory `dir`.
/// Callers pass `O_NOFOLLOW` (and `O_NONBLOCK` for files) so no link is followed and no open can
/// block (SPEC [N7], [N9]).
pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = c_name(name)?;
    // SAFETY: `dir` is an open descriptor borrowed for the call; `c` is a NUL-terminated string
    // that outlives it. openat reads only the string; on success the returned descriptor is new
    // and owned by nobody else, so `OwnedFd` may own (and close) it.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor returned by openat (checked non-negative above).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mkdirat(dir, name, mode)`.
pub(crate) fn mkdirat(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    mode: libc::mode_t,
) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: `dir` is an open descriptor and `c` a NUL-terminated string, both valid for the call.
    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `unlinkat(dir, name, flags)` (`flags`: 0 for a file, `AT_REMOVEDIR` for an empty directory).
/// Never follows a link: a link named `name` is itself removed.
pub(crate) fn unlinkat(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    flags: libc::c_int,
) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: `dir` is an open descriptor and `c` a NUL-terminated string, both valid for the call.
    let rc = unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `renameat(from_dir, from, to_dir, to)`. Replaces `to` (never through a link: the entry itself).
pub(crate) fn renameat(
    from_dir: BorrowedFd<'_>,
    from: &std::ffi::OsStr,
    to_dir: BorrowedFd<'_>,
    to: &std::ffi::OsStr,
) -> io::Result<()> {
    let f = c_name(from)?;
    let t = c_name(to)?;
    // SAFETY: both descriptors are open and both strings NUL-terminated, all valid for the call.
    let rc = unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            f.as_ptr(),
            to_dir.as_raw_fd(),
            t.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `syncfs(fd)`: writes out every modified file (data and metadata) and directory of the file
/// system holding `fd`, and reports a write-back error that happened since `fd` was opened
/// (Linux 5.8 and later). One call instead of an `fsync` per file for a batch's staged files
/// (SPEC [W11] step 1).
pub(crate) fn syncfs(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor borrowed for the call; syncfs reads nothing else.
    let rc = unsafe { libc::syncfs(fd.as_raw_fd()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn map_reads_file_and_refuses_zero_length() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello").unwrap();
        let m = SharedMap::new(&f, 5, false).unwrap();
        drop(f); // a map does not need its descriptor
        assert_eq!(m.bytes(), b"hello");
        let g = tempfile::tempfile().unwrap();
        assert!(SharedMap::new(&g, 0, false).is_err());
    }

    #[test]
    fn reserve_allocates() {
        let f = tempfile::tempfile().unwrap();
        reserve(&f, 8192).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 8192);
    }
}
