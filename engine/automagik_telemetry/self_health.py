"""The engine's own health, tracked into the same tables (opt-in).

    from automagik_telemetry.self_health import track_self_health
    health = track_self_health(client, interval=60.0)   # a daemon thread; health.stop() ends it

Every ``interval`` seconds, a thread reads ``client.get_status()`` and tracks, through the
client itself (the same ring, writer and tables as the application's rows), metrics named
``automagik_telemetry.<what>`` with the attribute ``engine=automagik-telemetry``:

* counters (``MetricType.COUNTER``: the change since the previous reading, so a dashboard sums
  them per time bucket and several processes add up): ``rows_sent``, ``rows_dropped``,
  ``rows_spooled``, ``rows_set_aside``, ``retries``, ``send_failures``;
* gauges (``MetricType.GAUGE``, the value now): ``ring_fill``, ``spool_bytes``,
  ``spool_batches``.

The ``Engine`` dashboard (``infra/grafana/dashboards/engine.json``) shows them. A reading costs
a ``get_status()`` and nine track calls; nothing here raises into the application (a failed
reading is logged at DEBUG and skipped). The thread ends on ``stop()`` or once the client is
shut down.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

from .schema import MetricType

log = logging.getLogger("automagik_telemetry.self_health")

PREFIX: Final = "automagik_telemetry."
ATTRIBUTES: Final = {"engine": "automagik-telemetry"}
COUNTERS: Final = (
    ("rows_sent", "sent"),
    ("rows_dropped", "dropped_total"),
    ("rows_spooled", "spooled"),
    ("rows_set_aside", "set_aside"),
    ("retries", "retried"),
    ("send_failures", "failed"),
)
GAUGES: Final = (
    ("ring_fill", "ring_fill"),
    ("spool_bytes", "spool_bytes"),
    ("spool_batches", "spool_batches"),
)


class SelfHealth:
    """Tracks ``client``'s health into its own destination every ``interval`` seconds."""

    def __init__(self, client: Any, interval: float = 60.0) -> None:
        if not interval > 0:
            raise ValueError(f"interval={interval!r} is not allowed: expected seconds > 0")
        self.client = client
        self.interval = interval
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SelfHealth:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="automagik-telemetry-self-health", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.tick():
                return

    def tick(self) -> bool:
        """Read the status once and track it. False once the client is shut down."""
        try:
            status = self.client.get_status()
            if not status.get("enabled") or status.get("sink_state") == "stopped":
                return False
            track = self.client.track_metric
            for name, key in COUNTERS:
                value = float(status.get(key) or 0)
                delta = value - self._last.get(key, 0.0)
                self._last[key] = value
                track(PREFIX + name, max(delta, 0.0), MetricType.COUNTER, ATTRIBUTES)
            for name, key in GAUGES:
                track(PREFIX + name, float(status.get(key) or 0), MetricType.GAUGE, ATTRIBUTES)
        except Exception as exc:  # never into the application
            log.debug("self-health reading skipped: %s", exc)
        return True


def track_self_health(client: Any, interval: float = 60.0) -> SelfHealth:
    """Start tracking ``client``'s own health every ``interval`` seconds (opt-in)."""
    return SelfHealth(client, interval).start()
