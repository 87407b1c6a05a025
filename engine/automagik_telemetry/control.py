"""The control words of the shared segment, beside the rings: the writer's counters and states
(``Control``), what the writer tells the application (``Messages``) and what a writer leaves for
the next one (``CutTable``). Nothing else indexes the segment's words: a new word is a slot in
``ring/layout.py`` and a name here.

Every word has one writer process; see ``ring/spsc.py`` for the memory-ordering argument.
"""

from __future__ import annotations

import enum
import mmap
import threading
import time

from .ring.fence import STRONGLY_ORDERED, fence
from .ring.layout import MESSAGE_BYTES, MESSAGE_SLOTS, MESSAGE_TEXT_MAX, MESSAGES_OFFSET, Slot


class Counter(enum.IntEnum):
    """The writer's counters and gauges (word slots of its line in the header page)."""

    ROWS_SENT = Slot.ROWS_SENT
    BATCHES_SENT = Slot.BATCHES_SENT
    SEND_FAILURES = Slot.SEND_FAILURES
    RETRIES = Slot.RETRIES
    BYTES_WIRE = Slot.BYTES_WIRE
    BYTES_RAW = Slot.BYTES_RAW
    ROWS_SPOOLED = Slot.ROWS_SPOOLED
    BATCHES_SPOOLED = Slot.BATCHES_SPOOLED
    ROWS_DROPPED_WRITER = Slot.ROWS_DROPPED_WRITER
    WRITER_STARTS = Slot.WRITER_STARTS
    SPOOL_CORRUPT = Slot.SPOOL_CORRUPT
    ROWS_REJECTED = Slot.ROWS_REJECTED
    ROWS_SET_ASIDE = Slot.ROWS_SET_ASIDE
    SPOOL_BYTES = Slot.SPOOL_BYTES
    SPOOL_BATCHES = Slot.SPOOL_BATCHES
    SPOOL_PEAK_BYTES = Slot.SPOOL_PEAK_BYTES
    SPILL_RATE = Slot.SPILL_RATE
    SPOOL_OLDEST_NS = Slot.SPOOL_OLDEST_NS
    RESENT_AFTER_TIMEOUT = Slot.RESENT_AFTER_TIMEOUT
    BYTES_SPILLED = Slot.BYTES_SPILLED
    SPOOL_ERRORS = Slot.SPOOL_ERRORS


class SinkState(enum.IntEnum):
    UNKNOWN = 0
    HEALTHY = 1
    RETRYING = 2
    PERMANENT_ERROR = 3


class SpoolState(enum.IntEnum):
    USABLE = 0
    UNWRITABLE = 1  # the disk refused a write (ENOSPC, EIO, read-only): rows stay in the ring


class Control:
    """Named access to the segment's words outside the rings' heads and tails: the writer's
    counters, states and heartbeat, the application's flush and shutdown requests, and the
    position below which each ring's rows reached the destination."""

    def __init__(self, words: memoryview) -> None:
        self.words = words

    # --- counters and gauges (writer-written; the writer's threads serialise on their lock)

    def add(self, counter: Counter, amount: int = 1) -> None:
        self.words[counter] = int(self.words[counter]) + amount

    def get(self, counter: Counter) -> int:
        return int(self.words[counter])

    def set(self, counter: Counter, value: int) -> None:
        self.words[counter] = value

    def counters(self) -> dict[str, int]:
        """Every counter by its lower-case name."""
        return {c.name.lower(): int(self.words[c]) for c in Counter}

    @property
    def sink_state(self) -> SinkState:
        return SinkState(min(int(self.words[Slot.SINK_STATE]), SinkState.PERMANENT_ERROR))

    @sink_state.setter
    def sink_state(self, state: SinkState) -> None:
        self.words[Slot.SINK_STATE] = state

    @property
    def spool_state(self) -> SpoolState:
        return SpoolState(min(int(self.words[Slot.SPOOL_STATE]), SpoolState.UNWRITABLE))

    @spool_state.setter
    def spool_state(self, state: SpoolState) -> None:
        self.words[Slot.SPOOL_STATE] = state

    @property
    def unstored_attributes(self) -> int:
        """A bit per ring kind (``1 << kind``): the destination's table keeps no attributes
        (learnt by the writer), so the rows need not carry them."""
        return int(self.words[Slot.UNSTORED_ATTRIBUTES])

    @unstored_attributes.setter
    def unstored_attributes(self, mask: int) -> None:
        self.words[Slot.UNSTORED_ATTRIBUTES] = mask

    # --- the writer's presence

    def writer_started(self, pid: int) -> None:
        self.words[Slot.WRITER_PID] = pid
        self.add(Counter.WRITER_STARTS)

    def writer_stopped(self) -> None:
        self.words[Slot.WRITER_PID] = 0

    def beat(self) -> None:
        self.words[Slot.HEARTBEAT_NS] = time.time_ns()

    @property
    def heartbeat_ns(self) -> int:
        return int(self.words[Slot.HEARTBEAT_NS])

    # --- the application's requests

    def request_shutdown(self) -> None:
        self.words[Slot.SHUTDOWN] = 1

    @property
    def shutdown_requested(self) -> bool:
        return bool(self.words[Slot.SHUTDOWN])

    def request_flush(self, kind: int, target: int) -> None:
        """Ask the writer to deliver ring ``kind`` up to ``target`` now (never lowered)."""
        slot = Slot.ring(kind, Slot.FLUSH_REQUEST)
        if int(self.words[slot]) < target:
            self.words[slot] = target

    def flush_target(self, kind: int) -> int:
        return int(self.words[Slot.ring(kind, Slot.FLUSH_REQUEST)])

    # --- delivery

    def delivered(self, kind: int) -> int:
        """Position below which every row of ring ``kind`` reached the destination itself."""
        return int(self.words[Slot.ring(kind, Slot.DELIVERED)])

    def mark_delivered(self, kind: int, position: int) -> None:
        slot = Slot.ring(kind, Slot.DELIVERED)
        if position > int(self.words[slot]):
            self.words[slot] = position

    def refused_rows(self) -> int:
        """Rows the destination refused for what they hold (set aside, or not kept)."""
        return self.get(Counter.ROWS_SET_ASIDE) + self.get(Counter.ROWS_REJECTED)


class Messages:
    """The writer's last ``MESSAGE_SLOTS`` log lines, for the application's ``logging``: one
    seqlock-protected slot each, so that messages close together are all relayed."""

    def __init__(self, words: memoryview, mm: mmap.mmap) -> None:
        self.words = words
        self.mm = mm
        self._lock = threading.Lock()

    def read(self, seen: int) -> tuple[int, list[tuple[int, str]]]:
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
                if not STRONGLY_ORDERED:
                    fence()
                if int(words[at]) == stamp:
                    out.append((level, raw.decode("utf-8", "replace")))
                    break
        return count, out

    def write(self, level: int, text: str) -> None:
        """Publish a message (writer side; threads serialise on the message lock)."""
        # cut to the slot, at a character boundary
        raw = text.encode("utf-8")[:MESSAGE_TEXT_MAX].decode("utf-8", "ignore").encode("utf-8")
        words = self.words
        with self._lock:
            n = int(words[Slot.MESSAGE_COUNT]) + 1
            offset = _message_offset(n)
            at = offset // 8
            words[at] = 2 * n - 1  # odd: being written
            if not STRONGLY_ORDERED:
                fence()
            self.mm[offset + 24 : offset + 24 + len(raw)] = raw
            words[at + 1] = level
            words[at + 2] = len(raw)
            if not STRONGLY_ORDERED:
                fence()
            words[at] = 2 * n
            words[Slot.MESSAGE_COUNT] = n


def _message_offset(n: int) -> int:
    return MESSAGES_OFFSET + (n % MESSAGE_SLOTS) * MESSAGE_BYTES


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
