//! `dafstore._native`: the engine for Python. The pythonic API (context managers, numpy, scipy and
//! pyarrow glue, the exception classes) is in `python/dafstore/`; this module is the thin layer
//! under it.
//!
//! Zero-copy views: a [`MappedView`] owns what keeps some mapped memory alive (a read-only array
//! handle with its map and reference, an in-place or copy-on-write handle, or the alias of a
//! writer's staging map) and describes that memory with `__array_interface__`, so `numpy.asarray`
//! makes an array over it whose `.base` is the view: the map and the reference live exactly as
//! long as some array uses them. pyarrow buffers take the same object as their `base`.
//!
//! The GIL is released around every engine call (catalog transactions, flock waits, fsync,
//! checksums, maps), including when a view or a reference is dropped (a release may be a catalog
//! transaction and run a deferred deletion; closing an in-place writer recomputes checksums).
//!
//! Never: touch a Python object with the GIL released, or hand Python a pointer whose owner it
//! does not also hold. All `unsafe` is in [`unsafe_views`].

#![deny(unsafe_code)]

mod errors;
mod report;
mod unsafe_views;

use std::sync::{Arc, Mutex, MutexGuard};

use dafstore::{
    Allocation, Array, Bool8, Container, CreateOptions, DType, DenseArray, DenseWriter, Element,
    Format, FsckOptions, ImportOptions, Layout, Lifecycle, LoadError, LoadOptions, Ref,
    SparseArray, WriteError,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::errors::{OrRaise, Own};
use crate::report::to_python;
use crate::unsafe_views::{ndarray_bytes, StagingAlias};

/// Runs `$body` with `$t` the Rust element type of dtype `$dtype`.
macro_rules! with_element {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            DType::Bool => {
                type $t = Bool8;
                $body
            }
            DType::Int8 => {
                type $t = i8;
                $body
            }
            DType::Int16 => {
                type $t = i16;
                $body
            }
            DType::Int32 => {
                type $t = i32;
                $body
            }
            DType::Int64 => {
                type $t = i64;
                $body
            }
            DType::UInt8 => {
                type $t = u8;
                $body
            }
            DType::UInt16 => {
                type $t = u16;
                $body
            }
            DType::UInt32 => {
                type $t = u32;
                $body
            }
            DType::UInt64 => {
                type $t = u64;
                $body
            }
            DType::Float16 => {
                type $t = half::f16;
                $body
            }
            DType::Float32 => {
                type $t = f32;
                $body
            }
            DType::Float64 => {
                type $t = f64;
                $body
            }
        }
    };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn dtype(py: Python<'_>, name: &str) -> PyResult<DType> {
    DType::from_name(name).ok_or_else(|| {
        errors::to_py(
            py,
            &Own {
                class: "UnsupportedDtypeError",
                message: format!(
                    "dtype {name:?} is not stored by dafstore; valid dtypes are {} (see format-spec/SPEC.md [T1]); convert it first (e.g. a.astype('float64'))",
                    DType::valid_names()
                ),
                errno: None,
            },
        )
    })
}

/// What keeps a view's memory mapped (and, for array handles, the array's reference held). The
/// handles are never read again: they are held for what their `Drop` does.
#[allow(dead_code)]
enum Owner {
    /// Nothing (a view with no bytes, or one already dropped).
    Nothing,
    /// A read-only dense handle (mode `r`).
    Dense(DenseArray),
    /// A read-only sparse handle (one of its three buffers).
    Sparse(SparseArray),
    /// An in-place (`r+`, a `DenseMut<T>`) or copy-on-write (`c`, a `DensePrivate<T>`) handle.
    Handle(Box<dyn Send + Sync>),
    /// The alias of a writer's staging map (a `create` block).
    Staging(Arc<StagingAlias>),
    /// A table: the view is its whole mapped `.arrow` file.
    Table(dafstore::Table),
}

/// Mapped memory of an array, described by `__array_interface__` (numpy's protocol), owned by
/// this object: `numpy.asarray(view)` is an array over it with no copy, whose `.base` is the
/// view. The memory is unmapped (and the array's reference released) when the view is destroyed,
/// which cannot happen while an array still uses it.
#[pyclass(frozen, weakref, module = "dafstore._native")]
struct MappedView {
    owner: Owner,
    address: usize,
    nbytes: usize,
    shape: Vec<u64>,
    dtype: DType,
    readonly: bool,
    name: String,
    mode: &'static str,
}

impl MappedView {
    fn new(
        owner: Owner,
        bytes: (usize, usize),
        shape: Vec<u64>,
        dtype: DType,
        readonly: bool,
        name: &str,
        mode: &'static str,
    ) -> MappedView {
        let (address, nbytes) = bytes;
        MappedView {
            owner,
            // numpy wants a non-null pointer even for no bytes; nothing is ever read there.
            address: if nbytes == 0 { 1 << 12 } else { address },
            nbytes,
            shape,
            dtype,
            readonly,
            name: name.to_string(),
            mode,
        }
    }
}

#[pymethods]
impl MappedView {
    /// numpy's array interface (version 3) over the mapped bytes.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", PyTuple::new(py, &self.shape)?)?;
        d.set_item("typestr", self.dtype.numpy_typestr())?;
        d.set_item("data", (self.address, self.readonly))?;
        Ok(d)
    }

    /// Address of the first byte.
    #[getter]
    fn address(&self) -> usize {
        self.address
    }

    /// Length in bytes.
    #[getter]
    fn nbytes(&self) -> usize {
        self.nbytes
    }

    /// Shape.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.shape)
    }

    /// Element dtype (numpy spelling).
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
    }

    /// Whether the memory is read-only.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    /// The array's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// `r`, `r+`, `c`, or `w` (a writer being filled).
    #[getter]
    fn mode(&self) -> &'static str {
        self.mode
    }

    fn __repr__(&self) -> String {
        format!(
            "<dafstore mapped view {:?} mode={} dtype={} shape={:?} at {:#x}>",
            self.name,
            self.mode,
            self.dtype.name(),
            self.shape,
            self.address
        )
    }
}

/// Drops `value` with the GIL released: a release can be a catalog transaction (and run a
/// deferred deletion), closing an in-place writer recomputes checksums.
fn drop_detached<T: Send>(value: T) {
    Python::attach(|py| py.detach(move || drop(value)));
}

impl Drop for MappedView {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.owner, Owner::Nothing) {
            Owner::Nothing => {}
            Owner::Staging(alias) => drop(alias),
            owner => drop_detached(owner),
        }
    }
}

/// A dense array being created (`with c.create(...) as a:`): `view()` is the writable memory to
/// fill, `publish()` makes it visible atomically, `discard()` (or dropping it) throws it away.
#[pyclass(frozen, module = "dafstore._native")]
struct DenseCreate {
    writer: Mutex<Option<DenseWriter>>,
    alias: Option<Arc<StagingAlias>>,
    shape: Vec<u64>,
    dtype: DType,
    name: String,
}

#[pymethods]
impl DenseCreate {
    /// The writable memory of the new array (zero-filled). It stays valid after `publish` or
    /// `discard` (then as a private copy: writes no longer reach any file).
    fn view(&self) -> MappedView {
        let (owner, bytes) = match &self.alias {
            Some(a) => (Owner::Staging(Arc::clone(a)), (a.address(), a.len())),
            None => (Owner::Nothing, (0, 0)),
        };
        MappedView::new(
            owner,
            bytes,
            self.shape.clone(),
            self.dtype,
            false,
            &self.name,
            "w",
        )
    }

    /// Syncs the data, records its checksum and publishes the array atomically.
    fn publish(&self, py: Python<'_>) -> PyResult<()> {
        let writer = lock(&self.writer).take();
        let Some(writer) = writer else {
            return Err(errors::to_py(
                py,
                &Own {
                    class: "DafstoreError",
                    message: format!(
                        "array {:?}: this writer was already published or discarded",
                        self.name
                    ),
                    errno: None,
                },
            ));
        };
        // Detached first: from here on nothing written through a view of the block (a slice of it
        // kept by another thread, say) can reach the file, so the checksum `publish` records is
        // that of the bytes it publishes. The view keeps showing the same bytes.
        let detached = self.detach_view(py);
        py.detach(|| writer.publish()).or_raise(py)?;
        detached
    }

    /// Discards the array: nothing is published, the staging file is removed.
    fn discard(&self, py: Python<'_>) -> PyResult<()> {
        let writer = lock(&self.writer).take();
        let detached = self.detach_view(py);
        py.detach(move || drop(writer));
        detached
    }

    /// Whether neither `publish` nor `discard` has been called.
    #[getter]
    fn pending(&self) -> bool {
        lock(&self.writer).is_some()
    }

    /// The token with which other processes fill this array in place (`open_staged`).
    #[getter]
    fn token(&self, py: Python<'_>) -> PyResult<String> {
        match lock(&self.writer).as_ref() {
            Some(w) => Ok(w.token()),
            None => Err(errors::to_py(
                py,
                &Own {
                    class: "DafstoreError",
                    message: format!(
                        "array {:?}: this writer was already published or discarded: its \
                         token is no longer valid",
                        self.name
                    ),
                    errno: None,
                },
            )),
        }
    }
}

impl Drop for DenseCreate {
    fn drop(&mut self) {
        let writer = lock(&self.writer).take();
        if writer.is_some() {
            drop_detached(writer);
        }
    }
}

impl DenseCreate {
    /// Makes the view a private copy of the file's pages (see `StagingAlias::make_private`).
    fn detach_view(&self, py: Python<'_>) -> PyResult<()> {
        let Some(alias) = &self.alias else {
            return Ok(());
        };
        // A copy into anonymous memory (the fallback) can take a while for a large array.
        py.detach(|| alias.make_private()).map_err(|e| {
            errors::to_py(
                py,
                &Own {
                    class: "DafstoreOSError",
                    message: format!(
                        "array {:?}: cannot detach the filled view from its file: {e}",
                        self.name
                    ),
                    errno: e.raw_os_error(),
                },
            )
        })
    }
}

/// A reference on an array (`c.hold(name)`), released by `release()` or when destroyed.
#[pyclass(frozen, module = "dafstore._native")]
struct Hold {
    reference: Mutex<Option<Ref>>,
    name: String,
}

#[pymethods]
impl Hold {
    /// Releases the reference (running a deletion it was blocking). Idempotent.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let reference = lock(&self.reference).take();
        match reference {
            Some(r) => py.detach(move || r.release()).or_raise(py),
            None => Ok(()),
        }
    }

    /// The array's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether the reference is still held.
    #[getter]
    fn held(&self) -> bool {
        lock(&self.reference).is_some()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let reference = lock(&self.reference).take();
        if reference.is_some() {
            drop_detached(reference);
        }
    }
}

/// A held load lock (`c.open_or_load` holds one while it loads), released by `release()` or when
/// destroyed.
#[pyclass(frozen, module = "dafstore._native")]
struct LoadLockHandle {
    lock: Mutex<Option<dafstore::LoadLock>>,
}

#[pymethods]
impl LoadLockHandle {
    /// Releases the lock (the next waiter, in any process, gets it). Idempotent.
    fn release(&self) {
        lock(&self.lock).take();
    }
}

/// An entry `open_or_load` opened (held until `release()` or destruction), so the caller can
/// open it its own way before letting it go: nothing evicts it meanwhile.
#[pyclass(frozen, module = "dafstore._native")]
struct OpenedEntry {
    array: Mutex<Option<Array>>,
}

#[pymethods]
impl OpenedEntry {
    /// Releases the entry (drops the engine's handle and its reference). Idempotent.
    fn release(&self) {
        let array = lock(&self.array).take();
        if array.is_some() {
            drop_detached(array);
        }
    }

    /// `"dense"`, `"sparse"` or `"table"` (`None` once released).
    #[getter]
    fn kind(&self) -> Option<&'static str> {
        lock(&self.array).as_ref().map(|a| a.kind().name())
    }
}

impl Drop for OpenedEntry {
    fn drop(&mut self) {
        let array = lock(&self.array).take();
        if array.is_some() {
            drop_detached(array);
        }
    }
}

/// A handle on a container (the engine's `Container`).
#[pyclass(frozen, module = "dafstore._native", name = "Container")]
struct NativeContainer {
    inner: Mutex<Option<Container>>,
    root: String,
    readonly: bool,
}

impl NativeContainer {
    fn wrap(c: Container) -> NativeContainer {
        NativeContainer {
            root: c.root().to_string_lossy().into_owned(),
            readonly: c.is_read_only(),
            inner: Mutex::new(Some(c)),
        }
    }

    fn get(&self, py: Python<'_>) -> PyResult<Container> {
        lock(&self.inner).clone().ok_or_else(|| {
            errors::to_py(
                py,
                &Own {
                    class: "ContainerClosedError",
                    message: format!("container {} is closed", self.root),
                    errno: None,
                },
            )
        })
    }
}

impl Drop for NativeContainer {
    fn drop(&mut self) {
        // The last handle of a container ends its session (catalog transactions).
        let c = lock(&self.inner).take();
        if c.is_some() {
            drop_detached(c);
        }
    }
}

fn allocation(reserve: bool) -> Allocation {
    if reserve {
        Allocation::Reserve
    } else {
        Allocation::Holes
    }
}

/// The lifecycle named `name`, or a `ValueError` listing them.
fn lifecycle_named(name: &str) -> PyResult<Lifecycle> {
    Lifecycle::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "lifecycle {name:?}: use \"persistent\" (kept until removed), \"scratch\" (removed after its last release) or \"cached\" (kept after its last release, evicted when room is needed)"
        ))
    })
}

/// `lifecycle=`: `None` (the engine's default: persistent, or inside an `open_or_load` loader of
/// the name the load's lifecycle), or a lifecycle's name.
fn lifecycle_of(lifecycle: Option<&str>) -> PyResult<Option<Lifecycle>> {
    lifecycle.map(lifecycle_named).transpose()
}

/// Options of a write: the allocation, and the lifecycle (`scratch=True` is `lifecycle="scratch"`).
fn create_options(
    reserve: bool,
    scratch: bool,
    lifecycle: Option<&str>,
) -> PyResult<CreateOptions> {
    Ok(CreateOptions {
        allocation: allocation(reserve),
        scratch,
        lifecycle: lifecycle_of(lifecycle)?,
    })
}

/// Longest wait a number of seconds asks for: longer ones (and `math.inf`) wait this long, about
/// 31 years (the engine adds a wait to the current instant, which must not overflow).
const LONGEST_WAIT_SECS: f64 = 1e9;

/// A wait in seconds (`timeout=`, `wait_for_room`): `None` stays `None`; negative is 0, more
/// than [`LONGEST_WAIT_SECS`] (or infinite) is that; NaN is a `ValueError`.
fn seconds(what: &str, secs: Option<f64>) -> PyResult<Option<std::time::Duration>> {
    secs.map(|t| {
        if t.is_nan() {
            return Err(PyValueError::new_err(format!(
                "{what}: NaN is not a number of seconds; give seconds (a float), or None"
            )));
        }
        Ok(std::time::Duration::from_secs_f64(
            t.clamp(0.0, LONGEST_WAIT_SECS),
        ))
    })
    .transpose()
}

/// Why the loader of a native `open_or_load` failed: the engine, or the Python loader.
enum LoadFailure {
    Engine(LoadError),
    Python(PyErr),
}

impl From<LoadError> for LoadFailure {
    fn from(e: LoadError) -> LoadFailure {
        LoadFailure::Engine(e)
    }
}

fn invalid(py: Python<'_>, message: String) -> PyErr {
    errors::to_py(
        py,
        &Own {
            class: "InvalidArrayError",
            message,
            errno: None,
        },
    )
}

fn cast<'a, T: Element>(
    py: Python<'_>,
    bytes: &'a [u8],
    what: &str,
    name: &str,
) -> PyResult<&'a [T]> {
    if bytes.is_empty() {
        return Ok(&[]);
    }
    bytemuck::try_cast_slice(bytes).map_err(|e| {
        invalid(
            py,
            format!("sparse array {name:?}: {what} cannot be viewed as {}: {e:?}; pass aligned, C-contiguous arrays", T::DTYPE),
        )
    })
}

/// `format=`, parsed by the engine (`Format::from_extension`): the names `dafctl --format`
/// takes, with the same error.
fn format_of(py: Python<'_>, format: Option<&str>) -> PyResult<Option<Format>> {
    format.map(str::parse::<Format>).transpose().or_raise(py)
}

#[pymethods]
impl NativeContainer {
    /// Creates a new container in `path` (made if missing) and opens it read-write.
    #[staticmethod]
    fn create(py: Python<'_>, path: std::path::PathBuf) -> PyResult<NativeContainer> {
        let c = py.detach(|| Container::create(&path)).or_raise(py)?;
        Ok(NativeContainer::wrap(c))
    }

    /// Opens a container, read-write (`readonly=False`, recovering unfinished operations and
    /// reaping dead holders unless `gc=False`) or read-only.
    #[staticmethod]
    #[pyo3(signature = (path, readonly=false, gc=true))]
    fn open(
        py: Python<'_>,
        path: std::path::PathBuf,
        readonly: bool,
        gc: bool,
    ) -> PyResult<NativeContainer> {
        let c = py
            .detach(|| match (readonly, gc) {
                (true, _) => Container::options().read_only(true).open(&path),
                (false, true) => Container::open(&path),
                (false, false) => Container::options().gc(false).open(&path),
            })
            .or_raise(py)?;
        Ok(NativeContainer::wrap(c))
    }

    /// The container directory (canonical).
    #[getter]
    fn root(&self) -> &str {
        &self.root
    }

    /// Whether this handle is read-only.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.inner).is_none()
    }

    /// Drops this handle. Arrays still open keep their own handle (and the session) alive.
    fn close(&self, py: Python<'_>) {
        let c = lock(&self.inner).take();
        py.detach(move || drop(c));
    }

    /// Writes a dense array from a C-contiguous little-endian numpy array and publishes it.
    // The arguments are the Python method's (keywords with defaults).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, array, dtype, shape, scratch=false, reserve=true, lifecycle=None))]
    fn write_dense(
        &self,
        py: Python<'_>,
        name: &str,
        array: &Bound<'_, PyAny>,
        dtype: &str,
        shape: Vec<u64>,
        scratch: bool,
        reserve: bool,
        lifecycle: Option<&str>,
    ) -> PyResult<()> {
        let c = self.get(py)?;
        let dtype = self::dtype(py, dtype)?;
        let opts = create_options(reserve, scratch, lifecycle)?;
        let bytes = ndarray_bytes(array)?;
        // One pass (issue 20): the bytes are copied into the staging file with write(2) in
        // pieces, checksummed as they go, then synced; no fresh map to fault in, no second read
        // for the checksum. Writing reserves the space as it goes (a full file system is an
        // error here, never a SIGBUS), so `reserve` does not apply.
        let _ = reserve;
        py.detach(|| c.write_dense_bytes_with(name, dtype, &shape, bytes, &opts))
            .or_raise(py)
    }

    /// Writes many dense arrays as one batch (SPEC [W11]); all are published, or none. `small`
    /// are (name, dtype name, shape, byte length) of arrays whose little-endian C-order bytes
    /// follow each other in `packed`; `large` are (name, C-contiguous little-endian numpy array,
    /// dtype name, shape). One reservation for all their bytes when the container has limits.
    #[pyo3(signature = (small, packed, large, lifecycle=None))]
    fn write_many(
        &self,
        py: Python<'_>,
        small: Vec<(String, String, Vec<u64>, usize)>,
        packed: &Bound<'_, PyBytes>,
        large: Vec<(String, Bound<'_, PyAny>, String, Vec<u64>)>,
        lifecycle: Option<&str>,
    ) -> PyResult<()> {
        let c = self.get(py)?;
        let opts = create_options(true, false, lifecycle)?;
        let mut parts = Vec::with_capacity(small.len() + large.len());
        let mut rest: &[u8] = packed.as_bytes();
        for (name, dt, shape, len) in &small {
            if *len > rest.len() {
                return Err(PyValueError::new_err(format!(
                    "write_many: array {name:?} needs {len} bytes, only {} are left in the packed bytes",
                    rest.len()
                )));
            }
            let (bytes, after) = rest.split_at(*len);
            rest = after;
            parts.push((name.as_str(), self::dtype(py, dt)?, shape.as_slice(), bytes));
        }
        for (name, array, dt, shape) in &large {
            parts.push((
                name.as_str(),
                self::dtype(py, dt)?,
                shape.as_slice(),
                ndarray_bytes(array)?,
            ));
        }
        let total = parts.iter().map(|p| p.3.len() as u64).sum();
        py.detach(|| -> Result<(), dafstore::WriteError> {
            let mut b = c.batch_with(&opts)?;
            b.reserve(total)?;
            for (name, dt, shape, bytes) in &parts {
                b.write_dense_bytes(name, *dt, shape, bytes)?;
            }
            b.publish()
        })
        .or_raise(py)
    }

    /// Writes a table from `stream`, any object with `__arrow_c_stream__` (the Arrow PyCapsule
    /// interface), and publishes it: each record batch is pushed to the engine's `TableWriter` as
    /// the producer makes it (no serialized copy), which writes the table's Arrow IPC file.
    #[pyo3(signature = (name, stream, scratch=false, lifecycle=None))]
    fn write_table_stream(
        &self,
        py: Python<'_>,
        name: &str,
        stream: &Bound<'_, PyAny>,
        scratch: bool,
        lifecycle: Option<&str>,
    ) -> PyResult<()> {
        let c = self.get(py)?;
        let opts = create_options(true, scratch, lifecycle)?;
        let reader = crate::unsafe_views::arrow_stream_reader(stream)?;
        let invalid = |detail: String| WriteError::InvalidTable {
            name: name.to_string(),
            detail,
        };
        // Without the GIL: a producer that needs it to make a batch (a Python generator behind a
        // pyarrow RecordBatchReader) takes it itself.
        py.detach(|| -> Result<(), WriteError> {
            let schema = arrow_array::RecordBatchReader::schema(&reader);
            let mut writer = c.create_table(name, schema, &opts)?;
            for batch in reader {
                let batch =
                    batch.map_err(|e| invalid(format!("reading the Arrow C stream: {e}")))?;
                writer.push(&batch)?;
            }
            writer.publish()
        })
        .or_raise(py)
    }

    /// Opens table `name`: a view of its whole mapped Arrow IPC file (`uint8`), which keeps the
    /// map and the table's reference alive for as long as anything uses it.
    fn open_table_file(&self, py: Python<'_>, name: &str) -> PyResult<MappedView> {
        let c = self.get(py)?;
        let t = py.detach(|| c.open_table(name)).or_raise(py)?;
        let bytes = (t.file_bytes().as_ptr() as usize, t.file_bytes().len());
        let shape = vec![bytes.1 as u64];
        Ok(MappedView::new(
            Owner::Table(t),
            bytes,
            shape,
            DType::UInt8,
            true,
            name,
            "r",
        ))
    }

    /// Writes a sparse array (CSR for layout `rows`, CSC for `columns`) from three C-contiguous
    /// little-endian numpy arrays; `indices` and `indptr` share one dtype, `int32` or `int64`.
    // The arguments are the Python method's (keywords with defaults).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (name, layout, shape, data, data_dtype, indices, indptr, index_dtype, scratch=false, lifecycle=None))]
    fn write_sparse(
        &self,
        py: Python<'_>,
        name: &str,
        layout: &str,
        shape: [u64; 2],
        data: &Bound<'_, PyAny>,
        data_dtype: &str,
        indices: &Bound<'_, PyAny>,
        indptr: &Bound<'_, PyAny>,
        index_dtype: &str,
        scratch: bool,
        lifecycle: Option<&str>,
    ) -> PyResult<()> {
        let c = self.get(py)?;
        let opts = create_options(true, scratch, lifecycle)?;
        let layout = Layout::from_name(layout).ok_or_else(|| {
            PyValueError::new_err(format!(
                "layout {layout:?}: use \"rows\" (CSR) or \"columns\" (CSC)"
            ))
        })?;
        let data_dtype = self::dtype(py, data_dtype)?;
        let (data, indices, indptr) = (
            ndarray_bytes(data)?,
            ndarray_bytes(indices)?,
            ndarray_bytes(indptr)?,
        );
        macro_rules! write {
            ($i:ty) => {{
                let indices = cast::<$i>(py, indices, "indices", name)?;
                let indptr = cast::<$i>(py, indptr, "indptr", name)?;
                with_element!(data_dtype, T => {
                    let data = cast::<T>(py, data, "data", name)?;
                    py.detach(|| {
                        c.write_sparse_with::<T, $i, $i>(
                            name, layout, shape, data, indices, indptr, &opts,
                        )
                    })
                    .or_raise(py)
                })
            }};
        }
        match index_dtype {
            "int32" => write!(i32),
            "int64" => write!(i64),
            other => Err(PyValueError::new_err(format!(
                "index dtype {other:?}: use \"int32\" or \"int64\""
            ))),
        }
    }

    /// Creates a dense array to fill through a map (`DenseCreate.view()`), reserving its space
    /// (or leaving holes with `reserve=False`).
    #[pyo3(signature = (name, dtype, shape, scratch=false, reserve=true, lifecycle=None))]
    // The arguments are the Python method's (keywords with defaults).
    #[allow(clippy::too_many_arguments)]
    fn create_dense(
        &self,
        py: Python<'_>,
        name: &str,
        dtype: &str,
        shape: Vec<u64>,
        scratch: bool,
        reserve: bool,
        lifecycle: Option<&str>,
    ) -> PyResult<DenseCreate> {
        let c = self.get(py)?;
        let dtype = self::dtype(py, dtype)?;
        let opts = create_options(reserve, scratch, lifecycle)?;
        let (writer, alias) = py
            .detach(|| -> Result<_, WriteError> {
                let mut writer = c.create_dense_with(name, dtype, &shape, opts)?;
                let map = writer.as_bytes_mut();
                let alias = if map.is_empty() {
                    None
                } else {
                    Some(StagingAlias::new(map).map_err(|e| {
                        WriteError::Io(dafstore::IoError {
                            path: std::path::PathBuf::from(name),
                            op: "map the new array a second time",
                            source: e,
                        })
                    })?)
                };
                Ok((writer, alias))
            })
            .or_raise(py)?;
        Ok(DenseCreate {
            writer: Mutex::new(Some(writer)),
            alias: alias.map(Arc::new),
            shape,
            dtype,
            name: name.to_string(),
        })
    }

    /// The staged array of another writer, by its token, as a writable view of its staged
    /// file (SPEC [W10]).
    fn open_staged(&self, py: Python<'_>, token: &str) -> PyResult<MappedView> {
        let c = self.get(py)?;
        let mut fill = py.detach(|| c.open_staged(token)).or_raise(py)?;
        let (shape, dtype, name) = (fill.shape().to_vec(), fill.dtype(), fill.name().to_string());
        let bytes = fill.as_bytes_mut();
        let (address, len) = (bytes.as_mut_ptr() as usize, bytes.len());
        // The view owns the fill: its map (whose address does not move with it) lives as long.
        let owner = if len == 0 {
            Owner::Nothing
        } else {
            Owner::Handle(Box::new(fill))
        };
        Ok(MappedView::new(
            owner,
            (address, len),
            shape,
            dtype,
            false,
            &name,
            "w",
        ))
    }

    /// Opens a dense array: `r` read-only (the shared map), `r+` in place (writes reach the file
    /// and every process mapping it), `c` copy-on-write (writes stay in this process). With
    /// `dtype`, the recorded dtype must be that one.
    #[pyo3(signature = (name, mode="r", dtype=None))]
    fn open_dense(
        &self,
        py: Python<'_>,
        name: &str,
        mode: &str,
        dtype: Option<&str>,
    ) -> PyResult<MappedView> {
        let c = self.get(py)?;
        let requested = dtype.map(|d| self::dtype(py, d)).transpose()?;
        match mode {
            "r" => {
                let a = py
                    .detach(|| -> Result<DenseArray, dafstore::OpenError> {
                        let a = c.open_dense_untyped(name)?;
                        if let Some(d) = requested {
                            with_element!(d, T => { a.clone().typed::<T>()?; });
                        }
                        Ok(a)
                    })
                    .or_raise(py)?;
                let bytes = (a.as_bytes().as_ptr() as usize, a.as_bytes().len());
                let (shape, dtype) = (a.shape().to_vec(), a.dtype());
                Ok(MappedView::new(
                    Owner::Dense(a),
                    bytes,
                    shape,
                    dtype,
                    true,
                    name,
                    "r",
                ))
            }
            "r+" | "c" => {
                let writable = mode == "r+";
                let (owner, bytes, shape, dtype) = py
                    .detach(|| -> Result<_, dafstore::OpenError> {
                        let d = match requested {
                            Some(d) => d,
                            None => {
                                let meta = c.info(name)?.meta;
                                meta.dtype()
                                    .ok_or_else(|| dafstore::OpenError::KindMismatch {
                                        container: c.root().to_path_buf(),
                                        name: name.to_string(),
                                        actual: meta.kind().name(),
                                        requested: "dense",
                                    })?
                            }
                        };
                        with_element!(d, T => {
                            if writable {
                                let mut m = c.open_dense_mut::<T>(name)?;
                                let s = m.as_mut_slice();
                                let bytes = (s.as_mut_ptr() as usize, std::mem::size_of_val(s));
                                let shape = m.shape().to_vec();
                                Ok((Owner::Handle(Box::new(m)), bytes, shape, d))
                            } else {
                                let mut m = c.open_dense_private::<T>(name)?;
                                let s = m.as_mut_slice();
                                let bytes = (s.as_mut_ptr() as usize, std::mem::size_of_val(s));
                                let shape = m.shape().to_vec();
                                Ok((Owner::Handle(Box::new(m)), bytes, shape, d))
                            }
                        })
                    })
                    .or_raise(py)?;
                let mode = if writable { "r+" } else { "c" };
                Ok(MappedView::new(
                    owner, bytes, shape, dtype, false, name, mode,
                ))
            }
            other => Err(PyValueError::new_err(format!(
                "mode {other:?}: use \"r\" (read-only), \"r+\" (in place) or \"c\" (copy-on-write)"
            ))),
        }
    }

    /// Opens a sparse array read-only: `(layout, shape, nnz, data, indices, indptr)`, the last
    /// three views over the three mapped files.
    fn open_sparse<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyTuple>> {
        let c = self.get(py)?;
        let s = py.detach(|| c.open_sparse(name)).or_raise(py)?;
        let meta = s.sparse_meta().clone();
        let view = |bytes: &[u8], dtype: DType, len: u64| -> PyResult<Bound<'py, MappedView>> {
            Bound::new(
                py,
                MappedView::new(
                    Owner::Sparse(s.clone()),
                    (bytes.as_ptr() as usize, bytes.len()),
                    vec![len],
                    dtype,
                    true,
                    name,
                    "r",
                ),
            )
        };
        let data = view(s.data_bytes(), meta.data_dtype, meta.nnz)?;
        let indices = view(s.indices_bytes(), meta.indices_dtype, meta.nnz)?;
        let indptr = view(s.indptr_bytes(), meta.indptr_dtype, meta.major() + 1)?;
        (
            meta.layout.name(),
            (meta.shape[0], meta.shape[1]),
            meta.nnz,
            data,
            indices,
            indptr,
        )
            .into_pyobject(py)
    }

    /// Address of the shared map of dense array `name` in this process (every read-only open of
    /// the same generation shares it).
    fn map_address(&self, py: Python<'_>, name: &str) -> PyResult<usize> {
        let c = self.get(py)?;
        py.detach(|| {
            c.open_dense_untyped(name)
                .map(|a| a.as_bytes().as_ptr() as usize)
        })
        .or_raise(py)
    }

    /// Removes an array: the engine's `Removal` as a dict `{deferred, holders}`; deferred while
    /// live processes hold it.
    fn remove<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let removal = py.detach(|| c.remove(name)).or_raise(py)?;
        to_python(py, &removal)
    }

    /// Takes a reference on `name`.
    fn hold(&self, py: Python<'_>, name: &str) -> PyResult<Hold> {
        let c = self.get(py)?;
        let r = py.detach(|| c.hold(name)).or_raise(py)?;
        Ok(Hold {
            reference: Mutex::new(Some(r)),
            name: name.to_string(),
        })
    }

    /// Takes `name`'s load lock (SPEC 9.6), waiting without the GIL for the process that holds
    /// it, at most `timeout` seconds if given.
    #[pyo3(signature = (name, timeout=None))]
    fn lock_load(
        &self,
        py: Python<'_>,
        name: &str,
        timeout: Option<f64>,
    ) -> PyResult<LoadLockHandle> {
        let c = self.get(py)?;
        let timeout = seconds("timeout", timeout)?;
        let l = py.detach(|| c.lock_load(name, timeout)).or_raise(py)?;
        Ok(LoadLockHandle {
            lock: Mutex::new(Some(l)),
        })
    }

    /// Every load in progress: `[{"session", "pid", "name"}]`.
    fn loads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let loads = py.detach(|| c.loads()).or_raise(py)?;
        to_python(py, &loads)
    }

    /// Takes a reference on `name` (match with `release`).
    fn retain(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let c = self.get(py)?;
        py.detach(|| c.retain(name)).or_raise(py)
    }

    /// Releases a reference taken with `retain`.
    fn release(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let c = self.get(py)?;
        py.detach(|| c.release(name)).or_raise(py)
    }

    /// References this process holds on `name`.
    fn local_refs(&self, py: Python<'_>, name: &str) -> PyResult<u64> {
        let c = self.get(py)?;
        Ok(py.detach(|| c.local_refs(name)))
    }

    /// Marks (or unmarks) `name` as a scratch array.
    fn set_scratch(&self, py: Python<'_>, name: &str, on: bool) -> PyResult<()> {
        let c = self.get(py)?;
        py.detach(|| c.set_scratch(name, on)).or_raise(py)
    }

    /// Sets what happens to `name` after its last release: `persistent`, `scratch` or `cached`.
    fn set_lifecycle(&self, py: Python<'_>, name: &str, lifecycle: &str) -> PyResult<()> {
        let c = self.get(py)?;
        let lifecycle = lifecycle_named(lifecycle)?;
        py.detach(|| c.set_lifecycle(name, lifecycle)).or_raise(py)
    }

    /// Opens `name` (held: an `OpenedEntry`) or, if absent, calls `load()` (the Python loader,
    /// which publishes `name`) once for the host, as the engine's `open_or_load_with` does: what
    /// the loader publishes without a lifecycle takes `lifecycle` (`None`: cached), and it is
    /// held by this process from the moment it is live until the caller has opened it. The GIL
    /// is released while waiting for another loader; `load()` runs with it.
    #[pyo3(signature = (name, load, timeout=None, lifecycle=None))]
    fn open_or_load(
        &self,
        py: Python<'_>,
        name: &str,
        load: Py<PyAny>,
        timeout: Option<f64>,
        lifecycle: Option<&str>,
    ) -> PyResult<OpenedEntry> {
        let c = self.get(py)?;
        let opts = LoadOptions {
            timeout: seconds("timeout", timeout)?,
            lifecycle: lifecycle_of(lifecycle)?.unwrap_or(Lifecycle::Cached),
        };
        let opened = py.detach(|| {
            c.open_or_load_with(name, &opts, |_: &Container, _: &str| {
                Python::attach(|py| load.call0(py).map(drop)).map_err(LoadFailure::Python)
            })
        });
        match opened {
            Ok(array) => Ok(OpenedEntry {
                array: Mutex::new(Some(array)),
            }),
            Err(LoadFailure::Python(e)) => Err(e),
            Err(LoadFailure::Engine(LoadError::NotPublished { container, name })) => {
                Err(errors::to_py(
                    py,
                    &Own {
                        class: "DafstoreError",
                        message: format!(
                            "{}: the loader of {name:?} returned, but {name:?} is not live: return the value to publish, or publish the name yourself; or another process removed it right after",
                            container.display()
                        ),
                        errno: None,
                    },
                ))
            }
            Err(LoadFailure::Engine(e)) => Err(errors::to_py(py, &e)),
        }
    }

    /// The container's limits: the engine's `Limits` as a dict `{capacity, min_free}`.
    fn limits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let limits = py.detach(|| c.limits()).or_raise(py)?;
        to_python(py, &limits)
    }

    /// Sets (or with `None` clears) the capacity in bytes.
    #[pyo3(signature = (capacity))]
    fn set_capacity(&self, py: Python<'_>, capacity: Option<u64>) -> PyResult<()> {
        let c = self.get(py)?;
        py.detach(|| c.set_capacity(capacity)).or_raise(py)
    }

    /// Sets (or with `None` clears) the free space to keep on the file system, in bytes.
    #[pyo3(signature = (min_free))]
    fn set_min_free(&self, py: Python<'_>, min_free: Option<u64>) -> PyResult<()> {
        let c = self.get(py)?;
        py.detach(|| c.set_min_free(min_free)).or_raise(py)
    }

    /// The engine's `Usage` as a dict `{entries, reserved, evictable}`.
    fn usage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let usage = py.detach(|| c.usage()).or_raise(py)?;
        to_python(py, &usage)
    }

    /// Evicts unreferenced cached entries until the container is within its limits: what went,
    /// the engine's `Evicted`s as dicts `[{name, bytes}]`, least recently released first.
    fn evict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let evicted = py.detach(|| c.evict()).or_raise(py)?;
        to_python(py, &evicted)
    }

    /// How long this process's writes through this container wait for room (seconds; `None`:
    /// they fail at once).
    #[pyo3(signature = (seconds))]
    fn wait_for_room(&self, py: Python<'_>, seconds: Option<f64>) -> PyResult<()> {
        let c = self.get(py)?;
        c.wait_for_room(self::seconds("wait_for_room", seconds)?);
        Ok(())
    }

    /// Names of the live arrays, sorted.
    fn ls(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let c = self.get(py)?;
        py.detach(|| c.ls()).or_raise(py)
    }

    /// The engine's `ArrayInfo` of a live array, as a dict.
    fn info<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let info = py.detach(|| c.info(name)).or_raise(py)?;
        to_python(py, &info)
    }

    /// The engine's `ArrayInfo` of every array in the catalog (any state), as dicts.
    fn info_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let infos = py.detach(|| c.info_all()).or_raise(py)?;
        to_python(py, &infos)
    }

    /// The engine's `Holder`s (every session in the catalog with what it holds), as dicts.
    fn holders<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let holders = py.detach(|| c.holders()).or_raise(py)?;
        to_python(py, &holders)
    }

    /// Garbage collection (recovers unfinished operations, reaps dead holders, runs due
    /// deletions, removes dead sessions' staging files): the engine's `GcReport` as a dict.
    fn gc<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let report = py.detach(|| c.gc()).or_raise(py)?;
        to_python(py, &report)
    }

    /// Checks the container (and repairs what can be repaired without losing data).
    #[pyo3(signature = (deep=false, repair=false))]
    fn fsck<'py>(&self, py: Python<'py>, deep: bool, repair: bool) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let report = py
            .detach(|| Container::fsck_dir(c.root(), FsckOptions { deep, repair }, &mut |_, _| {}))
            .or_raise(py)?;
        to_python(py, &report)
    }

    /// Imports a `.npy`, `.npz`, Feather/Arrow IPC or Parquet file as array `name`: the engine's
    /// `ImportReport` as a dict.
    #[pyo3(signature = (name, path, format=None, column=None, fill=None, table=false))]
    // The arguments are the Python method's (keywords with defaults).
    #[allow(clippy::too_many_arguments)]
    fn import_file<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        path: std::path::PathBuf,
        format: Option<&str>,
        column: Option<String>,
        fill: Option<f64>,
        table: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self.get(py)?;
        let format = format_of(py, format)?;
        let report = py
            .detach(|| {
                c.import(
                    name,
                    &path,
                    ImportOptions {
                        format,
                        column,
                        fill,
                        progress: None,
                        table,
                    },
                )
            })
            .or_raise(py)?;
        to_python(py, &report)
    }

    /// Exports array `name` to a `.npy`, `.npz`, Feather or Parquet file.
    #[pyo3(signature = (name, path, format=None))]
    fn export(
        &self,
        py: Python<'_>,
        name: &str,
        path: std::path::PathBuf,
        format: Option<&str>,
    ) -> PyResult<()> {
        let c = self.get(py)?;
        let format = format_of(py, format)?;
        py.detach(|| c.export(name, &path, format)).or_raise(py)
    }

    /// Kind of array `name`: `"dense"` or `"sparse"`.
    fn kind(&self, py: Python<'_>, name: &str) -> PyResult<&'static str> {
        let c = self.get(py)?;
        py.detach(|| c.open_array(name).map(|a| a.kind().name()))
            .or_raise(py)
    }

    fn __repr__(&self) -> String {
        format!(
            "<dafstore._native.Container {}{}>",
            self.root,
            if self.readonly { " (read-only)" } else { "" }
        )
    }
}

/// `(live_maps, maps_created)` of the process-wide map cache.
#[pyfunction]
fn cache_stats() -> (usize, u64) {
    let s = dafstore::cache_stats();
    (s.live_maps, s.maps_created)
}

/// A `GcReport` with one failed recovery, as `gc()` returns it (for the package's tests: a real
/// failure needs a broken disk). Built from the engine's types, so its keys are theirs.
#[pyfunction]
fn _gc_report_sample(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let report = dafstore::GcReport {
        failed: vec![dafstore::GcFailure {
            name: "x".to_string(),
            error: "an error".to_string(),
        }],
        ..Default::default()
    };
    to_python(py, &report)
}

/// The dtypes dafstore stores, numpy spellings.
#[pyfunction]
fn dtypes() -> Vec<&'static str> {
    DType::ALL.iter().map(|d| d.name()).collect()
}

#[pymodule(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeContainer>()?;
    m.add_class::<MappedView>()?;
    m.add_class::<DenseCreate>()?;
    m.add_class::<Hold>()?;
    m.add_class::<LoadLockHandle>()?;
    m.add_class::<OpenedEntry>()?;
    m.add_function(wrap_pyfunction!(cache_stats, m)?)?;
    m.add_function(wrap_pyfunction!(dtypes, m)?)?;
    m.add_function(wrap_pyfunction!(_gc_report_sample, m)?)?;
    m.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
