//! Array metadata (SPEC section 5): the validated [`ArrayMeta`], parsed once from a `<name>.yaml`
//! ("parse, don't validate": everything downstream takes `ArrayMeta` and never sees raw YAML), the
//! byte sizes its files must have (checked arithmetic), and rendering YAML exactly as daf does.

use std::collections::BTreeMap;
use std::path::Path;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::error::MetaError;
use crate::format::dtype::DType;
use crate::format::yaml::Node;

/// The major version of array files this engine reads and writes ([Y2]).
pub const FORMAT_MAJOR: u64 = 1;
/// The minor version this engine writes for dense and sparse arrays (1.1: `crc32c`, `layout`,
/// n-d shapes).
pub const FORMAT_MINOR: u64 = 1;
/// The minor version of table metadata (1.2 adds `kind: table`); tables need at least this.
pub const TABLE_MINOR: u64 = 2;
/// Largest metadata file read ([Y4]).
pub const MAX_YAML_BYTES: u64 = 64 * 1024;

/// Which dimension a sparse array compresses ([S2]). Serializes as `"rows"` / `"columns"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Compressed sparse rows (CSR), the default.
    Rows,
    /// Compressed sparse columns (CSC).
    Columns,
}

impl Layout {
    /// `"rows"` or `"columns"`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Rows => "rows",
            Layout::Columns => "columns",
        }
    }

    /// Parses `"rows"` / `"columns"`.
    pub fn from_name(s: &str) -> Option<Layout> {
        match s {
            "rows" => Some(Layout::Rows),
            "columns" => Some(Layout::Columns),
            _ => None,
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of entry: dense ([D1]), sparse ([S1]) or table (an Arrow IPC file). Serializes (and
/// displays) as `"dense"` / `"sparse"` / `"table"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A dense array: one `.array` file.
    Dense,
    /// A sparse array (CSR or CSC): `.data`, `.indices` and `.indptr` files.
    Sparse,
    /// A table: named Arrow columns of equal length in one `.arrow` file (an Arrow IPC file).
    Table,
}

impl Kind {
    /// `"dense"`, `"sparse"` or `"table"`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dense => "dense",
            Kind::Sparse => "sparse",
            Kind::Table => "table",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Metadata of a dense array ([D1]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenseMeta {
    /// Element type.
    pub dtype: DType,
    /// Shape, any number of dimensions.
    pub shape: Vec<u64>,
    /// Number of elements (validated not to overflow, and `len * itemsize` fits `u64`).
    len: u64,
}

impl DenseMeta {
    /// Validates that the shape's element count and byte size fit in 64 bits ([D2]).
    pub fn new(dtype: DType, shape: Vec<u64>) -> Result<DenseMeta, MetaError> {
        Self::new_at(dtype, shape, Path::new("<argument>"))
    }

    pub(crate) fn new_at(
        dtype: DType,
        shape: Vec<u64>,
        path: &Path,
    ) -> Result<DenseMeta, MetaError> {
        let overflow = || MetaError::ShapeOverflow {
            path: path.to_path_buf(),
            shape: shape.clone(),
            dtype,
        };
        // Any zero dimension makes zero elements, however large the others ([D2]).
        let len = if shape.contains(&0) {
            0
        } else {
            shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .ok_or_else(overflow)?
        };
        // The byte size must fit 64 bits ([D2]); what this machine can map is checked when mapping.
        len.checked_mul(dtype.itemsize() as u64)
            .ok_or_else(overflow)?;
        Ok(DenseMeta { dtype, shape, len })
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Byte length of `<name>.array`.
    pub fn byte_len(&self) -> u64 {
        // Cannot overflow: checked in `new_at`.
        self.len * self.dtype.itemsize() as u64
    }
}

/// Metadata of a sparse array ([S1]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseMeta {
    /// dtype of `data`.
    pub data_dtype: DType,
    /// dtype of `indices` (an index dtype).
    pub indices_dtype: DType,
    /// dtype of `indptr` (an index dtype).
    pub indptr_dtype: DType,
    /// `[rows, columns]`.
    pub shape: [u64; 2],
    /// Number of stored entries.
    pub nnz: u64,
    /// Rows (CSR) or columns (CSC).
    pub layout: Layout,
}

impl SparseMeta {
    /// Validates dtypes ([T3]) and that every file size fits in 64 bits.
    pub fn new(
        data_dtype: DType,
        indices_dtype: DType,
        indptr_dtype: DType,
        shape: [u64; 2],
        nnz: u64,
        layout: Layout,
    ) -> Result<SparseMeta, MetaError> {
        Self::new_at(
            data_dtype,
            indices_dtype,
            indptr_dtype,
            shape,
            nnz,
            layout,
            Path::new("<argument>"),
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_at(
        data_dtype: DType,
        indices_dtype: DType,
        indptr_dtype: DType,
        shape: [u64; 2],
        nnz: u64,
        layout: Layout,
        path: &Path,
    ) -> Result<SparseMeta, MetaError> {
        for (key, d) in [
            ("indices_dtype", indices_dtype),
            ("indptr_dtype", indptr_dtype),
        ] {
            if !d.is_index() {
                return Err(MetaError::Invalid {
                    path: path.to_path_buf(),
                    detail: format!(
                        "{key} is {d}; index dtypes are {}",
                        DType::valid_index_names()
                    ),
                    rule: "T3",
                });
            }
        }
        let meta = SparseMeta {
            data_dtype,
            indices_dtype,
            indptr_dtype,
            shape,
            nnz,
            layout,
        };
        let sizes_fit = meta
            .major()
            .checked_add(1)
            .is_some_and(|n| fits(n, indptr_dtype))
            && fits(nnz, data_dtype)
            && fits(nnz, indices_dtype);
        if !sizes_fit {
            return Err(MetaError::ShapeOverflow {
                path: path.to_path_buf(),
                shape: shape.to_vec(),
                dtype: data_dtype,
            });
        }
        Ok(meta)
    }

    /// Size of the compressed dimension.
    pub fn major(&self) -> u64 {
        match self.layout {
            Layout::Rows => self.shape[0],
            Layout::Columns => self.shape[1],
        }
    }

    /// Size of the other dimension (bound of every index).
    pub fn minor(&self) -> u64 {
        match self.layout {
            Layout::Rows => self.shape[1],
            Layout::Columns => self.shape[0],
        }
    }

    /// Byte lengths of `data`, `indices`, `indptr` (validated not to overflow in `new_at`).
    pub fn byte_lens(&self) -> [u64; 3] {
        [
            self.nnz * self.data_dtype.itemsize() as u64,
            self.nnz * self.indices_dtype.itemsize() as u64,
            (self.major() + 1) * self.indptr_dtype.itemsize() as u64,
        ]
    }
}

/// Metadata of a table: an Arrow IPC file `<name>.arrow` of `bytes` bytes holding `rows` rows of
/// the named columns, each of the Arrow type `types[i]` rendered in the type grammar
/// ([`crate::arrow_type_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    /// Sum of the record batches' lengths.
    pub rows: u64,
    /// Field names, in schema order.
    pub columns: Vec<String>,
    /// One rendered Arrow type per column.
    pub types: Vec<String>,
    /// Size of `<name>.arrow` in bytes.
    pub bytes: u64,
}

impl TableMeta {
    /// Validates that there is one type per column.
    pub fn new(
        rows: u64,
        columns: Vec<String>,
        types: Vec<String>,
        bytes: u64,
    ) -> Result<TableMeta, MetaError> {
        Self::new_at(rows, columns, types, bytes, Path::new("<argument>"))
    }

    pub(crate) fn new_at(
        rows: u64,
        columns: Vec<String>,
        types: Vec<String>,
        bytes: u64,
        path: &Path,
    ) -> Result<TableMeta, MetaError> {
        if columns.len() != types.len() {
            return Err(invalid(
                path,
                "B2",
                format!(
                    "{} columns but {} types: there must be one type per column",
                    columns.len(),
                    types.len()
                ),
            ));
        }
        if let Some(t) = types.iter().find(|t| t.is_empty()) {
            return Err(invalid(path, "B2", format!("type {t:?} is empty")));
        }
        Ok(TableMeta {
            rows,
            columns,
            types,
            bytes,
        })
    }
}

fn fits(count: u64, dtype: DType) -> bool {
    count.checked_mul(dtype.itemsize() as u64).is_some()
}

/// Metadata of an entry of any kind.
///
/// Serializes as one flat object with the same keys for every kind, named as in the metadata
/// file (SPEC section 5): `kind`, `dtype` (dense), `data_dtype`, `indices_dtype`, `indptr_dtype`,
/// `layout`, `nnz` (sparse), `shape` (a table's is `[rows, columns]`), `rows`, `columns`, `types`
/// (table); the keys of the other kinds are `null`. A table's `bytes` is the `bytes` of the
/// report that flattens it. Reports that describe an array ([`crate::ArrayInfo`],
/// [`crate::ImportedArray`]) flatten it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArrayMeta {
    /// A dense array.
    Dense(DenseMeta),
    /// A sparse array.
    Sparse(SparseMeta),
    /// A table.
    Table(TableMeta),
}

/// Suffixes of a dense array's data files.
pub const DENSE_SUFFIXES: [&str; 1] = ["array"];
/// Suffixes of a sparse array's data files.
pub const SPARSE_SUFFIXES: [&str; 3] = ["data", "indices", "indptr"];
/// Suffixes of a table's data files.
pub const TABLE_SUFFIXES: [&str; 1] = ["arrow"];
/// The data file suffixes of every kind.
pub const ALL_SUFFIXES: [&str; 5] = ["array", "data", "indices", "indptr", "arrow"];

impl Serialize for ArrayMeta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (dense, sparse, table) = match self {
            ArrayMeta::Dense(d) => (Some(d), None, None),
            ArrayMeta::Sparse(s) => (None, Some(s), None),
            ArrayMeta::Table(t) => (None, None, Some(t)),
        };
        let mut m = serializer.serialize_struct("ArrayMeta", 11)?;
        m.serialize_field("kind", &self.kind())?;
        m.serialize_field("dtype", &dense.map(|d| d.dtype))?;
        m.serialize_field("data_dtype", &sparse.map(|s| s.data_dtype))?;
        m.serialize_field("indices_dtype", &sparse.map(|s| s.indices_dtype))?;
        m.serialize_field("indptr_dtype", &sparse.map(|s| s.indptr_dtype))?;
        m.serialize_field("layout", &sparse.map(|s| s.layout))?;
        m.serialize_field("shape", &self.shape())?;
        m.serialize_field("nnz", &sparse.map(|s| s.nnz))?;
        m.serialize_field("rows", &table.map(|t| t.rows))?;
        m.serialize_field("columns", &table.map(|t| &t.columns))?;
        m.serialize_field("types", &table.map(|t| &t.types))?;
        m.end()
    }
}

impl ArrayMeta {
    /// Dense, sparse or table.
    pub fn kind(&self) -> Kind {
        match self {
            ArrayMeta::Dense(_) => Kind::Dense,
            ArrayMeta::Sparse(_) => Kind::Sparse,
            ArrayMeta::Table(_) => Kind::Table,
        }
    }

    /// The suffixes of this kind's data files.
    pub fn suffixes(&self) -> &'static [&'static str] {
        match self {
            ArrayMeta::Dense(_) => &DENSE_SUFFIXES,
            ArrayMeta::Sparse(_) => &SPARSE_SUFFIXES,
            ArrayMeta::Table(_) => &TABLE_SUFFIXES,
        }
    }

    /// The `[major, minor]` version this engine writes for this kind.
    pub fn version(&self) -> (u64, u64) {
        match self {
            ArrayMeta::Table(_) => (FORMAT_MAJOR, TABLE_MINOR),
            _ => (FORMAT_MAJOR, FORMAT_MINOR),
        }
    }

    /// The data files: suffix and exact byte length ([D3], [S3]).
    pub fn files(&self) -> Vec<(&'static str, u64)> {
        match self {
            ArrayMeta::Dense(d) => vec![("array", d.byte_len())],
            ArrayMeta::Sparse(s) => {
                let [a, b, c] = s.byte_lens();
                vec![("data", a), ("indices", b), ("indptr", c)]
            }
            ArrayMeta::Table(t) => vec![("arrow", t.bytes)],
        }
    }

    /// The shape (`[rows, columns]` for a table).
    pub fn shape(&self) -> Vec<u64> {
        match self {
            ArrayMeta::Dense(d) => d.shape.clone(),
            ArrayMeta::Sparse(s) => s.shape.to_vec(),
            ArrayMeta::Table(t) => vec![t.rows, t.columns.len() as u64],
        }
    }

    /// The element dtype (`data_dtype` for sparse); `None` for a table (see its `types`).
    pub fn dtype(&self) -> Option<DType> {
        match self {
            ArrayMeta::Dense(d) => Some(d.dtype),
            ArrayMeta::Sparse(s) => Some(s.data_dtype),
            ArrayMeta::Table(_) => None,
        }
    }
}

/// A parsed metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlDoc {
    /// The array's metadata.
    pub meta: ArrayMeta,
    /// `[major, minor]` as found.
    pub version: (u64, u64),
    /// Recorded checksums by suffix ([K1]), empty when absent.
    pub crc32c: BTreeMap<String, u32>,
}

fn invalid(path: &Path, rule: &'static str, detail: impl Into<String>) -> MetaError {
    MetaError::Invalid {
        path: path.to_path_buf(),
        detail: detail.into(),
        rule,
    }
}

fn parse_dtype(path: &Path, key: &str, value: &str) -> Result<DType, MetaError> {
    DType::from_name(value).ok_or_else(|| MetaError::UnknownDtype {
        path: path.to_path_buf(),
        found: format!("{key}: {value}"),
        valid: DType::valid_names(),
    })
}

/// A size ([Y7]): an integer from 0 to 2^64 - 1; anything else (floats, strings, booleans,
/// negative numbers, integers of 2^64 or more) is not a size.
fn size_of(path: &Path, rule: &'static str, what: &str, node: &Node) -> Result<u64, MetaError> {
    match node {
        Node::Int(i) => i.size(),
        _ => None,
    }
    .ok_or_else(|| {
        invalid(
            path,
            rule,
            format!(
                "{what} must be an integer from 0 to 2^64 - 1, found {}",
                node.describe()
            ),
        )
    })
}

/// The string value of a required key ([D1], [S1]).
fn string_key<'n>(
    path: &Path,
    rule: &'static str,
    root: &'n Node,
    key: &str,
) -> Result<&'n str, MetaError> {
    match root.get(key) {
        None => Err(invalid(path, rule, format!("missing key `{key}`"))),
        Some(Node::Str(s)) => Ok(s),
        Some(other) => Err(invalid(
            path,
            rule,
            format!("{key} must be a string, found {}", other.describe()),
        )),
    }
}

/// `shape`: a sequence of sizes ([D1], [S1]).
fn shape_key(path: &Path, rule: &'static str, root: &Node) -> Result<Vec<u64>, MetaError> {
    match root.get("shape") {
        None => Err(invalid(path, rule, "missing key `shape`")),
        Some(Node::Seq(items)) => items
            .iter()
            .map(|n| size_of(path, rule, "every dimension of shape", n))
            .collect(),
        Some(other) => Err(invalid(
            path,
            rule,
            format!("shape must be a sequence, found {}", other.describe()),
        )),
    }
}

/// Parses and validates a metadata file's bytes, in the order of SPEC 11 ([E2]) ([Y1]–[Y9], [D1],
/// [D2], [S1], [S2], [T1], [T3], [K1]): the document ([Y4], [Y1], [Y6]–[Y9]), the version
/// ([Y2]), the kind ([Y5]), the keys' types, the dtype spellings ([T1]), the index dtypes
/// ([T3]), the byte sizes ([D2]). `path` is used in errors only.
pub fn parse_yaml(bytes: &[u8], path: &Path) -> Result<YamlDoc, MetaError> {
    if bytes.len() as u64 > MAX_YAML_BYTES {
        return Err(invalid(
            path,
            "Y4",
            format!(
                "{} bytes, more than the {MAX_YAML_BYTES} allowed",
                bytes.len()
            ),
        ));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| invalid(path, "Y1", format!("not UTF-8: {e}")))?;
    let root = crate::format::yaml::parse(text).map_err(|e| {
        invalid(
            path,
            "Y6",
            format!("{e} (metadata is the YAML subset of SPEC 5.1.1)"),
        )
    })?;
    // The version first: a future major may change any other key, and must be reported as the
    // unsupported version it is, not as invalid 1.x metadata ([Y2]).
    let version = match root.get("version") {
        None => return Err(invalid(path, "Y2", "missing key `version`")),
        Some(Node::Seq(items)) if items.len() == 2 => (
            size_of(path, "Y2", "version", &items[0])?,
            size_of(path, "Y2", "version", &items[1])?,
        ),
        Some(other) => {
            return Err(invalid(
                path,
                "Y2",
                format!(
                    "version must be [major, minor], two integers, found {}",
                    match other {
                        Node::Seq(items) => format!("a sequence of {} items", items.len()),
                        other => other.describe(),
                    }
                ),
            ))
        }
    };
    if version.0 != FORMAT_MAJOR {
        return Err(MetaError::UnsupportedVersion {
            path: path.to_path_buf(),
            found_major: version.0,
            found_minor: version.1,
            supported: FORMAT_MAJOR,
        });
    }
    match root.get("kind") {
        None => {}
        Some(Node::Str(k)) if k == "table" => return parse_table(path, &root, version),
        // [B1]: `kind` marks a table; any other value is refused (dense and sparse have none).
        Some(other) => {
            return Err(invalid(
                path,
                "B1",
                format!(
                    "kind is {}; the only kind is \"table\" (dense and sparse have no `kind`)",
                    other.describe()
                ),
            ))
        }
    }
    let dense = match (root.get("dtype"), root.get("data_dtype")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                path,
                "Y5",
                "has both `dtype` (dense) and `data_dtype` (sparse)",
            ))
        }
        (None, None) => {
            return Err(invalid(
                path,
                "Y5",
                "has neither `dtype` (dense) nor `data_dtype` (sparse)",
            ))
        }
        (Some(_), None) => true,
        (None, Some(_)) => false,
    };
    // Types of every known key ([D1], [S1], [S2], [K1]): invalid_metadata.
    let crc32c = crc_key(path, &root)?;
    let meta = if dense {
        let dtype = string_key(path, "D1", &root, "dtype")?;
        let shape = shape_key(path, "D1", &root)?;
        ArrayMeta::Dense(DenseMeta::new_at(
            parse_dtype(path, "dtype", dtype)?,
            shape,
            path,
        )?)
    } else {
        let data_dtype = string_key(path, "S1", &root, "data_dtype")?;
        let indices = string_key(path, "S1", &root, "indices_dtype")?;
        let indptr = string_key(path, "S1", &root, "indptr_dtype")?;
        let shape = shape_key(path, "S1", &root)?;
        let shape: [u64; 2] = shape.as_slice().try_into().map_err(|_| {
            invalid(
                path,
                "S1",
                format!("sparse shape must have 2 dimensions, found {shape:?}"),
            )
        })?;
        let nnz = match root.get("nnz") {
            None => return Err(invalid(path, "S1", "missing key `nnz`")),
            Some(n) => size_of(path, "S1", "nnz", n)?,
        };
        let layout = match root.get("layout") {
            None => Layout::Rows,
            Some(Node::Str(l)) if Layout::from_name(l).is_some() => {
                Layout::from_name(l).unwrap_or(Layout::Rows)
            }
            Some(other) => {
                return Err(invalid(
                    path,
                    "S2",
                    format!(
                        "layout is {}, must be \"rows\" or \"columns\"",
                        other.describe()
                    ),
                ))
            }
        };
        // Spellings ([T1], unknown_dtype) before index dtypes ([T3], invalid_metadata) and
        // sizes ([D2], shape_overflow): both in SparseMeta::new_at.
        let data_dtype = parse_dtype(path, "data_dtype", data_dtype)?;
        let indices = parse_dtype(path, "indices_dtype", indices)?;
        let indptr = parse_dtype(path, "indptr_dtype", indptr)?;
        ArrayMeta::Sparse(SparseMeta::new_at(
            data_dtype, indices, indptr, shape, nnz, layout, path,
        )?)
    };
    // [K1]: only the checksums of this kind's data files are kept; other suffixes are ignored.
    let own = meta.suffixes();
    let crc32c = crc32c
        .into_iter()
        .filter(|(suffix, _)| own.contains(&suffix.as_str()))
        .collect();
    Ok(YamlDoc {
        meta,
        version,
        crc32c,
    })
}

/// A sequence of strings (`columns`, `types` of a table).
fn strings_key(path: &Path, root: &Node, key: &str) -> Result<Vec<String>, MetaError> {
    match root.get(key) {
        None => Err(invalid(path, "B2", format!("missing key `{key}`"))),
        Some(Node::Seq(items)) => items
            .iter()
            .map(|n| match n {
                Node::Str(s) => Ok(s.clone()),
                other => Err(invalid(
                    path,
                    "B2",
                    format!(
                        "every item of {key} must be a string, found {}",
                        other.describe()
                    ),
                )),
            })
            .collect(),
        Some(other) => Err(invalid(
            path,
            "B2",
            format!("{key} must be a sequence, found {}", other.describe()),
        )),
    }
}

/// The keys of a table document (`kind: table`): `rows`, `bytes` (sizes), `columns`, `types`
/// (sequences of strings, as many types as columns), no `dtype` or `data_dtype`, version 1.2 or
/// later.
fn parse_table(path: &Path, root: &Node, version: (u64, u64)) -> Result<YamlDoc, MetaError> {
    if version.1 < TABLE_MINOR {
        return Err(invalid(
            path,
            "Y2",
            format!(
                "a table needs version [{FORMAT_MAJOR}, {TABLE_MINOR}] or later, found [{}, {}]",
                version.0, version.1
            ),
        ));
    }
    for key in ["dtype", "data_dtype"] {
        if root.get(key).is_some() {
            return Err(invalid(
                path,
                "B1",
                format!("a table (kind: table) has no `{key}`"),
            ));
        }
    }
    let crc32c = crc_key(path, root)?;
    let size = |key: &str| match root.get(key) {
        None => Err(invalid(path, "B2", format!("missing key `{key}`"))),
        Some(n) => size_of(path, "B2", key, n),
    };
    let rows = size("rows")?;
    let bytes = size("bytes")?;
    let columns = strings_key(path, root, "columns")?;
    let types = strings_key(path, root, "types")?;
    let meta = ArrayMeta::Table(TableMeta::new_at(rows, columns, types, bytes, path)?);
    // [G1]: every type in the grammar, exactly as pyarrow prints it (`unknown_dtype`).
    if let ArrayMeta::Table(t) = &meta {
        if let Some((c, ty)) = t
            .columns
            .iter()
            .zip(&t.types)
            .find(|(_, ty)| !crate::format::arrow_type::is_type_name(ty))
        {
            return Err(MetaError::UnknownDtype {
                path: path.to_path_buf(),
                found: format!("types of column {c:?}: {ty}"),
                valid:
                    "the Arrow types of SPEC 5.6 [G1], as pyarrow prints them (e.g. double, \
                        timestamp[us, tz=UTC], dictionary<values=string, indices=int32, ordered=0>)"
                        .into(),
            });
        }
    }
    let crc32c = crc32c
        .into_iter()
        .filter(|(suffix, _)| TABLE_SUFFIXES.contains(&suffix.as_str()))
        .collect();
    Ok(YamlDoc {
        meta,
        version,
        crc32c,
    })
}

/// `crc32c` ([K1]): absent, or a mapping from strings to integers below 2^32 (every entry,
/// whatever its suffix).
fn crc_key(path: &Path, root: &Node) -> Result<BTreeMap<String, u32>, MetaError> {
    let mut out = BTreeMap::new();
    match root.get("crc32c") {
        None => {}
        Some(Node::Map(entries)) => {
            for (suffix, v) in entries {
                let crc = match v {
                    Node::Int(i) => i.size().and_then(|v| u32::try_from(v).ok()),
                    _ => None,
                }
                .ok_or_else(|| {
                    invalid(
                        path,
                        "K1",
                        format!(
                            "crc32c of {suffix} is {}, must be an integer below 2^32",
                            v.describe()
                        ),
                    )
                })?;
                out.insert(suffix.clone(), crc);
            }
        }
        Some(other) => {
            return Err(invalid(
                path,
                "K1",
                format!(
                    "crc32c must be a mapping of file suffix to CRC-32C, found {}",
                    other.describe()
                ),
            ))
        }
    }
    Ok(out)
}

/// Parses and validates `.dafstore/container.yaml` ([C2]): within the metadata YAML subset
/// (SPEC 5.1.1), a mapping whose `format` is the string `dafstore` and whose `version` is
/// `[major, minor]` with major 1 (checked in that order). Returns the version.
pub fn parse_container_yaml(bytes: &[u8], path: &Path) -> Result<(u64, u64), MetaError> {
    if bytes.len() as u64 > MAX_YAML_BYTES {
        return Err(invalid(
            path,
            "C2",
            format!("more than the {MAX_YAML_BYTES} bytes allowed"),
        ));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| invalid(path, "C2", format!("not UTF-8: {e}")))?;
    let root = crate::format::yaml::parse(text).map_err(|e| {
        invalid(
            path,
            "C2",
            format!("{e} (the container version file is the YAML subset of SPEC 5.1.1)"),
        )
    })?;
    match root.get("format") {
        Some(Node::Str(f)) if f == "dafstore" => {}
        None => return Err(invalid(path, "C2", "missing key `format`")),
        Some(other) => {
            return Err(invalid(
                path,
                "C2",
                format!(
                    "format is {}, expected the string \"dafstore\"",
                    other.describe()
                ),
            ))
        }
    }
    let version = match root.get("version") {
        Some(Node::Seq(items)) if items.len() == 2 => (
            size_of(path, "C2", "version", &items[0])?,
            size_of(path, "C2", "version", &items[1])?,
        ),
        None => return Err(invalid(path, "C2", "missing key `version`")),
        Some(_) => {
            return Err(invalid(
                path,
                "C2",
                "version must be [major, minor], two integers",
            ))
        }
    };
    if version.0 != crate::format::CONTAINER_MAJOR {
        return Err(MetaError::UnsupportedVersion {
            path: path.to_path_buf(),
            found_major: version.0,
            found_minor: version.1,
            supported: crate::format::CONTAINER_MAJOR,
        });
    }
    Ok(version)
}

/// Renders a metadata file the way daf (PyYAML `dump`) does: keys sorted, block sequences.
/// `crc32c` lists `(suffix, checksum)` pairs; `None` omits the key (daf files, in-place writes).
pub fn render_yaml(meta: &ArrayMeta, crc32c: Option<&[(String, u32)]>) -> String {
    let mut keys: BTreeMap<&str, String> = BTreeMap::new();
    let seq = |items: &[u64]| -> String {
        if items.is_empty() {
            " []\n".to_string()
        } else {
            items.iter().map(|v| format!("\n- {v}")).collect::<String>() + "\n"
        }
    };
    let (major, minor) = meta.version();
    keys.insert("version", seq(&[major, minor]));
    if !matches!(meta, ArrayMeta::Table(_)) {
        keys.insert("shape", seq(&meta.shape()));
    }
    let strings = |items: &[String]| -> String {
        if items.is_empty() {
            " []\n".to_string()
        } else {
            items
                .iter()
                .map(|v| format!("\n- {}", crate::format::yaml::render_string(v)))
                .collect::<String>()
                + "\n"
        }
    };
    match meta {
        ArrayMeta::Dense(d) => {
            keys.insert("dtype", format!(" {}\n", d.dtype));
        }
        ArrayMeta::Sparse(s) => {
            keys.insert("data_dtype", format!(" {}\n", s.data_dtype));
            keys.insert("indices_dtype", format!(" {}\n", s.indices_dtype));
            keys.insert("indptr_dtype", format!(" {}\n", s.indptr_dtype));
            keys.insert("nnz", format!(" {}\n", s.nnz));
            keys.insert("layout", format!(" {}\n", s.layout.name()));
        }
        ArrayMeta::Table(t) => {
            keys.insert("kind", " table\n".to_string());
            keys.insert("rows", format!(" {}\n", t.rows));
            keys.insert("bytes", format!(" {}\n", t.bytes));
            keys.insert("columns", strings(&t.columns));
            keys.insert("types", strings(&t.types));
        }
    }
    // An empty `crc32c:` would be a null, which [K1] refuses: no checksums, no key.
    if let Some(crcs) = crc32c.filter(|c| !c.is_empty()) {
        let mut sorted: Vec<_> = crcs.iter().collect();
        sorted.sort();
        let body: String = sorted
            .iter()
            .map(|(k, v)| format!("\n  {k}: {v}"))
            .collect();
        keys.insert("crc32c", body + "\n");
    }
    keys.iter().map(|(k, v)| format!("{k}:{v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<YamlDoc, MetaError> {
        parse_yaml(s.as_bytes(), Path::new("t.yaml"))
    }

    #[test]
    fn parses_daf_dense_exactly_as_pyyaml_writes_it() {
        let doc = parse("dtype: float32\nshape:\n- 10\n- 20\nversion:\n- 1\n- 0\n").unwrap();
        assert_eq!(doc.version, (1, 0));
        assert_eq!(
            doc.meta,
            ArrayMeta::Dense(DenseMeta::new(DType::Float32, vec![10, 20]).unwrap())
        );
    }

    #[test]
    fn flow_sequences_and_unknown_keys_are_accepted_and_flow_mappings_refused() {
        let doc =
            parse("version: [1, 7]\ndtype: int8\nshape: [3]\nfuture_key:\n  a: [1, 2]\n").unwrap();
        assert_eq!(doc.version, (1, 7));
        assert!(parse("{version: [1, 7], dtype: int8, shape: [3]}").is_err());
    }

    #[test]
    fn render_with_no_checksums_writes_no_crc32c_key_and_parses_back() {
        // Found by the yaml fuzz target: `crc32c:` with nothing under it is a null ([K1]).
        let meta = ArrayMeta::Dense(DenseMeta::new(DType::Int8, vec![3]).unwrap());
        let text = render_yaml(&meta, Some(&[]));
        assert!(!text.contains("crc32c"), "{text}");
        let doc = parse_yaml(text.as_bytes(), Path::new("x.yaml")).unwrap();
        assert_eq!(doc.meta, meta);
        assert!(doc.crc32c.is_empty());
    }

    #[test]
    fn render_is_pyyaml_style_and_round_trips() {
        let m = ArrayMeta::Dense(DenseMeta::new(DType::Float64, vec![3, 4]).unwrap());
        let text = render_yaml(&m, Some(&[("array".into(), 42)]));
        assert_eq!(
            text,
            "crc32c:\n  array: 42\ndtype: float64\nshape:\n- 3\n- 4\nversion:\n- 1\n- 1\n"
        );
        let doc = parse(&text).unwrap();
        assert_eq!(doc.meta, m);
        assert_eq!(doc.crc32c.get("array"), Some(&42));
        let zero_d = ArrayMeta::Dense(DenseMeta::new(DType::Int8, vec![]).unwrap());
        assert_eq!(parse(&render_yaml(&zero_d, None)).unwrap().meta, zero_d);
    }

    #[test]
    fn errors_cite_rules() {
        let rule = |s: &str| match parse(s).unwrap_err() {
            MetaError::Invalid { rule, .. } => rule,
            MetaError::UnknownDtype { .. } => "T1",
            MetaError::UnsupportedVersion { .. } => "Y2-major",
            MetaError::ShapeOverflow { .. } => "D2",
        };
        assert_eq!(rule("[1, 2]"), "Y6");
        assert_eq!(rule("dtype: int8\nshape: [1]\n"), "Y2");
        assert_eq!(rule("version: [1]\ndtype: int8\nshape: [1]"), "Y2");
        assert_eq!(rule("version: [2, 0]\ndtype: int8\nshape: [1]"), "Y2-major");
        assert_eq!(rule("version: [1, 0]\ndtype: float\nshape: [1]"), "T1");
        assert_eq!(rule("version: [1, 0]\ndtype: int8\nshape: [-1]"), "D1");
        assert_eq!(rule("version: [1, 0]\ndtype: int8\nshape: [1.5]"), "D1");
        assert_eq!(rule("version: [1, 0]\ndtype: int8\nshape: [\"3\"]"), "D1");
        assert_eq!(
            rule("version: [1, 0]\ndtype: int8\nshape: [18446744073709551616, 0]"),
            "D1"
        );
        assert_eq!(
            rule("version: [1, 0]\ndtype: int8\ndtype: int16\nshape: [1]"),
            "Y6"
        );
        assert_eq!(
            rule("version: [1, 0]\ndtype: int64\nshape: [4294967296, 4294967296]"),
            "D2"
        );
        assert_eq!(
            rule("version: [1, 0]\ndtype: int8\ndata_dtype: int8\nshape: [1]"),
            "Y5"
        );
        assert_eq!(rule("version: [1, 0]\nshape: [1]"), "Y5");
        let sparse =
            "version: [1, 0]\ndata_dtype: float32\nindptr_dtype: int64\nshape: [2, 2]\nnnz: 0\n";
        assert_eq!(rule(sparse), "S1");
        assert_eq!(rule(&format!("{sparse}indices_dtype: float32\n")), "T3");
        assert_eq!(
            rule(&format!("{sparse}indices_dtype: int32\nlayout: diagonal\n")),
            "S2"
        );
        let bad_shape = "version: [1, 0]\ndata_dtype: float32\nindices_dtype: int32\nindptr_dtype: int32\nshape: [2]\nnnz: 0\n";
        assert_eq!(rule(bad_shape), "S1");
    }

    #[test]
    fn a_table_document_round_trips_and_its_errors_cite_rules() {
        let t = ArrayMeta::Table(
            TableMeta::new(
                3,
                vec!["a".into(), "it's: x".into(), "\u{1}".into()],
                vec![
                    "double".into(),
                    "struct<a: int32>".into(),
                    "timestamp[us, tz=UTC]".into(),
                ],
                640,
            )
            .unwrap(),
        );
        let text = render_yaml(&t, Some(&[("arrow".into(), 7)]));
        assert!(
            text.starts_with("bytes: 640\ncolumns:\n- a\n- 'it''s: x'\n"),
            "{text}"
        );
        assert!(text.contains("kind: table\nrows: 3\n") && text.ends_with("version:\n- 1\n- 2\n"));
        let doc = parse(&text).unwrap();
        assert_eq!((doc.meta, doc.version), (t, (1, 2)));
        assert_eq!(doc.crc32c.get("arrow"), Some(&7));
        let rule = |s: &str| match parse(s).unwrap_err() {
            MetaError::Invalid { rule, .. } => rule,
            e => panic!("{e}"),
        };
        let ok = "kind: table\nrows: 1\nbytes: 8\ncolumns: [a]\ntypes: [int8]\n";
        assert!(parse(&format!("{ok}version: [1, 2]\n")).is_ok());
        assert_eq!(rule(&format!("{ok}version: [1, 1]\n")), "Y2");
        assert_eq!(rule(&format!("{ok}dtype: int8\nversion: [1, 2]\n")), "B1");
        assert_eq!(
            rule(
                "kind: table\nrows: 1\nbytes: 8\ncolumns: [a, b]\ntypes: [int8]\nversion: [1, 2]\n"
            ),
            "B2"
        );
        assert_eq!(
            rule("kind: table\nbytes: 8\ncolumns: [a]\ntypes: [int8]\nversion: [1, 2]\n"),
            "B2"
        );
        assert_eq!(
            rule("kind: tabel\ndtype: int8\nshape: [1]\nversion: [1, 2]\n"),
            "B1"
        );
        assert_eq!(
            rule("kind: dense\ndtype: int8\nshape: [1]\nversion: [1, 1]\n"),
            "B1"
        );
    }

    #[test]
    fn metadata_larger_than_64_kib_is_refused_before_parsing() {
        let mut text = b"dtype: int8\nshape:\n- 3\nversion:\n- 1\n- 1\n".to_vec();
        text.resize(MAX_YAML_BYTES as usize + 1, b'\n');
        match parse_yaml(&text, Path::new("t.yaml")) {
            Err(MetaError::Invalid { rule: "Y4", .. }) => {}
            other => panic!("{other:?}"),
        }
        text.truncate(MAX_YAML_BYTES as usize);
        assert!(parse_yaml(&text, Path::new("t.yaml")).is_ok());
    }

    #[test]
    fn yaml_bomb_is_refused_cheaply() {
        let mut s = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            };
            s.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        s.push_str("version: [1, 0]\ndtype: int8\nshape: [1]\n");
        assert!(parse(&s).is_err());
    }

    #[test]
    fn metadata_serializes_with_the_spec_key_names_and_one_key_set_for_both_kinds() {
        let dense = ArrayMeta::Dense(DenseMeta::new(DType::Int16, vec![2, 3]).unwrap());
        let sparse = ArrayMeta::Sparse(
            SparseMeta::new(
                DType::Float32,
                DType::Int32,
                DType::Int64,
                [4, 5],
                6,
                Layout::Columns,
            )
            .unwrap(),
        );
        let d = serde_json::to_value(&dense).unwrap();
        let s = serde_json::to_value(&sparse).unwrap();
        assert_eq!(
            d,
            serde_json::json!({"kind": "dense", "dtype": "int16", "data_dtype": null,
                "indices_dtype": null, "indptr_dtype": null, "layout": null,
                "shape": [2, 3], "nnz": null, "rows": null, "columns": null, "types": null})
        );
        assert_eq!(
            s,
            serde_json::json!({"kind": "sparse", "dtype": null, "data_dtype": "float32",
                "indices_dtype": "int32", "indptr_dtype": "int64", "layout": "columns",
                "shape": [4, 5], "nnz": 6, "rows": null, "columns": null, "types": null})
        );
        assert_eq!((dense.kind(), sparse.kind()), (Kind::Dense, Kind::Sparse));
        assert_eq!(
            (Kind::Dense.to_string(), Kind::Sparse.to_string()),
            ("dense".into(), "sparse".into())
        );
    }
}
