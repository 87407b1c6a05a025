"""What ``get_status()`` says about a ring and its writer: the writer's counters and states as
it publishes them in the segment (``control.Control``), the ring's fill, and the spool's level.
Cheap enough to poll: a few dozen word reads, no system call but ``poll()`` of the writer."""

from __future__ import annotations

import time
from typing import Any

from .control import Control, Counter
from .ring.layout import KINDS
from .ring.spsc import RingWriter
from .supervisor import Supervisor

_NO_QUEUES = {"traces": 0, "metrics": 0, "logs": 0}  # the original SDK's key; rings, not queues


def stopped_status() -> dict[str, Any]:
    """The ring part of the status of a client without a ring (disabled, shut down)."""
    return dict(
        sent=0, failed=0, retried=0, bytes_on_wire=0, bytes_uncompressed=0, set_aside=0,
        ring_fill=0.0, ring_bytes_used=0, writer_alive=False, last_error=None,
        queue_sizes=dict(_NO_QUEUES), sink_state="stopped",
        resent_after_timeout=0, spool_bytes=0, spool_batches=0, spool_peak_bytes=0,
        spooled_oldest_age_s=None, spill_bytes_per_s=0, spool_state="usable",
    )  # fmt: skip


def ring_status(
    ring_writer: RingWriter, control: Control, supervisor: Supervisor, dropped: dict[str, int]
) -> dict[str, Any]:
    """The ring part of the status; adds the writer's drops to ``dropped`` (by reason)."""
    for reason, counter in (("spool_full", Counter.ROWS_DROPPED_WRITER),
                            ("rejected_by_destination", Counter.ROWS_REJECTED)):  # fmt: skip
        if control.get(counter):
            dropped[reason] = control.get(counter)
    used = ring_writer.used_bytes()
    capacity = ring_writer.capacity * len(KINDS)
    writer = supervisor.writer
    oldest_ns = control.get(Counter.SPOOL_OLDEST_NS)
    return dict(
        sent=control.get(Counter.ROWS_SENT),
        batches_sent=control.get(Counter.BATCHES_SENT),
        failed=control.get(Counter.SEND_FAILURES),
        retried=control.get(Counter.RETRIES),
        resent_after_timeout=control.get(Counter.RESENT_AFTER_TIMEOUT),
        bytes_on_wire=control.get(Counter.BYTES_WIRE),
        bytes_uncompressed=control.get(Counter.BYTES_RAW),
        ring_bytes_used=used,
        ring_fill=round(used / capacity, 6),
        writer_alive=supervisor.writer_alive,
        writer_pid=writer.pid if writer is not None else None,
        last_error=supervisor.last_error,
        sink_state=control.sink_state.name.lower(),
        spooled=control.get(Counter.ROWS_SPOOLED),
        spooled_batches=control.get(Counter.BATCHES_SPOOLED),
        spool_corrupt_files=control.get(Counter.SPOOL_CORRUPT),
        # what the spool holds now (every writer of this destination's batches)
        spool_bytes=control.get(Counter.SPOOL_BYTES),
        spool_batches=control.get(Counter.SPOOL_BATCHES),
        spool_peak_bytes=control.get(Counter.SPOOL_PEAK_BYTES),
        spooled_oldest_age_s=(
            round(max(0.0, (time.time_ns() - oldest_ns) / 1e9), 3) if oldest_ns else None
        ),
        spill_bytes_per_s=control.get(Counter.SPILL_RATE),
        bytes_spilled=control.get(Counter.BYTES_SPILLED),
        spool_state=control.spool_state.name.lower(),
        spool_errors=control.get(Counter.SPOOL_ERRORS),
        # rows of batches the destination refused for what they hold, kept on disk
        set_aside=control.get(Counter.ROWS_SET_ASIDE),
        queue_sizes=dict(_NO_QUEUES),
    )
