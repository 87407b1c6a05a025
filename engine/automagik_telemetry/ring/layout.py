"""Layout of the shared segment: constants and word offsets only (the descriptor).

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
"""

from __future__ import annotations

from typing import Final

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
    SPOOL_BYTES: Final = 49  # bytes in this destination's spool now (gauge)
    SPOOL_BATCHES: Final = 50  # batch files in it now (gauge)
    SPOOL_PEAK_BYTES: Final = 51  # the most SPOOL_BYTES has been since the segment was made
    SPILL_RATE: Final = 52  # bytes/s written to the spool, over the last few seconds
    SPOOL_OLDEST_NS: Final = 53  # time_ns of the oldest batch in the spool, 0 when empty
    SPOOL_STATE: Final = 54  # 0 usable, 1 unwritable (disk error), see control.SpoolState
    RESENT_AFTER_TIMEOUT: Final = 55  # batches sent again after an attempt that timed out
    BYTES_SPILLED: Final = 56  # ring bytes written to the spool
    SPOOL_ERRORS: Final = 57  # writes the disk refused (ENOSPC, EIO, read-only)
    #: a bit per ring kind: its table keeps no attributes, so the producer may leave them out
    UNSTORED_ATTRIBUTES: Final = 58
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
