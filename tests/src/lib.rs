//! Shared helpers of the dafstore integration tests: recursive listings of a container's array
//! files (excluding the reserved `.dafstore/`) and byte/inode snapshots of files.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a listed entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Dir,
    /// A regular file with its length.
    File(u64),
    /// A symbolic link with its target.
    Symlink(PathBuf),
}

/// Every entry under `root` (relative paths, recursively, symlinks not followed), skipping the
/// reserved `.dafstore` directory at the top level.
pub fn listing(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path.strip_prefix(root).expect("under root").to_path_buf();
        if dir == root && e.file_name() == ".dafstore" {
            continue;
        }
        let md = fs::symlink_metadata(&path).expect("lstat");
        if md.file_type().is_symlink() {
            out.insert(rel, Entry::Symlink(fs::read_link(&path).expect("readlink")));
        } else if md.is_dir() {
            out.insert(rel, Entry::Dir);
            walk(root, &path, out);
        } else {
            out.insert(rel, Entry::File(md.len()));
        }
    }
}

/// A file's bytes and identity, to prove it was not touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSnapshot {
    /// Contents.
    pub bytes: Vec<u8>,
    /// Inode number.
    pub ino: u64,
    /// Modification time, seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Change time (metadata changes, e.g. a rename or chmod), seconds and nanoseconds.
    pub ctime: (i64, i64),
}

/// Snapshot of `path`.
pub fn snapshot(path: &Path) -> FileSnapshot {
    let md = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    FileSnapshot {
        bytes: fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
        ino: md.ino(),
        mtime: (md.mtime(), md.mtime_nsec()),
        ctime: (md.ctime(), md.ctime_nsec()),
    }
}

/// The inode number of `path` (not following a symlink).
pub fn inode(path: &Path) -> u64 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .ino()
}

/// Little-endian bytes of a slice of numbers, built by hand (independent of the engine).
pub fn le_bytes<T: ToLeBytes>(values: &[T]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le()).collect()
}

/// Numbers that can be written as little-endian bytes.
pub trait ToLeBytes {
    /// The little-endian bytes.
    fn to_le(&self) -> Vec<u8>;
}

macro_rules! to_le {
    ($($t:ty),*) => {
        $(impl ToLeBytes for $t {
            fn to_le(&self) -> Vec<u8> {
                self.to_le_bytes().to_vec()
            }
        })*
    };
}

to_le!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl ToLeBytes for half::f16 {
    fn to_le(&self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

/// The name of the session lock files (`<id>.lock`) in `.dafstore/sessions` of `root`.
pub fn session_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = fs::read_dir(root.join(".dafstore/sessions"))
        .expect("sessions dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".lock").map(str::to_string))
        .collect();
    ids.sort();
    ids
}

impl ToLeBytes for dafstore::Bool8 {
    fn to_le(&self) -> Vec<u8> {
        vec![self.0]
    }
}
