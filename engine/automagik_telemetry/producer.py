"""The producer: the hot path of every track call (encode the row under the ring's lock, append
it to the ring, count it) and the full-ring policy. It exists only while the client is enabled
and has a ring; the client binds its public track methods to this object's.

A call never raises into the application: a value that cannot be encoded, a row too large
for the ring or a signal with no destination is dropped and counted by reason (``invalid``,
``too_large``, ``not_sent``), and logged once.

The full-ring policy (``FullRing``):

The writer puts rows on disk long before a ring fills, so a full ring means the writer is gone
or stuck, or the disk refuses the spool's writes, or there is no spool. ``on_full="drop"``
drops at once; ``on_full="block"`` waits while the writer makes progress (the ring's tail
moves), at most ``block_timeout`` seconds without any, then drops, and later calls drop at once
until the ring has had room again (a stuck writer must not cost every call the whole wait).
Every drop is counted by reason: ``ring_full`` (on_full="drop", or no spool),
``writer_gone``, ``writer_stuck``, ``spool_unwritable``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Final

from .config import TelemetryConfig
from .control import Control, SpoolState
from .ring.layout import KIND_LOG, KIND_METRIC, KIND_TRACE, KINDS
from .ring.spsc import RingWriter, RowTooLarge
from .rows.clickhouse import RowEncoder
from .schema import LogSeverity, MetricType, parse_metric_type, parse_severity
from .sinks.otlp.config import SignalNotSent

ERROR_EVENT: Final = "automagik.error"
MAX_ERROR_MESSAGE: Final = 500
MAX_TRACEBACK_FRAMES: Final = 20
_time_ns = time.time_ns


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return (
        cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
    )


def _trimmed_traceback(error: BaseException) -> str:
    """The last frames of the traceback (where it failed), in the usual text form."""
    frames = traceback.extract_tb(error.__traceback__)[-MAX_TRACEBACK_FRAMES:]
    lines = traceback.format_list(frames)
    lines.extend(traceback.format_exception_only(type(error), error))
    return "".join(lines)[-8000:]


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    return float(value)


class FullRing:
    def __init__(
        self,
        config: TelemetryConfig,
        ring_writer: RingWriter,
        control: Control,
        writer_alive: Callable[[], bool],
    ) -> None:
        self.config = config
        self.ring = ring_writer
        self.control = control
        self.writer_alive = writer_alive
        self._gave_up = False
        self._accepted_at_give_up = 0

    def room(self, kind: int, row: bytes | bytearray, accepted: int, *, may_wait: bool) -> bool:
        """(Lock held.) True when ``row`` went in after all; False: drop it (``why``)."""
        if self._gave_up and accepted != self._accepted_at_give_up:
            self._gave_up = False  # the ring had room since: this call may wait again
        if self.config.on_full != "block":
            return False
        if not self._gave_up and may_wait and self._wait_for_room(kind, row):
            return True
        self._gave_up = True
        self._accepted_at_give_up = accepted
        return False

    def _wait_for_room(self, kind: int, row: bytes | bytearray) -> bool:
        """Wait for room while the writer makes progress: at most ``block_timeout`` seconds
        without any."""
        ring_writer = self.ring
        timeout = self.config.block_timeout
        tail = ring_writer.tail(kind)
        deadline = time.monotonic() + timeout
        pause = 0.00005
        while True:
            time.sleep(pause)
            # at most 1 ms late: room comes a batch at a time, and a longer nap would leave it
            # unused
            pause = min(pause * 2, 0.001)
            if ring_writer.put(kind, row):
                return True
            now = time.monotonic()
            moved = ring_writer.tail(kind)
            if moved != tail:
                tail, deadline = moved, now + timeout
            elif now >= deadline:
                return False

    async def wait_async(self) -> None:
        """Before an async track call: wait (``asyncio.sleep``, never a blocking sleep) while
        any ring is too full for a row and the writer makes progress."""
        ring_writer = self.ring
        timeout = self.config.block_timeout
        tails = [ring_writer.tail(k) for k in KINDS]
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while min(ring_writer.free_bytes(k) for k in KINDS) < ring_writer.max_row:
            now = time.monotonic()
            moved = [ring_writer.tail(k) for k in KINDS]
            if moved != tails:  # the writer makes progress: keep waiting
                tails, deadline = moved, now + timeout
            elif now >= deadline:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.02)

    def why(self) -> tuple[str, str]:
        """The drop reason of a full ring, and its explanation."""
        config = self.config
        if config.on_full != "block":
            return "ring_full", "the ring is full and on_full='drop'"
        if not self.writer_alive():
            return "writer_gone", "the ring is full and its writer process is not running"
        if config.spool_max_bytes == 0:
            return "ring_full", "the ring is full and the spool is disabled (spool_max_bytes=0)"
        if self.control.spool_state is SpoolState.UNWRITABLE:
            return (
                "spool_unwritable",
                "the ring is full: the destination cannot take rows and the disk refuses the "
                "spool's writes (see the writer's message)",
            )
        return (
            "writer_stuck",
            f"the ring is full and its writer made no progress for {config.block_timeout} s",
        )


class Producer:
    """The track calls of one ring (not thread-safe by itself: every call takes the ring's
    lock, which also serialises the encoder's reused buffer)."""

    def __init__(
        self,
        config: TelemetryConfig,
        ring_writer: RingWriter,
        rows: RowEncoder,
        full_ring: FullRing,
        dropped: dict[str, int],
        warn_once: Callable[[str, str], None],
    ) -> None:
        self.lock = ring_writer.lock
        self._appenders = ring_writer.appenders
        self._rows = rows
        # the encoders' methods, replaced by ``leave_out`` for rings whose table keeps no
        # attributes (a wrapper that drops them costs less than encoding them)
        self._span = rows.span
        self._metric = rows.metric
        self._log = rows.log
        self._left_out = 0
        self.full_ring = full_ring
        self.accepted = 0
        self.dropped = dropped  # the client's: drops of every kind in one place
        self._warn_once = warn_once
        #: set while an async track call runs, whose wait for room was an asyncio.sleep
        self.in_event_loop = threading.local()

    def leave_out(self, mask: int) -> None:
        """Rows of the ring kinds in ``mask`` (``1 << kind``) are encoded without attributes
        from now on: the writer learnt that their table keeps none (Debian's 18.16 with the
        legacy schema), so encoding them would cost the calling thread for nothing (the writer
        cut them anyway). Called by the supervisor's thread; each store is atomic."""
        if mask == self._left_out:
            return
        rows = self._rows

        def span_without(t: int, n: str, a: Any, e: str | None) -> bytes | bytearray:
            return rows.span(t, n, None, e)

        def metric_without(t: int, n: str, v: float, k: MetricType, a: Any) -> bytes | bytearray:
            return rows.metric(t, n, v, k, None)

        def log_without(t: int, m: str, s: LogSeverity, a: Any) -> bytes | bytearray:
            return rows.log(t, m, s, None)

        span: Callable[..., bytes | bytearray] = rows.span
        metric: Callable[..., bytes | bytearray] = rows.metric
        log: Callable[..., bytes | bytearray] = rows.log
        if mask & (1 << KIND_TRACE):
            span = span_without
        if mask & (1 << KIND_METRIC):
            metric = metric_without
        if mask & (1 << KIND_LOG):
            log = log_without
        self._span, self._metric, self._log = span, metric, log
        self._left_out = mask

    def track_event(self, event_name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Record an event (a span named ``event_name``). Never raises, never waits on I/O."""
        lock = self.lock
        lock.acquire()
        try:
            if type(event_name) is not str:
                event_name = str(event_name)
            if attributes is not None and type(attributes) is not dict:
                attributes = dict(attributes)
            row = self._span(_time_ns(), event_name, attributes, None)
            if self._appenders[KIND_TRACE](row):
                self.accepted += 1
            else:
                self._full(KIND_TRACE, row)
        except Exception as exc:
            self._reject(exc)
        finally:
            lock.release()

    def track_error(self, error: BaseException, context: Mapping[str, Any] | None = None) -> None:
        """Record an exception: a span ``automagik.error`` with status ERROR, the exception's
        type, message and a trimmed traceback (``exception.*`` attributes), plus ``context``."""
        try:
            message = str(error)[:MAX_ERROR_MESSAGE]
            attributes: dict[str, Any] = {
                "error_type": type(error).__name__,
                "error_message": message,
                "exception.type": _qualified_name(type(error)),
                "exception.message": message,
                "exception.stacktrace": _trimmed_traceback(error),
            }
            if context:
                attributes.update(context)
        except Exception as exc:
            self._reject(exc)
            return
        lock = self.lock
        lock.acquire()
        try:
            row = self._span(_time_ns(), ERROR_EVENT, attributes, message)
            if self._appenders[KIND_TRACE](row):
                self.accepted += 1
            else:
                self._full(KIND_TRACE, row)
        except Exception as exc:
            self._reject(exc)
        finally:
            lock.release()

    def track_metric(
        self,
        metric_name: str,
        value: float,
        metric_type: MetricType | str = MetricType.GAUGE,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a metric point: a gauge value, a counter increment, or a histogram sample."""
        kind = metric_type if type(metric_type) is MetricType else self._metric_kind(metric_type)
        lock = self.lock
        lock.acquire()
        try:
            if type(metric_name) is not str:
                metric_name = str(metric_name)
            if type(value) is not float and type(value) is not int:
                value = _number(value)
            if attributes is not None and type(attributes) is not dict:
                attributes = dict(attributes)
            row = self._metric(_time_ns(), metric_name, value, kind, attributes)
            if self._appenders[KIND_METRIC](row):
                self.accepted += 1
            else:
                self._full(KIND_METRIC, row)
        except Exception as exc:
            self._reject(exc)
        finally:
            lock.release()

    def track_log(
        self,
        message: str,
        severity: LogSeverity | str = LogSeverity.INFO,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a log line with its severity."""
        level = severity if type(severity) is LogSeverity else self._severity(severity)
        lock = self.lock
        lock.acquire()
        try:
            if type(message) is not str:
                message = str(message)
            if attributes is not None and type(attributes) is not dict:
                attributes = dict(attributes)
            row = self._log(_time_ns(), message, level, attributes)
            if self._appenders[KIND_LOG](row):
                self.accepted += 1
            else:
                self._full(KIND_LOG, row)
        except Exception as exc:
            self._reject(exc)
        finally:
            lock.release()

    def _full(self, kind: int, row: bytes | bytearray) -> None:
        """Slow path of a track call (lock held): the ring had no room for ``row``; the
        full-ring policy (``FullRing``) decides."""
        policy = self.full_ring
        may_wait = not getattr(self.in_event_loop, "active", False)
        if policy.room(kind, row, self.accepted, may_wait=may_wait):
            self.accepted += 1
        else:
            self._drop(*policy.why())

    def _drop(self, reason: str, why: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self._warn_once(f"drop:{reason}", f"dropping rows: {why}; counted in get_status()")

    def _metric_kind(self, value: MetricType | str) -> MetricType:
        kind = parse_metric_type(value)
        if kind is None:
            self._warn_once(
                f"metric-type:{value}",
                f"unknown metric_type {value!r}: recorded as a gauge "
                "(allowed: gauge, counter, histogram)",
            )
            return MetricType.GAUGE
        return kind

    def _severity(self, value: LogSeverity | str) -> LogSeverity:
        level = parse_severity(value)
        if level is None:
            self._warn_once(
                f"severity:{value}",
                f"unknown severity {value!r}: recorded as INFO "
                "(allowed: trace, debug, info, warn, error, fatal)",
            )
            return LogSeverity.INFO
        return level

    def _reject(self, exc: Exception) -> None:
        if isinstance(exc, RowTooLarge):
            reason = "too_large"
        elif isinstance(exc, SignalNotSent):
            reason = "not_sent"  # a signal with no destination it may be sent to
        else:
            reason = "invalid"
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self._warn_once(
            f"reject:{reason}:{type(exc).__name__}",
            f"a track call was dropped ({reason}): {type(exc).__name__}: {exc}",
        )
