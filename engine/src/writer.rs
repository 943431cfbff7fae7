//! Writing arrays: staging files (reserved with `posix_fallocate` by default, or holes on
//! request), filling through a private writable map, validation, checksums, and the hand-off to
//! the publish protocol of SPEC [W3] (`Shared::commit`). Until `publish` returns, nothing is
//! visible; a writer dropped without publishing removes its staging files.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::catalog::{ArrayState, FileRecord, Lifecycle};
use crate::container::Container;
use crate::error::{io_at, OpenError, WriteError};
use crate::failpoint::{self, failpoint};
use crate::format::dtype::{DType, Element, IndexElement, IndexSlice};
use crate::format::meta::{render_yaml, ArrayMeta, DenseMeta, Layout, SparseMeta};
use crate::format::name::ArrayName;
use crate::fs::beneath::Dir;
use memmap2::MmapMut;

/// How a dense array's space is obtained at create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Allocation {
    /// Reserve every byte now (`posix_fallocate`): running out of space is an error at create,
    /// never a SIGBUS while filling. The default.
    #[default]
    Reserve,
    /// Set the length and write nothing (daf's behaviour): instant for huge mostly-empty arrays,
    /// but filling pages through the map on a full file system kills the process with SIGBUS
    /// (Docker's /dev/shm is 64 MB). Use only when you know the space is there.
    Holes,
}

/// Options of [`Container::create_dense_with`], [`Container::write_dense_bytes_with`],
/// [`Container::write_sparse_with`] and [`Container::create_table`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// Space reservation (default: reserve).
    pub allocation: Allocation,
    /// Publish as a scratch array: removed automatically when its last reference is released
    /// after having been held (SPEC [P6]). The same as `lifecycle: Some(Lifecycle::Scratch)`,
    /// which it overrides.
    pub scratch: bool,
    /// What happens after the last release (SPEC 9.7): `None` is persistent, or, inside the
    /// loader of [`Container::open_or_load`] for its name, the lifecycle the load asked for
    /// (`cached` by default).
    pub lifecycle: Option<Lifecycle>,
}

impl CreateOptions {
    /// Options with the given lifecycle.
    pub fn lifecycle(lifecycle: Lifecycle) -> CreateOptions {
        CreateOptions {
            lifecycle: Some(lifecycle),
            ..CreateOptions::default()
        }
    }

    pub(crate) fn effective_lifecycle(&self) -> Option<Lifecycle> {
        if self.scratch {
            Some(Lifecycle::Scratch)
        } else {
            self.lifecycle
        }
    }
}

/// Staged files of one array; removed on drop unless published (or kept for recovery).
pub(crate) struct Staged {
    container: Container,
    /// The fork epoch of the process that staged the files (SPEC [P2]): only it may publish or
    /// remove them.
    epoch: u64,
    /// This session's staging directory, reached without following a link ([N7]).
    dir: Dir,
    stem: String,
    paths: Vec<PathBuf>,
    keep: bool,
    pub(crate) lifecycle: Option<Lifecycle>,
    /// Bytes reserved under the container's limits for these files (SPEC 9.7).
    reserved: u64,
}

impl Staged {
    pub(crate) fn new(container: &Container) -> Result<Staged, WriteError> {
        container.shared.writable()?;
        // Creates `staging/<session>` if missing, never `.dafstore` or `staging` ([C5]).
        let dir = container.shared.own_staging()?;
        Ok(Staged {
            container: container.clone(),
            epoch: crate::fs::sys::fork_epoch(),
            dir,
            stem: container.shared.next_stem(),
            paths: Vec::new(),
            keep: false,
            lifecycle: None,
            reserved: 0,
        })
    }

    /// Reserves room for `total` bytes of staged files in all (SPEC 9.7): evicts unreferenced
    /// `cached` entries if the container's limits require it, or fails with
    /// [`WriteError::Capacity`]. Before any of those bytes are written.
    pub(crate) fn reserve(&mut self, name: &ArrayName, total: u64) -> Result<(), WriteError> {
        if total <= self.reserved {
            return Ok(());
        }
        self.container.shared.make_room(name, &self.stem, total)?;
        self.reserved = total;
        Ok(())
    }

    /// The session that staged the files.
    pub(crate) fn session_id(&self) -> &str {
        self.container.shared.session_id()
    }

    /// The staged files' stem (`<stem>.<suffix>` in the session's staging directory).
    pub(crate) fn stem(&self) -> &str {
        &self.stem
    }

    fn leaf(&self, suffix: &str) -> std::ffi::OsString {
        format!("{}.{suffix}", self.stem).into()
    }

    pub(crate) fn create(&mut self, suffix: &str) -> Result<(PathBuf, File), WriteError> {
        let path = self.dir.path().join(self.leaf(suffix));
        let file = self.dir.create_new(&self.leaf(suffix)).map_err(io_at(
            &path,
            "create staging file",
            WriteError::io,
        ))?;
        self.paths.push(path.clone());
        Ok((path, file))
    }

    /// Writes `bytes` to a new staged file and syncs it; returns its checksum.
    fn write_file(&mut self, suffix: &str, bytes: &[u8]) -> Result<u32, WriteError> {
        let (path, mut file) = self.create(suffix)?;
        let len = bytes.len() as u64;
        failpoint::hit("stage.write").map_err(|e| no_space(&path, len, e, "write"))?;
        // A large buffer is checksummed by a thread beside the copy (the copy into the file is
        // the slower of the two: they take the time of one); a small one chunk by chunk after
        // each write, while the chunk is in cache.
        let crc = std::thread::scope(|s| {
            let beside = (bytes.len() >= crate::format::checksum::PARALLEL_MIN)
                .then(|| {
                    std::thread::Builder::new()
                        .spawn_scoped(s, || crc32c::crc32c(bytes))
                        .ok()
                })
                .flatten();
            let mut crc = 0u32;
            for chunk in bytes.chunks(8 << 20) {
                file.write_all(chunk)
                    .map_err(|e| no_space(&path, len, e, "write"))?;
                if beside.is_none() {
                    crc = crc32c::crc32c_append(crc, chunk);
                }
            }
            Ok::<u32, WriteError>(match beside.map(|t| t.join()) {
                Some(Ok(c)) => c,
                Some(Err(_)) => crc32c::crc32c(bytes),
                None => crc,
            })
        })?;
        file.sync_data()
            .map_err(|e| no_space(&path, len, e, "sync"))?;
        Ok(crc)
    }

    /// Writes the metadata file, syncs it and the staging directory, and publishes.
    pub(crate) fn publish(
        mut self,
        name: &ArrayName,
        meta: &ArrayMeta,
        crcs: Vec<(String, u32)>,
    ) -> Result<(), WriteError> {
        if self.epoch != crate::fs::sys::fork_epoch() {
            // Staged under the parent's session: publishing them here would name files this
            // process's session does not have ([P2]).
            return Err(WriteError::ForkedWriter {
                name: name.to_string(),
            });
        }
        let yaml = render_yaml(meta, Some(&crcs));
        let (path, mut f) = self.create("yaml")?;
        f.write_all(yaml.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| no_space(&path, yaml.len() as u64, e, "write"))?;
        self.dir.sync()?;
        failpoint!("publish.after_stage_sync");
        let files: Vec<FileRecord> = meta
            .files()
            .into_iter()
            .zip(crcs)
            .map(|((suffix, size), (_, crc))| FileRecord {
                suffix: suffix.to_string(),
                size,
                crc32c: Some(crc),
            })
            .collect();
        let result =
            self.container
                .shared
                .commit(name, meta, &files, &self.stem, &self.dir, self.lifecycle);
        if result.is_err() {
            // Once the intent is recorded the staged files belong to recovery: keep them.
            let ours = format!("{}/{}", self.container.shared.session_id(), self.stem);
            if let Ok(Some(rec)) = self.container.shared.catalog().get(name.as_str()) {
                self.keep = rec.state == ArrayState::Publishing
                    && rec.staging.as_deref() == Some(ours.as_str());
            }
        } else {
            self.keep = true; // renamed away; nothing left to remove
        }
        result
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // In a forked child these are the parent's files (SPEC [P2]): leave them.
        if !self.keep && self.epoch == crate::fs::sys::fork_epoch() {
            for p in &self.paths {
                if let Some(leaf) = p.file_name() {
                    let _ = self.dir.remove_file(leaf);
                }
            }
            if self.reserved > 0 {
                // Best effort: a reservation left behind is dropped by gc once this session
                // is dead; until then it only over-counts.
                let staging = format!("{}/{}", self.container.shared.session_id(), self.stem);
                let _ = self.container.shared.catalog().unreserve(&staging);
            }
        }
    }
}

pub(crate) fn no_space(
    path: &std::path::Path,
    bytes: u64,
    e: io::Error,
    op: &'static str,
) -> WriteError {
    if crate::error::is_no_space(&e) {
        WriteError::NoSpace {
            path: path.to_path_buf(),
            bytes,
        }
    } else {
        WriteError::io(path.to_path_buf(), op, e)
    }
}

fn check_bools(name: &ArrayName, bytes: &[u8]) -> Result<(), WriteError> {
    match bytes.iter().position(|&b| b > 1) {
        Some(at) => Err(WriteError::InvalidBool {
            name: name.to_string(),
            at: at as u64,
            byte: bytes[at],
        }),
        None => Ok(()),
    }
}

/// A dense array being created: fill it through [`DenseWriter::as_mut_slice`] (or the bytes), then
/// [`DenseWriter::publish`]. Dropping it without publishing discards it.
pub struct DenseWriter {
    name: ArrayName,
    meta: DenseMeta,
    staged: Staged,
    file: File,
    path: PathBuf,
    /// Exclusively owned writable map of the staging file (`None` for zero-size arrays).
    map: Option<MmapMut>,
}

impl DenseWriter {
    /// The array's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Shape.
    pub fn shape(&self) -> &[u64] {
        &self.meta.shape
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.meta.dtype
    }

    /// The bytes to fill (zero-initialised).
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or(&mut [])
    }

    /// The elements to fill, typed; `T` must view the array's dtype.
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T], WriteError> {
        let bytes = self.map.as_deref_mut().unwrap_or(&mut []);
        typed_mut(bytes, self.meta.dtype, &self.path, self.name.as_str())
    }

    /// Syncs the data, records the checksum and publishes atomically (SPEC [W3]).
    pub fn publish(self) -> Result<(), WriteError> {
        let DenseWriter {
            name,
            meta,
            staged,
            file,
            path,
            map,
        } = self;
        let crc = match &map {
            Some(m) => {
                if meta.dtype == DType::Bool {
                    check_bools(&name, m)?;
                }
                m.flush().map_err(io_at(&path, "flush", WriteError::io))?;
                crate::format::checksum::crc32c_parallel(m)
            }
            None => 0,
        };
        drop(map);
        file.sync_data()
            .map_err(|e| no_space(&path, meta.byte_len(), e, "sync"))?;
        drop(file);
        staged.publish(&name, &ArrayMeta::Dense(meta), vec![("array".into(), crc)])
    }

    /// Discards the array (same as dropping it).
    pub fn discard(self) {}
}

impl Container {
    /// Creates a dense array of `T` to fill through a map, reserving its space.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let c = dafstore::Container::create(dir.path().join("c"))?;
    /// let mut w = c.create_dense::<f32>("m", &[2, 3])?; // space reserved now
    /// for (i, v) in w.as_mut_slice::<f32>()?.iter_mut().enumerate() {
    ///     *v = i as f32;
    /// }
    /// w.publish()?; // visible only now, complete
    /// assert_eq!(c.open_dense::<f32>("m")?[5], 5.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_dense<T: Element>(
        &self,
        name: &str,
        shape: &[u64],
    ) -> Result<DenseWriter, WriteError> {
        self.create_dense_with(name, T::DTYPE, shape, CreateOptions::default())
    }

    /// Creates a dense array of any dtype to fill through a map.
    pub fn create_dense_with(
        &self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        opts: CreateOptions,
    ) -> Result<DenseWriter, WriteError> {
        let name = ArrayName::new(name)?;
        // Refused before anything is touched ([N10]).
        crate::fs::beneath::check_path_length(&self.shared.root, &name)?;
        let meta = DenseMeta::new(dtype, shape.to_vec())?;
        let mut staged = Staged::new(self)?;
        staged.lifecycle = opts.effective_lifecycle();
        let len = meta.byte_len();
        staged.reserve(&name, len)?;
        let (path, file) = staged.create("array")?;
        failpoint::hit("stage.reserve").map_err(|e| no_space(&path, len, e, "reserve space"))?;
        match opts.allocation {
            Allocation::Reserve => crate::fs::sys::reserve(&file, len)
                .map_err(|e| no_space(&path, len, e, "reserve space"))?,
            Allocation::Holes => file
                .set_len(len)
                .map_err(|e| no_space(&path, len, e, "set length"))?,
        }
        let map = if len == 0 {
            None
        } else {
            let n = usize::try_from(len).map_err(|_| WriteError::NoSpace {
                path: path.clone(),
                bytes: len,
            })?;
            Some(crate::fs::sys::map_owned_writable(&file, n).map_err(io_at(
                &path,
                "map",
                WriteError::io,
            ))?)
        };
        Ok(DenseWriter {
            name,
            meta,
            staged,
            file,
            path,
            map,
        })
    }

    /// Writes a dense array from a slice and publishes it.
    pub fn write_dense<T: Element>(
        &self,
        name: &str,
        shape: &[u64],
        data: &[T],
    ) -> Result<(), WriteError> {
        self.write_dense_bytes(name, T::DTYPE, shape, bytemuck::cast_slice(data))
    }

    /// Writes a dense array of `bool` (stored as bytes 0/1) and publishes it.
    pub fn write_dense_bool(
        &self,
        name: &str,
        shape: &[u64],
        data: &[bool],
    ) -> Result<(), WriteError> {
        let bytes: Vec<u8> = data.iter().map(|&b| u8::from(b)).collect();
        self.write_dense_bytes(name, DType::Bool, shape, &bytes)
    }

    /// Writes a dense array from raw little-endian bytes of `dtype` and publishes it.
    pub fn write_dense_bytes(
        &self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        bytes: &[u8],
    ) -> Result<(), WriteError> {
        self.write_dense_bytes_with(name, dtype, shape, bytes, &CreateOptions::default())
    }

    /// [`Container::write_dense_bytes`] with options (the lifecycle; the allocation does not
    /// apply: the bytes are written at once).
    pub fn write_dense_bytes_with(
        &self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        bytes: &[u8],
        opts: &CreateOptions,
    ) -> Result<(), WriteError> {
        let (name, meta) = self.checked_dense(name, dtype, shape, bytes)?;
        let mut staged = Staged::new(self)?;
        staged.lifecycle = opts.effective_lifecycle();
        staged.reserve(&name, bytes.len() as u64)?;
        let crc = staged.write_file("array", bytes)?;
        staged.publish(&name, &ArrayMeta::Dense(meta), vec![("array".into(), crc)])
    }

    /// Writes a sparse array (CSR for [`Layout::Rows`], CSC for [`Layout::Columns`]) after
    /// validating every invariant ([S3]–[S5]), and publishes it.
    pub fn write_sparse<T: Element, I: IndexElement, P: IndexElement>(
        &self,
        name: &str,
        layout: Layout,
        shape: [u64; 2],
        data: &[T],
        indices: &[I],
        indptr: &[P],
    ) -> Result<(), WriteError> {
        self.write_sparse_with(
            name,
            layout,
            shape,
            data,
            indices,
            indptr,
            &CreateOptions::default(),
        )
    }

    /// [`Container::write_sparse`] with options (the lifecycle).
    #[allow(clippy::too_many_arguments)]
    pub fn write_sparse_with<T: Element, I: IndexElement, P: IndexElement>(
        &self,
        name: &str,
        layout: Layout,
        shape: [u64; 2],
        data: &[T],
        indices: &[I],
        indptr: &[P],
        opts: &CreateOptions,
    ) -> Result<(), WriteError> {
        let (name, meta) = self.checked_sparse(name, layout, shape, data, indices, indptr)?;
        let mut staged = Staged::new(self)?;
        staged.lifecycle = opts.effective_lifecycle();
        let total = [
            std::mem::size_of_val(data),
            std::mem::size_of_val(indices),
            std::mem::size_of_val(indptr),
        ]
        .iter()
        .map(|&b| b as u64)
        .sum();
        staged.reserve(&name, total)?;
        let mut crcs = Vec::new();
        for (suffix, bytes) in [
            ("data", bytemuck::cast_slice::<T, u8>(data)),
            ("indices", bytemuck::cast_slice(indices)),
            ("indptr", bytemuck::cast_slice(indptr)),
        ] {
            crcs.push((suffix.to_string(), staged.write_file(suffix, bytes)?));
        }
        staged.publish(&name, &ArrayMeta::Sparse(meta), crcs)
    }
}

impl Container {
    /// The name and metadata of a dense array to write from `bytes`, after checking the name, its
    /// path's length ([N10]), the dtype and shape, that the bytes match the shape, and bool bytes:
    /// refused before anything is written.
    pub(crate) fn checked_dense(
        &self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        bytes: &[u8],
    ) -> Result<(ArrayName, DenseMeta), WriteError> {
        let name = ArrayName::new(name)?;
        // Refused before anything is touched ([N10]).
        crate::fs::beneath::check_path_length(&self.shared.root, &name)?;
        let meta = DenseMeta::new(dtype, shape.to_vec())?;
        if bytes.len() as u64 != meta.byte_len() {
            return Err(WriteError::LengthMismatch {
                name: name.to_string(),
                shape: meta.shape.clone(),
                expected: meta.len(),
                actual: bytes.len() as u64 / dtype.itemsize() as u64,
            });
        }
        if dtype == DType::Bool {
            check_bools(&name, bytes)?;
        }
        Ok((name, meta))
    }

    /// The name and metadata of a sparse array to write, after checking the name, its path's
    /// length ([N10]) and every invariant ([S3]–[S5]) and bool byte: refused before anything is
    /// written.
    pub(crate) fn checked_sparse<T: Element, I: IndexElement, P: IndexElement>(
        &self,
        name: &str,
        layout: Layout,
        shape: [u64; 2],
        data: &[T],
        indices: &[I],
        indptr: &[P],
    ) -> Result<(ArrayName, SparseMeta), WriteError> {
        let name = ArrayName::new(name)?;
        // Refused before anything is touched ([N10]).
        crate::fs::beneath::check_path_length(&self.shared.root, &name)?;
        // nnz: when indices and the end of indptr agree, they define it (so a short `data` is
        // reported as `data`); otherwise `data` does (and the disagreeing one is reported).
        let ptr_end = indptr.last().and_then(|p| p.to_u64());
        let nnz = match ptr_end {
            Some(end) if end == indices.len() as u64 => end,
            _ => data.len() as u64,
        };
        let meta = SparseMeta::new(T::DTYPE, I::DTYPE, P::DTYPE, shape, nnz, layout)?;
        let sparse_err = |source| WriteError::Sparse {
            name: name.to_string(),
            source,
        };
        crate::format::sparse::validate(
            &meta,
            data.len() as u64,
            index_slice(indices),
            index_slice(indptr),
        )
        .map_err(sparse_err)?;
        if T::DTYPE == DType::Bool {
            check_bools(&name, bytemuck::cast_slice(data))?;
        }
        Ok((name, meta))
    }
}

/// Views a typed index slice as an [`IndexSlice`]. `I::DTYPE` names `I` itself, so each cast is
/// from a type to itself and cannot fail.
fn index_slice<I: IndexElement>(s: &[I]) -> IndexSlice<'_> {
    match I::DTYPE {
        DType::Int32 => IndexSlice::I32(bytemuck::cast_slice(s)),
        DType::UInt32 => IndexSlice::U32(bytemuck::cast_slice(s)),
        DType::UInt64 => IndexSlice::U64(bytemuck::cast_slice(s)),
        _ => IndexSlice::I64(bytemuck::cast_slice(s)),
    }
}

/// The prefix and version of a staged array's token ([`DenseWriter::token`]).
const TOKEN_PREFIX: &str = "dafstore-staged:1:";

impl DenseWriter {
    /// A token with which other processes fill this array in place before it is published
    /// ([`Container::open_staged`]): several processes (a pool, Dask workers) write their parts
    /// of one big output, and this writer publishes it when all are done, or discards it. The
    /// token names this writer's staged file; it is valid while this writer lives (a writer that
    /// is dropped, or whose process dies, removes the file). Fillers must be done (their maps
    /// dropped) before [`DenseWriter::publish`], which checksums what the file then holds.
    pub fn token(&self) -> String {
        let shape: Vec<String> = self.meta.shape.iter().map(u64::to_string).collect();
        format!(
            "{TOKEN_PREFIX}{}/{}:{}:{}:{}",
            self.staged.session_id(),
            self.staged.stem(),
            self.meta.dtype.name(),
            shape.join(","),
            self.name.as_str()
        )
    }
}

/// A staged array of another writer, opened by its token to fill part of it in place
/// ([`Container::open_staged`]). Writes go straight to the staged file; nothing is visible to
/// readers until that writer publishes.
pub struct StagedFill {
    name: String,
    meta: DenseMeta,
    map: Option<MmapMut>,
}

impl StagedFill {
    /// The array's name (as it will be published).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Shape.
    pub fn shape(&self) -> &[u64] {
        &self.meta.shape
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.meta.dtype
    }

    /// The bytes, as filled so far by every filler.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or(&mut [])
    }

    /// The elements, typed; `T` must view the array's dtype.
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T], WriteError> {
        let bytes = self.map.as_deref_mut().unwrap_or(&mut []);
        typed_mut(
            bytes,
            self.meta.dtype,
            std::path::Path::new(&self.name),
            &self.name,
        )
    }
}

/// `bytes` (a whole writable map of array `name`, of `dtype`) as elements of `T`, which must
/// view that dtype ([T1]); `path` names the file in the error.
fn typed_mut<'a, T: Element>(
    bytes: &'a mut [u8],
    dtype: DType,
    path: &std::path::Path,
    name: &str,
) -> Result<&'a mut [T], WriteError> {
    if T::DTYPE != dtype {
        return Err(WriteError::Meta(crate::error::MetaError::Invalid {
            path: path.to_path_buf(),
            detail: format!("array {name:?} is {dtype}, not {}", T::DTYPE),
            rule: "T1",
        }));
    }
    if bytes.is_empty() {
        return Ok(&mut []);
    }
    // The map is page-aligned and holds whole elements: the cast cannot fail.
    Ok(bytemuck::try_cast_slice_mut(bytes).unwrap_or(&mut []))
}

impl Container {
    /// Opens the staged array of another writer by its [`DenseWriter::token`], to fill part of it
    /// in place (shared map of its staged file). Refused with [`OpenError::Staged`] if the token
    /// is not one, names another container's or a finished writer's file (published, discarded,
    /// or its process dead), or its file does not have the token's size.
    pub fn open_staged(&self, token: &str) -> Result<StagedFill, OpenError> {
        let bad = |why: String| OpenError::Staged {
            container: self.shared.root.clone(),
            token: token.chars().take(200).collect(),
            why,
        };
        let rest = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| bad(format!("it does not start with {TOKEN_PREFIX:?}")))?;
        let mut parts = rest.splitn(4, ':');
        let (Some(staging), Some(dtype), Some(shape), Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("it has fewer than 4 fields".into()));
        };
        let (id, stem) = staging
            .split_once('/')
            .filter(|(id, stem)| {
                crate::format::is_session_id(id)
                    && !stem.is_empty()
                    && stem.len() <= 20
                    && stem.bytes().all(|b| b.is_ascii_digit())
            })
            .ok_or_else(|| bad(format!("{staging:?} is not <session>/<number>")))?;
        let name = ArrayName::new(name)?;
        let dtype =
            DType::from_name(dtype).ok_or_else(|| bad(format!("unknown dtype {dtype:?}")))?;
        let shape = if shape.is_empty() {
            Vec::new()
        } else {
            shape
                .split(',')
                .map(|d| d.parse::<u64>())
                .collect::<Result<Vec<u64>, _>>()
                .map_err(|e| bad(format!("shape {shape:?}: {e}")))?
        };
        let meta = DenseMeta::new(dtype, shape).map_err(|e| bad(e.to_string()))?;
        let gone = || bad("its writer has published or discarded it, or died".into());
        if !self.shared.session_alive(id) {
            return Err(gone());
        }
        let dir = self
            .shared
            .staging_of(id)
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(gone)?;
        let leaf = std::ffi::OsString::from(format!("{stem}.array"));
        let (file, md) = dir
            .open_file(&leaf, true)
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(gone)?;
        let len = meta.byte_len();
        if md.len() != len {
            return Err(bad(format!(
                "its file holds {} bytes, the token's shape {} bytes",
                md.len(),
                len
            )));
        }
        let map = if len == 0 {
            None
        } else {
            let n = usize::try_from(len).map_err(|_| bad("too large to map".into()))?;
            Some(
                crate::fs::sys::map_staged_shared(&file, n)
                    .map_err(|e| bad(format!("map: {e}")))?,
            )
        };
        Ok(StagedFill {
            name: name.to_string(),
            meta,
            map,
        })
    }
}
