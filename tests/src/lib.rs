//! Shared helpers of the dafstore integration tests: recursive listings of a container's array
//! files (excluding the reserved `.dafstore/`) and byte/inode snapshots of files.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

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

/// A new, empty container in a temporary directory (kept while the `TempDir` lives).
pub fn new_container() -> (tempfile::TempDir, dafstore::Container) {
    let dir = tempfile::tempdir().unwrap();
    let c = dafstore::Container::create(dir.path().join("c")).unwrap();
    (dir, c)
}

/// A new, empty container in a temporary directory, closed: its path (kept while the `TempDir`
/// lives), for tests that open it themselves or hand it to other processes.
pub fn new_container_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c");
    drop(dafstore::Container::create(&path).unwrap());
    (dir, path)
}

/// A closed container in a temporary directory holding a dense `x` (f64, shape [2, 3], values
/// 1..=6) and a sparse `m` (f32 data, i32 indices, i64 indptr, rows layout, shape [2, 3], two
/// entries): its path (kept while the `TempDir` lives).
pub fn container_with_x_and_m() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = new_container_path();
    let c = dafstore::Container::open(&path).unwrap();
    c.write_dense::<f64>("x", &[2, 3], &[1., 2., 3., 4., 5., 6.])
        .unwrap();
    c.write_sparse::<f32, i32, i64>(
        "m",
        dafstore::Layout::Rows,
        [2, 3],
        &[1., 2.],
        &[0, 2],
        &[0, 1, 2],
    )
    .unwrap();
    drop(c);
    (dir, path)
}

/// How many sessions (processes) the catalog records as holding `name`.
pub fn holders_of(c: &dafstore::Container, name: &str) -> usize {
    c.holders()
        .unwrap()
        .iter()
        .filter(|h| h.arrays.iter().any(|a| a.name == name))
        .count()
}

/// Files (not directories) under `.dafstore/staging` of the container `root`.
pub fn staging_files(root: &Path) -> Vec<PathBuf> {
    listing(&root.join(".dafstore/staging"))
        .into_iter()
        .filter(|(_, e)| !matches!(e, Entry::Dir))
        .map(|(p, _)| p)
        .collect()
}

/// A small tmpfs mounted on a temporary directory, unmounted on drop (also when a test fails).
pub struct Tmpfs {
    /// The mount point.
    pub mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `2m`); `None` (and a line on stderr saying the test is
    /// skipped) when this process may not mount one (not root).
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs (not root?); this test needs root");
            return None;
        }
        Some(Tmpfs { mnt, _dir: dir })
    }

    /// Remounts it read-only.
    pub fn remount_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = Command::new("umount");
            if lazy {
                cmd.arg("-l");
            }
            cmd.arg(&self.mnt)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        // Lazy as a last resort: a file still open (a failing test's handles) keeps it busy.
        if !umount(false) {
            umount(true);
        }
    }
}

/// The `dafctl` binary of this build (built on first use).
pub fn dafctl_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // A test runs as <target>/<profile>/deps/<test>-<hash>.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>/deps/<test>")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("<target>").to_path_buf();
        let profile = profile_dir
            .file_name()
            .and_then(OsStr::to_str)
            .expect("profile directory name");
        let profile = match profile {
            "debug" => "dev",
            other => other,
        };
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "dafctl", "--profile", profile])
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(workspace)
            .status()
            .expect("run cargo build -p dafctl");
        assert!(status.success(), "cargo build -p dafctl failed: {status}");
        let bin = profile_dir.join("dafctl");
        assert!(bin.is_file(), "{} missing after the build", bin.display());
        bin
    })
}
