//! `fsck`: checks everything the spec promises about a container and, when asked, repairs what can
//! be repaired without losing committed data. Committed array data is never deleted or rewritten:
//! damage to it (wrong size, broken invariants, checksum mismatch) is reported, not "fixed".
//!
//! Checks: catalog integrity; each catalog row against its files (kinds, sizes, sparse invariants,
//! bool bytes; with `deep`, checksums) and against its YAML; unfinished publishes and removes;
//! stale checksums nobody is writing; dead holders; deletions due; staging leftovers; orphan files
//! (array files the catalog does not know). daf's own files (SPEC [A1]) are listed, not problems.
//!
//! Repairs: roll unfinished operations forward; rewrite a missing, unparsable or disagreeing YAML
//! from the catalog (the engine's source of truth) when the data files match the catalog;
//! re-register a complete, valid orphan array; reap dead holders and run due deletions; remove
//! dead sessions' staging files; recompute stale checksums.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::catalog::{ArrayInfo, ArrayState};
use crate::container::Container;
use crate::error::ContainerError;
use crate::error::PathError;
use crate::format::is_session_id;
use crate::format::meta::{ArrayMeta, ALL_SUFFIXES};
use crate::format::name::ArrayName;
use crate::fs::inspect::{check_data_files, daf_own_file, read_array_files, DafFile, InspectError};
use crate::fs::read::{read_yaml_open, ReadYamlError};

/// What to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsckOptions {
    /// Also verify every checksum (reads every byte).
    pub deep: bool,
    /// Repair what can be repaired without losing committed data.
    pub repair: bool,
}

/// Kinds of problems fsck reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProblemKind {
    /// SQLite's integrity check failed.
    CatalogCorrupt,
    /// A publish or remove was interrupted (repair: roll forward).
    UnfinishedOperation,
    /// A data file is missing or not a regular file.
    MissingFile,
    /// A data file's size differs from the catalog's.
    SizeMismatch,
    /// A sparse invariant is broken.
    SparseInvariant,
    /// A bool byte is not 0 or 1.
    InvalidBool,
    /// A checksum does not match (deep).
    ChecksumMismatch,
    /// The YAML is missing, does not parse, or disagrees with the catalog (repair: rewrite it).
    MetadataMismatch,
    /// Checksums are stale and nobody is writing in place (repair: recompute).
    ChecksumStale,
    /// A holder's process is dead (repair: reap).
    DeadHolder,
    /// A deferred or scratch deletion is due (repair: run it).
    DeletionDue,
    /// Staging files of a dead session (repair: remove).
    StagingLeftover,
    /// A complete, valid array the catalog does not know (repair: register it).
    OrphanArray,
    /// An array file that belongs to no array (reported, never deleted).
    OrphanFile,
    /// A symbolic link inside the container (in the array tree or in `.dafstore/`): never
    /// followed by dafstore ([N7]); reported, never removed.
    Link,
    /// A sub-directory holding `.dafstore`: another container inside this one ([C4]); never
    /// scanned or adopted; reported.
    NestedContainer,
    /// A FIFO, socket or device inside the container ([N9]); never opened; reported.
    SpecialFile,
}

impl ProblemKind {
    /// A stable snake_case name (how it serializes: `--json`, Python).
    pub fn name(&self) -> &'static str {
        match self {
            ProblemKind::CatalogCorrupt => "catalog_corrupt",
            ProblemKind::UnfinishedOperation => "unfinished_operation",
            ProblemKind::MissingFile => "missing_file",
            ProblemKind::SizeMismatch => "size_mismatch",
            ProblemKind::SparseInvariant => "sparse_invariant",
            ProblemKind::InvalidBool => "invalid_bool",
            ProblemKind::ChecksumMismatch => "checksum_mismatch",
            ProblemKind::MetadataMismatch => "metadata_mismatch",
            ProblemKind::ChecksumStale => "checksum_stale",
            ProblemKind::DeadHolder => "dead_holder",
            ProblemKind::DeletionDue => "deletion_due",
            ProblemKind::StagingLeftover => "staging_leftover",
            ProblemKind::OrphanArray => "orphan_array",
            ProblemKind::OrphanFile => "orphan_file",
            ProblemKind::Link => "link",
            ProblemKind::NestedContainer => "nested_container",
            ProblemKind::SpecialFile => "special_file",
        }
    }
}

/// Serializes as [`ProblemKind::name`].
impl serde::Serialize for ProblemKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// One problem found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The file or directory concerned.
    #[serde(serialize_with = "crate::fs::serialize::path")]
    pub path: PathBuf,
    /// The array concerned, if any.
    pub name: Option<String>,
    /// What is wrong (and what was done).
    pub message: String,
    /// Whether `--repair` fixed it.
    pub fixed: bool,
}

/// Serializes as `{arrays_checked, problems, exit_code, daf_files}` (`dafctl fsck --json`, Python's
/// `c.fsck()`), with [`FsckReport::exit_code`].
impl serde::Serialize for FsckReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("FsckReport", 4)?;
        s.serialize_field("arrays_checked", &self.arrays_checked)?;
        s.serialize_field("problems", &self.problems)?;
        s.serialize_field("exit_code", &self.exit_code())?;
        s.serialize_field("daf_files", &self.daf_files)?;
        s.end()
    }
}

/// The outcome of [`Container::fsck_dir`].
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    /// Everything found.
    pub problems: Vec<Problem>,
    /// Catalog rows checked.
    pub arrays_checked: usize,
    /// daf's own files found in the array tree (SPEC [A1]: its format marker, 0-d items, CSV
    /// files), sorted: not arrays and not problems, left alone.
    pub daf_files: Vec<DafFile>,
}

impl FsckReport {
    /// fsck's exit code convention: 0 clean, 1 problems found and all fixed, 4 problems left.
    pub fn exit_code(&self) -> u8 {
        if self.problems.is_empty() {
            0
        } else if self.problems.iter().all(|p| p.fixed) {
            1
        } else {
            4
        }
    }
}

fn damage_kind(e: &InspectError) -> ProblemKind {
    match e {
        InspectError::BadFile { .. } | InspectError::MissingMetadata { .. } => {
            ProblemKind::MissingFile
        }
        InspectError::SizeMismatch { .. } => ProblemKind::SizeMismatch,
        InspectError::Sparse { .. } => ProblemKind::SparseInvariant,
        InspectError::InvalidBool { .. } => ProblemKind::InvalidBool,
        InspectError::ChecksumMismatch { .. } => ProblemKind::ChecksumMismatch,
        InspectError::Path(PathError::Link { .. }) => ProblemKind::Link,
        InspectError::Path(PathError::NestedContainer { .. }) => ProblemKind::NestedContainer,
        InspectError::Path(_) => ProblemKind::MissingFile,
        _ => ProblemKind::MetadataMismatch,
    }
}

fn damage_path(e: &InspectError, fallback: &Path) -> PathBuf {
    match e {
        InspectError::BadFile { path, .. }
        | InspectError::MissingMetadata { path }
        | InspectError::SizeMismatch { path, .. }
        | InspectError::Sparse { path, .. }
        | InspectError::InvalidBool { path, .. }
        | InspectError::ChecksumMismatch { path, .. } => path.clone(),
        InspectError::Path(
            PathError::Link { path }
            | PathError::NestedContainer { path }
            | PathError::WrongType { path, .. }
            | PathError::Io(crate::error::IoError { path, .. }),
        ) => path.clone(),
        _ => fallback.to_path_buf(),
    }
}

struct Found {
    problems: Vec<Problem>,
}

impl Found {
    fn add(
        &mut self,
        kind: ProblemKind,
        path: PathBuf,
        name: Option<&str>,
        message: String,
    ) -> usize {
        self.problems.push(Problem {
            kind,
            path,
            name: name.map(str::to_string),
            message,
            fixed: false,
        });
        self.problems.len() - 1
    }
}

impl Container {
    /// Checks the container in `dir` (opened without garbage collection, so nothing is fixed
    /// behind fsck's back) and, with `opts.repair`, repairs what it can. `progress(done, total)` is
    /// called as arrays are checked. Errors are operational (cannot open, unsupported version).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use dafstore::{Container, FsckOptions};
    /// let path = dir.path().join("c");
    /// Container::create(&path)?.write_dense::<u8>("x", &[4], &[1, 2, 3, 4])?;
    /// std::fs::write(path.join("x.yaml"), "garbage: [")?; // damage the metadata
    /// let found = Container::fsck_dir(&path, FsckOptions::default(), &mut |_, _| {})?;
    /// assert_eq!(found.exit_code(), 4);
    /// let repaired = Container::fsck_dir(&path, FsckOptions { repair: true, ..Default::default() }, &mut |_, _| {})?;
    /// assert_eq!(repaired.exit_code(), 1); // rewritten from the catalog
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fsck_dir(
        dir: &Path,
        opts: FsckOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<FsckReport, ContainerError> {
        // Without --repair nothing is written: a read-only open works on read-only media, on a
        // full file system and without write permission (SPEC [Q1]).
        let opened = if opts.repair {
            Container::options().gc(false).open(dir)
        } else {
            Container::options().read_only(true).open(dir)
        };
        let c = match opened {
            Ok(c) => c,
            Err(ContainerError::Catalog(e)) if e.needs_rebuild() => {
                return Container::fsck_rebuilt(dir, opts, progress, e.to_string())
            }
            Err(e) => return Err(e),
        };
        let integrity = c.shared.catalog().integrity_problems();
        let why = match integrity {
            Ok(p) if p.is_empty() || !opts.repair => return c.fsck(opts, progress, p),
            Ok(p) => format!("SQLite integrity check: {}", p.join("; ")),
            Err(e) if e.needs_rebuild() => e.to_string(),
            Err(e) => return Err(e.into()),
        };
        drop(c); // its session would make the rebuild refuse
        Container::fsck_rebuilt(dir, opts, progress, why)
    }

    /// fsck of a container whose catalog is missing or damaged: reported, and with `repair`
    /// rebuilt from the array files (SPEC [Q2]) and then checked as usual.
    fn fsck_rebuilt(
        dir: &Path,
        opts: FsckOptions,
        progress: &mut dyn FnMut(u64, u64),
        why: String,
    ) -> Result<FsckReport, ContainerError> {
        let catalog = fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_path_buf())
            .join(crate::format::RESERVED_DIR)
            .join("catalog.sqlite");
        let mut problem = Problem {
            kind: ProblemKind::CatalogCorrupt,
            path: catalog,
            name: None,
            message: why,
            fixed: false,
        };
        if !opts.repair {
            return Ok(FsckReport {
                problems: vec![problem],
                arrays_checked: 0,
                daf_files: Vec::new(),
            });
        }
        let rebuilt = match Container::rebuild_catalog(dir) {
            Ok(r) => r,
            Err(e @ ContainerError::LiveSessions { .. }) => {
                problem.message.push_str(&format!("; repair refused: {e}"));
                return Ok(FsckReport {
                    problems: vec![problem],
                    arrays_checked: 0,
                    daf_files: Vec::new(),
                });
            }
            Err(e) => return Err(e),
        };
        let aside: Vec<String> = rebuilt
            .moved_aside
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        problem.message.push_str(&format!(
            "; rebuilt from the array files: {} arrays registered, {} metadata files left for fsck to report; {}; references, scratch flags, deferred removals and interrupted publishes are not recovered (SPEC [Q2])",
            rebuilt.registered.len(),
            rebuilt.refused.len(),
            if aside.is_empty() {
                "there was no catalog to keep".to_string()
            } else {
                format!("the damaged catalog is kept as {}", aside.join(", "))
            }
        ));
        problem.fixed = true;
        let c = Container::options().gc(false).open(dir)?;
        let integrity = c.shared.catalog().integrity_problems()?;
        let mut report = c.fsck(opts, progress, integrity)?;
        report.problems.insert(0, problem);
        Ok(report)
    }

    /// The checks and repairs, given what `PRAGMA integrity_check` found.
    fn fsck(
        &self,
        opts: FsckOptions,
        progress: &mut dyn FnMut(u64, u64),
        integrity: Vec<String>,
    ) -> Result<FsckReport, ContainerError> {
        let shared = &self.shared;
        let root = shared.root.clone();
        let mut found = Found {
            problems: Vec::new(),
        };
        for p in integrity {
            found.add(
                ProblemKind::CatalogCorrupt,
                shared.dir.join("catalog.sqlite"),
                None,
                format!("SQLite integrity check: {p}"),
            );
        }
        let (records, corrupt_rows) = shared.catalog().list_lenient()?;
        for (name, e) in &corrupt_rows {
            found.add(
                ProblemKind::CatalogCorrupt,
                shared.dir.join("catalog.sqlite"),
                Some(name),
                format!("{e}; repair cannot guess the right value: restore the catalog or the array from a copy"),
            );
        }
        let total = records.len() as u64;
        // A corrupt row's files are not orphans: they stay as they are.
        let mut known: BTreeSet<String> = corrupt_rows.iter().map(|(n, _)| n.clone()).collect();
        let mut yaml_rewrites: Vec<(usize, ArrayInfo)> = Vec::new();
        let mut unfinished: Vec<(usize, ArrayName)> = Vec::new();
        let mut stale: Vec<(usize, ArrayName)> = Vec::new();
        for (i, rec) in records.iter().enumerate() {
            progress(i as u64, total);
            known.insert(rec.name.clone());
            let Ok(name) = ArrayName::new(&rec.name) else {
                found.add(
                    ProblemKind::CatalogCorrupt,
                    shared.dir.join("catalog.sqlite"),
                    Some(&rec.name),
                    format!("catalog row with an invalid name {:?}", rec.name),
                );
                continue;
            };
            let yaml = name.file_path(&root, "yaml");
            match rec.state {
                ArrayState::Publishing | ArrayState::Removing => {
                    if shared.stripe_free(&name) {
                        let what = if rec.state == ArrayState::Publishing {
                            "publish"
                        } else {
                            "remove"
                        };
                        let k = found.add(ProblemKind::UnfinishedOperation, yaml, Some(&rec.name), format!("an interrupted {what} of {:?} (its process died); repair rolls it forward", rec.name));
                        unfinished.push((k, name));
                    }
                    continue;
                }
                ArrayState::Live | ArrayState::Deleting => {}
            }
            // Data files against the catalog (the engine's truth), then the YAML against both.
            let recorded: BTreeMap<String, u32> = if rec.checksum_stale {
                BTreeMap::new()
            } else {
                rec.files
                    .iter()
                    .filter_map(|f| f.crc32c.map(|c| (f.suffix.clone(), c)))
                    .collect()
            };
            let files_ok = match check_data_files(
                &root,
                &name,
                rec.meta.clone(),
                (1, 1),
                recorded,
                opts.deep,
            ) {
                Ok(_) => true,
                Err(e) => {
                    found.add(damage_kind(&e), damage_path(&e, &yaml), Some(&rec.name), format!("{e}; committed data is never deleted: restore it from a copy or remove the array"));
                    false
                }
            };
            let yaml_problem = match read_yaml_beneath(&root, &name, &yaml) {
                Err(ReadYamlError::Io(_, e)) => Some(format!(
                    "{}: cannot read the metadata file: {e}",
                    yaml.display()
                )),
                Err(ReadYamlError::Meta(e)) => Some(e.to_string()),
                Ok(doc) if doc.meta != rec.meta => Some(format!(
                    "{}: metadata says {}, the catalog says {}",
                    yaml.display(),
                    describe(&doc.meta),
                    describe(&rec.meta),
                )),
                Ok(doc) => {
                    let disagree =
                        rec.files
                            .iter()
                            .any(|f| match (f.crc32c, doc.crc32c.get(&f.suffix)) {
                                (Some(a), Some(&b)) => !rec.checksum_stale && a != b,
                                _ => false,
                            });
                    disagree.then(|| {
                        format!(
                            "{}: its crc32c values disagree with the catalog's",
                            yaml.display()
                        )
                    })
                }
            };
            if let Some(msg) = yaml_problem {
                let fix = if files_ok {
                    "; repair rewrites it from the catalog"
                } else {
                    ""
                };
                let k = found.add(
                    ProblemKind::MetadataMismatch,
                    yaml.clone(),
                    Some(&rec.name),
                    format!("{msg}{fix}"),
                );
                if files_ok {
                    yaml_rewrites.push((k, rec.clone()));
                }
            }
            if rec.checksum_stale && files_ok {
                let writers = shared.catalog().inplace_writer_sessions(&rec.name)?;
                if writers.iter().all(|s| !shared.session_alive(s)) {
                    let k = found.add(ProblemKind::ChecksumStale, yaml, Some(&rec.name), format!("checksums of {:?} are stale and nobody writes it in place; repair recomputes them", rec.name));
                    stale.push((k, name));
                }
            }
        }
        progress(total, total);

        // Holders and deletions.
        let mut dead_holders = Vec::new();
        for h in self.holders()? {
            if !h.alive {
                let arrays: Vec<&str> = h.arrays.iter().map(|a| a.name.as_str()).collect();
                let k = found.add(
                    ProblemKind::DeadHolder,
                    shared.dir.join("sessions").join(format!("{}.lock", h.session)),
                    None,
                    format!("session {} (pid {}) is dead but still registered, holding {:?}; repair (or gc) reaps it", h.session, h.pid.map_or("?".into(), |p| p.to_string()), arrays),
                );
                dead_holders.push(k);
            }
        }
        let live_holders: BTreeSet<String> = self
            .holders()?
            .into_iter()
            .filter(|h| h.alive)
            .flat_map(|h| h.arrays.into_iter().map(|a| a.name))
            .collect();
        let mut due = Vec::new();
        for rec in &records {
            let deleting = rec.state == ArrayState::Deleting;
            let scratch_due = rec.state == ArrayState::Live && rec.scratch && rec.ever_held;
            if (deleting || scratch_due) && !live_holders.contains(&rec.name) {
                let k = found.add(
                    ProblemKind::DeletionDue,
                    root.join(&rec.name),
                    Some(&rec.name),
                    format!(
                        "{:?} is due for deletion (no live holder); repair (or gc) deletes it",
                        rec.name
                    ),
                );
                due.push(k);
            }
        }

        // Staging leftovers of dead sessions.
        let mut staging = Vec::new();
        // The reserved directories themselves, and each session's staging directory, must be
        // real directories: a link there is reported and never followed ([N7]).
        for sub in ["locks", "sessions", "staging"] {
            if let Err(e @ (PathError::Link { .. } | PathError::WrongType { .. })) =
                crate::fs::beneath::reserved(&root, sub)
            {
                found.add(
                    ProblemKind::Link,
                    shared.dir.join(sub),
                    None,
                    format!("{e}; dafstore does not use it until it is a real directory again"),
                );
            }
        }
        let staging_dir = crate::fs::beneath::reserved(&root, "staging").ok();
        for n in staging_dir
            .iter()
            .flat_map(|d| d.names().unwrap_or_default())
        {
            let id = n.to_string_lossy().into_owned();
            let path = shared.dir.join("staging").join(&n);
            if let Some(d) = &staging_dir {
                if let Ok(Some(ft)) = d.entry_type(&n) {
                    if !ft.is_dir() {
                        found.add(
                            ProblemKind::Link,
                            path.clone(),
                            None,
                            format!(
                                "{}: a {} where only session directories belong; never followed or removed by dafstore; remove it",
                                escaped_path(&path),
                                crate::fs::beneath::kind_name(&ft)
                            ),
                        );
                        continue;
                    }
                }
            }
            if !is_session_id(&id) || shared.session_alive(&id) || shared.staging_needed(&id)? {
                continue;
            }
            let k = found.add(
                ProblemKind::StagingLeftover,
                path.clone(),
                None,
                format!(
                    "{}: staging files of dead session {id}; repair (or gc) removes them",
                    path.display()
                ),
            );
            staging.push(k);
        }

        // Orphans: array files the catalog does not know.
        let mut orphan_arrays = Vec::new();
        let mut daf_files = Vec::new();
        let mut files = Vec::new();
        let mut hazards = Vec::new();
        collect_files(&root, &mut files, &mut hazards);
        // Hashed: a tree of paths compares them component by component, which was half of the
        // time of a check of 100k arrays.
        let mut claimed: std::collections::HashSet<PathBuf> =
            std::collections::HashSet::with_capacity(known.len() * 6);
        for n in &known {
            if let Ok(name) = ArrayName::new(n) {
                for sfx in ALL_SUFFIXES.iter().chain(["yaml"].iter()) {
                    claimed.insert(name.file_path(&root, sfx));
                }
            }
        }
        for f in &files {
            if claimed.contains(f) {
                continue;
            }
            let daf = f
                .strip_prefix(&root)
                .ok()
                .and_then(Path::to_str)
                .filter(|rel| rel.ends_with(".yaml") || rel.ends_with(".csv"))
                .and_then(|rel| daf_own_file(&root, rel));
            if let Some(kind) = daf {
                daf_files.push(DafFile {
                    path: f.clone(),
                    kind,
                });
                continue;
            }
            if f.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let rel = f.strip_prefix(&root).unwrap_or(f).with_extension("");
            let rel = rel.to_string_lossy().into_owned();
            match read_array_files(&root, &rel, true) {
                Ok(arr) => {
                    for (sfx, _) in arr.meta.files() {
                        if let Ok(name) = ArrayName::new(&rel) {
                            claimed.insert(name.file_path(&root, sfx));
                        }
                    }
                    claimed.insert(f.clone());
                    let k = found.add(ProblemKind::OrphanArray, f.clone(), Some(&rel), format!("{}: a complete, valid array the catalog does not know; repair registers it", f.display()));
                    orphan_arrays.push(k);
                }
                Err(e) => {
                    claimed.insert(f.clone());
                    found.add(
                        ProblemKind::OrphanFile,
                        f.clone(),
                        Some(&rel),
                        format!(
                            "{}: not in the catalog and not a valid array ({e}); left in place",
                            f.display()
                        ),
                    );
                }
            }
        }
        for (kind, f, what) in &hazards {
            if claimed.contains(f) || found.problems.iter().any(|p| p.path == *f) {
                continue; // reported with its array above
            }
            let message = match kind {
                ProblemKind::NestedContainer => format!(
                    "{}: holds another container (.dafstore); containers never nest (SPEC [C4]): nothing under it is this container's, it is never scanned, adopted or written; move it out of this container",
                    escaped_path(f)
                ),
                ProblemKind::Link => format!(
                    "{}: a symbolic link inside the container; dafstore never follows links (SPEC [N7]): arrays under or behind it cannot be opened, written or removed; replace it by the directory or file itself",
                    escaped_path(f)
                ),
                _ => format!(
                    "{}: a {what} inside the container; dafstore never opens it (SPEC [N9]); remove it",
                    escaped_path(f)
                ),
            };
            found.add(*kind, f.clone(), None, message);
        }
        for f in &files {
            let ours = f
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ALL_SUFFIXES.contains(&e));
            if ours && !claimed.contains(f) {
                found.add(ProblemKind::OrphanFile, f.clone(), None, format!("{}: an array file of no array (no metadata file, not in the catalog); left in place", f.display()));
            }
        }

        if opts.repair && !shared.readonly {
            self.repair(
                &mut found,
                unfinished,
                yaml_rewrites,
                stale,
                orphan_arrays,
                dead_holders,
                due,
                staging,
            );
        }
        daf_files.sort();
        Ok(FsckReport {
            problems: found.problems,
            arrays_checked: records.len(),
            daf_files,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn repair(
        &self,
        found: &mut Found,
        unfinished: Vec<(usize, ArrayName)>,
        yaml_rewrites: Vec<(usize, ArrayInfo)>,
        stale: Vec<(usize, ArrayName)>,
        orphan_arrays: Vec<usize>,
        dead_holders: Vec<usize>,
        due: Vec<usize>,
        staging: Vec<usize>,
    ) {
        let shared = &self.shared;
        let note = |found: &mut Found, k: usize, result: Result<(), String>| {
            if let Some(p) = found.problems.get_mut(k) {
                match result {
                    Ok(()) => p.fixed = true,
                    Err(e) => p.message.push_str(&format!("; repair failed: {e}")),
                }
            }
        };
        for (k, name) in unfinished {
            let r = shared
                .lock_name(&name)
                .map_err(|e| e.to_string())
                .and_then(|held| shared.recover_locked(&held).map_err(|e| e.to_string()));
            note(found, k, r);
        }
        for (k, rec) in yaml_rewrites {
            let r = ArrayName::new(&rec.name)
                .map_err(|e| e.to_string())
                .and_then(|name| {
                    let held = shared.lock_name(&name).map_err(|e| e.to_string())?;
                    let crcs: Option<Vec<(String, u32)>> = if rec.checksum_stale {
                        None
                    } else {
                        rec.files
                            .iter()
                            .map(|f| f.crc32c.map(|c| (f.suffix.clone(), c)))
                            .collect()
                    };
                    shared
                        .rewrite_yaml(&held, &rec.meta, crcs.as_deref())
                        .map_err(|e| e.to_string())
                });
            note(found, k, r);
        }
        for k in orphan_arrays {
            let r = match found.problems.get(k).and_then(|p| p.name.clone()) {
                Some(n) => self.adopt_name(&n),
                None => Err("no name".into()),
            };
            note(found, k, r);
        }
        // Reaping, due deletions and staging leftovers are exactly what gc does.
        let gc = self.gc();
        for k in dead_holders.into_iter().chain(due).chain(staging) {
            let r = match &gc {
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            note(found, k, r);
        }
        for (k, name) in stale {
            let r = shared
                .lock_name(&name)
                .map_err(|e| e.to_string())
                .and_then(|held| shared.refresh_checksums(&held).map_err(|e| e.to_string()));
            note(found, k, r);
        }
        // Verify what was marked fixed: a problem gc could not clear is not fixed.
        if let Ok(holders) = self.holders() {
            let dead: BTreeSet<String> = holders
                .into_iter()
                .filter(|h| !h.alive)
                .map(|h| h.session)
                .collect();
            for p in &mut found.problems {
                if p.kind == ProblemKind::DeadHolder {
                    let id = p
                        .path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if dead.contains(&id) {
                        p.fixed = false;
                    }
                }
            }
        }
    }
}

/// Every regular file under `dir`, skipping reserved (`.`-prefixed) entries, not following
/// symlinks and not descending into a directory that holds `.dafstore` (another container,
/// [C4]). Links, nested containers and special files go to `hazards`.
fn collect_files(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    hazards: &mut Vec<(ProblemKind, PathBuf, &'static str)>,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        let kind = crate::fs::beneath::kind_name(&ft);
        if ft.is_dir() {
            let sub = e.path();
            if fs::symlink_metadata(sub.join(crate::format::RESERVED_DIR)).is_ok() {
                hazards.push((ProblemKind::NestedContainer, sub, kind));
            } else {
                collect_files(&sub, out, hazards);
            }
        } else if ft.is_file() {
            out.push(e.path());
        } else if ft.is_symlink() {
            hazards.push((ProblemKind::Link, e.path(), kind));
        } else {
            hazards.push((ProblemKind::SpecialFile, e.path(), kind));
        }
    }
}

/// Reads `name`'s metadata file through the container's descriptors ([N7], [N9], [C4]).
fn read_yaml_beneath(
    root: &Path,
    name: &ArrayName,
    yaml: &Path,
) -> Result<crate::format::meta::YamlDoc, ReadYamlError> {
    let not_found = || ReadYamlError::Io(yaml.to_path_buf(), std::io::ErrorKind::NotFound.into());
    match crate::fs::beneath::open_array_file(root, name, "yaml", false) {
        Ok(Some((f, _))) => read_yaml_open(f, yaml),
        Ok(None) => Err(not_found()),
        Err(e) => Err(ReadYamlError::Io(
            yaml.to_path_buf(),
            std::io::Error::other(e.to_string()),
        )),
    }
}

/// `path` for a message, with every control or bidi character escaped ([N8]): names found on
/// disk are never printed raw.
pub(crate) fn escaped_path(path: &Path) -> String {
    crate::format::name::escape_for_display(&path.to_string_lossy())
}

/// A short description of metadata for messages: kind, shape and dtype, or a table's rows,
/// columns and types.
fn describe(meta: &ArrayMeta) -> String {
    match meta {
        ArrayMeta::Table(t) => format!(
            "table of {} rows, columns {:?} of types {:?}, {} bytes",
            t.rows, t.columns, t.types, t.bytes
        ),
        m => format!(
            "{} {:?} {}",
            m.kind(),
            m.shape(),
            m.dtype().map_or_else(String::new, |d| d.to_string())
        ),
    }
}
