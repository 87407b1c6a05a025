"""The control words of the shared segment, beside the rings: what the writer tells the
application (messages) and what a writer leaves for the next one (the cut table).

Every word has one writer process; see ``ring/spsc.py`` for the memory-ordering argument.
"""

from __future__ import annotations

import mmap
import threading

from .ring.fence import STRONGLY_ORDERED, fence
from .ring.layout import MESSAGE_BYTES, MESSAGE_SLOTS, MESSAGE_TEXT_MAX, MESSAGES_OFFSET, Slot


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
