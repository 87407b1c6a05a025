"""The producer's full-ring policy: what a track call does when its ring has no room (the slow
path; the hot path, encode and append under the ring's lock, is the client's track methods).

The writer puts rows on disk long before a ring fills, so a full ring means the writer is gone
or stuck, or the disk refuses the spool's writes, or there is no spool. ``on_full="drop"``
drops at once; ``on_full="block"`` waits while the writer makes progress (the ring's tail
moves), at most ``block_timeout`` seconds without any, then drops, and later calls drop at once
until the ring has had room again (a stuck writer must not cost every call the whole wait).
Every drop is counted by reason: ``ring_full`` (on_full="drop", or no spool),
``writer_gone``, ``writer_stuck``, ``spool_unwritable``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .config import TelemetryConfig
from .control import Control, SpoolState
from .ring.layout import KINDS
from .ring.spsc import RingWriter


class FullRing:
    def __init__(
        self,
        config: TelemetryConfig,
        ring_writer: RingWriter,
        control: Control,
        writer_alive: Callable[[], bool],
    ) -> None:
        self.config = config
        self.ring = ring_writer
        self.control = control
        self.writer_alive = writer_alive
        self._gave_up = False
        self._accepted_at_give_up = 0

    def room(self, kind: int, row: bytes | bytearray, accepted: int, *, may_wait: bool) -> bool:
        """(Lock held.) True when ``row`` went in after all; False: drop it (``why``)."""
        if self._gave_up and accepted != self._accepted_at_give_up:
            self._gave_up = False  # the ring had room since: this call may wait again
        if self.config.on_full != "block":
            return False
        if not self._gave_up and may_wait and self._wait_for_room(kind, row):
            return True
        self._gave_up = True
        self._accepted_at_give_up = accepted
        return False

    def _wait_for_room(self, kind: int, row: bytes | bytearray) -> bool:
        """Wait for room while the writer makes progress: at most ``block_timeout`` seconds
        without any."""
        ring_writer = self.ring
        timeout = self.config.block_timeout
        tail = ring_writer.tail(kind)
        deadline = time.monotonic() + timeout
        pause = 0.00005
        while True:
            time.sleep(pause)
            # at most 1 ms late: room comes a batch at a time, and a longer nap would leave it
            # unused
            pause = min(pause * 2, 0.001)
            if ring_writer.put(kind, row):
                return True
            now = time.monotonic()
            moved = ring_writer.tail(kind)
            if moved != tail:
                tail, deadline = moved, now + timeout
            elif now >= deadline:
                return False

    async def wait_async(self) -> None:
        """Before an async track call: wait (``asyncio.sleep``, never a blocking sleep) while
        any ring is too full for a row and the writer makes progress."""
        ring_writer = self.ring
        timeout = self.config.block_timeout
        tails = [ring_writer.tail(k) for k in KINDS]
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while min(ring_writer.free_bytes(k) for k in KINDS) < ring_writer.max_row:
            now = time.monotonic()
            moved = [ring_writer.tail(k) for k in KINDS]
            if moved != tails:  # the writer makes progress: keep waiting
                tails, deadline = moved, now + timeout
            elif now >= deadline:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.02)

    def why(self) -> tuple[str, str]:
        """The drop reason of a full ring, and its explanation."""
        config = self.config
        if config.on_full != "block":
            return "ring_full", "the ring is full and on_full='drop'"
        if not self.writer_alive():
            return "writer_gone", "the ring is full and its writer process is not running"
        if config.spool_max_bytes == 0:
            return "ring_full", "the ring is full and the spool is disabled (spool_max_bytes=0)"
        if self.control.spool_state is SpoolState.UNWRITABLE:
            return (
                "spool_unwritable",
                "the ring is full: the destination cannot take rows and the disk refuses the "
                "spool's writes (see the writer's message)",
            )
        return (
            "writer_stuck",
            f"the ring is full and its writer made no progress for {config.block_timeout} s",
        )
