"""``ClickHouseBackend`` of automagik-telemetry 0.1: rows of the traces, metrics and logs tables
built from OTLP-shaped spans and from plain arguments, batched in memory and inserted by
``flush()`` over ClickHouse's HTTP interface (see the package's docstring for how this relates
to the engine).

The rows have the original's keys and values. What is sent differs on purpose in three ways:
the DateTime text columns ``timestamp`` / ``observed_timestamp`` are left to the server, which
computes them from the ``*_ns`` columns (this package's schemas do so, and the old-server schema
refuses an insert into them); columns the table lacks are skipped
(``input_format_skip_unknown_fields``); credentials go in ``X-ClickHouse-User`` /
``X-ClickHouse-Key`` headers, never in the URL or a log line.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import urllib3

from ..schema import LogSeverity, MetricType, parse_severity
from ..transport import USER_AGENT
from ._http import post
from .base import TelemetryBackend

logger = logging.getLogger(__name__)

METRIC_TYPES: Final = ("GAUGE", "SUM", "HISTOGRAM", "EXPONENTIAL_HISTOGRAM", "SUMMARY")
_COMPUTED_BY_SERVER: Final = frozenset({"timestamp", "observed_timestamp"})
_COMPRESS_ABOVE: Final = 1024
_TIME: Final = "%Y-%m-%d %H:%M:%S"

#: resource attribute -> column, shared by the three tables (with the default when absent)
_RESOURCE_COLUMNS: Final = (
    ("project_name", "project.name", ""),
    ("project_version", "project.version", ""),
    ("service_name", "service.name", "unknown"),
    ("environment", "deployment.environment", "production"),
    ("hostname", "host.name", ""),
    ("os_type", "os.type", ""),
    ("os_version", "os.version", ""),
    ("runtime_name", "process.runtime.name", ""),
    ("runtime_version", "process.runtime.version", ""),
    ("cloud_provider", "cloud.provider", ""),
    ("cloud_region", "cloud.region", ""),
    ("cloud_availability_zone", "cloud.availability_zone", ""),
    ("instrumentation_library_name", "telemetry.sdk.name", ""),
    ("instrumentation_library_version", "telemetry.sdk.version", ""),
)
_SERVICE_COLUMNS: Final = (
    ("service_namespace", "service.namespace", ""),
    ("service_instance_id", "service.instance.id", ""),
)


def _nanos(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _utc_text(nanos: int) -> str:
    return datetime.fromtimestamp(nanos / 1e9, tz=UTC).strftime(_TIME)


def _resource_columns(resource: Mapping[str, Any], *, service: bool) -> dict[str, Any]:
    columns = {col: resource.get(key, default) for col, key, default in _RESOURCE_COLUMNS}
    if service:
        columns.update({col: resource.get(key, d) for col, key, d in _SERVICE_COLUMNS})
    return columns


def _otlp_value(value: Mapping[str, Any]) -> str | None:
    if "stringValue" in value:
        return str(value["stringValue"])
    for kind in ("intValue", "doubleValue", "boolValue"):
        if kind in value:
            return str(value[kind])
    return None


class ClickHouseBackend(TelemetryBackend):
    """Rows for the ``traces``, ``metrics`` and ``logs`` tables of ``database``, inserted when a
    batch reaches ``batch_size`` rows and on ``flush()``."""

    def __init__(
        self,
        endpoint: str = "http://localhost:8123",
        database: str = "telemetry",
        traces_table: str = "traces",
        metrics_table: str = "metrics",
        logs_table: str = "logs",
        username: str = "default",
        password: str = "",
        timeout: int = 5,
        batch_size: int = 100,
        compression_enabled: bool = True,
        max_retries: int = 3,
        retry_backoff_base: float = 1.0,
        verbose: bool = False,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.database = database
        self.traces_table = traces_table
        self.metrics_table = metrics_table
        self.logs_table = logs_table
        self.username = username
        self.password = password
        self.timeout = timeout
        self.batch_size = batch_size
        self.compression_enabled = compression_enabled
        self.max_retries = max_retries
        self.retry_backoff_base = retry_backoff_base
        self.verbose = verbose
        self._trace_batch: list[dict[str, Any]] = []
        self._metric_batch: list[dict[str, Any]] = []
        self._log_batch: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._pool: urllib3.PoolManager | None = None

    def __repr__(self) -> str:
        return (
            f"ClickHouseBackend(endpoint={self.endpoint!r}, database={self.database!r}, "
            f"username={self.username!r}, password={'***' if self.password else ''!r})"
        )

    # --- rows -----------------------------------------------------------------------------

    def transform_otlp_to_clickhouse(self, otlp_payload: dict[str, Any]) -> dict[str, Any]:
        """The traces-table row of one OTLP/JSON span (``traceId``, ``spanId``, ``name``,
        ``kind``, ``startTimeUnixNano``, ``endTimeUnixNano``, ``status``, ``attributes``,
        ``resource.attributes``). Attribute values become strings; resource attributes are
        read from their ``stringValue``."""
        start = _nanos(otlp_payload.get("startTimeUnixNano"), 0)
        timestamp_ns = start if "startTimeUnixNano" in otlp_payload else time.time_ns()
        end = _nanos(otlp_payload.get("endTimeUnixNano"), start)
        status = otlp_payload.get("status") or {}
        message = status.get("message", "")
        attributes: dict[str, str] = {}
        for item in otlp_payload.get("attributes") or []:
            text = _otlp_value(item.get("value") or {})
            if text is not None:
                attributes[item.get("key", "")] = text
        resource: dict[str, str] = {}
        for item in (otlp_payload.get("resource") or {}).get("attributes") or []:
            value = item.get("value") or {}
            if "stringValue" in value:
                resource[item.get("key", "")] = value["stringValue"]
        row: dict[str, Any] = {
            "trace_id": otlp_payload.get("traceId", ""),
            "span_id": otlp_payload.get("spanId", ""),
            "parent_span_id": otlp_payload.get("parentSpanId", ""),
            "timestamp": _utc_text(timestamp_ns),
            "timestamp_ns": timestamp_ns,
            "duration_ms": (end - start) // 1_000_000 if end > start else 0,
            "span_name": otlp_payload.get("name", "unknown"),
            "span_kind": otlp_payload.get("kind", "INTERNAL"),
            "status_code": "OK" if status.get("code") == 1 else (message or "OK"),
            "status_message": message,
            "attributes": attributes,
            "user_id": attributes.get("user.id", ""),
            "session_id": attributes.get("session.id", ""),
        }
        row.update(_resource_columns(resource, service=False))
        return row

    def add_to_batch(self, otlp_payload: dict[str, Any]) -> None:
        """Queue the row of one span; a full batch is flushed."""
        self._queue(self._trace_batch, self.transform_otlp_to_clickhouse(otlp_payload))

    def _queue(self, batch: list[dict[str, Any]], row: dict[str, Any]) -> None:
        with self._lock:
            batch.append(row)
            full = len(batch) >= self.batch_size
        if full:
            self.flush()

    def send_trace(self, payload: dict[str, Any]) -> bool:
        """Queue one OTLP span; False (logged) if it cannot be read."""
        try:
            self.add_to_batch(payload)
        except Exception as exc:
            logger.error("ClickHouseBackend: span not queued: %s", exc)
            return False
        return True

    def send_metric(
        self,
        payload: dict[str, Any] | str | None = None,
        value: float | None = None,
        metric_type: str | MetricType = "gauge",
        unit: str = "",
        attributes: dict[str, Any] | None = None,
        resource_attributes: dict[str, Any] | None = None,
        timestamp: datetime | None = None,
        **kwargs: Any,
    ) -> bool:
        """Queue one metric point: ``send_metric({"metric_name": ..., "value": ...})``,
        ``send_metric("name", 1.5, ...)`` or ``send_metric(metric_name="name", value=1.5)``.
        ``counter`` is stored as ``SUM``; an unknown type as ``GAUGE`` (with a warning).
        False (logged) without a name or a value."""
        try:
            if isinstance(payload, dict):
                name = payload.get("metric_name", "")
                number = payload.get("value", 0.0)
                metric_type = payload.get("metric_type", "gauge")
                unit = payload.get("unit", "")
                attributes = payload.get("attributes")
                resource_attributes = payload.get("resource_attributes")
                timestamp = payload.get("timestamp")
            else:
                name = payload if isinstance(payload, str) else kwargs.get("metric_name", "")
                number = 0.0 if value is None else value
            if not name:
                logger.error("send_metric requires metric_name")
                return False
            if value is None and not isinstance(payload, dict):
                logger.error("send_metric requires value")
                return False
            self._queue(
                self._metric_batch,
                self._metric_row(
                    name,
                    number,
                    metric_type,
                    unit,
                    attributes or {},
                    resource_attributes or {},
                    timestamp or datetime.now(UTC),
                ),
            )
        except Exception as exc:
            logger.error("ClickHouseBackend: metric not queued: %s", exc)
            return False
        return True

    def _metric_row(
        self,
        name: str,
        number: Any,
        metric_type: str | MetricType,
        unit: str,
        attributes: Mapping[str, Any],
        resource: Mapping[str, Any],
        timestamp: datetime,
    ) -> dict[str, Any]:
        given = metric_type.value if isinstance(metric_type, MetricType) else str(metric_type)
        kind = given.upper()
        if kind == "COUNTER":
            kind = "SUM"
        if kind not in METRIC_TYPES:
            logger.warning("Invalid metric_type '%s', defaulting to GAUGE", metric_type)
            kind = "GAUGE"
        whole = isinstance(number, int) and not isinstance(number, bool)
        when = timestamp.strftime(_TIME)
        row: dict[str, Any] = {
            "metric_id": str(uuid.uuid4()),
            "metric_name": name,
            "metric_type": kind,
            "metric_unit": unit,
            "metric_description": "",
            "timestamp": when,
            "timestamp_ns": int(timestamp.timestamp() * 1_000_000_000),
            "time_window_start": when,
            "time_window_end": when,
            "value_int": int(number) if whole else 0,
            "value_double": 0.0 if whole else float(number),
            "is_monotonic": 1 if kind == "SUM" else 0,
            "aggregation_temporality": "DELTA" if kind == "SUM" else "UNSPECIFIED",
            "histogram_count": 0,
            "histogram_sum": 0.0,
            "histogram_min": 0.0,
            "histogram_max": 0.0,
            "histogram_bucket_counts": [],
            "histogram_explicit_bounds": [],
            "summary_count": 0,
            "summary_sum": 0.0,
            "quantile_values": {},
            "attributes": {str(k): str(v) for k, v in attributes.items()},
            "user_id": attributes.get("user.id", ""),
            "session_id": attributes.get("session.id", ""),
            "schema_url": "",
        }
        row.update(_resource_columns(resource, service=True))
        return row

    def send_log(
        self,
        payload: dict[str, Any] | str | None = None,
        level: str = "INFO",
        attributes: dict[str, Any] | None = None,
        resource_attributes: dict[str, Any] | None = None,
        timestamp: datetime | None = None,
        trace_id: str = "",
        span_id: str = "",
        **kwargs: Any,
    ) -> bool:
        """Queue one log record: ``send_log({"message": ..., "level": ...})``,
        ``send_log("text", level="ERROR")`` or ``send_log(message="text")``. An empty message
        is allowed; ``trace_id`` / ``span_id`` are taken from the attributes when not given."""
        try:
            if isinstance(payload, dict):
                message = payload.get("message", "")
                level = payload.get("level", "INFO")
                attributes = payload.get("attributes")
                resource_attributes = payload.get("resource_attributes")
                timestamp = payload.get("timestamp")
                trace_id = payload.get("trace_id", "")
                span_id = payload.get("span_id", "")
            else:
                message = payload if isinstance(payload, str) else kwargs.get("message", "")
            attrs = attributes or {}
            self._queue(
                self._log_batch,
                self._log_row(
                    message,
                    level,
                    attrs,
                    resource_attributes or {},
                    timestamp or datetime.now(UTC),
                    trace_id or str(attrs.get("trace_id", "")),
                    span_id or str(attrs.get("span_id", "")),
                ),
            )
        except Exception as exc:
            logger.error("ClickHouseBackend: log not queued: %s", exc)
            return False
        return True

    def _log_row(
        self,
        message: str,
        level: str | LogSeverity,
        attributes: Mapping[str, Any],
        resource: Mapping[str, Any],
        timestamp: datetime,
        trace_id: str,
        span_id: str,
    ) -> dict[str, Any]:
        text = level.name if isinstance(level, LogSeverity) else str(level).upper()
        severity = parse_severity(text) or LogSeverity.INFO
        observed = time.time_ns()
        try:
            json.loads(message)
            body_type = "JSON"
        except (ValueError, TypeError):
            body_type = "STRING"
        row: dict[str, Any] = {
            "log_id": str(uuid.uuid4()),
            "trace_id": trace_id,
            "span_id": span_id,
            "timestamp": timestamp.strftime(_TIME),
            "timestamp_ns": int(timestamp.timestamp() * 1_000_000_000),
            "observed_timestamp": _utc_text(observed),
            "observed_timestamp_ns": observed,
            "severity_text": text,
            "severity_number": severity.value,
            "body": message,
            "body_type": body_type,
            "attributes": {str(k): str(v) for k, v in attributes.items()},
            "user_id": attributes.get("user.id", ""),
            "session_id": attributes.get("session.id", ""),
            "schema_url": "",
            "exception_type": attributes.get("exception.type", ""),
            "exception_message": attributes.get("exception.message", ""),
            "exception_stacktrace": attributes.get("exception.stacktrace", ""),
            "is_exception": 1 if "exception.type" in attributes else 0,
        }
        row.update(_resource_columns(resource, service=True))
        return row

    # --- delivery -------------------------------------------------------------------------

    def flush(self) -> bool:
        """Insert every queued row, one request per table; the batches are emptied whatever
        the outcome. True if every insert was accepted."""
        with self._lock:
            batches = (
                (self._take(self._trace_batch), self.traces_table),
                (self._take(self._metric_batch), self.metrics_table),
                (self._take(self._log_batch), self.logs_table),
            )
        ok = True
        for rows, table in batches:
            if rows and not self._insert_batch(rows, table):
                ok = False
        return ok

    @staticmethod
    def _take(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = list(batch)
        batch.clear()
        return rows

    def _insert_batch(self, rows: list[dict[str, Any]], table_name: str) -> bool:
        if not rows:
            return True
        try:
            body = "\n".join(
                json.dumps({k: v for k, v in row.items() if k not in _COMPUTED_BY_SERVER})
                for row in rows
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            logger.warning("ClickHouseBackend: rows for %s not encodable: %s", table_name, exc)
            return False
        headers = {"Content-Type": "application/x-ndjson", "User-Agent": USER_AGENT}
        if self.username:
            headers["X-ClickHouse-User"] = self.username
            headers["X-ClickHouse-Key"] = self.password
        if self.compression_enabled and len(body) > _COMPRESS_ABOVE:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        query = urllib.parse.urlencode(
            {
                "query": f"INSERT INTO {self.database}.{table_name} FORMAT JSONEachRow",
                "input_format_skip_unknown_fields": "1",
            }
        )
        if self._pool is None:
            self._pool = urllib3.PoolManager(num_pools=1, maxsize=1)
        answer = post(
            self._pool,
            f"{self.endpoint}/?{query}",
            body,
            headers,
            timeout=float(self.timeout),
            attempts=self.max_retries,
            backoff_base=self.retry_backoff_base,
        )
        if answer.ok:
            logger.debug("Inserted %d rows into %s", len(rows), table_name)
            if self.verbose:
                print(f"Inserted {len(rows)} rows to ClickHouse table {table_name} successfully")
            return True
        logger.warning(
            "ClickHouseBackend: %d rows for %s.%s not stored: %s",
            len(rows),
            self.database,
            table_name,
            answer.detail,
        )
        if self.verbose:
            print(f"Failed to insert to ClickHouse table {table_name}: {answer.detail}")
        return False
