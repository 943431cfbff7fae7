//! Recovery and garbage collection (SPEC [W5], [P5]): rolling forward what dead processes left
//! unfinished, reaping dead holders and running the deletions they blocked.

use std::io;

use super::shared::Shared;
use super::stripes::NameLock;
use crate::catalog::ArrayState;
use crate::error::{ContainerError, PathError, WriteError};
use crate::format::is_session_id;
use crate::format::name::ArrayName;
use crate::fs::beneath::{self};

impl Shared {
    /// Rolls forward every publish or remove left unfinished by a dead process (SPEC [W5]).
    /// Rows whose stripe is held by a live writer are left to it. A row whose recovery fails (an
    /// I/O error) is left unfinished and reported; opening that array retries and returns the
    /// error, the rest of the container stays usable.
    pub(crate) fn recover_unfinished(&self) -> Result<RecoveryReport, ContainerError> {
        if self.readonly {
            return Ok(RecoveryReport::default());
        }
        let names = self.catalog().unfinished()?;
        Ok(self.recover_names(names))
    }

    /// [`Shared::recover_unfinished`] of the unfinished rows `names` (listed by the caller).
    fn recover_names(&self, names: Vec<String>) -> RecoveryReport {
        let mut done = 0;
        let mut failed = Vec::new();
        for n in names {
            let Ok(name) = ArrayName::new(&n) else {
                continue;
            };
            let held = match self.try_lock_name(&name) {
                Ok(Some(held)) => held,
                Ok(None) => continue, // its writer is alive and working on it
                Err(e) => {
                    // Not "busy": say why it cannot be recovered (a lock file this user may not
                    // write, no room for its change stamp, [W6]).
                    failed.push(RecoveryFailure {
                        name: n,
                        error: self.lock_err(&name)(e),
                    });
                    continue;
                }
            };
            // Count only what is still unfinished under the stripe: another process may have
            // finished it since the listing (then nothing was recovered here).
            let row = self.catalog().get(name.as_str());
            match row {
                Ok(Some(r)) if matches!(r.state, ArrayState::Publishing | ArrayState::Removing) => {
                }
                Ok(_) => continue,
                Err(e) => {
                    failed.push(RecoveryFailure {
                        name: n,
                        error: e.into(),
                    });
                    continue;
                }
            }
            match self.recover_locked(&held) {
                Ok(()) => done += 1,
                Err(error) => failed.push(RecoveryFailure { name: n, error }),
            }
        }
        RecoveryReport {
            recovered: done,
            failed,
        }
    }

    /// Garbage collection (SPEC [P5], [W5]): rolls forward interrupted publishes and removes,
    /// reaps dead holders (their references, in-place writer registrations and sessions), runs
    /// the deletions they were blocking, recomputes checksums nobody is writing any more, and
    /// removes dead sessions' staging files. Runs at every read-write open.
    pub(crate) fn gc(&self) -> Result<GcReport, ContainerError> {
        self.gc_with(true)
    }

    /// [`Shared::gc`]; `deferred`: whether the report lists the removals still deferred at its
    /// end (one more catalog read; an open discards the report).
    pub(crate) fn gc_with(&self, deferred: bool) -> Result<GcReport, ContainerError> {
        let mut report = GcReport::default();
        if self.readonly {
            return Ok(report);
        }
        // What there may be to do, read in one statement: most opens find nothing unfinished and
        // no dead session, and then need no other read and no write transaction.
        let rows = self.catalog().gc_rows()?;
        let alive = |s: &str| self.session_alive(s);
        // Nothing to roll forward and every session with a row alive (each checked now, after
        // the read, as the reaping transaction checks them): there is nothing to reap, and the
        // entries whose removal may be due are the ones that transaction would list.
        let quiet = rows.unfinished.is_empty() && rows.sessions.iter().all(|s| alive(s));
        let recovery = self.recover_names(rows.unfinished);
        report.recovered = recovery.recovered;
        report.failed = recovery
            .failed
            .into_iter()
            .map(|f| GcFailure {
                name: f.name,
                error: f.error.to_string(),
            })
            .collect();
        let crate::catalog::Reaped {
            sessions,
            due,
            writers_gone,
        } = if quiet {
            crate::catalog::Reaped {
                sessions: Vec::new(),
                due: rows.due,
                writers_gone: Vec::new(),
            }
        } else {
            self.catalog().reap_dead(&alive)?
        };
        report.reaped_sessions = sessions;
        let as_container_err = |name: &ArrayName, e: WriteError| {
            ContainerError::Io(crate::error::IoError {
                path: name.file_path(&self.root, "yaml"),
                op: "finish a due deletion or checksum",
                source: io::Error::other(e.to_string()),
            })
        };
        // Who holds what, read once: a due entry seen held is left to its holders.
        let held_now = if due.is_empty() {
            None
        } else {
            self.scan_holders().ok()
        };
        for n in due {
            let Ok(name) = ArrayName::new(&n) else {
                continue;
            };
            if held_now.as_ref().is_some_and(|h| h.holders(name.key()) > 0) {
                continue; // held: its last release performs it
            }
            let held = self
                .lock_name(&name)
                .map_err(|e| ContainerError::io(self.stripe_path(&name), "lock", e))?;
            if self
                .settle_locked(&held)
                .map_err(|e| as_container_err(&name, e))?
            {
                report.deleted.push(n);
            }
        }
        for n in writers_gone {
            let Ok(name) = ArrayName::new(&n) else {
                continue;
            };
            let held = self
                .lock_name(&name)
                .map_err(|e| ContainerError::io(self.stripe_path(&name), "lock", e))?;
            self.refresh_checksums(&held)
                .map_err(|e| as_container_err(&name, e))?;
        }
        report.staging_removed = self.remove_dead_staging()?;
        // The sessions with reservations, unless this gc changed rows: read again then.
        self.drop_dead_reservations(quiet.then_some(rows.reserving))?;
        crate::fs::reserve::ensure(&self.dir); // [Q3]
        if deferred {
            report.deferred = self.catalog().deferred()?;
        }
        Ok(report)
    }

    /// Removes session lock files and staging directories of dead sessions (unless an unfinished
    /// publish still needs the staged files). Returns how many staging directories were removed.
    pub(super) fn remove_dead_staging(&self) -> Result<usize, ContainerError> {
        let shared = self;
        // Everything here is reached through descriptors without following a link: a link in
        // place of `staging/`, `sessions/` or a session's directory is never followed (fsck
        // reports it) ([N7]).
        let [sessions, staging] = beneath::reserved_some(&shared.root, ["sessions", "staging"]);
        // Listed once: the temporary files below are among these names too.
        let session_files = sessions
            .as_ref()
            .map(|d| d.names().unwrap_or_default())
            .unwrap_or_default();
        let staged = staging
            .as_ref()
            .map(|d| d.names().unwrap_or_default())
            .unwrap_or_default();
        let ours = self.here().session.as_ref().map(|s| s.id.clone());
        let mut ids: Vec<String> = Vec::new();
        for n in session_files.iter().chain(staged.iter()) {
            let n = n.to_string_lossy().trim_end_matches(".lock").to_string();
            // This process's own session is alive: its lock is held here.
            if is_session_id(&n) && !ids.contains(&n) && ours.as_ref() != Some(&n) {
                ids.push(n);
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
            for n in session_files {
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

/// What [`Container::recover_unfinished`](crate::Container::recover_unfinished) did.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    /// Interrupted publishes and removes rolled forward.
    pub recovered: usize,
    /// Unfinished rows whose recovery failed (left unfinished; opening them retries).
    pub failed: Vec<RecoveryFailure>,
}

/// An unfinished publish or remove whose recovery failed.
#[derive(Debug)]
pub struct RecoveryFailure {
    /// The array.
    pub name: String,
    /// Why.
    pub error: WriteError,
}

/// What [`Container::gc`](crate::Container::gc) did (`dafctl gc --json`, Python's `c.gc()`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcReport {
    /// Interrupted publishes and removes rolled forward.
    pub recovered: usize,
    /// Unfinished rows whose recovery failed, with the error.
    pub failed: Vec<GcFailure>,
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

/// An unfinished publish or remove whose recovery failed during a gc.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GcFailure {
    /// The array.
    pub name: String,
    /// The error, as text.
    pub error: String,
}

impl Shared {
    /// With the name's stripe held ([`NameLock`]): finishes whatever a dead process left for `name`.
    pub(crate) fn recover_locked(&self, held: &NameLock) -> Result<(), WriteError> {
        let name = held.name();
        let Some(rec) = self.catalog().get(name.as_str())? else {
            return Ok(());
        };
        match rec.state {
            ArrayState::Live | ArrayState::Deleting => Ok(()),
            ArrayState::Publishing => {
                self.roll_forward(held, &rec.meta, rec.staging.as_deref().unwrap_or(""))?;
                self.catalog().set_state(name.as_str(), ArrayState::Live)?;
                Ok(())
            }
            ArrayState::Removing => self.finish_remove(held),
        }
    }
}
