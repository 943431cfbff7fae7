//! Cross-process reference counts (SPEC 9.3). A process counts its references in memory and
//! writes the catalog only on 0→1 and 1→0, so opening an array a million times costs two catalog
//! writes. A session's references die with its process: others reap them (SPEC [P5]). Deferred and
//! scratch deletions run in whichever process releases last.

use std::collections::HashMap;

use super::shared::Shared;
use crate::catalog::{Acquired, ArrayInfo};
use crate::error::{OpenError, WriteError};
use crate::failpoint::failpoint;
use crate::format::name::ArrayName;

/// In-process reference counts, by array name.
pub(crate) type Counts = HashMap<String, u64>;

/// Outcome of [`Shared::try_retain`].
pub(crate) enum Retained {
    /// Held; the catalog row if the catalog was read (0→1).
    Held(Option<Box<ArrayInfo>>),
    /// No such live array.
    NotFound,
    /// An interrupted publish must be recovered first.
    Unfinished,
}

impl Shared {
    /// Takes one in-process reference on `name` without recovering anything: on 0→1 records it
    /// in the catalog, which checks that the array is live and returns its row (read in the same
    /// transaction); `Ok(None)` when this process already held it (no catalog access).
    pub(crate) fn try_retain(&self, name: &ArrayName) -> Result<Retained, OpenError> {
        if self.readonly {
            return Err(OpenError::ReadOnly {
                container: self.root.clone(),
            });
        }
        // Held across the catalog write so two threads cannot both see 0 (or 1 → 0 racing 0 → 1).
        let mut counts = self.counts();
        if let Some(c) = counts.get_mut(name.as_str()) {
            *c += 1;
            return Ok(Retained::Held(None));
        }
        let acquired = self
            .catalog()
            .acquire_ref(self.session_id(), name.as_str())?;
        Ok(match acquired {
            Acquired::Held(rec) => {
                counts.insert(name.to_string(), 1);
                Retained::Held(Some(rec))
            }
            Acquired::NotFound => Retained::NotFound,
            Acquired::Unfinished => Retained::Unfinished,
        })
    }

    /// Takes one in-process reference on `name`, recovering an interrupted publish if needed.
    pub(crate) fn retain(&self, name: &ArrayName) -> Result<(), OpenError> {
        loop {
            match self.try_retain(name)? {
                Retained::Held(_) => return Ok(()),
                Retained::NotFound => {
                    return Err(OpenError::NotFound {
                        container: self.root.clone(),
                        name: name.to_string(),
                    })
                }
                Retained::Unfinished => {
                    let held = self
                        .lock_name(name)
                        .map_err(|e| OpenError::io(self.stripe_path(name), "lock", e))?;
                    self.recover_locked(&held)
                        .map_err(|e| OpenError::Recovery {
                            name: name.to_string(),
                            source: Box::new(e),
                        })?;
                }
            }
        }
    }

    /// Drops one in-process reference; on 1→0 removes it from the catalog and, if that makes a
    /// deferred or scratch deletion due, performs it.
    pub(crate) fn release(&self, name: &ArrayName) -> Result<(), WriteError> {
        self.release_taken_in(name, crate::fs::sys::fork_epoch())
    }

    /// [`Shared::release`] of a reference taken in the process of fork epoch `epoch`: in a
    /// forked child, one its inherited handle stands for, which may not be held here ([P2]).
    pub(crate) fn release_taken_in(&self, name: &ArrayName, epoch: u64) -> Result<(), WriteError> {
        if epoch != crate::fs::sys::fork_epoch() && self.release_inherited(name.as_str()) {
            return Ok(());
        }
        let mut counts = self.counts();
        match counts.get_mut(name.as_str()) {
            None => {
                return Err(WriteError::NotHeld {
                    name: name.to_string(),
                })
            }
            Some(c) if *c > 1 => {
                *c -= 1;
                return Ok(());
            }
            Some(_) => {}
        }
        let alive = |s: &str| self.session_alive(s);
        let due = self
            .catalog()
            .release_ref(self.session_id(), name.as_str(), &alive)?;
        counts.remove(name.as_str());
        drop(counts);
        if due {
            // Marked `removing` but not yet under the stripe: another writer may finish the
            // removal and publish anew under the name here ([W8]); finish_due_remove re-checks.
            failpoint!("release.before_stripe");
            let held = self.lock_name(name).map_err(self.lock_err(name))?;
            failpoint!("release.after_mark_removing");
            self.finish_due_remove(&held)?;
        }
        Ok(())
    }

    /// This process's count of references on `name`.
    pub(crate) fn local_count(&self, name: &str) -> u64 {
        self.counts().get(name).copied().unwrap_or(0)
    }
}
