//! Publish (SPEC [W3], [W9]): the committed intent, the renames that finish it, and rewriting a
//! metadata file (checksums, [W7]).

use std::io::{self, Write};

use super::shared::Shared;
use super::stripes::NameLock;
use crate::catalog::{ArrayState, FileRecord, Lifecycle};
use crate::error::{io_at, WriteError};
use crate::failpoint::failpoint;
use crate::format::meta::{render_yaml, ArrayMeta, ALL_SUFFIXES};
use crate::format::name::ArrayName;
use crate::fs::beneath::{self, Dir};

impl Shared {
    /// Publishes staged files under `name` (SPEC [W3] steps 1–6). `stem` names the staged files
    /// `<stem>.<suffix>` and `<stem>.yaml` of this session's staging directory `sdir`, all
    /// already synced.
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
        sdir: &Dir,
        lifecycle: Option<Lifecycle>,
    ) -> Result<(), WriteError> {
        self.writable()?;
        let parent = self.ensure_parent(name)?;
        let held = self.lock_name(name).map_err(self.lock_err(name))?;
        self.recover_locked(&held)?;
        let staging = format!("{}/{stem}", self.session_id());
        // A name this process is loading is held from the moment it is live (SPEC 9.7), unless
        // this process holds it already.
        let (lifecycle, loading) = self.publish_lifecycle(name.as_str(), lifecycle);
        let hold = loading && self.local_count(name.as_str()) == 0;
        if lifecycle == Lifecycle::Scratch {
            // Before the intent, under the exclusive stripe: a holder of the name letting go
            // from now on reads the row and removes it if it is due ([P4], [P6]).
            super::clock::bump_removals(self).map_err(|e| {
                WriteError::io(
                    self.dir.join("locks").join("removals"),
                    "count a removal",
                    e,
                )
            })?;
        }
        let intent = self
            .catalog()
            .begin_publish(name.as_str(), meta, files, &staging, lifecycle);
        if let Err(e) = intent {
            // SQLite rolls a failed transaction back; should its commit have reached the database
            // anyway, the row says so, and then the publish is committed ([W9]).
            if !self.intent_recorded(name, &staging) {
                return Err(e.into());
            }
        }
        // Committed. Whatever fails from here is finished by recovery.
        let hold_session = hold.then(|| self.session_id().to_string());
        let _ = self.finish_publish(&held, meta, hold_session.as_deref(), &parent, sdir, stem);
        self.arrays().remove(name.as_str());
        Ok(())
    }

    /// Whether the catalog holds the intent of our publish from `staging` ([W3] step 1).
    pub(super) fn intent_recorded(&self, name: &ArrayName, staging: &str) -> bool {
        matches!(
            self.catalog().get(name.as_str()),
            Ok(Some(r)) if r.state == ArrayState::Publishing && r.staging.as_deref() == Some(staging)
        )
    }

    /// Steps 2–6 of [W3] after the intent is committed (the commit point, [W9]), by the writer
    /// that staged the files `<stem>.*` in `sdir` (so they are not looked up first) into the
    /// array's directory `parent`, both opened once for the whole publish.
    pub(super) fn finish_publish(
        &self,
        held: &NameLock,
        meta: &ArrayMeta,
        hold: Option<&str>,
        parent: &Dir,
        sdir: &Dir,
        stem: &str,
    ) -> Result<(), WriteError> {
        let name = held.name();
        if hold.is_some() {
            // Recorded as soon as the publish is committed, under the exclusive stripe: no
            // eviction can fall between the publish and the loader's open ([E6], [P3]), even if
            // a finishing step fails and recovery flips the row `live`.
            self.take_under_stripe(held)?;
            self.loaded_held(name.as_str());
        }
        failpoint!("publish.after_intent");
        self.rename_into_place(
            parent,
            sdir,
            name,
            meta,
            stem,
            Some(&Fresh { present: None }),
        )?;
        failpoint!("publish.before_dir_sync");
        parent.sync()?;
        failpoint!("publish.after_dir_sync");
        failpoint!("publish.before_live");
        self.catalog()
            .set_state_holding(name.as_str(), ArrayState::Live, hold)?;
        failpoint!("publish.after_live");
        Ok(())
    }

    /// Steps 2–5 of [W3], idempotent. Renames go from the staging directory's descriptor to the
    /// array directory's, so no link on either path is followed ([N7]).
    pub(super) fn roll_forward(
        &self,
        held: &NameLock,
        meta: &ArrayMeta,
        staging: &str,
    ) -> Result<(), WriteError> {
        let name = held.name();
        let parent = self.ensure_parent(name)?;
        let (id, stem) = staging.split_once('/').unwrap_or(("", staging));
        let sdir = if id.is_empty() {
            None
        } else {
            self.staging_of(id)?
        };
        if let Some(sdir) = &sdir {
            self.rename_into_place(&parent, sdir, name, meta, stem, None)?;
        }
        failpoint!("publish.before_dir_sync");
        parent.sync()?;
        failpoint!("publish.after_dir_sync");
        Ok(())
    }

    /// Steps 2–4 of [W3] for `name`, whose stripe the caller holds (a [`NameLock`], or the
    /// [`StripeSet`](super::stripes::StripeSet) of a batch, [W11]): unlinks the old metadata
    /// file, renames the staged files `<stem>.<suffix>` of `sdir` into `parent`, then the staged
    /// metadata file. Idempotent: if the staged metadata file is gone, step 4 had completed and
    /// nothing is done. The directory is not synced here (step 5 is the caller's).
    ///
    /// `fresh`: the caller is the writer that staged every file itself, right after its intent
    /// (a single publish, or a batch, [W11]), so the staged files are not looked up first (a
    /// missing one fails the rename and leaves the row to recovery, which looks; recovery passes
    /// `None`); see [`Fresh`].
    pub(super) fn rename_into_place(
        &self,
        parent: &Dir,
        sdir: &Dir,
        name: &ArrayName,
        meta: &ArrayMeta,
        stem: &str,
        fresh: Option<&Fresh<'_>>,
    ) -> Result<(), WriteError> {
        let staged = |suffix: &str| std::ffi::OsString::from(format!("{stem}.{suffix}"));
        if fresh.is_none() && sdir.entry_type(&staged("yaml"))?.is_none() {
            return Ok(());
        }
        // Only what is there is unlinked (every name's unlink is tried without a listing).
        let remove = |leaf: std::ffi::OsString| -> Result<(), WriteError> {
            match fresh.and_then(|f| f.present) {
                Some(present) if !present.contains(&leaf) => Ok(()),
                _ => Ok(parent.remove_file(&leaf)?),
            }
        };
        remove(beneath::leaf(name, "yaml"))?;
        failpoint!("publish.after_unlink_yaml");
        // A name has the files of exactly one kind: a replace by another kind removes the
        // other kinds' files.
        let ours = meta.suffixes();
        let others = ALL_SUFFIXES.iter().filter(|s| !ours.contains(s));
        for suffix in ours {
            let from = staged(suffix);
            if fresh.is_some() || sdir.entry_type(&from)?.is_some() {
                sdir.rename(&from, parent, &beneath::leaf(name, suffix))
                    .map_err(|e| {
                        let to = name.file_path(&self.root, suffix);
                        WriteError::io(to, "rename staged file into place", e)
                    })?;
                // After the first rename of a sparse array: between the data renames.
                failpoint!("publish.after_data_rename");
            }
        }
        for suffix in others {
            remove(beneath::leaf(name, suffix))?;
        }
        failpoint!("publish.before_yaml_rename");
        sdir.rename(&staged("yaml"), parent, &beneath::leaf(name, "yaml"))
            .map_err(|e| {
                let yaml_final = name.file_path(&self.root, "yaml");
                WriteError::io(yaml_final, "rename staged metadata into place", e)
            })?;
        failpoint!("publish.after_yaml_rename");
        Ok(())
    }
}

/// What a batch knows when it renames its own staged files into place ([W11]).
pub(super) struct Fresh<'a> {
    /// The entries of the array's directory, listed under the stripes of every name the batch
    /// publishes (so no dafstore writer adds or removes a file of those names meanwhile, and
    /// other writers must not modify a container at all, section 7): a file of one of those
    /// names that is not listed is not there, and is not unlinked. `None`: not listed.
    pub(super) present: Option<&'a std::collections::HashSet<std::ffi::OsString>>,
}

impl Shared {
    /// Replaces `<name>.yaml` (new inode) with checksums, or without them (`None`) while
    /// in-place writers are active ([W7]).
    pub(crate) fn rewrite_yaml(
        &self,
        held: &NameLock,
        meta: &ArrayMeta,
        crcs: Option<&[(String, u32)]>,
    ) -> Result<(), WriteError> {
        let name = held.name();
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

    /// With the name's stripe held ([`NameLock`]): recomputes the checksums of `name` if no in-place writer is
    /// registered, records them, and writes them back into its metadata file.
    pub(crate) fn refresh_checksums(&self, held: &NameLock) -> Result<(), WriteError> {
        let name = held.name();
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
                crate::fs::read::crc32c_read(file).map_err(io_at(&p, "read", WriteError::io))?;
            crcs.push((suffix.to_string(), crc));
        }
        if self.catalog().set_checksums(name.as_str(), &crcs)? {
            self.rewrite_yaml(held, &rec.meta, Some(&crcs))?;
        }
        Ok(())
    }
}
