//! Element types (SPEC section 4): the closed set of dtypes, their numpy spellings and sizes, and
//! the Rust types that view them. Never reinterprets bytes as `bool` (see [`Bool8`]).

use std::fmt;

use bytemuck::{Pod, Zeroable};

/// An element type, spelled as numpy spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// One byte, 0 or 1.
    Bool,
    /// Signed 8-bit.
    Int8,
    /// Signed 16-bit.
    Int16,
    /// Signed 32-bit.
    Int32,
    /// Signed 64-bit.
    Int64,
    /// Unsigned 8-bit.
    UInt8,
    /// Unsigned 16-bit.
    UInt16,
    /// Unsigned 32-bit.
    UInt32,
    /// Unsigned 64-bit.
    UInt64,
    /// IEEE binary16.
    Float16,
    /// IEEE binary32.
    Float32,
    /// IEEE binary64.
    Float64,
}

impl DType {
    /// Every dtype, in the spec's order.
    pub const ALL: [DType; 12] = [
        DType::Bool,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Float16,
        DType::Float32,
        DType::Float64,
    ];

    /// The dtypes allowed for sparse `indices` and `indptr` (SPEC [T3]).
    pub const INDEX: [DType; 4] = [DType::Int32, DType::Int64, DType::UInt32, DType::UInt64];

    /// The numpy spelling (`"float64"`).
    pub const fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float16 => "float16",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }

    /// Bytes per element.
    pub const fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::Int8 | DType::UInt8 => 1,
            DType::Int16 | DType::UInt16 | DType::Float16 => 2,
            DType::Int32 | DType::UInt32 | DType::Float32 => 4,
            DType::Int64 | DType::UInt64 | DType::Float64 => 8,
        }
    }

    /// numpy's type string of this dtype as stored (little-endian; `|` for one-byte types): the
    /// `.npy` header's `descr` and the `typestr` of numpy's array interface.
    pub const fn numpy_typestr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::Int8 => "|i1",
            DType::Int16 => "<i2",
            DType::Int32 => "<i4",
            DType::Int64 => "<i8",
            DType::UInt8 => "|u1",
            DType::UInt16 => "<u2",
            DType::UInt32 => "<u4",
            DType::UInt64 => "<u8",
            DType::Float16 => "<f2",
            DType::Float32 => "<f4",
            DType::Float64 => "<f8",
        }
    }

    /// Parses a numpy spelling; anything else is `None` (callers build the error listing
    /// [`DType::valid_names`]).
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Whether this dtype may be a sparse index dtype.
    pub fn is_index(self) -> bool {
        DType::INDEX.contains(&self)
    }

    /// The valid spellings, comma separated, for error messages.
    pub fn valid_names() -> String {
        DType::ALL.map(DType::name).join(", ")
    }

    /// The valid index spellings, comma separated, for error messages.
    pub fn valid_index_names() -> String {
        DType::INDEX.map(DType::name).join(", ")
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Serializes as its numpy spelling ([`DType::name`]), as in the metadata file.
impl serde::Serialize for DType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A bool element as stored: one byte that should be 0 or 1.
///
/// A byte other than 0 or 1 seen as a Rust `bool` is undefined behaviour, so bool arrays are viewed
/// as `Bool8` and converted with [`Bool8::get`] (any nonzero byte reads as `true`) or checked with
/// [`Bool8::try_get`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Pod, Zeroable)]
#[repr(transparent)]
pub struct Bool8(pub u8);

impl Bool8 {
    /// `true` for any nonzero byte.
    pub fn get(self) -> bool {
        self.0 != 0
    }

    /// `Some` for 0 or 1, `None` for any other byte (invalid per SPEC [T2]).
    pub fn try_get(self) -> Option<bool> {
        match self.0 {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl From<bool> for Bool8 {
    fn from(b: bool) -> Self {
        Bool8(u8::from(b))
    }
}

/// A Rust type that views elements of one dtype. Implemented for the primitive numbers,
/// [`half::f16`] and [`Bool8`]; `u8` views `uint8` only (use [`Bool8`] for `bool`).
pub trait Element: Pod + Send + Sync + 'static {
    /// The dtype this type views.
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(impl Element for $t { const DTYPE: DType = DType::$d; })*
    };
}

element!(
    Bool8 => Bool, i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
    u8 => UInt8, u16 => UInt16, u32 => UInt32, u64 => UInt64,
    half::f16 => Float16, f32 => Float32, f64 => Float64,
);

/// An element type allowed for sparse indices and indptr (SPEC [T3]).
pub trait IndexElement: Element + Copy + fmt::Display {
    /// The value as `u64`, `None` if negative.
    fn to_u64(self) -> Option<u64>;
    /// The largest value, as `u64`.
    const MAX_U64: u64;
}

macro_rules! index_element {
    ($($t:ty),*) => {
        $(impl IndexElement for $t {
            fn to_u64(self) -> Option<u64> {
                u64::try_from(self).ok()
            }
            const MAX_U64: u64 = <$t>::MAX as u64;
        })*
    };
}

index_element!(i32, i64, u32, u64);

/// A read-only view of an index buffer whose dtype is known only at run time.
#[derive(Debug, Clone, Copy)]
pub enum IndexSlice<'a> {
    /// `int32`.
    I32(&'a [i32]),
    /// `int64`.
    I64(&'a [i64]),
    /// `uint32`.
    U32(&'a [u32]),
    /// `uint64`.
    U64(&'a [u64]),
}

impl IndexSlice<'_> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            IndexSlice::I32(s) => s.len(),
            IndexSlice::I64(s) => s.len(),
            IndexSlice::U32(s) => s.len(),
            IndexSlice::U64(s) => s.len(),
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `i` as `u64`; `None` if `i` is out of bounds or the entry is negative.
    pub fn get(&self, i: usize) -> Option<u64> {
        match self {
            IndexSlice::I32(s) => s.get(i).and_then(|v| v.to_u64()),
            IndexSlice::I64(s) => s.get(i).and_then(|v| v.to_u64()),
            IndexSlice::U32(s) => s.get(i).map(|&v| u64::from(v)),
            IndexSlice::U64(s) => s.get(i).copied(),
        }
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        match self {
            IndexSlice::I32(_) => DType::Int32,
            IndexSlice::I64(_) => DType::Int64,
            IndexSlice::U32(_) => DType::UInt32,
            IndexSlice::U64(_) => DType::UInt64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips_its_spelling() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
    }

    #[test]
    fn other_spellings_are_refused() {
        for bad in [
            "float",
            "f8",
            "<f8",
            "Float64",
            "int",
            "complex64",
            "",
            "bool_",
            "float128",
        ] {
            assert_eq!(DType::from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn bool8_checks_bytes() {
        assert_eq!(Bool8(1).try_get(), Some(true));
        assert_eq!(Bool8(0).try_get(), Some(false));
        assert_eq!(Bool8(2).try_get(), None);
        assert!(Bool8(2).get());
    }
}
