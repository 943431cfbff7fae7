//! Adopting a daf directory: registering array files written by daf (or any writer following
//! SPEC sections 3–5) in the catalog without copying or changing a byte of them. Each candidate is
//! checked as fsck would (metadata, sizes, sparse invariants, bool bytes) and checksummed.
//! daf's own files (`__daf__.yaml`, 0-d items, `.csv` files: SPEC [A1]) are neither adopted nor
//! refused: they are listed and left alone.

use std::fs;
use std::path::{Path, PathBuf};

use crate::catalog::{ArrayState, FileRecord};
use crate::container::Container;
use crate::error::ContainerError;
use crate::format::name::ArrayName;
use crate::fs::inspect::{daf_own_file, DafFile, Refused};

/// What [`Container::adopt`] did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct AdoptReport {
    /// Names registered.
    pub adopted: Vec<String>,
    /// Names already in the catalog (left alone).
    pub already: Vec<String>,
    /// Metadata files that could not be adopted, with the reason.
    pub refused: Vec<Refused>,
    /// daf's own files (SPEC [A1]: its format marker, 0-d items, CSV files), sorted: not
    /// arrays, not refused, left alone.
    pub daf_files: Vec<DafFile>,
}

/// `adopt` registers an existing daf directory: refuse a missing path or a non-directory.
fn check_adoptable(path: &Path) -> Result<(), ContainerError> {
    let io = |op, source| {
        ContainerError::Io(crate::error::IoError {
            path: path.to_path_buf(),
            op,
            source,
        })
    };
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io(
            "adopt it: it is not a directory (adopt takes a daf directory; check the path)",
            std::io::Error::from_raw_os_error(libc::ENOTDIR),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(io(
            "adopt it: the directory does not exist (check the path, or create a new container)",
            e,
        )),
        Err(e) => Err(io("adopt it", e)),
    }
}

impl Container {
    /// Turns `path` into a container if it is not one (daf directories have no catalog), then
    /// registers every array whose files are complete and valid and not yet in the catalog.
    /// Array files are never modified. A path that is not an existing directory is an error
    /// (a typo must not create an empty container).
    pub fn adopt(path: impl AsRef<Path>) -> Result<(Container, AdoptReport), ContainerError> {
        let path = path.as_ref();
        check_adoptable(path)?;
        let c = if path
            .join(crate::format::RESERVED_DIR)
            .join("container.yaml")
            .is_file()
        {
            Container::open(path)?
        } else {
            Container::create(path)?
        };
        let mut yamls = Vec::new();
        let mut nested = Vec::new();
        let mut report = AdoptReport::default();
        let root = c.root();
        scan(root, root, &mut yamls, &mut nested, &mut report.daf_files).map_err(|e| {
            ContainerError::Io(crate::error::IoError {
                path: path.to_path_buf(),
                op: "scan",
                source: e,
            })
        })?;
        yamls.sort();
        report.daf_files.sort();
        for dir in nested {
            report.refused.push(Refused {
                path: dir,
                reason: "holds another container (.dafstore): containers never nest (SPEC [C4]); its arrays are not adopted".into(),
            });
        }
        for yaml in yamls {
            match c.adopt_one(&yaml) {
                Ok(Some(name)) => report.adopted.push(name),
                Ok(None) => {
                    let rel = yaml
                        .strip_prefix(c.root())
                        .unwrap_or(&yaml)
                        .with_extension("");
                    report.already.push(rel.to_string_lossy().into_owned());
                }
                Err(reason) => report.refused.push(Refused { path: yaml, reason }),
            }
        }
        Ok((c, report))
    }

    /// Registers the complete, valid array `name` whose files are in place (fsck's repair of an
    /// orphan array).
    pub(crate) fn adopt_name(&self, name: &str) -> Result<(), String> {
        let name = ArrayName::new(name).map_err(|e| e.to_string())?;
        self.adopt_one(&name.file_path(self.root(), "yaml"))
            .map(|_| ())
    }

    /// Registers the array described by `yaml`; `Ok(None)` if already registered.
    fn adopt_one(&self, yaml: &Path) -> Result<Option<String>, String> {
        let rel = yaml
            .strip_prefix(self.root())
            .map_err(|_| "outside the container".to_string())?;
        let rel = rel.to_str().ok_or("the name is not UTF-8 (SPEC [N1])")?;
        let name =
            ArrayName::new(rel.strip_suffix(".yaml").unwrap_or(rel)).map_err(|e| e.to_string())?;
        let shared = &self.shared;
        let _held = shared
            .lock_name(&name)
            .map_err(|e| format!("cannot lock: {e}"))?;
        if let Some(rec) = shared
            .catalog()
            .get(name.as_str())
            .map_err(|e| e.to_string())?
        {
            if rec.state == ArrayState::Live {
                return Ok(None);
            }
        }
        let sparse_legacy = name.file_path(self.root(), "sparse");
        if sparse_legacy.exists() && !name.file_path(self.root(), "data").exists() {
            return Err(format!(
                "{} uses the pre-release daf name `.sparse`; rename it to `{}.data` and adopt again (SPEC 5.5)",
                sparse_legacy.display(),
                name
            ));
        }
        // Every check a spec reader makes, and the checksums (verified if recorded).
        // The stripe of `name` is held (exclusively) above: no shared relook ([R2]).
        let arr =
            crate::fs::inspect::read_array_files_holding_stripe(self.root(), name.as_str(), true)
                .map_err(|e| e.to_string())?;
        let files = FileRecord::of(&arr.meta, &arr.computed_crc32c);
        shared
            .catalog()
            .insert_live(name.as_str(), &arr.meta, &files)
            .map_err(|e| e.to_string())?;
        Ok(Some(name.to_string()))
    }
}

/// Metadata files under the container root `dir`, not following links and not descending into a
/// directory that holds `.dafstore` (another container: listed in `nested`, [C4]); daf's own
/// files ([A1]) are skipped.
pub(crate) fn collect_yaml(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    nested: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    scan(dir, dir, out, nested, &mut Vec::new())
}

/// [`collect_yaml`] under `dir`, a directory of the array tree of `root`, listing daf's own
/// files in `daf`.
fn scan(
    root: &Path,
    dir: &Path,
    out: &mut Vec<PathBuf>,
    nested: &mut Vec<PathBuf>,
    daf: &mut Vec<DafFile>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let n = entry.file_name();
        if n.to_string_lossy().starts_with('.') {
            continue; // reserved ([C1])
        }
        let ft = entry.file_type()?; // does not follow symlinks
        if ft.is_dir() {
            let sub = entry.path();
            if fs::symlink_metadata(sub.join(crate::format::RESERVED_DIR)).is_ok() {
                nested.push(sub);
            } else {
                scan(root, &sub, out, nested, daf)?;
            }
        } else if ft.is_file() {
            let path = entry.path();
            let ext = path.extension();
            let yaml = ext.is_some_and(|e| e == "yaml");
            if !yaml && ext.is_none_or(|e| e != "csv") {
                continue;
            }
            let kind = path
                .strip_prefix(root)
                .ok()
                .and_then(Path::to_str)
                .and_then(|rel| daf_own_file(root, rel));
            match kind {
                Some(kind) => daf.push(DafFile { path, kind }),
                None if yaml => out.push(path),
                None => {}
            }
        }
    }
    Ok(())
}
