"""A bounded on-disk spool of batches that could not be delivered.

The writer puts a batch here, as the ring's rows (LZ4-framed by the writer) with its
deduplication token, whenever it cannot leave soon enough (the destination is down, slow, or
asks for a pause), so that the ring can move on: the application is never blocked by an
outage and nothing it tracked is lost. Batches are replayed oldest first as soon as the sink
answers again, and deleted only after the sink acknowledged them. A batch still in flight can
be kept here too, *claimed* by its writer from the start (``put_claimed``): nobody replays it
unless its send fails (``release``) or its writer dies.

One directory per destination (several applications may share it: their writers all replay what
is there). One file per batch, named ``<time_ns>-<pid>-<kind>.batch`` (names sort oldest first),
written to a temporary name, fsynced, then renamed: a crash leaves either the whole file or none.
A writer claims a file before sending it by renaming it to ``….claimed-<pid>``, so two writers
never send the same batch; a claim whose process is gone is released at start-up. A file holds a
JSON header line (kind, rows, token, content encoding, body length, CRC-32 and the batch's
origin: the shared columns of the process that tracked it) and the body. A
file that does not parse or whose CRC does not match is moved to ``corrupt/`` with one log line;
it never stops the writer.

The spool is bounded (``max_bytes``). When a batch does not fit, the policy decides: keep the
oldest batches and drop the new one (``drop_newest``, the default: what is spooled is already
promised to nobody but is older, hence more likely to matter for a gap), or drop the oldest
until it fits (``drop_oldest``). Every drop is counted (rows and batches) for ``get_status()``.
A write the disk refuses (ENOSPC, EIO, a read-only directory) is not a drop: ``put`` says
``Stored.FAILED``, nothing already spooled is touched, and the caller keeps the batch.
Credentials are never written: a replayed batch gets the sink's current URL and headers.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from .processes import process_alive

log = logging.getLogger("automagik_telemetry.spool")

SUFFIX: Final = ".batch"
# Claims this process holds now, whichever Spool object made them: a claim with this process's
# pid that is not here was left by an earlier process that had the same pid.
_CLAIMED_HERE: set[str] = set()
FORMAT_VERSION: Final = 1


class SpoolHeader(msgspec.Struct, frozen=True):
    version: int
    kind: int
    rows: int
    token: str
    encoding: str  # Content-Encoding of the body, "" when uncompressed
    length: int
    crc32: int
    #: the batch's origin (``Sink.origin``): the shared columns or resource of the process that
    #: tracked its rows, so a batch replayed by another process keeps them; "" in files
    #: written before it was kept (replayed with the replaying writer's own)
    origin: str = ""


class Stored(enum.Enum):
    STORED = "stored"
    FULL = "full"  # no room under max_bytes: dropped by the policy, counted
    FAILED = "failed"  # the disk refused the write: not counted as a drop, the caller keeps it


@dataclass(frozen=True)
class SpoolLevel:
    """What the spool holds now: batch files (claimed ones included), their bytes, and the
    time_ns in the name of the oldest (0 when empty)."""

    batches: int
    bytes: int
    oldest_ns: int


@dataclass(frozen=True)
class SpooledBatch:
    path: Path
    header: SpoolHeader
    body: bytes


@dataclass
class SpoolStats:
    batches_written: int = 0
    rows_written: int = 0
    batches_dropped: int = 0
    rows_dropped: int = 0
    corrupt_files: int = 0


class Spool:
    def __init__(self, directory: str | os.PathLike[str], max_bytes: int, policy: str) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.policy = policy
        self.stats = SpoolStats()
        self._pid = os.getpid()
        self._last_name = 0
        self._ready = False
        self.last_error: OSError | None = None  # the last write the disk refused

    def _open(self) -> None:
        """Create the directory; release what writers that are gone left claimed."""
        if self._ready:
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in self.directory.glob("*.claimed-*"):
            owner = int(path.name.rsplit("-", 1)[1] or 0)
            mine = owner == self._pid and str(path) not in _CLAIMED_HERE
            if mine or not process_alive(owner):
                os.replace(path, path.with_name(path.name.split(".claimed-")[0]))
        for stale in self.directory.glob("*.tmp-*"):
            owner = int(stale.name.rsplit("-", 1)[1] or 0)
            if not process_alive(owner):
                stale.unlink(missing_ok=True)
        self._ready = True

    def _entries(self, *, claimed: bool = False) -> list[os.DirEntry[str]]:
        """Batch files (and, with ``claimed``, those a writer is replaying)."""
        with os.scandir(self.directory) as it:
            return [
                e for e in it
                if (e.name.endswith(SUFFIX) or (claimed and ".claimed-" in e.name))
                and e.is_file()
            ]  # fmt: skip

    @property
    def used_bytes(self) -> int:
        """Bytes of every batch file, including those being replayed: they are still here."""
        self._open()
        total = 0
        for entry in self._entries(claimed=True):
            with contextlib.suppress(FileNotFoundError):
                total += entry.stat().st_size
        return total

    def __len__(self) -> int:
        self._open()
        return len(self._entries())

    def put(
        self, kind: int, rows: int, token: str, encoding: str, body: bytes, origin: str = ""
    ) -> bool:
        """Write a batch durably. False when it was not kept (spool full and drop_newest,
        counted as a drop, or the disk refused it: see ``store``)."""
        return self.store(kind, rows, token, encoding, body, origin=origin)[0] is Stored.STORED

    def put_claimed(
        self, kind: int, rows: int, token: str, encoding: str, body: bytes, origin: str = ""
    ) -> tuple[Stored, SpooledBatch | None]:
        """Write a batch durably, already claimed by this process: a copy of a batch still in
        flight, replayed by nobody unless released (or its process dies)."""
        return self.store(kind, rows, token, encoding, body, claimed=True, origin=origin)

    def store(
        self, kind: int, rows: int, token: str, encoding: str, body: bytes, *,
        claimed: bool = False, origin: str = "",
    ) -> tuple[Stored, SpooledBatch | None]:  # fmt: skip
        """Write a batch durably (temporary file, fsync, rename, fsync of the directory)."""
        try:
            self._open()
        except OSError as exc:
            log.debug("cannot open the spool at %s: %s", self.directory, exc)
            return Stored.FAILED, None
        header = SpoolHeader(FORMAT_VERSION, kind, rows, token, encoding, len(body),
                             zlib.crc32(body), origin)  # fmt: skip
        head = msgspec.json.encode(header) + b"\n"
        size = len(head) + len(body)
        if not self._make_room(size):
            if not claimed:  # a claimed copy is of a batch still in flight: nothing is lost
                self._count_drop(rows)
            return Stored.FULL, None
        name = max(time.time_ns(), self._last_name + 1)
        self._last_name = name
        path = self.directory / f"{name:020d}-{self._pid}-{kind}{SUFFIX}"
        final = path.with_name(f"{path.name}.claimed-{self._pid}") if claimed else path
        temporary = path.with_name(f"{path.name}.tmp-{self._pid}")
        try:
            with open(temporary, "wb") as out:
                out.write(head)
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
            if claimed:
                _CLAIMED_HERE.add(str(final))
            _fsync_directory(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            self.last_error = exc
            log.debug("cannot spool a batch of %d rows to %s: %s", rows, self.directory, exc)
            return Stored.FAILED, None
        self.stats.batches_written += 1
        self.stats.rows_written += rows
        return Stored.STORED, SpooledBatch(final, header, body)

    def level(self) -> SpoolLevel:
        """Batches and bytes in the spool now, and the age of the oldest (one directory scan)."""
        try:
            self._open()
            entries = self._entries(claimed=True)
        except OSError:
            return SpoolLevel(0, 0, 0)
        total = 0
        oldest = 0
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                total += entry.stat().st_size
            stamp = entry.name.split("-", 1)[0]
            if stamp.isdigit() and (not oldest or int(stamp) < oldest):
                oldest = int(stamp)
        return SpoolLevel(len(entries), total, oldest)

    def _make_room(self, size: int) -> bool:
        used = self.used_bytes
        if used + size <= self.max_bytes:
            return True
        if self.policy != "drop_oldest" or size > self.max_bytes:
            return False
        # Batches being replayed cannot be dropped: if what is left cannot make the room,
        # drop nothing old for a batch that would not fit anyway.
        droppable = 0
        for entry in self._entries():
            with contextlib.suppress(FileNotFoundError):
                droppable += entry.stat().st_size
        if used - droppable + size > self.max_bytes:
            return False
        for entry in sorted(self._entries(), key=lambda e: e.name):
            if used + size <= self.max_bytes:
                break
            try:
                entry_size = entry.stat().st_size
            except FileNotFoundError:  # replayed by another writer meanwhile
                continue
            path = self._claim(Path(entry.path))
            if path is None:
                continue
            batch = self._read(path)
            self._count_drop(batch.header.rows if batch else 0)
            used -= entry_size
            self.remove(path)
        return used + size <= self.max_bytes

    def _count_drop(self, rows: int) -> None:
        self.stats.batches_dropped += 1
        self.stats.rows_dropped += rows

    def _claim(self, path: Path) -> Path | None:
        claimed = path.with_name(f"{path.name}.claimed-{self._pid}")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:  # another writer took it
            return None
        _CLAIMED_HERE.add(str(claimed))
        return claimed

    def take_oldest(self) -> SpooledBatch | None:
        """Claim the oldest readable batch (corrupt ones are moved aside on the way). Give it
        back with ``release`` if it could not be sent, or ``remove`` it once acknowledged."""
        self._open()
        for entry in sorted(self._entries(), key=lambda e: e.name):
            path = self._claim(Path(entry.path))
            if path is None:
                continue
            batch = self._read(path)
            if batch is not None:
                return batch
        return None

    def release(self, batch: SpooledBatch) -> None:
        os.replace(batch.path, batch.path.with_name(batch.path.name.split(".claimed-")[0]))
        _CLAIMED_HERE.discard(str(batch.path))

    def _read(self, path: Path) -> SpooledBatch | None:
        try:
            data = path.read_bytes()
            newline = data.index(b"\n")
            header = msgspec.json.decode(data[:newline], type=SpoolHeader)
            body = data[newline + 1 :]
            if header.version != FORMAT_VERSION or len(body) != header.length:
                raise ValueError("truncated or from another version")
            if zlib.crc32(body) != header.crc32:
                raise ValueError("checksum mismatch")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            self._quarantine(path, exc)
            return None
        return SpooledBatch(path, header, body)

    def _quarantine(self, path: Path, exc: Exception) -> None:
        corrupt = self.directory / "corrupt"
        corrupt.mkdir(exist_ok=True)
        name = path.name.split(".claimed-")[0]
        try:
            os.replace(path, corrupt / name)
        except OSError:
            path.unlink(missing_ok=True)
        self.stats.corrupt_files += 1
        log.warning("moved the unreadable spool file %s to %s: %s", name, corrupt, exc)

    def remove(self, path: Path) -> None:
        """Delete a batch the sink acknowledged."""
        path.unlink(missing_ok=True)
        _CLAIMED_HERE.discard(str(path))


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
