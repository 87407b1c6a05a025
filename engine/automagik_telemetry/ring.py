"""Single-producer / single-consumer rings of wire-ready rows, in POSIX shared memory.

One segment per producer process, holding one ring per signal (traces, metrics, logs). The
application's threads append rows (``RingWriter``, serialised by one ``threading.Lock``); the
writer process copies runs of rows out and sends them (``RingReader``). Between the two processes
there is no lock: every word has exactly one writer.

What a ring holds
-----------------
Rows back to back, each encoded once by the application thread: JSONEachRow lines (ClickHouse,
exactly as they go on the wire), or compact OTLP rows (``compact_rows``: a MessagePack array
after its length), or, from older versions, OTLP wire rows (JSON objects, protobuf fields). For
ClickHouse the writer's work per batch is one copy of a byte range, whatever the number of rows
(measured: iterating per-record headers and framing rows in Python cost ~3.5 µs per row here;
copying a range costs ~0.2 µs per row). OTLP spells every attribute out with its type, which is
Python work per attribute wherever it is done; the writer does it (``OtlpSink.prepare``), off the
application's thread and GIL. Row boundaries are known from the rows themselves (a newline ends
each JSON row: JSON encoders escape newlines inside strings; compact rows and protobuf fields
carry their length).

Segment layout (native-endian u64 words)::

    0        header page: segment words, then one 512-byte block per ring, each with the
             producer's words and the writer's words on separate 128-byte lines
    4096     identity page: the writer's settings without credentials (JSON), so that another
             client of the same destination can deliver what is left when the application and
             its writer both died (``client.AutomagikTelemetry._adopt_orphans``)
    8192     messages page: the writer's last MESSAGE_SLOTS messages for the application's log,
             one seqlock-protected slot each, so that messages close together are all relayed
    12288    ring of traces   (capacity bytes, a power of two; HEADER_BYTES = 12288)
    +cap     ring of metrics
    +2cap    ring of logs

Positions (``head``, ``tail``) count bytes since the ring was created; they only grow and are
masked with ``capacity - 1`` on use, so "full" and "empty" never look alike. A row never wraps:
when it does not fit before the end of the ring, the producer stores the position where the
unused end starts (``wrap_at``) and continues at offset 0 of the next lap. A window of at most
``capacity`` bytes contains at most one lap boundary, and its ``wrap_at`` cannot change while the
reader's window still contains it (the producer would need room past ``tail + capacity``).

Publication, and why the reader never sees a torn or stale row
---------------------------------------------------------------
The producer copies the row in, then stores ``wrap_at`` (when it wrapped), then the new ``head``.
The reader loads ``head`` first and only ever copies bytes below it. ``head`` and ``wrap_at`` are
aligned u64 stores (one instruction on x86-64 and aarch64), so they are never seen half written.

* x86-64 is total-store-order: stores become visible to other cores in program order and loads
  are not reordered with older loads, so a reader that sees the new ``head`` sees the row bytes
  and ``wrap_at`` stored before it. Each store is a separate call into the interpreter, so the C
  compiler cannot reorder them either.
* aarch64 (and other weakly ordered CPUs) may make stores visible out of order. There the
  producer issues a full fence between the row and ``head``, and the reader one between loading
  ``head`` and copying: ``_fence()`` releases and re-acquires an uncontended lock, and glibc's
  lock operations are acquire/release atomics, which together order every earlier access before
  every later one. On x86-64 the fence is skipped.

The producer never writes past ``tail + capacity``; ``tail`` moves only when the writer process
has delivered (or spooled) everything below it. A stale ``tail`` seen by the producer only makes
the ring look fuller than it is.

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
import platform
import secrets
import struct
import threading
from collections.abc import Callable
from typing import Final

try:  # POSIX only; the same module multiprocessing.shared_memory uses.
    import _posixshmem
except ImportError as exc:  # pragma: no cover - Windows
    raise ImportError("automagik_telemetry's shared-memory ring needs a POSIX system") from exc

# --- layout -------------------------------------------------------------------------------

HEADER_BYTES: Final = 12288
IDENTITY_OFFSET: Final = 4096
IDENTITY_MAX: Final = 4096
MESSAGES_OFFSET: Final = 8192  # the writer's last messages, one seqlocked slot each
MESSAGE_SLOTS: Final = 4
MESSAGE_BYTES: Final = 1024  # per slot: stamp, level, length (u64 each), then the text
MESSAGE_TEXT_MAX: Final = MESSAGE_BYTES - 24
MAGIC: Final = 0x34474E4952544741  # "AGTRING4" little-endian
SEGMENT_PREFIX: Final = "automagik-telemetry"
SHM_DIRECTORY: Final = "/dev/shm"  # where Linux keeps POSIX shared memory

KIND_TRACE: Final = 0
KIND_METRIC: Final = 1
KIND_LOG: Final = 2
KINDS: Final = (KIND_TRACE, KIND_METRIC, KIND_LOG)
KIND_NAMES: Final = ("traces", "metrics", "logs")

MIN_CAPACITY: Final = 64 * 1024
MAX_CAPACITY: Final = 1 << 32


class Slot:
    """Word indexes (u64) in the header page."""

    # segment-wide
    MAGIC: Final = 0
    CAPACITY: Final = 1
    PRODUCER_PID: Final = 16  # producer-written line
    SHUTDOWN: Final = 17  # 1: the producer asks the writer to drain and exit
    IDENTITY_LEN: Final = 18  # bytes of the identity page in use
    WRITER_PID: Final = 32  # writer-written line
    HEARTBEAT_NS: Final = 33
    ROWS_SENT: Final = 34
    BATCHES_SENT: Final = 35
    SEND_FAILURES: Final = 36
    RETRIES: Final = 37
    BYTES_WIRE: Final = 38
    BYTES_RAW: Final = 39
    ROWS_SPOOLED: Final = 40
    BATCHES_SPOOLED: Final = 41
    ROWS_DROPPED_WRITER: Final = 42  # rows the spool could not keep (full, disk error)
    SINK_STATE: Final = 43  # 0 unknown, 1 healthy, 2 retrying, 3 permanent error
    WRITER_STARTS: Final = 44
    SPOOL_CORRUPT: Final = 45
    ROWS_REJECTED: Final = 46  # rows the destination refused and nothing could keep
    ROWS_SET_ASIDE: Final = 47  # rows of batches the destination refused, kept on disk
    MESSAGE_COUNT: Final = 48  # messages the writer has published (see MESSAGES_OFFSET)
    # per ring: RING_BASE + kind * RING_STRIDE + offset
    RING_BASE: Final = 64
    RING_STRIDE: Final = 64
    HEAD: Final = 0  # producer line
    WRAP_AT: Final = 1
    FLUSH_REQUEST: Final = 3  # a head position the writer must deliver up to, now
    TAIL: Final = 16  # writer line
    DELIVERED: Final = 17  # position below which everything reached the sink itself
    CUTS: Final = 32  # writer: up to CUT_SLOTS (start + 1, end) pairs, see CutTable
    CUT_SLOTS: Final = 16

    @staticmethod
    def ring(kind: int, offset: int) -> int:
        return Slot.RING_BASE + kind * Slot.RING_STRIDE + offset


def max_row(capacity: int) -> int:
    """Largest row a ring of ``capacity`` bytes accepts (an eighth, as in Agrona)."""
    return capacity // 8


def check_capacity(capacity: int) -> None:
    if capacity < MIN_CAPACITY or capacity > MAX_CAPACITY or capacity & (capacity - 1):
        raise ValueError(
            f"ring capacity {capacity} is not allowed: it must be a power of two between "
            f"{MIN_CAPACITY} and {MAX_CAPACITY} bytes"
        )


# --- memory ordering ----------------------------------------------------------------------

_STRONGLY_ORDERED: Final = platform.machine().lower() in {"x86_64", "amd64", "i386", "i686", "x86"}
_fence_lock = threading.Lock()


def _fence() -> None:
    """Full memory barrier on weakly ordered CPUs (see the module docstring)."""
    _fence_lock.acquire()
    _fence_lock.release()


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


class _RingView:
    """What both ends share: the header words and the geometry."""

    def __init__(self, segment: SharedSegment) -> None:
        self.segment = segment
        self.mm = segment.mmap
        self.words = memoryview(segment.mmap)[:HEADER_BYTES].cast("Q")
        self._message_lock = threading.Lock()
        if self.words[Slot.MAGIC] != MAGIC:
            self.words.release()
            raise ValueError(f"shared segment {segment.name!r} is not an automagik ring")
        self.capacity = int(self.words[Slot.CAPACITY])
        self.mask = self.capacity - 1
        self.max_row = max_row(self.capacity)

    def release(self) -> None:
        self.words.release()

    def base(self, kind: int) -> int:
        """Byte offset of the ring of ``kind`` in the segment."""
        return HEADER_BYTES + kind * self.capacity

    def head(self, kind: int) -> int:
        return int(self.words[Slot.ring(kind, Slot.HEAD)])

    def tail(self, kind: int) -> int:
        return int(self.words[Slot.ring(kind, Slot.TAIL)])

    def delivered(self, kind: int) -> int:
        return int(self.words[Slot.ring(kind, Slot.DELIVERED)])

    def used_bytes(self) -> int:
        return sum(self.head(k) - self.tail(k) for k in KINDS)

    def read_messages(self, seen: int) -> tuple[int, list[tuple[int, str]]]:
        """(messages published so far, [(level, text)] of those after the first ``seen``).
        Each slot is a seqlock; a message overwritten before it was read is skipped (the last
        MESSAGE_SLOTS are always readable)."""
        words = self.words
        count = int(words[Slot.MESSAGE_COUNT])
        out: list[tuple[int, str]] = []
        for n in range(max(seen + 1, count - MESSAGE_SLOTS + 1), count + 1):
            offset = _message_offset(n)
            at = offset // 8
            for _ in range(100):
                stamp = int(words[at])
                if stamp != 2 * n:  # being rewritten for a later message: gone
                    break
                level = int(words[at + 1])
                length = min(int(words[at + 2]), MESSAGE_TEXT_MAX)
                raw = self.mm[offset + 24 : offset + 24 + length]
                if not _STRONGLY_ORDERED:
                    _fence()
                if int(words[at]) == stamp:
                    out.append((level, raw.decode("utf-8", "replace")))
                    break
        return count, out

    def write_message(self, level: int, text: str) -> None:
        """Publish a message (writer side; threads serialise on the message lock)."""
        # cut to the slot, at a character boundary
        raw = text.encode("utf-8")[:MESSAGE_TEXT_MAX].decode("utf-8", "ignore").encode("utf-8")
        words = self.words
        with self._message_lock:
            n = int(words[Slot.MESSAGE_COUNT]) + 1
            offset = _message_offset(n)
            at = offset // 8
            words[at] = 2 * n - 1  # odd: being written
            if not _STRONGLY_ORDERED:
                _fence()
            self.mm[offset + 24 : offset + 24 + len(raw)] = raw
            words[at + 1] = level
            words[at + 2] = len(raw)
            if not _STRONGLY_ORDERED:
                _fence()
            words[at] = 2 * n
            words[Slot.MESSAGE_COUNT] = n


def _message_offset(n: int) -> int:
    return MESSAGES_OFFSET + (n % MESSAGE_SLOTS) * MESSAGE_BYTES


class RingWriter(_RingView):
    """The producer end. Callers hold ``lock`` around ``put`` and ``appenders`` (the client
    does, since it encodes the row under the same lock); ``try_put`` takes it itself."""

    def __init__(self, segment: SharedSegment) -> None:
        super().__init__(segment)
        self.lock = threading.Lock()
        #: ``appenders[kind](row) -> bool``: the hot path, one closure per ring
        self.appenders = tuple(self._appender(kind) for kind in KINDS)

    def _appender(self, kind: int) -> Callable[[bytes | bytearray], bool]:
        """A closure that appends rows to one ring. Its state lives in closure cells, which
        Python reads faster than attributes: this is the one piece of code every track call
        runs (measured ~0.25 µs against ~0.5 µs as a method)."""
        mm = self.mm
        words = self.words
        capacity = self.capacity
        mask = self.mask
        limit = self.max_row
        base = self.base(kind)
        head_slot = Slot.ring(kind, Slot.HEAD)
        tail_slot = Slot.ring(kind, Slot.TAIL)
        wrap_slot = Slot.ring(kind, Slot.WRAP_AT)
        fence_needed = not _STRONGLY_ORDERED
        head = int(words[head_slot])
        tail = int(words[tail_slot])  # cached; re-read only when the ring looks full

        def append(row: bytes | bytearray) -> bool:
            nonlocal head, tail
            size = len(row)
            offset = head & mask
            if offset + size > capacity or head + size - tail > capacity or size > limit:
                if size > limit:
                    raise ValueError(f"a row of {size} bytes exceeds the ring's limit of {limit}")
                to_end = capacity - offset
                need = size if size <= to_end else to_end + size
                if head + need - tail > capacity:
                    tail = int(words[tail_slot])
                    if head + need - tail > capacity:
                        return False
                if size > to_end:  # skip the end of the lap: rows never wrap
                    words[wrap_slot] = head
                    head += to_end
                    offset = 0
            start = base + offset
            mm[start : start + size] = row
            if fence_needed:
                _fence()
            head += size
            words[head_slot] = head
            return True

        return append

    def put(self, kind: int, row: bytes | bytearray) -> bool:
        """Append one row (lock held). False when the ring has no room now (the caller applies
        the full-ring policy); ``ValueError`` when it never will."""
        return self.appenders[kind](row)

    def try_put(self, kind: int, row: bytes | bytearray) -> bool:
        with self.lock:
            return self.put(kind, row)

    def written_head(self, kind: int) -> int:
        return self.head(kind)

    def free_bytes(self, kind: int) -> int:
        return self.capacity - (self.head(kind) - self.tail(kind))


class RingReader(_RingView):
    """The consumer end, used by the writer process. Each ring's read position starts at its
    committed ``tail``."""

    def __init__(self, segment: SharedSegment) -> None:
        super().__init__(segment)
        self.positions = [self.tail(k) for k in KINDS]  # next byte to read, per ring

    def _lap_end(self, position: int) -> int:
        return (position | self.mask) + 1

    def _skip_padding(self, kind: int, position: int, head: int) -> int:
        """``position`` moved past the unused end of its lap, if it stands at it."""
        if position < head and position & self.mask:
            lap_end = self._lap_end(position)
            if lap_end <= head and int(self.words[Slot.ring(kind, Slot.WRAP_AT)]) == position:
                return lap_end
        return position

    def available(self, kind: int) -> tuple[int, int]:
        """(start, head): the published bytes of ``kind`` not read yet."""
        head = self.head(kind)
        if not _STRONGLY_ORDERED:
            _fence()
        start = self._skip_padding(kind, self.positions[kind], head)
        self.positions[kind] = start
        return start, head

    def copy(self, kind: int, start: int, end: int) -> bytes:
        """The rows in ``[start, end)`` as one bytes object, without the unused end of a lap.
        ``end`` must be a row boundary at or below ``head``."""
        base = self.base(kind)
        first = start & self.mask
        lap_end = self._lap_end(start)
        mm = self.mm
        if end <= lap_end:
            return mm[base + first : base + first + (end - start)]
        used_end = self.lap_used_end(kind, start)
        return (
            mm[base + first : base + first + (used_end - start)] + mm[base : base + (end - lap_end)]
        )

    def lap_used_end(self, kind: int, start: int) -> int:
        """Where the rows of ``start``'s lap end: ``wrap_at`` if the producer skipped the end of
        that lap, else the lap's end (a ``wrap_at`` from an earlier lap lies before ``start``)."""
        lap_end = self._lap_end(start)
        wrap_at = int(self.words[Slot.ring(kind, Slot.WRAP_AT)])
        return wrap_at if start <= wrap_at < lap_end else lap_end

    def advance(self, kind: int, end: int) -> None:
        """Mark ``[.., end)`` as read (taken into a batch)."""
        self.positions[kind] = end

    def commit(self, kind: int, position: int) -> None:
        """Release everything below ``position`` to the producer."""
        tail = self.tail(kind)
        if position < tail:
            raise ValueError(f"ring {kind}: commit to {position} below the tail {tail}")
        self.words[Slot.ring(kind, Slot.TAIL)] = position

    def rewind(self) -> None:
        """Forget what was read but not committed: the next reads start at the tails again."""
        self.positions = [self.tail(k) for k in KINDS]


class CutTable:
    """The ring ranges a writer has handed to its senders, per ring, kept in the shared
    segment. A writer that dies mid-send is replaced by one that reads from the tail again: it
    finds here where the dead writer cut its batches and cuts them the same way, so a re-sent
    batch carries the same deduplication token and a server that stored it stores it once."""

    def __init__(self, words: memoryview) -> None:
        self.words = words

    def _slots(self, kind: int) -> range:
        first = Slot.ring(kind, Slot.CUTS)
        return range(first, first + 2 * Slot.CUT_SLOTS, 2)

    def end_of(self, kind: int, start: int) -> int | None:
        for slot in self._slots(kind):
            if int(self.words[slot]) == start + 1:
                return int(self.words[slot + 1])
        return None

    def remember(self, kind: int, start: int, end: int) -> None:
        for slot in self._slots(kind):
            if int(self.words[slot]) in (0, start + 1):
                self.words[slot + 1] = end
                self.words[slot] = start + 1
                return

    def forget_below(self, kind: int, position: int) -> None:
        """Drop the ranges that start below ``position`` (delivered before the writer died)."""
        for slot in self._slots(kind):
            if 0 < int(self.words[slot]) <= position:
                self.words[slot] = 0

    def forget(self, kind: int, start: int) -> None:
        if start < 0:
            return
        for slot in self._slots(kind):
            if int(self.words[slot]) == start + 1:
                self.words[slot] = 0


SIZED_HEADER: Final = 5
_sized_length = struct.Struct(">I").unpack_from


class RingCorrupted(RuntimeError):
    """Ring words that cannot have been written by ``RingWriter``."""


def split_lines(data: bytes, limit: int) -> tuple[int, int]:
    """(length, rows) of the longest prefix of ``data`` made of whole newline-ended rows and no
    longer than ``limit`` bytes (at least one row, whatever its size)."""
    if len(data) > limit:
        cut = data.rfind(b"\n", 0, limit)
        if cut < 0:
            cut = data.find(b"\n")
        length = cut + 1
        return length, data.count(b"\n", 0, length)
    if data[-1:] == b"\n" or not data:
        return len(data), data.count(b"\n")
    length = data.rfind(b"\n") + 1  # a window that ends inside a row stops before it
    return length, data.count(b"\n", 0, length)


def split_delimited(data: bytes, limit: int) -> tuple[int, int]:
    """``split_lines`` for length-delimited protobuf fields (tag byte, varint length, bytes)."""
    position = rows = 0
    size = len(data)
    while position < size:
        shift = length = 0
        cursor = position + 1  # one tag byte: field numbers below 16
        while cursor < size:
            byte = data[cursor]
            length |= (byte & 0x7F) << shift
            cursor += 1
            if byte < 0x80:
                break
            shift += 7
        else:
            break  # a row cut short by the end of ``data``
        end = cursor + length
        if end > size or (end > limit and rows):
            break
        position = end
        rows += 1
    return position, rows


def split_sized(data: bytes | bytearray, limit: int) -> tuple[int, int]:
    """``split_lines`` for rows that each follow their length as a MessagePack ``uint 32``
    (``0xce`` + 4 bytes, big-endian): the compact OTLP rows of ``compact_rows``."""
    position = rows = 0
    size = len(data)
    unpack = _sized_length
    while position + SIZED_HEADER <= size:
        end = position + SIZED_HEADER + unpack(data, position + 1)[0]
        if end > size or (end > limit and rows):
            break
        position = end
        rows += 1
    return position, rows


SPLITTERS: Final = {"lines": split_lines, "protobuf": split_delimited, "sized": split_sized}
