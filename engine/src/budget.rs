//! The cache's public side (SPEC 9.7): a container's limits (capacity, free space floor), what
//! its bytes are, eviction on demand, and how long writes wait for room.
//!
//! ```
//! use dafstore::{Container, CreateOptions, Lifecycle};
//! # let dir = tempfile::tempdir()?;
//! let c = Container::create(dir.path().join("c"))?;
//! c.set_capacity(Some(16))?; // bytes of data files, all entries together
//! let cached = CreateOptions::lifecycle(Lifecycle::Cached);
//! c.write_dense_bytes_with("a", dafstore::DType::UInt8, &[8], &[1; 8], &cached)?;
//! c.write_dense_bytes_with("b", dafstore::DType::UInt8, &[8], &[2; 8], &cached)?;
//! // Full: writing "c" evicts "a", the least recently released entry nobody holds.
//! c.write_dense_bytes_with("c", dafstore::DType::UInt8, &[8], &[3; 8], &cached)?;
//! assert_eq!(c.ls()?, ["b", "c"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use crate::catalog::Usage;
use crate::container::Container;
use crate::error::{CatalogError, WriteError};
use crate::format::lifecycle::Limits;

/// An entry [`Container::evict`] evicted, and the bytes of its data files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Evicted {
    /// The entry.
    pub name: String,
    /// Bytes of its data files.
    pub bytes: u64,
}

impl Container {
    /// The container's limits (SPEC 9.7).
    pub fn limits(&self) -> Result<Limits, CatalogError> {
        self.shared.catalog().limits()
    }

    /// Sets the capacity and the free space floor together (`None` clears one). Lowering the
    /// capacity below what is stored evicts nothing by itself: the next write evicts what it
    /// needs, and [`Container::evict`] trims now.
    pub fn set_limits(&self, limits: Limits) -> Result<(), WriteError> {
        self.shared.writable()?;
        Ok(self.shared.catalog().set_limits(limits)?)
    }

    /// Sets (or with `None` clears) the capacity: the most bytes the data files of all entries,
    /// and the staged files of writes in flight, may take together. Before a write would go
    /// over it, unreferenced `cached` entries are evicted, least recently released first; if
    /// that cannot make room, the write fails with [`WriteError::Capacity`].
    pub fn set_capacity(&self, capacity: Option<u64>) -> Result<(), WriteError> {
        let limits = self.limits()?;
        self.set_limits(Limits { capacity, ..limits })
    }

    /// Sets (or with `None` clears) the free space to keep on the file system: a write that
    /// would leave less evicts like one over the capacity (best effort: other programs share the
    /// file system; tmpfs fills silently).
    pub fn set_min_free(&self, min_free: Option<u64>) -> Result<(), WriteError> {
        let limits = self.limits()?;
        self.set_limits(Limits { min_free, ..limits })
    }

    /// The container's bytes: entries, reserved by writes in flight, evictable.
    pub fn usage(&self) -> Result<Usage, CatalogError> {
        let holds = crate::protocol::budget::LazyHolds::new(&self.shared);
        self.shared.catalog().usage(&holds)
    }

    /// Evicts unreferenced `cached` entries, least recently released first, until the container
    /// is within its limits (or nothing evictable is left); returns what went. `dafctl gc --evict`.
    pub fn evict(&self) -> Result<Vec<Evicted>, WriteError> {
        Ok(self
            .shared
            .trim()?
            .into_iter()
            .map(|(name, bytes)| Evicted { name, bytes })
            .collect())
    }

    /// How long writes through this container's handles in this process wait for room when
    /// the limits leave none (polling; entries are released by their holders meanwhile) before
    /// failing with [`WriteError::Capacity`]. `None` (the default): they fail at once.
    pub fn wait_for_room(&self, wait: Option<Duration>) {
        *crate::sync::lock(&self.shared.room_wait) = wait;
    }
}
