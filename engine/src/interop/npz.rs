//! numpy's `.npz` (a zip archive of `.npy` files, stored or deflated) and the sparse matrices
//! `scipy.sparse.save_npz` writes into it.
//!
//! An archive whose entries include `format.npy` is read as a scipy matrix: `format` is a 0-d
//! byte string (`b'csr'` or `b'csc'`; `coo`, `bsr`, `dia` are refused with what to do), `shape` a
//! pair of integers, `data`, `indices`, `indptr` 1-d arrays; scipy's optional `_is_array` entry is
//! ignored, any other entry refused. The three components are read into memory (growing only as
//! bytes arrive) and written with [`Container::write_sparse`], which validates every invariant
//! (SPEC [S3]–[S5]) before publishing. Any other archive is a set of plain arrays: each
//! `<key>.npy` streams into dense array `NAME/<key>` like a `.npy` file; if one fails, the arrays
//! already published by that import are removed again.
//!
//! Export writes what `scipy.sparse.save_npz(..., compressed=False)` writes: stored (uncompressed)
//! entries `indices`, `indptr`, `format`, `shape`, `data`, each a `.npy` with numpy's header.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::npy::{self, Aligned, Descr, Header, Source};
use super::{Format, ImportedArray, InteropError, Output, Progress};
use crate::array::SparseArray;
use crate::container::Container;
use crate::error::WriteError;
use crate::format::dtype::{Bool8, DType, Element, IndexElement};
use crate::format::meta::{ArrayMeta, Kind, Layout, SparseMeta};

/// Entries of a scipy `.npz` (without `.npy`).
const SCIPY_KEYS: [&str; 5] = ["data", "indices", "indptr", "format", "shape"];

fn zip_err(path: &Path) -> impl FnOnce(zip::result::ZipError) -> InteropError + '_ {
    move |source| match source {
        zip::result::ZipError::Io(e) => InteropError::Io(crate::error::IoError {
            path: path.to_path_buf(),
            op: "read",
            source: e,
        }),
        source => InteropError::Zip {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Imports an `.npz`: a scipy sparse matrix as `name`, or plain arrays as `name/<key>`.
pub(crate) fn import(
    c: &Container,
    name: &str,
    path: &Path,
    file: File,
    progress: &mut Progress<'_, '_>,
) -> Result<Vec<ImportedArray>, InteropError> {
    let mut zip = ZipArchive::new(file).map_err(zip_err(path))?;
    let mut keys = Vec::new();
    for entry in zip.file_names() {
        let entry = entry.map_err(zip_err(path))?;
        let Some(key) = entry.strip_suffix(".npy") else {
            return Err(InteropError::malformed(
                path,
                Format::Npz,
                format!(
                    "entry {entry:?} is not a .npy array (numpy.load would not read it as one)"
                ),
            ));
        };
        keys.push(key.to_string());
    }
    if keys.iter().any(|k| k == "format") {
        import_scipy(c, name, path, &mut zip, &keys, progress).map(|a| vec![a])
    } else {
        import_plain(c, name, path, &mut zip, &keys, progress)
    }
}

/// Opens entry `<key>.npy` and reads its header; returns the entry positioned at the data.
fn open_entry<'z>(
    zip: &'z mut ZipArchive<File>,
    path: &'z Path,
    entry_name: &'z str,
) -> Result<(zip::read::ZipFile<'z, File>, Header, Source<'z>), InteropError> {
    let src = Source {
        path,
        format: Format::Npz,
        entry: Some(entry_name),
    };
    let mut entry = zip.by_name(entry_name).map_err(zip_err(path))?;
    // A size no compressor could produce from the stored bytes is refused before it reserves
    // anything (deflate expands at most 1032:1).
    let packed = entry.compressed_size();
    let bound = match entry.compression() {
        CompressionMethod::Stored => packed,
        _ => packed.saturating_mul(1032).saturating_add(1 << 16),
    };
    if entry.size() > bound {
        return Err(src.malformed(format!(
            "it claims {} bytes from {packed} stored bytes, more than its compression can produce",
            entry.size()
        )));
    }
    let header = npy::read_header(&mut entry, &src)?;
    let expected = header
        .data_len()
        .and_then(|n| n.checked_add(header.data_offset));
    if expected != Some(entry.size()) {
        return Err(src.malformed(format!(
            "the header promises {} data bytes after {} header bytes, but the entry is {} bytes",
            header
                .data_len()
                .map_or("too many".to_string(), |n| n.to_string()),
            header.data_offset,
            entry.size()
        )));
    }
    Ok((entry, header, src))
}

/// Reads to the end of an entry: there must be nothing left, and reaching the end makes the zip
/// layer verify the entry's CRC-32.
fn finish_entry(entry: &mut dyn Read, src: &Source<'_>) -> Result<(), InteropError> {
    let mut rest = [0u8; 1];
    match entry.read(&mut rest) {
        Ok(0) => Ok(()),
        Ok(_) => Err(src.malformed("bytes after the array data")),
        Err(e) => Err(src.malformed(format!("cannot read the entry to its end: {e}"))),
    }
}

fn compressed_size(zip: &mut ZipArchive<File>, entry_name: &str) -> u64 {
    zip.by_name(entry_name)
        .map(|e| e.compressed_size())
        .unwrap_or(0)
}

fn import_plain(
    c: &Container,
    name: &str,
    path: &Path,
    zip: &mut ZipArchive<File>,
    keys: &[String],
    progress: &mut Progress<'_, '_>,
) -> Result<Vec<ImportedArray>, InteropError> {
    let mut done: Vec<ImportedArray> = Vec::new();
    let mut run = || -> Result<(), InteropError> {
        for key in keys {
            let entry_name = format!("{key}.npy");
            let target = format!("{name}/{key}");
            let (mut entry, header, src) = open_entry(zip, path, &entry_name)?;
            let mut quiet = Progress {
                callback: None,
                done: 0,
                total: u64::MAX,
            };
            let imported = npy::stream_into(c, &target, &mut entry, &header, &src, &mut quiet)?;
            done.push(imported);
            finish_entry(&mut entry, &src)?;
            drop(entry);
            progress.advance(compressed_size(zip, &entry_name));
        }
        Ok(())
    };
    match run() {
        Ok(()) => Ok(done),
        Err(e) => {
            for a in &done {
                let _ = c.remove(&a.name);
            }
            Err(e)
        }
    }
}

/// One component of a scipy matrix, read into memory.
struct Component {
    dtype: DType,
    bytes: Aligned,
}

fn read_component(
    zip: &mut ZipArchive<File>,
    path: &Path,
    key: &str,
    progress: &mut Progress<'_, '_>,
) -> Result<(Header, Component), InteropError> {
    let entry_name = format!("{key}.npy");
    let (header, component) = {
        let (mut entry, header, src) = open_entry(zip, path, &entry_name)?;
        if key != "format" && header.shape.len() != 1 {
            return Err(src.malformed(format!(
                "a scipy matrix's {key} is 1-d, this one has shape {:?}",
                header.shape
            )));
        }
        let dtype = match header.descr {
            Descr::Number { dtype, .. } => dtype,
            Descr::Bytes(_) if key == "format" => DType::UInt8,
            Descr::Bytes(_) => {
                return Err(src.malformed(format!("{key} holds byte strings {}", header.descr_text)))
            }
        };
        let bytes = npy::read_data(&mut entry, &header, &src)?;
        finish_entry(&mut entry, &src)?;
        (header, Component { dtype, bytes })
    };
    progress.advance(compressed_size(zip, &entry_name));
    Ok((header, component))
}

fn import_scipy(
    c: &Container,
    name: &str,
    path: &Path,
    zip: &mut ZipArchive<File>,
    keys: &[String],
    progress: &mut Progress<'_, '_>,
) -> Result<ImportedArray, InteropError> {
    let malformed = |detail: String| InteropError::malformed(path, Format::Npz, detail);
    // The format first: a coo/bsr/dia matrix is refused for what it is, not for missing entries.
    let (header, format) = read_component(zip, path, "format", progress)?;
    if !matches!(header.descr, Descr::Bytes(_)) || !header.shape.is_empty() {
        return Err(malformed(format!(
            "'format' should be a 0-d byte string like b'csr', found {} of shape {:?}",
            header.descr_text, header.shape
        )));
    }
    let format = String::from_utf8_lossy(format.bytes.bytes())
        .trim_end_matches('\0')
        .to_string();
    let layout = match format.as_str() {
        "csr" => Layout::Rows,
        "csc" => Layout::Columns,
        _ => {
            return Err(InteropError::SparseFormat {
                path: path.to_path_buf(),
                format,
            })
        }
    };
    for key in keys {
        if !SCIPY_KEYS.contains(&key.as_str()) && key != "_is_array" {
            return Err(malformed(format!(
                "unexpected entry {key:?} in a scipy.sparse {format} .npz"
            )));
        }
    }
    for key in SCIPY_KEYS {
        if !keys.iter().any(|k| k == key) {
            return Err(malformed(format!(
                "a scipy {format} matrix needs the entry '{key}.npy'"
            )));
        }
    }
    let (_, shape_c) = read_component(zip, path, "shape", progress)?;
    let shape = read_shape(&shape_c)
        .ok_or_else(|| malformed("'shape' should hold two non-negative integers".to_string()))?;
    let (_, data) = read_component(zip, path, "data", progress)?;
    let (_, indices) = read_component(zip, path, "indices", progress)?;
    let (_, indptr) = read_component(zip, path, "indptr", progress)?;
    for (key, comp) in [("indices", &indices), ("indptr", &indptr)] {
        if !comp.dtype.is_index() {
            return Err(malformed(format!(
                "{key} is {}; dafstore's index dtypes are {} (SPEC [T3])",
                comp.dtype,
                DType::valid_index_names()
            )));
        }
    }
    let parts = Parts {
        c,
        name,
        layout,
        shape,
        data: data.bytes.bytes(),
        indices: (indices.dtype, indices.bytes.bytes()),
        indptr: (indptr.dtype, indptr.bytes.bytes()),
    };
    match write_with_data(data.dtype, &parts) {
        Some(result) => result.map_err(InteropError::write(path))?,
        None => {
            return Err(malformed(
                "a component's bytes are not whole elements".to_string(),
            ))
        }
    }
    // Cannot fail: `write_sparse` validated the same metadata.
    let nnz = (data.bytes.bytes().len() / data.dtype.itemsize()) as u64;
    let meta = SparseMeta::new(data.dtype, indices.dtype, indptr.dtype, shape, nnz, layout)
        .map_err(InteropError::write_meta(path))?;
    Ok(ImportedArray {
        name: name.to_string(),
        meta: ArrayMeta::Sparse(meta),
        conversions: Vec::new(),
    })
}

/// `shape`: two non-negative integers of any integer dtype.
fn read_shape(c: &Component) -> Option<[u64; 2]> {
    let b = c.bytes.bytes();
    let values: Vec<u64> = match c.dtype {
        DType::Int8 => b
            .iter()
            .map(|&v| u64::try_from(v as i8).ok())
            .collect::<Option<_>>()?,
        DType::UInt8 => b
            .iter()
            .map(|&v| Some(u64::from(v)))
            .collect::<Option<_>>()?,
        DType::Int16 => int_values::<i16>(b)?,
        DType::UInt16 => int_values::<u16>(b)?,
        DType::Int32 => int_values::<i32>(b)?,
        DType::UInt32 => int_values::<u32>(b)?,
        DType::Int64 => int_values::<i64>(b)?,
        DType::UInt64 => int_values::<u64>(b)?,
        _ => return None,
    };
    match values.as_slice() {
        [r, c] => Some([*r, *c]),
        _ => None,
    }
}

fn int_values<T: bytemuck::Pod + TryInto<u64>>(b: &[u8]) -> Option<Vec<u64>> {
    bytemuck::try_cast_slice::<u8, T>(b)
        .ok()?
        .iter()
        .map(|&v| v.try_into().ok())
        .collect()
}

/// What [`Container::write_sparse`] needs, untyped.
struct Parts<'a> {
    c: &'a Container,
    name: &'a str,
    layout: Layout,
    shape: [u64; 2],
    data: &'a [u8],
    indices: (DType, &'a [u8]),
    indptr: (DType, &'a [u8]),
}

/// Dispatches on the data dtype; `None` if bytes cannot be viewed as their elements.
fn write_with_data(dtype: DType, p: &Parts<'_>) -> Option<Result<(), WriteError>> {
    match dtype {
        DType::Bool => write_with_indices::<Bool8>(p),
        DType::Int8 => write_with_indices::<i8>(p),
        DType::Int16 => write_with_indices::<i16>(p),
        DType::Int32 => write_with_indices::<i32>(p),
        DType::Int64 => write_with_indices::<i64>(p),
        DType::UInt8 => write_with_indices::<u8>(p),
        DType::UInt16 => write_with_indices::<u16>(p),
        DType::UInt32 => write_with_indices::<u32>(p),
        DType::UInt64 => write_with_indices::<u64>(p),
        DType::Float16 => write_with_indices::<half::f16>(p),
        DType::Float32 => write_with_indices::<f32>(p),
        DType::Float64 => write_with_indices::<f64>(p),
    }
}

fn write_with_indices<T: Element>(p: &Parts<'_>) -> Option<Result<(), WriteError>> {
    match p.indices.0 {
        DType::Int32 => write_with_indptr::<T, i32>(p),
        DType::Int64 => write_with_indptr::<T, i64>(p),
        DType::UInt32 => write_with_indptr::<T, u32>(p),
        DType::UInt64 => write_with_indptr::<T, u64>(p),
        _ => None,
    }
}

fn write_with_indptr<T: Element, I: IndexElement>(p: &Parts<'_>) -> Option<Result<(), WriteError>> {
    match p.indptr.0 {
        DType::Int32 => write_typed::<T, I, i32>(p),
        DType::Int64 => write_typed::<T, I, i64>(p),
        DType::UInt32 => write_typed::<T, I, u32>(p),
        DType::UInt64 => write_typed::<T, I, u64>(p),
        _ => None,
    }
}

fn write_typed<T: Element, I: IndexElement, P: IndexElement>(
    p: &Parts<'_>,
) -> Option<Result<(), WriteError>> {
    let data = bytemuck::try_cast_slice::<u8, T>(p.data).ok()?;
    let indices = bytemuck::try_cast_slice::<u8, I>(p.indices.1).ok()?;
    let indptr = bytemuck::try_cast_slice::<u8, P>(p.indptr.1).ok()?;
    Some(p.c.write_sparse::<T, I, P>(p.name, p.layout, p.shape, data, indices, indptr))
}

/// Exports a sparse array as the `.npz` `scipy.sparse.save_npz(..., compressed=False)` writes.
pub(crate) fn export(s: &SparseArray, path: &Path) -> Result<(), InteropError> {
    let meta = s.sparse_meta();
    let [rows, cols] = s.shape();
    let mut shape_bytes = Vec::with_capacity(16);
    for d in [rows, cols] {
        let d = i64::try_from(d).map_err(|_| InteropError::CannotExport {
            name: s.name().to_string(),
            kind: Kind::Sparse,
            format: Format::Npz,
            hint: "a dimension exceeds int64, which scipy's shape cannot hold",
        })?;
        shape_bytes.extend_from_slice(&d.to_le_bytes());
    }
    let format: &[u8] = match s.layout() {
        Layout::Rows => b"csr",
        Layout::Columns => b"csc",
    };
    let major_plus_one = meta.major().saturating_add(1);
    let entries: [(&str, &str, Vec<u64>, &[u8]); 5] = [
        (
            "indices.npy",
            meta.indices_dtype.numpy_typestr(),
            vec![s.nnz()],
            s.indices_bytes(),
        ),
        (
            "indptr.npy",
            meta.indptr_dtype.numpy_typestr(),
            vec![major_plus_one],
            s.indptr_bytes(),
        ),
        ("format.npy", "|S3", vec![], format),
        ("shape.npy", "<i8", vec![2], &shape_bytes),
        (
            "data.npy",
            meta.data_dtype.numpy_typestr(),
            vec![s.nnz()],
            s.data_bytes(),
        ),
    ];
    let (out, file) = Output::create(path)?;
    let mut zip = ZipWriter::new(file);
    for (entry, descr, shape, bytes) in entries {
        let large = bytes.len() as u64 >= zip::ZIP64_BYTES_THR.saturating_sub(1 << 16);
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .large_file(large);
        zip.start_file(entry, options).map_err(zip_err(path))?;
        npy::write_npy(&mut zip, descr, &shape, bytes).map_err(InteropError::io(path, "write"))?;
    }
    let file = zip.finish().map_err(zip_err(path))?;
    out.commit(file)
}
