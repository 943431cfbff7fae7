//! Rebuilding a lost or damaged catalog from the array files (SPEC [Q2]): the YAML files and data
//! files are the data, the catalog is an index of them. Refused while any process has the
//! container open (a live session); the new catalog is built beside the old one and renamed into
//! place; the damaged catalog (and its `-wal`, `-shm`) is moved aside, never deleted.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::catalog::{now_ms, Access, Catalog, FileRecord};
use crate::container::Container;
use crate::error::{io_at, ContainerError};
use crate::format::is_session_id;
use crate::format::name::ArrayName;
use crate::fs::local::fsync_dir;

/// What [`Container::rebuild_catalog`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RebuildReport {
    /// Where the damaged catalog files were moved (none if the catalog was missing).
    #[serde(serialize_with = "crate::fs::serialize::paths")]
    pub moved_aside: Vec<PathBuf>,
    /// Arrays registered (complete and valid, from their YAML and files).
    pub registered: Vec<String>,
    /// Metadata files not registered, with the reason (left in place for fsck to report).
    pub refused: Vec<crate::fs::inspect::Refused>,
}

/// The live sessions of the container whose reserved directory is `dir` ([P1]: a session file
/// under its final name that another open file description holds locked).
fn live_sessions(dir: &Path) -> Vec<String> {
    let mut live = Vec::new();
    let Ok(entries) = fs::read_dir(dir.join("sessions")) else {
        return live;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let Some(id) = n.strip_suffix(".lock").filter(|id| is_session_id(id)) else {
            continue;
        };
        if let Ok(f) = File::open(e.path()) {
            if f.try_lock().is_err() {
                live.push(id.to_string());
            }
        }
    }
    live.sort();
    live
}

/// Takes every lock stripe ([W6]) exclusively; released when the files are dropped.
fn lock_all_stripes(dir: &Path) -> Result<Vec<File>, ContainerError> {
    let mut held = Vec::new();
    for i in 0..crate::format::LOCK_STRIPES {
        let p = dir.join("locks").join(format!("{i:02}.lock"));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .map_err(io_at(&p, "open lock stripe", ContainerError::io))?;
        f.lock()
            .map_err(io_at(&p, "lock stripe", ContainerError::io))?;
        // Every row may change: a new change stamp before anything does ([W6]).
        crate::protocol::stripes::restamp(&f).map_err(io_at(
            &p,
            "stamp lock stripe",
            ContainerError::io,
        ))?;
        held.push(f);
    }
    Ok(held)
}

impl Container {
    /// Rebuilds the catalog of the container `dir` from its array files (SPEC [Q2]). Every
    /// complete, valid array (its YAML and data files agree, sparse invariants hold) is registered
    /// `live`, with the checksums its YAML records (none if it records none). Refused with
    /// [`ContainerError::LiveSessions`] while a process has the container open. What a rebuild
    /// cannot recover (references, scratch flags, deferred removals, interrupted publishes) is
    /// listed in the spec. `dafctl fsck --repair` runs it when the catalog is missing or damaged.
    pub fn rebuild_catalog(dir: impl AsRef<Path>) -> Result<RebuildReport, ContainerError> {
        let (root, dir) = crate::container::locate(dir.as_ref())?;
        // Every stripe, exclusively, for the whole rebuild: no publish or remove can commit to
        // the old catalog meanwhile (it would be lost with it). A live writer holding one is
        // waited for, then found live below.
        let _stripes = lock_all_stripes(&dir)?;
        let live = live_sessions(&dir);
        if !live.is_empty() {
            return Err(ContainerError::LiveSessions {
                path: root,
                sessions: live,
            });
        }
        let catalog = dir.join("catalog.sqlite");
        let stamp = now_ms();
        let fresh = dir.join(format!("catalog.sqlite.rebuild-{stamp}"));
        let mut report = RebuildReport::default();
        {
            let mut cat = Catalog::open(&fresh, Access::Create)?;
            let mut yamls = Vec::new();
            // Arrays of a nested container are that container's, never this one's ([C4]).
            let mut nested = Vec::new();
            crate::adopt::collect_yaml(&root, &mut yamls, &mut nested).map_err(io_at(
                &root,
                "scan for array metadata",
                ContainerError::io,
            ))?;
            yamls.sort();
            for yaml in yamls {
                match register(&root, &yaml, &mut cat) {
                    Ok(name) => report.registered.push(name),
                    Err(reason) => report
                        .refused
                        .push(crate::fs::inspect::Refused { path: yaml, reason }),
                }
            }
        } // closed: SQLite checkpoints and removes the new catalog's log
        File::open(&fresh)
            .and_then(|f| f.sync_all())
            .map_err(io_at(
                &fresh,
                "sync the rebuilt catalog",
                ContainerError::io,
            ))?;
        for suffix in ["", "-wal", "-shm"] {
            let from = dir.join(format!("catalog.sqlite{suffix}"));
            let to = dir.join(format!("catalog.sqlite.damaged-{stamp}{suffix}"));
            match fs::rename(&from, &to) {
                Ok(()) => report.moved_aside.push(to),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ContainerError::io(
                        from,
                        "move the damaged catalog aside",
                        e,
                    ))
                }
            }
        }
        fs::rename(&fresh, &catalog).map_err(io_at(
            &catalog,
            "rename the rebuilt catalog into place",
            ContainerError::io,
        ))?;
        fsync_dir(&dir).map_err(io_at(&dir, "sync directory", ContainerError::io))?;
        Ok(report)
    }
}

/// Registers the array described by `yaml` in `cat` if its files are complete and valid.
fn register(root: &Path, yaml: &Path, cat: &mut Catalog) -> Result<String, String> {
    let rel = yaml
        .strip_prefix(root)
        .map_err(|_| "outside the container".to_string())?;
    let rel = rel.to_str().ok_or("the name is not UTF-8 (SPEC [N1])")?;
    let name =
        ArrayName::new(rel.strip_suffix(".yaml").unwrap_or(rel)).map_err(|e| e.to_string())?;
    // Sizes, kinds, sparse invariants and bool bytes; checksums are taken from the YAML (a full
    // verification is `fsck --deep`).
    let arr = crate::fs::inspect::read_array_files(root, name.as_str(), false)
        .map_err(|e| e.to_string())?;
    let files = FileRecord::of(&arr.meta, &arr.crc32c);
    cat.insert_live(name.as_str(), &arr.meta, &files)
        .map_err(|e| e.to_string())?;
    Ok(name.to_string())
}
