"""The named POSIX shared-memory segment: create, attach, unlink, the writer lock, the list of
segments left behind and the identity page.


Shared memory is created with ``_posixshmem`` (the module behind
``multiprocessing.shared_memory``) rather than ``SharedMemory``, because the latter registers the
segment with multiprocessing's resource tracker, which unlinks it when the application dies:
exactly when the writer still needs it to deliver what was accepted.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import secrets
from typing import Final

try:  # POSIX only; the same module multiprocessing.shared_memory uses.
    import _posixshmem
except ImportError as exc:  # pragma: no cover - Windows
    raise ImportError("automagik_telemetry's shared-memory ring needs a POSIX system") from exc


from .layout import (
    HEADER_BYTES,
    IDENTITY_MAX,
    IDENTITY_OFFSET,
    KINDS,
    MAGIC,
    SEGMENT_PREFIX,
    SHM_DIRECTORY,
    Slot,
    check_capacity,
)

# --- the shared segment -------------------------------------------------------------------

# Map the segment's pages at once: a first-touch page fault costs ~14 µs in the VMs we run on
# (measured), which would land on track calls one page at a time; populating 16 MiB up front
# costs ~20 ms at construction and ~2 ms for the writer attaching to it.
_MAP_FLAGS: Final = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)


class SharedSegment:
    """A named POSIX shared-memory segment mapped into this process."""

    def __init__(self, name: str, size: int, *, create: bool) -> None:
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = _posixshmem.shm_open("/" + name, flags, mode=0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            else:
                size = os.fstat(fd).st_size
            self.mmap = mmap.mmap(fd, size, flags=_MAP_FLAGS)
        except BaseException:
            os.close(fd)
            if create:
                _posixshmem.shm_unlink("/" + name)
            raise
        os.close(fd)
        self.name = name
        self.size = size

    @classmethod
    def create(cls, size: int, prefix: str = SEGMENT_PREFIX) -> SharedSegment:
        name = f"{prefix}-{os.getpid()}-{secrets.token_hex(4)}"
        return cls(name, size, create=True)

    @classmethod
    def attach(cls, name: str) -> SharedSegment:
        return cls(name, 0, create=False)

    def close(self) -> None:
        """Unmap. Views handed out must be released first (``release()`` on the ring does)."""
        if self.mmap.closed:
            return
        with contextlib.suppress(BufferError):  # a view is alive: it goes with the process
            self.mmap.close()

    def unlink(self) -> bool:
        return unlink_segment(self.name)


def unlink_segment(name: str) -> bool:
    """Remove a segment by name; True if it existed."""
    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        return False
    return True


def create_segment(capacity: int, identity: bytes = b"") -> SharedSegment:
    """Create and initialise a segment with one ring of ``capacity`` bytes per signal, and
    ``identity`` in its identity page (left empty when it does not fit)."""
    check_capacity(capacity)
    segment = SharedSegment.create(HEADER_BYTES + len(KINDS) * capacity)
    words = memoryview(segment.mmap)[:HEADER_BYTES].cast("Q")
    words[Slot.CAPACITY] = capacity
    words[Slot.PRODUCER_PID] = os.getpid()
    if len(identity) <= IDENTITY_MAX:
        segment.mmap[IDENTITY_OFFSET : IDENTITY_OFFSET + len(identity)] = identity
        words[Slot.IDENTITY_LEN] = len(identity)
    words[Slot.MAGIC] = MAGIC
    words.release()
    return segment


# --- segments left behind ------------------------------------------------------------------


def lock_segment(name: str) -> int | None:
    """An open descriptor of the segment holding its writer lock (``flock``, exclusive), or
    None when a live writer holds it (or the segment is gone or not ours to open). Every writer
    holds this lock for its whole life, and the kernel drops it when the writer dies, however
    it dies: a segment whose lock is free has no writer."""
    try:
        fd = os.open(os.path.join(SHM_DIRECTORY, name), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def segment_names() -> list[str]:
    """Names of this package's segments in the shared-memory directory (none where the
    system keeps it elsewhere)."""
    try:
        names = os.listdir(SHM_DIRECTORY)
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(SEGMENT_PREFIX + "-"))


def read_identity(fd: int) -> tuple[int, bytes] | None:
    """(producer pid, identity) of a segment opened as ``fd``, or None when it is not a segment
    of this layout."""
    try:
        header = os.pread(fd, HEADER_BYTES, 0)
    except OSError:
        return None
    if len(header) < HEADER_BYTES:
        return None
    words = memoryview(header[:IDENTITY_OFFSET]).cast("Q")
    if words[Slot.MAGIC] != MAGIC:
        return None
    length = min(int(words[Slot.IDENTITY_LEN]), IDENTITY_MAX)
    return int(words[Slot.PRODUCER_PID]), header[IDENTITY_OFFSET : IDENTITY_OFFSET + length]
