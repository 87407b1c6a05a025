"""The full schema on the embedded ClickHouse engine (chdb, a current release): every track
call reads back with the right values and types."""

from __future__ import annotations

import json
import time
from pathlib import Path

from chdb import session as chdb_session

from automagik_telemetry import AutomagikTelemetry, LogSeverity, MetricType
from automagik_telemetry.sinks.clickhouse import schema_statements


def test_schema_applies_to_a_current_engine(tmp_path: Path) -> None:
    session = chdb_session.Session(str(tmp_path / "db"))
    try:
        for statement in schema_statements():
            session.query(statement)
        tables = session.query("SHOW TABLES FROM telemetry", "CSV").bytes().decode().split()
        assert tables == ['"logs"', '"metrics"', '"traces"']
        engine = (
            session.query(
                "SELECT engine_full FROM system.tables "
                "WHERE database = 'telemetry' AND name = 'traces'",
                "CSV",
            )
            .bytes()
            .decode()
        )
        assert "non_replicated_deduplication_window = 10000" in engine
    finally:
        session.close()


def test_every_track_call_reads_back_with_its_types(tmp_path: Path) -> None:
    path = tmp_path / "embedded"
    started = time.time_ns()
    client = AutomagikTelemetry(
        project_name="embedded-tests", version="2.0.0", backend="embedded", embedded_path=str(path)
    )
    client.track_event("user.signup", {"plan": "pro", "seats": 3, "ratio": 0.5, "trial": True,
                                       "tags": ["a", "b"]})  # fmt: skip
    try:
        raise ValueError("bad input")
    except ValueError as exc:
        client.track_error(exc, {"step": "parse"})
    client.track_metric("queue.depth", 42, MetricType.GAUGE, {"queue": "emails"})
    client.track_metric("jobs.done", 1, MetricType.COUNTER)
    client.track_metric("latency_ms", 30.0, MetricType.HISTOGRAM)
    client.track_log("disk almost full", LogSeverity.WARN, {"free_gb": 1.5})
    client.track_log("fatal", LogSeverity.FATAL)
    assert client.flush(timeout=60)
    assert client.shutdown(timeout=30)
    ended = time.time_ns()

    session = chdb_session.Session(str(path))
    try:

        def rows(sql: str) -> list[dict[str, object]]:
            out = session.query(sql, "JSONEachRow").bytes().decode()
            return [json.loads(line) for line in out.splitlines()]

        traces = rows(
            "SELECT span_name, status_code, status_message, attributes, timestamp_ns, "
            "toUnixTimestamp64Nano(timestamp) AS ts_ns, toTypeName(timestamp) AS ts_type, "
            "length(trace_id) AS tl, length(span_id) AS sl, service_name, project_version, "
            "span_kind FROM telemetry.traces ORDER BY timestamp_ns"
        )
        assert [t["span_name"] for t in traces] == ["user.signup", "automagik.error"]
        event, error = traces
        assert event["attributes"] == {"plan": "pro", "seats": "3", "ratio": "0.5",
                                       "trial": "true", "tags": '["a","b"]'}  # fmt: skip
        assert event["status_code"] == "OK" and error["status_code"] == "ERROR"
        assert error["status_message"] == "bad input"
        assert error["attributes"]["exception.type"] == "ValueError"
        assert error["attributes"]["step"] == "parse"
        assert "raise ValueError" in error["attributes"]["exception.stacktrace"]
        for t in traces:
            assert t["ts_type"] == "DateTime64(9, 'UTC')"
            assert int(t["ts_ns"]) == int(t["timestamp_ns"])  # to the nanosecond
            assert started <= int(t["timestamp_ns"]) <= ended
            assert (t["tl"], t["sl"]) == (32, 16)
            assert (t["service_name"], t["project_version"], t["span_kind"]) == (
                "embedded-tests", "2.0.0", "INTERNAL")  # fmt: skip

        metrics = rows(
            "SELECT metric_name, metric_type, value_int, value_double, is_monotonic, "
            "aggregation_temporality, histogram_count, histogram_bucket_counts, "
            "histogram_explicit_bounds, attributes FROM telemetry.metrics ORDER BY metric_name"
        )
        by_name = {m["metric_name"]: m for m in metrics}
        assert by_name["queue.depth"]["metric_type"] == "GAUGE"
        assert (
            by_name["queue.depth"]["value_int"] == "42" or by_name["queue.depth"]["value_int"] == 42
        )
        assert by_name["queue.depth"]["attributes"] == {"queue": "emails"}
        assert by_name["jobs.done"]["metric_type"] == "SUM"
        assert by_name["jobs.done"]["is_monotonic"] == 1
        assert by_name["jobs.done"]["aggregation_temporality"] == "DELTA"
        histogram = by_name["latency_ms"]
        assert histogram["metric_type"] == "HISTOGRAM"
        assert histogram["value_double"] == 30
        assert int(histogram["histogram_count"]) == 1
        bounds, counts = (
            histogram["histogram_explicit_bounds"],
            histogram["histogram_bucket_counts"],
        )
        assert len(counts) == len(bounds) + 1 and sum(int(c) for c in counts) == 1
        assert [int(c) for c in counts].index(1) == bounds.index(50)  # 30 falls in (25, 50]

        logs = rows(
            "SELECT body, severity_text, severity_number, attributes, body_type, "
            "toUnixTimestamp64Nano(observed_timestamp) = timestamp_ns AS same "
            "FROM telemetry.logs ORDER BY severity_number"
        )
        assert [(r["body"], r["severity_text"], r["severity_number"]) for r in logs] == [
            ("disk almost full", "WARN", 13), ("fatal", "FATAL", 21)]  # fmt: skip
        assert logs[0]["attributes"] == {"free_gb": "1.5"}
        assert all(r["body_type"] == "STRING" and r["same"] == 1 for r in logs)
    finally:
        session.close()
