//! Arrow views of mapped arrays, with no copy: the Arrow buffer's memory IS the map. Each buffer is
//! built by `sys::arrow_buffer_over_map`, which gives Arrow an owner holding the array's mapped
//! generation (`Arc<ArrayInner>`: the maps, their cache entries and the array's reference), so an
//! Arrow array keeps the map alive after every dafstore handle is dropped, and the map is released
//! when the last Arrow array using it drops.
//!
//! Shapes: a 1-d array is a `PrimitiveArray`; a 0-d array is a `PrimitiveArray` of length 1; an
//! n-d array (row-major) is n − 1 nested non-nullable `FixedSizeListArray`s whose innermost values
//! are the whole map, so row `i` of a 2-d `[rows, columns]` array is list element `i` of size
//! `columns` (Arrow's usual encoding of fixed-size tensors, which pyarrow and polars read as
//! `fixed_size_list` / `Array`). A dimension larger than `i32::MAX` cannot be a list size and is
//! refused.
//!
//! Two dtypes are not zero-copy, by Arrow's design: `bool` is one byte per value in dafstore and
//! one bit per value in Arrow, so it is converted (a copy) to a `BooleanArray` (any nonzero byte
//! reads as `true`, like [`crate::Bool8::get`]); everything else, `float16` included (Arrow's
//! `Float16Array` of `half::f16`), is a view.
//!
//! Shared-memory contract: values can change under the Arrow array if the same array is opened for
//! in-place writing (in this or another process), as for every dafstore view; the memory stays
//! valid.

use std::sync::Arc;

use arrow_array::types::{
    ArrowPrimitiveType, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{ArrayRef, BooleanArray, FixedSizeListArray, PrimitiveArray};
use arrow_buffer::{BooleanBuffer, Buffer, ScalarBuffer};
use arrow_schema::{DataType, Field};

use super::InteropError;
use crate::array::{ArrayInner, DenseArray, SparseArray};
use crate::format::dtype::DType;
use crate::format::meta::Layout;

/// The Arrow type of a dtype's values (`bool` → `Boolean`, `float16` → `Float16`…).
pub fn arrow_data_type(dtype: DType) -> DataType {
    match dtype {
        DType::Bool => DataType::Boolean,
        DType::Int8 => DataType::Int8,
        DType::Int16 => DataType::Int16,
        DType::Int32 => DataType::Int32,
        DType::Int64 => DataType::Int64,
        DType::UInt8 => DataType::UInt8,
        DType::UInt16 => DataType::UInt16,
        DType::UInt32 => DataType::UInt32,
        DType::UInt64 => DataType::UInt64,
        DType::Float16 => DataType::Float16,
        DType::Float32 => DataType::Float32,
        DType::Float64 => DataType::Float64,
    }
}

/// The three components of a sparse array as Arrow arrays, each a zero-copy view of its map
/// (`data` of `bool` is a copy, see the module doc).
#[derive(Debug, Clone)]
pub struct ArrowSparse {
    /// The stored values (`nnz`).
    pub data: ArrayRef,
    /// The minor index of each value (`nnz`).
    pub indices: ArrayRef,
    /// Where each major slot starts in `data`/`indices` (`major + 1`).
    pub indptr: ArrayRef,
    /// Rows (CSR) or columns (CSC).
    pub layout: Layout,
    /// `[rows, columns]`.
    pub shape: [u64; 2],
}

/// A flat Arrow array over data file `file` of `inner` (`len` elements of `dtype`).
fn flat(
    inner: &Arc<ArrayInner>,
    file: usize,
    dtype: DType,
    len: usize,
) -> Result<ArrayRef, String> {
    let buffer = || {
        crate::fs::sys::arrow_buffer_over_map(Arc::clone(inner), move |a: &ArrayInner| {
            a.file_map(file)
        })
    };
    match dtype {
        DType::Bool => {
            // Arrow packs bools in bits: a copy (the one exception to zero-copy).
            let bytes = inner.bytes(file);
            if bytes.len() != len {
                return Err(format!("{} bytes for {len} bools", bytes.len()));
            }
            let bits = BooleanBuffer::collect_bool(len, |i| bytes.get(i).is_some_and(|&b| b != 0));
            Ok(Arc::new(BooleanArray::new(bits, None)))
        }
        DType::Int8 => primitive::<Int8Type>(buffer(), len),
        DType::Int16 => primitive::<Int16Type>(buffer(), len),
        DType::Int32 => primitive::<Int32Type>(buffer(), len),
        DType::Int64 => primitive::<Int64Type>(buffer(), len),
        DType::UInt8 => primitive::<UInt8Type>(buffer(), len),
        DType::UInt16 => primitive::<UInt16Type>(buffer(), len),
        DType::UInt32 => primitive::<UInt32Type>(buffer(), len),
        DType::UInt64 => primitive::<UInt64Type>(buffer(), len),
        DType::Float16 => primitive::<Float16Type>(buffer(), len),
        DType::Float32 => primitive::<Float32Type>(buffer(), len),
        DType::Float64 => primitive::<Float64Type>(buffer(), len),
    }
}

/// A `PrimitiveArray` over `buffer` (`None`: an empty, unmapped file), after checking its length
/// and alignment (so arrow's constructors cannot panic).
fn primitive<T: ArrowPrimitiveType>(
    buffer: Option<Buffer>,
    len: usize,
) -> Result<ArrayRef, String> {
    let Some(buffer) = buffer else {
        if len != 0 {
            return Err(format!("no data for {len} elements"));
        }
        let values = ScalarBuffer::<T::Native>::from(Vec::<T::Native>::new());
        return Ok(Arc::new(PrimitiveArray::<T>::new(values, None)));
    };
    let size = std::mem::size_of::<T::Native>();
    if Some(buffer.len()) != len.checked_mul(size) {
        return Err(format!(
            "{} bytes for {len} elements of {size} bytes",
            buffer.len()
        ));
    }
    if buffer
        .as_ptr()
        .align_offset(std::mem::align_of::<T::Native>())
        != 0
    {
        // Maps start on a page boundary: this cannot happen.
        return Err("the map is not aligned for its element type".to_string());
    }
    let values = ScalarBuffer::<T::Native>::from(buffer);
    PrimitiveArray::<T>::try_new(values, None)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| e.to_string())
}

/// Wraps flat row-major `values` of `shape` into nested fixed-size lists (none for 0-d and 1-d).
fn nest(values: ArrayRef, shape: &[u64]) -> Result<ArrayRef, String> {
    let mut values = values;
    // Innermost first: the last dimension becomes the innermost list size.
    for (k, &dim) in shape.iter().enumerate().skip(1).rev() {
        let size = i32::try_from(dim).map_err(|_| {
            format!("dimension {k} of size {dim} exceeds Arrow's list size limit (i32)")
        })?;
        let outer: u64 = shape.get(..k).unwrap_or(&[]).iter().product();
        let len = usize::try_from(outer).map_err(|_| "too many elements".to_string())?;
        let field = Arc::new(Field::new_list_field(values.data_type().clone(), false));
        let list = FixedSizeListArray::try_new_with_length(field, size, values, None, len)
            .map_err(|e| e.to_string())?;
        values = Arc::new(list);
    }
    Ok(values)
}

impl DenseArray {
    /// This array as an Arrow array whose buffer is the map itself (no copy; `bool` is the
    /// exception: Arrow packs bools in bits, so they are converted). A 1-d array is a
    /// `PrimitiveArray`, a 0-d array one of length 1, an n-d array nested `FixedSizeListArray`s
    /// (row `i` of a 2-d array is list element `i`). The Arrow array keeps the map — and this
    /// array's reference — alive on its own, after every dafstore handle is dropped.
    ///
    /// ```
    /// use arrow_array::{cast::AsArray, types::Float64Type, Array};
    /// # let dir = tempfile::tempdir()?;
    /// # let c = dafstore::Container::create(dir.path().join("c"))?;
    /// c.write_dense::<f64>("x", &[3], &[1., 2., 3.])?;
    /// let x = c.open_dense_untyped("x")?;
    /// let arrow = x.to_arrow()?;
    /// assert_eq!(arrow.as_primitive::<Float64Type>().values().as_ptr().cast(), x.as_bytes().as_ptr());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_arrow(&self) -> Result<ArrayRef, InteropError> {
        let err = |detail: String| InteropError::ToArrow {
            name: self.name().to_string(),
            detail,
        };
        let len = usize::try_from(self.len()).map_err(|_| err("too many elements".into()))?;
        let values = flat(self.mapped(), 0, self.dtype(), len).map_err(err)?;
        nest(values, self.shape()).map_err(err)
    }
}

impl SparseArray {
    /// The three components as Arrow arrays whose buffers are the maps (no copy, except `data` of
    /// `bool`, see [`DenseArray::to_arrow`]). They keep the maps alive on their own.
    pub fn to_arrow_buffers(&self) -> Result<ArrowSparse, InteropError> {
        let err = |detail: String| InteropError::ToArrow {
            name: self.name().to_string(),
            detail,
        };
        let meta = self.sparse_meta();
        let nnz = usize::try_from(meta.nnz).map_err(|_| err("too many entries".into()))?;
        let ptr_len = meta
            .major()
            .checked_add(1)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| err("too many rows".into()))?;
        Ok(ArrowSparse {
            data: flat(self.mapped(), 0, meta.data_dtype, nnz).map_err(err)?,
            indices: flat(self.mapped(), 1, meta.indices_dtype, nnz).map_err(err)?,
            indptr: flat(self.mapped(), 2, meta.indptr_dtype, ptr_len).map_err(err)?,
            layout: meta.layout,
            shape: meta.shape,
        })
    }
}
