//! A container (SPEC section 2): create and open, the per-process registry that makes every handle
//! on one container in a process share one catalog connection, one session and one array cache,
//! the lock stripes, and the publish / remove / recovery protocol of SPEC section 7.
//!
//! Never: write a published file in place except through an in-place writer (SPEC [W7]), truncate
//! a published file, or touch a file for a name that did not validate.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use crate::array::ArrayInner;
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

pub(crate) struct Shared {
    pub(crate) root: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) readonly: bool,
    catalog: Mutex<Catalog>,
    pub(crate) session: Option<Session>,
    pub(crate) arrays: Mutex<HashMap<String, Weak<ArrayInner>>>,
    pub(crate) counts: Mutex<crate::refs::Counts>,
    pid: u32,
    key: RegistryKey,
    staging_seq: AtomicU64,
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

impl Drop for StripeGuard {
    fn drop(&mut self) {
        sys::release_fork_slot(self.fork_slot);
    }
}

fn container_yaml() -> String {
    format!("format: dafstore\nversion:\n- {CONTAINER_MAJOR}\n- {CONTAINER_MINOR}\n")
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
    File::open(path)
        .and_then(|f| {
            f.take(crate::meta::MAX_YAML_BYTES)
                .read_to_string(&mut text)
        })
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

    /// Opens a container read-only. On media this process cannot write, the catalog is opened
    /// immutable (nobody may be writing it then).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        Container::open_with(path.as_ref(), true, false)
    }

    /// Opens read-write without garbage collection, so an inspection (fsck) or a `gc` that
    /// reports what it did sees the container as it was left.
    pub fn open_without_gc(path: impl AsRef<Path>) -> Result<Container, ContainerError> {
        Container::open_with(path.as_ref(), false, false)
    }

    fn open_with(path: &Path, readonly: bool, run_gc: bool) -> Result<Container, ContainerError> {
        let root =
            fs::canonicalize(path).map_err(io_at(path, "open container", ContainerError::io))?;
        let dir = root.join(RESERVED_DIR);
        let version_file = dir.join("container.yaml");
        if !version_file.is_file() {
            return Err(ContainerError::NotAContainer {
                path: path.to_path_buf(),
            });
        }
        read_container_yaml(&version_file)?;
        check_local_fs(&root)?;
        let md = fs::metadata(&root).map_err(io_at(&root, "stat", ContainerError::io))?;
        let key = (md.dev(), md.ino(), readonly);
        let mut registry = lock(&REGISTRY);
        if let Some(shared) = registry.get(&key).and_then(Weak::upgrade) {
            if shared.pid == std::process::id() {
                drop(registry);
                let c = Container { shared };
                if run_gc {
                    c.gc()?; // every open reaps dead holders ([P5])
                }
                return Ok(c);
            }
            // A forked child: the parent's connection and session must not be used here.
        }
        let catalog_path = dir.join("catalog.sqlite");
        let access = if !readonly {
            Access::ReadWrite
        } else if writable_dir(&dir) {
            Access::ReadOnly
        } else {
            Access::Immutable
        };
        let catalog = Catalog::open(&catalog_path, access)?;
        let mut shared = Shared {
            root,
            dir,
            readonly,
            catalog: Mutex::new(catalog),
            session: None,
            arrays: Mutex::new(HashMap::new()),
            counts: Mutex::new(HashMap::new()),
            pid: std::process::id(),
            key,
            staging_seq: AtomicU64::new(0),
        };
        if !readonly {
            match shared.start_session() {
                Ok(s) => shared.session = Some(s),
                Err(e) => {
                    // `Shared`'s Drop takes the registry lock: release it before `shared` drops,
                    // or this thread deadlocks on itself (and every later open in the process).
                    drop(registry);
                    return Err(e);
                }
            }
        }
        let shared = Arc::new(shared);
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
        Ok(report)
    }

    /// Removes session lock files and staging directories of dead sessions (unless an unfinished
    /// publish still needs the staged files). Returns how many staging directories were removed.
    fn remove_dead_staging(&self) -> Result<usize, ContainerError> {
        let mut ids: Vec<String> = Vec::new();
        for dir in ["sessions", "staging"] {
            let d = self.shared.dir.join(dir);
            if let Ok(entries) = fs::read_dir(&d) {
                for e in entries.flatten() {
                    let n = e
                        .file_name()
                        .to_string_lossy()
                        .trim_end_matches(".lock")
                        .to_string();
                    if is_session_id(&n) && !ids.contains(&n) {
                        ids.push(n);
                    }
                }
            }
        }
        let mut removed = 0;
        for id in ids {
            // Hold the dead session's lock (if its file exists) while removing its files.
            let lock_path = self.shared.dir.join("sessions").join(format!("{id}.lock"));
            let probe = match File::open(&lock_path) {
                Ok(f) if f.try_lock().is_ok() => Some(f),
                Ok(_) => continue, // alive
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(_) => continue,
            };
            if self
                .shared
                .catalog()
                .sessions()?
                .iter()
                .any(|(s, _)| *s == id)
            {
                continue; // reaped in the next gc (its row is removed by `reap_dead` first)
            }
            if !self.shared.staging_needed(&id)? {
                let staging = self.shared.dir.join("staging").join(&id);
                match fs::remove_dir_all(&staging) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(ContainerError::io(
                            staging,
                            "remove dead session's staging files",
                            e,
                        ))
                    }
                }
            }
            let _ = fs::remove_file(&lock_path);
            drop(probe);
        }
        // Temporary session files of processes that died while starting.
        if let Ok(entries) = fs::read_dir(self.shared.dir.join("sessions")) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    if let Ok(f) = File::open(e.path()) {
                        if f.try_lock().is_ok() {
                            let _ = fs::remove_file(e.path());
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
}

pub(crate) fn is_session_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn writable_dir(dir: &Path) -> bool {
    sys::can_write(dir)
}

impl Shared {
    pub(crate) fn catalog(&self) -> MutexGuard<'_, Catalog> {
        lock(&self.catalog)
    }

    pub(crate) fn writable(&self) -> Result<(), WriteError> {
        if self.readonly {
            return Err(WriteError::ReadOnly {
                container: self.root.clone(),
            });
        }
        Ok(())
    }

    fn start_session(&self) -> Result<Session, ContainerError> {
        // Between its creation and its lock, the temporary file is unlocked, and another
        // process's gc may take it for a dead starter's and unlink it; then the rename fails with
        // NotFound and we start over under a new id. Once locked it is never removed by others.
        let mut attempts = 0;
        loop {
            match self.try_start_session() {
                Err(ContainerError::Io { source, .. })
                    if source.kind() == io::ErrorKind::NotFound && attempts < 100 =>
                {
                    attempts += 1;
                }
                r => return r,
            }
        }
    }

    fn try_start_session(&self) -> Result<Session, ContainerError> {
        let id = random_id().map_err(io_at("/dev/urandom", "read", ContainerError::io))?;
        let dir = self.dir.join("sessions");
        let tmp = dir.join(format!(".tmp-{id}"));
        let path = dir.join(format!("{id}.lock"));
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&tmp)
            .map_err(io_at(&tmp, "create session lock", ContainerError::io))?;
        crate::failpoint::hit("session.before_lock").map_err(io_at(
            &tmp,
            "start session (injected failure)",
            ContainerError::io,
        ))?;
        file.lock()
            .map_err(io_at(&tmp, "lock session", ContainerError::io))?;
        // Renamed only once locked: a session file under its final name is always locked by a
        // live process ([P1]).
        fs::rename(&tmp, &path).map_err(io_at(
            &path,
            "publish session lock",
            ContainerError::io,
        ))?;
        let fork_slot = sys::forget_in_forked_child(&file);
        self.catalog().add_session(&id, self.pid)?;
        Ok(Session {
            id,
            path,
            _lock: file,
            fork_slot,
        })
    }

    /// Whether session `id` is alive ([P1]): ours, or its lock file is locked by someone.
    pub(crate) fn session_alive(&self, id: &str) -> bool {
        if self.session.as_ref().is_some_and(|s| s.id == id) {
            return true;
        }
        if !is_session_id(id) {
            return false;
        }
        match File::open(self.dir.join("sessions").join(format!("{id}.lock"))) {
            Err(e) => e.kind() != io::ErrorKind::NotFound,
            Ok(f) => !matches!(f.try_lock(), Ok(())),
        }
    }

    /// Whether this handle was inherited through `fork()` (SPEC [P2]): then nothing may be done
    /// with it (its catalog connection, session and staging files are the parent's).
    pub(crate) fn is_foreign(&self) -> bool {
        self.pid != std::process::id()
    }

    /// Whether an unfinished publish still needs staged files of session `id` (they stay until
    /// recovery succeeds).
    pub(crate) fn staging_needed(&self, id: &str) -> Result<bool, CatalogError> {
        self.catalog().staging_in_use(&format!("{id}/"))
    }

    pub(crate) fn session_id(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.id.as_str())
    }

    pub(crate) fn stripe_path(&self, name: &ArrayName) -> PathBuf {
        self.dir
            .join("locks")
            .join(format!("{:02}.lock", name.stripe()))
    }

    /// Takes the stripe of `name`, blocking. Read-only handles on media without lock files go
    /// without (nobody can write there).
    pub(crate) fn lock_stripe(&self, name: &ArrayName, exclusive: bool) -> io::Result<StripeGuard> {
        let path = self.stripe_path(name);
        let file = match File::open(&path) {
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
        let file = File::open(self.stripe_path(name)).ok()?;
        file.try_lock().ok()?;
        Some(StripeGuard::held(file))
    }

    pub(crate) fn lock_err(&self, name: &ArrayName) -> impl FnOnce(io::Error) -> WriteError {
        io_at(self.stripe_path(name), "lock", WriteError::io)
    }

    /// A fresh staging stem for this session: `.dafstore/staging/<session>/<n>`.
    pub(crate) fn staging_dir(&self) -> PathBuf {
        self.dir.join("staging").join(self.session_id())
    }

    pub(crate) fn next_stem(&self) -> String {
        self.staging_seq.fetch_add(1, Ordering::Relaxed).to_string()
    }

    /// Makes sure the directory holding `name`'s files exists inside the container, creating
    /// missing components (and syncing their parents), refusing files and outside symlinks in the
    /// way ([N7]).
    pub(crate) fn ensure_parent(&self, name: &ArrayName) -> Result<PathBuf, WriteError> {
        let mut path = self.root.clone();
        let comps: Vec<&str> = name.as_str().split('/').collect();
        for comp in &comps[..comps.len() - 1] {
            let next = path.join(comp);
            match fs::symlink_metadata(&next) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    let target = fs::canonicalize(&next).map_err(io_at(
                        &next,
                        "resolve symlink",
                        WriteError::io,
                    ))?;
                    if !target.starts_with(&self.root) || !target.is_dir() {
                        return Err(WriteError::NameConflict {
                            path: next,
                            name: name.to_string(),
                        });
                    }
                }
                Ok(_) => {
                    return Err(WriteError::NameConflict {
                        path: next,
                        name: name.to_string(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    match fs::create_dir(&next) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(WriteError::io(next, "create directory", e)),
                    }
                    fsync_dir(&path).map_err(io_at(&path, "sync directory", WriteError::io))?;
                }
                Err(e) => return Err(WriteError::io(next, "stat", e)),
            }
            path = next;
        }
        Ok(path)
    }

    /// For writers touching an existing array's files: the directory holding them must resolve
    /// inside the container ([N7]); a symlink swapped in after publishing must not make us write,
    /// rename or unlink outside it.
    pub(crate) fn check_parent_for_write(&self, name: &ArrayName) -> Result<(), WriteError> {
        match self.check_parent(name) {
            Ok(()) => Ok(()),
            Err(OpenError::NotFound { .. }) => Ok(()), // nothing there to touch
            Err(OpenError::Io { path, op, source }) => Err(WriteError::Io { path, op, source }),
            Err(_) => Err(WriteError::NameConflict {
                path: name.parent_dir(&self.root),
                name: name.to_string(),
            }),
        }
    }

    /// Checks that the directory holding `name`'s files resolves inside the container ([N7]).
    pub(crate) fn check_parent(&self, name: &ArrayName) -> Result<(), OpenError> {
        if !name.as_str().contains('/') {
            return Ok(());
        }
        let parent = name.parent_dir(&self.root);
        match fs::canonicalize(&parent) {
            Ok(p) if p.starts_with(&self.root) => Ok(()),
            Ok(_) => Err(OpenError::NotRegularFile { path: parent }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(OpenError::NotFound {
                container: self.root.clone(),
                name: name.to_string(),
            }),
            Err(e) => Err(OpenError::io(parent, "resolve", e)),
        }
    }

    /// Publishes staged files under `name` (SPEC [W3] steps 1–6). `stem` names the staged files
    /// `<staging_dir>/<stem>.<suffix>` and `<stem>.yaml`, all already synced.
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
        self.catalog()
            .begin_publish(name.as_str(), meta, files, &staging, scratch)?;
        failpoint!("publish.after_intent");
        self.roll_forward(name, meta, &staging)?;
        failpoint!("publish.before_live");
        self.catalog().set_state(name.as_str(), ArrayState::Live)?;
        failpoint!("publish.after_live");
        lock(&self.arrays).remove(name.as_str());
        Ok(())
    }

    /// Steps 2–5 of [W3], idempotent.
    fn roll_forward(
        &self,
        name: &ArrayName,
        meta: &ArrayMeta,
        staging: &str,
    ) -> Result<(), WriteError> {
        let staged = |suffix: &str| self.dir.join("staging").join(format!("{staging}.{suffix}"));
        let yaml_staged = staged("yaml");
        let yaml_final = name.file_path(&self.root, "yaml");
        if yaml_staged.exists() {
            remove_if_exists(&yaml_final)?;
            failpoint!("publish.after_unlink_yaml");
            let (ours, others): (&[&str], &[&str]) = match meta {
                ArrayMeta::Dense(_) => (&DENSE_SUFFIXES, &SPARSE_SUFFIXES),
                ArrayMeta::Sparse(_) => (&SPARSE_SUFFIXES, &DENSE_SUFFIXES),
            };
            for suffix in ours {
                let from = staged(suffix);
                if from.exists() {
                    let to = name.file_path(&self.root, suffix);
                    fs::rename(&from, &to).map_err(io_at(
                        &to,
                        "rename staged file into place",
                        WriteError::io,
                    ))?;
                    // After the first rename of a sparse array: between the data renames.
                    failpoint!("publish.after_data_rename");
                }
            }
            for suffix in others {
                remove_if_exists(&name.file_path(&self.root, suffix))?;
            }
            failpoint!("publish.before_yaml_rename");
            fs::rename(&yaml_staged, &yaml_final).map_err(io_at(
                &yaml_final,
                "rename staged metadata into place",
                WriteError::io,
            ))?;
            failpoint!("publish.after_yaml_rename");
        }
        let parent = name.parent_dir(&self.root);
        failpoint!("publish.before_dir_sync");
        fsync_dir(&parent).map_err(io_at(&parent, "sync directory", WriteError::io))?;
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
                self.ensure_parent(name)?;
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

    pub(crate) fn finish_remove(&self, name: &ArrayName) -> Result<(), WriteError> {
        self.check_parent_for_write(name)?;
        remove_if_exists(&name.file_path(&self.root, "yaml"))?;
        failpoint!("remove.after_unlink_yaml");
        for suffix in DENSE_SUFFIXES.iter().chain(SPARSE_SUFFIXES.iter()) {
            remove_if_exists(&name.file_path(&self.root, suffix))?;
        }
        let parent = name.parent_dir(&self.root);
        if parent.exists() {
            fsync_dir(&parent).map_err(io_at(&parent, "sync directory", WriteError::io))?;
        }
        failpoint!("remove.before_delete_row");
        self.catalog().delete(name.as_str())?;
        lock(&self.arrays).remove(name.as_str());
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
        self.check_parent_for_write(name)?;
        let dir = self.staging_dir();
        fs::create_dir_all(&dir).map_err(io_at(
            &dir,
            "create staging directory",
            WriteError::io,
        ))?;
        let tmp = dir.join(format!("{}.yaml", self.next_stem()));
        let fin = name.file_path(&self.root, "yaml");
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(render_yaml(meta, crcs).as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &fin)?;
            fsync_dir(&name.parent_dir(&self.root))
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
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
            // A file changed in size outside dafstore is damaged: leave the checksum stale for
            // fsck rather than record the checksum of damaged bytes.
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() && m.len() == expected => {}
                _ => return Ok(()),
            }
            let crc =
                crate::checksum::crc32c_file(&p).map_err(io_at(&p, "read", WriteError::io))?;
            crcs.push((suffix.to_string(), crc));
        }
        if self.catalog().set_checksums(name.as_str(), &crcs)? {
            self.rewrite_yaml(name, &rec.meta, Some(&crcs))?;
        }
        Ok(())
    }
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), WriteError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WriteError::io(path.to_path_buf(), "remove", e)),
    }
}

/// Opens a published file for reading (or reading and writing) without following a symlink.
pub(crate) fn open_nofollow(path: &Path, write: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // A forked child: the catalog leaks its connection itself (see `Catalog`'s Drop); the
            // session and staging files belong to the parent.
            return;
        }
        {
            let mut registry = lock(&REGISTRY);
            if registry
                .get(&self.key)
                .is_some_and(|w| w.strong_count() == 0)
            {
                registry.remove(&self.key);
            }
        }
        if let Some(s) = &self.session {
            // Every handle is gone, so every reference was released, except `retain`s never
            // matched by a `release`: end the session as if it had died, running what it blocked.
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
                let _ = fs::remove_dir_all(self.dir.join("staging").join(&s.id));
            }
            let _ = fs::remove_file(&s.path);
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
