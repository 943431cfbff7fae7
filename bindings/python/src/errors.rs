//! Engine errors as Python exceptions. Each engine error is classified into one class of the
//! hierarchy defined in `dafstore/_errors.py` (one base, `DafstoreError`, with `FileNotFoundError`,
//! `ValueError`, `TypeError`, `OSError`… mixed in where they fit); the message is the engine's
//! own (`Display`) followed by its remedy worded as the Python call to make (the engine's
//! [`Remedy`], worded in `_errors.py`), and for OS failures `errno` is set. An error with numbers
//! to act on (a capacity shortfall) also passes them, as the engine serializes them, to the
//! class, which makes them attributes.

use std::fmt::Display;
use std::io;

use dafstore::{
    CatalogError, ContainerError, InteropError, LoadError, MetaError, NameError, OpenError,
    PathError, Remedy, WriteError,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

/// An exception class of `dafstore._errors` and the errno to set, if any.
pub(crate) struct Class {
    name: &'static str,
    errno: Option<i32>,
}

const fn class(name: &'static str) -> Class {
    Class { name, errno: None }
}

fn os(source: &io::Error) -> Class {
    match source.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) => Class {
            name: "NoSpaceError",
            errno: Some(libc::ENOSPC),
        },
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => Class {
            name: "DafstorePermissionError",
            errno: source.raw_os_error(),
        },
        errno => Class {
            name: "DafstoreOSError",
            errno,
        },
    }
}

/// How an engine error is classified.
pub(crate) trait Classify: Display {
    /// The exception class.
    fn class(&self) -> Class;

    /// What to do about it (the engine's [`Remedy`]), which `dafstore._errors` words as the
    /// Python call to make.
    fn remedy(&self) -> Option<Remedy> {
        None
    }

    /// The name `dafstore._errors` knows the remedy by: the engine's, or one of the bindings'
    /// own for an error the engine gives no [`Remedy`] but Python has calls for.
    fn python_remedy(&self) -> Option<&'static str> {
        self.remedy().and_then(remedy_name)
    }

    /// Structured details the exception class makes attributes of (`details=`), if any.
    fn details(&self) -> Option<serde_json::Value> {
        None
    }
}

/// The name `dafstore._errors` knows a remedy by.
fn remedy_name(r: Remedy) -> Option<&'static str> {
    Some(match r {
        Remedy::Check => "check",
        Remedy::Repair => "repair",
        Remedy::FreeSpace => "free_space",
        Remedy::List => "list",
        Remedy::CreateOrAdopt => "create_or_adopt",
        Remedy::OpenReadOnly => "open_read_only",
        _ => return None,
    })
}

impl Classify for NameError {
    fn class(&self) -> Class {
        class("InvalidNameError")
    }
}

impl Classify for PathError {
    fn class(&self) -> Class {
        match self {
            PathError::Link { .. }
            | PathError::WrongType { .. }
            | PathError::NestedContainer { .. } => class("CorruptArrayError"),
            PathError::WouldNest { .. } => class("ContainerExistsError"),
            PathError::ContainerRemoved { .. } => class("NotAContainerError"),
            PathError::TooLong { .. } => class("InvalidNameError"),
            PathError::Io(dafstore::IoError { source, .. }) => os(source),
            _ => class("DafstoreError"),
        }
    }
}

impl Classify for CatalogError {
    fn remedy(&self) -> Option<Remedy> {
        CatalogError::remedy(self)
    }

    fn class(&self) -> Class {
        match self {
            CatalogError::SchemaTooNew { .. } => class("UnsupportedVersionError"),
            CatalogError::NoSpace { .. } => Class {
                name: "NoSpaceError",
                errno: Some(libc::ENOSPC),
            },
            // A read-write open on a read-only file system or without write permission.
            CatalogError::NotWritable { source, .. } => os(source),
            _ => class("CatalogError"),
        }
    }
}

impl Classify for MetaError {
    fn class(&self) -> Class {
        let from_argument = |path: &std::path::Path| path == std::path::Path::new("<argument>");
        match self {
            MetaError::UnknownDtype { .. } => class("UnsupportedDtypeError"),
            MetaError::ShapeOverflow { path, .. } if from_argument(path) => {
                class("InvalidArrayError")
            }
            MetaError::Invalid { path, .. } if from_argument(path) => class("InvalidArrayError"),
            MetaError::UnsupportedVersion { .. } => class("UnsupportedVersionError"),
            // Metadata read from a file that is not what the spec says.
            _ => class("CorruptArrayError"),
        }
    }
}

impl Classify for ContainerError {
    fn remedy(&self) -> Option<Remedy> {
        ContainerError::remedy(self)
    }

    fn class(&self) -> Class {
        match self {
            ContainerError::Io(dafstore::IoError { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                class("NotAContainerError")
            }
            ContainerError::Io(dafstore::IoError { source, .. }) => os(source),
            ContainerError::NotAContainer { .. } => class("NotAContainerError"),
            ContainerError::AlreadyExists { .. } => class("ContainerExistsError"),
            ContainerError::Meta(e) => e.class(),
            ContainerError::Catalog(e) => e.class(),
            ContainerError::NetworkFileSystem { .. } => class("UnsupportedFileSystemError"),
            ContainerError::Path(e) => e.class(),
            _ => class("DafstoreError"),
        }
    }
}

impl Classify for OpenError {
    fn remedy(&self) -> Option<Remedy> {
        OpenError::remedy(self)
    }

    fn class(&self) -> Class {
        match self {
            OpenError::Name(e) => e.class(),
            OpenError::NotFound { .. } => class("ArrayNotFoundError"),
            OpenError::KindMismatch { .. } => class("KindMismatchError"),
            OpenError::DtypeMismatch { .. } => class("DtypeMismatchError"),
            OpenError::SizeMismatch { .. } | OpenError::NotRegularFile { .. } => {
                class("CorruptArrayError")
            }
            OpenError::Io(dafstore::IoError { source, .. }) => os(source),
            OpenError::Meta(e) => e.class(),
            OpenError::Catalog(e) => e.class(),
            OpenError::Recovery { source, .. } => source.class(),
            OpenError::ReadOnly { .. } => class("ReadOnlyError"),
            OpenError::Path(e) => e.class(),
            _ => class("DafstoreError"),
        }
    }
}

impl Classify for LoadError {
    fn remedy(&self) -> Option<Remedy> {
        LoadError::remedy(self)
    }

    fn class(&self) -> Class {
        match self {
            LoadError::Name(e) => e.class(),
            LoadError::Open(e) => e.class(),
            LoadError::Path(e) => e.class(),
            LoadError::ReadOnly { .. } => class("ReadOnlyError"),
            LoadError::Timeout { .. } => class("LoadTimeoutError"),
            _ => class("DafstoreError"),
        }
    }
}

impl Classify for WriteError {
    fn remedy(&self) -> Option<Remedy> {
        WriteError::remedy(self)
    }

    fn class(&self) -> Class {
        match self {
            WriteError::Name(e) => e.class(),
            WriteError::Meta(e) => e.class(),
            WriteError::Sparse { .. }
            | WriteError::LengthMismatch { .. }
            | WriteError::InvalidBool { .. }
            | WriteError::InvalidTable { .. } => class("InvalidArrayError"),
            WriteError::NoSpace { .. } => Class {
                name: "NoSpaceError",
                errno: Some(libc::ENOSPC),
            },
            // A `NoSpaceError` too: no room under the container's limits.
            WriteError::Capacity { .. } => Class {
                name: "CapacityError",
                errno: Some(libc::ENOSPC),
            },
            WriteError::NameConflict { .. } => class("NameConflictError"),
            WriteError::DuplicateInBatch { .. } => class("InvalidArrayError"),
            WriteError::NotFound { .. } => class("ArrayNotFoundError"),
            WriteError::NotHeld { .. } => class("NotHeldError"),
            WriteError::ReadOnly { .. } => class("ReadOnlyError"),
            WriteError::Io(dafstore::IoError { source, .. }) => os(source),
            WriteError::Catalog(e) => e.class(),
            WriteError::Path(e) => e.class(),
            _ => class("DafstoreError"),
        }
    }

    fn python_remedy(&self) -> Option<&'static str> {
        match self {
            WriteError::Capacity { .. } => Some("make_room"),
            _ => self.remedy().and_then(remedy_name),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            WriteError::Capacity {
                name, shortfall, ..
            } => {
                let mut d = serde_json::to_value(shortfall).ok()?;
                d.as_object_mut()?
                    .insert("name".to_string(), serde_json::Value::from(name.as_str()));
                Some(d)
            }
            _ => None,
        }
    }
}

impl Classify for InteropError {
    fn remedy(&self) -> Option<Remedy> {
        match self {
            InteropError::Open { source, .. } => source.remedy(),
            InteropError::Write { source, .. } => source.remedy(),
            _ => None,
        }
    }

    fn python_remedy(&self) -> Option<&'static str> {
        match self {
            InteropError::Open { source, .. } => source.python_remedy(),
            InteropError::Write { source, .. } => source.python_remedy(),
            _ => None,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            InteropError::Write { source, .. } => source.details(),
            _ => None,
        }
    }

    fn class(&self) -> Class {
        match self {
            InteropError::Io(dafstore::IoError { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                Class {
                    name: "DafstoreFileNotFoundError",
                    errno: Some(libc::ENOENT),
                }
            }
            InteropError::Io(dafstore::IoError { source, .. }) => os(source),
            InteropError::Open { source, .. } => source.class(),
            InteropError::Write { source, .. } => source.class(),
            InteropError::UnsupportedDtype { .. } => class("UnsupportedDtypeError"),
            InteropError::CannotExport { .. } => class("KindMismatchError"),
            _ => class("InteropError"),
        }
    }
}

/// A failure raised by the bindings themselves (not an engine error), classified by name.
pub(crate) struct Own {
    pub(crate) class: &'static str,
    pub(crate) message: String,
    pub(crate) errno: Option<i32>,
}

impl Display for Own {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Classify for Own {
    fn class(&self) -> Class {
        Class {
            name: self.class,
            errno: self.errno,
        }
    }
}

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The Python exception for `e`: an instance of its class in `dafstore._errors`, with the engine's
/// message, and `errno` set for OS failures.
pub(crate) fn to_py<E: Classify + ?Sized>(py: Python<'_>, e: &E) -> PyErr {
    let Class { name, errno } = e.class();
    let message = e.to_string();
    let remedy = e.python_remedy();
    let details = e.details();
    let build = || -> PyResult<PyErr> {
        let module =
            ERRORS.get_or_try_init(py, || py.import("dafstore._errors").map(|m| m.unbind()))?;
        let class = module.bind(py).getattr(name)?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("remedy", remedy)?;
        if let Some(details) = &details {
            kwargs.set_item("details", crate::report::to_python(py, details)?)?;
        }
        let instance = class.call((message.clone(),), Some(&kwargs))?;
        if let Some(errno) = errno {
            instance.setattr("errno", errno)?;
        }
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|_| PyRuntimeError::new_err(message.clone()))
}

/// `Result` of an engine call to `PyResult`.
pub(crate) trait OrRaise<T> {
    /// Converts the error into its Python exception.
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T, E: Classify> OrRaise<T> for Result<T, E> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}
