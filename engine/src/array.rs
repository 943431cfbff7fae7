//! Dense and sparse array handles: mapping a published generation (through the shared map
//! cache), opening in place (`r+`) and copy-on-write private (`c`), and the typed and untyped
//! views over them. Opening by name as any kind ([`crate::Array`]) is `open.rs`.
//!
//! Shared-memory contract: a view's memory stays valid for the life of its handle (published files
//! are never truncated), but values can change while you read them if the same array is opened
//! for in-place writing, in this or another process — exactly as with `numpy.memmap`.

use std::marker::PhantomData;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use memmap2::MmapMut;

use crate::catalog::ArrayState;
use crate::container::Container;
use crate::error::{OpenError, WriteError};
use crate::format::dtype::{DType, Element, IndexSlice};
use crate::format::meta::{ArrayMeta, DenseMeta, Layout, SparseMeta};
use crate::format::name::ArrayName;
use crate::fs::cache::{self, FileKey, FileMap};
use crate::fs::sys;
use crate::hold::Ref;
use crate::protocol::refs::Retained;

/// A mapped generation of an array: its metadata and one map per non-empty file.
pub(crate) struct ArrayInner {
    pub(crate) container: Container,
    pub(crate) name: ArrayName,
    pub(crate) meta: ArrayMeta,
    pub(crate) generation: u64,
    /// One per data file, in `meta.files()` order; `None` for an empty file (never mapped).
    maps: Vec<Option<Arc<FileMap>>>,
    /// Path and identity of the last non-empty file, to validate cached re-opens.
    primary: Option<(PathBuf, FileKey)>,
    /// Device, inode, size and change time of the last non-empty file when it was opened: what a
    /// table's recorded validation is compared with (SPEC [B8]).
    pub(crate) primary_fingerprint: Option<String>,
    /// The reference held for as long as this generation is mapped (none on read-only handles).
    _reference: Option<Ref>,
}

impl ArrayInner {
    /// The mapped bytes of data file `i` (in `meta.files()` order); empty for an unmapped file.
    pub(crate) fn bytes(&self, i: usize) -> &[u8] {
        match self.maps.get(i) {
            Some(Some(m)) => m.map.bytes(),
            _ => &[],
        }
    }

    /// The map of data file `i` (in `meta.files()` order); `None` for an unmapped (empty) file.
    pub(crate) fn file_map(&self, i: usize) -> Option<&sys::SharedMap> {
        self.maps.get(i)?.as_ref().map(|m| &m.map)
    }

    pub(crate) fn still_current(&self) -> bool {
        match &self.primary {
            Some((path, key)) => std::fs::metadata(path).is_ok_and(|m| FileKey::of(&m) == *key),
            None => false,
        }
    }
}

fn typed<T: Element>(bytes: &[u8]) -> &[T] {
    if bytes.is_empty() {
        return &[];
    }
    // Maps start on a page boundary and sizes were checked to be whole elements, so this cannot
    // fail; an empty view is returned rather than panicking if that invariant were ever broken.
    bytemuck::try_cast_slice(bytes).unwrap_or(&[])
}

fn typed_mut<T: Element>(bytes: &mut [u8]) -> &mut [T] {
    if bytes.is_empty() {
        return &mut [];
    }
    bytemuck::try_cast_slice_mut(bytes).unwrap_or(&mut [])
}

/// A read-only dense array whose dtype is known at run time.
#[derive(Clone)]
pub struct DenseArray {
    pub(crate) inner: Arc<ArrayInner>,
    pub(crate) meta: DenseMeta,
}

impl DenseArray {
    fn meta(&self) -> &DenseMeta {
        &self.meta
    }

    /// The mapped generation (for views that must keep the map alive, e.g. Arrow buffers).
    pub(crate) fn mapped(&self) -> &Arc<ArrayInner> {
        &self.inner
    }

    /// The array's name.
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.meta().dtype
    }

    /// Shape.
    pub fn shape(&self) -> &[u64] {
        &self.meta().shape
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.meta().len()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.meta().is_empty()
    }

    /// Generation (incremented by each publish of this name).
    pub fn generation(&self) -> u64 {
        self.inner.generation
    }

    /// The raw little-endian bytes, row-major.
    pub fn as_bytes(&self) -> &[u8] {
        self.inner.bytes(0)
    }

    /// A typed view; `T` must view the recorded dtype.
    pub fn as_slice<T: Element>(&self) -> Result<&[T], OpenError> {
        check_dtype::<T>(self.name(), self.dtype())?;
        Ok(typed(self.as_bytes()))
    }

    /// Turns into a typed handle; `T` must view the recorded dtype.
    pub fn typed<T: Element>(self) -> Result<Dense<T>, OpenError> {
        check_dtype::<T>(self.name(), self.dtype())?;
        Ok(Dense {
            array: self,
            _t: PhantomData,
        })
    }
}

fn check_dtype<T: Element>(name: &str, recorded: DType) -> Result<(), OpenError> {
    if T::DTYPE != recorded {
        return Err(OpenError::DtypeMismatch {
            name: name.to_string(),
            recorded,
            requested: T::DTYPE,
        });
    }
    Ok(())
}

/// A read-only dense array of `T`.
#[derive(Clone)]
pub struct Dense<T: Element> {
    array: DenseArray,
    _t: PhantomData<T>,
}

impl<T: Element> Dense<T> {
    /// The elements, row-major.
    pub fn as_slice(&self) -> &[T] {
        typed(self.array.as_bytes())
    }

    /// Shape.
    pub fn shape(&self) -> &[u64] {
        self.array.shape()
    }

    /// The untyped handle.
    pub fn untyped(&self) -> &DenseArray {
        &self.array
    }
}

impl<T: Element> std::ops::Deref for Dense<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

/// A read-only sparse array (CSR or CSC) over its three mapped files.
#[derive(Clone)]
pub struct SparseArray {
    pub(crate) inner: Arc<ArrayInner>,
    pub(crate) meta: SparseMeta,
}

impl SparseArray {
    fn meta(&self) -> &SparseMeta {
        &self.meta
    }

    /// The mapped generation (for views that must keep the maps alive, e.g. Arrow buffers).
    pub(crate) fn mapped(&self) -> &Arc<ArrayInner> {
        &self.inner
    }

    /// The array's name.
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// `[rows, columns]`.
    pub fn shape(&self) -> [u64; 2] {
        self.meta().shape
    }

    /// Stored entries.
    pub fn nnz(&self) -> u64 {
        self.meta().nnz
    }

    /// Rows (CSR) or columns (CSC).
    pub fn layout(&self) -> Layout {
        self.meta().layout
    }

    /// dtype of `data`.
    pub fn data_dtype(&self) -> DType {
        self.meta().data_dtype
    }

    /// The metadata.
    pub fn sparse_meta(&self) -> &SparseMeta {
        self.meta()
    }

    /// Raw bytes of `data`.
    pub fn data_bytes(&self) -> &[u8] {
        self.inner.bytes(0)
    }

    /// `data` typed; `T` must view `data_dtype`.
    pub fn data<T: Element>(&self) -> Result<&[T], OpenError> {
        check_dtype::<T>(self.name(), self.data_dtype())?;
        Ok(typed(self.data_bytes()))
    }

    /// Raw bytes of `indices`.
    pub fn indices_bytes(&self) -> &[u8] {
        self.inner.bytes(1)
    }

    /// Raw bytes of `indptr`.
    pub fn indptr_bytes(&self) -> &[u8] {
        self.inner.bytes(2)
    }

    /// `indices`, whatever its dtype.
    pub fn indices(&self) -> IndexSlice<'_> {
        index_slice(self.meta().indices_dtype, self.indices_bytes())
    }

    /// `indptr`, whatever its dtype.
    pub fn indptr(&self) -> IndexSlice<'_> {
        index_slice(self.meta().indptr_dtype, self.indptr_bytes())
    }

    /// The range of entries of major slot `i` (row `i` for CSR), bounds-checked: `None` if `i` is
    /// out of range or `indptr` is inconsistent there (content is trusted after publish, but a
    /// file damaged outside dafstore never makes this read out of bounds).
    pub fn major_range(&self, i: u64) -> Option<Range<usize>> {
        let i = usize::try_from(i).ok()?;
        let ptr = self.indptr();
        let (a, b) = (ptr.get(i)?, ptr.get(i.checked_add(1)?)?);
        let (a, b) = (usize::try_from(a).ok()?, usize::try_from(b).ok()?);
        (a <= b && b <= self.indices().len()).then_some(a..b)
    }

    /// Validates every invariant of SPEC [S3]–[S5] in O(nnz) (what fsck does).
    pub fn validate(&self) -> Result<(), crate::error::SparseError> {
        let data_len = self.data_bytes().len() as u64 / self.data_dtype().itemsize() as u64;
        crate::format::sparse::validate(self.meta(), data_len, self.indices(), self.indptr())
    }
}

fn index_slice(dtype: DType, bytes: &[u8]) -> IndexSlice<'_> {
    match dtype {
        DType::Int32 => IndexSlice::I32(typed(bytes)),
        DType::UInt32 => IndexSlice::U32(typed(bytes)),
        DType::UInt64 => IndexSlice::U64(typed(bytes)),
        // Index dtypes are validated to be one of the four ([T3]).
        _ => IndexSlice::I64(typed(bytes)),
    }
}

/// A dense array open for in-place writing (numpy's `r+`). Writes go to the shared file: other
/// handles and processes mapping it see them. While any in-place writer is open, the recorded
/// checksums are marked stale and the `crc32c` key is removed from the metadata file; closing the
/// last writer recomputes them ([W7]). Close with [`DenseMut::close`] to see errors; dropping
/// closes too, ignoring them.
pub struct DenseMut<T: Element> {
    inner: Option<Arc<ArrayInner>>,
    access: Option<crate::fs::sys::WriteAccess>,
    /// The fork epoch of the process that registered the writer ([P2]).
    epoch: u64,
    _t: PhantomData<T>,
}

impl<T: Element> DenseMut<T> {
    fn inner(&self) -> Option<&ArrayInner> {
        self.inner.as_deref()
    }

    /// Shape.
    pub fn shape(&self) -> &[u64] {
        match self.inner().map(|i| &i.meta) {
            Some(ArrayMeta::Dense(d)) => &d.shape,
            _ => &[],
        }
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        typed(self.inner().map_or(&[][..], |i| i.bytes(0)))
    }

    /// The elements, writable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let (Some(inner), Some(access)) = (self.inner.as_deref(), self.access.as_mut()) else {
            return &mut [];
        };
        if self.epoch != sys::fork_epoch() {
            // Inherited through fork: this process registers it as its own writer first ([P2]).
            inner.container.shared.here();
        }
        match inner.maps.first() {
            Some(Some(map)) => typed_mut(map.map.bytes_mut(access)),
            _ => &mut [],
        }
    }

    /// Writes dirty pages back to the file (msync).
    pub fn flush(&self) -> Result<(), WriteError> {
        if let Some(inner) = self.inner() {
            if let Some(Some(m)) = inner.maps.first() {
                m.map.flush().map_err(|e| {
                    WriteError::io(
                        inner.name.file_path(&inner.container.shared.root, "array"),
                        "flush",
                        e,
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Flushes, unregisters this writer and, if it was the last, recomputes the checksums.
    pub fn close(mut self) -> Result<(), WriteError> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<(), WriteError> {
        let Some(inner) = self.inner.take() else {
            return Ok(());
        };
        if self.epoch != sys::fork_epoch()
            && inner
                .container
                .shared
                .close_inherited_writer(inner.name.as_str())
        {
            return Ok(()); // inherited through fork and not registered here ([P2])
        }
        if let Some(Some(m)) = inner.maps.first() {
            m.map.flush().map_err(|e| {
                WriteError::io(
                    inner.name.file_path(&inner.container.shared.root, "array"),
                    "flush",
                    e,
                )
            })?;
        }
        let shared = &inner.container.shared;
        let held = shared
            .lock_name(&inner.name)
            .map_err(shared.lock_err(&inner.name))?;
        let left = shared
            .catalog()
            .remove_inplace_writer(shared.session_id(), inner.name.as_str())?;
        crate::protocol::fork::decrement_count(&mut shared.writers(), inner.name.as_str());
        if left == 0 {
            // The unregistration committed the close (SPEC [W9]'s reasoning): recomputing the
            // checksums and rewriting the metadata file with them are finishing steps. If they
            // fail (e.g. no space for the new metadata file), the checksums stay stale or the
            // metadata file stays without them, both valid states (`fsck --repair` recomputes
            // stale checksums); the close is not reported as failed.
            let _ = shared.refresh_checksums(&held);
        }
        Ok(())
    }
}

impl<T: Element> Drop for DenseMut<T> {
    fn drop(&mut self) {
        let _ = self.close_inner();
    }
}

/// A dense array mapped copy-on-write (numpy's `c`): writes stay in this process and are never
/// written to the file. The map belongs to this handle, outside the shared cache.
pub struct DensePrivate<T: Element> {
    map: Option<MmapMut>,
    shape: Vec<u64>,
    _reference: Option<Ref>,
    _t: PhantomData<T>,
}

impl<T: Element> DensePrivate<T> {
    /// Shape.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        typed(self.map.as_deref().unwrap_or(&[]))
    }

    /// The elements, writable (private to this process).
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        typed_mut(self.map.as_deref_mut().unwrap_or(&mut []))
    }
}

impl Container {
    /// Opens a dense array for in-place writing ([W7]). The file's size never changes.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let c = dafstore::Container::create(dir.path().join("c"))?;
    /// c.write_dense::<i64>("n", &[3], &[1, 2, 3])?;
    /// let mut w = c.open_dense_mut::<i64>("n")?;
    /// w.as_mut_slice()[0] = 10;
    /// w.close()?; // flushes and recomputes the checksum
    /// assert_eq!(&*c.open_dense::<i64>("n")?, &[10, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_dense_mut<T: Element>(&self, name: &str) -> Result<DenseMut<T>, OpenError> {
        let name = ArrayName::new(name)?;
        let shared = &self.shared;
        if shared.readonly {
            return Err(OpenError::ReadOnly {
                container: shared.root.clone(),
            });
        }
        let rec = self.live_row(name.as_str())?;
        let ArrayMeta::Dense(meta) = &rec.meta else {
            return Err(self.kind_mismatch(name.as_str(), rec.meta.kind().name(), "dense"));
        };
        check_dtype::<T>(name.as_str(), meta.dtype)?;
        // Map (and check containment, sizes, take the reference) before registering as a writer:
        // a failed open must leave the metadata and checksums as they were.
        let inner = self.map_array(&name, true)?;
        let recovery = |e: WriteError| OpenError::Recovery {
            name: name.to_string(),
            source: Box::new(e),
        };
        let held = shared
            .lock_name(&name)
            .map_err(|e| recovery(shared.lock_err(&name)(e)))?;
        let first = shared
            .catalog()
            .add_inplace_writer(shared.session_id(), name.as_str())?;
        *shared.writers().entry(name.to_string()).or_default() += 1;
        // From here, dropping the handle unregisters the writer, whatever fails next.
        let access = inner
            .maps
            .first()
            .and_then(|m| m.as_ref())
            .and_then(|m| m.map.write_access());
        let handle = DenseMut::<T> {
            inner: Some(Arc::new(inner)),
            access,
            epoch: sys::fork_epoch(),
            _t: PhantomData,
        };
        if first {
            shared
                .rewrite_yaml(&held, &rec.meta, None)
                .map_err(recovery)?;
        }
        Ok(handle)
    }

    /// Opens a dense array copy-on-write: writes stay in this process (numpy's `c`).
    pub fn open_dense_private<T: Element>(&self, name: &str) -> Result<DensePrivate<T>, OpenError> {
        let name = ArrayName::new(name)?;
        self.shared.check_parent(&name)?;
        let reference = if self.shared.readonly {
            None
        } else {
            Some(Ref::take(self, &name)?)
        };
        let _g = self
            .shared
            .lock_stripe_shared(&name)
            .map_err(|e| OpenError::io(self.shared.stripe_path(&name), "lock", e))?;
        let rec = self.live_row(name.as_str())?;
        let ArrayMeta::Dense(meta) = &rec.meta else {
            return Err(self.kind_mismatch(name.as_str(), rec.meta.kind().name(), "dense"));
        };
        check_dtype::<T>(name.as_str(), meta.dtype)?;
        let path = name.file_path(&self.shared.root, "array");
        let (file, _) = open_checked(
            &self.shared,
            &name,
            "array",
            meta.byte_len(),
            false,
            _g.locks_current,
        )?;
        let len = usize::try_from(meta.byte_len()).unwrap_or(usize::MAX);
        let map = if len == 0 {
            None
        } else {
            Some(sys::map_private(&file, len).map_err(|e| OpenError::io(path.clone(), "map", e))?)
        };
        Ok(DensePrivate {
            map,
            shape: meta.shape.clone(),
            _reference: reference,
            _t: PhantomData,
        })
    }

    pub(crate) fn kind_mismatch(
        &self,
        name: &str,
        actual: &'static str,
        requested: &'static str,
    ) -> OpenError {
        OpenError::KindMismatch {
            container: self.shared.root.clone(),
            name: name.to_string(),
            actual,
            requested,
        }
    }

    /// The slow path of every open: under the shared stripe, read the catalog row, open each file
    /// without following symlinks, check its length against the metadata, and map it through the
    /// process-wide cache. Recovers an interrupted publish or remove first if it finds one.
    pub(crate) fn map_array(
        &self,
        name: &ArrayName,
        writable: bool,
    ) -> Result<ArrayInner, OpenError> {
        let shared = &self.shared;
        shared.check_parent(name)?;
        let not_found = || OpenError::NotFound {
            container: shared.root.clone(),
            name: name.to_string(),
        };
        let recover = || -> Result<(), OpenError> {
            let held = shared
                .lock_name(name)
                .map_err(|e| OpenError::io(shared.stripe_path(name), "lock", e))?;
            shared
                .recover_locked(&held)
                .map_err(|e| OpenError::Recovery {
                    name: name.to_string(),
                    source: Box::new(e),
                })
        };
        let mut reference: Option<Ref> = None;
        loop {
            // The shared stripe keeps a publish of this name from renaming files while we read the
            // row and open them (SPEC [W6]).
            let guard = shared
                .lock_stripe_shared(name)
                .map_err(|e| OpenError::io(shared.stripe_path(name), "lock", e))?;
            // The reference first: from then on the files cannot be deleted under us (SPEC [P4]).
            // Its 0→1 transaction also reads the row. Read-only handles take none (they cannot
            // write the catalog; run them under `dafctl hold`).
            let mut row = None;
            if reference.is_none() && !shared.readonly {
                match shared.try_retain(name, &guard)? {
                    Retained::Held(r) => {
                        reference = Some(Ref::adopt(self, name));
                        row = r;
                    }
                    Retained::NotFound => return Err(not_found()),
                    Retained::Unfinished => {
                        drop(guard);
                        recover()?;
                        continue;
                    }
                }
            }
            let rec = match row {
                Some(r) => *r,
                None => shared.row_under(name, &guard)?.ok_or_else(not_found)?,
            };
            // A `deleting` array is still open to processes holding it, as this one now does.
            let openable = rec.state == ArrayState::Live
                || (rec.state == ArrayState::Deleting && reference.is_some());
            if !openable {
                drop(guard);
                if shared.readonly
                    || matches!(rec.state, ArrayState::Removing | ArrayState::Deleting)
                {
                    return Err(not_found());
                }
                recover()?;
                continue;
            }
            crate::failpoint::hit("open.after_row").map_err(|e| {
                OpenError::io(name.file_path(&shared.root, "yaml"), "open (injected)", e)
            })?;
            let mut maps = Vec::new();
            let mut primary = None;
            let mut primary_fingerprint = None;
            for (suffix, expected) in rec.meta.files() {
                let (file, md) = open_checked(
                    shared,
                    name,
                    suffix,
                    expected,
                    writable,
                    guard.locks_current,
                )?;
                let len = usize::try_from(expected).map_err(|_| OpenError::SizeMismatch {
                    path: name.file_path(&shared.root, suffix),
                    expected,
                    actual: md.len(),
                })?;
                if len == 0 {
                    maps.push(None);
                    continue;
                }
                let key = FileKey::of(&md);
                let path = name.file_path(&shared.root, suffix);
                let map = cache::map_file(&file, key, len, writable)
                    .map_err(|e| OpenError::io(path.clone(), "map", e))?;
                maps.push(Some(map));
                primary = Some((path, key));
                // Only a table's decoding looks at it ([B8]).
                if let ArrayMeta::Table(_) = rec.meta {
                    let crc = rec
                        .files
                        .iter()
                        .find(|f| f.suffix == suffix)
                        .and_then(|f| f.crc32c);
                    primary_fingerprint = fingerprint(&md, crc);
                }
            }
            if !guard.is_locked() && shared.row_changed(name, &rec)? {
                // A publish or remove of this name ran between reading the row and opening the
                // files (a read-only handle that may not open the stripe's lock file): read again.
                drop(guard);
                continue;
            }
            drop(guard);
            return Ok(ArrayInner {
                container: self.clone(),
                name: name.clone(),
                meta: rec.meta,
                generation: rec.generation,
                maps,
                primary,
                primary_fingerprint,
                _reference: reference,
            });
        }
    }
}

/// What a table's recorded validation must match (SPEC [B8]): this boot of the host and this
/// engine version (a record made elsewhere, e.g. in a crafted image, or by another validator is
/// not trusted), then the file's device, inode, size and change time, and the CRC-32C the catalog
/// recorded at publish (a new file that reuses an inode number and change time tick has another
/// checksum unless it holds the same bytes). `None` without a boot id (no skipping then).
fn fingerprint(md: &std::fs::Metadata, crc: Option<u32>) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    static BOOT: std::sync::LazyLock<Option<String>> = std::sync::LazyLock::new(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    });
    let boot = BOOT.as_deref()?;
    Some(format!(
        "{boot}:{}:{}:{}:{}:{}.{:09}:{}",
        env!("CARGO_PKG_VERSION"),
        md.dev(),
        md.ino(),
        md.len(),
        md.ctime(),
        md.ctime_nsec(),
        crc.map_or_else(|| "-".to_string(), |c| format!("{c:08x}"))
    ))
}

/// Opens `name`'s file with `suffix` (resolved under `root` without following any link, without
/// blocking, refusing nested containers: [N7], [N9], [C4]), checks it is a regular file of exactly
/// `expected` bytes ([D3]).
fn open_checked(
    shared: &crate::protocol::shared::Shared,
    name: &ArrayName,
    suffix: &str,
    expected: u64,
    write: bool,
    locks_current: bool,
) -> Result<(std::fs::File, std::fs::Metadata), OpenError> {
    let path = || name.file_path(&shared.root, suffix);
    let (file, md) = match shared.open_array_file(name, suffix, write, locks_current) {
        Ok(Some(opened)) => opened,
        Ok(None) => {
            let e = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(OpenError::io(path(), "open", e));
        }
        // The file itself is a link: not a regular file ([N7]).
        Err(crate::error::PathError::Link { path: p }) if p == path() => {
            return Err(OpenError::NotRegularFile { path: p })
        }
        Err(e) => return Err(e.into()),
    };
    if md.len() != expected {
        return Err(OpenError::SizeMismatch {
            path: path(),
            expected,
            actual: md.len(),
        });
    }
    Ok((file, md))
}
