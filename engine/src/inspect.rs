//! Reading array files by the spec alone, with no catalog (SPEC sections 3–6): what `fsck`,
//! `adopt` and the conformance runner use to judge files. Every check the spec makes of a reader
//! is here, each failure a typed [`InspectError`] whose [`InspectError::class`] is the error class
//! the conformance vectors name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dtype::{DType, IndexSlice};
use crate::error::{MetaError, NameError, SparseError};
use crate::meta::{ArrayMeta, ReadYamlError};
use crate::name::ArrayName;
use crate::sys::SharedMap;

/// Why a set of array files is not a valid array.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The name breaks SPEC section 3.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The metadata file is missing.
    #[error("{path}: missing metadata file (SPEC [R1]): the array does not exist")]
    MissingMetadata {
        /// The expected `.yaml` path.
        path: PathBuf,
    },
    /// The metadata is invalid (parse, keys, version, dtype, shape).
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// A data file is missing or not a regular file.
    #[error("{path}: {problem} (SPEC [D3]/[S3]/[N7])")]
    BadFile {
        /// The data file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A data file's length is not what the metadata promises.
    #[error("{path}: file is {actual} bytes, the metadata promises {expected} (SPEC [D3]/[S3])")]
    SizeMismatch {
        /// The data file.
        path: PathBuf,
        /// Expected bytes.
        expected: u64,
        /// Actual bytes.
        actual: u64,
    },
    /// A sparse invariant is broken.
    #[error("{path}: {source}")]
    Sparse {
        /// The metadata file of the array.
        path: PathBuf,
        /// The invariant.
        source: SparseError,
    },
    /// A bool byte is not 0 or 1.
    #[error("{path}: bool element {at} is byte {byte}, must be 0 or 1 (SPEC [T2])")]
    InvalidBool {
        /// The data file.
        path: PathBuf,
        /// Element index.
        at: u64,
        /// The byte.
        byte: u8,
    },
    /// A recorded checksum does not match.
    #[error("{path}: CRC-32C is {actual:08x}, the metadata records {expected:08x}: the file is corrupt (SPEC [K1])")]
    ChecksumMismatch {
        /// The data file.
        path: PathBuf,
        /// Recorded.
        expected: u32,
        /// Computed.
        actual: u32,
    },
    /// A path under the container crosses a link, a nested container or a non-regular file, is
    /// too long, or the container was removed (SPEC [N7], [N9], [N10], [C4], [C5]).
    #[error(transparent)]
    Path(#[from] crate::beneath::PathError),
}

impl InspectError {
    /// The error class used by conformance vectors (`format-spec/vectors/*/expected.json`).
    pub fn class(&self) -> &'static str {
        match self {
            InspectError::Name(_) => "invalid_name",
            InspectError::MissingMetadata { .. } => "missing",
            InspectError::Meta(MetaError::UnsupportedVersion { .. }) => "unsupported_version",
            InspectError::Meta(MetaError::UnknownDtype { .. }) => "unknown_dtype",
            InspectError::Meta(MetaError::ShapeOverflow { .. }) => "shape_overflow",
            InspectError::Meta(_) => "invalid_metadata",
            InspectError::BadFile { .. } => "missing_file",
            InspectError::SizeMismatch { .. } => "size_mismatch",
            InspectError::Sparse { .. } => "sparse_invariant",
            InspectError::InvalidBool { .. } => "invalid_bool",
            InspectError::ChecksumMismatch { .. } => "checksum_mismatch",
            InspectError::Path(crate::beneath::PathError::TooLong { .. }) => "invalid_name",
            InspectError::Path(_) => "missing_file",
        }
    }
}

/// A valid array read from its files: metadata, recorded checksums, and one private read-only map
/// per non-empty data file (not shared with the process cache).
pub struct ArrayFiles {
    /// The metadata.
    pub meta: ArrayMeta,
    /// `[major, minor]` of the metadata file.
    pub version: (u64, u64),
    /// Checksums recorded in the metadata file, by suffix.
    pub crc32c: BTreeMap<String, u32>,
    /// Computed CRC-32C of every data file, by suffix (only when asked to verify).
    pub computed_crc32c: BTreeMap<String, u32>,
    maps: Vec<Option<SharedMap>>,
}

impl ArrayFiles {
    /// The bytes of data file `i` (in `meta.files()` order).
    pub fn bytes(&self, i: usize) -> &[u8] {
        self.maps
            .get(i)
            .and_then(Option::as_ref)
            .map_or(&[], |m| m.bytes())
    }
}

/// Reads the array `name` under `root` as a reader without dafstore's catalog would (SPEC 5–6):
/// name, metadata, file kinds and sizes, sparse invariants, bool bytes; with `verify`, also every
/// recorded checksum. Never panics and never reads out of bounds on any input.
pub fn read_array_files(root: &Path, name: &str, verify: bool) -> Result<ArrayFiles, InspectError> {
    let name = ArrayName::new(name)?;
    let yaml = name.file_path(root, "yaml");
    // Resolved component by component: no link, no nested container, no FIFO ([N7], [N9], [C4]).
    let missing = || InspectError::MissingMetadata { path: yaml.clone() };
    let dir = crate::beneath::array_dir(root, &name)?.ok_or_else(missing)?;
    let (file, _) = dir
        .open_file(&crate::beneath::leaf(&name, "yaml"), false)?
        .ok_or_else(missing)?;
    let doc = match crate::meta::read_yaml_open(file, &yaml) {
        Ok(d) => d,
        Err(ReadYamlError::Io(p, e)) => {
            return Err(InspectError::BadFile {
                path: p,
                problem: e.to_string(),
            })
        }
        Err(ReadYamlError::Meta(m)) => return Err(m.into()),
    };
    check_data_files(root, &name, doc.meta, doc.version, doc.crc32c, verify)
}

/// Checks the data files of `name` against `meta` (from its YAML, or from the catalog): kinds,
/// sizes, then content (sparse invariants, bool bytes), and with `verify` the checksums in
/// `recorded`. Returns the mapped files.
pub fn check_data_files(
    root: &Path,
    name: &ArrayName,
    meta: ArrayMeta,
    version: (u64, u64),
    recorded: BTreeMap<String, u32>,
    verify: bool,
) -> Result<ArrayFiles, InspectError> {
    let mut maps = Vec::new();
    let mut computed = BTreeMap::new();
    let dir = crate::beneath::array_dir(root, name)?;
    for (suffix, expected) in meta.files() {
        let path = name.file_path(root, suffix);
        let opened = match &dir {
            Some(d) => d.open_file(&crate::beneath::leaf(name, suffix), false)?,
            None => None,
        };
        let Some((file, md)) = opened else {
            return Err(InspectError::BadFile {
                path,
                problem: "missing".into(),
            });
        };
        if md.len() != expected {
            return Err(InspectError::SizeMismatch {
                path,
                expected,
                actual: md.len(),
            });
        }
        let map = match usize::try_from(expected) {
            Ok(0) => None,
            Ok(n) => Some(
                SharedMap::new(&file, n, false).map_err(|e| InspectError::BadFile {
                    path: path.clone(),
                    problem: format!("cannot map: {e}"),
                })?,
            ),
            Err(_) => {
                return Err(InspectError::SizeMismatch {
                    path,
                    expected,
                    actual: md.len(),
                })
            }
        };
        if verify {
            let crc = map.as_ref().map_or(0, |m| crc32c::crc32c(m.bytes()));
            if let Some(&rec) = recorded.get(suffix) {
                if rec != crc {
                    return Err(InspectError::ChecksumMismatch {
                        path,
                        expected: rec,
                        actual: crc,
                    });
                }
            }
            computed.insert(suffix.to_string(), crc);
        }
        maps.push(map);
    }
    let files = ArrayFiles {
        meta,
        version,
        crc32c: recorded,
        computed_crc32c: computed,
        maps,
    };
    match &files.meta {
        ArrayMeta::Dense(d) if d.dtype == DType::Bool => {
            if let Some(at) = files.bytes(0).iter().position(|&b| b > 1) {
                return Err(InspectError::InvalidBool {
                    path: name.file_path(root, "array"),
                    at: at as u64,
                    byte: files.bytes(0)[at],
                });
            }
        }
        ArrayMeta::Dense(_) => {}
        ArrayMeta::Sparse(s) => {
            let idx = index_view(s.indices_dtype, files.bytes(1));
            let ptr = index_view(s.indptr_dtype, files.bytes(2));
            crate::sparse::validate(s, s.nnz, idx, ptr).map_err(|source| {
                // Name the file that breaks the invariant.
                let suffix = match &source {
                    SparseError::IndptrLength { .. }
                    | SparseError::IndptrStart { .. }
                    | SparseError::IndptrDecreasing { .. }
                    | SparseError::IndptrEnd { .. } => "indptr",
                    SparseError::IndexOutOfRange { .. } => "indices",
                    SparseError::NnzMismatch { what, .. } if *what == "indices" => "indices",
                    SparseError::NnzMismatch { .. } => "data",
                    _ => "yaml",
                };
                InspectError::Sparse {
                    path: name.file_path(root, suffix),
                    source,
                }
            })?;
            if s.data_dtype == DType::Bool {
                if let Some(at) = files.bytes(0).iter().position(|&b| b > 1) {
                    return Err(InspectError::InvalidBool {
                        path: name.file_path(root, "data"),
                        at: at as u64,
                        byte: files.bytes(0)[at],
                    });
                }
            }
        }
    }
    Ok(files)
}

/// Views index bytes whose size was checked against the dtype: the casts cannot fail (maps are
/// page-aligned, lengths are whole elements); an empty view is returned if they somehow did.
pub(crate) fn index_view(dtype: DType, bytes: &[u8]) -> IndexSlice<'_> {
    fn cast<T: bytemuck::Pod>(b: &[u8]) -> &[T] {
        if b.is_empty() {
            return &[];
        }
        bytemuck::try_cast_slice(b).unwrap_or(&[])
    }
    match dtype {
        DType::Int32 => IndexSlice::I32(cast(bytes)),
        DType::UInt32 => IndexSlice::U32(cast(bytes)),
        DType::UInt64 => IndexSlice::U64(cast(bytes)),
        _ => IndexSlice::I64(cast(bytes)),
    }
}
