"""The exceptions dafstore raises.

Every error of the engine arrives as an instance of one of these classes, with the engine's own
message (which names the path or array concerned, what is wrong and what to do). All derive from
:class:`DafstoreError`; each also derives from the built-in exception it corresponds to, so
``except FileNotFoundError`` or ``except ValueError`` work as one would expect. OS failures set
``errno``.

Where the engine names a remedy (``remedy`` attribute), the message ends with it as the Python
call to make (``c.fsck()``, ``c.ls()``, ``dafstore.open(path, read_only=True)``...; see
``_PYTHON_REMEDY``).

This module imports nothing else of dafstore: the extension module looks the classes up here.
"""

from __future__ import annotations

__all__ = [
    "DafstoreError",
    "ArrayNotFoundError",
    "NotAContainerError",
    "DafstoreFileNotFoundError",
    "ContainerExistsError",
    "NameConflictError",
    "InvalidNameError",
    "InvalidArrayError",
    "UnsupportedDtypeError",
    "KindMismatchError",
    "DtypeMismatchError",
    "ReadOnlyError",
    "DafstorePermissionError",
    "NotHeldError",
    "LoadTimeoutError",
    "ContainerClosedError",
    "NoSpaceError",
    "CorruptArrayError",
    "UnsupportedVersionError",
    "UnsupportedFileSystemError",
    "CatalogError",
    "InteropError",
    "DafstoreOSError",
]


# What to do about an error, as the Python call to make, by the engine's remedy (`dafstore::Remedy`,
# passed by the extension). The engine's message names it in neutral words; this is appended.
_PYTHON_REMEDY: dict[str, str] = {
    "check": "`c.fsck()` reports what is wrong",
    "repair": (
        "`c.fsck(repair=True)` repairs what it can; a missing or damaged catalog is rebuilt from "
        "the array files by `dafctl fsck --repair DIR` while no process has the container open"
    ),
    "free_space": "remove arrays with `c.remove(name)`, or write with `reserve=False` (holes)",
    "list": "`c.ls()` lists the arrays",
    "create_or_adopt": (
        "`dafstore.create(path)` makes a container; `dafctl adopt DIR` adopts a daf directory"
    ),
    "open_read_only": "open it with `dafstore.open(path, read_only=True)`",
}


class DafstoreError(Exception):
    """Base class of every error dafstore raises."""

    #: What to do about it, as the engine names it ("check", "repair", "free_space", "list",
    #: "create_or_adopt", "open_read_only"), or None; the message ends with the Python call.
    remedy: str | None

    def __init__(self, *args: object, remedy: str | None = None) -> None:
        advice = _PYTHON_REMEDY.get(remedy) if remedy else None
        if advice and args and isinstance(args[0], str):
            args = (f"{args[0]}; {advice}", *args[1:])
        super().__init__(*args)
        self.remedy = remedy


class ArrayNotFoundError(DafstoreError, FileNotFoundError, KeyError):
    """No live array of that name (never published, removed, or being removed). Also a
    ``KeyError``, as ``c[name]`` on the container's mapping interface raises it."""


class NotAContainerError(DafstoreError, FileNotFoundError):
    """The directory does not exist or is not a dafstore container (no ``.dafstore/``)."""


class DafstoreFileNotFoundError(DafstoreError, FileNotFoundError):
    """A file given to import/export does not exist."""


class ContainerExistsError(DafstoreError, FileExistsError):
    """``dafstore.create(path)`` on a directory that already is a container."""


class NameConflictError(DafstoreError, FileExistsError):
    """The array name collides with an existing file or directory in the container."""


class InvalidNameError(DafstoreError, ValueError):
    """The array name breaks the naming rules (empty, ``..``, leading ``.``, too long...)."""


class InvalidArrayError(DafstoreError, ValueError):
    """The data given cannot be stored as it is: a broken sparse invariant, a bool byte other
    than 0 or 1, a shape that does not match the data or overflows."""


class UnsupportedDtypeError(DafstoreError, TypeError):
    """A dtype dafstore does not store (complex, strings, objects, datetimes...)."""


class KindMismatchError(DafstoreError, TypeError):
    """A dense array opened as sparse, or the reverse (or exported to the other kind's format)."""


class DtypeMismatchError(DafstoreError, TypeError):
    """The array holds another dtype than the one asked for."""


class ReadOnlyError(DafstoreError, PermissionError):
    """A change asked of a container opened read-only."""


class DafstorePermissionError(DafstoreError, PermissionError):
    """The operating system refused access (EACCES, EPERM, EROFS): also a read-write open of a
    container on a read-only file system or without write permission (open it with
    ``dafstore.open(path, read_only=True)``)."""


class NotHeldError(DafstoreError, RuntimeError):
    """``release`` of an array this process holds no reference on."""


class LoadTimeoutError(DafstoreError, TimeoutError):
    """``open_or_load(..., timeout=)`` gave up waiting for another process's load (the message
    names that process and the name it is loading)."""


class ContainerClosedError(DafstoreError, ValueError):
    """An operation on a container handle after ``close()``."""


class NoSpaceError(DafstoreError, OSError):
    """Not enough space to reserve the array (ENOSPC), reported at create, never as a SIGBUS."""


class CorruptArrayError(DafstoreError, OSError):
    """Files on disk disagree with their metadata (changed outside dafstore); ``c.fsck()``
    reports what is wrong."""


class UnsupportedVersionError(DafstoreError, OSError):
    """Written by a newer dafstore (format or catalog schema); upgrade dafstore."""


class UnsupportedFileSystemError(DafstoreError, OSError):
    """The container is on a network file system (NFS, SMB, FUSE...), where it is not safe."""


class CatalogError(DafstoreError, OSError):
    """The SQLite catalog failed. A missing or damaged catalog says so: ``dafctl fsck --repair
    DIR`` rebuilds it from the array files (with no process having the container open, so there
    is no Python call for it: ``c.fsck(repair=True)`` runs with a handle open)."""


class InteropError(DafstoreError, ValueError):
    """An import or export file is not valid, or not representable (nulls, strings...)."""


class DafstoreOSError(DafstoreError, OSError):
    """Any other operating-system failure; ``errno`` is set."""
