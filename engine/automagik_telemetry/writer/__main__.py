"""Entry point of the writer process: ``python -m automagik_telemetry.writer``."""

from __future__ import annotations

import logging
import signal
import sys

import msgspec

from ..ring.segment import SharedSegment, lock_segment, segment_names
from ..settings import WriterSettings
from .loop import Writer, build_sink, log


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="automagik-telemetry writer: %(message)s")
    settings = msgspec.json.decode(sys.stdin.buffer.read(), type=WriterSettings)
    if settings.verbose:
        logging.getLogger("automagik_telemetry").setLevel(logging.INFO)
    # The writer lock, held until this process ends (the kernel drops it however it ends):
    # never two writers on one ring, and a segment nobody holds is known to have no writer.
    lock = settings.lock_fd if settings.lock_fd >= 0 else lock_segment(settings.segment)
    if lock is None and settings.segment in segment_names():
        log.error("another writer is attached to %s; this one exits", settings.segment)
        return 3
    segment = SharedSegment.attach(settings.segment)
    writer = Writer(settings, segment, build_sink(settings))

    def terminate(signum: int, frame: object) -> None:
        writer.terminated = True  # the loop delivers or spools what is left, then exits

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    try:
        writer.run()
    finally:
        # Asked to stop, or orphaned: either way nobody needs the segment after us. Stopped by
        # a signal while the application lives: keep the segment, the client restarts us.
        done = writer.shutdown_requested() or writer.producer_gone()
        writer.control.writer_stopped()
        writer.close(unlink=done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
