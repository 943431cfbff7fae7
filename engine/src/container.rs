//! A container (SPEC section 2): create and open, the per-process registry that makes every handle
//! on one container in a process share one catalog connection, one session and one array cache,
//! the lock stripes, and the publish / remove / recovery protocol of SPEC section 7.
//!
//! Never: write a published file in place except through an in-place writer (SPEC [W7]), truncate
//! a published file, or touch a file for a name that did not validate.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, Weak};

use crate::array::ArrayInner;
use crate::beneath::{self, Dir, PathError};
use crate::catalog::{Access, ArrayRecord, ArrayState, Catalog, FileRecord, RemoveStart};
use crate::error::{io_at, CatalogError, ContainerError, OpenError, WriteError};
use crate::failpoint::failpoint;
use crate::meta::{render_yaml, ArrayMeta, DENSE_SUFFIXES, SPARSE_SUFFIXES};
use crate::name::ArrayName;
use crate::sys;

/// Number of lock stripes ([W6]).
pub const LOCK_STRIPES: u32 = 64;
/// Container layout major version ([C2]).
pub const CONTAINER_MAJOR: u64 = 1;
/// Container layout minor version.
pub const CONTAINER_MINOR: u64 = 0;
/// The reserved directory ([C1]).
pub const RESERVED_DIR: &str = ".dafstore";

const NETWORK_FS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFE53_4D42, "SMB2"),
    (0xFF53_4D42, "CIFS"),
    (0x6573_5546, "FUSE"),
    (0x5346_414F, "AFS"),
    (0x00C3_6400, "Ceph"),
    (0x0102_1997, "9p"),
];

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

/// A process's session ([P1]): an exclusive `flock` on `.dafstore/sessions/<id>.lock`, held for as
/// long as the process uses the container.
pub(crate) struct Session {
    pub(crate) id: String,
    path: PathBuf,
    _lock: File,
    fork_slot: Option<usize>,
}

impl Drop for Session {
    fn drop(&mut self) {
        sys::release_fork_slot(self.fork_slot);
    }
}

type RegistryKey = (u64, u64, bool);

/// One container as seen by the processes of one fork tree: what is the same in all of them (the
/// paths) and, per process, its own catalog connection, session, references and open arrays.
pub(crate) struct Shared {
    pub(crate) root: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) readonly: bool,
    access: Access,
    key: RegistryKey,
    staging_seq: AtomicU64,
    /// The process that opened the container.
    origin: Proc,
    /// Held while a forked child makes its heir, and by releases of inherited references
    /// ([P2]): a release never falls between the copy of the inherited counts and the heir.
    heir_lock: Mutex<()>,
    /// Where a forked child's failed attempt to start its own session is reported (made again at
    /// the next use).
    broken: OnceLock<Box<Proc>>,
}

/// What belongs to one process (SPEC [P2]). A process forked from the one that opened the
/// container must not use its parent's catalog connection (SQLite's rule), session or
/// references; the first time it uses an inherited handle it gets its own `Proc` (its heir),
/// which re-takes, under its own session, the references its inherited views stand for.
pub(crate) struct Proc {
    /// The fork epoch of the process that made it (`sys::fork_epoch`).
    epoch: u64,
    catalog: Mutex<Catalog>,
    /// `None` on read-only handles (and on an heir that could not start one: then `catalog` is
    /// unusable and says why).
    session: Option<Session>,
    arrays: Mutex<HashMap<String, Weak<ArrayInner>>>,
    counts: Mutex<crate::refs::Counts>,
    /// References that handles inherited through fork stand for but that this process could not
    /// take again (the array was no longer live): their release touches nothing else ([P2]).
    unheld: Mutex<crate::refs::Counts>,
    /// In-place writers ([W7]) registered by this process, by name.
    writers: Mutex<crate::refs::Counts>,
    /// In-place writers inherited through fork that this process could not register again.
    unheld_writers: Mutex<crate::refs::Counts>,
    /// Arrays whose checksums must leave their metadata file once this heir is installed (it
    /// registered the first in-place writer again, [W7]).
    unstamp: Mutex<Vec<String>>,
    /// This state in a process forked from this one (made there on first use).
    heir: OnceLock<Box<Proc>>,
}

static REGISTRY: LazyLock<Mutex<HashMap<RegistryKey, Weak<Shared>>>> =
    LazyLock::new(Default::default);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every structure behind these mutexes stays consistent across a panic (single statements).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A held lock stripe; released on drop (closing the file releases the `flock`). Registered so a
/// child forked while it is held does not keep it (SPEC [P2]).
pub(crate) struct StripeGuard {
    _file: Option<File>,
    fork_slot: Option<usize>,
}

impl StripeGuard {
    fn held(file: File) -> StripeGuard {
        let fork_slot = sys::forget_in_forked_child(&file);
        StripeGuard {
            _file: Some(file),
            fork_slot,
        }
    }
}

impl StripeGuard {
    /// Whether the stripe is really locked (a read-only handle that may not open the lock file
    /// goes without, see [`Shared::lock_stripe`]).
    pub(crate) fn is_locked(&self) -> bool {
        self._file.is_some()
    }
}

impl Drop for StripeGuard {
    fn drop(&mut self) {
        sys::release_fork_slot(self.fork_slot);
    }
}

fn container_yaml() -> String {
    format!("format: dafstore\nversion:\n- {CONTAINER_MAJOR}\n- {CONTAINER_MINOR}\n")
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

/// `fsync` a directory so renames and creations in it are durable.
pub(crate) fn fsync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// The network file system a `statfs` magic number names, if it is one ([F1]).
fn network_fs(magic: i64) -> Option<&'static str> {
    NETWORK_FS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, fs)| *fs)
}

fn check_local_fs(path: &Path) -> Result<(), ContainerError> {
    let magic = sys::fs_magic(path).map_err(io_at(path, "statfs", ContainerError::io))?;
    match network_fs(magic) {
        Some(fs) => Err(ContainerError::NetworkFileSystem {
            path: path.to_path_buf(),
            fs,
        }),
        None => Ok(()),
    }
}

fn random_id() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn read_container_yaml(path: &Path) -> Result<(), ContainerError> {
    let mut text = String::new();
    beneath::open_regular(path)?
        .take(crate::meta::MAX_YAML_BYTES)
        .read_to_string(&mut text)
        .map_err(io_at(
            path,
            "read the container version file",
            ContainerError::io,
        ))?;
    crate::meta::parse_container_yaml(text.as_bytes(), path)?;
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
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(io_at(&p, "create lock file", ContainerError::io))?;
        }
        Catalog::open(&dir.join("catalog.sqlite"), Access::Create)?;
        crate::reserve::ensure(&dir); // [Q3]
                                      // The version file is written last: a half-created container is not a container.
        let tmp = dir.join("container.yaml.tmp");
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(container_yaml().as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &version_file)?;
            for d in ["locks", "sessions", "staging", ""] {
                fsync_dir(&dir.join(d))?;
            }
            fsync_dir(path)
        };
        write().map_err(io_at(
            &version_file,
            "write the container version file",
            ContainerError::io,
        ))?;
        Container::open(path)
    }

    /// Opens a container read-write, recovering any publish or remove a crashed process left
    /// unfinished, and cleaning up after dead sessions.
    pub fn open(path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        Container::open_with(path.as_ref(), false, true)
    }

    /// Opens a container read-only. It sees the committed state even where this process cannot
    /// write (another user's container, a read-only or full file system), or refuses with
    /// [`CatalogError::Unreadable`] (SPEC [Q1]); it never pairs stale metadata with new bytes.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        Container::open_with(path.as_ref(), true, false)
    }

    /// Opens read-write without garbage collection, so an inspection (fsck) or a `gc` that
    /// reports what it did sees the container as it was left.
    pub fn open_without_gc(path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        Container::open_with(path.as_ref(), false, false)
    }

    fn open_with(path: &Path, readonly: bool, run_gc: bool) -> Result<Container, ContainerError> {
        let (root, dir) = locate(path)?;
        beneath::check_catalog_files(&root)?;
        check_local_fs(&root)?;
        let md = fs::metadata(&root).map_err(io_at(&root, "stat", ContainerError::io))?;
        let key = (md.dev(), md.ino(), readonly);
        let mut registry = lock(&REGISTRY);
        if let Some(shared) = registry.get(&key).and_then(Weak::upgrade) {
            // Also in a forked child: its own state is made on first use ([P2]).
            drop(registry);
            let c = Container { shared };
            if run_gc {
                c.gc()?; // every open reaps dead holders ([P5])
            }
            return Ok(c);
        }
        // Read-only handles see committed state even without write access (SPEC [Q1]).
        let access = if readonly {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        let origin = match Proc::start(&dir, access, readonly, None) {
            Ok(p) => p,
            Err(e) => {
                // `Proc`'s parts may end a session on drop: never while holding the registry.
                drop(registry);
                return Err(e);
            }
        };
        let shared = Arc::new(Shared {
            root,
            dir,
            readonly,
            access,
            key,
            staging_seq: AtomicU64::new(0),
            origin,
            heir_lock: Mutex::new(()),
            broken: OnceLock::new(),
        });
        registry.insert(key, Arc::downgrade(&shared));
        drop(registry);
        let c = Container { shared };
        if run_gc {
            c.gc()?;
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

    /// The catalog row of `name`.
    pub fn record(&self, name: &str) -> Result<ArrayRecord, OpenError> {
        let name = ArrayName::new(name)?;
        match self.shared.catalog().get(name.as_str())? {
            Some(r) if r.state == ArrayState::Live => Ok(r),
            _ => Err(OpenError::NotFound {
                container: self.shared.root.clone(),
                name: name.to_string(),
            }),
        }
    }

    /// Every catalog row (all states), sorted by name.
    pub fn records(&self) -> Result<Vec<ArrayRecord>, CatalogError> {
        self.shared.catalog().list()
    }

    /// Names of the live arrays, sorted.
    pub fn names(&self) -> Result<Vec<String>, CatalogError> {
        Ok(self
            .records()?
            .into_iter()
            .filter(|r| r.state == ArrayState::Live)
            .map(|r| r.name)
            .collect())
    }

    /// Removes an array (SPEC [W8]). If live processes hold it, the removal is deferred: the
    /// array is gone for new holders at once and its files are unlinked when the last holder
    /// releases it. Otherwise its metadata file is unlinked first, then its data files; processes
    /// that map it keep reading the old bytes (Linux keeps an unlinked inode until its last map
    /// goes).
    pub fn remove(&self, name: &str) -> Result<Removal, WriteError> {
        let name = ArrayName::new(name)?;
        self.shared.writable()?;
        let _g = self
            .shared
            .lock_stripe(&name, true)
            .map_err(self.shared.lock_err(&name))?;
        self.shared.recover_locked(&name)?;
        // A link or nested container on the way is refused before anything changes ([N7], [C4]).
        self.shared.check_parent_for_write(&name)?;
        let alive = |s: &str| self.shared.session_alive(s);
        let start = self.shared.catalog().begin_remove(name.as_str(), &alive)?;
        match start {
            RemoveStart::NotFound => Err(WriteError::NotFound {
                container: self.shared.root.clone(),
                name: name.to_string(),
            }),
            RemoveStart::Deferred(holders) => Ok(Removal::Deferred { holders }),
            RemoveStart::Now => {
                failpoint!("remove.after_mark_removing");
                self.shared.finish_remove(&name)?;
                // Space was freed: re-make the space reserve if it was used ([Q3]).
                crate::reserve::ensure(&self.shared.dir);
                Ok(Removal::Removed)
            }
        }
    }

    /// Rolls forward every publish or remove left unfinished by a dead process (SPEC [W5]).
    /// Rows whose stripe is held by a live writer are left to it. A row whose recovery fails (an
    /// I/O error) is left unfinished and reported; opening that array retries and returns the
    /// error, the rest of the container stays usable. Returns (recovered, failed).
    pub fn recover_unfinished(&self) -> Result<(usize, Vec<(String, WriteError)>), ContainerError> {
        let mut done = 0;
        let mut failed = Vec::new();
        if self.shared.readonly {
            return Ok((done, failed));
        }
        let names = self.shared.catalog().unfinished()?;
        for n in names {
            let Ok(name) = ArrayName::new(&n) else {
                continue;
            };
            let Some(_g) = self.shared.try_lock_stripe(&name) else {
                continue;
            };
            // Count only what is still unfinished under the stripe: another process may have
            // finished it since the listing (then nothing was recovered here).
            let row = self.shared.catalog().get(name.as_str());
            match row {
                Ok(Some(r)) if matches!(r.state, ArrayState::Publishing | ArrayState::Removing) => {
                }
                Ok(_) => continue,
                Err(e) => {
                    failed.push((n, e.into()));
                    continue;
                }
            }
            match self.shared.recover_locked(&name) {
                Ok(()) => done += 1,
                Err(e) => failed.push((n, e)),
            }
        }
        Ok((done, failed))
    }

    /// Garbage collection (SPEC [P5], [W5]): rolls forward interrupted publishes and removes,
    /// reaps dead holders (their references, in-place writer registrations and sessions), runs
    /// the deletions they were blocking, recomputes checksums nobody is writing any more, and
    /// removes dead sessions' staging files. Runs at every read-write open.
    pub fn gc(&self) -> Result<GcReport, ContainerError> {
        let mut report = GcReport::default();
        if self.shared.readonly {
            return Ok(report);
        }
        let (recovered, failed) = self.recover_unfinished()?;
        report.recovered = recovered;
        report.failed = failed
            .into_iter()
            .map(|(n, e)| (n, e.to_string()))
            .collect();
        let alive = |s: &str| self.shared.session_alive(s);
        let crate::catalog::Reaped {
            sessions,
            due,
            writers_gone,
        } = self.shared.catalog().reap_dead(&alive)?;
        report.reaped_sessions = sessions;
        let as_container_err = |name: &ArrayName, e: WriteError| ContainerError::Io {
            path: name.file_path(&self.shared.root, "yaml"),
            op: "finish a due deletion or checksum",
            source: io::Error::other(e.to_string()),
        };
        for n in due {
            let Ok(name) = ArrayName::new(&n) else {
                continue;
            };
            let _g = self
                .shared
                .lock_stripe(&name, true)
                .map_err(|e| ContainerError::io(self.shared.stripe_path(&name), "lock", e))?;
            if self
                .shared
                .finish_due_remove(&name)
                .map_err(|e| as_container_err(&name, e))?
            {
                report.deleted.push(n);
            }
        }
        for n in writers_gone {
            let Ok(name) = ArrayName::new(&n) else {
                continue;
            };
            let _g = self
                .shared
                .lock_stripe(&name, true)
                .map_err(|e| ContainerError::io(self.shared.stripe_path(&name), "lock", e))?;
            self.shared
                .refresh_checksums(&name)
                .map_err(|e| as_container_err(&name, e))?;
        }
        report.staging_removed = self.remove_dead_staging()?;
        crate::reserve::ensure(&self.shared.dir); // [Q3]
        report.deferred = self.shared.catalog().deferred()?;
        Ok(report)
    }

    /// Removes session lock files and staging directories of dead sessions (unless an unfinished
    /// publish still needs the staged files). Returns how many staging directories were removed.
    fn remove_dead_staging(&self) -> Result<usize, ContainerError> {
        let shared = &self.shared;
        // Everything here is reached through descriptors without following a link: a link in
        // place of `staging/`, `sessions/` or a session's directory is never followed (fsck
        // reports it) ([N7]).
        let sessions = beneath::reserved(&shared.root, "sessions").ok();
        let staging = beneath::reserved(&shared.root, "staging").ok();
        let mut ids: Vec<String> = Vec::new();
        for d in sessions.iter().chain(staging.iter()) {
            for n in d.names().unwrap_or_default() {
                let n = n.to_string_lossy().trim_end_matches(".lock").to_string();
                if is_session_id(&n) && !ids.contains(&n) {
                    ids.push(n);
                }
            }
        }
        let mut removed = 0;
        for id in ids {
            // Hold the dead session's lock (if its file exists) while removing its files.
            let lock_name = std::ffi::OsString::from(format!("{id}.lock"));
            let probe = match sessions.as_ref().map(|d| d.open_file(&lock_name, false)) {
                Some(Ok(Some((f, _)))) if f.try_lock().is_ok() => Some(f),
                Some(Ok(None)) | None => None,
                _ => continue, // alive, or not a lock file we can judge
            };
            if shared.catalog().sessions()?.iter().any(|(s, _)| *s == id) {
                continue; // reaped in the next gc (its row is removed by `reap_dead` first)
            }
            if !shared.staging_needed(&id)? {
                if let Some(staging) = &staging {
                    match staging.remove_tree(&id) {
                        Ok(true) => removed += 1,
                        Ok(false) => {}
                        // A link or a file where a session's directory should be: not followed,
                        // not removed; fsck reports it.
                        Err(PathError::Link { .. } | PathError::WrongType { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            if let Some(d) = &sessions {
                let _ = d.remove_file(&lock_name);
            }
            drop(probe);
        }
        // Temporary session files of processes that died while starting.
        if let Some(d) = &sessions {
            for n in d.names().unwrap_or_default() {
                if n.to_string_lossy().starts_with(".tmp-") {
                    if let Ok(Some((f, _))) = d.open_file(&n, false) {
                        if f.try_lock().is_ok() {
                            let _ = d.remove_file(&n);
                        }
                    }
                }
            }
        }
        Ok(removed)
    }
}

/// What [`Container::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The files are gone.
    Removed,
    /// Live processes hold the array: it is gone for new holders and its files are removed when
    /// the last holder releases it.
    Deferred {
        /// Live holders (processes) at the time of the call.
        holders: usize,
    },
}

/// What [`Container::gc`] did.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Interrupted publishes and removes rolled forward.
    pub recovered: usize,
    /// Unfinished rows whose recovery failed, with the error.
    pub failed: Vec<(String, String)>,
    /// Dead sessions reaped.
    pub reaped_sessions: Vec<String>,
    /// Arrays deleted because their deferred deletion became due.
    pub deleted: Vec<String>,
    /// Dead sessions' staging directories removed.
    pub staging_removed: usize,
    /// Removals still deferred after this gc because live processes hold the arrays ([W8]):
    /// nothing to recover, they run when the last holder releases.
    pub deferred: Vec<String>,
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

pub(crate) fn is_session_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a forked child inherited from its parent's state: the references its handles stand for.
struct Inherited {
    counts: crate::refs::Counts,
    unheld: crate::refs::Counts,
    arrays: HashMap<String, Weak<ArrayInner>>,
    writers: crate::refs::Counts,
    unheld_writers: crate::refs::Counts,
}

impl Proc {
    /// Opens the catalog and, read-write, starts a session; with `inherited` (a forked child's),
    /// takes each inherited reference again under the new session ([P2]).
    fn start(
        dir: &Path,
        access: Access,
        readonly: bool,
        inherited: Option<Inherited>,
    ) -> Result<Proc, ContainerError> {
        let path = dir.join("catalog.sqlite");
        let mut catalog = if access == Access::ReadWrite {
            Catalog::open_read_write(&path)? // [Q3]: works on a full file system
        } else {
            Catalog::open(&path, access)?
        };
        let pid = std::process::id();
        let session = if readonly {
            None
        } else {
            Some(start_session(dir, &mut catalog, pid)?)
        };
        let mut held = crate::refs::Counts::new();
        let mut unheld = crate::refs::Counts::new();
        let mut arrays = HashMap::new();
        let mut writers = crate::refs::Counts::new();
        let mut unheld_writers = crate::refs::Counts::new();
        let mut unstamp = Vec::new();
        if let Some(inherited) = inherited {
            unheld = inherited.unheld;
            unheld_writers = inherited.unheld_writers;
            // In-place writers inherited through fork write to the shared file from here too:
            // registered again under this session, so the checksums stay stale until this
            // process closes them as well ([W7]).
            for (name, n) in inherited.writers {
                let mut registered = 0;
                if let Some(s) = &session {
                    for _ in 0..n {
                        match catalog.add_inplace_writer(&s.id, &name) {
                            Ok(first) => {
                                registered += 1;
                                if first && !unstamp.contains(&name) {
                                    unstamp.push(name.clone());
                                }
                            }
                            Err(_) => break, // the array is gone
                        }
                    }
                }
                if registered > 0 {
                    writers.insert(name.clone(), registered);
                }
                if registered < n {
                    *unheld_writers.entry(name).or_default() += n - registered;
                }
            }
            for (name, n) in inherited.counts {
                let taken = match &session {
                    Some(s) => catalog.acquire_ref(&s.id, &name)?,
                    None => crate::catalog::Acquired::NotFound,
                };
                if let crate::catalog::Acquired::Held(_) = taken {
                    if let Some(a) = inherited.arrays.get(&name) {
                        arrays.insert(name.clone(), a.clone());
                    }
                    held.insert(name, n);
                } else {
                    // Removed (or being replaced) since the fork: not held again. The inherited
                    // views keep their bytes (the kernel keeps a mapped inode); their release
                    // must not take from a reference this process takes later under the name.
                    *unheld.entry(name).or_default() += n;
                }
            }
        }
        Ok(Proc {
            epoch: sys::fork_epoch(),
            catalog: Mutex::new(catalog),
            session,
            arrays: Mutex::new(arrays),
            counts: Mutex::new(held),
            unheld: Mutex::new(unheld),
            writers: Mutex::new(writers),
            unheld_writers: Mutex::new(unheld_writers),
            unstamp: Mutex::new(unstamp),
            heir: OnceLock::new(),
        })
    }

    /// A forked child's state when its own session could not be started: every catalog access
    /// returns `why`.
    fn broken(dir: &Path, why: String) -> Proc {
        Proc {
            epoch: sys::fork_epoch(),
            catalog: Mutex::new(Catalog::unusable(&dir.join("catalog.sqlite"), why)),
            session: None,
            arrays: Mutex::new(HashMap::new()),
            counts: Mutex::new(HashMap::new()),
            unheld: Mutex::new(HashMap::new()),
            writers: Mutex::new(HashMap::new()),
            unheld_writers: Mutex::new(HashMap::new()),
            unstamp: Mutex::new(Vec::new()),
            heir: OnceLock::new(),
        }
    }
}

/// Takes one from `name`'s count (removing it at zero); whether there was one.
pub(crate) fn decrement_count(counts: &mut crate::refs::Counts, name: &str) -> bool {
    match counts.get_mut(name) {
        Some(c) if *c > 1 => {
            *c -= 1;
            true
        }
        Some(_) => {
            counts.remove(name);
            true
        }
        None => false,
    }
}

/// Takes one from `name`'s count in `m` (a forked child's copy); whether there was one. Never
/// blocks for long on a lock a vanished thread of the parent may hold.
fn decrement(m: &Mutex<crate::refs::Counts>, name: &str) -> bool {
    for _ in 0..100 {
        match m.try_lock() {
            Ok(mut counts) => return decrement_count(&mut counts, name),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
    false
}

/// A [`PathError`] where only an `io::Error` fits (lock files): its message, or the OS error.
fn path_io(e: PathError) -> io::Error {
    match e {
        PathError::Io { source, .. } => source,
        PathError::ContainerRemoved { .. } => {
            io::Error::new(io::ErrorKind::NotFound, e.to_string())
        }
        other => io::Error::other(other.to_string()),
    }
}

/// A copy of what `m` guards, inherited through fork(). A thread of the parent may have held the
/// lock at fork(); that thread does not exist in the child, so never block on it: `None` then.
fn clone_unblocked<T: Clone>(m: &Mutex<T>) -> Option<T> {
    for _ in 0..100 {
        match m.try_lock() {
            Ok(g) => return Some(g.clone()),
            Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner().clone()),
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
        }
    }
    None
}

fn start_session(dir: &Path, catalog: &mut Catalog, pid: u32) -> Result<Session, ContainerError> {
    // Between its creation and its lock, the temporary file is unlocked, and another
    // process's gc may take it for a dead starter's and unlink it; then the rename fails with
    // NotFound and we start over under a new id. Once locked it is never removed by others.
    let mut attempts = 0;
    loop {
        match try_start_session(dir, catalog, pid) {
            Err(ContainerError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound && attempts < 100 =>
            {
                attempts += 1;
            }
            r => return r,
        }
    }
}

fn try_start_session(
    dir: &Path,
    catalog: &mut Catalog,
    pid: u32,
) -> Result<Session, ContainerError> {
    let id = random_id().map_err(io_at("/dev/urandom", "read", ContainerError::io))?;
    let root = dir.parent().unwrap_or(dir);
    let tmp = dir.join("sessions").join(format!(".tmp-{id}"));
    let path = dir.join("sessions").join(format!("{id}.lock"));
    // Relative to `sessions/`, reached without following a link ([N7]).
    let sessions = beneath::reserved(root, "sessions")?;
    let (tmp_leaf, leaf) = (
        tmp.file_name().unwrap_or_default(),
        path.file_name().unwrap_or_default(),
    );
    let file = sessions.create_new(tmp_leaf).map_err(io_at(
        &tmp,
        "create session lock",
        ContainerError::io,
    ))?;
    crate::failpoint::hit("session.before_lock").map_err(io_at(
        &tmp,
        "start session (injected failure)",
        ContainerError::io,
    ))?;
    file.lock()
        .map_err(io_at(&tmp, "lock session", ContainerError::io))?;
    // Renamed only once locked: a session file under its final name is always locked by a
    // live process ([P1]).
    sessions.rename(tmp_leaf, &sessions, leaf).map_err(io_at(
        &path,
        "publish session lock",
        ContainerError::io,
    ))?;
    let fork_slot = sys::forget_in_forked_child(&file);
    catalog.add_session(&id, pid)?;
    Ok(Session {
        id,
        path,
        _lock: file,
        fork_slot,
    })
}

impl Shared {
    pub(crate) fn writable(&self) -> Result<(), WriteError> {
        if self.readonly {
            return Err(WriteError::ReadOnly {
                container: self.root.clone(),
            });
        }
        if self.here().session.is_none() {
            // A forked child whose own session could not start: the catalog says why.
            self.catalog().usable()?;
        }
        Ok(())
    }

    /// This process's state: the opener's, or (in a forked child) its own heir, made on first
    /// use ([P2]). One atomic load when nothing was forked. If a forked child cannot start its
    /// own session, a state whose catalog says why (and the next use tries again).
    pub(crate) fn here(&self) -> &Proc {
        let now = sys::fork_epoch();
        let mut p = &self.origin;
        while p.epoch != now {
            if let Some(h) = p.heir.get() {
                p = h;
                continue;
            }
            let g = lock(&self.heir_lock);
            if p.heir.get().is_none() {
                match self.heir_of(p) {
                    Ok(h) => {
                        let _ = p.heir.set(Box::new(h));
                        drop(g);
                        self.unstamp_inherited_writers();
                    }
                    Err(why) => return self.broken_here(why),
                }
            }
        }
        p
    }

    /// Once a forked child's heir is installed: the arrays whose first in-place writer it
    /// registered again lose the checksums in their metadata file ([W7]), as at a first open
    /// for in-place writing. A failure leaves them stale in the catalog (fsck says so).
    fn unstamp_inherited_writers(&self) {
        let names = std::mem::take(&mut *lock(&self.here().unstamp));
        for n in names {
            let Ok(name) = ArrayName::new(&n) else {
                continue;
            };
            let Ok(_g) = self.lock_stripe(&name, true) else {
                continue;
            };
            if let Ok(Some(rec)) = self.catalog().get(name.as_str()) {
                if rec.state == ArrayState::Live && rec.checksum_stale {
                    let _ = self.rewrite_yaml(&name, &rec.meta, None);
                }
            }
        }
    }

    /// The state that reports a forked child's failure to start its own session.
    fn broken_here(&self, why: String) -> &Proc {
        let b = self
            .broken
            .get_or_init(|| Box::new(Proc::broken(&self.dir, why.clone())));
        lock(&b.catalog).set_unusable(why);
        b
    }

    /// This process's state if it has one already (never makes an heir); otherwise the last
    /// state it inherited.
    fn here_if_started(&self) -> Result<&Proc, &Proc> {
        let now = sys::fork_epoch();
        let mut p = &self.origin;
        while p.epoch != now {
            match p.heir.get() {
                Some(h) => p = h,
                None => return Err(p),
            }
        }
        Ok(p)
    }

    /// The state of a forked child, from the state `parent` it inherited (under `heir_lock`): its
    /// own catalog connection and session, and, under that session, a reference for every one
    /// the inherited handles stand for that is still live. The inherited catalog connections
    /// are discarded first, without closing them through SQLite (SPEC [P2]): SQLite tracks its
    /// POSIX locks per process and file, so a new connection in the child would otherwise take
    /// the parent's locks (which a child does not hold) for its own.
    fn heir_of(&self, parent: &Proc) -> Result<Proc, String> {
        let mut p = &self.origin;
        loop {
            if let Ok(mut c) = p.catalog.try_lock() {
                c.discard_inherited();
            }
            match p.heir.get() {
                Some(h) => p = h,
                None => break,
            }
        }
        let inherited = Inherited {
            counts: clone_unblocked(&parent.counts).unwrap_or_default(),
            unheld: clone_unblocked(&parent.unheld).unwrap_or_default(),
            arrays: clone_unblocked(&parent.arrays).unwrap_or_default(),
            writers: clone_unblocked(&parent.writers).unwrap_or_default(),
            unheld_writers: clone_unblocked(&parent.unheld_writers).unwrap_or_default(),
        };
        Proc::start(&self.dir, self.access, self.readonly, Some(inherited))
            .map_err(|e| e.to_string())
    }

    /// This process's in-place writer registrations, by name.
    pub(crate) fn writers(&self) -> MutexGuard<'_, crate::refs::Counts> {
        lock(&self.here().writers)
    }

    /// Closes, in a forked child, an in-place writer inherited through fork ([P2]). Returns
    /// false if this process registered it again (its heir did): then it closes as its own.
    pub(crate) fn close_inherited_writer(&self, name: &str) -> bool {
        self.end_inherited(name, |p| &p.unheld_writers, |p| &p.writers)
    }

    /// Releases, in a forked child, one reference that a handle inherited through fork stood
    /// for ([P2]). Returns false if it is an ordinary reference of this process's own state.
    pub(crate) fn release_inherited(&self, name: &str) -> bool {
        self.end_inherited(name, |p| &p.unheld, |p| &p.counts)
    }

    /// Ends, in a forked child, one use of `name` (a reference, an in-place writer) that an
    /// inherited handle stood for: one that this process could not take again (`unheld`) ends
    /// with nothing else touched; one counted in this process's own state (`held` of its heir)
    /// is an ordinary end (returns false); while the child has not used the container it holds
    /// nothing in the catalog, and the inherited count is forgotten so its heir does not take it.
    fn end_inherited(
        &self,
        name: &str,
        unheld: fn(&Proc) -> &Mutex<crate::refs::Counts>,
        held: fn(&Proc) -> &Mutex<crate::refs::Counts>,
    ) -> bool {
        let _g = lock(&self.heir_lock);
        let (p, started) = match self.here_if_started() {
            Ok(p) => (p, true),
            Err(p) => (p, false),
        };
        if decrement(unheld(p), name) {
            return true;
        }
        if started {
            return false;
        }
        decrement(held(p), name);
        true
    }

    /// The catalog connection of this process.
    pub(crate) fn catalog(&self) -> MutexGuard<'_, Catalog> {
        lock(&self.here().catalog)
    }

    /// This process's reference counts.
    pub(crate) fn counts(&self) -> MutexGuard<'_, crate::refs::Counts> {
        lock(&self.here().counts)
    }

    /// This process's open arrays, by name.
    pub(crate) fn arrays(&self) -> MutexGuard<'_, HashMap<String, Weak<ArrayInner>>> {
        lock(&self.here().arrays)
    }

    /// Whether session `id` is alive ([P1]): ours, or its lock file is locked by someone.
    pub(crate) fn session_alive(&self, id: &str) -> bool {
        if self.here().session.as_ref().is_some_and(|s| s.id == id) {
            return true;
        }
        if !is_session_id(id) {
            return false;
        }
        match self.reserved_file("sessions", &format!("{id}.lock")) {
            Err(e) => e.kind() != io::ErrorKind::NotFound,
            Ok(f) => !matches!(f.try_lock(), Ok(())),
        }
    }

    /// Whether `name`'s row is no longer the one read as `rec` (another generation or state):
    /// with no stripe lock, this after opening the files is what ties them to the row (SPEC
    /// [Q1]): a publish records its intent before it renames any file.
    pub(crate) fn row_changed(
        &self,
        name: &ArrayName,
        rec: &ArrayRecord,
    ) -> Result<bool, CatalogError> {
        let now = self.catalog().get(name.as_str())?;
        Ok(now.is_none_or(|r| r.generation != rec.generation || r.state != rec.state))
    }

    /// Whether an unfinished publish still needs staged files of session `id` (they stay until
    /// recovery succeeds).
    pub(crate) fn staging_needed(&self, id: &str) -> Result<bool, CatalogError> {
        self.catalog().staging_in_use(&format!("{id}/"))
    }

    /// This process's session id (empty on read-only handles).
    pub(crate) fn session_id(&self) -> &str {
        self.here().session.as_ref().map_or("", |s| s.id.as_str())
    }

    /// Opens `.dafstore/<sub>/<file>` for reading without following a link and without blocking
    /// (a FIFO there is refused, not waited on) ([N7], [N9]).
    pub(crate) fn reserved_file(&self, sub: &str, file: &str) -> io::Result<File> {
        let dir = beneath::reserved(&self.root, sub).map_err(path_io)?;
        match dir.open_file(std::ffi::OsStr::new(file), false) {
            Ok(Some((f, _))) => Ok(f),
            Ok(None) => Err(io::Error::from(io::ErrorKind::NotFound)),
            Err(e) => Err(path_io(e)),
        }
    }

    fn stripe_file(&self, name: &ArrayName) -> io::Result<File> {
        self.reserved_file("locks", &format!("{:02}.lock", name.stripe()))
    }

    pub(crate) fn stripe_path(&self, name: &ArrayName) -> PathBuf {
        self.dir
            .join("locks")
            .join(format!("{:02}.lock", name.stripe()))
    }

    /// Takes the stripe of `name`, blocking. Read-only handles on media without lock files go
    /// without (nobody can write there).
    pub(crate) fn lock_stripe(&self, name: &ArrayName, exclusive: bool) -> io::Result<StripeGuard> {
        let file = match self.stripe_file(name) {
            Ok(f) => f,
            Err(_) if self.readonly => {
                return Ok(StripeGuard {
                    _file: None,
                    fork_slot: None,
                })
            }
            Err(e) => return Err(e),
        };
        if exclusive {
            file.lock()?;
        } else {
            file.lock_shared()?;
        }
        Ok(StripeGuard::held(file))
    }

    pub(crate) fn try_lock_stripe(&self, name: &ArrayName) -> Option<StripeGuard> {
        let file = self.stripe_file(name).ok()?;
        file.try_lock().ok()?;
        Some(StripeGuard::held(file))
    }

    pub(crate) fn lock_err(&self, name: &ArrayName) -> impl FnOnce(io::Error) -> WriteError {
        io_at(self.stripe_path(name), "lock", WriteError::io)
    }

    /// A fresh staging stem for this session: `.dafstore/staging/<session>/<n>`.
    pub(crate) fn next_stem(&self) -> String {
        self.staging_seq.fetch_add(1, Ordering::Relaxed).to_string()
    }

    /// Makes sure the directory holding `name`'s files exists inside the container, creating
    /// missing components (and syncing their parents), and returns it open. Every component is
    /// opened without following a link; a link, a nested container or a non-directory in the way
    /// is refused ([N7], [C4]).
    pub(crate) fn ensure_parent(&self, name: &ArrayName) -> Result<Dir, WriteError> {
        match beneath::create_dir_all(&self.root, beneath::dir_part(name)) {
            Ok(d) => Ok(d),
            Err(PathError::WrongType { path, .. }) => Err(WriteError::NameConflict {
                path,
                name: name.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// For writers touching an existing array's files: the directory holding them, reached
    /// without following a link ([N7]); `None` if it is missing (nothing there to touch).
    pub(crate) fn check_parent_for_write(
        &self,
        name: &ArrayName,
    ) -> Result<Option<Dir>, WriteError> {
        Ok(beneath::array_dir(&self.root, name)?)
    }

    /// Checks that the directory holding `name`'s files is reached inside the container without
    /// a link or a nested container ([N7], [C4]).
    pub(crate) fn check_parent(&self, name: &ArrayName) -> Result<(), OpenError> {
        match beneath::array_dir(&self.root, name)? {
            Some(_) => Ok(()),
            None => Err(OpenError::NotFound {
                container: self.root.clone(),
                name: name.to_string(),
            }),
        }
    }

    /// The staging directory of session `id`, never created here and never followed through a
    /// link; `None` if it does not exist.
    pub(crate) fn staging_of(&self, id: &str) -> Result<Option<Dir>, PathError> {
        beneath::reserved(&self.root, "staging")?.sub(id)
    }

    /// This session's staging directory, created if missing; `.dafstore/staging` itself is never
    /// re-created: if it is gone the container was removed ([C5]).
    pub(crate) fn own_staging(&self) -> Result<Dir, PathError> {
        beneath::reserved(&self.root, "staging")?.sub_or_create(self.session_id())
    }

    /// Publishes staged files under `name` (SPEC [W3] steps 1–6). `stem` names the staged files
    /// `<staging_dir>/<stem>.<suffix>` and `<stem>.yaml`, all already synced.
    ///
    /// The committed intent (step 1) is the commit point ([W9]): an error before it means nothing
    /// was published; once it is committed the publish is, and a failure of a finishing step
    /// (2–6) is not returned: the row stays `publishing` and recovery finishes it (the next
    /// open of the name in this process, or any open's gc).
    pub(crate) fn commit(
        &self,
        name: &ArrayName,
        meta: &ArrayMeta,
        files: &[FileRecord],
        stem: &str,
        scratch: bool,
    ) -> Result<(), WriteError> {
        self.writable()?;
        self.ensure_parent(name)?;
        let _g = self.lock_stripe(name, true).map_err(self.lock_err(name))?;
        self.recover_locked(name)?;
        let staging = format!("{}/{stem}", self.session_id());
        let intent = self
            .catalog()
            .begin_publish(name.as_str(), meta, files, &staging, scratch);
        if let Err(e) = intent {
            // SQLite rolls a failed transaction back; should its commit have reached the database
            // anyway, the row says so, and then the publish is committed ([W9]).
            if !self.intent_recorded(name, &staging) {
                return Err(e.into());
            }
        }
        // Committed. Whatever fails from here is finished by recovery.
        let _ = self.finish_publish(name, meta, &staging);
        self.arrays().remove(name.as_str());
        Ok(())
    }

    /// Whether the catalog holds the intent of our publish from `staging` ([W3] step 1).
    fn intent_recorded(&self, name: &ArrayName, staging: &str) -> bool {
        matches!(
            self.catalog().get(name.as_str()),
            Ok(Some(r)) if r.state == ArrayState::Publishing && r.staging.as_deref() == Some(staging)
        )
    }

    /// Steps 2–6 of [W3] after the intent is committed (the commit point, [W9]).
    fn finish_publish(
        &self,
        name: &ArrayName,
        meta: &ArrayMeta,
        staging: &str,
    ) -> Result<(), WriteError> {
        failpoint!("publish.after_intent");
        self.roll_forward(name, meta, staging)?;
        failpoint!("publish.before_live");
        self.catalog().set_state(name.as_str(), ArrayState::Live)?;
        failpoint!("publish.after_live");
        Ok(())
    }

    /// Steps 2–5 of [W3], idempotent. Renames go from the staging directory's descriptor to the
    /// array directory's, so no link on either path is followed ([N7]).
    fn roll_forward(
        &self,
        name: &ArrayName,
        meta: &ArrayMeta,
        staging: &str,
    ) -> Result<(), WriteError> {
        let parent = self.ensure_parent(name)?;
        let (id, stem) = staging.split_once('/').unwrap_or(("", staging));
        let sdir = if id.is_empty() {
            None
        } else {
            self.staging_of(id)?
        };
        let staged = |suffix: &str| std::ffi::OsString::from(format!("{stem}.{suffix}"));
        let yaml_final = name.file_path(&self.root, "yaml");
        let yaml_staged = match &sdir {
            Some(d) if d.entry_type(&staged("yaml"))?.is_some() => Some(d),
            _ => None,
        };
        if let Some(sdir) = yaml_staged {
            parent.remove_file(&beneath::leaf(name, "yaml"))?;
            failpoint!("publish.after_unlink_yaml");
            let (ours, others): (&[&str], &[&str]) = match meta {
                ArrayMeta::Dense(_) => (&DENSE_SUFFIXES, &SPARSE_SUFFIXES),
                ArrayMeta::Sparse(_) => (&SPARSE_SUFFIXES, &DENSE_SUFFIXES),
            };
            for suffix in ours {
                let from = staged(suffix);
                if sdir.entry_type(&from)?.is_some() {
                    let to = name.file_path(&self.root, suffix);
                    sdir.rename(&from, &parent, &beneath::leaf(name, suffix))
                        .map_err(io_at(&to, "rename staged file into place", WriteError::io))?;
                    // After the first rename of a sparse array: between the data renames.
                    failpoint!("publish.after_data_rename");
                }
            }
            for suffix in others {
                parent.remove_file(&beneath::leaf(name, suffix))?;
            }
            failpoint!("publish.before_yaml_rename");
            sdir.rename(&staged("yaml"), &parent, &beneath::leaf(name, "yaml"))
                .map_err(io_at(
                    &yaml_final,
                    "rename staged metadata into place",
                    WriteError::io,
                ))?;
            failpoint!("publish.after_yaml_rename");
        }
        failpoint!("publish.before_dir_sync");
        parent.sync()?;
        failpoint!("publish.after_dir_sync");
        Ok(())
    }

    /// Under the exclusive stripe: finishes whatever a dead process left for `name`.
    pub(crate) fn recover_locked(&self, name: &ArrayName) -> Result<(), WriteError> {
        let Some(rec) = self.catalog().get(name.as_str())? else {
            return Ok(());
        };
        match rec.state {
            ArrayState::Live | ArrayState::Deleting => Ok(()),
            ArrayState::Publishing => {
                self.roll_forward(name, &rec.meta, rec.staging.as_deref().unwrap_or(""))?;
                self.catalog().set_state(name.as_str(), ArrayState::Live)?;
                Ok(())
            }
            ArrayState::Removing => self.finish_remove(name),
        }
    }

    /// Under the exclusive stripe: finishes a removal that was marked `removing` before the
    /// stripe was taken (last release, reap, `set_scratch`), if the row is still `removing`.
    /// Another writer may have taken the stripe first, finished it as recovery and published a
    /// new array under the name; that array is left alone ([W8]). Returns whether it removed.
    pub(crate) fn finish_due_remove(&self, name: &ArrayName) -> Result<bool, WriteError> {
        let still_due = self
            .catalog()
            .get(name.as_str())?
            .is_some_and(|r| r.state == ArrayState::Removing);
        if still_due {
            self.finish_remove(name)?;
        }
        Ok(still_due)
    }

    /// Unlinks `name`'s files (relative to their directory, reached without following a link) and
    /// deletes its row. If the directory is now behind a link, a nested container or a file, its
    /// files are not the container's to unlink: only the row is deleted, the entry in the way is
    /// left for fsck to report ([N7], [C4]), and nothing is ever left stuck in `removing`.
    pub(crate) fn finish_remove(&self, name: &ArrayName) -> Result<(), WriteError> {
        let dir = match beneath::array_dir(&self.root, name) {
            Ok(d) => d,
            Err(
                PathError::Link { .. }
                | PathError::NestedContainer { .. }
                | PathError::WrongType { .. },
            ) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(dir) = &dir {
            dir.remove_file(&beneath::leaf(name, "yaml"))?;
        }
        failpoint!("remove.after_unlink_yaml");
        if let Some(dir) = &dir {
            for suffix in DENSE_SUFFIXES.iter().chain(SPARSE_SUFFIXES.iter()) {
                dir.remove_file(&beneath::leaf(name, suffix))?;
            }
            dir.sync()?;
        }
        failpoint!("remove.before_delete_row");
        self.catalog().delete(name.as_str())?;
        self.arrays().remove(name.as_str());
        Ok(())
    }

    /// Replaces `<name>.yaml` (new inode) with checksums, or without them (`None`) while
    /// in-place writers are active ([W7]).
    pub(crate) fn rewrite_yaml(
        &self,
        name: &ArrayName,
        meta: &ArrayMeta,
        crcs: Option<&[(String, u32)]>,
    ) -> Result<(), WriteError> {
        let Some(parent) = self.check_parent_for_write(name)? else {
            return Err(WriteError::io(
                name.parent_dir(&self.root),
                "replace metadata file",
                io::Error::from(io::ErrorKind::NotFound),
            ));
        };
        let dir = self.own_staging()?;
        let tmp = std::ffi::OsString::from(format!("{}.yaml", self.next_stem()));
        let fin = name.file_path(&self.root, "yaml");
        let write = || -> io::Result<()> {
            let mut f = dir.create_new(&tmp)?;
            f.write_all(render_yaml(meta, crcs).as_bytes())?;
            f.sync_all()?;
            dir.rename(&tmp, &parent, &beneath::leaf(name, "yaml"))?;
            parent.sync().map_err(io::Error::other)
        };
        write().map_err(|e| {
            let _ = dir.remove_file(&tmp);
            WriteError::io(fin.clone(), "replace metadata file", e)
        })
    }

    /// Under the exclusive stripe: recomputes the checksums of `name` if no in-place writer is
    /// registered, records them, and writes them back into its metadata file.
    pub(crate) fn refresh_checksums(&self, name: &ArrayName) -> Result<(), WriteError> {
        self.check_parent_for_write(name)?;
        let Some(rec) = self.catalog().get(name.as_str())? else {
            return Ok(());
        };
        if rec.state != ArrayState::Live {
            return Ok(());
        }
        let mut crcs = Vec::new();
        for (suffix, expected) in rec.meta.files() {
            let p = name.file_path(&self.root, suffix);
            // A file changed in size outside dafstore (or replaced by a link, a FIFO …) is
            // damaged: leave the checksum stale for fsck rather than record the checksum of
            // damaged bytes.
            let file = match beneath::open_array_file(&self.root, name, suffix, false) {
                Ok(Some((f, m))) if m.len() == expected => f,
                _ => return Ok(()),
            };
            let crc =
                crate::checksum::crc32c_read(file).map_err(io_at(&p, "read", WriteError::io))?;
            crcs.push((suffix.to_string(), crc));
        }
        if self.catalog().set_checksums(name.as_str(), &crcs)? {
            self.rewrite_yaml(name, &rec.meta, Some(&crcs))?;
        }
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        {
            let mut registry = lock(&REGISTRY);
            if registry
                .get(&self.key)
                .is_some_and(|w| w.strong_count() == 0)
            {
                registry.remove(&self.key);
            }
        }
        // Only this process's own state: an inherited one belongs to a parent (its catalog
        // connection is leaked by `Catalog`'s Drop, its session and staging files are left).
        if let Ok(p) = self.here_if_started() {
            self.end_session(p);
        }
    }
}

impl Shared {
    /// Every handle of this process is gone, so every reference was released, except `retain`s
    /// never matched by a `release`: ends the session as if it had died, running what it blocked.
    fn end_session(&self, p: &Proc) {
        let Some(s) = &p.session else { return };
        let own = s.id.clone();
        // Only our own session: reaping others is gc's job, and a handle opened for
        // inspection (fsck without --repair) must change nothing when it ends.
        let alive = |id: &str| id != own;
        let reaped = self.catalog().reap_dead(&alive);
        if let Ok(reaped) = reaped {
            for n in reaped.due {
                if let Ok(name) = ArrayName::new(&n) {
                    if let Ok(_g) = self.lock_stripe(&name, true) {
                        let _ = self.finish_due_remove(&name);
                    }
                }
            }
        }
        let _ = self.catalog().remove_session(&s.id);
        if matches!(self.staging_needed(&s.id), Ok(false)) {
            if let Ok(staging) = beneath::reserved(&self.root, "staging") {
                let _ = staging.remove_tree(&s.id);
            }
        }
        if let (Ok(sessions), Some(leaf)) = (
            beneath::reserved(&self.root, "sessions"),
            s.path.file_name(),
        ) {
            let _ = sessions.remove_file(leaf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_file_systems_are_named_and_local_ones_are_not() {
        assert_eq!(network_fs(0x6969), Some("NFS"));
        assert_eq!(network_fs(0xFF53_4D42), Some("CIFS"));
        assert_eq!(network_fs(0x6573_5546), Some("FUSE"));
        assert_eq!(network_fs(0x0102_1994), None); // tmpfs
        assert_eq!(network_fs(0xEF53), None); // ext4
        assert_eq!(network_fs(0x5846_5342), None); // xfs
                                                   // The machine running the tests: /dev/shm and the temp dir are local.
        for p in ["/dev/shm", "/tmp"] {
            if Path::new(p).is_dir() {
                assert!(check_local_fs(Path::new(p)).is_ok(), "{p}");
            }
        }
    }
}
