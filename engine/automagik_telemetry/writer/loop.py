"""The writer's main loop: batches out of the rings to the senders, to disk when they cannot
leave soon enough, and the commit that gives the ring's room back (see the package docstring).

Each pass: collect what the senders finished; make room on disk (``_make_room``); hand ready
batches to free senders (``_send``); commit. Room is made on disk for a ring when

* its rows cannot leave soon: the destination is unhealthy (an attempt failed), sending is
  paused (``Retry-After``, or a batch's retries are spent), or the oldest request in flight has
  waited longer than ``timeout``; then the ring's rows go to the spool as they make full
  batches, and batches in flight get a copy there, so the ring's tail moves on;
* or more than ``HIGH_WATER`` of it is in use, whatever the reason (a destination slower than
  the application, a writer catching up after a restart, a writer still starting): then its
  oldest rows go to disk (batches in flight get a copy, then unread rows are spilled) until
  what holds the ring is back under ``LOW_WATER``; the newer rows are sent as usual. (Sending
  a ring's full batches before the spool's was tried: against a slow destination with a full
  spool, batches in flight then held the ring's tail for seconds and the producer's wait ran
  out, ``writer_stuck``; the spool goes first, as before.)

So the ring fills only when the disk refuses (or the spool is disabled); the producer never
waits on the destination. What is on disk is replayed oldest first as soon as the destination
answers, at full speed, with the batches' own deduplication tokens.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from ..control import Control, CutTable
from ..retry import RetryPolicy
from ..ring.layout import KINDS
from ..ring.segment import SharedSegment
from ..ring.spsc import RingReader
from ..rows.framing import SPLITTERS
from ..settings import WriterSettings
from ..sinks import sink_spec
from ..spool import Stored
from ..transport import Sink
from .batch import Batch, batch_token
from .batcher import Batcher, Take
from .delivery import Delivery
from .publish import Publisher
from .senders import Senders
from .spooling import Spooling

log = logging.getLogger("automagik_telemetry.writer")

IDLE_MIN_SLEEP = 0.00005
IDLE_MAX_SLEEP = 0.005
EXIT_DELIVERY_DEADLINE = 30.0  # longest a writer asked to exit keeps trying
# Above this share of a ring in use, its rows go to disk. Under load the batches in flight hold
# up to two thirds of it (a third each) only while they are sent; past half, the producer is
# outrunning the destination, and a ring that fills would make it wait.
HIGH_WATER = 0.5
# ... and rows go to disk, oldest first, until what holds it is back under this share.
LOW_WATER = 0.25
MIN_SPILL_BYTES = 4096


def build_sink(settings: WriterSettings) -> Sink:
    return sink_spec(settings.backend).build(settings)


class Writer:
    def __init__(self, settings: WriterSettings, segment: SharedSegment, sink: Sink) -> None:
        self.settings = settings
        self.segment = segment
        self.reader = RingReader(segment)
        self.sink = sink
        self.control = Control(self.reader.words)
        self.publisher = Publisher(self.reader.messages)
        self._stats_lock = threading.Lock()
        split = SPLITTERS[settings.record_format]
        self.cuts = CutTable(self.reader.words)
        self.batcher = Batcher(
            self.reader, self.cuts, split,
            batch_size=settings.batch_size, flush_interval=settings.flush_interval,
        )  # fmt: skip
        self.spooling = Spooling(settings, self.control, self.publisher, self._stats_lock,
                                 self.token, sink.origin)  # fmt: skip
        self.delivery = Delivery(
            sink,
            self.control,
            RetryPolicy(retries=settings.max_retries, base=settings.retry_backoff_base),
            split,
            publisher=self.publisher,
            put_aside=self.spooling.put_aside,
            token=self.token,
            stats_lock=self._stats_lock,
            verbose=settings.verbose,
        )
        self.senders = Senders(self.delivery.deliver, settings.max_in_flight)
        self.parked: list[Batch] = []  # out of the ring, kept in memory (no spool, or disk errors)
        self._ring_bytes_for = getattr(sink, "ring_bytes_for", None)
        # A batch holds its rows in the ring until delivered: with one part of the ring per
        # batch in flight plus one, the batches in flight never take all the room the
        # application writes into (a third of the ring each with two senders).
        self.batch_cap = min(
            settings.max_batch_bytes, self.reader.capacity // (settings.max_in_flight + 1)
        )
        self.high_water = int(self.reader.capacity * HIGH_WATER)
        self.low_water = int(self.reader.capacity * LOW_WATER)
        # The application's pid comes from the settings, not getppid(): an application that
        # dies while its writer is still starting up must still be noticed.
        self.parent_pid = settings.producer_pid
        self.terminated = False  # SIGTERM/SIGINT: deliver or spool what is left, then exit
        for kind in KINDS:
            self.cuts.forget_below(kind, self.reader.tail(kind))
        self.control.writer_started(os.getpid())

    # --- signals from the application

    def producer_gone(self) -> bool:
        return os.getppid() != self.parent_pid

    def shutdown_requested(self) -> bool:
        return self.control.shutdown_requested

    def exiting(self) -> bool:
        return self.terminated or self.shutdown_requested() or self.producer_gone()

    def token(self, batch: Batch) -> str:
        return batch_token(self.segment.name, batch.kind, batch.start, batch.end)

    # --- the loop

    def run(self) -> None:
        self.senders.start()
        try:
            self._loop()
        finally:
            self.senders.stop(5.0)

    def _loop(self) -> None:
        sleep = IDLE_MIN_SLEEP
        while True:
            self.control.beat()
            finished = self.collect()
            exiting = self.exiting()
            if exiting and self.delivery.exit_deadline is None:
                self.delivery.exit_deadline = time.monotonic() + self.exit_grace()
                self.delivery.exit_event.set()
            handed = self.dispatch(exiting)
            self.commit()
            now = time.monotonic()
            self.spooling.publish_level(now)
            if exiting and (self.empty() or self._safe_to_leave(now)):
                # batches still in flight have their rows on disk: replayable from now on
                self.spooling.release_copies(self.senders.in_flight)
                self.spooling.publish_level(now, force=True)
                break
            over = now > (self.delivery.exit_deadline or 0.0)
            if exiting and over and not self.senders.in_flight:
                self.publisher.publish(logging.ERROR, "exit", self._lost_message())
                break
            if finished or handed:
                sleep = IDLE_MIN_SLEEP
                continue
            time.sleep(sleep)
            sleep = min(sleep * 2, IDLE_MAX_SLEEP)

    def exit_grace(self) -> float:
        """How long a writer asked to exit keeps trying to deliver what is left."""
        s = self.settings
        return min(max(5.0, s.timeout * (s.max_retries + 1)), EXIT_DELIVERY_DEADLINE)

    def empty(self) -> bool:
        """Nothing left that this writer must deliver or spool before it exits."""
        return not self.parked and not self.senders.in_flight and self._all_read()

    def _all_read(self) -> bool:
        """Every published row of every ring is in a batch (taken out of the ring)."""
        return all(self.reader.available(k)[0] == self.reader.head(k) for k in KINDS)

    def _safe_to_leave(self, now: float) -> bool:
        """Exiting while the destination cannot take batches: every row is on disk (batches
        in flight have their copies), so waiting for the requests in flight is pointless."""
        return (
            not self.parked
            and self.delivery.health.blocked(now)
            and all(b.safe for b in self.senders.in_flight)
            and self._all_read()
        )

    # --- results

    def collect(self) -> int:
        """Take the senders' results. A delivered batch is done (its files in the spool go); a
        ring batch that failed goes to the spool, so the ring moves on; a batch with files in
        the spool that failed leaves them there for replay. A failure pauses sending."""
        count = 0
        results = self.senders.results
        while not results.empty():
            batch, ok = results.get_nowait()
            count += 1
            self.senders.done(batch)
            had_files = batch.spooled is not None or batch.copy is not None
            if had_files:
                self.spooling.settle(batch, ok)
            if ok:
                continue
            self.delivery.health.park(self.settings.retry_backoff_base)
            if not had_files and batch.from_ring:
                self._to_disk(batch)
        return count

    def _to_disk(self, batch: Batch) -> None:
        """A ring batch out of the ring: into the spool, or kept in memory when there is none
        or the disk refuses it (it then holds its rows in the ring)."""
        spooling = self.spooling
        if spooling.writable(time.monotonic()) and spooling.spill(batch) is not Stored.FAILED:
            return
        self.parked.append(batch)
        self.parked.sort(key=lambda b: (b.kind, b.start))

    # --- dispatch

    def dispatch(self, exiting: bool) -> bool:
        now = time.monotonic()
        handed = self._make_room(now, exiting)
        return self._send(exiting) or handed

    def _cap(self, kind: int) -> int:
        cap = self.batch_cap
        if self._ring_bytes_for is not None:  # ring rows that grow into a larger request
            cap = min(cap, self._ring_bytes_for(kind, self.settings.max_batch_bytes))
        return cap

    def _spill_cap(self, kind: int) -> int:
        # bound for the spool: a batch bigger than the spool would be dropped whole
        return max(min(self._cap(kind), self.settings.spool_max_bytes // 4), MIN_SPILL_BYTES)

    def _stalled(self, now: float) -> bool:
        """A request in flight longer than the timeout allows: the destination is hanging."""
        oldest = self.senders.oldest_sent_at()
        return oldest is not None and now - oldest > self.settings.timeout + 1.0

    def _make_room(self, now: float, exiting: bool) -> bool:
        """Put on disk the rows that would otherwise hold a ring (see the module docstring)."""
        spooling = self.spooling
        if not spooling.writable(now):
            return False
        blocked = self.delivery.health.blocked(now) or self._stalled(now)
        handed = False
        for kind in KINDS:
            used = self.reader.head(kind) - self.reader.tail(kind)
            if blocked:
                # nothing leaves soon: every row onto disk, as it makes full batches
                excess, mode = used, Take.FULL
            elif used > self.high_water:
                # the producer outruns a working destination: the oldest rows onto disk, so
                # that what holds the ring is back under the low-water mark; the rest go
                # as they would (nothing is written to disk that need not be)
                excess, mode = used - self.low_water, Take.ALL
            else:
                continue
            for batch in sorted(self.senders.in_flight, key=lambda b: b.start):
                if excess <= 0:
                    break
                if batch.kind != kind or not batch.from_ring:
                    continue
                needs_copy = not (batch.safe or batch.copy_refused)
                if needs_copy and spooling.keep_copy(batch) is Stored.FAILED:
                    return handed  # the disk refuses: the ring keeps the rows
                if batch.safe:  # a copy the spool had no room for frees nothing
                    excess -= batch.end - batch.start
            for waiting in [b for b in self.parked if b.kind == kind]:
                if spooling.spill(waiting) is Stored.FAILED:
                    return handed
                self.parked.remove(waiting)
                excess -= waiting.end - waiting.start
                handed = True
            budget = self.batcher.unread(kind)  # what is there now, not what comes meanwhile
            while budget > 0 and (blocked or excess > 0):
                taken = self.batcher.take(
                    kind, now, cap=self._spill_cap(kind), mode=mode, exiting=exiting,
                    flush_target=self.control.flush_target(kind),
                )  # fmt: skip
                if taken is None:
                    break
                budget -= taken.end - taken.start
                if not blocked:
                    excess -= taken.end - taken.start
                self.cuts.remember(kind, taken.start, taken.end)
                handed = True
                if spooling.spill(taken) is Stored.FAILED:
                    self.parked.append(taken)
                    return handed
        return handed

    def _send(self, exiting: bool) -> bool:
        """Hand batches to free senders: what waits in memory first, then what the spool
        holds (oldest first), then the ready rows of the ring that waited longest. While the
        destination is unhealthy, one batch at a time probes it once the pause is over."""
        handed = False
        health = self.delivery.health
        batcher = self.batcher
        while self.senders.free:
            now = time.monotonic()
            if now < health.parked_until or (not health.healthy and self.senders.in_flight):
                break
            if self.parked:
                self.senders.submit(self.parked.pop(0))
                handed = True
                continue
            replay = self.spooling.next_replay(health.healthy)
            if replay is not None:
                self.senders.submit(replay)
                handed = True
                continue
            mode = Take.FULL if self.senders.in_flight else Take.READY
            order = sorted(KINDS, key=lambda k: batcher.waiting_since[k] or now)
            batch = next(
                (
                    b
                    for k in order
                    if (b := batcher.take(k, now, cap=self._cap(k), mode=mode, exiting=exiting,
                                          flush_target=self.control.flush_target(k)))
                ),
                None,
            )  # fmt: skip
            if batch is None:
                break
            self.cuts.remember(batch.kind, batch.start, batch.end)
            self.senders.submit(batch)
            handed = True
        return handed

    # --- commit

    def commit(self) -> None:
        """Move each ring's tail to the start of its oldest batch neither delivered nor on
        disk; ``DELIVERED`` (what ``flush`` waits for) also stays below rows on disk."""
        pending = self.parked + [b for b in self.senders.in_flight if not b.safe]
        for kind in KINDS:
            starts = [b.start for b in pending if b.kind == kind]
            position = min(starts) if starts else self.reader.positions[kind]
            if position > self.reader.tail(kind):
                self.reader.commit(kind, position)
            self.cuts.forget_below(kind, self.reader.tail(kind))
            if self.spooling.unknown:
                continue
            self.control.mark_delivered(kind, min([position, *self.spooling.on_disk(kind)]))

    def _lost_message(self) -> str:
        rows = sum(b.rows for b in self.parked) + sum(b.rows for b in self.senders.in_flight)
        pending = sum(self.reader.head(k) - self.reader.positions[k] for k in KINDS)
        return (
            f"writer exiting: {self.sink.name} could not take {rows} rows (and {pending} unread "
            f"bytes) within {self.exit_grace():.0f} s; they are lost"
        )

    def close(self, *, unlink: bool) -> None:
        self.sink.close()
        self.reader.release()
        self.segment.close()
        if unlink:
            self.segment.unlink()
