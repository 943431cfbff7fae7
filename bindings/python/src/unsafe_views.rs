//! Every `unsafe` block of the Python bindings lives here (the crate denies `unsafe_code`
//! elsewhere), each with a `// SAFETY:` comment. Three things need it:
//!
//! - reading the bytes of a numpy array handed to `write` / `write_sparse` without copying them
//!   (the stable ABI of Python 3.9 has no buffer protocol), after checking in Rust that the object
//!   is a C-contiguous `numpy.ndarray` and how many bytes it holds;
//! - a second mapping of a dense writer's staging pages (`StagingAlias`), so the numpy array a
//!   `with c.create(...) as a:` block fills stays valid memory after the block, when the engine's
//!   own map of the staging file is unmapped by `publish` or by discarding;
//! - taking an Arrow C stream out of the `PyCapsule` that `__arrow_c_stream__` returns (the
//!   Arrow PyCapsule interface), so `write_table` reads record batches as the producer makes
//!   them instead of a serialized copy of the whole table.
//!
//! Never: hand out a pointer whose memory this module does not keep mapped for the life of its
//! owner, or write to a published file (before publishing, the alias is detached from the file:
//! remapped copy-on-write).

#![allow(unsafe_code)]

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyDict, PyTuple};

/// The bytes of `array`, a C-contiguous `numpy.ndarray`, without copying them. The slice borrows
/// `array`, whose strong reference keeps the memory alive.
pub(crate) fn ndarray_bytes<'a>(array: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    let py = array.py();
    let ndarray = py.import("numpy")?.getattr("ndarray")?;
    // Exactly ndarray: a subclass could override `__array_interface__` and describe other memory.
    if !array.get_type().is(&ndarray) {
        return Err(PyTypeError::new_err(
            "expected a numpy.ndarray (not a subclass)",
        ));
    }
    let interface = array.getattr("__array_interface__")?;
    let interface = interface.cast::<PyDict>()?;
    let item = |key: &str| -> PyResult<Bound<'_, PyAny>> {
        interface
            .get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("__array_interface__ lacks {key:?}")))
    };
    if !item("strides")?.is_none() {
        return Err(PyValueError::new_err(
            "the array is not C-contiguous (pass numpy.ascontiguousarray(a))",
        ));
    }
    let data = item("data")?;
    let data = data.cast::<PyTuple>()?;
    let address: usize = data.get_item(0)?.extract()?;
    let shape: Vec<usize> = item("shape")?.extract()?;
    let itemsize: usize = array.getattr("itemsize")?.extract()?;
    let len = shape
        .iter()
        .try_fold(itemsize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| isize::try_from(n).is_ok())
        .ok_or_else(|| PyValueError::new_err("the array's byte size overflows"))?;
    if len == 0 {
        return Ok(&[]);
    }
    if address == 0 {
        return Err(PyValueError::new_err("the array has no data pointer"));
    }
    // SAFETY: `array` is exactly a `numpy.ndarray` (checked above) whose interface reports no strides,
    // i.e. it is C-contiguous: its `len` = itemsize × Π shape bytes (computed with overflow checks,
    // at most isize::MAX) start at `address` and are readable. The memory belongs to the array (or
    // its base), which the strong reference behind `array` keeps alive for the lifetime `'a` the
    // slice borrows; numpy refuses to resize an array that other references see (`resize` checks
    // the reference count unless told not to). Callers read it with the GIL released: another
    // Python thread may then write to the same array, so values can change while the engine reads
    // them — the same shared-memory contract as every dafstore view (the memory stays valid).
    Ok(unsafe { std::slice::from_raw_parts(address as *const u8, len) })
}

/// A second shared mapping of the pages of a dense writer's staging map, owned here and unmapped
/// when this is dropped. The numpy array of a `create` block points at it, so that array stays
/// valid memory after the engine's own map goes (at `publish`, or when the writer is dropped).
pub(crate) struct StagingAlias {
    address: usize,
    len: usize,
    state: Mutex<AliasState>,
}

enum AliasState {
    /// Still the shared pages of the staging file; the file itself, opened read-only when the
    /// alias was made (if it could be found), for `make_private`.
    Shared(Option<File>),
    /// Detached from the file (see `make_private`): nothing written here reaches a file.
    Detached,
}

fn page_size() -> usize {
    // SAFETY: sysconf takes an integer and touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// The file mapped at `address` in this process, opened read-only, found by the path
/// `/proc/self/maps` gives for that mapping. Accepted only if it is the mapped file: the same inode
/// number (the device is not compared: on overlayfs the maps line names the underlying file system)
/// and exactly `len` bytes (so a private mapping of it has no page past its end). Unlike
/// `/proc/self/map_files`, this needs no capability (CAP_CHECKPOINT_RESTORE / CAP_SYS_ADMIN).
fn mapped_file(address: usize, len: usize) -> Option<File> {
    let maps = fs::read_to_string("/proc/self/maps").ok()?;
    let prefix = format!("{address:x}-");
    let line = maps.lines().find(|l| l.starts_with(&prefix))?;
    // address perms offset dev inode, then padding and the path (which may contain spaces).
    let mut rest = line;
    let mut fields = [""; 5];
    for field in &mut fields {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ')?;
        *field = &rest[..end];
        rest = &rest[end..];
    }
    let inode: u64 = fields[4].parse().ok()?;
    let path = rest.trim_start_matches(' ');
    if fields[2] != "00000000" || inode == 0 || !path.starts_with('/') {
        return None;
    }
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && meta.ino() == inode && meta.len() == len as u64).then_some(file)
}

impl StagingAlias {
    /// Maps the pages behind `map` (the whole writable `MAP_SHARED` map of a staging file, as
    /// returned by `DenseWriter::as_bytes_mut`) a second time, at a new address. Writes through
    /// either mapping are the same page-cache pages, so `publish` sees them.
    pub(crate) fn new(map: &mut [u8]) -> io::Result<StagingAlias> {
        let len = map.len();
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "nothing to map",
            ));
        }
        let old = map.as_mut_ptr().cast::<libc::c_void>();
        // SAFETY: `old`..`old + len` is one whole mapping made by the engine (memmap2's `map_mut`
        // of the staging file: `MAP_SHARED`, page-aligned start, `len` bytes), borrowed mutably
        // for this call so it stays mapped during it. With an old size of 0, mremap(2) leaves that
        // mapping alone and creates a new mapping of the same shared pages at an address the
        // kernel chooses (MREMAP_MAYMOVE), which nothing else in the process uses.
        let new = unsafe { libc::mremap(old, 0, len, libc::MREMAP_MAYMOVE) };
        if new == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let address = new as usize;
        Ok(StagingAlias {
            address,
            len,
            state: Mutex::new(AliasState::Shared(mapped_file(address, len))),
        })
    }

    /// Start of the mapping.
    pub(crate) fn address(&self) -> usize {
        self.address
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Detaches this mapping from the staging file, before it is published or discarded, so a
    /// write through a view that outlives the `create` block (a slice of it taken inside the
    /// block, say) stays in this process and never changes the published file (its checksum stays
    /// right). The bytes stay the same and the memory stays mapped at the same address:
    ///
    /// - normally it becomes a private copy-on-write mapping of the same file (no copy: it shares
    ///   the page cache until written);
    /// - if the file could not be opened when the alias was made, the bytes are copied into
    ///   anonymous memory moved to the same address;
    /// - if even that fails (no memory), the mapping is made read-only (a write then faults).
    ///
    /// Idempotent.
    pub(crate) fn make_private(&self) -> io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let file = match std::mem::replace(&mut *state, AliasState::Detached) {
            AliasState::Detached => return Ok(()),
            AliasState::Shared(file) => file,
        };
        if let Some(file) = file {
            // SAFETY: `self.address`..+`self.len` is this alias's own mapping (made in `new`,
            // unmapped only in `drop`); MAP_FIXED replaces exactly that range, atomically, with a
            // private mapping of `file`, which `mapped_file` checked is the very file mapped there
            // (same inode) and exactly `len` bytes long, at offset 0: the memory stays mapped, shows
            // the same bytes (the same page cache), and has no page past the end of the file.
            let p = unsafe {
                libc::mmap(
                    self.address as *mut libc::c_void,
                    self.len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    file.as_raw_fd(),
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                return Ok(());
            }
        }
        if self.copy_to_anonymous().is_ok() {
            return Ok(());
        }
        // SAFETY: the range is this alias's own mapping; only its protection changes.
        let rc =
            unsafe { libc::mprotect(self.address as *mut libc::c_void, self.len, libc::PROT_READ) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Replaces the mapping, at the same address, by anonymous memory holding a copy of its bytes.
    fn copy_to_anonymous(&self) -> io::Result<()> {
        let pages = self.len.div_ceil(page_size()) * page_size();
        // SAFETY: a new private anonymous mapping at an address the kernel chooses; no memory of
        // ours is touched.
        let tmp = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if tmp == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both ranges are mapped and readable/writable for `self.len` bytes (the alias,
        // made in `new`, and `tmp`, just made with at least that many bytes), and they do not
        // overlap (`tmp` is a new mapping).
        unsafe {
            std::ptr::copy_nonoverlapping(self.address as *const u8, tmp.cast::<u8>(), self.len)
        };
        // SAFETY: `tmp` is the anonymous mapping made above (`pages` bytes, page-aligned);
        // MREMAP_FIXED moves it onto this alias's own range, which it replaces atomically (the
        // old mapping there, `self.len` bytes rounded up to `pages`, is unmapped by the kernel),
        // so the memory at `self.address` stays mapped with the same bytes.
        let moved = unsafe {
            libc::mremap(
                tmp,
                pages,
                pages,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                self.address as *mut libc::c_void,
            )
        };
        if moved == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            // SAFETY: `tmp` is still the anonymous mapping made above, used by nothing else.
            unsafe { libc::munmap(tmp, pages) };
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for StagingAlias {
    fn drop(&mut self) {
        // SAFETY: the range is this alias's own mapping (made in `new`, possibly replaced at the
        // same address by `make_private`); whoever pointed into it (the numpy array, through the
        // view object that owns this alias) is gone, since the view drops its alias only when it
        // is itself destroyed.
        unsafe { libc::munmap(self.address as *mut libc::c_void, self.len) };
    }
}

/// The record batches of `obj`'s Arrow C stream: calls `obj.__arrow_c_stream__()` and moves the
/// `ArrowArrayStream` out of the returned capsule (the capsule is left holding a released stream,
/// which its destructor then skips, as the Arrow PyCapsule interface specifies for a consumer).
pub(crate) fn arrow_stream_reader(
    obj: &Bound<'_, PyAny>,
) -> PyResult<arrow_array::ffi_stream::RecordBatchStreamReader> {
    let capsule = obj.call_method0("__arrow_c_stream__")?;
    let capsule = capsule
        .cast::<PyCapsule>()
        .map_err(|_| PyTypeError::new_err("__arrow_c_stream__ did not return a PyCapsule"))?;
    // Checks the capsule's name: only an "arrow_array_stream" capsule holds a stream.
    let ptr = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: a capsule named "arrow_array_stream" holds a pointer to a valid, caller-owned
    // `struct ArrowArrayStream` (Arrow PyCapsule interface), which `FFI_ArrowArrayStream` mirrors
    // (`#[repr(C)]`). `from_raw` moves the struct out and writes an empty (released) one in its
    // place, so the stream is released exactly once: by the reader, not by the capsule. The
    // capsule stays alive (borrowed) for the duration of the move.
    unsafe {
        arrow_array::ffi_stream::RecordBatchStreamReader::from_raw(
            ptr.as_ptr()
                .cast::<arrow_array::ffi_stream::FFI_ArrowArrayStream>(),
        )
    }
    .map_err(|e| PyValueError::new_err(format!("reading the Arrow C stream: {e}")))
}
