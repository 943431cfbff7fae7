//! numpy's `.npy` format (numpy's `format.py`, versions 1.0, 2.0 and 3.0): a magic string, a
//! version, a header length, a header that is a Python dict literal, then the raw elements.
//!
//! The header is untrusted input. It is parsed by a small strict parser that accepts exactly the
//! dict literals numpy writes (`{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`, keys
//! in any order, with or without the trailing comma, `()` for 0-d and `(n,)` for 1-d) and refuses
//! anything else with a message; it never panics and never evaluates anything. Sizes are computed
//! with checked arithmetic and compared with the real file length before any space is reserved.
//!
//! Conversions on import (chosen so that no numpy file is refused for its memory layout):
//! big-endian data (`'>i4'`) is byte-swapped while streaming; Fortran-order data
//! (`fortran_order: True`) is transposed to row-major while streaming (each chunk read is
//! scattered to its row-major positions in the new array's map). Both are listed in the import
//! report's conversions. Export always writes little-endian, row-major data with the header numpy
//! itself writes (v1.0, v2.0 only if the header does not fit 65535 bytes, padded so the data starts
//! on a 64-byte boundary), so an exported file is byte-identical to `numpy.save` of the same array.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use super::{Format, ImportedArray, InteropError, Output, Progress};
use crate::array::DenseArray;
use crate::container::Container;
use crate::format::dtype::DType;
use crate::format::meta::{ArrayMeta, DenseMeta};
use crate::writer::CreateOptions;

/// The first six bytes of every `.npy` file.
pub(crate) const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy aligns the start of the data to this many bytes.
const ALIGN: usize = 64;
/// Largest header accepted (numpy's own default limit is 10 000 bytes).
const MAX_HEADER: u64 = 1 << 20;
/// Bytes read or copied at a time (a multiple of every item size).
pub(crate) const CHUNK: usize = 8 << 20;
/// numpy leaves room for the first dimension to grow to this many digits.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Where the bytes being parsed come from, for error messages.
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    /// The file.
    pub(crate) path: &'a Path,
    /// `.npy`, or `.npz` for an entry of an archive.
    pub(crate) format: Format,
    /// The archive entry (`data.npy`), if any.
    pub(crate) entry: Option<&'a str>,
}

impl Source<'_> {
    fn context(&self) -> String {
        match self.entry {
            Some(e) => format!(" in entry {e:?}"),
            None => String::new(),
        }
    }

    pub(crate) fn malformed(&self, detail: impl std::fmt::Display) -> InteropError {
        let detail = match self.entry {
            Some(e) => format!("entry {e:?}: {detail}"),
            None => detail.to_string(),
        };
        InteropError::malformed(self.path, self.format, detail)
    }

    fn read_err(&self, what: &str) -> impl FnOnce(std::io::Error) -> InteropError + '_ {
        let what = what.to_string();
        move |e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.malformed(format!("file ends inside the {what} (truncated?)"))
            } else if self.format == Format::Npz {
                // Reading a zip entry fails with InvalidData on a bad checksum or deflate stream.
                self.malformed(format!("cannot read the {what}: {e}"))
            } else {
                InteropError::Io(crate::error::IoError {
                    path: self.path.to_path_buf(),
                    op: "read",
                    source: e,
                })
            }
        }
    }
}

/// An element type as a `.npy` header spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Descr {
    /// A dtype of the spec, and whether the file stores it big-endian.
    Number {
        /// The dtype.
        dtype: DType,
        /// Stored big-endian (`'>'`).
        big_endian: bool,
    },
    /// Fixed-width byte strings (`'|S3'`): the `format` entry of a scipy `.npz`.
    Bytes(usize),
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// The element type.
    pub(crate) descr: Descr,
    /// The element type as written (`'<f8'`), for messages.
    pub(crate) descr_text: String,
    /// Elements stored in column-major (Fortran) order.
    pub(crate) fortran_order: bool,
    /// The shape.
    pub(crate) shape: Vec<u64>,
    /// Bytes before the data (magic, version, length and header).
    pub(crate) data_offset: u64,
}

impl Header {
    /// Byte size of the data, checked.
    pub(crate) fn data_len(&self) -> Option<u64> {
        let count = self
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
        let item = match self.descr {
            Descr::Number { dtype, .. } => dtype.itemsize(),
            Descr::Bytes(n) => n,
        };
        count.checked_mul(u64::try_from(item).ok()?)
    }

    /// The dtype and byte order of a numeric array; refuses byte strings.
    pub(crate) fn number(&self, src: &Source<'_>) -> Result<(DType, bool), InteropError> {
        match self.descr {
            Descr::Number { dtype, big_endian } => Ok((dtype, big_endian)),
            Descr::Bytes(_) => Err(unsupported(src, &self.descr_text)),
        }
    }
}

fn unsupported(src: &Source<'_>, descr: &str) -> InteropError {
    InteropError::UnsupportedDtype {
        path: src.path.to_path_buf(),
        descr: descr.to_string(),
        context: src.context(),
        valid: super::valid_dtypes(),
    }
}

/// Reads and parses the header, leaving `r` at the first data byte.
pub(crate) fn read_header(r: &mut dyn Read, src: &Source<'_>) -> Result<Header, InteropError> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre).map_err(src.read_err("header"))?;
    let (magic, version) = pre.split_at(6);
    if magic != MAGIC {
        return Err(src.malformed(
            "it does not start with numpy's magic string \\x93NUMPY (not a .npy file)",
        ));
    }
    let (major, minor) = match version {
        [a, b] => (*a, *b),
        _ => (0, 0),
    };
    let header_len = match (major, minor) {
        (1, 0) => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(src.read_err("header"))?;
            u64::from(u16::from_le_bytes(b))
        }
        (2, 0) | (3, 0) => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(src.read_err("header"))?;
            u64::from(u32::from_le_bytes(b))
        }
        _ => {
            return Err(src.malformed(format!(
                "format version {major}.{minor} is unknown; this dafstore reads versions 1.0, 2.0 and 3.0"
            )))
        }
    };
    if header_len > MAX_HEADER {
        return Err(src.malformed(format!(
            "header of {header_len} bytes is larger than the {MAX_HEADER} bytes accepted"
        )));
    }
    let mut text = Vec::new();
    r.take(header_len)
        .read_to_end(&mut text)
        .map_err(src.read_err("header"))?;
    if text.len() as u64 != header_len {
        return Err(src.malformed("file ends inside the header (truncated?)"));
    }
    let len_bytes: u64 = if major == 1 { 2 } else { 4 };
    let dict = match parse_dict(&text) {
        Ok(d) => d,
        Err(ParseError::Structured) => return Err(unsupported(src, "[...] (a structured dtype)")),
        Err(ParseError::Malformed(m)) => return Err(src.malformed(format!("header: {m}"))),
    };
    let descr = parse_descr(&dict.descr).ok_or_else(|| unsupported(src, &dict.descr))?;
    Ok(Header {
        descr,
        descr_text: format!("'{}'", dict.descr),
        fortran_order: dict.fortran_order,
        shape: dict.shape,
        data_offset: 8 + len_bytes + header_len,
    })
}

/// The three keys of a header dict.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeaderDict {
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
}

#[derive(Debug, PartialEq, Eq)]
enum ParseError {
    /// The `descr` is a list: a structured dtype.
    Structured,
    /// Anything else, described.
    Malformed(String),
}

fn bad(msg: impl Into<String>) -> ParseError {
    ParseError::Malformed(msg.into())
}

/// A cursor over the header bytes.
struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn bump(&mut self) {
        self.at = self.at.saturating_add(1);
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), ParseError> {
        if self.peek() == Some(c) {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(&format!("{:?}", char::from(c))))
        }
    }

    fn unexpected(&self, wanted: &str) -> ParseError {
        match self.peek() {
            Some(c) => bad(format!(
                "expected {wanted} at byte {}, found {:?}",
                self.at,
                char::from(c)
            )),
            None => bad(format!("expected {wanted}, found the end of the header")),
        }
    }

    /// A quoted string without escapes, of printable ASCII.
    fn string(&mut self) -> Result<String, ParseError> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(self.unexpected("a quoted string")),
        };
        self.bump();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(bad("unterminated string")),
                Some(c) if c == quote => {
                    self.bump();
                    return Ok(out);
                }
                Some(b'\\') => return Err(bad("escape sequences in strings are not supported")),
                Some(c) if (0x20..0x7f).contains(&c) => {
                    out.push(char::from(c));
                    self.bump();
                }
                Some(c) => return Err(bad(format!("byte {c:#04x} inside a string"))),
            }
        }
    }

    /// A non-negative decimal integer (Python 2's `L` suffix allowed).
    fn int(&mut self) -> Result<u64, ParseError> {
        let start = self.at;
        let mut v: u64 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .ok_or_else(|| bad("a dimension does not fit 64 bits"))?;
            self.bump();
        }
        if self.at == start {
            return Err(self.unexpected("a non-negative integer"));
        }
        if self.peek() == Some(b'L') {
            self.bump();
        }
        Ok(v)
    }

    /// `()`, `(n,)`, `(a, b)`, `(a, b,)`.
    fn shape(&mut self) -> Result<Vec<u64>, ParseError> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_space();
            if self.peek() == Some(b')') {
                self.bump();
                break;
            }
            dims.push(self.int()?);
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.bump();
                    trailing_comma = true;
                }
                Some(b')') => {
                    self.bump();
                    trailing_comma = false;
                    break;
                }
                _ => return Err(self.unexpected("',' or ')' in the shape")),
            }
        }
        if dims.len() == 1 && !trailing_comma {
            return Err(bad("shape (n) is not a tuple; a 1-d shape is written (n,)"));
        }
        Ok(dims)
    }

    fn bool(&mut self) -> Result<bool, ParseError> {
        let rest = self.s.get(self.at..).unwrap_or(&[]);
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if rest.starts_with(word) {
                self.at = self.at.saturating_add(word.len());
                return Ok(value);
            }
        }
        Err(self.unexpected("True or False"))
    }
}

/// Parses numpy's header dict literal.
fn parse_dict(text: &[u8]) -> Result<HeaderDict, ParseError> {
    let mut c = Cursor { s: text, at: 0 };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    c.skip_space();
    c.expect(b'{')?;
    loop {
        c.skip_space();
        if c.peek() == Some(b'}') {
            c.bump();
            break;
        }
        let key = c.string()?;
        c.skip_space();
        c.expect(b':')?;
        c.skip_space();
        let dup = match key.as_str() {
            "descr" => {
                if c.peek() == Some(b'[') {
                    return Err(ParseError::Structured);
                }
                descr.replace(c.string()?).is_some()
            }
            "fortran_order" => fortran.replace(c.bool()?).is_some(),
            "shape" => shape.replace(c.shape()?).is_some(),
            other => {
                return Err(bad(format!(
                "unknown key {other:?} (a header has exactly 'descr', 'fortran_order' and 'shape')"
            )))
            }
        };
        if dup {
            return Err(bad(format!("key {key:?} appears twice")));
        }
        c.skip_space();
        match c.peek() {
            Some(b',') => c.bump(),
            Some(b'}') => {
                c.bump();
                break;
            }
            _ => return Err(c.unexpected("',' or '}'")),
        }
    }
    c.skip_space();
    if c.at < text.len() {
        return Err(bad("unexpected bytes after the header dict"));
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran_order), Some(shape)) => Ok(HeaderDict {
            descr,
            fortran_order,
            shape,
        }),
        _ => Err(bad(
            "a header needs the keys 'descr', 'fortran_order' and 'shape'",
        )),
    }
}

/// Maps a simple descr (`'<f8'`, `'|b1'`, `'>i4'`, `'|S3'`) to a [`Descr`]; `None` if dafstore
/// does not store it.
fn parse_descr(s: &str) -> Option<Descr> {
    let mut chars = s.chars();
    let order = chars.next()?;
    let kind = chars.next()?;
    let size: usize = chars.as_str().parse().ok()?;
    if !chars.as_str().bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let big_endian = match order {
        '<' => false,
        '>' => true,
        '|' => false,
        '=' => cfg!(target_endian = "big"),
        _ => return None,
    };
    if order == '|' && size != 1 && kind != 'S' {
        return None;
    }
    let dtype = match (kind, size) {
        ('S', n) => return Some(Descr::Bytes(n)),
        ('b', 1) => DType::Bool,
        ('i', 1) => DType::Int8,
        ('i', 2) => DType::Int16,
        ('i', 4) => DType::Int32,
        ('i', 8) => DType::Int64,
        ('u', 1) => DType::UInt8,
        ('u', 2) => DType::UInt16,
        ('u', 4) => DType::UInt32,
        ('u', 8) => DType::UInt64,
        ('f', 2) => DType::Float16,
        ('f', 4) => DType::Float32,
        ('f', 8) => DType::Float64,
        _ => return None,
    };
    Some(Descr::Number { dtype, big_endian })
}

/// The header numpy writes for a C-order array (`numpy.lib.format._write_array_header`): the dict
/// with keys sorted, spare room for the first dimension to grow, padded with spaces and a newline
/// so the data starts on a 64-byte boundary; version 1.0 unless the header needs 2.0.
pub(crate) fn header_bytes(descr: &str, shape: &[u64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let shape_repr = match dims.as_slice() {
        [] => "()".to_string(),
        [one] => format!("({one},)"),
        many => format!("({})", many.join(", ")),
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_repr}, }}");
    if let Some(first) = dims.first() {
        dict.extend(std::iter::repeat_n(
            ' ',
            GROWTH_AXIS_MAX_DIGITS.saturating_sub(first.len()),
        ));
    }
    let hlen = dict.len() + 1; // + the final newline
    for (major, len_bytes) in [(1u8, 2usize), (2, 4)] {
        let padlen = ALIGN - (MAGIC.len() + 2 + len_bytes + hlen) % ALIGN;
        let total = hlen + padlen;
        let mut out = Vec::with_capacity(MAGIC.len() + 2 + len_bytes + total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[major, 0]);
        if major == 1 {
            let Ok(n) = u16::try_from(total) else {
                continue;
            };
            out.extend_from_slice(&n.to_le_bytes());
        } else {
            let n = u32::try_from(total).unwrap_or(u32::MAX);
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.extend(std::iter::repeat_n(b' ', padlen));
        out.push(b'\n');
        return out;
    }
    Vec::new() // unreachable: version 2.0 holds any header we build
}

/// Writes one whole `.npy` (header and data) to `w`.
pub(crate) fn write_npy(
    w: &mut dyn Write,
    descr: &str,
    shape: &[u64],
    data: &[u8],
) -> std::io::Result<()> {
    w.write_all(&header_bytes(descr, shape))?;
    for chunk in data.chunks(CHUNK) {
        w.write_all(chunk)?;
    }
    Ok(())
}

/// Imports a whole `.npy` file as dense array `name`.
pub(crate) fn import_file(
    c: &Container,
    name: &str,
    path: &Path,
    file: std::fs::File,
    progress: &mut Progress<'_, '_>,
) -> Result<ImportedArray, InteropError> {
    let src = Source {
        path,
        format: Format::Npy,
        entry: None,
    };
    let mut r = std::io::BufReader::new(file);
    let header = read_header(&mut r, &src)?;
    let expected = header
        .data_len()
        .and_then(|n| n.checked_add(header.data_offset));
    if expected != Some(progress.total) {
        return Err(src.malformed(format!(
            "the header promises {} data bytes after {} header bytes, but the file is {} bytes",
            header
                .data_len()
                .map_or("too many".to_string(), |n| n.to_string()),
            header.data_offset,
            progress.total
        )));
    }
    progress.advance(header.data_offset);
    stream_into(c, name, &mut r, &header, &src, progress)
}

/// Streams the data of an array whose header was just read from `r` into a new dense array
/// `name`, converting byte order and Fortran order, and publishes it. Reads exactly the data bytes.
pub(crate) fn stream_into(
    c: &Container,
    name: &str,
    r: &mut dyn Read,
    header: &Header,
    src: &Source<'_>,
    progress: &mut Progress<'_, '_>,
) -> Result<ImportedArray, InteropError> {
    let (dtype, big_endian) = header.number(src)?;
    let meta = DenseMeta::new(dtype, header.shape.clone())
        .map_err(|e| src.malformed(format!("shape {:?}: {e}", header.shape)))?;
    let mut writer = c
        .create_dense_with(name, dtype, &header.shape, CreateOptions::default())
        .map_err(InteropError::write(src.path))?;
    let itemsize = dtype.itemsize();
    let transpose = header.fortran_order && header.shape.len() >= 2;
    let dst = writer.as_bytes_mut();
    if transpose {
        let mut order = FortranToC::new(&header.shape);
        let mut buf = vec![0u8; CHUNK.min(dst.len())];
        let mut remaining = dst.len();
        while remaining > 0 {
            let n = remaining.min(buf.len());
            let part = buf
                .get_mut(..n)
                .ok_or_else(|| src.malformed("internal: chunk"))?;
            r.read_exact(part).map_err(src.read_err("data"))?;
            if big_endian {
                swap_bytes(part, itemsize);
            }
            for element in part.chunks_exact(itemsize) {
                let at = usize::try_from(order.next_c_index())
                    .ok()
                    .and_then(|i| i.checked_mul(itemsize))
                    .ok_or_else(|| src.malformed("internal: index"))?;
                dst.get_mut(at..at.saturating_add(itemsize))
                    .ok_or_else(|| src.malformed("internal: index out of range"))?
                    .copy_from_slice(element);
            }
            remaining -= n;
            progress.advance(n as u64);
        }
    } else {
        for chunk in dst.chunks_mut(CHUNK) {
            r.read_exact(chunk).map_err(src.read_err("data"))?;
            if big_endian {
                swap_bytes(chunk, itemsize);
            }
            progress.advance(chunk.len() as u64);
        }
    }
    writer.publish().map_err(InteropError::write(src.path))?;
    let mut conversions = Vec::new();
    if big_endian && itemsize > 1 {
        conversions.push("byte-swapped from big-endian".to_string());
    }
    if transpose {
        conversions.push("transposed from Fortran (column-major) order to row-major".to_string());
    }
    Ok(ImportedArray {
        name: name.to_string(),
        meta: ArrayMeta::Dense(meta),
        conversions,
    })
}

/// Reverses the bytes of each `itemsize`-byte element.
pub(crate) fn swap_bytes(bytes: &mut [u8], itemsize: usize) {
    if itemsize > 1 {
        for e in bytes.chunks_exact_mut(itemsize) {
            e.reverse();
        }
    }
}

/// Walks the elements of an array in Fortran order, yielding each one's row-major index.
struct FortranToC {
    shape: Vec<u64>,
    /// Row-major stride of each dimension, in elements.
    strides: Vec<u64>,
    index: Vec<u64>,
    c: u64,
}

impl FortranToC {
    fn new(shape: &[u64]) -> FortranToC {
        let mut strides = vec![1u64; shape.len()];
        let mut acc = 1u64;
        for (s, &d) in strides.iter_mut().zip(shape).rev() {
            *s = acc;
            // Cannot overflow: the element count was checked to fit.
            acc = acc.saturating_mul(d);
        }
        FortranToC {
            shape: shape.to_vec(),
            strides,
            index: vec![0; shape.len()],
            c: 0,
        }
    }

    /// The row-major index of the current element, then steps to the next (first axis fastest).
    fn next_c_index(&mut self) -> u64 {
        let current = self.c;
        for ((i, &d), &s) in self.index.iter_mut().zip(&self.shape).zip(&self.strides) {
            *i += 1;
            self.c = self.c.wrapping_add(s);
            if *i < d {
                break;
            }
            *i = 0;
            self.c = self.c.wrapping_sub(d.wrapping_mul(s));
        }
        current
    }
}

/// Bytes read into memory, aligned for any element type.
pub(crate) struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    /// The bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice::<u64, u8>(&self.words)
            .get(..self.len)
            .unwrap_or(&[])
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut::<u64, u8>(&mut self.words)
            .get_mut(..self.len)
            .unwrap_or(&mut [])
    }
}

/// Reads the data of an array whose header was just read (little-endian, 1-d or 0-d or C order)
/// into memory, growing the buffer only as bytes arrive (a header cannot make us allocate more
/// than the input holds).
pub(crate) fn read_data(
    r: &mut dyn Read,
    header: &Header,
    src: &Source<'_>,
) -> Result<Aligned, InteropError> {
    let len = header
        .data_len()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| src.malformed(format!("shape {:?} is too large", header.shape)))?;
    let mut out = Aligned {
        words: Vec::new(),
        len: 0,
    };
    while out.len < len {
        let step = (len - out.len).min(CHUNK);
        let start = out.len;
        out.len += step;
        out.words.resize(out.len.div_ceil(8), 0);
        let part = out
            .bytes_mut()
            .get_mut(start..)
            .ok_or_else(|| src.malformed("internal: buffer"))?;
        r.read_exact(part).map_err(src.read_err("data"))?;
    }
    if let Descr::Number {
        dtype,
        big_endian: true,
    } = header.descr
    {
        swap_bytes(out.bytes_mut(), dtype.itemsize());
    }
    if header.fortran_order && header.shape.len() >= 2 {
        return Err(src.malformed("a Fortran-order array where a 1-d array was expected"));
    }
    Ok(out)
}

/// Exports a dense array as `.npy`.
pub(crate) fn export(d: &DenseArray, path: &Path) -> Result<(), InteropError> {
    let (out, file) = Output::create(path)?;
    let mut w = BufWriter::new(file);
    write_npy(&mut w, d.dtype().numpy_typestr(), d.shape(), d.as_bytes())
        .map_err(InteropError::io(path, "write"))?;
    let file = w
        .into_inner()
        .map_err(|e| InteropError::io(path, "write")(e.into_error()))?;
    out.commit(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(s: &str) -> Result<HeaderDict, ParseError> {
        parse_dict(s.as_bytes())
    }

    #[test]
    fn parses_what_numpy_writes() {
        let d = dict("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }   \n").unwrap();
        assert_eq!(d.descr, "<f8");
        assert!(!d.fortran_order);
        assert_eq!(d.shape, vec![3, 4]);
        assert_eq!(
            dict("{'descr': '|b1', 'fortran_order': True, 'shape': (), }")
                .unwrap()
                .shape,
            Vec::<u64>::new()
        );
        assert_eq!(
            dict("{'shape': (7,), 'descr': \"<i4\", 'fortran_order': False}")
                .unwrap()
                .shape,
            vec![7]
        );
        assert_eq!(
            dict("{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 3L)}")
                .unwrap()
                .shape,
            vec![2, 3]
        );
        assert_eq!(
            dict("{'descr':'<i4','fortran_order':False,'shape':(2,3,)}")
                .unwrap()
                .shape,
            vec![2, 3]
        );
    }

    #[test]
    fn refuses_everything_else() {
        for bad_header in [
            "",
            "{",
            "{'descr': '<f8', 'fortran_order': False}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }",
            "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}",
            "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} x",
            "{'descr': '<f\\x38', 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
            "{'descr': '<f8' 'fortran_order': False, 'shape': (3,)}",
            "{'descr': '<f8', 'fortran_order': Falsey, 'shape': (3,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,,)}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': [3]}",
            "{'descr': '<f8\u{e9}', 'fortran_order': False, 'shape': (3,)}",
        ] {
            assert!(
                matches!(dict(bad_header), Err(ParseError::Malformed(_))),
                "{bad_header:?}: {:?}",
                dict(bad_header)
            );
        }
        assert_eq!(
            dict("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3,)}"),
            Err(ParseError::Structured)
        );
    }

    #[test]
    fn every_prefix_of_a_header_is_refused_without_panic() {
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
        for n in 0..h.len() {
            assert!(dict(&h[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn descrs() {
        assert_eq!(
            parse_descr(">i4"),
            Some(Descr::Number {
                dtype: DType::Int32,
                big_endian: true
            })
        );
        assert_eq!(parse_descr("|S3"), Some(Descr::Bytes(3)));
        for d in DType::ALL {
            assert_eq!(
                parse_descr(d.numpy_typestr()),
                Some(Descr::Number {
                    dtype: d,
                    big_endian: false
                })
            );
        }
        for unsupported in [
            "<c8", "<U3", "|O", "<M8[ns]", "|V8", "<f16", "|f8", "f8", "", "<", "<i+4",
        ] {
            assert_eq!(parse_descr(unsupported), None, "{unsupported}");
        }
    }

    #[test]
    fn headers_are_64_byte_aligned_and_reparse() {
        for shape in [&[][..], &[3], &[3, 4], &[u64::MAX / 16, 1]] {
            let h = header_bytes("<f8", shape);
            assert_eq!(h.len() % 64, 0);
            let src = Source {
                path: Path::new("x.npy"),
                format: Format::Npy,
                entry: None,
            };
            let parsed = read_header(&mut &h[..], &src).unwrap();
            assert_eq!(parsed.shape, shape);
            assert_eq!(parsed.data_offset as usize, h.len());
        }
        let long: Vec<u64> = vec![7; 30_000];
        let h = header_bytes("<f8", &long);
        assert_eq!(&h[6..8], &[2, 0]);
        assert_eq!(h.len() % 64, 0);
    }

    #[test]
    fn fortran_walk() {
        let mut w = FortranToC::new(&[2, 3]);
        let order: Vec<u64> = (0..6).map(|_| w.next_c_index()).collect();
        assert_eq!(order, vec![0, 3, 1, 4, 2, 5]);
    }
}
