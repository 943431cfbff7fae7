//! A container (SPEC section 2): the public handle [`Container`], creating and opening one (the
//! version file, [C2]; no nesting, [C4]), listing and removing arrays, recovery and gc. The
//! protocol behind these calls lives in `crate::protocol`; arrays are opened in `crate::array`
//! and written in `crate::writer`.
//!
//! Never: write a published file in place except through an in-place writer (SPEC [W7]), truncate
//! a published file, or touch a file for a name that did not validate.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::{Access, ArrayInfo, ArrayState, Catalog};
use crate::error::{io_at, CatalogError, ContainerError, OpenError, PathError, WriteError};
use crate::format::name::ArrayName;
use crate::format::{container_yaml, LOCK_STRIPES, RESERVED_DIR};
use crate::fs::beneath;
use crate::fs::local::{check_local_fs, fsync_dir};
use crate::protocol::{GcReport, RecoveryReport, Removal, Shared};

/// A handle on a container. Cheap to clone; every handle on the same directory in one process
/// shares one catalog connection, one session and one cache.
#[derive(Clone)]
pub struct Container {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("root", &self.shared.root)
            .field("read_only", &self.shared.readonly)
            .finish()
    }
}

/// Refuses to make `path` a container if a container encloses it or one lies below it ([C4]).
fn refuse_nesting(path: &Path) -> Result<(), ContainerError> {
    let abs = std::path::absolute(path).map_err(io_at(path, "resolve", ContainerError::io))?;
    // The nearest existing ancestor, resolved (links in the part that exists are followed: the
    // question is where the new container would really be).
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(p), Some(n)) => {
                rest.push(n.to_os_string());
                existing = p;
            }
            _ => break,
        }
    }
    let mut real =
        fs::canonicalize(existing).map_err(io_at(existing, "resolve", ContainerError::io))?;
    for n in rest.iter().rev() {
        real.push(n);
    }
    if let Some(other) = beneath::enclosing_container(&real) {
        return Err(PathError::WouldNest {
            path: path.to_path_buf(),
            other,
        }
        .into());
    }
    if let Some(other) = beneath::container_below(&real).map_err(io_at(
        path,
        "scan for containers below",
        ContainerError::io,
    ))? {
        return Err(PathError::WouldNest {
            path: path.to_path_buf(),
            other,
        }
        .into());
    }
    Ok(())
}

fn read_container_yaml(path: &Path) -> Result<(), ContainerError> {
    let mut text = String::new();
    beneath::open_regular(path)?
        .take(crate::format::meta::MAX_YAML_BYTES)
        .read_to_string(&mut text)
        .map_err(io_at(
            path,
            "read the container version file",
            ContainerError::io,
        ))?;
    crate::format::meta::parse_container_yaml(text.as_bytes(), path)?;
    Ok(())
}

impl Container {
    /// Creates a new container in `path` (made if missing) and opens it read-write. A directory
    /// that already is a container is refused.
    pub fn create(path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        let path = path.as_ref();
        // Containers never nest, in either order: refused before anything is made ([C4]).
        refuse_nesting(path)?;
        fs::create_dir_all(path).map_err(io_at(path, "create directory", ContainerError::io))?;
        check_local_fs(path)?;
        let dir = path.join(RESERVED_DIR);
        let version_file = dir.join("container.yaml");
        if version_file.exists() {
            return Err(ContainerError::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        for sub in ["", "locks", "sessions", "staging"] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(io_at(&d, "create directory", ContainerError::io))?;
        }
        for i in 0..LOCK_STRIPES {
            let p = dir.join("locks").join(format!("{i:02}.lock"));
            // With its change stamp ([W6]): an exclusive holder then rewrites 8 bytes in place,
            // which needs no room, also on a full file system ([Q3]).
            let f = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&p)
                .map_err(io_at(&p, "create lock file", ContainerError::io))?;
            if crate::protocol::stripes::read_stamp(&f).is_none() {
                crate::protocol::stripes::restamp(&f).map_err(io_at(
                    &p,
                    "create lock file",
                    ContainerError::io,
                ))?;
            }
        }
        Catalog::open(&dir.join("catalog.sqlite"), Access::Create)?;
        crate::fs::reserve::ensure(&dir); // [Q3]
                                          // The version file is written last: a half-created container is not a container.
                                          // Several processes may create the same container at once (every worker of a pool):
                                          // each writes its own temporary file, and only the first link becomes the version file.
                                          // A random name, made only if absent: threads of one process, or processes of other pid
                                          // namespaces, must never write into another creator's file (linked already, maybe).
        let tmp = dir.join(format!(
            "container.yaml.{}.tmp",
            crate::fs::local::random_id().map_err(io_at(
                &dir,
                "make a name",
                ContainerError::io
            ))?
        ));
        let write = || -> io::Result<bool> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(container_yaml().as_bytes())?;
            f.sync_all()?;
            let made = match fs::hard_link(&tmp, &version_file) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                // A file system without hard links (EPERM, EOPNOTSUPP): the same bytes, renamed
                // into place (creators racing there all succeed; they made the same container).
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP)) => {
                    fs::rename(&tmp, &version_file)?;
                    true
                }
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
            };
            match fs::remove_file(&tmp) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for d in ["locks", "sessions", "staging", ""] {
                fsync_dir(&dir.join(d))?;
            }
            fsync_dir(path)?;
            Ok(made)
        };
        let made = write().map_err(io_at(
            &version_file,
            "write the container version file",
            ContainerError::io,
        ))?;
        if !made {
            return Err(ContainerError::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        Container::open(path)
    }

    /// Opens a container read-write, recovering any publish or remove a crashed process left
    /// unfinished, and cleaning up after dead sessions. Other ways to open (read-only, without
    /// gc) are [`OpenOptions`]: `Container::options().read_only(true).open(path)`.
    pub fn open(path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        OpenOptions::new().open(path)
    }

    /// The options for opening a container; see [`OpenOptions`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Opens a container read-only.
    #[deprecated(note = "use `Container::options().read_only(true).open(path)`")]
    #[doc(hidden)]
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        Container::options().read_only(true).open(path)
    }

    /// Opens read-write without garbage collection.
    #[deprecated(note = "use `Container::options().gc(false).open(path)`")]
    #[doc(hidden)]
    pub fn open_without_gc(path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        Container::options().gc(false).open(path)
    }

    fn open_with(path: &Path, readonly: bool, run_gc: bool) -> Result<Container, ContainerError> {
        let (root, dir) = locate(path)?;
        beneath::check_catalog_files(&root)?;
        check_local_fs(&root)?;
        let c = Container {
            shared: Shared::open(root, dir, readonly)?,
        };
        if run_gc {
            // Every open reaps dead holders ([P5]); the report is not wanted, so not the
            // listing of the removals still deferred at its end.
            c.gc_with(false)?;
        }
        Ok(c)
    }

    /// The container directory (canonical).
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Whether this handle is read-only.
    pub fn is_read_only(&self) -> bool {
        self.shared.readonly
    }

    /// The description of live array `name` (its catalog row, with the live processes holding
    /// it and this process's references): `dafctl info`, Python's `c.info(name)`.
    /// [`OpenError::NotFound`] if there is no live array of that name.
    pub fn info(&self, name: &str) -> Result<ArrayInfo, OpenError> {
        let mut info = self.live_row(name)?;
        info.holders = self
            .shared
            .scan_holders()
            .map_err(|e| OpenError::io(self.shared.dir.join("sessions"), "read the references", e))?
            .holders(crate::format::name::name_key(&info.name));
        info.released_at = last_release(
            info.released_at,
            &crate::protocol::clock::Stamps::default(),
            &self.shared.root,
            &info.name,
        );
        info.local_refs = self.shared.local_count(&info.name);
        Ok(info)
    }

    /// The description of every array in the catalog, sorted by name, in every state: live,
    /// and also `deleting` (removal deferred while held), `publishing` and `removing`
    /// (interrupted, rolled forward by the next gc). `dafctl ls --json` prints it. Each is as
    /// [`Container::info`] describes it.
    pub fn info_all(&self) -> Result<Vec<ArrayInfo>, CatalogError> {
        let mut infos = self.shared.catalog().list()?;
        let held = self
            .shared
            .scan_holders()
            .map_err(|e| CatalogError::References {
                path: self.shared.dir.join("sessions"),
                source: e,
            })?;
        let stamps = crate::protocol::clock::Stamps::default();
        for info in &mut infos {
            info.holders = held.holders(crate::format::name::name_key(&info.name));
            info.released_at =
                last_release(info.released_at, &stamps, &self.shared.root, &info.name);
            info.local_refs = self.shared.local_count(&info.name);
        }
        Ok(infos)
    }

    /// The names of the live arrays, sorted (`dafctl ls`, Python's `c.ls()`).
    pub fn ls(&self) -> Result<Vec<String>, CatalogError> {
        self.shared.catalog().live_names()
    }

    /// The catalog row of live array `name`, as the engine reads it (no holders counted).
    pub(crate) fn live_row(&self, name: &str) -> Result<ArrayInfo, OpenError> {
        let name = ArrayName::new(name)?;
        match self.shared.catalog().get(name.as_str())? {
            Some(r) if r.state == ArrayState::Live => Ok(r),
            _ => Err(OpenError::NotFound {
                container: self.shared.root.clone(),
                name: name.to_string(),
            }),
        }
    }

    /// The catalog row of `name`.
    #[deprecated(note = "use `Container::info`")]
    pub fn record(&self, name: &str) -> Result<ArrayInfo, OpenError> {
        self.info(name)
    }

    /// Every catalog row (all states), sorted by name.
    #[deprecated(note = "use `Container::info_all`")]
    pub fn records(&self) -> Result<Vec<ArrayInfo>, CatalogError> {
        self.info_all()
    }

    /// Names of the live arrays, sorted.
    #[deprecated(note = "use `Container::ls`")]
    pub fn names(&self) -> Result<Vec<String>, CatalogError> {
        self.ls()
    }

    /// Removes an array (SPEC [W8]). If live processes hold it, the removal is deferred: the
    /// array is gone for new holders at once and its files are unlinked when the last holder
    /// releases it. Otherwise its metadata file is unlinked first, then its data files; processes
    /// that map it keep reading the old bytes (Linux keeps an unlinked inode until its last map
    /// goes).
    pub fn remove(&self, name: &str) -> Result<Removal, WriteError> {
        self.shared.remove(name)
    }

    /// Rolls forward every publish or remove left unfinished by a dead process (SPEC [W5]).
    /// Rows whose stripe is held by a live writer are left to it. A row whose recovery fails (an
    /// I/O error) is left unfinished and reported; opening that array retries and returns the
    /// error, the rest of the container stays usable.
    pub fn recover_unfinished(&self) -> Result<RecoveryReport, ContainerError> {
        self.shared.recover_unfinished()
    }

    /// Garbage collection (SPEC [P5], [W5]): rolls forward interrupted publishes and removes,
    /// reaps dead holders (their references, in-place writer registrations and sessions), runs
    /// the deletions they were blocking, recomputes checksums nobody is writing any more, and
    /// removes dead sessions' staging files, and removes the load locks nobody holds (SPEC
    /// [L4]). Runs at every read-write open (which does not list the removals still deferred:
    /// it discards the report).
    pub fn gc(&self) -> Result<GcReport, ContainerError> {
        self.gc_with(true)
    }

    /// [`Container::gc`]; `deferred`: whether the report lists the removals still deferred.
    fn gc_with(&self, deferred: bool) -> Result<GcReport, ContainerError> {
        let report = self.shared.gc_with(deferred)?;
        if !self.shared.readonly {
            self.shared.remove_idle_load_locks()?;
        }
        Ok(report)
    }
}

/// How to open a container (like [`std::fs::OpenOptions`]):
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use dafstore::Container;
/// Container::create(dir.path().join("c"))?;
/// let c = Container::options().read_only(true).open(dir.path().join("c"))?;
/// assert!(c.is_read_only());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct OpenOptions {
    read_only: bool,
    gc: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Read-write, with garbage collection: what [`Container::open`] does.
    pub fn new() -> OpenOptions {
        OpenOptions {
            read_only: false,
            gc: true,
        }
    }

    /// Read-only (default `false`): sees the committed state even where this process cannot
    /// write (another user's container, a read-only or full file system), or refuses with
    /// [`CatalogError::Unreadable`] (SPEC [Q1]); it never pairs stale metadata with new bytes.
    /// It takes no references and runs no gc.
    pub fn read_only(mut self, read_only: bool) -> OpenOptions {
        self.read_only = read_only;
        self
    }

    /// Garbage collection at open (default `true`; never on a read-only open): rolls forward
    /// what dead processes left unfinished and reaps their references ([`Container::gc`]).
    /// Without it, an inspection (fsck) or a `gc` that reports what it did sees the container
    /// as it was left.
    pub fn gc(mut self, gc: bool) -> OpenOptions {
        self.gc = gc;
        self
    }

    /// Opens the container in `path`.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        Container::open_with(path.as_ref(), self.read_only, self.gc && !self.read_only)
    }
}

/// Serializes as `{deferred, holders}`: `{false, 0}` when removed, `{true, n}` when deferred
/// while `n` live processes hold the array (Python's `c.remove(name)`).
impl serde::Serialize for Removal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (deferred, holders) = match *self {
            Removal::Removed => (false, 0),
            Removal::Deferred { holders } => (true, holders),
        };
        let mut s = serializer.serialize_struct("Removal", 2)?;
        s.serialize_field("deferred", &deferred)?;
        s.serialize_field("holders", &holders)?;
        s.end()
    }
}

/// The container in `path`: its canonical root and `.dafstore/`, once its version file is
/// checked ([C2]).
pub(crate) fn locate(path: &Path) -> Result<(PathBuf, PathBuf), ContainerError> {
    let root = fs::canonicalize(path).map_err(io_at(path, "open container", ContainerError::io))?;
    let dir = root.join(RESERVED_DIR);
    let version_file = dir.join("container.yaml");
    if !version_file.is_file() {
        return Err(ContainerError::NotAContainer {
            path: path.to_path_buf(),
        });
    }
    read_container_yaml(&version_file)?;
    Ok((root, dir))
}

/// An entry's last release time ([E5]): the later of the catalog's (set at publish) and the
/// release clock's.
fn last_release(
    catalog: Option<i64>,
    stamps: &crate::protocol::clock::Stamps,
    root: &Path,
    name: &str,
) -> Option<i64> {
    let clock = stamps.get(root, crate::format::name::name_key(name));
    match catalog {
        Some(at) => Some(at.max(clock)),
        None if clock > 0 => Some(clock),
        None => None,
    }
}
