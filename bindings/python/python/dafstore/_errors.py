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

from dataclasses import dataclass
from typing import Any, Iterator, Optional

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
    "CapacityError",
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
    # The bindings' own (the engine names no remedy for a capacity shortfall).
    "make_room": (
        "`c.holders()` shows who holds what; `c.set_capacity(size)` raises the capacity; "
        "`c.wait_for_room(seconds)` makes this process's writes wait for room"
    ),
}


class DafstoreError(Exception):
    """Base class of every error dafstore raises."""

    #: What to do about it, as the engine names it ("check", "repair", "free_space", "list",
    #: "create_or_adopt", "open_read_only"; "make_room" for a CapacityError), or None; the
    #: message ends with the Python call.
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


@dataclass(frozen=True)
class HoldingSession:
    """A session holding an ``Occupant`` and its process id (None when unknown; the engine's
    ``HoldingSession``). Unpacks as ``session, pid`` (it was a tuple before)."""

    session: str
    pid: Optional[int]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.session, self.pid))


@dataclass(frozen=True)
class Occupant:
    """An entry eviction could not take (``CapacityError.largest``): held, persistent or scratch
    (the engine's ``Occupant``). ``holders``: a ``HoldingSession`` for each session holding it,
    empty when nobody holds it."""

    name: str
    bytes: int
    lifecycle: str
    holders: tuple[HoldingSession, ...]


class CapacityError(NoSpaceError):
    """A write does not fit under the container's capacity (``c.set_capacity``) or its free
    space floor (``c.set_min_free``) even after evicting every cached entry nobody holds: nothing
    was published. Also a ``NoSpaceError`` (``errno`` ENOSPC). The message names the largest
    entries that could not be evicted and the processes holding them; the numbers are attributes
    (bytes; None when the engine did not report them): ``name`` (the entry being written),
    ``needed`` (what the write needed on top of what it had reserved), ``capacity``,
    ``min_free``, ``used`` (entries and reservations counted against the capacity), ``reserved``
    (of ``used``: writes in flight), ``evictable`` (what evicting every unreferenced cached entry
    would free), ``fs_free`` (free on the file system, with a ``min_free``) and ``largest``
    (``Occupant`` s, largest first)."""

    name: Optional[str]
    needed: Optional[int]
    capacity: Optional[int]
    min_free: Optional[int]
    used: Optional[int]
    reserved: Optional[int]
    evictable: Optional[int]
    fs_free: Optional[int]
    largest: tuple[Occupant, ...]

    def __init__(
        self, *args: object, remedy: Optional[str] = None,
        details: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__(*args, remedy=remedy)
        d = details or {}
        limits = d.get("limits") or {}
        self.name = d.get("name")
        self.needed = d.get("needed")
        self.capacity = limits.get("capacity")
        self.min_free = limits.get("min_free")
        self.used = d.get("used")
        self.reserved = d.get("reserved")
        self.evictable = d.get("evictable")
        self.fs_free = d.get("fs_free")
        # The engine's keys exactly (an unknown one is a TypeError: the package and its native
        # module disagree).
        self.largest = tuple(
            Occupant(**{**o, "holders": tuple(HoldingSession(**h) for h in o.get("holders", ()))})
            for o in d.get("largest") or ()
        )


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
