//! References as a caller sees them (SPEC section 8): [`Ref`], a reference released on drop;
//! manual `retain`/`release`; who holds what ([`Holder`]); scratch arrays. The counting behind
//! them is `crate::protocol::refs`.

use crate::catalog::{HolderRow, Lifecycle};
use crate::container::Container;
use crate::error::{CatalogError, OpenError, WriteError};
use crate::format::name::{name_key, ArrayName};

/// A reference on an array, released when dropped (or by [`Ref::release`], which reports errors).
/// While any live process holds a reference, the array's files are not deleted.
pub struct Ref {
    container: Container,
    name: ArrayName,
    held: bool,
    /// The fork epoch of the process that took it (SPEC [P2]).
    epoch: u64,
}

impl std::fmt::Debug for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ref")
            .field("name", &self.name.as_str())
            .finish()
    }
}

impl Ref {
    pub(crate) fn take(container: &Container, name: &ArrayName) -> Result<Ref, OpenError> {
        container.shared.retain(name)?;
        Ok(Ref::adopt(container, name))
    }

    /// Wraps an in-process reference already taken (with `try_retain`).
    pub(crate) fn adopt(container: &Container, name: &ArrayName) -> Ref {
        Ref {
            container: container.clone(),
            name: name.clone(),
            held: true,
            epoch: crate::fs::sys::fork_epoch(),
        }
    }

    /// The array's name.
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Releases the reference, running a deletion it was blocking.
    pub fn release(mut self) -> Result<(), WriteError> {
        self.held = false;
        self.container
            .shared
            .release_taken_in(&self.name, self.epoch)
    }
}

impl Drop for Ref {
    fn drop(&mut self) {
        if self.held {
            let _ = self
                .container
                .shared
                .release_taken_in(&self.name, self.epoch);
        }
    }
}

/// A process holding references, as reported by [`Container::holders`] (`dafctl holders`,
/// Python's `c.holders()`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    /// Session id (the name of its lock file in `.dafstore/sessions/`).
    pub session: String,
    /// Process id when the session started (for display; never used for liveness).
    pub pid: Option<u32>,
    /// Whether the session's process is alive (its lock is held).
    pub alive: bool,
    /// Whether it is this process's session.
    pub this_process: bool,
    /// Session start, ms since the Unix epoch.
    pub started_at_ms: Option<i64>,
    /// The arrays it holds, sorted by name.
    pub arrays: Vec<HeldArray>,
    /// The names it is loading (it holds their load locks, SPEC 9.6), sorted.
    pub loading: Vec<String>,
}

/// An array a [`Holder`] holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldArray {
    /// The array's name.
    pub name: String,
    /// When the reference was taken, ms since the Unix epoch.
    pub since_ms: i64,
    /// How many references: known for this process; 1 for others (the catalog records one per
    /// process and array).
    pub count: u64,
}

impl Container {
    /// Takes a reference on `name`, released when the returned [`Ref`] is dropped.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use dafstore::{Container, Removal};
    /// let c = Container::create(dir.path().join("c"))?;
    /// c.write_dense::<f64>("x", &[2], &[1.0, 2.0])?;
    /// let held = c.hold("x")?;
    /// assert!(matches!(c.remove("x")?, Removal::Deferred { holders: 1 })); // files stay
    /// assert!(c.root().join("x.array").exists());
    /// drop(held); // the last release deletes
    /// assert!(!c.root().join("x.array").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold(&self, name: &str) -> Result<Ref, OpenError> {
        Ref::take(self, &ArrayName::new(name)?)
    }

    /// Takes a reference on `name` (manual counting; match each with [`Container::release`]).
    pub fn retain(&self, name: &str) -> Result<(), OpenError> {
        self.shared.retain(&ArrayName::new(name)?)
    }

    /// Releases a reference taken with [`Container::retain`].
    pub fn release(&self, name: &str) -> Result<(), WriteError> {
        self.shared.release(&ArrayName::new(name)?)
    }

    /// How many references this process holds on `name` (handles, [`Ref`]s and `retain`s).
    pub fn local_refs(&self, name: &str) -> u64 {
        self.shared.local_count(name)
    }

    /// Every session registered in the catalog, alive or dead, with what each holds: its session
    /// file's records (SPEC [P3]); a dead session's are shown until gc removes its file, but
    /// count for nothing.
    pub fn holders(&self) -> Result<Vec<Holder>, CatalogError> {
        let rows: Vec<HolderRow> = self.shared.catalog().holders()?;
        let own = self.shared.session_id().to_string();
        // Display only: a load-lock scan that fails leaves `loading` empty.
        let loads = self.shared.loads().unwrap_or_default();
        let held = self
            .shared
            .scan_records(true)
            .map_err(|e| CatalogError::References {
                path: self.shared.dir.join("sessions"),
                source: e,
            })?;
        // Records hold keys: name them by the catalog's names.
        let mut names = std::collections::HashMap::<u64, Vec<String>>::new();
        if held
            .sessions
            .iter()
            .chain(&held.dead)
            .any(|(_, r)| !r.is_empty())
        {
            for n in self.shared.catalog().all_names()? {
                names.entry(name_key(&n)).or_default().push(n);
            }
        }
        let mut out = Vec::new();
        for r in rows {
            let this_process = r.session == own;
            let live = held.sessions.iter().find(|(s, _)| *s == r.session);
            let records = live
                .or_else(|| held.dead.iter().find(|(s, _)| *s == r.session))
                .map(|(_, recs)| recs.as_slice());
            let mut arrays = Vec::new();
            for &(key, since_ms) in records.unwrap_or_default() {
                for name in names.get(&key).into_iter().flatten() {
                    let count = if this_process {
                        self.shared.local_count(name).max(1)
                    } else {
                        1
                    };
                    arrays.push(HeldArray {
                        name: name.clone(),
                        since_ms,
                        count,
                    });
                }
            }
            arrays.sort_by(|a, b| a.name.cmp(&b.name));
            arrays.dedup_by(|a, b| a.name == b.name);
            let loading = loads
                .iter()
                .filter(|l| l.session == r.session)
                .map(|l| l.name.clone())
                .collect();
            out.push(Holder {
                alive: live.is_some(),
                this_process,
                session: r.session,
                pid: r.pid,
                started_at_ms: r.started_at_ms,
                arrays,
                loading,
            });
        }
        Ok(out)
    }

    /// Marks (or unmarks) `name` as a scratch array: removed automatically when its last reference
    /// is released after having been held (SPEC [P6]). If it was held before and nobody holds it
    /// now, it is removed at once.
    /// The same as [`Container::set_lifecycle`] with [`Lifecycle::Scratch`] (`on`) or
    /// [`Lifecycle::Persistent`].
    pub fn set_scratch(&self, name: &str, on: bool) -> Result<(), WriteError> {
        let lifecycle = if on {
            Lifecycle::Scratch
        } else {
            Lifecycle::Persistent
        };
        self.set_lifecycle(name, lifecycle)
    }

    /// Sets what happens to live `name` after its last release (SPEC 9.7): kept
    /// ([`Lifecycle::Persistent`]), removed ([`Lifecycle::Scratch`]: at once if it was held
    /// before and nobody holds it now), or kept but evictable ([`Lifecycle::Cached`]).
    pub fn set_lifecycle(&self, name: &str, lifecycle: Lifecycle) -> Result<(), WriteError> {
        let name = ArrayName::new(name)?;
        self.shared.writable()?;
        let held = self
            .shared
            .lock_name(&name)
            .map_err(self.shared.lock_err(&name))?;
        // Under the exclusive stripe: whoever holds the name now has a record ([P4]).
        let holders = self.shared.live_holders_w(&name)?;
        if lifecycle == Lifecycle::Scratch {
            // Before the change, under the exclusive stripe: holders letting go from now on
            // read the row ([P4]). A failure here changes nothing.
            crate::protocol::clock::bump_removals(&self.shared).map_err(|e| {
                WriteError::io(
                    self.shared.dir.join("locks").join("removals"),
                    "count a removal",
                    e,
                )
            })?;
        }
        // Bind first: the catalog guard must not live into the arms (finish_remove locks it).
        let due = self
            .shared
            .catalog()
            .set_lifecycle(name.as_str(), lifecycle, holders > 0)?;
        match due {
            None => Err(WriteError::NotFound {
                container: self.shared.root.clone(),
                name: name.to_string(),
            }),
            Some(false) => Ok(()),
            // Scratch and held before: removed now unless held. Marked scratch before looking
            // again, so a holder that let go meanwhile finishes it at its release ([P4]).
            Some(true) => self.shared.settle_locked(&held).map(|_| ()),
        }
    }
}
