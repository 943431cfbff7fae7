//! Mutex locking that survives a panic elsewhere (layer 0, beside `error` and `failpoint`).

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking the data of a poisoned lock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every structure behind these mutexes stays consistent across a panic (single statements).
    m.lock().unwrap_or_else(|e| e.into_inner())
}
