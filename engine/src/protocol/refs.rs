//! Cross-process references (SPEC 9.3). A process counts its references in memory and, on 0→1
//! and 1→0, writes or zeroes a record in its own session file ([P3]): no catalog write, so
//! opening an array costs a `pwrite` and a catalog read. A session's records die with its
//! process ([P5]). Whoever must know that nobody holds a name reads every live session's
//! records under the name's exclusive stripe; deferred and scratch deletions run in whichever
//! process releases last.

use std::collections::HashMap;

use super::shared::Shared;
use super::stripes::{NameLock, StripeGuard};
use crate::catalog::{now_ms, ArrayInfo, ArrayState, Lifecycle};
use crate::error::{OpenError, WriteError};
use crate::failpoint::failpoint;
use crate::format::name::ArrayName;
use crate::sync::lock;

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

/// Whether `row`'s removal is due once nobody holds it: a deferred removal ([W8]) or a scratch
/// entry held before ([P6]).
pub(crate) fn removal_due(row: &ArrayInfo) -> bool {
    row.state == ArrayState::Deleting
        || (row.state == ArrayState::Live && row.lifecycle == Lifecycle::Scratch && row.ever_held)
}

impl Shared {
    /// Takes one in-process reference on `name` without recovering anything, under `name`'s
    /// stripe held shared (`_stripe`: so no process deciding that nobody holds the name runs
    /// between our record and our read of the row, [P4]). On 0→1 writes this session's record,
    /// then reads the row: a `live` array is held and its row returned; otherwise the record is
    /// zeroed again. `Held(None)` when this process already held it (no file or catalog access).
    pub(crate) fn try_retain(
        &self,
        name: &ArrayName,
        _stripe: &StripeGuard,
    ) -> Result<Retained, OpenError> {
        if self.readonly {
            return Err(OpenError::ReadOnly {
                container: self.root.clone(),
            });
        }
        // Held across the record and the read so two threads cannot both see 0 (or 1 → 0
        // racing 0 → 1).
        let mut counts = self.counts();
        if let Some(c) = counts.get_mut(name.as_str()) {
            *c += 1;
            return Ok(Retained::Held(None));
        }
        let p = self.here();
        let Some(session) = &p.session else {
            // A forked child whose own session could not start: the catalog says why.
            self.catalog().usable()?;
            return Err(OpenError::ReadOnly {
                container: self.root.clone(),
            });
        };
        let mut slots = lock(&p.slots);
        slots
            .take(&session._lock, name.as_str(), name.key(), now_ms())
            .map_err(|e| OpenError::io(session.path.clone(), "record a reference", e))?;
        // Read under the shared stripe, so before any removal of the name marked from now on
        // ([P4]): unchanged at the release, nothing can have become due meanwhile.
        let removals = super::clock::removals(self).ok();
        let outcome = self.check_taken(name, _stripe);
        match &outcome {
            Ok(Retained::Held(row)) => {
                counts.insert(name.to_string(), 1);
                let scratch = row
                    .as_ref()
                    .is_none_or(|r| r.lifecycle == Lifecycle::Scratch);
                if let (Some(n), false) = (removals, scratch) {
                    slots.note_quiet(name.as_str(), n);
                }
            }
            _ => {
                // Zeroed while the stripe is still held shared: nobody deciding under the
                // exclusive stripe ever saw it. Should the zeroing fail, the record keeps the
                // name held for as long as this process lives: never unsafe.
                let _ = slots.clear(&session._lock, name.as_str());
            }
        }
        outcome
    }

    /// With this session's record of `name` written: reads the row (or the one kept under the
    /// stripe's unchanged stamp, [W6]) and decides ([P4]).
    fn check_taken(&self, name: &ArrayName, stripe: &StripeGuard) -> Result<Retained, OpenError> {
        crate::failpoint::hit("refs.after_record").map_err(|e| {
            OpenError::io(
                "<failpoint refs.after_record>".into(),
                "continue (injected failure)",
                e,
            )
        })?;
        let stamp = self.stamp_of(stripe);
        if let Some(s) = stamp {
            // Only `live` rows held before are kept: nothing to decide or mark.
            if let Some(row) = lock(&self.here().rows).get(name.as_str(), s) {
                if row.ever_held {
                    return Ok(Retained::Held(Some(Box::new(row.clone()))));
                }
            }
        }
        let row = self.catalog().get(name.as_str())?;
        let Some(row) = row else {
            return Ok(Retained::NotFound);
        };
        Ok(match row.state {
            ArrayState::Live => {
                let mut row = row;
                if !row.ever_held {
                    // Once per entry, never per reference: what makes a scratch entry's last
                    // release remove it ([P6]), also if it becomes scratch later.
                    self.catalog().mark_ever_held(name.as_str())?;
                    row.ever_held = true;
                }
                self.keep_row(name, stamp, &row);
                Retained::Held(Some(Box::new(row)))
            }
            ArrayState::Publishing => Retained::Unfinished,
            ArrayState::Deleting | ArrayState::Removing => Retained::NotFound,
        })
    }

    /// The change stamp of a stripe held shared, if rows may be kept against it ([W6]).
    pub(crate) fn stamp_of(&self, stripe: &StripeGuard) -> Option<u64> {
        if self.here().stamped {
            stripe.stamp()
        } else {
            None
        }
    }

    /// Keeps `row`, read under a stripe held shared whose stamp was `stamp`, for the next opens
    /// of `name` in this process ([W6]): only a `live` row whose checksums are current (an
    /// in-place writer of another process changes them when it closes).
    pub(crate) fn keep_row(&self, name: &ArrayName, stamp: Option<u64>, row: &ArrayInfo) {
        let mut rows = lock(&self.here().rows);
        match stamp {
            Some(s) if row.state == ArrayState::Live && !row.checksum_stale => {
                rows.keep(name.as_str(), s, row)
            }
            _ => rows.forget(name.as_str()),
        }
    }

    /// `name`'s row read under `stripe` held shared: the one kept under the stripe's current
    /// stamp, else the catalog's (kept if `live`) ([W6]).
    pub(crate) fn row_under(
        &self,
        name: &ArrayName,
        stripe: &StripeGuard,
    ) -> Result<Option<ArrayInfo>, OpenError> {
        let stamp = self.stamp_of(stripe);
        if let Some(s) = stamp {
            if let Some(row) = lock(&self.here().rows).get(name.as_str(), s) {
                return Ok(Some(row.clone()));
            }
        }
        let row = self.catalog().get(name.as_str())?;
        if let Some(r) = &row {
            self.keep_row(name, stamp, r);
        }
        Ok(row)
    }

    /// Takes one in-process reference on `name`, recovering an interrupted publish if needed.
    pub(crate) fn retain(&self, name: &ArrayName) -> Result<(), OpenError> {
        loop {
            let stripe = self
                .lock_stripe_shared(name)
                .map_err(|e| OpenError::io(self.stripe_path(name), "lock", e))?;
            match self.try_retain(name, &stripe)? {
                Retained::Held(_) => return Ok(()),
                Retained::NotFound => {
                    return Err(OpenError::NotFound {
                        container: self.root.clone(),
                        name: name.to_string(),
                    })
                }
                Retained::Unfinished => {
                    drop(stripe);
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

    /// Drops one in-process reference; on 1→0 zeroes this session's record and, if that makes a
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
        let p = self.here();
        let mut quiet = None;
        if let Some(session) = &p.session {
            let mut slots = lock(&p.slots);
            slots
                .clear(&session._lock, name.as_str())
                .map_err(|e| WriteError::io(session.path.clone(), "drop a reference", e))?;
            quiet = slots.take_quiet(name.as_str());
        }
        counts.remove(name.as_str());
        drop(counts);
        self.stamp_release(name);
        // The counter is read after the record is zeroed ([P4]): if no removal was deferred and
        // no entry became scratch since the reference was taken, nothing can be due.
        if quiet.is_some() && quiet == super::clock::removals(self).ok() {
            return Ok(());
        }
        failpoint!("release.before_stripe");
        self.settle(name)?;
        Ok(())
    }

    /// After this process dropped its record of `name`: if the row says its removal is due
    /// (deferred, or scratch held before), takes the exclusive stripe and performs it unless a
    /// live session still holds it ([`Shared::settle_locked`]). Returns whether it removed.
    pub(crate) fn settle(&self, name: &ArrayName) -> Result<bool, WriteError> {
        // The record is zeroed before this read ([P4]): a remover that saw our record marked
        // the row before it looked, so this read sees its mark.
        let due = self
            .catalog()
            .get(name.as_str())?
            .is_some_and(|r| removal_due(&r) || r.state == ArrayState::Removing);
        if !due {
            return Ok(false);
        }
        let held = self.lock_name(name).map_err(self.lock_err(name))?;
        self.settle_locked(&held)
    }

    /// Under `name`'s exclusive stripe: removes it if its removal is due ([`removal_due`]) and
    /// no live session holds it ([P3]); finishes a removal already marked `removing` (only if
    /// still `removing`, [W8]). Returns whether it removed.
    pub(crate) fn settle_locked(&self, held: &NameLock) -> Result<bool, WriteError> {
        let name = held.name();
        let Some(row) = self.catalog().get(name.as_str())? else {
            return Ok(false);
        };
        if row.state != ArrayState::Removing {
            if !removal_due(&row) || self.live_holders_w(name)? > 0 {
                return Ok(false);
            }
            if !self.catalog().mark_removing_if_due(name.as_str())? {
                return Ok(false);
            }
            failpoint!("release.after_mark_removing");
        }
        self.finish_due_remove(held)
    }

    /// [`Shared::live_holders`] with a write's error.
    pub(crate) fn live_holders_w(&self, name: &ArrayName) -> Result<usize, WriteError> {
        self.live_holders(name)
            .map_err(|e| WriteError::io(self.dir.join("sessions"), "read the references", e))
    }

    /// Stamps the release clock of `name` ([E5]): best effort, it only orders eviction.
    pub(crate) fn stamp_release(&self, name: &ArrayName) {
        let _ = super::clock::stamp(self, name.key(), now_ms());
    }

    /// Takes one in-process reference on `name` under its exclusive stripe (a loader's publish,
    /// [E6]): the record is written whatever the row's state, since the holder is the writer.
    pub(crate) fn take_under_stripe(&self, held: &NameLock) -> Result<(), WriteError> {
        self.take_held_by_writer(held.name())
    }

    /// [`Shared::take_under_stripe`] for a writer that holds `name`'s stripe exclusively by other
    /// means (a batch's stripe set, [W11]).
    pub(crate) fn take_held_by_writer(&self, name: &ArrayName) -> Result<(), WriteError> {
        let mut counts = self.counts();
        if let Some(c) = counts.get_mut(name.as_str()) {
            *c += 1;
            return Ok(());
        }
        let p = self.here();
        if let Some(session) = &p.session {
            lock(&p.slots)
                .take(&session._lock, name.as_str(), name.key(), now_ms())
                .map_err(|e| WriteError::io(session.path.clone(), "record a reference", e))?;
        }
        counts.insert(name.to_string(), 1);
        Ok(())
    }

    /// This process's count of references on `name`.
    pub(crate) fn local_count(&self, name: &str) -> u64 {
        self.counts().get(name).copied().unwrap_or(0)
    }
}
