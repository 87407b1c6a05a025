"""A producer process for the ring tests: ``python -m tests.support.ring_producer SEGMENT SEED
COUNT THREADS``. Each thread writes COUNT rows made by ``expected_rows(SEED, thread)`` into the
traces ring, retrying while the ring is full, and the process exits 0 when all are in."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator

from automagik_telemetry.ring.layout import KIND_TRACE
from automagik_telemetry.ring.segment import SharedSegment
from automagik_telemetry.ring.spsc import RingWriter


def expected_rows(seed: int, thread: int, count: int, max_size: int) -> Iterator[bytes]:
    """Rows of random sizes (mostly small, some close to the ring's limit) and random bytes,
    each ending with one newline and holding no other; prefixed with thread and sequence."""
    rng = random.Random(seed * 1000 + thread)
    for sequence in range(count):
        pick = rng.random()
        size = rng.randrange(0, 64) if pick < 0.8 else rng.randrange(64, max_size - 32)
        body = rng.randbytes(size).replace(b"\n", b"\x00")
        yield b"%d:%d:" % (thread, sequence) + body + b"\n"


def produce(segment_name: str, seed: int, count: int, threads: int) -> None:
    writer = RingWriter(SharedSegment.attach(segment_name))

    def run(thread: int) -> None:
        for row in expected_rows(seed, thread, count, writer.max_row):
            while not writer.try_put(KIND_TRACE, row):
                time.sleep(0.0001)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    writer.release()
    writer.segment.close()


if __name__ == "__main__":
    name, seed, count, threads = sys.argv[1], *map(int, sys.argv[2:5])
    produce(name, seed, count, threads)
