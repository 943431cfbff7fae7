//! Batch publish (SPEC [W11]): many entries staged together and published all or none, with one
//! catalog transaction for every intent, one sync of the staged files, one `fsync` per directory
//! that receives files and one transaction flipping every entry `live`. For many small entries
//! (daf datasets hold thousands of small vectors) this is what makes writing them fast, and it is
//! what an update of several entries of a dataset needs: a dafstore reader sees all of them or
//! none.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;

use crate::catalog::{FileRecord, Lifecycle};
use crate::container::Container;
use crate::error::WriteError;
use crate::failpoint;
use crate::format::dtype::{DType, Element, IndexElement};
use crate::format::meta::{render_yaml, ArrayMeta, Layout};
use crate::format::name::ArrayName;
use crate::fs::beneath::Dir;
use crate::protocol::batch::BatchEntry;
use crate::writer::{no_space, CreateOptions};

/// Entries staged to be published together, all or none ([`Container::batch`]).
///
/// Each `write_*` stages one entry (its files are written to this session's staging directory at
/// once, not synced yet); [`Batch::publish`] syncs them all, then publishes every entry in one
/// catalog transaction. Dropping the batch (or [`Batch::discard`]) removes the staged files and
/// publishes nothing. A `write_*` that fails leaves the batch as it was (that entry is not in
/// it).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let c = dafstore::Container::create(dir.path().join("c"))?;
/// let mut b = c.batch()?;
/// for i in 0..100u32 {
///     b.write_dense::<f32>(&format!("v{i}"), &[4], &[i as f32; 4])?;
/// }
/// b.publish()?; // all 100 are visible now, none before
/// assert_eq!(c.open_dense::<f32>("v7")?[3], 7.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Batch {
    container: Container,
    /// The fork epoch of the process that staged the files (SPEC [P2]).
    epoch: u64,
    /// This session's staging directory, reached without following a link ([N7]).
    dir: Dir,
    lifecycle: Option<Lifecycle>,
    entries: Vec<BatchEntry>,
    names: HashSet<String>,
    /// Every staged file's leaf in `dir`, removed on drop unless published.
    leaves: Vec<OsString>,
    /// Whether the container had limits when the batch began: then every byte is reserved
    /// before it is written ([E3]).
    limited: bool,
    /// The stem of the batch's one reservation (`<session>/<stem>`), and its bytes.
    reservation_stem: String,
    reserved: u64,
    /// Bytes of all staged data files so far.
    staged_bytes: u64,
    /// Published (or handed to recovery): nothing to remove on drop.
    done: bool,
}

impl Container {
    /// Starts a batch of entries to publish all or none, persistent (SPEC [W11]); see [`Batch`].
    pub fn batch(&self) -> Result<Batch, WriteError> {
        self.batch_with(&CreateOptions::default())
    }

    /// [`Container::batch`] with options: the lifecycle of every entry of the batch (the
    /// allocation does not apply: the bytes are written at once).
    pub fn batch_with(&self, opts: &CreateOptions) -> Result<Batch, WriteError> {
        self.shared.writable()?;
        // Creates `staging/<session>` if missing, never `.dafstore` or `staging` ([C5]).
        let dir = self.shared.own_staging()?;
        let limited = self.shared.catalog().limits()?.any();
        Ok(Batch {
            container: self.clone(),
            epoch: crate::fs::sys::fork_epoch(),
            dir,
            lifecycle: opts.effective_lifecycle(),
            entries: Vec::new(),
            names: HashSet::new(),
            leaves: Vec::new(),
            limited,
            reservation_stem: self.shared.next_stem(),
            reserved: 0,
            staged_bytes: 0,
            done: false,
        })
    }
}

impl Batch {
    /// How many entries are staged.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is staged.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reserves room for `bytes` of data files in all, staged and to come, under the container's
    /// limits (SPEC [E3]; nothing without limits): one reservation up front instead of one
    /// enlargement per entry. Evicts unreferenced `cached` entries if needed, or fails with
    /// [`WriteError::Capacity`].
    pub fn reserve(&mut self, bytes: u64) -> Result<(), WriteError> {
        if !self.limited || bytes <= self.reserved {
            return Ok(());
        }
        let first = self
            .entries
            .first()
            .map(|e| e.name.clone())
            .unwrap_or(ArrayName::new("batch")?);
        self.container
            .shared
            .make_room(&first, &self.reservation_stem, bytes)?;
        self.reserved = bytes;
        Ok(())
    }

    /// Stages a dense array of `T` (see [`Batch`]).
    pub fn write_dense<T: Element>(
        &mut self,
        name: &str,
        shape: &[u64],
        data: &[T],
    ) -> Result<(), WriteError> {
        self.write_dense_bytes(name, T::DTYPE, shape, bytemuck::cast_slice(data))
    }

    /// Stages a dense array from raw little-endian bytes of `dtype` (see [`Batch`]). Refused
    /// before anything is written: a name already in the batch ([`WriteError::DuplicateInBatch`]),
    /// an invalid name, dtype or shape, bytes that do not match the shape, bool bytes other than
    /// 0 and 1.
    pub fn write_dense_bytes(
        &mut self,
        name: &str,
        dtype: DType,
        shape: &[u64],
        bytes: &[u8],
    ) -> Result<(), WriteError> {
        let (name, meta) = self.container.checked_dense(name, dtype, shape, bytes)?;
        if self.names.contains(name.as_str()) {
            return Err(WriteError::DuplicateInBatch {
                name: name.to_string(),
            });
        }
        self.stage(name, ArrayMeta::Dense(meta), &[("array", bytes)])
    }

    /// Stages a sparse array (CSR for [`Layout::Rows`], CSC for [`Layout::Columns`]) after
    /// validating every invariant ([S3]–[S5]), as [`Container::write_sparse`] does (see
    /// [`Batch`]); a name already in the batch is refused.
    pub fn write_sparse<T: Element, I: IndexElement, P: IndexElement>(
        &mut self,
        name: &str,
        layout: Layout,
        shape: [u64; 2],
        data: &[T],
        indices: &[I],
        indptr: &[P],
    ) -> Result<(), WriteError> {
        let (name, meta) = self
            .container
            .checked_sparse(name, layout, shape, data, indices, indptr)?;
        if self.names.contains(name.as_str()) {
            return Err(WriteError::DuplicateInBatch {
                name: name.to_string(),
            });
        }
        self.stage(
            name,
            ArrayMeta::Sparse(meta),
            &[
                ("data", bytemuck::cast_slice(data)),
                ("indices", bytemuck::cast_slice(indices)),
                ("indptr", bytemuck::cast_slice(indptr)),
            ],
        )
    }

    /// Writes one entry's files (data files, then its metadata file with their checksums) to
    /// the staging directory, after reserving their bytes ([E3]). On error, removes what it wrote
    /// of this entry.
    fn stage(
        &mut self,
        name: ArrayName,
        meta: ArrayMeta,
        parts: &[(&'static str, &[u8])],
    ) -> Result<(), WriteError> {
        let total: u64 = parts.iter().map(|(_, b)| b.len() as u64).sum();
        self.reserve(self.staged_bytes + total)?;
        let stem = self.container.shared.next_stem();
        let before = self.leaves.len();
        let result = self.stage_files(&stem, &meta, parts);
        match result {
            Ok(files) => {
                self.staged_bytes += total;
                self.names.insert(name.to_string());
                self.entries.push(BatchEntry {
                    name,
                    meta,
                    files,
                    stem,
                    lifecycle: self.lifecycle,
                });
                Ok(())
            }
            Err(e) => {
                for leaf in self.leaves.drain(before..) {
                    let _ = self.dir.remove_file(&leaf);
                }
                Err(e)
            }
        }
    }

    fn stage_files(
        &mut self,
        stem: &str,
        meta: &ArrayMeta,
        parts: &[(&'static str, &[u8])],
    ) -> Result<Vec<FileRecord>, WriteError> {
        let mut crcs = Vec::with_capacity(parts.len());
        let mut files = Vec::with_capacity(parts.len());
        for (suffix, bytes) in parts {
            let crc = crc32c::crc32c(bytes);
            self.write_file(&format!("{stem}.{suffix}"), bytes)?;
            crcs.push((suffix.to_string(), crc));
            files.push(FileRecord {
                suffix: suffix.to_string(),
                size: bytes.len() as u64,
                crc32c: Some(crc),
            });
        }
        let yaml = render_yaml(meta, Some(&crcs));
        self.write_file(&format!("{stem}.yaml"), yaml.as_bytes())?;
        Ok(files)
    }

    /// Creates `leaf` in the staging directory and writes `bytes` to it; not synced here (the
    /// whole batch is synced once before its intent, [W11] step 1).
    fn write_file(&mut self, leaf: &str, bytes: &[u8]) -> Result<(), WriteError> {
        let leaf = OsString::from(leaf);
        let len = bytes.len() as u64;
        // The path is made only for an error.
        let dir = &self.dir;
        let err = |op: &'static str, leaf: &OsString| {
            let path = dir.path().join(leaf);
            move |e| no_space(&path, len, e, op)
        };
        let mut file = dir
            .create_new(&leaf)
            .map_err(|e| err("create staging file", &leaf)(e))?;
        self.leaves.push(leaf.clone());
        failpoint::hit("stage.write").map_err(|e| err("write", &leaf)(e))?;
        file.write_all(bytes).map_err(|e| err("write", &leaf)(e))
    }

    /// Publishes every staged entry, all or none (SPEC [W11]): syncs the staged files, takes the
    /// stripes of all names, records every intent in one catalog transaction (the commit point),
    /// renames the files into place (each entry's metadata file last), syncs each directory that
    /// received files once, and flips every entry `live` in one transaction.
    ///
    /// An error means nothing was published (the staged files are removed); success means every
    /// entry was, as for a single publish ([W9]). An empty batch publishes nothing and succeeds.
    pub fn publish(mut self) -> Result<(), WriteError> {
        if self.epoch != crate::fs::sys::fork_epoch() {
            // Staged under the parent's session ([P2]).
            return Err(WriteError::ForkedWriter {
                name: self
                    .entries
                    .first()
                    .map_or_else(|| "(batch)".to_string(), |e| e.name.to_string()),
            });
        }
        if self.entries.is_empty() {
            return Ok(());
        }
        // [W2] for the whole batch: every staged file and the staging directory are durable
        // before the intent. One `syncfs` instead of an `fsync` per file.
        self.dir.sync_fs()?;
        let shared = &self.container.shared;
        let reservation = (self.reserved > 0).then_some(self.reservation_stem.as_str());
        let result = shared.commit_batch(&self.entries, reservation);
        match &result {
            Ok(()) => self.done = true,
            Err(_) => {
                // Once the intent is recorded the staged files belong to recovery: keep them.
                let first = &self.entries[0];
                let ours = format!("{}/{}", shared.session_id(), first.stem);
                if let Ok(Some(rec)) = shared.catalog().get(first.name.as_str()) {
                    self.done = rec.state == crate::catalog::ArrayState::Publishing
                        && rec.staging.as_deref() == Some(ours.as_str());
                }
            }
        }
        result
    }

    /// Discards the batch: removes its staged files, publishes nothing (same as dropping it).
    pub fn discard(self) {}
}

impl Drop for Batch {
    fn drop(&mut self) {
        // In a forked child these are the parent's files (SPEC [P2]): leave them.
        if self.done || self.epoch != crate::fs::sys::fork_epoch() {
            return;
        }
        for leaf in &self.leaves {
            let _ = self.dir.remove_file(leaf);
        }
        if self.reserved > 0 {
            // Best effort: a reservation left behind is dropped by gc once this session is dead.
            let staging = format!(
                "{}/{}",
                self.container.shared.session_id(),
                self.reservation_stem
            );
            let _ = self.container.shared.catalog().unreserve(&staging);
        }
    }
}
