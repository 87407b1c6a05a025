"""The ``*_async`` twins of the client's methods: none of them blocks the event loop. A track
call is a memcpy, so it runs on the loop; only a full ring makes it wait, and then with
``asyncio.sleep`` while the writer makes progress. ``flush_async`` polls with ``asyncio.sleep``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .schema import LogSeverity, MetricType

if TYPE_CHECKING:
    from .config import TelemetryConfig
    from .flushing import Flush
    from .producer import Producer
    from .ring.spsc import RingWriter


class AsyncTracking:
    """Mixed into ``AutomagikTelemetry``, whose methods and state these twins use."""

    if TYPE_CHECKING:
        config: TelemetryConfig
        _ring: RingWriter | None
        _producer: Producer | None

        def track_event(
            self, event_name: str, attributes: Mapping[str, Any] | None = None
        ) -> None: ...
        def track_error(
            self, error: BaseException, context: Mapping[str, Any] | None = None
        ) -> None: ...
        def track_metric(
            self,
            metric_name: str,
            value: float,
            metric_type: MetricType | str = ...,
            attributes: Mapping[str, Any] | None = None,
        ) -> None: ...
        def track_log(
            self,
            message: str,
            severity: LogSeverity | str = ...,
            attributes: Mapping[str, Any] | None = None,
        ) -> None: ...
        def _flush_of_this_process(self) -> Flush | None: ...
        def _apply_writer_hints(self) -> None: ...

    async def track_event_async(
        self, event_name: str, attributes: Mapping[str, Any] | None = None
    ) -> None:
        await self._async_track(self.track_event, event_name, attributes)

    async def track_error_async(
        self, error: BaseException, context: Mapping[str, Any] | None = None
    ) -> None:
        await self._async_track(self.track_error, error, context)

    async def track_metric_async(
        self,
        metric_name: str,
        value: float,
        metric_type: MetricType | str = MetricType.GAUGE,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        await self._async_track(self.track_metric, metric_name, value, metric_type, attributes)

    async def track_log_async(
        self,
        message: str,
        severity: LogSeverity | str = LogSeverity.INFO,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        await self._async_track(self.track_log, message, severity, attributes)

    async def _async_track(self, track: Any, *args: Any) -> None:
        """A track call is a memcpy: it runs on the loop unless the ring is full, in which
        case the wait for room is an ``asyncio.sleep``, never a blocking one."""
        producer = self._producer
        if self._ring is None or producer is None or self.config.on_full == "drop":
            track(*args)
            return
        await producer.full_ring.wait_async()
        producer.in_event_loop.active = True  # this thread's call must not sleep if still full
        try:
            track(*args)
        finally:
            producer.in_event_loop.active = False

    async def flush_async(self, timeout: float | None = None) -> bool:
        """``flush`` that waits with ``asyncio.sleep``."""
        flush = self._flush_of_this_process()
        if flush is None:
            return True
        delivered = await flush.wait_async(flush.request(), timeout)
        self._apply_writer_hints()
        return delivered
