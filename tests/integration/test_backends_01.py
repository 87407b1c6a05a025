"""The 0.1 backend classes (``automagik_telemetry.backends``) against real servers: the Debian
ClickHouse server (18.16, the old-server schema) and the loopback OTLP receiver, which decodes
every request with the official OTLP messages."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from automagik_telemetry.backends import ClickHouseBackend, OTLPBackend, TelemetryBackend
from tests.support import ClickHouseDatabase
from tests.support.servers.otlp_receiver import OtlpReceiver, Response


def backend_for(db: ClickHouseDatabase, **options: Any) -> ClickHouseBackend:
    settings: dict[str, Any] = {
        "endpoint": db.server.url,
        "database": db.name,
        "username": db.server.username,
        "password": db.server.password,
        "retry_backoff_base": 0.01,
    }
    settings.update(options)
    return ClickHouseBackend(**settings)


def span(name: str, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": name,
        "kind": "SERVER",
        "startTimeUnixNano": 1_700_000_000_000_000_000,
        "endTimeUnixNano": 1_700_000_000_250_000_000,
        "attributes": [
            {"key": "user.id", "value": {"stringValue": "u-1"}},
            {"key": "n", "value": {"intValue": 3}},
        ],
        "resource": {
            "attributes": [
                {"key": "service.name", "value": {"stringValue": "svc"}},
                {"key": "project.name", "value": {"stringValue": "proj"}},
            ]
        },
    }
    payload.update(extra)
    return payload


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_backends_implement_the_interface() -> None:
    assert issubclass(ClickHouseBackend, TelemetryBackend)
    assert issubclass(OTLPBackend, TelemetryBackend)


def test_clickhouse_backend_stores_spans_metrics_and_logs(ch_db: ClickHouseDatabase) -> None:
    backend = backend_for(ch_db)
    assert backend.send_trace(span("checkout"))
    assert backend.send_metric("requests", 7, metric_type="counter", unit="1")
    assert backend.send_metric({"metric_name": "load", "value": 0.5})
    assert backend.send_log(
        "disk almost full", level="WARNING", attributes={"exception.type": "OSError"}
    )
    assert backend.send_log({"message": '{"k": 1}', "level": "error"})
    assert backend.flush() is True
    assert backend._trace_batch == backend._metric_batch == backend._log_batch == []

    row = ch_db.query(
        f"SELECT span_name, span_kind, duration_ms, service_name, project_name, user_id, "
        f"toUnixTimestamp(timestamp) FROM {ch_db.name}.traces"
    )
    assert row.split("\t") == ["checkout", "SERVER", "250", "svc", "proj", "u-1", "1700000000"]
    metrics = ch_db.query(
        f"SELECT metric_name, metric_type, value_int, value_double, is_monotonic "
        f"FROM {ch_db.name}.metrics ORDER BY metric_name"
    )
    assert metrics.splitlines() == ["load\tGAUGE\t0\t0.5\t0", "requests\tSUM\t7\t0\t1"]
    logs = ch_db.query(
        f"SELECT exception_type, severity_text, severity_number, body_type, is_exception "
        f"FROM {ch_db.name}.logs ORDER BY severity_number"
    )
    assert logs.splitlines() == ["OSError\tWARNING\t13\tSTRING\t1", "\tERROR\t17\tJSON\t0"]


def test_a_full_batch_is_inserted_compressed(ch_db: ClickHouseDatabase) -> None:
    backend = backend_for(ch_db, batch_size=40)
    for i in range(39):
        assert backend.send_metric(f"m{i}", i, attributes={"pad": "x" * 40})
    assert ch_db.count("metrics") == 0  # not full yet
    assert backend.send_metric("m39", 39)  # the 40th row: the batch is inserted
    assert ch_db.count("metrics") == 40
    assert backend._metric_batch == []


def test_a_wrong_password_is_false_and_the_rows_are_let_go(
    ch_db: ClickHouseDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    backend = backend_for(ch_db, password="not-the-password-xyz")
    backend.send_log("hello")
    with caplog.at_level(logging.DEBUG, logger="automagik_telemetry"):
        assert backend.flush() is False
    assert backend._log_batch == []
    assert ch_db.count("logs") == 0
    assert "not stored" in caplog.text
    assert "not-the-password-xyz" not in caplog.text
    assert "not-the-password-xyz" not in repr(backend)


def test_an_unreachable_server_is_false_not_an_exception() -> None:
    backend = ClickHouseBackend(
        endpoint=f"http://127.0.0.1:{closed_port()}", max_retries=2, retry_backoff_base=0.01
    )
    backend.send_trace(span("lost"))
    assert backend.flush() is False
    assert backend.flush() is True  # nothing left to send


def otlp_spans(name: str, pad: str = "") -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "tests"},
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": name,
                                "kind": 1,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000100000000",
                                "attributes": [{"key": "pad", "value": {"stringValue": pad}}],
                            }
                        ],
                    }
                ],
            }
        ]
    }


def otlp_backend(receiver: OtlpReceiver, **options: Any) -> OTLPBackend:
    settings: dict[str, Any] = {
        "endpoint": receiver.endpoint("traces"),
        "metrics_endpoint": receiver.endpoint("metrics"),
        "logs_endpoint": receiver.endpoint("logs"),
        "retry_backoff_base": 0.01,
    }
    settings.update(options)
    return OTLPBackend(**settings)


def test_otlp_backend_posts_json_and_compresses_large_bodies() -> None:
    with OtlpReceiver() as receiver:
        backend = otlp_backend(receiver, compression_threshold=1024)
        assert backend.send_trace(otlp_spans("small"))
        assert backend.send_trace(otlp_spans("large", pad="y" * 4000))
        assert backend.flush() is True
        names = [s.name for _, _, s in receiver.spans()]
        assert names == ["small", "large"]
        encodings = [r.content_encoding for r in receiver.requests]
        assert encodings == ["", "gzip"]
        assert {r.content_type for r in receiver.requests} == {"application/json"}


def test_otlp_backend_retries_a_5xx_and_not_a_4xx() -> None:
    with OtlpReceiver() as receiver:
        backend = otlp_backend(receiver, max_retries=2)
        receiver.script("traces", [Response(status=503), Response(status=200)])
        assert backend.send_trace(otlp_spans("retried"))
        assert [r.response_status for r in receiver.rejected_requests] == [503]
        assert len(receiver.spans()) == 1
        receiver.script("traces", [Response(status=400)])
        assert backend.send_trace(otlp_spans("refused")) is False
        assert receiver.pending_responses("traces") == 0
        assert len(receiver.rejected_requests) == 2  # the 503 and the 400, no retry of it


def test_otlp_backend_to_nowhere_is_false() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1/traces"
    backend = OTLPBackend(url, url, url, max_retries=1, retry_backoff_base=0.01)
    assert backend.send_trace(otlp_spans("lost")) is False
    assert backend.send_metric({"resourceMetrics": []}) is False
    assert backend.send_log({"resourceLogs": []}) is False


def test_a_given_timestamp_is_kept_to_the_nanosecond(ch_db: ClickHouseDatabase) -> None:
    backend = backend_for(ch_db)
    when = datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    backend.send_log("at a known time", timestamp=when)
    assert backend._log_batch[0]["timestamp"] == "2024-01-15 10:30:00"
    assert backend.flush()
    stored = ch_db.query(f"SELECT timestamp_ns, toUnixTimestamp(timestamp) FROM {ch_db.name}.logs")
    assert stored.split("\t") == [str(int(when.timestamp() * 1_000_000_000)), "1705314600"]
