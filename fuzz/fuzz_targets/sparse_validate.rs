//! Sparse index buffers (SPEC [S3]–[S5]): `sparse::validate` on arbitrary bytes viewed as index
//! slices of every index dtype, against arbitrary metadata that `SparseMeta::new` accepts: an
//! error or Ok, never a panic or an out-of-bounds read; and Ok only when every invariant really
//! holds (checked here independently, in `u128`), since readers trust a validated array.
//!
//! Input layout: `[indices dtype][indptr dtype][layout][size flags]`, then rows, columns, nnz and
//! the data length as `u32` LE (a size flag bit set turns a value into `value << 31`, to reach the
//! dtype limits), then the byte length of `indices` as `u16` LE, the `indices` bytes, and the rest
//! is `indptr`. A trailing partial element is dropped.
#![no_main]

use dafstore::{DType, IndexSlice, Layout, SparseMeta};
use dafstore_fuzz::{take, take_u16};
use libfuzzer_sys::fuzz_target;

const INDEX: [DType; 4] = [DType::Int32, DType::Int64, DType::UInt32, DType::UInt64];

fn take_u32(d: &mut &[u8]) -> u64 {
    let b = take(d, 4);
    let mut a = [0u8; 4];
    a[..b.len()].copy_from_slice(b);
    u64::from(u32::from_le_bytes(a))
}

/// Owned elements of an index dtype, as signed 128-bit values for the oracle.
enum Owned {
    I32(Vec<i32>),
    I64(Vec<i64>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl Owned {
    fn new(dtype: DType, bytes: &[u8]) -> Owned {
        macro_rules! conv {
            ($t:ty, $v:ident) => {
                Owned::$v(
                    bytes
                        .chunks_exact(std::mem::size_of::<$t>())
                        .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                )
            };
        }
        match dtype {
            DType::Int32 => conv!(i32, I32),
            DType::Int64 => conv!(i64, I64),
            DType::UInt32 => conv!(u32, U32),
            _ => conv!(u64, U64),
        }
    }

    fn slice(&self) -> IndexSlice<'_> {
        match self {
            Owned::I32(v) => IndexSlice::I32(v),
            Owned::I64(v) => IndexSlice::I64(v),
            Owned::U32(v) => IndexSlice::U32(v),
            Owned::U64(v) => IndexSlice::U64(v),
        }
    }

    fn values(&self) -> Vec<i128> {
        match self {
            Owned::I32(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Owned::I64(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Owned::U32(v) => v.iter().map(|&x| i128::from(x)).collect(),
            Owned::U64(v) => v.iter().map(|&x| i128::from(x)).collect(),
        }
    }
}

fn max_of(d: DType) -> i128 {
    match d {
        DType::Int32 => i128::from(i32::MAX),
        DType::Int64 => i128::from(i64::MAX),
        DType::UInt32 => i128::from(u32::MAX),
        _ => i128::from(u64::MAX),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut d = data;
    let head = take(&mut d, 4);
    let byte = |i: usize| head.get(i).copied().unwrap_or(0);
    let indices_dtype = INDEX[usize::from(byte(0) % 4)];
    let indptr_dtype = INDEX[usize::from(byte(1) % 4)];
    let layout = if byte(2) & 1 == 0 {
        Layout::Rows
    } else {
        Layout::Columns
    };
    let flags = byte(3);
    let mut sizes = [0u64; 4];
    for (k, s) in sizes.iter_mut().enumerate() {
        let v = take_u32(&mut d);
        *s = if flags & (1 << k) != 0 { v << 31 } else { v };
    }
    let [rows, cols, nnz, data_len] = sizes;
    let indices_len = take_u16(&mut d);
    let indices = Owned::new(indices_dtype, take(&mut d, indices_len));
    let indptr = Owned::new(indptr_dtype, d);
    let Ok(meta) = SparseMeta::new(
        DType::Float32,
        indices_dtype,
        indptr_dtype,
        [rows, cols],
        nnz,
        layout,
    ) else {
        return;
    };
    let verdict =
        dafstore::internals::sparse::validate(&meta, data_len, indices.slice(), indptr.slice());
    if verdict.is_err() {
        return;
    }
    // The oracle: everything a reader following [S3]–[S5] relies on.
    let (major, minor) = match layout {
        Layout::Rows => (rows, cols),
        Layout::Columns => (cols, rows),
    };
    let (nnz, ptr, idx) = (i128::from(nnz), indptr.values(), indices.values());
    assert_eq!(
        ptr.len() as u128,
        u128::from(major) + 1,
        "[S3] indptr length"
    );
    assert_eq!(i128::from(data_len), nnz, "[S3] data length");
    assert_eq!(idx.len() as i128, nnz, "[S3] indices length");
    assert_eq!(ptr[0], 0, "[S4] indptr[0]");
    assert!(
        ptr.windows(2).all(|w| w[0] <= w[1]),
        "[S4] indptr decreases"
    );
    assert_eq!(ptr[ptr.len() - 1], nnz, "[S4] indptr end");
    assert!(
        idx.iter().all(|&i| 0 <= i && i < i128::from(minor)),
        "[S4] index out of range"
    );
    assert!(nnz <= max_of(indptr_dtype), "[S5] nnz fits indptr dtype");
    assert!(
        minor == 0 || i128::from(minor - 1) <= max_of(indices_dtype),
        "[S5] minor - 1 fits indices dtype"
    );
});
