"""Single-producer / single-consumer rings of wire-ready rows, in POSIX shared memory.

One segment per producer process, holding one ring per signal (traces, metrics, logs). The
application's threads append rows (``RingWriter``, serialised by one ``threading.Lock``); the
writer process copies runs of rows out and sends them (``RingReader``). Between the two processes
there is no lock: every word has exactly one writer.

What a ring holds
-----------------
Rows back to back, each encoded once by the application thread: JSONEachRow lines (ClickHouse,
exactly as they go on the wire), or compact OTLP rows (``rows.compact``: a MessagePack array
after its length), or, from older versions, OTLP wire rows (JSON objects, protobuf fields). For
ClickHouse the writer's work per batch is one copy of a byte range, whatever the number of rows
(measured: iterating per-record headers and framing rows in Python cost ~3.5 µs per row here;
copying a range costs ~0.2 µs per row). OTLP spells every attribute out with its type, which is
Python work per attribute wherever it is done; the writer does it (``OtlpSink.prepare``), off the
application's thread and GIL. Row boundaries are known from the rows themselves (a newline ends
each JSON row: JSON encoders escape newlines inside strings; compact rows and protobuf fields
carry their length).


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
  ``head`` and copying: ``fence()`` releases and re-acquires an uncontended lock, and glibc's
  lock operations are acquire/release atomics, which together order every earlier access before
  every later one. On x86-64 the fence is skipped.

The producer never writes past ``tail + capacity``; ``tail`` moves only when the writer process
has delivered (or spooled) everything below it. A stale ``tail`` seen by the producer only makes
the ring look fuller than it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..control import Messages
from .fence import STRONGLY_ORDERED, fence
from .layout import HEADER_BYTES, KINDS, MAGIC, Slot, max_row
from .segment import SharedSegment

# --- memory ordering ----------------------------------------------------------------------


class RowTooLarge(ValueError):
    """A row larger than a ring takes (an eighth of it): it never fits, whatever the writer
    does."""


class _RingView:
    """What both ends share: the header words and the geometry."""

    def __init__(self, segment: SharedSegment) -> None:
        self.segment = segment
        self.mm = segment.mmap
        self.words = memoryview(segment.mmap)[:HEADER_BYTES].cast("Q")
        if self.words[Slot.MAGIC] != MAGIC:
            self.words.release()
            raise ValueError(f"shared segment {segment.name!r} is not an automagik ring")
        self.capacity = int(self.words[Slot.CAPACITY])
        self.mask = self.capacity - 1
        self.max_row = max_row(self.capacity)
        #: the writer's log lines for the application (``control.Messages``)
        self.messages = Messages(self.words, self.mm)

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
        fence_needed = not STRONGLY_ORDERED
        head = int(words[head_slot])
        tail = int(words[tail_slot])  # cached; re-read only when the ring looks full

        def append(row: bytes | bytearray) -> bool:
            nonlocal head, tail
            size = len(row)
            offset = head & mask
            if offset + size > capacity or head + size - tail > capacity or size > limit:
                if size > limit:
                    raise RowTooLarge(f"a row of {size} bytes exceeds the ring's limit of {limit}")
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
                fence()
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
        if not STRONGLY_ORDERED:
            fence()
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
