//! One container as the processes of one fork tree see it ([`Shared`]) and, per process, its own
//! catalog connection, session, references and open arrays ([`Proc`]); the per-process registry
//! that makes every handle on one container in a process share them.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, Weak};

use super::fork::Inherited;
use super::refs::Counts;
use super::session::start_session;
use super::session::Session;
use crate::catalog::{Access, ArrayInfo, Catalog};
use crate::error::{io_at, CatalogError, ContainerError, OpenError, PathError, WriteError};
use crate::format::name::ArrayName;
use crate::fs::beneath::{self, Dir};
use crate::fs::sys;
use crate::sync::lock;

/// This process's open arrays (mapped generations, `crate::array`), by name: the protocol only
/// forgets an entry when the name's files change; the array layer knows what the entries are.
pub(crate) type OpenArrays = HashMap<String, Weak<dyn std::any::Any + Send + Sync>>;

type RegistryKey = (u64, u64, bool);

/// One container as seen by the processes of one fork tree: what is the same in all of them (the
/// paths) and, per process, its own catalog connection, session, references and open arrays.
pub(crate) struct Shared {
    pub(crate) root: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) readonly: bool,
    pub(super) access: Access,
    pub(super) key: RegistryKey,
    pub(super) staging_seq: AtomicU64,
    /// The process that opened the container.
    pub(super) origin: Proc,
    /// Held while a forked child makes its heir, and by releases of inherited references
    /// ([P2]): a release never falls between the copy of the inherited counts and the heir.
    pub(super) heir_lock: Mutex<()>,
    /// Where a forked child's failed attempt to start its own session is reported (made again at
    /// the next use).
    pub(super) broken: OnceLock<Box<Proc>>,
    /// How long writes through this container's handles wait for room under its limits
    /// (SPEC 9.7; `Container::wait_for_room`).
    pub(crate) room_wait: Mutex<Option<std::time::Duration>>,
    /// Names this process is loading (`Container::open_or_load`), with the loading process's
    /// id and the lifecycle their publish takes.
    pub(super) loading: Mutex<HashMap<String, super::budget::Loading>>,
    /// The container directory and `.dafstore/locks`, opened once (each without following a
    /// link, [N7]), with their device and inode: the open path's stripe lock and data files are
    /// opened relative to them, not walked from the root every time. Each use first checks with
    /// one `lstat` that the path still names the same directory; if not (the container was
    /// removed, renamed or replaced, `locks/` swapped for a copy, a link put in place), the walk
    /// from the root runs as before and says why ([C5]).
    pub(super) root_dir: OnceLock<(Dir, (u64, u64))>,
    pub(super) locks_dir: OnceLock<(Dir, (u64, u64))>,
}

/// The cached directory of `cell` if `path` still names it (see [`Shared::root_dir`]), else
/// `None`; opened by `open` the first time.
fn current_dir<'a>(
    cell: &'a OnceLock<(Dir, (u64, u64))>,
    path: &Path,
    open: impl FnOnce() -> Result<Dir, PathError>,
) -> Option<&'a Dir> {
    use std::os::unix::fs::MetadataExt;
    let (dir, id) = match cell.get() {
        Some(cached) => cached,
        None => {
            let d = open().ok()?;
            let id = d.id().ok()?;
            cell.get_or_init(|| (d, id))
        }
    };
    let now = fs::symlink_metadata(path).ok()?;
    (now.is_dir() && (now.dev(), now.ino()) == *id).then_some(dir)
}

/// What belongs to one process (SPEC [P2]). A process forked from the one that opened the
/// container must not use its parent's catalog connection (SQLite's rule), session or
/// references; the first time it uses an inherited handle it gets its own `Proc` (its heir),
/// which re-takes, under its own session, the references its inherited views stand for.
pub(crate) struct Proc {
    /// The fork epoch of the process that made it (`sys::fork_epoch`).
    pub(super) epoch: u64,
    pub(super) catalog: Mutex<Catalog>,
    /// `None` on read-only handles (and on an heir that could not start one: then `catalog` is
    /// unusable and says why).
    pub(super) session: Option<Session>,
    pub(super) arrays: Mutex<OpenArrays>,
    pub(super) counts: Mutex<Counts>,
    /// This session's reference records ([P3]), taken while `counts` is locked.
    pub(super) slots: Mutex<super::slots::Slots>,
    /// The release clock ([E5]), opened at the first release.
    pub(super) clock: Mutex<Option<File>>,
    /// The removal counter ([P4]), opened at the first reference.
    pub(super) removals: Mutex<Option<File>>,
    /// References that handles inherited through fork stand for but that this process could not
    /// take again (the array was no longer live): their release touches nothing else ([P2]).
    pub(super) unheld: Mutex<Counts>,
    /// In-place writers ([W7]) registered by this process, by name.
    pub(super) writers: Mutex<Counts>,
    /// In-place writers inherited through fork that this process could not register again.
    pub(super) unheld_writers: Mutex<Counts>,
    /// Arrays whose checksums must leave their metadata file once this heir is installed (it
    /// registered the first in-place writer again, [W7]).
    pub(super) unstamp: Mutex<Vec<String>>,
    /// Catalog rows this process read under a stripe held shared, with the stripe's change
    /// stamp read then ([W6]): used instead of the catalog while the stamp is unchanged.
    pub(super) rows: Mutex<KeptRows>,
    /// Whether the catalog's writers all stamp the stripes (schema 5), so rows may be kept.
    pub(super) stamped: bool,
    /// This process's open lock files, for taking stripes shared ([W6]).
    pub(super) stripes: super::stripes::StripeFiles,
    /// This state in a process forked from this one (made there on first use).
    pub(super) heir: OnceLock<Box<Proc>>,
}

/// Rows kept against the stripes' change stamps ([W6]), by name; at most [`KeptRows::MAX`].
#[derive(Default)]
pub(crate) struct KeptRows {
    rows: HashMap<String, (u64, crate::catalog::ArrayInfo)>,
}

impl KeptRows {
    const MAX: usize = 4096;

    /// The row kept for `name` if it was kept under `stamp`.
    pub(crate) fn get(&self, name: &str, stamp: u64) -> Option<&crate::catalog::ArrayInfo> {
        self.rows
            .get(name)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, r)| r)
    }

    pub(crate) fn keep(&mut self, name: &str, stamp: u64, row: &crate::catalog::ArrayInfo) {
        if self.rows.len() >= Self::MAX && !self.rows.contains_key(name) {
            self.rows.clear();
        }
        self.rows.insert(name.to_string(), (stamp, row.clone()));
    }

    pub(crate) fn forget(&mut self, name: &str) {
        self.rows.remove(name);
    }
}

static REGISTRY: LazyLock<Mutex<HashMap<RegistryKey, Weak<Shared>>>> =
    LazyLock::new(Default::default);

impl Proc {
    /// Opens the catalog and, read-write, starts a session; with `inherited` (a forked child's),
    /// takes each inherited reference again under the new session ([P2]).
    pub(super) fn start(
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
        if catalog.migrated() {
            stamp_all(dir);
        }
        let stamped = catalog.stamped();
        let pid = std::process::id();
        let session = if readonly {
            None
        } else {
            Some(start_session(dir, &mut catalog, pid)?)
        };
        let mut held = Counts::new();
        let mut slots = super::slots::Slots::default();
        let mut unheld = Counts::new();
        let mut arrays = HashMap::new();
        let mut writers = Counts::new();
        let mut unheld_writers = Counts::new();
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
                    Some(s) => take_inherited(dir, &mut catalog, &mut slots, s, &name)?,
                    None => false,
                };
                if taken {
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
            slots: Mutex::new(slots),
            clock: Mutex::new(None),
            removals: Mutex::new(None),
            unheld: Mutex::new(unheld),
            writers: Mutex::new(writers),
            unheld_writers: Mutex::new(unheld_writers),
            unstamp: Mutex::new(unstamp),
            rows: Mutex::new(KeptRows::default()),
            stamped,
            stripes: Default::default(),
            heir: OnceLock::new(),
        })
    }

    /// A forked child's state when its own session could not be started: every catalog access
    /// returns `why`.
    pub(super) fn broken(dir: &Path, why: String) -> Proc {
        Proc {
            epoch: sys::fork_epoch(),
            catalog: Mutex::new(Catalog::unusable(&dir.join("catalog.sqlite"), why)),
            session: None,
            arrays: Mutex::new(HashMap::new()),
            counts: Mutex::new(HashMap::new()),
            slots: Mutex::new(super::slots::Slots::default()),
            clock: Mutex::new(None),
            removals: Mutex::new(None),
            unheld: Mutex::new(HashMap::new()),
            writers: Mutex::new(HashMap::new()),
            unheld_writers: Mutex::new(HashMap::new()),
            unstamp: Mutex::new(Vec::new()),
            rows: Mutex::new(KeptRows::default()),
            stamped: false,
            stripes: Default::default(),
            heir: OnceLock::new(),
        }
    }
}

/// After a migration to schema 5: gives every lock stripe its change stamp ([W6]), so an
/// exclusive holder rewrites 8 bytes in place and never needs room ([Q3]). Best effort: a stripe
/// left without one (no room now) gets it, growing the file, at its first exclusive lock.
fn stamp_all(dir: &Path) {
    let root = dir.parent().unwrap_or(dir);
    let Ok(locks) = beneath::reserved(root, "locks") else {
        return;
    };
    for i in 0..crate::format::LOCK_STRIPES {
        let leaf = std::ffi::OsString::from(format!("{i:02}.lock"));
        if let Ok(Some((f, _))) = locks.open_file(&leaf, true) {
            // Blocking: a stripe skipped here would need room at its first exclusive lock.
            if super::stripes::read_stamp(&f).is_none() && f.lock().is_ok() {
                let _ = super::stripes::restamp(&f);
            }
        }
    }
}

/// A forked child's new session takes again a reference its inherited handles stand for ([P2]):
/// under the name's stripe held shared, it writes its record and keeps it if the row is still
/// `live` ([P4]). Returns whether it holds the name.
fn take_inherited(
    dir: &Path,
    catalog: &mut Catalog,
    slots: &mut super::slots::Slots,
    session: &Session,
    name: &str,
) -> Result<bool, ContainerError> {
    let Ok(array) = ArrayName::new(name) else {
        return Ok(false);
    };
    let root = dir.parent().unwrap_or(dir);
    let stripe = beneath::reserved(root, "locks")
        .map_err(path_io)
        .and_then(|d| open_in(&d, &super::stripes::stripe_leaf(&array), false))
        .map_err(|e| ContainerError::io(dir.join("locks"), "open a lock stripe", e))?;
    stripe
        .lock_shared()
        .map_err(|e| ContainerError::io(dir.join("locks"), "lock a stripe", e))?;
    // Registered so a child forked while it is held does not keep it (SPEC [P2]).
    let _guard = super::stripes::StripeGuard::held(stripe);
    slots
        .take(&session._lock, name, array.key(), crate::catalog::now_ms())
        .map_err(|e| ContainerError::io(session.path.clone(), "record a reference", e))?;
    let live = matches!(
        catalog.get(name),
        Ok(Some(r)) if r.state == crate::catalog::ArrayState::Live
    );
    if !live {
        let _ = slots.clear(&session._lock, name);
    }
    Ok(live)
}

/// The regular file `leaf` of `dir`, opened without following a link and without blocking
/// ([N7], [N9]), with an `io::Error` (`NotFound` if it is missing).
pub(super) fn open_in(dir: &Dir, leaf: &str, write: bool) -> io::Result<File> {
    match dir.open_file(std::ffi::OsStr::new(leaf), write) {
        Ok(Some((f, _))) => Ok(f),
        Ok(None) => Err(io::Error::from(io::ErrorKind::NotFound)),
        Err(e) => Err(path_io(e)),
    }
}

/// A [`PathError`] where only an `io::Error` fits (lock files): its message, or the OS error.
pub(super) fn path_io(e: PathError) -> io::Error {
    match e {
        PathError::Io(crate::error::IoError { source, .. }) => source,
        PathError::ContainerRemoved { .. } => {
            io::Error::new(io::ErrorKind::NotFound, e.to_string())
        }
        other => io::Error::other(other.to_string()),
    }
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
}

impl Shared {
    /// This process's in-place writer registrations, by name.
    pub(crate) fn writers(&self) -> MutexGuard<'_, Counts> {
        lock(&self.here().writers)
    }
}

impl Shared {
    /// The catalog connection of this process.
    pub(crate) fn catalog(&self) -> MutexGuard<'_, Catalog> {
        lock(&self.here().catalog)
    }

    /// This process's reference counts.
    pub(crate) fn counts(&self) -> MutexGuard<'_, Counts> {
        lock(&self.here().counts)
    }

    /// This process's open arrays, by name.
    pub(crate) fn arrays(&self) -> MutexGuard<'_, OpenArrays> {
        lock(&self.here().arrays)
    }
}

impl Shared {
    /// Whether `name`'s row is no longer the one read as `rec` (another generation or state):
    /// with no stripe lock, this after opening the files is what ties them to the row (SPEC
    /// [Q1]): a publish records its intent before it renames any file.
    pub(crate) fn row_changed(
        &self,
        name: &ArrayName,
        rec: &ArrayInfo,
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

    /// The container directory, opened once, if its path still names it ([`Shared::root_dir`]).
    pub(crate) fn root_dir(&self) -> Option<&Dir> {
        current_dir(&self.root_dir, &self.root, || Dir::root(&self.root))
    }

    /// `.dafstore/locks`, opened once, if its path still names it ([`Shared::root_dir`]).
    pub(crate) fn locks_dir(&self) -> Option<&Dir> {
        current_dir(&self.locks_dir, &self.dir.join("locks"), || {
            beneath::reserved(&self.root, "locks")
        })
    }

    /// Opens `.dafstore/<sub>/<file>` for reading without following a link and without blocking
    /// (a FIFO there is refused, not waited on) ([N7], [N9]).
    pub(crate) fn reserved_file(&self, sub: &str, file: &str) -> io::Result<File> {
        let dir = beneath::reserved(&self.root, sub).map_err(path_io)?;
        open_in(&dir, file, false)
    }
}

impl Shared {
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
        if beneath::dir_part(name).is_empty() && self.root_dir.get().is_some() {
            // The container directory itself; whether its path still names it is checked when
            // the files are opened ([`Shared::open_array_file`]).
            return Ok(());
        }
        match beneath::array_dir(&self.root, name)? {
            Some(_) => Ok(()),
            None => Err(OpenError::NotFound {
                container: self.root.clone(),
                name: name.to_string(),
            }),
        }
    }

    /// Opens `name`'s file with `suffix` ([`beneath::open_array_file`]); a top-level name's
    /// through the container directory's descriptor opened once.
    ///
    /// `locks_current`: `.dafstore/locks` was found at its path during this operation (a stripe
    /// taken through it, [`StripeGuard::locks_current`]); then the container's path names the
    /// directory opened once, whose `.dafstore/` that is ([C5]), and it is not looked up again.
    pub(crate) fn open_array_file(
        &self,
        name: &ArrayName,
        suffix: &str,
        write: bool,
        locks_current: bool,
    ) -> Result<Option<(File, fs::Metadata)>, PathError> {
        if beneath::dir_part(name).is_empty() {
            let root = match self.root_dir.get() {
                Some((dir, _)) if locks_current => Some(dir),
                _ => self.root_dir(),
            };
            if let Some(root) = root {
                return root.open_file(&beneath::leaf(name, suffix), write);
            }
        }
        beneath::open_array_file(&self.root, name, suffix, write)
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
    /// The state of the container at `root` (its `.dafstore/` is `dir`) for this process: the
    /// one every handle already open here shares, or a new one with its catalog connection and,
    /// read-write, its session.
    pub(crate) fn open(
        root: PathBuf,
        dir: PathBuf,
        readonly: bool,
    ) -> Result<Arc<Shared>, ContainerError> {
        let md = fs::metadata(&root).map_err(io_at(&root, "stat", ContainerError::io))?;
        let key = (md.dev(), md.ino(), readonly);
        let mut registry = lock(&REGISTRY);
        if let Some(shared) = registry.get(&key).and_then(Weak::upgrade) {
            // Also in a forked child: its own state is made on first use ([P2]).
            return Ok(shared);
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
            room_wait: Mutex::new(None),
            loading: Mutex::new(HashMap::new()),
            root_dir: OnceLock::new(),
            locks_dir: OnceLock::new(),
        });
        registry.insert(key, Arc::downgrade(&shared));
        Ok(shared)
    }
}
