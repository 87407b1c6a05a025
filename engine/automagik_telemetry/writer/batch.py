"""A batch: a run of rows of one ring on its way to the destination, and what the writer knows
about it (where it lies in the ring, its deduplication token, its copies on disk)."""

from __future__ import annotations

from dataclasses import dataclass

from ..spool import SpooledBatch


@dataclass(eq=False)
class Batch:
    """Rows ``[start, end)`` of ring ``kind``, copied out (``body``), not yet delivered. A batch
    replayed from the spool, or half of a batch sent again in halves, has ``start == -1``: it
    holds nothing in the ring."""

    kind: int
    start: int
    end: int
    rows: int
    body: bytes
    token: str = ""  # deduplication token, fixed when the batch is first sent or spooled
    spooled: SpooledBatch | None = None  # replayed from the spool: its claimed file
    attempts: int | None = None  # retries allowed; None: the policy's
    copy: SpooledBatch | None = None  # kept in the spool (claimed) while it is in flight
    sent_at: float = 0.0  # monotonic time it was handed to a sender
    copy_refused: bool = False  # the spool had no room for its copy: not tried again
    #: where its rows come from (``Sink.origin``): "" for the rows of this writer's ring (the
    #: sink's own); a replayed batch keeps the origin its spool file holds
    origin: str = ""

    @property
    def from_ring(self) -> bool:
        """It holds rows of the ring: the ring's tail may not pass it until it is safe."""
        return self.start >= 0

    @property
    def safe(self) -> bool:
        """Its rows are on disk (or nowhere in the ring): the tail may pass it."""
        return not self.from_ring or self.copy is not None


def batch_token(segment: str, kind: int, start: int, end: int) -> str:
    """A ring batch's deduplication token: the segment's name and the batch's place in it, so
    a writer that cuts the same batch again (after a crash) sends the same token."""
    return f"{segment}-{kind}-{start}-{end}"
