"""The writer's side of the spool: ring rows put on disk so that the ring can move on, copies of
batches in flight, replay oldest first, the set-aside directory, and what ``get_status()``
shows of all of it.

* ``spill``: a ring batch that will not be sent soon goes into the spool; the ring's tail may
  pass it. The spool full (``spool_max_bytes``): ``spool_full_policy`` drops, counted.
* ``keep_copy``: a batch in flight whose rows the ring needs back gets a copy in the spool,
  claimed by this writer from the start (no other writer replays it); when its send ends, the
  copy is removed (delivered) or released for replay (failed).
* The disk refusing a write (ENOSPC, EIO, a read-only directory) is not a drop: the batch is
  kept in memory (and so in the ring), the spool is left alone for a while (``UNWRITABLE``,
  logged once with the fix), and the producer's full-ring policy applies if it lasts.
* ``on_disk``: ring positions of rows kept on disk and not yet delivered, so that ``flush()``
  never reports them delivered before they are.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import lz4.frame

from ..control import Control, Counter, SpoolState
from ..settings import WriterSettings
from ..spool import Spool, SpooledBatch, Stored
from ..transport import Outcome
from .batch import Batch
from .publish import Publisher

log = logging.getLogger("automagik_telemetry.writer")

SPOOL_ENCODING = "lz4-rows"  # spool files hold the ring's rows, LZ4-framed
SET_ASIDE_DIRECTORY = "rejected"  # in the spool directory: batches the destination refused
UNWRITABLE_FIRST_WAIT = 0.5  # s before the spool is tried again after the disk refused a write
UNWRITABLE_MAX_WAIT = 10.0
LEVEL_EVERY = 0.5  # s between two readings of the spool's level for get_status()


class Spooling:
    def __init__(
        self,
        settings: WriterSettings,
        control: Control,
        publisher: Publisher,
        stats_lock: threading.Lock,
        token: Callable[[Batch], str],
        origin: Callable[[int], str],
    ) -> None:
        self.settings = settings
        #: the sink's own origin of a ring kind: kept with every batch written to disk
        self.origin = origin
        self.control = control
        self.publisher = publisher
        self.stats_lock = stats_lock
        self.token = token
        directory = settings.spool_dir
        self.spool = (
            Spool(directory, settings.spool_max_bytes, settings.spool_full_policy)
            if directory
            else None
        )
        # Batches the destination refused for what they hold: kept, never replayed on their
        # own (the same bytes would be refused again); a quarter of the spool's bound.
        self.set_aside = (
            Spool(
                os.path.join(directory, SET_ASIDE_DIRECTORY),
                settings.spool_max_bytes // 4,
                "drop_newest",
            )
            if directory
            else None
        )
        self._set_aside_lock = threading.Lock()
        self.pending = self.spool is not None and self._spooled_files() > 0
        # Spool files this writer did not write (an earlier writer's, maybe for rows of this
        # very ring): until they are replayed, flush() must not report the ring delivered.
        self.unknown = self.pending
        self._here: dict[str, tuple[int, int]] = {}  # token -> (kind, ring start), on disk
        # Ring batches the spool could not keep: flush() can never report them delivered.
        self._lost: list[tuple[int, int]] = []
        self._unwritable_until = 0.0
        self._unwritable_wait = 0.0
        self._drops_published = 0
        self._corrupt_published = 0
        self._level_at = 0.0
        self._rate_at = time.monotonic()
        self._rate_bytes = 0

    @property
    def enabled(self) -> bool:
        return self.spool is not None

    def writable(self, now: float) -> bool:
        return self.spool is not None and now >= self._unwritable_until

    def _spooled_files(self) -> int:
        assert self.spool is not None
        try:
            return len(self.spool)
        except OSError:
            return 0

    # --- ring rows onto disk

    def spill(self, batch: Batch) -> Stored:
        """Put a ring batch (not in flight) into the spool. ``STORED``: the ring may let it
        go; ``FULL``: dropped by the policy (counted), the ring may let it go too; ``FAILED``:
        the disk refused it, the caller keeps it."""
        if not batch.token:
            batch.token = self.token(batch)
        outcome, _ = self._store(batch, claimed=False)
        if outcome is Stored.FULL:
            self._lost.append((batch.kind, batch.start))
            self.publisher.publish(
                logging.ERROR,
                "spool-full",
                f"the spool at {self.settings.spool_dir} is full "
                f"({self.settings.spool_max_bytes} bytes, policy "
                f"{self.settings.spool_full_policy}): dropped {batch.rows} rows; counted in "
                "get_status(). Fix: bring the destination back, or raise spool_max_bytes",
            )
        return outcome

    def keep_copy(self, batch: Batch) -> Stored:
        """Copy a ring batch that is in flight into the spool, claimed by this writer, so the
        ring's tail may pass it while it is sent. ``FULL``: no room (not a drop: the batch is
        still in flight and in the ring), not tried again for this batch."""
        if not batch.token:
            batch.token = self.token(batch)
        outcome, copy = self._store(batch, claimed=True)
        batch.copy = copy
        batch.copy_refused = outcome is Stored.FULL
        return outcome

    def _store(self, batch: Batch, *, claimed: bool) -> tuple[Stored, SpooledBatch | None]:
        assert self.spool is not None
        body = bytes(lz4.frame.compress(batch.body))
        outcome, stored = self.spool.store(
            batch.kind, batch.rows, batch.token, SPOOL_ENCODING, body, claimed=claimed,
            origin=batch.origin or self.origin(batch.kind),
        )  # fmt: skip
        with self.stats_lock:
            if outcome is Stored.STORED:
                self.pending = self.pending or not claimed
                if batch.from_ring:
                    self._here[batch.token] = (batch.kind, batch.start)
                self.control.add(Counter.ROWS_SPOOLED, batch.rows)  # copies too: on disk
                self.control.add(Counter.BATCHES_SPOOLED)
                self.control.add(Counter.BYTES_SPILLED, len(batch.body))
                self._rate_bytes += len(batch.body)
                if self._unwritable_wait:
                    self._writable_again()
            elif outcome is Stored.FAILED:
                self._unwritable(self.spool.last_error)
            self._publish_spool_counts()
        return outcome, stored

    def _unwritable(self, error: OSError | None) -> None:
        self._unwritable_wait = min(
            max(self._unwritable_wait * 2, UNWRITABLE_FIRST_WAIT), UNWRITABLE_MAX_WAIT
        )
        self._unwritable_until = time.monotonic() + self._unwritable_wait
        self.control.add(Counter.SPOOL_ERRORS)
        self.control.spool_state = SpoolState.UNWRITABLE
        self.publisher.publish(
            logging.ERROR,
            "spool-unwritable",
            f"cannot write to the spool at {self.settings.spool_dir}: {error}. Rows stay in "
            "the ring meanwhile (the producer's on_full policy applies when it fills); "
            "nothing already spooled is touched. Fix: free space on that disk, or set "
            "spool_dir (AUTOMAGIK_TELEMETRY_SPOOL_DIR) to a writable directory",
        )

    def _writable_again(self) -> None:
        self._unwritable_wait = 0.0
        self._unwritable_until = 0.0
        self.control.spool_state = SpoolState.USABLE
        self.publisher.publish(
            logging.INFO, "", f"the spool at {self.settings.spool_dir} takes batches again"
        )

    # --- after a send

    def settle(self, batch: Batch, ok: bool) -> None:
        """A batch with files in the spool came back from its sender: remove them once
        delivered, else make them replayable."""
        assert self.spool is not None
        for kept in (batch.spooled, batch.copy):
            if kept is None:
                continue
            try:
                if ok:
                    self.spool.remove(kept.path)
                else:
                    self.spool.release(kept)
                    self.pending = True
            except OSError as exc:  # left as it is: a later writer releases a dead claim
                log.debug("cannot settle spool file %s: %s", kept.path, exc)
        batch.copy = None
        if ok:
            with self.stats_lock:
                self._here.pop(batch.token, None)

    def next_replay(self, healthy: bool) -> Batch | None:
        """The oldest spooled batch, claimed, as a batch to send (None when there is none)."""
        if self.spool is None or not self.pending:
            return None
        try:
            spooled = self.spool.take_oldest()
        except OSError as exc:
            log.debug("cannot read the spool: %s", exc)
            return None
        if spooled is None:
            self.pending = self.unknown = False
            return None
        header = spooled.header
        body = spooled.body
        if header.encoding == SPOOL_ENCODING:
            body = lz4.frame.decompress(body)
        # While the sink is down, a replay is a probe: one attempt, then back to the spool.
        attempts = None if healthy else 0
        return Batch(header.kind, -1, -1, header.rows, body, header.token, spooled, attempts,
                     origin=header.origin)  # fmt: skip

    def on_disk(self, kind: int) -> list[int]:
        """Ring starts of rows of ``kind`` kept on disk (or lost there), not yet delivered."""
        return [s for k, s in [*self._here.values(), *self._lost] if k == kind]

    # --- refused batches

    def put_aside(self, batch: Batch, outcome: Outcome) -> None:
        """(Sender thread) Keep a batch the destination refused for what it holds in the
        spool's ``rejected/`` directory, so it stops nothing behind it and is not lost: moved
        back into the spool directory, its files are sent again (after the cause is fixed)."""
        kept = False
        where = "nowhere: no spool directory"
        if self.set_aside is not None:
            where = str(self.set_aside.directory)
            body = bytes(lz4.frame.compress(batch.body))
            with self._set_aside_lock:
                origin = batch.origin or self.origin(batch.kind)
                kept = self.set_aside.put(batch.kind, batch.rows, batch.token, SPOOL_ENCODING,
                                          body, origin)  # fmt: skip
        with self.stats_lock:
            self.control.add(Counter.SEND_FAILURES)
            self.control.add(Counter.ROWS_SET_ASIDE if kept else Counter.ROWS_REJECTED, batch.rows)
            if kept:
                fate = (
                    f"; the batch ({batch.rows} rows) is set aside in {where}: move its files "
                    f"into {self.settings.spool_dir} to send them again once fixed"
                )
            else:
                fate = f"; the batch ({batch.rows} rows) could not be kept ({where}): dropped"
            self.publisher.publish(logging.ERROR, outcome.key, outcome.message + fate)

    # --- what get_status() shows

    def _publish_spool_counts(self) -> None:
        """Add this writer's new spool drops to the segment's counters (which outlive it)."""
        if self.spool is None:
            return
        stats = self.spool.stats
        for counter, total, attr in (
            (Counter.ROWS_DROPPED_WRITER, stats.rows_dropped, "_drops_published"),
            (Counter.SPOOL_CORRUPT, stats.corrupt_files, "_corrupt_published"),
        ):
            delta = total - getattr(self, attr)
            if delta:
                self.control.add(counter, delta)
                setattr(self, attr, total)

    def publish_level(self, now: float, *, force: bool = False) -> None:
        """The spool's bytes, batches, oldest batch and spill rate, for ``get_status()``
        (every ``LEVEL_EVERY`` seconds, or now with ``force``)."""
        if self.spool is None or (not force and now - self._level_at < LEVEL_EVERY):
            return
        self._level_at = now
        level = self.spool.level()
        control = self.control
        with self.stats_lock:
            control.set(Counter.SPOOL_BYTES, level.bytes)
            control.set(Counter.SPOOL_BATCHES, level.batches)
            control.set(Counter.SPOOL_OLDEST_NS, level.oldest_ns)
            if level.bytes > control.get(Counter.SPOOL_PEAK_BYTES):
                control.set(Counter.SPOOL_PEAK_BYTES, level.bytes)
            elapsed = now - self._rate_at
            if elapsed >= 2.0 or force:
                control.set(Counter.SPILL_RATE, int(self._rate_bytes / max(elapsed, 1e-3)))
                self._rate_at = now
                self._rate_bytes = 0
            self._publish_spool_counts()

    def release_copies(self, batches: list[Batch]) -> None:
        """Exiting with batches still in flight: their files become replayable now."""
        if self.spool is None:
            return
        for kept in [f for b in batches for f in (b.copy, b.spooled) if f is not None]:
            try:
                self.spool.release(kept)
            except OSError as exc:
                log.debug("cannot release %s: %s", kept.path, exc)
