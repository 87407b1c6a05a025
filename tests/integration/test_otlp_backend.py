"""backend="otlp" end to end: a real client, its writer process, and the loopback OTLP receiver,
which decodes every request with the official opentelemetry-proto messages and rejects
off-spec OTLP/JSON (ids, key spelling, enum spelling) and unknown protobuf fields.

Every test runs in both encodings where the behaviour is the same.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import lz4.frame
import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from automagik_telemetry import AutomagikTelemetry, LogSeverity, MetricType
from automagik_telemetry.__about__ import __version__
from automagik_telemetry.client import spool_directory
from automagik_telemetry.rows.clickhouse import HISTOGRAM_BOUNDS
from automagik_telemetry.rows.compact import CompactRows
from automagik_telemetry.rows.otlp_json import OtlpJsonRows
from automagik_telemetry.rows.otlp_protobuf import OtlpProtobufRows
from automagik_telemetry.spool import Spool
from automagik_telemetry.writer.spooling import SPOOL_ENCODING
from tests.support import shm_segments
from tests.support.otlp import assert_no_unknown_fields, attribute_dict, key_values
from tests.support.servers.otlp_receiver import OtlpReceiver, ReceivedRequest, Response

PROTOCOLS = ["http/json", "http/protobuf"]
MEDIA = {"http/json": "application/json", "http/protobuf": "application/x-protobuf"}

TYPED: dict[str, Any] = {
    "user": "alice",
    "empty": "",
    "count": 42,
    "negative": -7,
    "big": (1 << 63) - 1,
    "ratio": 0.25,
    "ok": True,
    "flag_off": False,
    "tags": ["a", 1, 2.5, True],
    "nested": {"region": "eu", "limits": {"max": 10, "soft": 7.5}, "ids": [1, 2]},
}


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


def client_for(receiver: OtlpReceiver, protocol: str, **options: Any) -> AutomagikTelemetry:
    settings: dict[str, Any] = {
        "project_name": "tests",
        "version": "1.0.0",
        "backend": "otlp",
        "endpoint": receiver.url,
        "otlp_protocol": protocol,
        "flush_interval": 30.0,  # batches leave on flush(): one request per signal
        "retry_backoff_base": 0.05,
        "ring_size": 1 << 20,
    }
    settings.update(options)
    return AutomagikTelemetry(**settings)


FIELDS = {  # signal -> (resource list, scope list) fields of its export request
    "traces": ("resource_spans", "scope_spans"),
    "metrics": ("resource_metrics", "scope_metrics"),
    "logs": ("resource_logs", "scope_logs"),
}


def resource_of(request: ReceivedRequest) -> dict[str, Any]:
    outer = getattr(request.message, FIELDS[request.signal][0])
    assert len(outer) == 1, "one resource per request"
    return attribute_dict(outer[0].resource.attributes)


def check_request_envelopes(
    receiver: OtlpReceiver, protocol: str, client: AutomagikTelemetry
) -> None:
    """Every request: the protocol's media type, no compression on loopback, our user agent,
    the resource once, the scope, and nothing the receiver could not decode."""
    assert receiver.errors == []
    assert receiver.rejected_requests == []
    expected_resource = {
        "service.name": "tests",
        "service.version": "1.0.0",
        "service.organization": "namastex",
        "deployment.environment": "production",
        "telemetry.sdk.name": "automagik-telemetry",
        "telemetry.sdk.version": __version__,
        "telemetry.sdk.language": "python",
        "host.name": socket.gethostname(),
        "host.arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(
            platform.machine(), platform.machine()
        ),
        "os.type": platform.system().lower(),
        "os.version": platform.release(),
        "process.pid": os.getpid(),
        "process.runtime.name": "cpython",
        "process.runtime.version": platform.python_version(),
        "user.id": client.user_id,
        "session.id": client.session_id,
    }
    for request in receiver.requests:
        assert request.content_type == MEDIA[protocol]
        assert request.content_encoding == ""  # auto: loopback is not compressed
        assert request.headers["user-agent"] == f"automagik-telemetry/{__version__}"
        assert resource_of(request) == expected_resource
        outer = getattr(request.message, FIELDS[request.signal][0])[0]
        (scope_items,) = getattr(outer, FIELDS[request.signal][1])
        assert (scope_items.scope.name, scope_items.scope.version) == (
            "automagik-telemetry",
            __version__,
        )
        assert_no_unknown_fields(request.message)


# --- every field of every signal ------------------------------------------------------------


@pytest.mark.parametrize("encode_in", ["writer", "caller"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_field_of_every_signal_arrives(
    receiver: OtlpReceiver, protocol: str, encode_in: str
) -> None:
    start = time.time_ns()
    with client_for(receiver, protocol, otlp_encode_in=encode_in) as client:
        client.track_event("user.login", TYPED)
        client.track_event("plain")
        try:
            raise ValueError("bad input")
        except ValueError as exc:
            client.track_error(exc, {"request_id": 17})
        client.track_metric("queue.depth", 7, MetricType.GAUGE, {"queue": "a"})
        client.track_metric("ratio", 0.25)
        client.track_metric("requests", 3, "counter", {"route": "/"})
        client.track_metric("latency_ms", 12.5, MetricType.HISTOGRAM)
        for severity in LogSeverity:
            client.track_log(f"{severity.name} line", severity, {"level": severity.value})
        assert client.flush(10)
        end = time.time_ns()
        status = client.get_status()
    assert status["accepted"] == status["sent"] == 13
    assert status["dropped_total"] == 0
    check_request_envelopes(receiver, protocol, client)
    assert sorted(r.signal for r in receiver.requests) == ["logs", "metrics", "traces"]

    spans = [span for _, _, span in receiver.spans()]
    assert [s.name for s in spans] == ["user.login", "plain", "automagik.error"]
    trace_ids = {s.trace_id for s in spans}
    span_ids = {s.span_id for s in spans}
    assert len(trace_ids) == len(span_ids) == 3
    for span in spans:
        assert len(span.trace_id) == 16 and any(span.trace_id)
        assert len(span.span_id) == 8 and any(span.span_id)
        assert span.parent_span_id == b""
        assert span.kind == Span.SPAN_KIND_INTERNAL
        assert start <= span.start_time_unix_nano == span.end_time_unix_nano <= end
    event, plain, error = spans
    assert list(event.attributes) == key_values(TYPED)
    assert event.status == Status() and list(event.events) == []
    assert list(plain.attributes) == []

    assert error.status == Status(code=Status.STATUS_CODE_ERROR, message="bad input")
    assert attribute_dict(error.attributes) == {
        "error_type": "ValueError",
        "error_message": "bad input",
        "request_id": 17,
    }
    (exception,) = error.events
    assert exception.name == "exception"
    assert exception.time_unix_nano == error.start_time_unix_nano
    details = attribute_dict(exception.attributes)
    assert set(details) == {"exception.type", "exception.message", "exception.stacktrace"}
    assert details["exception.type"] == "ValueError"
    assert details["exception.message"] == "bad input"
    assert 'raise ValueError("bad input")' in details["exception.stacktrace"]
    assert details["exception.stacktrace"].endswith("ValueError: bad input\n")

    metrics = {m.name: m for _, _, m in receiver.metrics()}
    assert list(metrics) == ["queue.depth", "ratio", "requests", "latency_ms"]
    for metric in metrics.values():
        (point,) = getattr(metric, metric.WhichOneof("data") or "").data_points
        assert start <= point.time_unix_nano <= end
    expected = Metric(name="queue.depth")
    expected.gauge.data_points.add(
        time_unix_nano=metrics["queue.depth"].gauge.data_points[0].time_unix_nano,
        as_int=7,
        attributes=key_values({"queue": "a"}),
    )
    assert metrics["queue.depth"] == expected
    ratio = metrics["ratio"].gauge.data_points[0]
    assert ratio.WhichOneof("value") == "as_double" and ratio.as_double == 0.25
    counter = metrics["requests"].sum
    assert counter.is_monotonic
    assert counter.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    (point,) = counter.data_points
    assert point.as_int == 3 and point.WhichOneof("value") == "as_int"
    assert point.start_time_unix_nano == point.time_unix_nano
    assert list(point.attributes) == key_values({"route": "/"})
    histogram = metrics["latency_ms"].histogram
    assert histogram.aggregation_temporality == (
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    )
    (point,) = histogram.data_points
    assert (point.count, point.sum, point.min, point.max) == (1, 12.5, 12.5, 12.5)
    assert list(point.explicit_bounds) == list(HISTOGRAM_BOUNDS)
    assert list(point.bucket_counts) == [0, 0, 0, 1] + [0] * (len(HISTOGRAM_BOUNDS) - 3)  # (10, 25]
    assert point.start_time_unix_nano == point.time_unix_nano

    records = [record for _, _, record in receiver.log_records()]
    assert len(records) == len(LogSeverity)
    for record, severity in zip(records, LogSeverity, strict=True):
        assert record == LogRecord(
            time_unix_nano=record.time_unix_nano,
            observed_time_unix_nano=record.time_unix_nano,
            severity_number=SeverityNumber.ValueType(severity.value),
            severity_text=severity.name,
            body=record.body,
            attributes=key_values({"level": severity.value}),
        )
        assert record.body.string_value == f"{severity.name} line"
        assert start <= record.time_unix_nano <= end
        assert record.trace_id == b"" and record.span_id == b""


@pytest.mark.parametrize("encode_in", ["writer", "caller"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_batches_respect_max_batch_bytes_and_arrive_exactly_once(
    receiver: OtlpReceiver, protocol: str, encode_in: str
) -> None:
    cap = 64 * 1024
    count = 4000
    with client_for(
        receiver, protocol, max_batch_bytes=cap, ring_size=1 << 22, otlp_encode_in=encode_in
    ) as client:
        for i in range(count):
            client.track_event("bulk", {"i": i, "payload": "x" * 100})
        assert client.flush(30)
    check_request_envelopes(receiver, protocol, client)
    assert len(receiver.requests) >= 8
    envelope = 2048  # resource and scope
    assert all(r.raw_body_len <= cap + envelope for r in receiver.requests)
    # and not much smaller: on average at least half the cap (the last one is partial)
    sent = sum(r.raw_body_len for r in receiver.requests)
    assert len(receiver.requests) <= sent / (cap / 2) + 1
    seen = sorted(attribute_dict(s.attributes)["i"] for _, _, s in receiver.spans())
    assert seen == list(range(count))


# --- compression, headers, environment -------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gzip_and_vendor_headers_when_asked(receiver: OtlpReceiver, protocol: str) -> None:
    client = client_for(
        receiver,
        protocol,
        compression="gzip",
        compression_threshold=0,
        otlp_headers={"x-api-key": "s3cret-key", "x-team": "core"},
    )
    with client:
        client.track_event("e")
        client.track_metric("m", 1)
        client.track_log("l")
        assert client.flush(10)
        shown = repr(client.get_status()) + repr(client.config)
    assert len(receiver.requests) == 3
    for request in receiver.requests:
        assert request.content_encoding == "gzip"
        assert request.headers["x-api-key"] == "s3cret-key"
        assert request.headers["x-team"] == "core"
    assert "s3cret-key" not in shown


def test_standard_otel_variables_configure_the_destination(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=a%20b")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-logs=1")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_COMPRESSION_THRESHOLD", "0")  # small bodies too
    with AutomagikTelemetry(project_name="tests", version="1.0.0", backend="otlp") as client:
        assert client.enabled  # a destination was configured
        client.track_event("e")
        client.track_log("l")
        assert client.flush(10)
    by_signal = {r.signal: r for r in receiver.requests}
    assert set(by_signal) == {"traces", "logs"}
    for request in by_signal.values():
        assert request.content_type == "application/x-protobuf"
        assert request.content_encoding == "gzip"
    assert by_signal["traces"].headers["x-team"] == "a b"
    assert "x-team" not in by_signal["logs"].headers
    assert by_signal["logs"].headers["x-logs"] == "1"


# --- consent --------------------------------------------------------------------------------


def test_without_a_destination_or_opt_in_nothing_starts() -> None:
    before = shm_segments()
    client = AutomagikTelemetry(project_name="tests", version="1.0.0", backend="otlp")
    client.track_event("e", {"a": 1})
    client.track_metric("m", 1)
    client.track_log("l")
    client.track_error(ValueError("x"))
    status = client.get_status()
    client.shutdown()
    assert not client.enabled
    assert "needs an opt-in" in status["disabled_reason"]
    assert status["writer_alive"] is False
    assert status["accepted"] == 0 and status["dropped_total"] == 0
    assert shm_segments() == before


@pytest.mark.parametrize("opt_out", ["code", "env", "do_not_track", "file"])
def test_opt_outs_win_over_a_configured_destination(
    receiver: OtlpReceiver,
    opt_out: str,
    monkeypatch: pytest.MonkeyPatch,
    isolated_environment: Path,
) -> None:
    options: dict[str, Any] = {}
    if opt_out == "code":
        options["enabled"] = False
    elif opt_out == "env":
        monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENABLED", "false")
    elif opt_out == "do_not_track":
        monkeypatch.setenv("DO_NOT_TRACK", "1")
    else:
        (isolated_environment / ".automagik-no-telemetry").touch()
    with client_for(receiver, "http/json", **options) as client:
        client.track_event("e")
        assert client.flush(1)
        status = client.get_status()
    assert not status["enabled"]
    assert status["disabled_reason"]
    assert status["writer_alive"] is False
    assert receiver.requests == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_signal_left_on_the_vendor_endpoint_is_not_sent(
    receiver: OtlpReceiver, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="automagik_telemetry"):
        client = AutomagikTelemetry(
            project_name="tests",
            version="1.0.0",
            backend="otlp",
            otlp_protocol=protocol,
            metrics_endpoint=receiver.endpoint("metrics"),  # only metrics configured
        )
        with client:
            client.track_event("e")
            client.track_log("l")
            client.track_metric("m", 1)
            assert client.flush(10)
            status = client.get_status()
    assert status["enabled"]
    assert status["accepted"] == 1
    assert status["dropped"] == {"not_sent": 2}
    assert [r.signal for r in receiver.requests] == ["metrics"]
    assert any("traces and logs are not sent" in r.getMessage() for r in caplog.records)


# --- answers: retries, permanent errors, partial success ------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("retry_after", ["seconds", "http-date"])
def test_429_then_503_then_200_delivers_the_batch_exactly_once(
    receiver: OtlpReceiver, protocol: str, retry_after: str
) -> None:
    value = "1" if retry_after == "seconds" else formatdate(time.time() + 2, usegmt=True)
    receiver.script(
        "traces", [Response(status=429, headers={"Retry-After": value}), Response(status=503)]
    )
    with client_for(receiver, protocol) as client:
        for i in range(20):
            client.track_event("retried", {"i": i})
        began = time.monotonic()
        assert client.flush(20)
        waited = time.monotonic() - began
        status = client.get_status()
    assert [r.response_status for r in receiver.rejected_requests] == [429, 503]
    assert len(receiver.requests) == 1
    seen = sorted(attribute_dict(s.attributes)["i"] for _, _, s in receiver.spans())
    assert seen == list(range(20))  # every span once: nothing lost, nothing twice
    assert waited >= 0.9  # Retry-After was honoured
    assert status["retried"] == 2 and status["failed"] == 2
    assert status["sink_state"] == "healthy"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connection_errors_are_retried_until_the_receiver_is_up(protocol: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    with AutomagikTelemetry(
        project_name="tests",
        version="1.0.0",
        backend="otlp",
        endpoint=endpoint,
        otlp_protocol=protocol,
        flush_interval=0.05,
        retry_backoff_base=0.05,
    ) as client:
        for i in range(10):
            client.track_event("early", {"i": i})
        assert not client.flush(0.5)
        assert "connection refused" in (client.get_status()["last_error"] or "")
        with OtlpReceiver(port=port) as receiver:
            assert client.flush(20)
            assert len(receiver.spans()) == 10


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_permanent_401_is_logged_once_and_the_rows_wait_for_the_fix(
    receiver: OtlpReceiver, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script("traces", [Response(status=401)] * 1000)
    client = client_for(receiver, protocol)
    with caplog.at_level(logging.INFO, logger="automagik_telemetry"), client:
        for i in range(5):
            client.track_event("refused", {"i": i})
        assert not client.flush(1.5)
        status = client.get_status()
        assert status["sink_state"] == "permanent_error"
        assert "HTTP 401" in status["last_error"]
        assert "scripted 401 answer" in status["last_error"]  # the receiver's own message
        assert "otlp_headers" in status["last_error"]  # the fix
        assert len(receiver.rejected_requests) >= 2  # tried again, after a pause
        receiver.script("traces", [])  # the cause is fixed: the rows were kept
        assert client.flush(40)
        assert client.get_status()["sink_state"] == "healthy"
    assert sorted(attribute_dict(s.attributes)["i"] for _, _, s in receiver.spans()) == [
        0,
        1,
        2,
        3,
        4,
    ]
    refusals = [r for r in caplog.records if "HTTP 401" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    assert refusals[0].levelno == logging.ERROR


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_request_refused_with_400_is_set_aside_and_the_next_ones_arrive(
    receiver: OtlpReceiver, protocol: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script("traces", [Response(status=400)])  # the first traces request only
    spool = tmp_path / "spool"
    options = {"spool_dir": str(spool)}
    with caplog.at_level(logging.INFO, logger="automagik_telemetry"):
        client = client_for(receiver, protocol, **options)
        for i in range(5):
            client.track_event("refused", {"i": i})
        assert client.flush(10) is False  # the receiver refused those rows
        for i in range(5, 8):
            client.track_event("after", {"i": i})
        assert client.flush(10) is True  # nothing waited behind the refused request
        status = client.get_status()
        client.shutdown()
    assert [attribute_dict(s.attributes)["i"] for _, _, s in receiver.spans()] == [5, 6, 7]
    assert len(receiver.rejected_requests) == 1  # refused once, not sent again
    assert status["set_aside"] == 5
    assert status["dropped_total"] == 0
    assert status["sink_state"] == "healthy"
    refusals = [r for r in caplog.records if "HTTP 400" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    assert "scripted 400 answer" in refusals[0].getMessage()
    assert "set aside" in refusals[0].getMessage()
    files = sorted(spool.glob("*/rejected/*.batch"))
    assert len(files) == 1
    # moved back into the spool directory, the batch is sent by the next writer
    files[0].rename(files[0].parent.parent / files[0].name)
    with client_for(receiver, protocol, **options) as again:
        deadline = time.monotonic() + 20
        while len(receiver.spans()) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert again.flush(10)
    arrived = sorted(attribute_dict(s.attributes)["i"] for _, _, s in receiver.spans())
    assert arrived == list(range(8))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_request_too_large_is_sent_again_in_halves_exactly_once(protocol: str) -> None:
    with OtlpReceiver(max_body_bytes=6000) as receiver:
        client = client_for(receiver, protocol)
        with client:
            for i in range(64):  # some 8 KiB of spans in one request: too large
                client.track_event("halved", {"i": i, "pad": "x" * 40})
            assert client.flush(20) is True
            status = client.get_status()
        sizes = [
            sum(len(ss.spans) for rs in r.message.resource_spans for ss in rs.scope_spans)
            for r in receiver.requests
            if r.signal == "traces"
        ]
        arrived = sorted(attribute_dict(s.attributes)["i"] for _, _, s in receiver.spans())
        errors = receiver.errors
    assert arrived == list(range(64))  # every span, once
    assert len(sizes) >= 2 and sum(sizes) == 64, sizes
    assert errors and all("413" in e for e in errors), errors
    assert status["sent"] == 64 and status["set_aside"] == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_partial_success_is_logged_with_the_rejected_count(
    receiver: OtlpReceiver, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script("traces", [Response(partial_success=(2, "2 spans had no name"))])
    client = client_for(receiver, protocol)
    with caplog.at_level(logging.WARNING, logger="automagik_telemetry"), client:
        for i in range(5):
            client.track_event("partly", {"i": i})
        # delivered, but the receiver did not keep all of it: flush() says so, once
        assert client.flush(10) is False
        status = client.get_status()
        assert client.flush(10) is True
    assert len(receiver.spans()) == 5
    assert status["sent"] == 5
    assert status["dropped"] == {"rejected_by_destination": 2}  # counted, not only logged
    assert "rejected 2 spans" in status["last_error"]
    assert "2 spans had no name" in status["last_error"]
    notices = [r for r in caplog.records if "partial success" in r.getMessage()]
    assert len(notices) == 1
    assert notices[0].levelno == logging.WARNING


# --- compact rows: requests sized after the rows grow, and batches of older versions ----------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rows_that_grow_more_than_the_last_batch_are_sent_in_halves_within_the_limit(
    receiver: OtlpReceiver, protocol: str
) -> None:
    """The writer sizes batches by how much the last batch's rows grew into their wire form.
    Rows of many small ints grow ~5x, more than the strings before them: a batch that would
    exceed max_batch_bytes is prepared again in halves, and every request stays within it."""
    cap = 64 * 1024
    with client_for(receiver, protocol, max_batch_bytes=cap, ring_size=1 << 22) as client:
        for i in range(300):
            client.track_event("wordy", {"i": i, "text": "x" * 400})
        assert client.flush(30)
        for i in range(3000):
            client.track_event("numbers", {"i": i, **{f"n{j}": j for j in range(24)}})
        assert client.flush(30)
        status = client.get_status()
    check_request_envelopes(receiver, protocol, client)
    assert all(r.raw_body_len <= cap for r in receiver.requests)
    names = [s.name for _, _, s in receiver.spans()]
    assert names.count("wordy") == 300 and names.count("numbers") == 3000
    numbers = sorted(attribute_dict(s.attributes)["i"] for _, _, s in receiver.spans())
    assert numbers == sorted([*range(300), *range(3000)])
    assert status["sent"] == 3300 and status["set_aside"] == 0 and status["dropped_total"] == 0


def spool_of(receiver: OtlpReceiver, protocol: str, spool: Path) -> Spool:
    config = client_for(receiver, protocol, spool_dir=str(spool), enabled=False).config
    return Spool(spool_directory(config), 1 << 30, "drop_newest")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wire_rows_spooled_by_an_older_version_are_delivered(
    receiver: OtlpReceiver, protocol: str, tmp_path: Path
) -> None:
    """Versions before compact rows spooled OTLP wire rows (JSON lines, protobuf fields): a
    writer of this version sends them as they are."""
    wire = OtlpProtobufRows() if protocol == "http/protobuf" else OtlpJsonRows()
    body = b"".join(bytes(wire.span(time.time_ns(), "old", {"i": i}, None)) for i in range(7))
    spool = spool_of(receiver, protocol, tmp_path / "spool")
    assert spool.put(0, 7, "old-token", SPOOL_ENCODING, bytes(lz4.frame.compress(body)))
    with client_for(receiver, protocol, spool_dir=str(tmp_path / "spool")) as client:
        client.track_event("new", {"i": 7})
        deadline = time.monotonic() + 20
        while len(receiver.spans()) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.flush(10)
    check_request_envelopes(receiver, protocol, client)
    arrived = sorted((s.name, attribute_dict(s.attributes)["i"]) for _, _, s in receiver.spans())
    assert arrived == [("new", 7), *(("old", i) for i in range(7))]
    assert list((tmp_path / "spool").glob("*/*.batch")) == []


def test_a_spooled_batch_that_cannot_be_read_is_set_aside(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """A batch of compact rows cut short (it cannot come from a writer, but a disk can do
    anything a CRC does not catch) is kept in rejected/, and what follows is delivered."""
    rows = CompactRows()
    body = bytes(rows.span(time.time_ns(), "cut", {"i": 1}, None))[:-3]
    spool = spool_of(receiver, "http/json", tmp_path / "spool")
    assert spool.put(0, 1, "cut-token", SPOOL_ENCODING, bytes(lz4.frame.compress(body)))
    with client_for(receiver, "http/json", spool_dir=str(tmp_path / "spool")) as client:
        client.track_event("fine", {"i": 2})
        deadline = time.monotonic() + 20
        while client.get_status()["set_aside"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.flush(10) is False  # rows were set aside since the last flush
        assert client.flush(10) is True
        status = client.get_status()
    assert [s.name for _, _, s in receiver.spans()] == ["fine"]
    assert status["set_aside"] == 1
    assert len(list((tmp_path / "spool").glob("*/rejected/*.batch"))) == 1
