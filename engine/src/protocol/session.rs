//! Sessions (SPEC [P1]): a process's exclusive `flock` on `.dafstore/sessions/<id>.lock`, its
//! liveness as others see it, and what ending one runs.

use std::fs::File;
use std::io::{self};
use std::path::{Path, PathBuf};

use super::shared::{Proc, Shared};
use crate::catalog::Catalog;
use crate::error::{io_at, ContainerError};
use crate::format::is_session_id;
use crate::format::name::ArrayName;
use crate::fs::beneath::{self};
use crate::fs::local::random_id;
use crate::fs::sys;
use crate::sync::lock;

/// A process's session ([P1]): an exclusive `flock` on `.dafstore/sessions/<id>.lock`, held for as
/// long as the process uses the container.
pub(crate) struct Session {
    pub(crate) id: String,
    pub(super) path: PathBuf,
    pub(super) _lock: File,
    pub(super) fork_slot: Option<usize>,
}

impl Drop for Session {
    fn drop(&mut self) {
        sys::release_fork_slot(self.fork_slot);
    }
}

pub(super) fn start_session(
    dir: &Path,
    catalog: &mut Catalog,
    pid: u32,
) -> Result<Session, ContainerError> {
    // Between its creation and its lock, the temporary file is unlocked, and another
    // process's gc may take it for a dead starter's and unlink it; then the rename fails with
    // NotFound and we start over under a new id. Once locked it is never removed by others.
    let mut attempts = 0;
    loop {
        match try_start_session(dir, catalog, pid) {
            Err(ContainerError::Io(crate::error::IoError { source, .. }))
                if source.kind() == io::ErrorKind::NotFound && attempts < 100 =>
            {
                attempts += 1;
            }
            r => return r,
        }
    }
}

pub(super) fn try_start_session(
    dir: &Path,
    catalog: &mut Catalog,
    pid: u32,
) -> Result<Session, ContainerError> {
    let id = random_id().map_err(io_at(dir, "make a session id", ContainerError::io))?;
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
    // Room for the first references before the file is visible ([P3]). Best effort: on a full
    // file system the session still starts (removals must work there, [Q3]); a reference then
    // needs room when it is taken.
    let _ = super::slots::preallocate(&file);
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
}

impl Shared {
    /// Every handle of this process is gone, so every reference was released, except `retain`s
    /// never matched by a `release`: ends the session as if it had died, running what it blocked.
    pub(super) fn end_session(&self, p: &Proc) {
        let Some(s) = &p.session else { return };
        // References never released (`retain`s without their `release`) end with the session:
        // its records go first (emptied, so nobody counts them any more), then each removal they
        // blocked is performed if nobody else holds the name ([P5]).
        let leaked: Vec<String> = lock(&p.counts).drain().map(|(n, _)| n).collect();
        let [sessions, staging] = beneath::reserved_some(&self.root, ["sessions", "staging"]);
        if s._lock.set_len(0).is_err() {
            // Out of sight instead: no scan lists the file any more.
            if let (Some(sessions), Some(leaf)) = (&sessions, s.path.file_name()) {
                let _ = sessions.remove_file(leaf);
            }
        }
        lock(&p.slots).forget_all();
        for n in leaked {
            if let Ok(name) = ArrayName::new(&n) {
                let _ = self.settle(&name);
            }
        }
        let _ = self.catalog().remove_session(&s.id);
        if let Some(staging) = staging {
            // A session that staged nothing has no staging directory: nothing to ask the catalog.
            let staged = !matches!(staging.entry_type(std::ffi::OsStr::new(&s.id)), Ok(None));
            if staged && matches!(self.staging_needed(&s.id), Ok(false)) {
                let _ = staging.remove_tree(&s.id);
            }
        }
        if let (Some(sessions), Some(leaf)) = (&sessions, s.path.file_name()) {
            let _ = sessions.remove_file(leaf);
        }
    }
}
