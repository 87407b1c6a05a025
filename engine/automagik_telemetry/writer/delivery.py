"""Delivery of one batch (sender threads): attempts under the retry policy, a batch too large
sent again in halves, a batch the destination refuses for what it holds set aside, pauses the
destination asks for; and the health of the destination, which every attempt updates.

Health is decided per attempt, not per batch: the first attempt that fails (refused, reset, or
no answer within ``timeout``) makes the destination unhealthy at once, so that the main thread
stops holding rows in the ring for it and puts them on disk while this sender retries. The
next attempt that succeeds makes it healthy again. After a batch's retries are spent, sending
pauses (``park``), longer each time up to ``PARKED_MAX_WAIT``; one batch at a time probes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..control import Control, Counter, SinkState
from ..retry import RetryPolicy, pause
from ..ring.layout import KIND_NAMES
from ..transport import BatchTooLarge, Outcome, Prepared, Sink
from .batch import Batch
from .batcher import Splitter
from .publish import Publisher

log = logging.getLogger("automagik_telemetry.writer")

PARKED_MAX_WAIT = 10.0  # longest pause between probes once a batch's retries are spent


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


@dataclass
class Health:
    """Whether batches can leave now. Written by the senders, read by the main thread (plain
    attributes: each store is atomic under the GIL)."""

    healthy: bool = True  # the last attempt succeeded (optimistic at start)
    failures: int = 0  # attempts failed since the last success
    parked_until: float = 0.0  # no sending before (retries of a batch spent)
    parked_wait: float = 0.0
    paused_until: float = 0.0  # no sending before (the destination asked: Retry-After)

    def blocked(self, now: float) -> bool:
        """Batches cannot leave soon: rows should go to disk rather than wait in the ring."""
        return not self.healthy or now < self.parked_until or now < self.paused_until

    def park(self, base: float) -> None:
        """A batch's retries are spent: pause all sending, longer each time."""
        self.parked_wait = min(max(self.parked_wait * 2, max(base, 0.1)), PARKED_MAX_WAIT)
        self.parked_until = max(time.monotonic() + self.parked_wait, self.paused_until)

    def pause_for(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)


class Delivery:
    """Sends batches to ``sink`` (from the sender threads)."""

    def __init__(
        self,
        sink: Sink,
        control: Control,
        policy: RetryPolicy,
        split: Splitter,
        *,
        publisher: Publisher,
        put_aside: Callable[[Batch, Outcome], None],
        token: Callable[[Batch], str],
        stats_lock: threading.Lock,
        verbose: bool = False,
    ) -> None:
        self.sink = sink
        self.control = control
        self.policy = policy
        self.split = split
        self.publisher = publisher
        self.publish = publisher.publish
        self.put_aside = put_aside
        self.token = token
        self.stats_lock = stats_lock
        self.verbose = verbose
        self.health = Health()
        #: set when the writer is asked to exit: waits end at once
        self.exit_event = threading.Event()
        #: set by the main thread once exiting: the time left to keep trying
        self.exit_deadline: float | None = None
        self._discover_lock = threading.Lock()
        self._discovered = False

    def deliver(self, batch: Batch) -> bool:
        """(Sender thread) Send one batch with its retries. True when the destination has it
        (or it was set aside: done with either way)."""
        retries = self.policy.retries if batch.attempts is None else batch.attempts
        if not batch.token:
            batch.token = self.token(batch)
        prepared: Prepared | None = None
        retry = 0
        sent_at = time.monotonic()
        while True:
            left = self.health.paused_until - time.monotonic()
            if left > 0 and pause(left, self.exit_event) and self.exit_deadline is None:
                return False  # asked to exit during a pause: the main loop decides
            outcome = self._discover()
            if outcome.ok:
                if prepared is None:
                    try:
                        prepared = self.sink.prepare(
                            batch.kind, batch.body, batch.token, batch.origin
                        )
                    except BatchTooLarge as exc:
                        return self._deliver_halves(batch, oversized(exc))
                    except ValueError as exc:  # rows this sink cannot read: kept, not retried
                        self.put_aside(batch, unreadable(exc))
                        return True
                sent_at = time.monotonic()
                outcome = self.sink.send(prepared)
            if outcome.ok:
                self._on_delivered(batch, prepared, outcome, time.monotonic() - sent_at)
                return True
            if outcome.too_large and batch.rows > 1:
                return self._deliver_halves(batch, outcome)
            if outcome.refused_content or outcome.too_large:
                self.put_aside(batch, outcome)
                return True  # done with: the ring and the spool may let it go
            if outcome.replan:
                prepared = None  # built again from what the sink now knows
            self._on_failure(outcome)
            retry += 1
            wait = (
                self.policy.wait_before(retry, outcome.retry_after)
                if outcome.retryable and retry <= retries
                else None
            )
            if wait is None:
                return False
            with self.stats_lock:
                self.control.add(Counter.RETRIES)
            deadline = self.exit_deadline
            if deadline is not None:
                if time.monotonic() + wait > deadline:
                    return False
                time.sleep(wait)  # exiting, with time left: keep trying
            elif pause(wait, self.exit_event):
                return False  # asked to exit: the main loop sets a deadline and goes on

    def _deliver_halves(self, batch: Batch, outcome: Outcome) -> bool:
        """The destination found the request too large: send the batch again as two halves,
        each with its own retries (and halved again if need be)."""
        length, rows = self.split(batch.body, len(batch.body) // 2)
        if rows >= batch.rows:  # one row holds it all
            self.put_aside(batch, outcome)
            return True
        log.debug(
            "%s: %d rows sent again as %d + %d", outcome.key, batch.rows, rows, batch.rows - rows
        )
        halves = (
            Batch(
                batch.kind,
                -1,
                -1,
                rows,
                batch.body[:length],
                f"{batch.token}.1",
                origin=batch.origin,
            ),
            Batch(
                batch.kind,
                -1,
                -1,
                batch.rows - rows,
                batch.body[length:],
                f"{batch.token}.2",
                origin=batch.origin,
            ),
        )
        # a half that cannot be delivered fails the whole batch, which is then kept whole
        # (spooled): the half already delivered goes again (at least once)
        return all(self.deliver(half) for half in halves)

    def _discover(self) -> Outcome:
        with self._discover_lock:
            outcome = self.sink.discover()
            if outcome.ok:
                unstored = getattr(self.sink, "unstored_attributes", None)
                if unstored is not None:  # tables without attributes: the producer is told
                    self.control.unstored_attributes = unstored()
            if outcome.ok and not self._discovered:
                self._discovered = True
                codec = getattr(self.sink, "codec_name", "")
                version = getattr(getattr(self.sink, "facts", None), "version", "")
                log.debug("sink ready: %s %s codec=%s", self.sink.name, version, codec)
            if not outcome.ok:
                self._discovered = False
            return outcome

    def _on_delivered(
        self, batch: Batch, prepared: Prepared | None, outcome: Outcome, round_trip: float = 0.0
    ) -> None:
        wire_bytes = len(prepared.wire) if prepared is not None else 0
        raw_bytes = prepared.raw_bytes if prepared is not None and prepared.raw_bytes else 0
        health = self.health
        with self.stats_lock:
            control = self.control
            control.add(Counter.ROWS_SENT, batch.rows)
            control.add(Counter.BATCHES_SENT)
            control.add(Counter.BYTES_WIRE, wire_bytes)
            control.add(Counter.BYTES_RAW, raw_bytes or len(batch.body))
            if self.verbose:  # relayed to the application's logger (automagik_telemetry)
                self.publish(
                    logging.INFO,
                    "",
                    f"sent {batch.rows} {KIND_NAMES[batch.kind]} rows to {self.sink.name}: "
                    f"{raw_bytes or len(batch.body)} bytes, {wire_bytes} on the wire, round trip "
                    f"{round_trip * 1e3:.1f} ms",
                )
            if health.failures:
                self.publish(
                    logging.INFO,
                    "",
                    f"delivery to {self.sink.name} recovered after {health.failures} failed "
                    "attempts",
                )
            health.failures = 0
            self.publisher.forget()
            health.healthy = True
            health.parked_wait = 0.0
            health.parked_until = 0.0
            control.sink_state = SinkState.HEALTHY
            if outcome.message:  # delivered, with something to say (items it rejected)
                if outcome.rejected:
                    control.add(Counter.ROWS_REJECTED, outcome.rejected)
                self.publish(logging.WARNING, outcome.key or outcome.message, outcome.message)

    def _on_failure(self, outcome: Outcome) -> None:
        health = self.health
        with self.stats_lock:
            health.failures += 1
            health.healthy = False
            if outcome.retry_after:  # the destination asked for a pause: nobody sends before
                health.pause_for(outcome.retry_after)
            control = self.control
            control.add(Counter.SEND_FAILURES)
            if outcome.timed_out:  # it may have landed: the batch goes again, same token
                control.add(Counter.RESENT_AFTER_TIMEOUT)
            control.sink_state = (
                SinkState.RETRYING if outcome.retryable else SinkState.PERMANENT_ERROR
            )
            level = logging.WARNING if outcome.retryable else logging.ERROR
            self.publish(level, outcome.key or outcome.message, outcome.message)
