"""AutomagikTelemetry: the application's side of the engine.

A track call takes the ring's lock, encodes its row into the encoder's buffer, copies it into
the shared-memory ring and returns: no I/O, no allocation beyond the row, nothing that can fail
because of the network. The writer process (``writer/``) does the rest.

This module is the facade: the public methods, the hot path (kept here, inline, because every
call through another object costs the track call), flush and status. A full ring is the
producer's policy (``producer.py``); starting, restarting and adopting writers and relaying
their messages is the supervisor's (``supervisor.py``).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import subprocess
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from . import opt_in
from .client_async import AsyncTracking
from .config import TelemetryConfig
from .control import Control
from .flushing import Flush
from .producer import FullRing, Producer
from .resource import Resource
from .ring import segment as ring
from .ring.spsc import RingWriter
from .rows.clickhouse import RowEncoder
from .sanitising import sanitising
from .schema import LogSeverity, MetricType
from .settings import WriterSettings, identity
from .sinks import sink_spec
from .sinks.otlp.config import resolve_otlp
from .status import ring_status, stopped_status
from .supervisor import Supervisor

log = logging.getLogger("automagik_telemetry")


TRACK_METHODS: Final = ("track_event", "track_error", "track_metric", "track_log")
_clients: weakref.WeakSet[AutomagikTelemetry] = weakref.WeakSet()


class _Done:
    """An awaitable that is already complete: lets ``disable()`` be called or awaited."""

    def __await__(self) -> Any:
        return iter(())


def destination_key(config: TelemetryConfig) -> str:
    """``<backend>-<16 hex digits>``: names where rows go (backend, endpoints or path, database
    and tables, OTLP protocol), not who sends them nor with which credentials."""
    where = sink_spec(config.backend).where(config)
    key = hashlib.sha256("\0".join([config.backend, *where]).encode()).hexdigest()[:16]
    return f"{config.backend}-{key}"


def spool_directory(config: TelemetryConfig) -> str:
    """This destination's directory in the spool: batches spooled for one destination are
    only ever replayed to that destination. Empty (no spool) when spool_max_bytes is 0."""
    if config.spool_max_bytes == 0:
        return ""
    return os.path.join(config.resolved_spool_dir(), destination_key(config))


class AutomagikTelemetry(AsyncTracking):
    """Ships events, metrics, logs and errors to ClickHouse or an OTLP endpoint.

    ``AutomagikTelemetry(config=TelemetryConfig(project_name="app", version="1.0"))`` or
    ``AutomagikTelemetry(project_name="app", version="1.0", backend="clickhouse", ...)``.
    """

    def __init__(self, config: TelemetryConfig | None = None, **options: Any) -> None:
        if config is None:
            if not options:
                raise TypeError(
                    "AutomagikTelemetry.__init__() missing 1 required positional argument: "
                    "'config' (pass config=TelemetryConfig(project_name=..., version=...) or "
                    "the keyword form AutomagikTelemetry(project_name=..., version=..., ...))"
                )
            config = TelemetryConfig(**options)
        elif options:
            raise TypeError(
                "AutomagikTelemetry takes either config=TelemetryConfig(...) or keyword options, "
                f"not both (got config and {', '.join(sorted(options))})"
            )
        elif not isinstance(config, TelemetryConfig):
            raise TypeError(f"config must be a TelemetryConfig, not {type(config).__name__}")
        self.config = config
        # The OTLP endpoints in force (as the original SDK's attributes), whatever the backend.
        otlp = resolve_otlp(config, os.environ)
        self.endpoint, self.metrics_endpoint, self.logs_endpoint = otlp.endpoints
        self.config_warnings: tuple[str, ...] = config.environment_warnings + (
            otlp.warnings if config.backend == "otlp" else ()
        )
        self.resource = Resource.detect(
            config.project_name, config.version, config.organization, config.environment
        )
        self.user_id = self.resource.user_id
        self.session_id = self.resource.session_id
        consent = opt_in.decide(config)
        self._consent = consent
        self.enabled = consent.enabled
        self.verbose = config.verbose
        self._accepted = 0
        self._dropped: dict[str, int] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._ring: RingWriter | None = None
        self._supervisor: Supervisor | None = None
        self._producer: Producer | None = None
        self._refused_seen = 0  # rows the destination refused, as the last flush saw them
        self._writer_restarts = 0  # of the rings before this one (a fork starts a new one)
        self._closed = False
        self._owner_pid = os.getpid()
        if self.enabled:
            self._start()
        _clients.add(self)

    # --- lifecycle --------------------------------------------------------------------------

    def _make_encoder(self) -> RowEncoder:
        rows = sink_spec(self.config.backend).encoder(self.config, self.resource)
        return sanitising(rows, self.config.privacy)

    def _writer_settings(self, segment: str) -> WriterSettings:
        c = self.config
        spec = sink_spec(c.backend)
        sink, record_format = spec.settings(c, self.resource)
        return WriterSettings(
            segment=segment,
            producer_pid=os.getpid(),
            sink=sink,
            batch_size=c.batch_size,
            flush_interval=c.flush_interval,
            max_batch_bytes=c.resolved_max_batch_bytes(),
            timeout=c.timeout,
            max_retries=c.max_retries,
            retry_backoff_base=c.retry_backoff_base,
            compression=c.compression if c.compression_enabled else "none",
            compression_threshold=c.compression_threshold,
            max_in_flight=1 if spec.single_session else c.max_in_flight,
            record_format=record_format,
            verbose=c.verbose,
            spool_dir=spool_directory(c),
            destination=destination_key(c),
            spool_max_bytes=c.spool_max_bytes,
            spool_full_policy=c.spool_full_policy,
        )

    def _start(self) -> None:
        """Create this process's ring and writer."""
        rows = self._make_encoder()
        settings = self._writer_settings("")
        segment = ring.create_segment(self.config.ring_size, identity(settings))
        self._ring = RingWriter(segment)
        self._control = Control(self._ring.words)
        self._flush = Flush(self._ring, self._control, self._ring.lock)
        self._refused_seen = 0  # the new ring's counters start at zero (after a fork too)
        self._lock = self._ring.lock
        self._settings = msgspec.structs.replace(settings, segment=segment.name)
        self._owner_pid = os.getpid()
        supervisor = Supervisor(self._ring, self._settings, self._warn_once)
        self._supervisor = supervisor
        full_ring = FullRing(
            self.config, self._ring, self._control, lambda: supervisor.writer_alive
        )
        producer = self._producer = Producer(
            self.config, self._ring, rows, full_ring, self._dropped, self._warn_once
        )
        supervisor.on_tick = self._apply_writer_hints
        self._bind(producer)
        supervisor.start()
        atexit.register(self._at_exit)

    @property
    def _writer(self) -> subprocess.Popen[bytes] | None:
        """The writer process of this client's ring (None before it starts or after a fork)."""
        return self._supervisor.writer if self._supervisor is not None else None

    def _apply_writer_hints(self) -> None:
        """Pass on to the producer what the writer learnt of the destination (tables that keep
        no attributes); also done on every supervisor pass."""
        producer, control = self._producer, self._control
        if producer is not None and control is not None:
            with contextlib.suppress(ValueError):  # the ring was released meanwhile
                producer.leave_out(control.unstored_attributes)

    def _relay_writer_messages(self) -> None:
        if self._supervisor is not None and self._ring is not None:
            self._supervisor.relay_messages()

    def _at_exit(self) -> None:
        with contextlib.suppress(Exception):  # never fail the interpreter's exit
            self.shutdown(timeout=max(self.config.timeout, 2.0))

    def shutdown(self, timeout: float | None = None) -> bool:
        """Deliver what was tracked (waiting up to ``timeout`` seconds), stop the writer and
        release the shared memory. Returns whether everything was delivered. Idempotent."""
        if self._closed or self._ring is None or os.getpid() != self._owner_pid:
            self._closed = True
            return True
        self._closed = True
        return self._let_go(timeout)

    def _let_go(self, timeout: float | None) -> bool:
        """Wait until every row is safe (delivered, or in the spool when the destination is
        down: an outage never holds the application for long), then stop the writer and free
        the ring's shared memory. The counters of this ring are kept. Returns whether every
        row was delivered."""
        assert self._ring is not None and self._supervisor is not None
        flush = self._flush
        targets = flush.request()
        flush.wait(targets, timeout, safe_only=True)
        delivered = flush.reached(targets)
        self._bind(None)  # later calls take the slow path (disabled, or after_shutdown)
        atexit.unregister(self._at_exit)
        ring_writer, supervisor, producer = self._ring, self._supervisor, self._producer
        self._control.request_shutdown()
        writer_gone = supervisor.stop(grace=2.0 if delivered else 0.5)
        if producer is not None:
            self._accepted += producer.accepted
        self._writer_restarts += supervisor.restarts
        self._ring = self._supervisor = self._producer = None
        segment = ring_writer.segment
        with ring_writer.lock:  # a track call of another thread finishes its row first
            ring_writer.release()
        segment.close()
        if writer_gone:
            ring.unlink_segment(segment.name)
        return delivered

    def close(self) -> None:
        self.shutdown()

    def __enter__(self) -> AutomagikTelemetry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # --- fork -------------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """A forked child never writes into its parent's ring: it starts its own ring and
        writer on its first track call (nothing is spawned for children that never track)."""
        self._lock = threading.Lock()
        if self._ring is None or self._closed:
            return
        self._ring = None
        if self._supervisor is not None:
            self._writer_restarts += self._supervisor.restarts
        self._supervisor = None
        self._bind(None)
        self._producer = None
        self._accepted = 0
        self._dropped = {}
        self._fork_pending = True
        self.resource = Resource.detect(
            self.config.project_name, self.config.version, self.config.organization,
            self.config.environment,
        )  # fmt: skip

    def _ensure_ring(self) -> RingWriter | None:
        """Slow path: the ring is missing (disabled, shut down, or first call after a fork)."""
        if getattr(self, "_fork_pending", False) and not self._closed:
            self._fork_pending = False
            self._start()
        return self._ring

    # --- tracking ---------------------------------------------------------------------------

    def _inactive(self) -> bool:
        """True when this call must not write (disabled or shut down); counts it. Reached
        only while the track methods are not bound to a producer (see ``_bind``)."""
        if not self.enabled:
            return True
        if self._closed:
            self._dropped["after_shutdown"] = self._dropped.get("after_shutdown", 0) + 1
            return True
        return self._ensure_ring() is None

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    # The track methods of the class are the slow path: an enabled client with a ring has them
    # bound to its producer's (instance attributes, so a call costs no extra step), and these
    # are reached only when disabled, shut down, or on a forked child's first call.

    def track_event(self, event_name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Record an event (a span named ``event_name``). Never raises, never waits on I/O."""
        if not self._inactive():
            self._active_producer().track_event(event_name, attributes)

    def track_error(self, error: BaseException, context: Mapping[str, Any] | None = None) -> None:
        """Record an exception: a span ``automagik.error`` with status ERROR, the exception's
        type, message and a trimmed traceback (``exception.*`` attributes), plus ``context``."""
        if not self._inactive():
            self._active_producer().track_error(error, context)

    def track_metric(
        self,
        metric_name: str,
        value: float,
        metric_type: MetricType | str = MetricType.GAUGE,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a metric point: a gauge value, a counter increment, or a histogram sample."""
        if not self._inactive():
            self._active_producer().track_metric(metric_name, value, metric_type, attributes)

    def track_log(
        self,
        message: str,
        severity: LogSeverity | str = LogSeverity.INFO,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a log line with its severity."""
        if not self._inactive():
            self._active_producer().track_log(message, severity, attributes)

    def _active_producer(self) -> Producer:
        assert self._producer is not None
        return self._producer

    def _bind(self, producer: Producer | None) -> None:
        """Route the track methods straight to ``producer`` (or, with None, back to the
        class's slow path)."""
        for name in TRACK_METHODS:
            if producer is None:
                self.__dict__.pop(name, None)
            else:
                self.__dict__[name] = getattr(producer, name)

    # --- flush and status -------------------------------------------------------------------

    def _flush_of_this_process(self) -> Flush | None:
        """The flush protocol of this process's ring (none when disabled, shut down, or in a
        forked child that has not tracked yet)."""
        if self._ring is None or os.getpid() != self._owner_pid:
            return None
        return self._flush

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row tracked before this call is delivered (queryable at the
        destination), at most ``timeout`` seconds (default 10). Returns whether it was: False
        also when, since the previous flush, the destination refused rows for what they hold
        (they are set aside on disk, counted in ``get_status()["set_aside"]``)."""
        flush = self._flush_of_this_process()
        if flush is None:
            return True
        delivered = flush.wait(flush.request(), timeout, safe_only=False)
        self._apply_writer_hints()  # what the writer learnt while delivering, at once
        refused = self._control.refused_rows()
        seen, self._refused_seen = self._refused_seen, refused
        return delivered and refused == seen

    def enable(self) -> None:
        """Turn sending on (and remove the ~/.automagik-no-telemetry opt-out, as the original
        SDK does): a new ring and writer, which also deliver what ``disable()`` left in the
        spool."""
        with contextlib.suppress(OSError):
            opt_in.opt_out_file().unlink()
        self.enabled = True
        self.config.enabled = True  # consent for every signal, the vendor's default included
        self._consent = opt_in.Consent(True, "enable() was called")
        if self._ring is None and not self._closed and os.getpid() == self._owner_pid:
            self._fork_pending = False
            self._start()

    def disable(self) -> _Done:
        """Stop sending and let go: every row tracked so far is delivered, or kept in the spool
        when the destination is down (sent by the next writer of this destination, e.g. after
        ``enable()``); the writer process exits and the ring's shared memory is freed. Writes
        the ~/.automagik-no-telemetry opt-out (as the original SDK does). Works called or
        awaited."""
        self.enabled = False
        self._consent = opt_in.Consent(False, "disable() was called")
        if self._ring is not None and not self._closed and os.getpid() == self._owner_pid:
            with contextlib.suppress(Exception):  # never raise into the application
                self._let_go(None)
        with contextlib.suppress(OSError):
            opt_in.opt_out_file().touch()
        return _Done()

    def is_enabled(self) -> bool:
        return self.enabled

    def get_status(self) -> dict[str, Any]:
        """Counters and state, cheap enough to poll."""
        c = self.config
        status: dict[str, Any] = {
            "enabled": self.enabled,
            "disabled_reason": None if self.enabled else self._consent.reason,
            "consent": self._consent.reason,
            "backend": c.backend,
            "user_id": self.user_id,
            "session_id": self.session_id,
            "project_name": c.project_name,
            "project_version": c.version,
            "project_name_source": c.sources.get("project_name", "code"),
            "project_version_source": c.sources.get("version", "code"),
            "endpoint": self.endpoint,
            "metrics_endpoint": self.metrics_endpoint,
            "logs_endpoint": self.logs_endpoint,
            "clickhouse_endpoint": sink_spec(c.backend).shown_endpoint(c),
            "opt_out_file_exists": opt_in.opt_out_file().exists(),
            "env_var": os.environ.get("AUTOMAGIK_TELEMETRY_ENABLED"),
            "verbose": self.verbose,
            "batch_size": c.batch_size,
            "compression_enabled": c.compression_enabled,
            "privacy": c.privacy is not None,
            "config_warnings": list(self.config_warnings),
            "accepted": self._accepted
            + (self._producer.accepted if self._producer is not None else 0),
            "dropped": dict(self._dropped),
            "dropped_total": sum(self._dropped.values()),
            "writer_restarts": self._writer_restarts
            + (self._supervisor.restarts if self._supervisor is not None else 0),
        }
        ring_writer, supervisor = self._ring, self._supervisor
        if ring_writer is None or supervisor is None:
            status.update(stopped_status())
        else:
            self._relay_writer_messages()
            status.update(ring_status(ring_writer, self._control, supervisor, status["dropped"]))
        status["dropped_total"] = sum(status["dropped"].values())
        return status

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<AutomagikTelemetry {self.config.project_name} {self.config.backend} {state}>"


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
