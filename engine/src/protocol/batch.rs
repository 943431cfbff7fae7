//! Batch publish (SPEC [W11]): many staged entries published under all their stripes, with one
//! catalog transaction recording every intent (the commit point of all of them), the renames, one
//! `fsync` per directory that received files, and one transaction flipping every row `live`.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;

use super::publish::Fresh;

use super::shared::Shared;
use crate::catalog::{FileRecord, IntentRow, Lifecycle};
use crate::error::WriteError;
use crate::failpoint::failpoint;
use crate::format::meta::ArrayMeta;
use crate::format::name::ArrayName;
use crate::fs::beneath::{self, Dir};

/// A directory receiving at least this many entries of a batch is listed before the renames …
const LIST_AT_LEAST: u64 = 64;
/// … if it holds at most about this many times as many entries already (its size / 16 bytes).
const LIST_FACTOR: u64 = 8;

/// One staged entry of a batch: its files are `<stem>.<suffix>` and `<stem>.yaml` in this
/// session's staging directory, written and synced ([W11] step 1).
pub(crate) struct BatchEntry {
    pub(crate) name: ArrayName,
    pub(crate) meta: ArrayMeta,
    pub(crate) files: Vec<FileRecord>,
    pub(crate) stem: String,
    pub(crate) lifecycle: Option<Lifecycle>,
}

impl Shared {
    /// Publishes every entry of a batch, or none ([W11] steps 2–6). `entries` have distinct
    /// names (the caller refused duplicates before staging anything) and are staged and synced;
    /// `reservation` is the stem of the batch's reservation ([E3]), if it made one.
    ///
    /// As for a single publish ([W9]): an error before the intent transaction commits means
    /// nothing was published; once it has committed every entry is, and a failure of a finishing
    /// step is not returned: the rows stay `publishing` and recovery finishes each.
    pub(crate) fn commit_batch(
        &self,
        entries: &[BatchEntry],
        reservation: Option<&str>,
    ) -> Result<(), WriteError> {
        self.writable()?;
        let Some(first) = entries.first() else {
            return Ok(());
        };
        // The directories that receive files, each opened (created if missing) once.
        let mut parents: HashMap<&str, Dir> = HashMap::new();
        for e in entries {
            let part = beneath::dir_part(&e.name);
            if !parents.contains_key(part) {
                parents.insert(part, self.ensure_parent(&e.name)?);
            }
        }
        // [W11] step 2: every stripe once, in increasing order; held until the `live` flip.
        let stripes = self.lock_stripes(entries.iter().map(|e| &e.name))?;
        // Unfinished publishes or removes of these names (a dead writer's) are finished first
        // ([W5]); one query finds them (usually none).
        let unfinished: HashSet<String> = self.catalog().unfinished()?.into_iter().collect();
        if !unfinished.is_empty() {
            for e in entries
                .iter()
                .filter(|e| unfinished.contains(e.name.as_str()))
            {
                if let Some(held) = stripes.name_lock(&e.name).map_err(self.lock_err(&e.name))? {
                    self.recover_locked(&held)?;
                }
            }
        }
        let session = self.session_id().to_string();
        let stagings: Vec<String> = entries
            .iter()
            .map(|e| format!("{session}/{}", e.stem))
            .collect();
        let mut rows = Vec::with_capacity(entries.len());
        let mut holds: Vec<bool> = Vec::with_capacity(entries.len());
        for (e, staging) in entries.iter().zip(&stagings) {
            // A name this process is loading is held from the moment it is live ([E6]).
            let (lifecycle, loading) = self.publish_lifecycle(e.name.as_str(), e.lifecycle);
            holds.push(loading && self.local_count(e.name.as_str()) == 0);
            rows.push(IntentRow {
                name: e.name.as_str(),
                meta: &e.meta,
                files: &e.files,
                staging,
                lifecycle,
            });
        }
        let reservation = reservation.map(|stem| format!("{session}/{stem}"));
        if rows.iter().any(|r| r.lifecycle == Lifecycle::Scratch) {
            // Before the intent, under the exclusive stripes: holders letting go from now on
            // read the row ([P4], [P6]).
            super::clock::bump_removals(self).map_err(|e| {
                WriteError::io(
                    self.dir.join("locks").join("removals"),
                    "count a removal",
                    e,
                )
            })?;
        }
        failpoint!("batch.before_intent");
        // [W11] step 3: the commit point of every entry.
        let intent = self
            .catalog()
            .begin_publish_batch(&rows, reservation.as_deref());
        if let Err(e) = intent {
            // One transaction: the first entry's row says whether it reached the database.
            if !self.intent_recorded(&first.name, &stagings[0]) {
                return Err(e.into());
            }
        }
        // Committed. Whatever fails from here is finished by recovery.
        let live: Vec<(&str, Option<&str>)> = entries
            .iter()
            .zip(&holds)
            .map(|(e, &hold)| (e.name.as_str(), hold.then_some(session.as_str())))
            .collect();
        let _ = self.finish_batch(entries, &parents, &live, reservation.as_deref());
        let mut arrays = self.arrays();
        for e in entries {
            arrays.remove(e.name.as_str());
        }
        drop(arrays);
        drop(stripes);
        Ok(())
    }

    /// [W11] steps 4–6 after the intent is committed.
    fn finish_batch(
        &self,
        entries: &[BatchEntry],
        parents: &HashMap<&str, Dir>,
        live: &[(&str, Option<&str>)],
        reservation: Option<&str>,
    ) -> Result<(), WriteError> {
        // Recorded as soon as the batch is committed, under its exclusive stripes: no eviction
        // can fall between the publish and the loader's open ([E6], [P3]).
        for (e, (name, hold)) in entries.iter().zip(live) {
            if hold.is_some() {
                self.take_held_by_writer(&e.name)?;
                self.loaded_held(name);
            }
        }
        failpoint!("batch.after_intent");
        let Some(sdir) = self.staging_of(self.session_id())? else {
            // Our staged files are gone: recovery reports the rows it cannot finish.
            return Ok(());
        };
        // A directory that receives many entries and holds not many more is listed once, so
        // that the unlinks of step 2 and of other kinds' files ([W3]) are tried only for files
        // that are there (a new name has none).
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for e in entries {
            *counts.entry(beneath::dir_part(&e.name)).or_insert(0) += 1;
        }
        let mut listings: HashMap<&str, HashSet<OsString>> = HashMap::new();
        for (part, dir) in parents {
            let n = counts.get(part).copied().unwrap_or(0) as u64;
            if n >= LIST_AT_LEAST && dir.size()? / 16 <= LIST_FACTOR * n {
                listings.insert(part, dir.names()?.into_iter().collect());
            }
        }
        for e in entries {
            let part = beneath::dir_part(&e.name);
            if let Some(parent) = parents.get(part) {
                let fresh = Fresh {
                    present: listings.get(part),
                };
                // [W3] steps 2–4: the metadata file last.
                self.rename_into_place(parent, &sdir, &e.name, &e.meta, &e.stem, Some(&fresh))?;
            }
        }
        failpoint!("batch.before_dir_sync");
        // [W11] step 5: each directory that received files, once.
        for p in parents.values() {
            p.sync()?;
        }
        failpoint!("batch.before_live");
        self.catalog().set_live_batch(live, reservation)?;
        Ok(())
    }
}
