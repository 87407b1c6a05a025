"""The systems measured in this package's own interpreter: ours, the peers, and the floor.

Each adapter turns an operation of the workload (``workload.Op``) into one call of its system's
public API, the way a user of that system would write it. Peers are imported here, lazily, so
that a missing peer costs nothing until it is asked for (``peers.py`` says how to install it).
The original automagik-telemetry 0.1.4 is in ``original_child.py`` (it runs in its own
virtual environment).
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from .driver import Call
from .workload import EVENT, LOG_LEVELS, METRIC, METRIC_TYPES, Op

OURS: Final = (
    "ours-clickhouse",
    "ours-embedded",
    "ours-otlp-json",
    "ours-otlp-protobuf",
    "ours-otlp-json-caller",  # otlp_encode_in="caller": the wire encoding on the calling thread
    "ours-otlp-protobuf-caller",
)
OTEL: Final = ("otel-sdk", "otel-sdk-large-queue")
CLICKHOUSE_CONNECT: Final = "clickhouse-connect"
ORIGINAL: Final = "original-0.1.4"
FLOOR: Final = "floor"


# --- bytes sent on this process's sockets -----------------------------------------------------


class SocketCounter:
    """Counts every byte this process hands to ``socket.send``/``sendall`` (HTTP headers and
    bodies): the wire cost of a peer that delivers from inside the application process."""

    def __init__(self) -> None:
        self.sent = 0
        self._lock = threading.Lock()

    def install(self) -> SocketCounter:
        counter = self
        original_sendall = socket.socket.sendall
        original_send = socket.socket.send

        def sendall(sock: socket.socket, data: Any, *args: Any) -> None:
            with counter._lock:
                counter.sent += memoryview(data).nbytes
            original_sendall(sock, data, *args)

        def send(sock: socket.socket, data: Any, *args: Any) -> int:
            n = original_send(sock, data, *args)
            with counter._lock:
                counter.sent += n
            return n

        socket.socket.sendall = sendall  # type: ignore[method-assign,assignment]
        socket.socket.send = send  # type: ignore[method-assign,assignment]
        return self


# --- ours -----------------------------------------------------------------------------------


class Ours:
    """This package, through its public API."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from automagik_telemetry import AutomagikTelemetry
        from automagik_telemetry.schema import LogSeverity, MetricType

        system = spec["system"]
        destination = spec["destination"]
        workload = spec["workload"]
        options: dict[str, Any] = {
            "project_name": "bench",
            "version": "1.0.0",
            "enabled": True,
            "batch_size": workload["batch_size"],
            "compression": spec.get("compression", "auto"),
        }
        if spec.get("flush_interval"):
            options["flush_interval"] = spec["flush_interval"]
        if system == "ours-clickhouse":
            options.update(
                backend="clickhouse",
                clickhouse_endpoint=destination["url"],
                clickhouse_database=destination["database"],
                clickhouse_username=destination["username"],
                clickhouse_password=destination["password"],
            )
        elif system == "ours-embedded":
            options.update(backend="embedded", embedded_path=destination["path"])
        else:
            protocol = "http/protobuf" if "protobuf" in system else "http/json"
            options.update(backend="otlp", endpoint=destination["url"], otlp_protocol=protocol)
            if system.endswith("-caller"):
                options["otlp_encode_in"] = "caller"
        self.client = AutomagikTelemetry(**options)
        self._metric_types = [MetricType(name) for name in METRIC_TYPES]
        self._levels = [LogSeverity[name.upper()] for name in LOG_LEVELS]

    def prepare(self, op: Op) -> Call:
        kind, name, value, level, attrs = op
        c = self.client
        if kind == EVENT:
            return c.track_event, (name, attrs)
        if kind == METRIC:
            return c.track_metric, (name, value, self._metric_types[level], attrs)
        return c.track_log, (name, self._levels[level], attrs)

    def flush(self, timeout: float) -> bool:
        return self.client.flush(timeout)

    def writer_pid(self) -> int | None:
        pid = self.client.get_status().get("writer_pid")
        return int(pid) if pid else None

    def stats(self) -> dict[str, Any]:
        status = self.client.get_status()
        keys = (
            "accepted", "dropped", "dropped_total", "sent", "batches_sent", "failed", "retried",
            "bytes_on_wire", "bytes_uncompressed", "writer_restarts", "last_error",
        )  # fmt: skip
        out = {key: status.get(key) for key in keys}
        out["wire_bytes"] = status.get("bytes_on_wire")
        out["wire_bytes_what"] = "request bodies (engine counter)"
        return out

    def close(self) -> None:
        self.client.shutdown(timeout=60)


# --- OpenTelemetry SDK ----------------------------------------------------------------------


class _CountDrops(logging.Handler):
    """Counts the SDK's own "Queue full, dropping ..." warnings: its report of drops."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.dropped = 0
        self.other: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Queue full"):
            self.dropped += 1
        elif len(self.other) < 5:
            self.other.append(message[:300])


class OtelSdk:
    """TracerProvider + BatchSpanProcessor + OTLP/HTTP (protobuf) span exporter.

    Every call becomes a span, ended at once: events are spans named by the event; metrics
    and logs are spans too (``metric.value``/``log.severity`` attributes), because the SDK's
    metrics aggregate in process (one point per instrument and interval, not one per call) and
    its logs SDK is still experimental. Settings are the SDK's defaults (queue 2048, batches
    of 512, every 5 s, no compression), or a queue as large as the workload."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.sockets = SocketCounter().install()
        self.drops = _CountDrops()
        otel_log = logging.getLogger("opentelemetry")
        otel_log.addHandler(self.drops)
        otel_log.propagate = False  # counted here, not printed once per dropped span
        kwargs: dict[str, Any] = {}
        if spec["system"] == "otel-sdk-large-queue":
            kwargs["max_queue_size"] = max(2048, int(spec.get("large_queue", 0)))
        if spec.get("flush_interval"):
            kwargs["schedule_delay_millis"] = spec["flush_interval"] * 1000
        self.settings = kwargs
        resource = Resource.create({"service.name": "bench", "service.version": "1.0.0"})
        self.provider = TracerProvider(resource=resource)
        exporter = OTLPSpanExporter(endpoint=spec["destination"]["url"] + "/v1/traces")
        self.provider.add_span_processor(BatchSpanProcessor(exporter, **kwargs))
        start_span = self.provider.get_tracer("bench").start_span

        def span(name: str, attributes: dict[str, Any]) -> None:
            start_span(name, attributes=attributes).end()

        self._span: Callable[[str, dict[str, Any]], None] = span

    def prepare(self, op: Op) -> Call:
        kind, name, value, level, attrs = op
        if kind == EVENT:
            return self._span, (name, attrs)
        if kind == METRIC:
            merged = {**attrs, "metric.value": value, "metric.type": METRIC_TYPES[level]}
            return self._span, (name, merged)
        merged = {**attrs, "log.body": name, "log.severity": LOG_LEVELS[level]}
        return self._span, ("log", merged)

    def flush(self, timeout: float) -> bool:
        return bool(self.provider.force_flush(int(timeout * 1000)))

    def writer_pid(self) -> int | None:
        return None

    def stats(self) -> dict[str, Any]:
        return {
            # The SDK counts drops only in its own metrics; its "Queue full, dropping" warning
            # is logged a few times, not once per span: not a count.
            "dropped_total": None,
            "queue_full_warnings": self.drops.dropped,
            "wire_bytes": self.sockets.sent,
            "wire_bytes_what": "all bytes sent on the process's sockets",
            "settings": self.settings,
            "warnings": self.drops.other,
        }

    def close(self) -> None:
        self.provider.shutdown()


# --- clickhouse-connect with hand-written batching ---------------------------------------------


class _Batcher:
    """What a user writes around clickhouse-connect: calls append a row to a list; one thread
    inserts what has piled up, when ``batch_size`` rows wait or every ``interval`` seconds."""

    def __init__(
        self, insert: Callable[[str, list[list[Any]]], None], batch_size: int, interval: float
    ) -> None:
        self._insert = insert
        self._batch_size = batch_size
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: dict[str, list[list[Any]]] = {}
        self._count = 0
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._stop = False
        self.inserted = 0
        self.batches = 0
        self.failures = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="ch-batcher", daemon=True)
        self._thread.start()

    def add(self, table: str, row: list[Any]) -> None:
        with self._lock:
            rows = self._pending.get(table)
            if rows is None:
                rows = self._pending[table] = []
            rows.append(row)
            self._count += 1
            if self._count >= self._batch_size:
                self._wake.set()

    def _take(self) -> dict[str, list[list[Any]]]:
        with self._lock:
            taken, self._pending, self._count = self._pending, {}, 0
            self._busy = bool(taken)
            return taken

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            for table, rows in self._take().items():
                try:
                    self._insert(table, rows)
                    self.inserted += len(rows)
                    self.batches += 1
                except Exception as exc:  # what a user's loop does: note it, keep going
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            with self._idle:
                self._busy = False
                self._idle.notify_all()
            if self._stop and not self._count:
                return

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                empty = not self._count
            if empty and not self._busy:
                return self.failures == 0
            self._wake.set()
            with self._idle:
                self._idle.wait(max(0.0, min(0.05, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                return False

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(30)


class ClickHouseConnect:
    """clickhouse-connect's ``Client.insert`` with hand-written batching (``_Batcher``).

    Old servers: 1.7 and later ask the server for the ``readonly`` setting in a way 18.16
    rejects, so 1.6.0 is the newest release that works with Debian's 18.16; its lz4 insert
    compression is refused by 18.16 (code 89), and its table description (``DESCRIBE``) does
    not parse 18.16's answer, so the column types are given (read from ``system.columns``).
    Inserts are uncompressed on loopback (as ours), gzip elsewhere. On 18.16's tables there is
    no attributes column, so attributes are not sent there."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import clickhouse_connect

        destination = spec["destination"]
        self.sockets = SocketCounter().install()
        host, port = destination["url"].rsplit("//", 1)[1].rsplit(":", 1)
        self.client = clickhouse_connect.get_client(
            host=host,
            port=int(port.rstrip("/")),
            username=destination["username"],
            password=destination["password"],
            compress=False if destination.get("loopback") else "gzip",
        )
        database = destination["database"]
        self.database = database
        answer = self.client.query(
            f"SELECT table, name, type FROM system.columns WHERE database = '{database}'"
        )
        types: dict[str, dict[str, str]] = {}
        for table, name, type_name in answer.result_rows:
            types.setdefault(table, {})[name] = type_name
        self.with_attributes = "attributes" in types.get("traces", {})
        common = ["timestamp_ns", "service_name", "project_name", "project_version", "hostname"]
        extra = ["attributes"] if self.with_attributes else []
        self.columns = {
            "traces": [*common, "span_name", "status_code", *extra],
            "metrics": [*common, "metric_name", "metric_type", "value_double", *extra],
            "logs": [*common, "severity_text", "severity_number", "body", *extra],
        }
        self.types = {t: [types[t][c] for c in cols] for t, cols in self.columns.items()}
        self.resource = ["bench", "bench", "1.0.0", socket.gethostname()]
        interval = float(spec.get("flush_interval") or 5.0)
        self.batcher = _Batcher(self._insert, spec["workload"]["batch_size"], interval)
        add = self.batcher.add
        resource = self.resource
        time_ns = time.time_ns
        metric_types = ("GAUGE", "SUM", "HISTOGRAM")
        severity = {"debug": 5, "info": 9, "warn": 13, "error": 17}

        if self.with_attributes:

            def event(name: str, attrs: dict[str, Any]) -> None:
                strs = {k: str(v) for k, v in attrs.items()}
                add("traces", [time_ns(), *resource, name, "OK", strs])

            def metric(name: str, value: float, kind: int, attrs: dict[str, Any]) -> None:
                strs = {k: str(v) for k, v in attrs.items()}
                add("metrics", [time_ns(), *resource, name, metric_types[kind], value, strs])

            def log(message: str, level: str, attrs: dict[str, Any]) -> None:
                strs = {k: str(v) for k, v in attrs.items()}
                row = [time_ns(), *resource, level.upper(), severity[level], message, strs]
                add("logs", row)
        else:

            def event(name: str, attrs: dict[str, Any]) -> None:
                add("traces", [time_ns(), *resource, name, "OK"])

            def metric(name: str, value: float, kind: int, attrs: dict[str, Any]) -> None:
                add("metrics", [time_ns(), *resource, name, metric_types[kind], value])

            def log(message: str, level: str, attrs: dict[str, Any]) -> None:
                add("logs", [time_ns(), *resource, level.upper(), severity[level], message])

        self._event, self._metric, self._log = event, metric, log

    def _insert(self, table: str, rows: list[list[Any]]) -> None:
        self.client.insert(
            table,
            rows,
            column_names=self.columns[table],
            database=self.database,
            column_type_names=self.types[table],
        )

    def prepare(self, op: Op) -> Call:
        kind, name, value, level, attrs = op
        if kind == EVENT:
            return self._event, (name, attrs)
        if kind == METRIC:
            return self._metric, (name, value, level, attrs)
        return self._log, (name, LOG_LEVELS[level], attrs)

    def flush(self, timeout: float) -> bool:
        return self.batcher.flush(timeout)

    def writer_pid(self) -> int | None:
        return None

    def stats(self) -> dict[str, Any]:
        b = self.batcher
        return {
            "inserted": b.inserted,
            "batches_sent": b.batches,
            "failed": b.failures,
            "last_error": b.last_error or None,
            "dropped_total": 0,
            "wire_bytes": self.sockets.sent,
            "wire_bytes_what": "all bytes sent on the process's sockets",
            "attributes_sent": self.with_attributes,
        }

    def close(self) -> None:
        self.batcher.close()
        self.client.close()


# --- the floor --------------------------------------------------------------------------------


class Floor:
    """``queue.SimpleQueue.put`` of the operation: the least any in-process hand-off costs."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.queue: queue.SimpleQueue[Op] = queue.SimpleQueue()

    def prepare(self, op: Op) -> Call:
        return self.queue.put, (op,)

    def flush(self, timeout: float) -> bool:
        return True

    def writer_pid(self) -> int | None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"dropped_total": 0, "queued": self.queue.qsize()}

    def close(self) -> None:
        pass


def make_adapter(
    spec: dict[str, Any],
) -> Ours | OtelSdk | ClickHouseConnect | Floor:
    system = spec["system"]
    if system in OURS:
        return Ours(spec)
    if system in OTEL:
        return OtelSdk(spec)
    if system == CLICKHOUSE_CONNECT:
        return ClickHouseConnect(spec)
    if system == FLOOR:
        return Floor(spec)
    raise ValueError(f"unknown system {system!r}")
