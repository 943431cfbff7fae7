//! One error type for every operation ([`Error`]), so a caller can use `?` across them, and the
//! lookup of an error's [`Remedy`] through its chain.

use crate::error::{
    CatalogError, ContainerError, IoError, LoadError, MetaError, NameError, OpenError, PathError,
    Remedy, SparseError, WriteError,
};

/// Any error of this crate, so a caller can use `?` across operations (open, write, remove,
/// import …) and still match the operation's own error inside.
///
/// ```
/// use dafstore::{Container, Error, Remedy, WriteError};
/// fn publish_then_remove(dir: &std::path::Path) -> dafstore::Result<()> {
///     let c = Container::create(dir)?; // ContainerError
///     c.write_dense::<f64>("x", &[2], &[1.0, 2.0])?; // WriteError
///     assert_eq!(c.open_dense::<f64>("x")?[1], 2.0); // OpenError
///     c.remove("y")?; // no such array
///     Ok(())
/// }
/// let dir = tempfile::tempdir()?;
/// let e = publish_then_remove(&dir.path().join("c")).unwrap_err();
/// assert!(matches!(e, Error::Write(WriteError::NotFound { .. })));
/// assert_eq!(e.remedy(), Some(Remedy::List));
/// // Through a `Box<dyn Error>` too, as a front end sees it.
/// let boxed: Box<dyn std::error::Error> = Box::new(e);
/// assert_eq!(Remedy::of(boxed.as_ref()), Some(Remedy::List));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Creating or opening a container, gc, recovery.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// Opening an array.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Writing, publishing, removing, releasing.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The catalog.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// An array name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Metadata.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Sparse structure.
    #[error(transparent)]
    Sparse(#[from] SparseError),
    /// A path under the container.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A file system call.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Importing or exporting a file.
    #[error(transparent)]
    Interop(#[from] crate::interop::InteropError),
    /// Open or load: the lock, a timeout, a loader that published nothing.
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl Error {
    /// What to do about it, if anything.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            Error::Container(e) => e.remedy(),
            Error::Open(e) => e.remedy(),
            Error::Write(e) => e.remedy(),
            Error::Catalog(e) => e.remedy(),
            Error::Load(e) => e.remedy(),
            _ => None,
        }
    }
}

/// A result whose error is any error of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Remedy {
    /// The remedy of the first error in `e`'s chain (itself, then its sources) that names one.
    pub fn of(e: &(dyn std::error::Error + 'static)) -> Option<Remedy> {
        let mut cur = Some(e);
        while let Some(e) = cur {
            let r = if let Some(e) = e.downcast_ref::<Error>() {
                e.remedy()
            } else if let Some(e) = e.downcast_ref::<CatalogError>() {
                e.remedy()
            } else if let Some(e) = e.downcast_ref::<ContainerError>() {
                e.remedy()
            } else if let Some(e) = e.downcast_ref::<OpenError>() {
                e.remedy()
            } else if let Some(e) = e.downcast_ref::<WriteError>() {
                e.remedy()
            } else {
                None
            };
            if r.is_some() {
                return r;
            }
            cur = e.source();
        }
        None
    }
}
