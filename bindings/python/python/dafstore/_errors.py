"""The exceptions dafstore raises.

Every error of the engine arrives as an instance of one of these classes, with the engine's own
message (which names the path or array concerned, what is wrong and what to do). All derive from
:class:`DafstoreError`; each also derives from the built-in exception it corresponds to, so
``except FileNotFoundError`` or ``except ValueError`` work as one would expect. OS failures set
``errno``.

Where the engine's message advises a ``dafctl`` command that has a Python equivalent, the message
names the Python call instead (``c.fsck()``, ``c.ls()``, ``dafstore.open(path, read_only=True)``...;
see ``_PYTHON_ADVICE``). Advice with no Python equivalent (rebuilding a missing or damaged catalog
with ``dafctl fsck --repair DIR``, ``dafctl adopt``) is kept as it is.

This module imports nothing else of dafstore: the extension module looks the classes up here.
"""

from __future__ import annotations

import re

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
    "ContainerClosedError",
    "NoSpaceError",
    "CorruptArrayError",
    "UnsupportedVersionError",
    "UnsupportedFileSystemError",
    "CatalogError",
    "InteropError",
    "DafstoreOSError",
]


# The engine's messages still carry its command-line advice (issue 15: the engine is to keep CLI
# wording in the CLI). Until it does, the advice that has a Python equivalent is reworded here, in
# the one place every engine error passes through on its way to Python. Each pattern matches the
# engine's exact wording; when that wording changes, the pattern no longer matches and the message
# is passed through unchanged (tests/test_errors.py checks the reachable ones).
_PYTHON_ADVICE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        # engine/src/error.rs, OpenError::NotFound
        (r"`dafctl ls` lists the arrays", "`c.ls()` lists the arrays"),
        # CatalogError::Sqlite ("if it persists run `dafctl fsck`"), OpenError::SizeMismatch
        (r"run `dafctl fsck`", "run `c.fsck()`"),
        # CatalogError::CorruptRow. Not the catalog rebuild (`dafctl fsck --repair DIR`, with a
        # path): that needs the container closed by every process, which a Python handle is not.
        (r"run `dafctl fsck --repair`", "run `c.fsck(repair=True)`"),
        # CatalogError::NoSpace, WriteError::NoSpace
        (r"remove arrays with `dafctl rm`", "remove arrays with `c.remove(name)`"),
        # WriteError::NoSpace: holes are `reserve=False` in Python
        (r"or create with holes \(risk:", "or create with holes (`reserve=False`; risk:"),
        # CatalogError::NotWritable
        (
            r"open the container read-only \(`Container::open_read_only`; dafctl ls, info, refs, "
            r"export and fsck without --repair do\)",
            "open the container read-only (`dafstore.open(path, read_only=True)`)",
        ),
        # ContainerError::NotAContainer
        (
            r"create one with `dafctl init`, or run `dafctl adopt` on a daf directory",
            "create one with `dafstore.create(path)`, or run `dafctl adopt DIR` on a daf "
            "directory",
        ),
    )
)


def _python_advice(message: str) -> str:
    """``message`` with the engine's command-line advice reworded as the Python call to make."""
    if "dafctl" in message or "Container::" in message:
        for pattern, replacement in _PYTHON_ADVICE:
            message = pattern.sub(replacement, message)
    return message


class DafstoreError(Exception):
    """Base class of every error dafstore raises."""

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (_python_advice(args[0]), *args[1:])
        super().__init__(*args)


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
