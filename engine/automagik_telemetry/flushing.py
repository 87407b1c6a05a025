"""The flush protocol, the application's side: ask the writer to deliver every row written so
far (a target position per ring, in the segment's flush words), then wait until the rings'
delivered positions (``flush``) or tails (``shutdown``: delivered or on disk) pass them."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Final

from .control import Control
from .ring.layout import KINDS
from .ring.spsc import RingWriter

DEFAULT_FLUSH_TIMEOUT: Final = 10.0


class Flush:
    def __init__(self, ring_writer: RingWriter, control: Control, lock: threading.Lock) -> None:
        self.ring = ring_writer
        self.control = control
        self.lock = lock

    def request(self) -> list[int]:
        """Ask the writer to deliver, now, every row written so far; the targets to wait for."""
        targets = []
        with self.lock:
            for kind in KINDS:
                target = self.ring.written_head(kind)
                self.control.request_flush(kind, target)
                targets.append(target)
        return targets

    def reached(self, targets: list[int], *, safe_only: bool = False) -> bool:
        """Every row below the targets delivered (or, with ``safe_only``, delivered or
        spooled: the ring's tail has passed them)."""
        position = self.ring.tail if safe_only else self.control.delivered
        return all(position(k) >= t for k, t in zip(KINDS, targets, strict=True))

    def wait(self, targets: list[int], timeout: float | None, *, safe_only: bool) -> bool:
        deadline = time.monotonic() + (DEFAULT_FLUSH_TIMEOUT if timeout is None else timeout)
        pause = 0.0005
        while not self.reached(targets, safe_only=safe_only):
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        return True

    async def wait_async(self, targets: list[int], timeout: float | None) -> bool:
        """``wait`` with ``asyncio.sleep``: the event loop goes on meanwhile."""
        deadline = time.monotonic() + (DEFAULT_FLUSH_TIMEOUT if timeout is None else timeout)
        pause = 0.001
        while not self.reached(targets):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
        return True
