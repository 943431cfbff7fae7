//! Removal (SPEC [W8]): now, or deferred while live processes hold the array.

use super::shared::Shared;
use super::stripes::NameLock;
use crate::catalog::{ArrayState, RemoveStart};
use crate::error::{PathError, WriteError};
use crate::failpoint::failpoint;
use crate::format::meta::ALL_SUFFIXES;
use crate::format::name::ArrayName;
use crate::fs::beneath::{self};

impl Shared {
    /// Removes an array (SPEC [W8]). If live processes hold it, the removal is deferred: the
    /// array is gone for new holders at once and its files are unlinked when the last holder
    /// releases it. Otherwise its metadata file is unlinked first, then its data files; processes
    /// that map it keep reading the old bytes (Linux keeps an unlinked inode until its last map
    /// goes).
    pub(crate) fn remove(&self, name: &str) -> Result<Removal, WriteError> {
        let name = ArrayName::new(name)?;
        self.writable()?;
        let held = self.lock_name(&name).map_err(self.lock_err(&name))?;
        self.recover_locked(&held)?;
        // A link or nested container on the way is refused before anything changes ([N7], [C4]).
        self.check_parent_for_write(&name)?;
        // Under the exclusive stripe no opener is between its record and its read of the row
        // ([P4]): whoever holds the name now has a record, and nobody can start holding it.
        let holders = self.live_holders_w(&name)?;
        failpoint!("remove.after_scan");
        if holders > 0 {
            // Before the mark, under the exclusive stripe: every holder read the counter when
            // it took its reference (before we took the stripe), and its release, if it comes
            // after our second look, sees the counter changed and reads the row ([P4]). A
            // failure here changes nothing.
            super::clock::bump_removals(self).map_err(|e| {
                WriteError::io(
                    self.dir.join("locks").join("removals"),
                    "count a removal",
                    e,
                )
            })?;
        }
        let start = self.catalog().begin_remove(name.as_str(), holders)?;
        match start {
            RemoveStart::NotFound => Err(WriteError::NotFound {
                container: self.root.clone(),
                name: name.to_string(),
            }),
            RemoveStart::Deferred => {
                // Marked `deleting` before looking again: a holder that dropped its record
                // since our first look either is seen gone now or reads our mark at its
                // release and finishes the removal itself ([P4]).
                let now = self.live_holders_w(&name)?;
                if now > 0 {
                    return Ok(Removal::Deferred { holders: now });
                }
                if self.settle_locked(&held)? {
                    crate::fs::reserve::ensure(&self.dir);
                    return Ok(Removal::Removed);
                }
                Ok(Removal::Deferred { holders })
            }
            RemoveStart::Now => {
                failpoint!("remove.after_mark_removing");
                self.finish_remove(&held)?;
                // Space was freed: re-make the space reserve if it was used ([Q3]).
                crate::fs::reserve::ensure(&self.dir);
                Ok(Removal::Removed)
            }
        }
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

impl Shared {
    /// With the name's stripe held ([`NameLock`]): finishes a removal that was marked `removing` before the
    /// stripe was taken (an interrupted removal or eviction), if the row is still `removing`.
    /// Another writer may have taken the stripe first, finished it as recovery and published a
    /// new array under the name; that array is left alone ([W8]). Returns whether it removed.
    pub(crate) fn finish_due_remove(&self, held: &NameLock) -> Result<bool, WriteError> {
        let name = held.name();
        let still_due = self
            .catalog()
            .get(name.as_str())?
            .is_some_and(|r| r.state == ArrayState::Removing);
        if still_due {
            self.finish_remove(held)?;
        }
        Ok(still_due)
    }

    /// Unlinks `name`'s files (relative to their directory, reached without following a link) and
    /// deletes its row. If the directory is now behind a link, a nested container or a file, its
    /// files are not the container's to unlink: only the row is deleted, the entry in the way is
    /// left for fsck to report ([N7], [C4]), and nothing is ever left stuck in `removing`.
    pub(crate) fn finish_remove(&self, held: &NameLock) -> Result<(), WriteError> {
        let name = held.name();
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
            for suffix in ALL_SUFFIXES {
                dir.remove_file(&beneath::leaf(name, suffix))?;
            }
            dir.sync()?;
        }
        failpoint!("remove.before_delete_row");
        self.catalog().delete(name.as_str())?;
        self.arrays().remove(name.as_str());
        Ok(())
    }
}
