//! Opening by name: [`Array`] (an opened array of any kind) and [`Container::open_array`],
//! `open_dense`, `open_sparse` and `open_table`, over the dense and sparse handles of `array.rs`
//! and the tables of `table.rs`. A second open of the same array in this process reuses the live
//! maps (the process's open arrays, one entry per name) without touching the catalog.

use std::sync::Arc;

use crate::array::{ArrayInner, Dense, DenseArray, SparseArray};
use crate::container::Container;
use crate::error::OpenError;
use crate::format::dtype::{DType, Element};
use crate::format::meta::{ArrayMeta, Kind};
use crate::format::name::ArrayName;
use crate::table::{Table, TableInner};

/// An opened array of either kind.
#[derive(Clone)]
pub enum Array {
    /// Dense.
    Dense(DenseArray),
    /// Sparse.
    Sparse(SparseArray),
    /// A table.
    Table(Table),
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Array")
            .field("kind", &self.kind())
            .field("meta", self.meta())
            .finish_non_exhaustive()
    }
}

impl Array {
    /// Dense, sparse or table.
    pub fn kind(&self) -> Kind {
        match self {
            Array::Dense(_) => Kind::Dense,
            Array::Sparse(_) => Kind::Sparse,
            Array::Table(_) => Kind::Table,
        }
    }

    /// The element dtype (`data_dtype` for sparse); `None` for a table.
    pub fn dtype(&self) -> Option<DType> {
        match self {
            Array::Dense(d) => Some(d.dtype()),
            Array::Sparse(s) => Some(s.data_dtype()),
            Array::Table(_) => None,
        }
    }

    /// The metadata.
    pub fn meta(&self) -> &ArrayMeta {
        match self {
            Array::Dense(d) => &d.inner.meta,
            Array::Sparse(s) => &s.inner.meta,
            Array::Table(t) => &t.inner.array.meta,
        }
    }
}

impl Container {
    /// Opens an array of either kind, read-only. A second open of the same array in this process
    /// reuses the live maps without touching the catalog (one `stat` to detect a replacement).
    pub fn open_array(&self, name: &str) -> Result<Array, OpenError> {
        let name = ArrayName::new(name)?;
        // The guard must be gone before a stale `inner` is dropped (its drop may lock `arrays`).
        let cached = self
            .shared
            .arrays()
            .get(name.as_str())
            .and_then(std::sync::Weak::upgrade);
        if let Some(any) = cached {
            match any.downcast::<ArrayInner>() {
                Ok(inner) if inner.still_current() => return wrap(inner),
                Ok(_) => {}
                Err(any) => {
                    if let Ok(t) = any.downcast::<TableInner>() {
                        if t.array.still_current() {
                            return Ok(Array::Table(Table { inner: t }));
                        }
                    }
                }
            }
        }
        let inner = Arc::new(self.map_array(&name, false)?);
        if let ArrayMeta::Table(_) = inner.meta {
            let t = Arc::new(TableInner::decode(inner)?);
            let any: Arc<dyn std::any::Any + Send + Sync> = t.clone();
            self.shared
                .arrays()
                .insert(name.to_string(), Arc::downgrade(&any));
            return Ok(Array::Table(Table { inner: t }));
        }
        let any: Arc<dyn std::any::Any + Send + Sync> = inner.clone();
        let weak = Arc::downgrade(&any);
        self.shared.arrays().insert(name.to_string(), weak);
        wrap(inner)
    }

    /// Opens a dense array read-only, untyped.
    pub fn open_dense_untyped(&self, name: &str) -> Result<DenseArray, OpenError> {
        match self.open_array(name)? {
            Array::Dense(d) => Ok(d),
            other => Err(self.kind_mismatch(name, other.kind().name(), "dense")),
        }
    }

    /// Opens a dense array read-only as `T` (which must view its dtype).
    pub fn open_dense<T: Element>(&self, name: &str) -> Result<Dense<T>, OpenError> {
        self.open_dense_untyped(name)?.typed()
    }

    /// Opens a sparse array read-only.
    pub fn open_sparse(&self, name: &str) -> Result<SparseArray, OpenError> {
        match self.open_array(name)? {
            Array::Sparse(s) => Ok(s),
            other => Err(self.kind_mismatch(name, other.kind().name(), "sparse")),
        }
    }

    /// Opens a table read-only: record batches over the one map of its file in this process.
    pub fn open_table(&self, name: &str) -> Result<Table, OpenError> {
        match self.open_array(name)? {
            Array::Table(t) => Ok(t),
            other => Err(self.kind_mismatch(name, other.kind().name(), "table")),
        }
    }
}

/// The handle over a mapped generation (a table is decoded).
fn wrap(inner: Arc<ArrayInner>) -> Result<Array, OpenError> {
    Ok(match &inner.meta {
        ArrayMeta::Dense(d) => {
            let meta = d.clone();
            Array::Dense(DenseArray { inner, meta })
        }
        ArrayMeta::Sparse(s) => {
            let meta = s.clone();
            Array::Sparse(SparseArray { inner, meta })
        }
        ArrayMeta::Table(_) => Array::Table(Table {
            inner: Arc::new(TableInner::decode(inner)?),
        }),
    })
}
