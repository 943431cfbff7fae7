//! Every `unsafe` block of the Python bindings lives here (the crate denies `unsafe_code`
//! elsewhere), each with a `// SAFETY:` comment. Two things need it:
//!
//! - reading the bytes of a numpy array handed to `write` / `write_sparse` without copying them
//!   (the stable ABI of Python 3.9 has no buffer protocol), after checking in Rust that the object
//!   is a C-contiguous `numpy.ndarray` and how many bytes it holds;
//! - a second mapping of a dense writer's staging pages (`StagingAlias`), so the numpy array a
//!   `with c.create(...) as a:` block fills stays valid memory after the block, when the engine's
//!   own map of the staging file is unmapped by `publish` or by discarding.
//!
//! Never: hand out a pointer whose memory this module does not keep mapped for the life of its
//! owner, or write to a published file (after publishing, the alias is remapped copy-on-write).

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

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
}

fn page_size() -> usize {
    // SAFETY: sysconf takes an integer and touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
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
        Ok(StagingAlias {
            address: new as usize,
            len,
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

    /// After the staging file was published: turns this mapping into a private copy-on-write
    /// mapping of the same file, so a write through a view that outlived the `create` block stays
    /// in this process and never changes the published file (its checksum stays right). If that
    /// cannot be done, the mapping is made read-only instead (such a write then faults).
    pub(crate) fn make_private(&self) -> io::Result<()> {
        let pages = self.len.div_ceil(page_size()) * page_size();
        let path = format!(
            "/proc/self/map_files/{:x}-{:x}",
            self.address,
            self.address + pages
        );
        let remapped = CString::new(path).ok().and_then(|path| {
            // SAFETY: `path` is a NUL-terminated string that lives across the call.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            // SAFETY: `self.address`..+`self.len` is this alias's own mapping (made in `new`,
            // unmapped only in `drop`); MAP_FIXED replaces exactly that range, atomically, with a
            // private mapping of the file it already maps (opened through /proc/self/map_files, so
            // the very same inode, whatever happened to its name), with the same length and
            // offset 0: the memory stays mapped and shows the same bytes.
            let p = unsafe {
                libc::mmap(
                    self.address as *mut libc::c_void,
                    self.len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    fd,
                    0,
                )
            };
            // SAFETY: `fd` was opened above and is not used after this.
            unsafe { libc::close(fd) };
            (p != libc::MAP_FAILED).then_some(())
        });
        if remapped.is_some() {
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
}

impl Drop for StagingAlias {
    fn drop(&mut self) {
        // SAFETY: the range is this alias's own mapping (made in `new`); whoever pointed into it
        // (the numpy array, through the view object that owns this alias) is gone, since the view
        // drops its alias only when it is itself destroyed.
        unsafe { libc::munmap(self.address as *mut libc::c_void, self.len) };
    }
}
