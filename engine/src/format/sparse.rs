//! Sparse invariants (SPEC [S3]–[S5]), checked in O(nnz) before publishing and by fsck. Open is
//! O(1) and trusts published content; accessors still bounds-check every index they follow.

use crate::error::SparseError;
use crate::format::dtype::{DType, IndexElement, IndexSlice};
use crate::format::meta::SparseMeta;

fn max_of(d: DType) -> u64 {
    match d {
        DType::Int32 => i32::MAX as u64,
        DType::Int64 => i64::MAX as u64,
        DType::UInt32 => u32::MAX as u64,
        _ => u64::MAX,
    }
}

/// Checks every invariant of a sparse array whose `data` has `data_len` entries.
pub fn validate(
    meta: &SparseMeta,
    data_len: u64,
    indices: IndexSlice<'_>,
    indptr: IndexSlice<'_>,
) -> Result<(), SparseError> {
    let (major, minor, nnz) = (meta.major(), meta.minor(), meta.nnz);
    if nnz > max_of(meta.indptr_dtype) {
        return Err(SparseError::IndexDtypeTooSmall {
            what: "nnz",
            value: nnz,
            dtype: meta.indptr_dtype,
        });
    }
    if minor > 0 && minor - 1 > max_of(meta.indices_dtype) {
        return Err(SparseError::IndexDtypeTooSmall {
            what: "minor dimension - 1",
            value: minor - 1,
            dtype: meta.indices_dtype,
        });
    }
    let expected_ptr = major.saturating_add(1);
    if indptr.len() as u64 != expected_ptr {
        return Err(SparseError::IndptrLength {
            expected: expected_ptr,
            actual: indptr.len() as u64,
        });
    }
    if data_len != nnz {
        return Err(SparseError::NnzMismatch {
            what: "data",
            expected: nnz,
            actual: data_len,
        });
    }
    if indices.len() as u64 != nnz {
        return Err(SparseError::NnzMismatch {
            what: "indices",
            expected: nnz,
            actual: indices.len() as u64,
        });
    }
    match indptr {
        IndexSlice::I32(p) => check_indptr(p, nnz)?,
        IndexSlice::I64(p) => check_indptr(p, nnz)?,
        IndexSlice::U32(p) => check_indptr(p, nnz)?,
        IndexSlice::U64(p) => check_indptr(p, nnz)?,
    }
    match indices {
        IndexSlice::I32(i) => check_indices(i, minor),
        IndexSlice::I64(i) => check_indices(i, minor),
        IndexSlice::U32(i) => check_indices(i, minor),
        IndexSlice::U64(i) => check_indices(i, minor),
    }
}

fn check_indptr<P: IndexElement>(ptr: &[P], nnz: u64) -> Result<(), SparseError> {
    // `ptr` has major + 1 >= 1 entries (checked by the caller).
    let Some(&first) = ptr.first() else {
        return Err(SparseError::IndptrLength {
            expected: 1,
            actual: 0,
        });
    };
    if first.to_u64() != Some(0) {
        return Err(SparseError::IndptrStart {
            found: first.to_string(),
        });
    }
    let mut prev = 0u64;
    for (i, &v) in ptr.iter().enumerate().skip(1) {
        match v.to_u64() {
            Some(cur) if cur >= prev => prev = cur,
            _ => {
                return Err(SparseError::IndptrDecreasing {
                    at: i as u64,
                    before: ptr[i - 1].to_string(),
                    after: v.to_string(),
                })
            }
        }
    }
    if prev != nnz {
        return Err(SparseError::IndptrEnd {
            found: prev.to_string(),
            nnz,
        });
    }
    Ok(())
}

fn check_indices<I: IndexElement>(indices: &[I], bound: u64) -> Result<(), SparseError> {
    for (k, &v) in indices.iter().enumerate() {
        match v.to_u64() {
            Some(x) if x < bound => {}
            _ => {
                return Err(SparseError::IndexOutOfRange {
                    at: k as u64,
                    index: v.to_string(),
                    bound,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::meta::Layout;

    fn meta(shape: [u64; 2], nnz: u64, layout: Layout) -> SparseMeta {
        SparseMeta::new(
            DType::Float64,
            DType::Int32,
            DType::Int64,
            shape,
            nnz,
            layout,
        )
        .unwrap()
    }

    #[test]
    fn valid_csr_and_empty() {
        let m = meta([2, 3], 3, Layout::Rows);
        validate(
            &m,
            3,
            IndexSlice::I32(&[0, 2, 1]),
            IndexSlice::I64(&[0, 2, 3]),
        )
        .unwrap();
        let e = meta([3, 3], 0, Layout::Rows);
        validate(&e, 0, IndexSlice::I32(&[]), IndexSlice::I64(&[0, 0, 0, 0])).unwrap();
        let z = meta([0, 0], 0, Layout::Columns);
        validate(&z, 0, IndexSlice::I32(&[]), IndexSlice::I64(&[0])).unwrap();
    }

    #[test]
    fn each_violation() {
        let m = meta([2, 3], 3, Layout::Rows);
        let v = |idx: &[i32], ptr: &[i64], data: u64| {
            validate(&m, data, IndexSlice::I32(idx), IndexSlice::I64(ptr))
        };
        assert!(matches!(
            v(&[0, 1, 2], &[0, 3], 3),
            Err(SparseError::IndptrLength { .. })
        ));
        assert!(matches!(
            v(&[0, 1, 2], &[1, 2, 3], 3),
            Err(SparseError::IndptrStart { .. })
        ));
        assert!(matches!(
            v(&[0, 1, 2], &[0, 2, 1], 3),
            Err(SparseError::IndptrDecreasing { at: 2, .. })
        ));
        assert!(matches!(
            v(&[0, 1, 2], &[0, -1, 3], 3),
            Err(SparseError::IndptrDecreasing { at: 1, .. })
        ));
        assert!(matches!(
            v(&[0, 1, 2], &[0, 1, 2], 3),
            Err(SparseError::IndptrEnd { .. })
        ));
        assert!(matches!(
            v(&[0, 3, 2], &[0, 1, 3], 3),
            Err(SparseError::IndexOutOfRange { at: 1, .. })
        ));
        assert!(matches!(
            v(&[0, -1, 2], &[0, 1, 3], 3),
            Err(SparseError::IndexOutOfRange { at: 1, .. })
        ));
        assert!(matches!(
            v(&[0, 1], &[0, 1, 3], 3),
            Err(SparseError::NnzMismatch {
                what: "indices",
                ..
            })
        ));
        assert!(matches!(
            v(&[0, 1, 2], &[0, 1, 3], 2),
            Err(SparseError::NnzMismatch { what: "data", .. })
        ));
        // Columns: indices bounded by rows.
        let c = meta([2, 3], 1, Layout::Columns);
        let r = validate(&c, 1, IndexSlice::I32(&[2]), IndexSlice::I64(&[0, 1, 1, 1]));
        assert!(matches!(
            r,
            Err(SparseError::IndexOutOfRange { bound: 2, .. })
        ));
    }

    #[test]
    fn index_dtype_too_small() {
        let m = SparseMeta::new(
            DType::Float32,
            DType::Int32,
            DType::Int32,
            [1, 5_000_000_000],
            0,
            Layout::Rows,
        )
        .unwrap();
        let r = validate(&m, 0, IndexSlice::I32(&[]), IndexSlice::I32(&[0, 0]));
        assert!(matches!(r, Err(SparseError::IndexDtypeTooSmall { .. })));
    }
}
