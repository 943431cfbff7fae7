//! Open or load (SPEC 9.6): [`Container::open_or_load`] opens an entry, or, if it is absent, lets
//! exactly one process of the host build and publish it while every other caller waits on the
//! name's load lock and then maps what was published.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::catalog::Lifecycle;
use crate::container::Container;
use crate::error::{LoadError, OpenError};
use crate::format::name::ArrayName;
use crate::open::Array;
use crate::protocol::load::{LoadGuard, Locked};

pub use crate::protocol::load::Loader;

/// A held load lock of a name ([`Container::lock_load`]); released when dropped. While it is
/// held, other processes' [`Container::open_or_load`] of the name wait, and a publish of the name
/// by this process takes the load's lifecycle (unless the write gives one) and this process's
/// reference with its `live` flip (SPEC [E6]); that reference is given back when the lock is
/// dropped, so open the entry before.
pub struct LoadLock {
    guard: LoadGuard,
    name: String,
    container: Container,
}

impl Drop for LoadLock {
    fn drop(&mut self) {
        if self.container.shared.end_loading(&self.name) {
            if let Ok(n) = ArrayName::new(&self.name) {
                let _ = self.container.shared.release(&n);
            }
        }
    }
}

impl LoadLock {
    /// The lock file (`.dafstore/locks/load-<h>.lock`, SPEC [L1]).
    pub fn path(&self) -> &Path {
        &self.guard.path
    }

    /// The name it is held for.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for LoadLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadLock")
            .field("name", &self.name)
            .field("path", &self.guard.path)
            .finish()
    }
}

/// How [`Container::open_or_load_with`] waits, and what it makes.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Give up with [`LoadError::Timeout`] (naming the loading process) after waiting this long
    /// for another process's load; `None` waits for as long as it takes (a loader that dies
    /// frees the lock at once, so waiting never outlives the loaders).
    pub timeout: Option<Duration>,
    /// The lifecycle of what the loader publishes when it does not give one (SPEC 9.7):
    /// [`Lifecycle::Cached`] by default, so that loaded inputs stay for the next user while
    /// they fit and are evicted when room is needed.
    pub lifecycle: Lifecycle,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            timeout: None,
            lifecycle: Lifecycle::Cached,
        }
    }
}

impl Container {
    /// Takes `name`'s load lock (SPEC [L2]), waiting for the process that holds it, at most
    /// `timeout` if given. The building block of [`Container::open_or_load`], for callers that
    /// fill a writer themselves: take it, check whether the name is live now, build and publish
    /// it if not, then drop the lock.
    pub fn lock_load(&self, name: &str, timeout: Option<Duration>) -> Result<LoadLock, LoadError> {
        self.lock_load_with(
            name,
            &LoadOptions {
                timeout,
                ..LoadOptions::default()
            },
        )
    }

    /// [`Container::lock_load`] with options: the timeout, and the lifecycle of what this
    /// process publishes under the name while it holds the lock (`cached` by default).
    pub fn lock_load_with(&self, name: &str, opts: &LoadOptions) -> Result<LoadLock, LoadError> {
        let timeout = opts.timeout;
        let n = ArrayName::new(name)?;
        if self.is_read_only() {
            return Err(LoadError::ReadOnly {
                container: self.root().to_path_buf(),
                name: name.to_string(),
            });
        }
        let start = Instant::now();
        let shared = &self.shared;
        match shared.lock_load(&n, timeout.map(|t| start + t))? {
            Locked::Held(guard) => {
                shared.begin_loading(name, opts.lifecycle);
                Ok(LoadLock {
                    guard,
                    name: name.to_string(),
                    container: self.clone(),
                })
            }
            Locked::TimedOut(loader) => Err(LoadError::Timeout {
                name: name.to_string(),
                path: shared.load_lock_path(&n),
                waited: start.elapsed(),
                loader: loader.map_or_else(|| "an unknown process".to_string(), |l| l.to_string()),
            }),
        }
    }

    /// Opens `name` (as [`Container::open_array`]: dense, sparse or table), or, if it is absent,
    /// builds it once for the whole host: exactly one caller, in any process, runs `loader`,
    /// which must publish `name` (with [`Container::write_dense`], `write_sparse`,
    /// `write_table`, or a writer's `publish`), while the other callers wait on the name's load
    /// lock and then open what it published (SPEC 9.6).
    ///
    /// A loader that fails: its caller gets the error and nothing is published; each waiter then
    /// tries itself (the next to get the lock runs its own loader). A loader that dies (SIGKILL)
    /// frees the lock with its process, and a waiter takes over at once. The lock is held until
    /// the entry is open, so a waiter never finds it absent in between. A loader must not call
    /// `open_or_load` (or [`Container::lock_load`]) of its own name in the same process: it would
    /// wait on itself.
    ///
    /// ```
    /// use dafstore::{Array, Container};
    /// let dir = tempfile::tempdir()?;
    /// let c = Container::create(dir.path().join("c"))?;
    /// let load = |c: &Container, name: &str| -> dafstore::Result<()> {
    ///     c.write_dense::<f64>(name, &[3], &[1.0, 2.0, 3.0])?; // e.g. read from slow storage
    ///     Ok(())
    /// };
    /// let a = c.open_or_load("inputs/day1", load)?; // absent: loaded here
    /// let b = c.open_or_load("inputs/day1", |_: &Container, _: &str| -> dafstore::Result<()> {
    ///     unreachable!("published: opened, not loaded")
    /// })?;
    /// assert!(matches!((a, b), (Array::Dense(_), Array::Dense(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_load<F, E>(&self, name: &str, loader: F) -> Result<Array, E>
    where
        F: FnOnce(&Container, &str) -> Result<(), E>,
        E: From<LoadError>,
    {
        self.open_or_load_with(name, &LoadOptions::default(), loader)
    }

    /// [`Container::open_or_load`] with options (a timeout).
    pub fn open_or_load_with<F, E>(
        &self,
        name: &str,
        opts: &LoadOptions,
        loader: F,
    ) -> Result<Array, E>
    where
        F: FnOnce(&Container, &str) -> Result<(), E>,
        E: From<LoadError>,
    {
        if let Some(a) = self.open_if_live(name)? {
            return Ok(a);
        }
        let lock = self.lock_load_with(name, opts)?;
        // [L2]: the process that held the lock before us may have published it.
        if let Some(a) = self.open_if_live(name)? {
            return Ok(a);
        }
        loader(self, name)?;
        // The loader's publish is held by this process from its `live` flip ([E6]); dropping
        // the lock gives that reference back, after this open took its own.
        let a = self
            .open_if_live(name)?
            .ok_or_else(|| LoadError::NotPublished {
                container: self.root().to_path_buf(),
                name: name.to_string(),
            })?;
        drop(lock);
        Ok(a)
    }

    /// Every load in progress in the container (SPEC [L3]): who holds which load lock.
    pub fn loads(&self) -> Result<Vec<Loader>, LoadError> {
        Ok(self.shared.loads()?)
    }

    fn open_if_live(&self, name: &str) -> Result<Option<Array>, LoadError> {
        match self.open_array(name) {
            Ok(a) => Ok(Some(a)),
            Err(OpenError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
