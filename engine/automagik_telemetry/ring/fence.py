"""A full memory barrier for weakly ordered CPUs (see ``ring/spsc.py`` for why and where)."""

from __future__ import annotations

import platform
import threading
from typing import Final

#: x86-64 is total-store-order: no fence is needed between the two processes' words there
STRONGLY_ORDERED: Final = platform.machine().lower() in {"x86_64", "amd64", "i386", "i686", "x86"}
_fence_lock = threading.Lock()


def fence() -> None:
    """Full memory barrier: releasing and re-acquiring an uncontended lock (glibc's lock
    operations are acquire/release atomics, which together order every earlier access before
    every later one)."""
    _fence_lock.acquire()
    _fence_lock.release()
