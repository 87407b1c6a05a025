"""The writer's main loop: batches out of the rings, senders, spool, commit (see the package
docstring)."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import lz4.frame

from ..control import CutTable
from ..ring.layout import KIND_NAMES, KINDS, Slot
from ..ring.segment import SharedSegment
from ..ring.spsc import RingReader
from ..rows.framing import SPLITTERS
from ..settings import WriterSettings
from ..spool import Spool, SpooledBatch
from ..transport import (
    BatchTooLarge,
    HttpClient,
    Outcome,
    Prepared,
    RetrySchedule,
    Sink,
    wait,
)

log = logging.getLogger("automagik_telemetry.writer")

IDLE_MIN_SLEEP = 0.00005
IDLE_MAX_SLEEP = 0.005
PARKED_MAX_WAIT = 30.0  # longest pause between attempts once a batch's retries are spent
EXIT_DELIVERY_DEADLINE = 30.0  # longest a writer asked to exit keeps trying
SPOOL_ENCODING = "lz4-rows"  # spool files hold the ring's rows, LZ4-framed
SET_ASIDE_DIRECTORY = "rejected"  # in the spool directory: batches the destination refused


def build_sink(settings: WriterSettings) -> Sink:
    tables = dict(zip(KINDS, settings.clickhouse_tables, strict=True))
    if settings.backend == "clickhouse":
        from ..sinks.clickhouse import ClickHouseSink

        return ClickHouseSink(
            endpoint=settings.clickhouse_endpoint,
            database=settings.clickhouse_database,
            tables=tables,
            username=settings.clickhouse_username,
            password=settings.clickhouse_password,
            http=HttpClient(settings.timeout, pool_size=settings.max_in_flight + 1),
            compression=settings.compression,
            compression_threshold=settings.compression_threshold,
            row_suffixes=settings.row_suffixes,
        )
    if settings.backend == "embedded":
        from ..sinks.embedded import EmbeddedSink

        return EmbeddedSink(
            path=settings.embedded_path,
            database=settings.clickhouse_database,
            tables=tables,
            table_names=settings.clickhouse_tables,
            row_suffixes=settings.row_suffixes,
        )
    if settings.backend == "otlp":
        from ..sinks.otlp.sink import OtlpSink

        return OtlpSink.from_settings(settings, HttpClient(settings.timeout))
    raise ValueError(f"unknown backend {settings.backend!r}")


@dataclass
class Batch:
    """A run of rows of one ring, ``[start, end)``, copied out and not yet delivered."""

    kind: int
    start: int
    end: int
    rows: int
    body: bytes
    token: str = ""  # deduplication token, fixed when the batch is first sent
    spooled: SpooledBatch | None = None  # set for a batch replayed from the spool
    attempts: int | None = None  # retries allowed; None: the configured max_retries


def store(spool: Spool, batch: Batch) -> bool:
    """Write a batch's rows into ``spool``, LZ4-framed (``SPOOL_ENCODING``)."""
    body = bytes(lz4.frame.compress(batch.body))
    return spool.put(batch.kind, batch.rows, batch.token, SPOOL_ENCODING, body)


def oversized(exc: BatchTooLarge) -> Outcome:
    return Outcome(ok=False, key="oversized", too_large=True, message=f"{exc}; sent in halves")


def unreadable(exc: ValueError) -> Outcome:
    return Outcome(
        ok=False,
        key="unreadable",
        refused_content=True,
        message=(
            f"a batch could not be turned into a request ({exc}); please report it to "
            "automagik-telemetry"
        ),
    )


class Senders:
    """A few threads that each deliver one batch at a time, with its retries, while the main
    thread prepares the next. ClickHouse parses each insert on one core, so two inserts in
    flight use the server's cores (measured on 18.16, 2 cores: 214k rows/s with one, 352k with
    two); compression and HTTP release the GIL, so the threads overlap with the main one."""

    def __init__(self, deliver: Callable[[Batch], bool], count: int) -> None:
        self._deliver = deliver
        self._jobs: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[Batch, bool]] = queue.SimpleQueue()
        self.in_flight: list[Batch] = []
        self.capacity = count
        self._threads = [
            threading.Thread(target=self._run, name=f"automagik-telemetry-sender-{i}", daemon=True)
            for i in range(count)
        ]

    @property
    def free(self) -> bool:
        return len(self.in_flight) < self.capacity

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, batch: Batch) -> None:
        self.in_flight.append(batch)
        self._jobs.put(batch)

    def done(self, batch: Batch) -> None:
        self.in_flight.remove(batch)

    def stop(self, timeout: float) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        while (batch := self._jobs.get()) is not None:
            try:
                ok = self._deliver(batch)
            except Exception as exc:  # a bug must not stop delivery silently
                log.exception("delivery failed unexpectedly: %s", exc)
                ok = False
            self.results.put((batch, ok))


class Writer:
    def __init__(self, settings: WriterSettings, segment: SharedSegment, sink: Sink) -> None:
        self.settings = settings
        self.segment = segment
        self.reader = RingReader(segment)
        self.sink = sink
        self.words = self.reader.words
        self.parked: list[Batch] = []
        self.senders = Senders(self.deliver, settings.max_in_flight)
        self._split = SPLITTERS[settings.record_format]
        self._ring_bytes_for: Callable[[int, int], int] | None = getattr(
            sink, "ring_bytes_for", None
        )
        # A batch holds its rows in the ring until delivered: with one part of the ring per
        # batch in flight plus one, the batches in flight never take all the room the
        # application writes into (a third of the ring each with two senders).
        self.batch_cap = min(
            settings.max_batch_bytes, self.reader.capacity // (settings.max_in_flight + 1)
        )
        self._stats_lock = threading.Lock()
        self._discover_lock = threading.Lock()
        # The application's pid comes from the settings, not getppid(): an application that
        # dies while its writer is still starting up must still be noticed.
        self.parent_pid = settings.producer_pid
        self._waiting_since: list[float | None] = [None] * len(KINDS)
        self._error_key = ""
        self._failures = 0
        self._parked_until = 0.0
        self._parked_wait = 0.0
        self._discovered = False
        self._exit_deadline: float | None = None
        self.spool = (
            Spool(settings.spool_dir, settings.spool_max_bytes, settings.spool_full_policy)
            if settings.spool_dir
            else None
        )
        # Batches the destination refused for what they hold: kept, never replayed on their
        # own (the same bytes would be refused again); a quarter of the spool's bound.
        self.set_aside = (
            Spool(
                os.path.join(settings.spool_dir, SET_ASIDE_DIRECTORY),
                settings.spool_max_bytes // 4,
                "drop_newest",
            )
            if settings.spool_dir
            else None
        )
        self._set_aside_lock = threading.Lock()
        self._spool_pending = self.spool is not None and len(self.spool) > 0
        # Spool files this writer did not write (an earlier writer's, maybe for rows of this
        # very ring): until they are replayed, flush() must not report the ring delivered.
        self._unknown_spool = self._spool_pending
        self._spooled_here: dict[str, tuple[int, int]] = {}  # token -> (kind, ring start)
        # Ring batches the spool could not keep: flush() can never report them delivered.
        self._lost_here: list[tuple[int, int]] = []
        self._drops_published = 0
        self._corrupt_published = 0
        self._published_keys: set[str] = set()
        self._pause_until = 0.0  # Retry-After from the destination: no sender sends before
        self.healthy = True  # the sink took the last batch (optimistic at start)
        self.terminated = False  # SIGTERM/SIGINT: deliver or spool what is left, then exit
        self._cuts = CutTable(self.words)
        for kind in KINDS:
            self._cuts.forget_below(kind, self.reader.tail(kind))
        self.words[Slot.WRITER_PID] = os.getpid()
        self.words[Slot.WRITER_STARTS] = int(self.words[Slot.WRITER_STARTS]) + 1

    # --- signals from the application

    def producer_gone(self) -> bool:
        return os.getppid() != self.parent_pid

    def shutdown_requested(self) -> bool:
        return bool(self.words[Slot.SHUTDOWN])

    def exiting(self) -> bool:
        return self.terminated or self.shutdown_requested() or self.producer_gone()

    def flush_target(self, kind: int) -> int:
        return int(self.words[Slot.ring(kind, Slot.FLUSH_REQUEST)])

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
            self.words[Slot.HEARTBEAT_NS] = time.time_ns()
            finished = self.collect()
            exiting = self.exiting()
            if exiting and self._exit_deadline is None:
                self._exit_deadline = time.monotonic() + self.exit_grace()
            handed = self.dispatch(exiting)
            self.commit()
            if exiting and self.empty():
                break
            over = time.monotonic() > (self._exit_deadline or 0.0)
            if exiting and over and not self.senders.in_flight:
                self.publish(logging.ERROR, "exit", self._lost_message())
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
        if self.parked or self.senders.in_flight:
            return False
        return all(self.reader.available(k)[0] == self.reader.head(k) for k in KINDS)

    def take(self, kind: int, now: float, exiting: bool) -> Batch | None:
        """The unread rows of ``kind`` as a batch, if they are ready to go."""
        start, head = self.reader.available(kind)
        if start == head:
            self._waiting_since[kind] = None
            return None
        since = self._waiting_since[kind]
        if since is None:
            since = self._waiting_since[kind] = now
        settings = self.settings
        cap = self.batch_cap
        if self._ring_bytes_for is not None:  # ring rows that grow into a larger request
            cap = min(cap, self._ring_bytes_for(kind, settings.max_batch_bytes))
        if not self.healthy and self.spool is not None:
            # bound for the spool: a batch bigger than the spool would be dropped whole
            cap = max(min(cap, settings.spool_max_bytes // 4), 4096)
        cut = self._cuts.end_of(kind, start)
        if cut is not None and cut <= head:
            # a batch a previous writer started sending: cut it the same way, so that its
            # deduplication token is the same and the server can recognise a repeat
            body = self.reader.copy(kind, start, cut)
            self.reader.advance(kind, cut)
            return Batch(kind, start, cut, self._split(body, len(body))[1], body)
        due = exiting or now - since >= settings.flush_interval or self.flush_target(kind) > start
        if not due and self.senders.in_flight and head - start < cap:
            # Another batch is on its way: let this one grow to a full batch. Under load the
            # inserts are then as large as the cap allows, and each insert costs the server a
            # part to write and later merge (measured on 18.16: 5.5 µs of server CPU per row
            # in 31k-row inserts, 3.3 µs in 250k-row ones). A batch that waits here is never
            # copied, so waiting costs nothing per pass.
            return None
        # A window one byte past the cap tells whether more rows wait than one batch takes,
        # and one past the largest row always holds a whole row.
        window = max(cap, self.reader.max_row) + 1
        body = self.reader.copy(kind, start, min(head, start + window))
        length, rows = self._split(body, cap)
        if not rows:
            return None  # cannot happen: the window holds a whole row
        if length < len(body):
            body = body[:length]
        elif not due and rows < settings.batch_size and length < cap // 2:
            return None
        end = self._end_after(kind, start, head, len(body))
        self.reader.advance(kind, end)
        self._waiting_since[kind] = None if end == head else now
        return Batch(kind, start, end, rows, body)

    def _end_after(self, kind: int, start: int, head: int, length: int) -> int:
        """Ring position just after ``length`` bytes copied from ``start`` (the copy skips the
        unused end of a lap when the window crosses one)."""
        lap_end = (start | self.reader.mask) + 1
        if head <= lap_end:
            return start + length
        first_part = self.reader.lap_used_end(kind, start) - start
        return start + length if length <= first_part else lap_end + (length - first_part)

    def collect(self) -> int:
        """Take the senders' results. A delivered batch is done (and leaves the spool if it
        came from there); a ring batch that failed goes to the spool, so the ring moves on; a
        spooled batch that failed goes back to the spool. Any failure pauses sending."""
        count = 0
        while True:
            try:
                batch, ok = self.senders.results.get_nowait()
            except queue.Empty:
                return count
            count += 1
            self.senders.done(batch)
            if ok:
                self.healthy = True
                if batch.spooled is not None and self.spool is not None:
                    self.spool.remove(batch.spooled.path)
                    self._spooled_here.pop(batch.token, None)
                continue
            self.healthy = False
            self._park()
            if batch.spooled is not None and self.spool is not None:
                self.spool.release(batch.spooled)
            else:
                self.to_spool(batch)

    def to_spool(self, batch: Batch) -> None:
        """Keep a ring batch on disk (the ring can then move past it), or, without a spool,
        in memory until the sink takes it."""
        if self.spool is None:
            self.parked.append(batch)
            self.parked.sort(key=lambda b: (b.kind, b.start))
            return
        if not batch.token:
            batch.token = self.token(batch)
        ok = store(self.spool, batch)
        with self._stats_lock:
            if ok:
                self._spool_pending = True
                self._spooled_here[batch.token] = (batch.kind, batch.start)
                self.words[Slot.ROWS_SPOOLED] = int(self.words[Slot.ROWS_SPOOLED]) + batch.rows
                slot = Slot.BATCHES_SPOOLED
                self.words[slot] = int(self.words[slot]) + 1
            else:
                self._lost_here.append((batch.kind, batch.start))
                self.publish(
                    logging.ERROR,
                    "spool-full",
                    f"the spool at {self.settings.spool_dir} is full "
                    f"({self.settings.spool_max_bytes} bytes, policy "
                    f"{self.settings.spool_full_policy}): dropped {batch.rows} rows; counted in "
                    "get_status(). Fix: bring the destination back, or raise spool_max_bytes",
                )
            self._publish_spool_counts()

    def _publish_spool_counts(self) -> None:
        """Add this writer's new spool drops to the segment's counters (which outlive it)."""
        if self.spool is not None:
            stats = self.spool.stats
            for slot, total, attr in (
                (Slot.ROWS_DROPPED_WRITER, stats.rows_dropped, "_drops_published"),
                (Slot.SPOOL_CORRUPT, stats.corrupt_files, "_corrupt_published"),
            ):
                delta = total - getattr(self, attr)
                if delta:
                    self.words[slot] = int(self.words[slot]) + delta
                    setattr(self, attr, total)

    def token(self, batch: Batch) -> str:
        return f"{self.segment.name}-{batch.kind}-{batch.start}-{batch.end}"

    def dispatch(self, exiting: bool) -> bool:
        """Hand batches to free senders. While the sink is healthy: what the spool holds
        first (oldest first), then the ready rows of the ring that waited longest. While it is
        not: ready rows go straight to the spool (an outage never fills the ring), and one
        batch at a time probes the sink when the pause is over."""
        handed = False
        now = time.monotonic()
        if not self.healthy and self.spool is not None:
            for kind in KINDS:
                while (batch := self.take(kind, now, exiting)) is not None:
                    self.to_spool(batch)
                    handed = True
        while self.senders.free:
            now = time.monotonic()
            paused = now < self._parked_until and not (exiting and self._exit_deadline is None)
            if paused or (not self.healthy and self.senders.in_flight):
                break
            if self.parked:
                self.senders.submit(self.parked.pop(0))
                handed = True
                continue
            if self._spool_pending and self.spool is not None:
                spooled = self.spool.take_oldest()
                if spooled is None:
                    self._spool_pending = self._unknown_spool = False
                else:
                    self.senders.submit(self._replay(spooled))
                    handed = True
                    continue
            order = sorted(KINDS, key=lambda k: self._waiting_since[k] or now)
            batch = next((b for k in order if (b := self.take(k, now, exiting))), None)
            if batch is None:
                break
            self._cuts.remember(batch.kind, batch.start, batch.end)
            self.senders.submit(batch)
            handed = True
        return handed

    def _replay(self, spooled: SpooledBatch) -> Batch:
        header = spooled.header
        body = spooled.body
        if header.encoding == SPOOL_ENCODING:
            body = lz4.frame.decompress(body)
        # While the sink is down, a replay is a probe: one attempt, then back to the spool.
        attempts = None if self.healthy else 0
        return Batch(header.kind, -1, -1, header.rows, body, header.token, spooled, attempts)

    def deliver(self, batch: Batch) -> bool:
        """(Sender thread) Send one batch with its retries. True when the sink has it."""
        retries = self.settings.max_retries if batch.attempts is None else batch.attempts
        schedule = RetrySchedule(retries, self.settings.retry_backoff_base)
        if not batch.token:
            batch.token = self.token(batch)
        prepared = None
        while True:
            self._wait_for_pause()
            outcome = self._discover()
            if outcome.ok:
                if prepared is None:
                    try:
                        prepared = self.sink.prepare(batch.kind, batch.body, batch.token)
                    except BatchTooLarge as exc:
                        return self._deliver_halves(batch, oversized(exc))
                    except ValueError as exc:  # rows this sink cannot read: kept, not retried
                        self._put_aside(batch, unreadable(exc))
                        return True
                outcome = self.sink.send(prepared)
            if outcome.ok:
                self._on_delivered(batch, prepared)
                if outcome.message:
                    self._on_notice(outcome)
                return True
            if outcome.too_large and batch.rows > 1:
                return self._deliver_halves(batch, outcome)
            if outcome.refused_content or outcome.too_large:
                self._put_aside(batch, outcome)
                return True  # done with: the ring and the spool may let it go
            self._on_failure(outcome)
            self._honour_retry_after(outcome)
            pause = schedule.next_wait(outcome) if outcome.retryable else None
            if pause is None:
                return False
            with self._stats_lock:
                self.words[Slot.RETRIES] = int(self.words[Slot.RETRIES]) + 1
            deadline = self._exit_deadline
            if deadline is not None and time.monotonic() + pause > deadline:
                return False
            if deadline is None and wait(pause, self.exiting):
                return False  # asked to exit: the main loop sets a deadline and retries
            if deadline is not None:
                time.sleep(pause)

    def _deliver_halves(self, batch: Batch, outcome: Outcome) -> bool:
        """(Sender thread) The destination found the request too large: send the batch again
        as two halves, each with its own retries (and halved again if need be)."""
        length, rows = self._split(batch.body, len(batch.body) // 2)
        if rows >= batch.rows:  # one row holds it all
            self._put_aside(batch, outcome)
            return True
        log.debug(
            "%s: %d rows sent again as %d + %d", outcome.key, batch.rows, rows, batch.rows - rows
        )
        halves = (
            Batch(batch.kind, -1, -1, rows, batch.body[:length], f"{batch.token}.1"),
            Batch(batch.kind, -1, -1, batch.rows - rows, batch.body[length:], f"{batch.token}.2"),
        )
        # a half that cannot be delivered fails the whole batch, which is then kept whole
        # (spooled): the half already delivered goes again (at least once)
        return all(self.deliver(half) for half in halves)

    def _put_aside(self, batch: Batch, outcome: Outcome) -> None:
        """(Sender thread) Keep a batch the destination refused for what it holds in the spool's
        ``rejected/`` directory, so it stops nothing behind it and is not lost: moved back
        into the spool directory, its files are sent again (after the cause is fixed)."""
        kept = False
        where = "nowhere: no spool directory"
        if self.set_aside is not None:
            where = str(self.set_aside.directory)
            with self._set_aside_lock:
                kept = store(self.set_aside, batch)
        with self._stats_lock:
            words = self.words
            words[Slot.SEND_FAILURES] = int(words[Slot.SEND_FAILURES]) + 1
            slot = Slot.ROWS_SET_ASIDE if kept else Slot.ROWS_REJECTED
            words[slot] = int(words[slot]) + batch.rows
            if kept:
                fate = (
                    f"; the batch ({batch.rows} rows) is set aside in {where}: move its files "
                    f"into {self.settings.spool_dir} to send them again once fixed"
                )
            else:
                fate = f"; the batch ({batch.rows} rows) could not be kept ({where}): dropped"
            self.publish(logging.ERROR, outcome.key, outcome.message + fate)

    def _discover(self) -> Outcome:
        with self._discover_lock:
            return self._discover_locked()

    def _discover_locked(self) -> Outcome:
        outcome = self.sink.discover()
        if outcome.ok and not self._discovered:
            self._discovered = True
            codec = getattr(self.sink, "codec_name", "")
            version = getattr(getattr(self.sink, "facts", None), "version", "")
            log.debug("sink ready: %s %s codec=%s", self.sink.name, version, codec)
        if not outcome.ok:
            self._discovered = False
        return outcome

    def _on_delivered(self, batch: Batch, prepared: Prepared | None) -> None:
        with self._stats_lock:
            self._count_delivered(batch, prepared)

    def _count_delivered(self, batch: Batch, prepared: Prepared | None) -> None:
        wire_bytes = len(prepared.wire) if prepared is not None else 0
        raw_bytes = prepared.raw_bytes if prepared is not None and prepared.raw_bytes else 0
        words = self.words
        words[Slot.ROWS_SENT] = int(words[Slot.ROWS_SENT]) + batch.rows
        words[Slot.BATCHES_SENT] = int(words[Slot.BATCHES_SENT]) + 1
        words[Slot.BYTES_WIRE] = int(words[Slot.BYTES_WIRE]) + wire_bytes
        words[Slot.BYTES_RAW] = int(words[Slot.BYTES_RAW]) + (raw_bytes or len(batch.body))
        if self.settings.verbose:
            log.info(
                "sent %d %s rows, %d bytes on the wire",
                batch.rows,
                KIND_NAMES[batch.kind],
                wire_bytes,
            )
        if self._failures:
            self.publish(
                logging.INFO,
                "",
                f"delivery to {self.sink.name} recovered after {self._failures} failed attempts",
            )
        self._failures = 0
        self._published_keys.clear()
        self._parked_wait = 0.0
        self._parked_until = 0.0
        words[Slot.SINK_STATE] = 1

    def _on_notice(self, outcome: Outcome) -> None:
        """Delivered, with something to say (e.g. items the destination rejected): count the
        rejected items and log the message once per kind."""
        with self._stats_lock:
            if outcome.rejected:
                slot = Slot.ROWS_REJECTED
                self.words[slot] = int(self.words[slot]) + outcome.rejected
            self.publish(logging.WARNING, outcome.key or outcome.message, outcome.message)

    def _on_failure(self, outcome: Outcome) -> None:
        with self._stats_lock:
            self._count_failure(outcome)

    def _count_failure(self, outcome: Outcome) -> None:
        self._failures += 1
        self.words[Slot.SEND_FAILURES] = int(self.words[Slot.SEND_FAILURES]) + 1
        self.words[Slot.SINK_STATE] = 2 if outcome.retryable else 3
        level = logging.WARNING if outcome.retryable else logging.ERROR
        self.publish(level, outcome.key or outcome.message, outcome.message)

    def _honour_retry_after(self, outcome: Outcome) -> None:
        """The destination asked for a pause: no sender sends before it is over."""
        if outcome.retry_after:
            self._pause_until = max(self._pause_until, time.monotonic() + outcome.retry_after)

    def _wait_for_pause(self) -> None:
        left = self._pause_until - time.monotonic()
        if left > 0:
            wait(left, lambda: self._exit_deadline is not None and self.exiting())

    def _park(self) -> None:
        """Retries spent: keep the rows (in the ring, uncommitted) and pause all sending,
        longer each time (up to PARKED_MAX_WAIT). The application is never blocked by this;
        the full-ring policy applies if the outage outlasts the ring's room."""
        base = max(self.settings.retry_backoff_base, 0.1)
        self._parked_wait = min(max(self._parked_wait * 2, base), PARKED_MAX_WAIT)
        self._parked_until = max(time.monotonic() + self._parked_wait, self._pause_until)

    def publish(self, level: int, key: str, message: str) -> None:
        """Hand a message to the client, which logs it in the application: once per kind of
        trouble (``key``), not once per batch."""
        if key and (key == self._error_key or key in self._published_keys):
            return
        self._error_key = key
        if key:
            self._published_keys.add(key)
        self.reader.messages.write(level, message)

    def commit(self) -> None:
        """Move each ring's tail to the start of its oldest batch neither delivered nor
        spooled; ``DELIVERED`` (what ``flush`` waits for) also stays below spooled batches."""
        pending = self.parked + [b for b in self.senders.in_flight if b.spooled is None]
        spooled = list(self._spooled_here.values())
        for kind in KINDS:
            starts = [b.start for b in pending if b.kind == kind]
            position = min(starts) if starts else self.reader.positions[kind]
            if position > self.reader.tail(kind):
                self.reader.commit(kind, position)
            on_disk = [start for k, start in [*spooled, *self._lost_here] if k == kind]
            delivered = min([position, *on_disk])
            self._cuts.forget_below(kind, self.reader.tail(kind))
            if self._unknown_spool:
                continue
            slot = Slot.ring(kind, Slot.DELIVERED)
            if delivered > int(self.words[slot]):
                self.words[slot] = delivered

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
