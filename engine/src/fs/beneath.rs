//! Paths under a container, resolved one component at a time relative to directory descriptors
//! and never through a link (SPEC [N7]), never into another container ([C4]), and never with an
//! open that can block ([N9]).
//!
//! `O_NOFOLLOW` guards only the last component of a path: a directory component replaced by a
//! link would still be followed by a plain `open("a/b/c.array")`. So every access to a file under
//! the container goes through a [`Dir`]: the container root is opened once, each directory
//! component is opened with `openat(O_DIRECTORY | O_NOFOLLOW)` relative to its parent, and files
//! are opened, created, renamed and unlinked relative to the descriptor of their directory. A link
//! anywhere on the way, a directory holding `.dafstore` (a nested container), or a file that is
//! not a regular file is a typed [`PathError`] naming the path.

use std::ffi::{OsStr, OsString};
use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::PathError;
use crate::format::name::ArrayName;
use crate::fs::sys;

/// Linux's `PATH_MAX` (bytes, including the terminating NUL) ([N10]).
pub const PATH_MAX: usize = 4096;

/// The longest file suffix an array name produces (`.indices`) ([N5], [N10]).
const LONGEST_SUFFIX: usize = ".indices".len();

/// What kind of file system entry `ft` is, in words for messages.
pub(crate) fn kind_name(ft: &FileType) -> &'static str {
    if ft.is_symlink() {
        "symbolic link"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_file() {
        "regular file"
    } else if ft.is_fifo() {
        "FIFO (named pipe)"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

/// An open directory under a container (or the container itself), with the path it was reached
/// by (for messages only: every operation is relative to the descriptor).
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens `root` (a container directory, already resolved) as the start of every walk.
    pub(crate) fn root(root: &Path) -> Result<Dir, PathError> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK)
            .open(root)
            .map_err(|e| PathError::io(root, "open directory", e))?;
        Ok(Dir {
            fd: f.into(),
            path: root.to_path_buf(),
        })
    }

    /// The path this directory was reached by.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The type of entry `name` (never following a link); `None` if there is none.
    pub(crate) fn entry_type(&self, name: &OsStr) -> Result<Option<FileType>, PathError> {
        let flags = libc::O_PATH | libc::O_NOFOLLOW;
        match sys::openat(self.fd.as_fd(), name, flags, 0) {
            Ok(fd) => File::from(fd)
                .metadata()
                .map(|m| Some(m.file_type()))
                .map_err(|e| PathError::io(self.path.join(name), "stat", e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PathError::io(self.path.join(name), "stat", e)),
        }
    }

    /// Whether this directory holds a `.dafstore` entry of any type (it is a container).
    pub(crate) fn holds_container(&self) -> Result<bool, PathError> {
        Ok(self
            .entry_type(OsStr::new(crate::format::RESERVED_DIR))?
            .is_some())
    }

    /// The error for entry `name` that could not be opened as `expected`: a link, the wrong type,
    /// or the OS error.
    fn refused(
        &self,
        name: &OsStr,
        expected: &'static str,
        op: &'static str,
        e: io::Error,
    ) -> PathError {
        let path = self.path.join(name);
        match self.entry_type(name) {
            Ok(Some(ft)) if ft.is_symlink() => PathError::Link { path },
            Ok(Some(ft)) if kind_name(&ft) != expected => PathError::WrongType {
                path,
                found: kind_name(&ft),
                expected,
            },
            _ => PathError::io(path, op, e),
        }
    }

    /// Opens the sub-directory `name` without following a link. `None` if there is none; a
    /// directory holding `.dafstore` is refused ([C4]) unless `nested_ok`.
    fn sub_checked(&self, name: &OsStr, nested_ok: bool) -> Result<Option<Dir>, PathError> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        match sys::openat(self.fd.as_fd(), name, flags, 0) {
            Ok(fd) => {
                let d = Dir {
                    fd,
                    path: self.path.join(name),
                };
                if !nested_ok && d.holds_container()? {
                    return Err(PathError::NestedContainer { path: d.path });
                }
                Ok(Some(d))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.refused(name, "directory", "open directory", e)),
        }
    }

    /// Opens the sub-directory `name` (see [`Dir::sub_checked`]), refusing a nested container.
    pub(crate) fn sub(&self, name: &str) -> Result<Option<Dir>, PathError> {
        self.sub_checked(OsStr::new(name), false)
    }

    /// Opens the sub-directory `name`, creating it if missing (and syncing this directory).
    pub(crate) fn sub_or_create(&self, name: &str) -> Result<Dir, PathError> {
        for _ in 0..8 {
            if let Some(d) = self.sub(name)? {
                return Ok(d);
            }
            match sys::mkdirat(self.fd.as_fd(), OsStr::new(name), 0o777) {
                Ok(()) => self.sync()?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(PathError::io(self.path.join(name), "create directory", e)),
            }
        }
        Err(PathError::io(
            self.path.join(name),
            "create directory",
            io::Error::other("it keeps disappearing"),
        ))
    }

    /// Opens the regular file `name` for reading (or reading and writing) without following a
    /// link and without blocking (a FIFO or device is refused after `fstat`, never read) ([N9]).
    /// `None` if there is none.
    pub(crate) fn open_file(
        &self,
        name: &OsStr,
        write: bool,
    ) -> Result<Option<(File, Metadata)>, PathError> {
        let access = if write { libc::O_RDWR } else { libc::O_RDONLY };
        let flags = access | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        let path = || self.path.join(name);
        let file = match sys::openat(self.fd.as_fd(), name, flags, 0) {
            Ok(fd) => File::from(fd),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.refused(name, "regular file", "open", e)),
        };
        let md = file
            .metadata()
            .map_err(|e| PathError::io(path(), "stat", e))?;
        if !md.is_file() {
            return Err(PathError::WrongType {
                path: path(),
                found: kind_name(&md.file_type()),
                expected: "regular file",
            });
        }
        Ok(Some((file, md)))
    }

    /// Opens the regular file `name` read-write, creating it if missing (mode 0666 before the
    /// umask), without following a link and without blocking; anything but a regular file there
    /// is refused ([N7], [N9]).
    pub(crate) fn open_or_create_file(&self, name: &OsStr) -> Result<(File, Metadata), PathError> {
        let flags =
            libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        let file = match sys::openat(self.fd.as_fd(), name, flags, 0o666) {
            Ok(fd) => File::from(fd),
            Err(e) => return Err(self.refused(name, "regular file", "open", e)),
        };
        let md = file
            .metadata()
            .map_err(|e| PathError::io(self.path.join(name), "stat", e))?;
        if !md.is_file() {
            return Err(PathError::WrongType {
                path: self.path.join(name),
                found: kind_name(&md.file_type()),
                expected: "regular file",
            });
        }
        Ok((file, md))
    }

    /// Creates the new regular file `name` (refused if anything is there), read-write.
    pub(crate) fn create_new(&self, name: &OsStr) -> io::Result<File> {
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
        sys::openat(self.fd.as_fd(), name, flags, 0o666).map(File::from)
    }

    /// Unlinks the file (or link) `name`; nothing there is fine. Never follows a link.
    pub(crate) fn remove_file(&self, name: &OsStr) -> Result<(), PathError> {
        match sys::unlinkat(self.fd.as_fd(), name, 0) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PathError::io(self.path.join(name), "remove", e)),
        }
    }

    /// Removes the empty directory `name`.
    pub(crate) fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        sys::unlinkat(self.fd.as_fd(), name, libc::AT_REMOVEDIR)
    }

    /// Renames `from` in this directory to `to` in `dir` (replacing the entry `to` itself).
    pub(crate) fn rename(&self, from: &OsStr, dir: &Dir, to: &OsStr) -> io::Result<()> {
        sys::renameat(self.fd.as_fd(), from, dir.fd.as_fd(), to)
    }

    /// `fsync`s the directory so creations, renames and unlinks in it are durable.
    pub(crate) fn sync(&self) -> Result<(), PathError> {
        self.fd
            .try_clone()
            .map(File::from)
            .and_then(|f| f.sync_all())
            .map_err(|e| PathError::io(&self.path, "sync directory", e))
    }

    /// The directory's device and inode (`fstat`).
    pub(crate) fn id(&self) -> Result<(u64, u64), PathError> {
        use std::os::unix::fs::MetadataExt;
        self.fd
            .try_clone()
            .map(File::from)
            .and_then(|f| f.metadata())
            .map(|m| (m.dev(), m.ino()))
            .map_err(|e| PathError::io(&self.path, "stat directory", e))
    }

    /// The directory's size in bytes as `fstat` reports it (on tmpfs about 20 bytes per entry,
    /// on ext4 and xfs the blocks of its entries): a bound of how long listing it takes.
    pub(crate) fn size(&self) -> Result<u64, PathError> {
        self.fd
            .try_clone()
            .map(File::from)
            .and_then(|f| f.metadata())
            .map(|m| m.len())
            .map_err(|e| PathError::io(&self.path, "stat directory", e))
    }

    /// Syncs the whole file system holding this directory (`syncfs`): every file and directory
    /// written on it so far, this one's entries included, is durable when it returns.
    pub(crate) fn sync_fs(&self) -> Result<(), PathError> {
        sys::syncfs(self.fd.as_fd()).map_err(|e| PathError::io(&self.path, "sync file system", e))
    }

    /// The names in this directory (`.` and `..` excluded). The listing goes through the
    /// descriptor (`/proc/self/fd`), so it is this directory's even if its path was swapped;
    /// without `/proc`, through the path (names only: every use of a name is relative to the
    /// descriptor, so a swapped path cannot make anything outside be touched).
    pub(crate) fn names(&self) -> Result<Vec<OsString>, PathError> {
        use std::os::fd::AsRawFd;
        let via_fd = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        let entries = std::fs::read_dir(&via_fd)
            .or_else(|_| std::fs::read_dir(&self.path))
            .map_err(|e| PathError::io(&self.path, "list directory", e))?;
        let mut out = Vec::new();
        for e in entries {
            out.push(
                e.map_err(|e| PathError::io(&self.path, "list directory", e))?
                    .file_name(),
            );
        }
        Ok(out)
    }

    /// Removes the directory `name` and the files in it, never following a link: a link inside
    /// is removed itself, a link or non-directory at `name` is refused ([N7]). Sub-directories
    /// are removed the same way.
    pub(crate) fn remove_tree(&self, name: impl AsRef<OsStr>) -> Result<bool, PathError> {
        let name = name.as_ref();
        let Some(d) = self.sub_checked(name, true)? else {
            return Ok(false);
        };
        for n in d.names()? {
            match d.entry_type(&n)? {
                Some(ft) if ft.is_dir() => {
                    d.remove_tree(&n)?;
                }
                Some(_) => d.remove_file(&n)?,
                None => {}
            }
        }
        match self.remove_dir(name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(PathError::io(self.path.join(name), "remove directory", e)),
        }
    }
}

/// Opens `.dafstore/<sub>` (or `.dafstore` itself for `""`) of the container `root` without
/// following a link. Never creates it: a missing one means the container was removed ([C5]).
pub(crate) fn reserved(root: &Path, sub: &str) -> Result<Dir, PathError> {
    let reserved = root.join(crate::format::RESERVED_DIR);
    let gone = |path: PathBuf| PathError::ContainerRemoved { path };
    let top = match Dir::root(root) {
        Ok(d) => d,
        Err(PathError::Io(crate::error::IoError { source, .. }))
            if source.kind() == io::ErrorKind::NotFound =>
        {
            return Err(gone(reserved))
        }
        Err(e) => return Err(e),
    };
    let dir = top
        .sub_checked(OsStr::new(crate::format::RESERVED_DIR), true)?
        .ok_or_else(|| gone(reserved.clone()))?;
    if sub.is_empty() {
        return Ok(dir);
    }
    reserved_in(&dir, sub)
}

/// Several of `.dafstore`'s directories, `.dafstore` itself walked to once: each as [`reserved`]
/// opens it (no link followed, never created), `None` where it cannot be opened.
pub(crate) fn reserved_some<const N: usize>(root: &Path, subs: [&str; N]) -> [Option<Dir>; N] {
    let top = reserved(root, "").ok();
    subs.map(|sub| top.as_ref().and_then(|d| reserved_in(d, sub).ok()))
}

/// `.dafstore/<sub>` opened through `.dafstore` itself (`reserved(root, "")`), as [`reserved`]
/// opens it: without following a link, never created.
fn reserved_in(reserved: &Dir, sub: &str) -> Result<Dir, PathError> {
    reserved
        .sub_checked(OsStr::new(sub), true)?
        .ok_or_else(|| PathError::ContainerRemoved {
            path: reserved.path().join(sub),
        })
}

/// Refuses a catalog file (`catalog.sqlite`, `-wal`, `-shm`) that is a link or not a regular file
/// before SQLite opens it: SQLite would follow the link, or fail on a FIFO with a bare "disk I/O
/// error" ([N7], [N9]). Absent files are fine (SQLite makes `-wal` and `-shm`).
pub(crate) fn check_catalog_files(root: &Path) -> Result<(), PathError> {
    let dir = reserved(root, "")?;
    for file in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let path = || dir.path().join(file);
        match dir.entry_type(OsStr::new(file))? {
            None => {}
            Some(ft) if ft.is_file() => {}
            Some(ft) if ft.is_symlink() => return Err(PathError::Link { path: path() }),
            Some(ft) => {
                return Err(PathError::WrongType {
                    path: path(),
                    found: kind_name(&ft),
                    expected: "regular file",
                })
            }
        }
    }
    Ok(())
}

/// Opens directory `rel` (`/`-separated components, may be empty) under the container `root`,
/// component by component, never following a link and refusing a directory that holds another
/// container ([N7], [C4]). `None` if a component is missing.
pub(crate) fn open_dir(root: &Path, rel: &str) -> Result<Option<Dir>, PathError> {
    let mut dir = Dir::root(root)?;
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        match dir.sub(comp)? {
            Some(d) => dir = d,
            None => return Ok(None),
        }
    }
    Ok(Some(dir))
}

/// Like [`open_dir`], creating missing components (each parent synced after a creation).
pub(crate) fn create_dir_all(root: &Path, rel: &str) -> Result<Dir, PathError> {
    let mut dir = Dir::root(root)?;
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        dir = dir.sub_or_create(comp)?;
    }
    Ok(dir)
}

/// The directory part of `name` (`""` for a top-level name).
pub(crate) fn dir_part(name: &ArrayName) -> &str {
    name.as_str().rsplit_once('/').map_or("", |(d, _)| d)
}

/// The file name of `name`'s file with `suffix` in its directory.
pub(crate) fn leaf(name: &ArrayName, suffix: &str) -> OsString {
    let last = name.as_str().rsplit('/').next().unwrap_or_default();
    OsString::from(format!("{last}.{suffix}"))
}

/// Opens the directory holding `name`'s files ([`open_dir`]).
pub(crate) fn array_dir(root: &Path, name: &ArrayName) -> Result<Option<Dir>, PathError> {
    open_dir(root, dir_part(name))
}

/// Opens `name`'s file with `suffix` under `root` ([`Dir::open_file`]); `None` if it (or its
/// directory) is missing.
pub(crate) fn open_array_file(
    root: &Path,
    name: &ArrayName,
    suffix: &str,
    write: bool,
) -> Result<Option<(File, Metadata)>, PathError> {
    match array_dir(root, name)? {
        Some(d) => d.open_file(&leaf(name, suffix), write),
        None => Ok(None),
    }
}

/// Refuses a name whose longest file path under `root` would not fit `PATH_MAX` ([N10]), before
/// anything is touched.
pub(crate) fn check_path_length(root: &Path, name: &ArrayName) -> Result<(), PathError> {
    let len = root.as_os_str().as_bytes().len() + 1 + name.as_str().len() + LONGEST_SUFFIX;
    if len >= PATH_MAX {
        return Err(PathError::TooLong {
            path: name.file_path(root, "indices"),
            len,
            max: PATH_MAX - 1,
        });
    }
    Ok(())
}

/// Opens a file given by a full path for reading, never following a link in its last component
/// and never blocking (the type is checked with `fstat` before any read) ([N9]). For files
/// outside a container's array tree: `.dafstore/container.yaml`, files given to import.
pub(crate) fn open_regular(path: &Path) -> Result<File, PathError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => PathError::Link {
                path: path.to_path_buf(),
            },
            Ok(m) if !m.is_file() => PathError::WrongType {
                path: path.to_path_buf(),
                found: kind_name(&m.file_type()),
                expected: "regular file",
            },
            _ => PathError::io(path, "open", e),
        })?;
    let md = file
        .metadata()
        .map_err(|e| PathError::io(path, "stat", e))?;
    if !md.is_file() {
        return Err(PathError::WrongType {
            path: path.to_path_buf(),
            found: kind_name(&md.file_type()),
            expected: "regular file",
        });
    }
    Ok(file)
}

/// Opens a file given by the user (an import's input), following links but never blocking: a
/// FIFO, socket, device or directory is refused after `fstat`, before any read ([N9]).
pub(crate) fn open_input(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let md = file.metadata()?;
    if !md.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "is a {}, not a regular file; dafstore reads only regular files (SPEC [N9])",
                kind_name(&md.file_type())
            ),
        ));
    }
    Ok(file)
}

/// The container (a directory holding `.dafstore/container.yaml`) that `dir` is inside, if any:
/// `dir` itself excluded, the nearest ancestor first ([C4]).
pub(crate) fn enclosing_container(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .skip(1)
        .find(|a| {
            a.join(crate::format::RESERVED_DIR)
                .join("container.yaml")
                .exists()
        })
        .map(Path::to_path_buf)
}

/// A directory below `dir` (not `dir` itself) that holds `.dafstore`, if any, found without
/// following links ([C4]).
pub(crate) fn container_below(dir: &Path) -> io::Result<Option<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name() == crate::format::RESERVED_DIR {
            continue;
        }
        if entry.file_type()?.is_dir() {
            let sub = entry.path();
            if std::fs::symlink_metadata(sub.join(crate::format::RESERVED_DIR)).is_ok() {
                return Ok(Some(sub));
            }
            if let Some(found) = container_below(&sub)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_walk_refuses_a_directory_link_and_a_nested_container() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join("n/.dafstore")).unwrap();
        symlink(root.join("a"), root.join("l")).unwrap();
        assert!(open_dir(root, "a/b").unwrap().is_some());
        assert!(open_dir(root, "a/missing").unwrap().is_none());
        assert!(
            matches!(open_dir(root, "l/b"), Err(PathError::Link { path }) if path == root.join("l"))
        );
        assert!(matches!(
            open_dir(root, "n"),
            Err(PathError::NestedContainer { .. })
        ));
    }

    #[test]
    fn opening_a_fifo_is_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("x.yaml");
        // Made with the mkfifo tool: `unsafe` stays in sys.rs.
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let d = Dir::root(t.path()).unwrap();
        let err = d.open_file(OsStr::new("x.yaml"), false).unwrap_err();
        assert!(
            matches!(
                err,
                PathError::WrongType {
                    found: "FIFO (named pipe)",
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            open_regular(&fifo),
            Err(PathError::WrongType { .. })
        ));
    }
}
