//! Adopting a daf directory: registering array files written by daf (or any writer following
//! SPEC sections 3–5) in the catalog without copying or changing a byte of them. Each candidate is
//! checked as fsck would (metadata, sizes, sparse invariants, bool bytes) and checksummed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::catalog::{ArrayState, FileRecord};
use crate::container::{open_nofollow, Container};
use crate::dtype::{DType, IndexSlice};
use crate::error::ContainerError;
use crate::meta::{read_yaml_file, ArrayMeta};
use crate::name::ArrayName;
use crate::sys::SharedMap;

/// What [`Container::adopt`] did.
#[derive(Debug, Default, Clone)]
pub struct AdoptReport {
    /// Names registered.
    pub adopted: Vec<String>,
    /// Names already in the catalog (left alone).
    pub already: Vec<String>,
    /// Metadata files that could not be adopted, with the reason.
    pub refused: Vec<(PathBuf, String)>,
}

impl Container {
    /// Turns `path` into a container if it is not one (daf directories have no catalog), then
    /// registers every array whose files are complete and valid and not yet in the catalog.
    /// Array files are never modified.
    pub fn adopt(path: impl AsRef<Path>) -> Result<(Container, AdoptReport), ContainerError> {
        let path = path.as_ref();
        let c = if path
            .join(crate::container::RESERVED_DIR)
            .join("container.yaml")
            .is_file()
        {
            Container::open(path)?
        } else {
            Container::create(path)?
        };
        let mut yamls = Vec::new();
        collect_yaml(c.root(), &mut yamls).map_err(|e| ContainerError::Io {
            path: path.to_path_buf(),
            op: "scan",
            source: e,
        })?;
        yamls.sort();
        let mut report = AdoptReport::default();
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
                Err(reason) => report.refused.push((yaml, reason)),
            }
        }
        Ok((c, report))
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
        let _g = shared
            .lock_stripe(&name, true)
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
        let doc = read_yaml_file(yaml).map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        let mut maps = Vec::new();
        for (suffix, expected) in doc.meta.files() {
            let p = name.file_path(self.root(), suffix);
            if suffix == "data" && !p.exists() && name.file_path(self.root(), "sparse").exists() {
                return Err(format!(
                    "{} uses the pre-release daf name `.sparse`; rename it to `{}` and adopt again (SPEC 5.5)",
                    name.file_path(self.root(), "sparse").display(),
                    p.display()
                ));
            }
            let f = open_nofollow(&p, false).map_err(|e| format!("{}: {e}", p.display()))?;
            let md = f.metadata().map_err(|e| format!("{}: {e}", p.display()))?;
            if !md.is_file() || md.len() != expected {
                return Err(format!(
                    "{}: {} bytes, the metadata promises {expected} (SPEC [D3]/[S3])",
                    p.display(),
                    md.len()
                ));
            }
            let map = match usize::try_from(expected) {
                Ok(0) => None,
                Ok(n) => Some(
                    SharedMap::new(&f, n, false)
                        .map_err(|e| format!("{}: cannot map: {e}", p.display()))?,
                ),
                Err(_) => return Err(format!("{}: too large to map", p.display())),
            };
            let crc = map.as_ref().map_or(0, |m| crc32c::crc32c(m.bytes()));
            files.push(FileRecord {
                suffix: suffix.to_string(),
                size: expected,
                crc32c: Some(crc),
            });
            maps.push(map);
        }
        let bytes = |i: usize| {
            maps.get(i)
                .and_then(Option::as_ref)
                .map_or(&[][..], |m| m.bytes())
        };
        match &doc.meta {
            ArrayMeta::Dense(d) if d.dtype == DType::Bool => {
                if let Some(at) = bytes(0).iter().position(|&b| b > 1) {
                    return Err(format!("bool element {at} is not 0 or 1 (SPEC [T2])"));
                }
            }
            ArrayMeta::Dense(_) => {}
            ArrayMeta::Sparse(s) => {
                let idx = index_view(s.indices_dtype, bytes(1))?;
                let ptr = index_view(s.indptr_dtype, bytes(2))?;
                crate::sparse::validate(s, s.nnz, idx, ptr).map_err(|e| e.to_string())?;
            }
        }
        shared
            .catalog()
            .insert_live(name.as_str(), &doc.meta, &files)
            .map_err(|e| e.to_string())?;
        Ok(Some(name.to_string()))
    }
}

fn index_view(dtype: DType, bytes: &[u8]) -> Result<IndexSlice<'_>, String> {
    let bad = |_| "index buffer is not aligned".to_string();
    Ok(match dtype {
        DType::Int32 => IndexSlice::I32(cast(bytes).map_err(bad)?),
        DType::UInt32 => IndexSlice::U32(cast(bytes).map_err(bad)?),
        DType::UInt64 => IndexSlice::U64(cast(bytes).map_err(bad)?),
        _ => IndexSlice::I64(cast(bytes).map_err(bad)?),
    })
}

fn cast<T: bytemuck::Pod>(bytes: &[u8]) -> Result<&[T], bytemuck::PodCastError> {
    if bytes.is_empty() {
        return Ok(&[]);
    }
    bytemuck::try_cast_slice(bytes)
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let n = entry.file_name();
        if n.to_string_lossy().starts_with('.') {
            continue; // reserved ([C1])
        }
        let ft = entry.file_type()?; // does not follow symlinks
        if ft.is_dir() {
            collect_yaml(&entry.path(), out)?;
        } else if ft.is_file() && entry.path().extension().is_some_and(|e| e == "yaml") {
            out.push(entry.path());
        }
    }
    Ok(())
}
