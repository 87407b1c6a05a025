"""OTLP rows and requests, checked with the official opentelemetry-proto messages.

Protobuf rows are parsed with ``ParseFromString`` and compared, field by field, with messages
built with the official classes; JSON rows go through the test receiver's decoding and
validation (hex ids, lowerCamelCase, integer enums, no unknown fields). The byte layout itself
is not pinned: only what a receiver reads from it.
"""

from __future__ import annotations

import gzip
import math
import time
from email.utils import formatdate
from enum import IntEnum
from typing import Any

import msgspec
import pytest
import urllib3
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ScopeLogs, SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Metric,
    ScopeMetrics,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span, Status

from automagik_telemetry.__about__ import __version__
from automagik_telemetry.resource import Resource
from automagik_telemetry.rows.clickhouse import HISTOGRAM_BOUNDS
from automagik_telemetry.rows.otlp_common import IDS_PER_REFILL, resource_attributes
from automagik_telemetry.rows.otlp_json import OtlpJsonRows, json_resource
from automagik_telemetry.rows.otlp_protobuf import OtlpProtobufRows, protobuf_resource
from automagik_telemetry.schema import LogSeverity, MetricType
from automagik_telemetry.settings import OtlpSettings, WriterSettings
from automagik_telemetry.sinks.otlp.answers import classify, receiver_message
from automagik_telemetry.sinks.otlp.framing import frame_protobuf
from automagik_telemetry.sinks.otlp.sink import OtlpSink, request_headers
from automagik_telemetry.transport import HttpClient
from tests.support.otlp import assert_no_unknown_fields
from tests.support.otlp import key_values as kvs
from tests.support.servers import otlp_receiver

T = 1_795_000_000_123_456_789
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRACES, METRICS, LOGS = 0, 1, 2


class Color(IntEnum):
    RED = 3


RESOURCE = Resource(
    service_name="svc",
    service_version="2.0",
    organization="acme",
    environment="test",
    hostname="host-1",
    os_type="linux",
    os_version="6.1",
    architecture="x86_64",
    runtime_name="cpython",
    runtime_version="3.11.7",
    process_pid=4242,
    user_id="user-1",
    session_id="session-1",
)

TYPED: dict[Any, Any] = {
    "s": "text é",
    "empty": "",
    "i": 42,
    "zero": 0,
    "neg": -7,
    "i64max": (1 << 63) - 1,
    "i64min": -(1 << 63),
    "huge": 1 << 64,
    "f": 2.5,
    "b": True,
    "f_b": False,
    "none": None,
    "bytes": b"\x00\xff",
    "list": [1, "two", 3.0, [False]],
    "tuple": ("a",),
    "dict": {"k": {"deep": 1}, "n": None},
    "enum": Color.RED,
    7: "int key",
}


def parse_span(row: bytes | bytearray) -> Span:
    holder = ScopeSpans()
    holder.ParseFromString(bytes(row))
    assert_no_unknown_fields(holder)
    assert len(holder.spans) == 1
    item: Span = holder.spans[0]
    return item


def parse_metric(row: bytes | bytearray) -> Metric:
    holder = ScopeMetrics()
    holder.ParseFromString(bytes(row))
    assert_no_unknown_fields(holder)
    assert len(holder.metrics) == 1
    item: Metric = holder.metrics[0]
    return item


def parse_log(row: bytes | bytearray) -> LogRecord:
    holder = ScopeLogs()
    holder.ParseFromString(bytes(row))
    assert_no_unknown_fields(holder)
    assert len(holder.log_records) == 1
    item: LogRecord = holder.log_records[0]
    return item


def settings(protocol: str, compression: str = "none", threshold: int = 1024) -> WriterSettings:
    protobuf = protocol == "http/protobuf"
    return WriterSettings(
        segment="unused",
        producer_pid=1,
        sink=OtlpSettings(
            endpoints=("http://r/v1/traces", "http://r/v1/metrics", "http://r/v1/logs"),
            protocol=protocol,
            headers={"x-api-key": "s3cret"},
            resource=protobuf_resource(RESOURCE) if protobuf else json_resource(RESOURCE),
        ),
        batch_size=100,
        flush_interval=1.0,
        max_batch_bytes=1 << 20,
        timeout=5.0,
        max_retries=1,
        retry_backoff_base=0.1,
        compression=compression,
        compression_threshold=threshold,
        record_format="protobuf" if protobuf else "lines",
    )


def make_sink(protocol: str, compression: str = "none", threshold: int = 1024) -> OtlpSink:
    config = settings(protocol, compression, threshold)
    return OtlpSink.from_settings(config, HttpClient(config.timeout))


# --- protobuf rows --------------------------------------------------------------------------


def test_protobuf_event_span_has_every_field() -> None:
    span = parse_span(OtlpProtobufRows().span(T, "user.login", TYPED, None))
    assert len(span.trace_id) == 16 and any(span.trace_id)
    assert len(span.span_id) == 8 and any(span.span_id)
    expected = Span(
        trace_id=span.trace_id,
        span_id=span.span_id,
        name="user.login",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T,
        end_time_unix_nano=T,
        attributes=kvs(TYPED),
    )
    assert span == expected
    assert span.status.code == Status.STATUS_CODE_UNSET
    assert not span.parent_span_id


def test_protobuf_error_span_has_status_and_exception_event() -> None:
    attributes = {
        "error_type": "ValueError",
        "error_message": "bad value",
        "exception.type": "ValueError",
        "exception.message": "bad value",
        "exception.stacktrace": 'File "x.py", line 1\nValueError: bad value\n',
        "request_id": 17,
    }
    span = parse_span(OtlpProtobufRows().span(T, "automagik.error", attributes, "bad value"))
    expected = Span(
        trace_id=span.trace_id,
        span_id=span.span_id,
        name="automagik.error",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T,
        end_time_unix_nano=T,
        attributes=kvs(
            {"error_type": "ValueError", "error_message": "bad value", "request_id": 17}
        ),
        events=[
            Span.Event(
                time_unix_nano=T,
                name="exception",
                attributes=kvs({k: v for k, v in attributes.items() if k.startswith("exception.")}),
            )
        ],
        status=Status(code=Status.STATUS_CODE_ERROR, message="bad value"),
    )
    assert span == expected


def test_protobuf_non_finite_doubles_and_surrogates() -> None:
    span = parse_span(
        OtlpProtobufRows().span(T, "n", {"nan": math.nan, "inf": -math.inf, "s": "a\udcffb"}, None)
    )
    values = {kv.key: kv.value for kv in span.attributes}
    assert math.isnan(values["nan"].double_value)
    assert values["inf"].double_value == -math.inf
    assert values["s"].string_value == "a?b"


@pytest.mark.parametrize("value", [7, -3, 2.5, (1 << 63) - 1, 1 << 70, 0, 0.0])
def test_protobuf_gauge_and_counter_points(value: float) -> None:
    rows = OtlpProtobufRows()
    attributes = {"host": "a", "core": 1}
    is_int = isinstance(value, int) and -(1 << 63) <= value < 1 << 63
    point: dict[str, Any] = {"time_unix_nano": T, "attributes": kvs(attributes)}
    point["as_int" if is_int else "as_double"] = value if is_int else float(value)
    gauge = parse_metric(rows.metric(T, "queue.depth", value, MetricType.GAUGE, attributes))
    expected = Metric(name="queue.depth")
    expected.gauge.data_points.add(**point)
    assert gauge == expected
    assert gauge.gauge.data_points[0].WhichOneof("value") == ("as_int" if is_int else "as_double")

    counter = parse_metric(rows.metric(T, "requests", value, MetricType.COUNTER, attributes))
    expected = Metric(name="requests")
    expected.sum.data_points.add(start_time_unix_nano=T, **point)
    expected.sum.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    expected.sum.is_monotonic = True
    assert counter == expected


@pytest.mark.parametrize(
    ("value", "bucket"),
    [(-1.0, 0), (0.0, 0), (3, 1), (5.0, 1), (5.0001, 2), (10000.0, 14), (1e9, 15), (math.nan, 15)],
)
def test_protobuf_histogram_point(value: float, bucket: int) -> None:
    metric = parse_metric(
        OtlpProtobufRows().metric(T, "latency_ms", value, MetricType.HISTOGRAM, {"route": "/"})
    )
    assert metric.WhichOneof("data") == "histogram"
    histogram = metric.histogram
    assert histogram.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
    (point,) = histogram.data_points
    counts = [0] * (len(HISTOGRAM_BOUNDS) + 1)
    counts[bucket] = 1
    assert list(point.bucket_counts) == counts
    assert list(point.explicit_bounds) == list(HISTOGRAM_BOUNDS)
    assert point.count == 1
    assert point.start_time_unix_nano == point.time_unix_nano == T
    assert point.HasField("sum") and point.HasField("min") and point.HasField("max")
    for field in (point.sum, point.min, point.max):
        assert field == float(value) or (math.isnan(field) and math.isnan(value))
    assert list(point.attributes) == kvs({"route": "/"})


@pytest.mark.parametrize("severity", list(LogSeverity))
def test_protobuf_log_record(severity: LogSeverity) -> None:
    record = parse_log(OtlpProtobufRows().log(T, "disk full", severity, {"disk": "/dev/sda"}))
    expected = LogRecord(
        time_unix_nano=T,
        observed_time_unix_nano=T,
        severity_number=SeverityNumber.ValueType(severity.value),
        severity_text=severity.name,
        body=AnyValue(string_value="disk full"),
        attributes=kvs({"disk": "/dev/sda"}),
    )
    assert record == expected
    assert SeverityNumber.Name(record.severity_number).endswith(severity.name)


def test_protobuf_log_takes_valid_trace_ids_from_attributes() -> None:
    rows = OtlpProtobufRows()
    good = {"trace_id": "5B8EFFF798038103D269B633813FC60C", "span_id": "eee19b7ec3c1b174"}
    record = parse_log(rows.log(T, "m", LogSeverity.INFO, good))
    assert record.trace_id.hex() == good["trace_id"].lower()
    assert record.span_id.hex() == good["span_id"]
    for bad in ("0x8efff798038103d269b633813fc60c", "0" * 32, "abc", "g" * 32, 12):
        record = parse_log(rows.log(T, "m", LogSeverity.INFO, {"trace_id": bad}))
        assert record.trace_id == b""


def test_ids_are_unique_across_pool_refills() -> None:
    for rows in (OtlpProtobufRows(), OtlpJsonRows()):
        seen_traces: set[str] = set()
        seen_spans: set[str] = set()
        for _ in range(IDS_PER_REFILL + 100):
            if isinstance(rows, OtlpProtobufRows):
                span = parse_span(rows.span(T, "e", None, None))
                trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
            else:
                row = bytes(rows.span(T, "e", None, None))
                trace_id = row.split(b'"traceId":"')[1][:32].decode()
                span_id = row.split(b'"spanId":"')[1][:16].decode()
            assert len(trace_id) == 32 and len(span_id) == 16
            seen_traces.add(trace_id)
            seen_spans.add(span_id)
        assert len(seen_traces) == len(seen_spans) == IDS_PER_REFILL + 100


# --- requests built by OtlpSink ---------------------------------------------------------------


def resource_dict(resource: Any) -> dict[str, Any]:
    out = {}
    for kv in resource.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind)
    return out


EXPECTED_RESOURCE = {
    "service.name": "svc",
    "service.version": "2.0",
    "service.organization": "acme",
    "deployment.environment": "test",
    "telemetry.sdk.name": "automagik-telemetry",
    "telemetry.sdk.version": __version__,
    "telemetry.sdk.language": "python",
    "host.name": "host-1",
    "host.arch": "amd64",
    "os.type": "linux",
    "os.version": "6.1",
    "process.pid": 4242,
    "process.runtime.name": "cpython",
    "process.runtime.version": "3.11.7",
    "user.id": "user-1",
    "session.id": "session-1",
}


def batch(rows: OtlpJsonRows | OtlpProtobufRows, kind: int, count: int) -> bytes:
    """Rows as the writer hands them to ``prepare``: back to back, as in the ring."""
    out = bytearray()
    for i in range(count):
        if kind == TRACES:
            row = rows.span(T + i, f"e{i}", {"i": i, "s": "x" * (i % 7)}, None)
        elif kind == METRICS:
            row = rows.metric(T + i, f"m{i}", i, list(MetricType)[i % 3], {"i": i})
        else:
            row = rows.log(T + i, f"line {i}", list(LogSeverity)[i % 6], {"i": i})
        out += row
    return bytes(out)


REQUESTS = (ExportTraceServiceRequest, ExportMetricsServiceRequest, ExportLogsServiceRequest)


def decode(protocol: str, kind: int, wire: bytes) -> Any:
    message = REQUESTS[kind]()
    if protocol == "http/protobuf":
        message.ParseFromString(wire)
    else:  # the receiver's strict OTLP/JSON path
        otlp_receiver._decode_json(wire, message)
    otlp_receiver._validate(otlp_receiver.SIGNALS[kind], message)
    assert_no_unknown_fields(message)
    return message


def items(kind: int, message: Any) -> tuple[Any, Any, list[Any]]:
    """(resource, scope, items) of a request holding one resource and one scope."""
    outer = getattr(message, ("resource_spans", "resource_metrics", "resource_logs")[kind])
    assert len(outer) == 1
    inner = getattr(outer[0], ("scope_spans", "scope_metrics", "scope_logs")[kind])
    assert len(inner) == 1
    listed = getattr(inner[0], ("spans", "metrics", "log_records")[kind])
    return outer[0].resource, inner[0].scope, list(listed)


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
@pytest.mark.parametrize("kind", [TRACES, METRICS, LOGS])
@pytest.mark.parametrize("count", [1, 3, 500])
def test_prepare_builds_a_request_with_the_resource_once(
    protocol: str, kind: int, count: int
) -> None:
    rows = OtlpProtobufRows() if protocol == "http/protobuf" else OtlpJsonRows()
    sink = make_sink(protocol)
    try:
        prepared = sink.prepare(kind, batch(rows, kind, count), "token")
    finally:
        sink.close()
    assert prepared.url == settings(protocol).sink.endpoints[kind]  # type: ignore[union-attr]
    assert prepared.headers["Content-Type"] == (
        "application/x-protobuf" if protocol == "http/protobuf" else "application/json"
    )
    assert "Content-Encoding" not in prepared.headers
    assert prepared.headers["x-api-key"] == "s3cret"
    resource, scope, listed = items(kind, decode(protocol, kind, bytes(prepared.wire)))
    assert resource_dict(resource) == EXPECTED_RESOURCE
    assert (scope.name, scope.version) == ("automagik-telemetry", __version__)
    assert len(listed) == count
    names = [getattr(item, "name", None) or item.body.string_value for item in listed]
    prefix = ("e", "m", "line ")[kind]
    assert names == [f"{prefix}{i}" for i in range(count)]
    for item in listed:  # no resource attribute leaked into the items
        keys = {kv.key for kv in getattr(item, "attributes", [])}
        assert not keys & set(EXPECTED_RESOURCE)


def test_json_and_protobuf_rows_decode_to_the_same_items() -> None:
    json_sink, pb_sink = make_sink("http/json"), make_sink("http/protobuf")
    try:
        for kind in (TRACES, METRICS, LOGS):
            from_json = items(
                kind,
                decode("http/json", kind, json_sink.frame(kind, batch(OtlpJsonRows(), kind, 6))),
            )[2]
            from_pb = items(
                kind,
                decode(
                    "http/protobuf", kind, pb_sink.frame(kind, batch(OtlpProtobufRows(), kind, 6))
                ),
            )[2]
            for a, b in zip(from_json, from_pb, strict=True):
                if kind == TRACES:  # ids are random
                    a.trace_id, a.span_id = b.trace_id, b.span_id
                assert a == b
    finally:
        json_sink.close()
        pb_sink.close()


def test_json_rows_keep_every_attribute_type() -> None:
    sink = make_sink("http/json")
    rows = OtlpJsonRows()
    body = bytes(rows.span(T, "typed", {**TYPED, "nan": math.nan, "inf": math.inf}, None))
    body += bytes(rows.span(T, "err", {"exception.type": "E", "keep": 1}, "boom"))
    body += bytes(rows.span(T, "sur\udcff", {"k": "v\udcff"}, None))
    try:
        (span, error, scrubbed) = items(
            TRACES, decode("http/json", TRACES, sink.frame(TRACES, body))
        )[2]
    finally:
        sink.close()
    values = {kv.key: kv.value for kv in span.attributes}
    assert list(span.attributes)[: len(TYPED)] == kvs(TYPED)
    assert math.isnan(values["nan"].double_value) and values["inf"].double_value == math.inf
    assert span.kind == Span.SPAN_KIND_INTERNAL
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (T, T)
    assert error.status == Status(code=Status.STATUS_CODE_ERROR, message="boom")
    assert list(error.attributes) == kvs({"keep": 1})
    assert [e.name for e in error.events] == ["exception"]
    assert list(error.events[0].attributes) == kvs({"exception.type": "E"})
    assert scrubbed.name == "sur?" and scrubbed.attributes[0].value.string_value == "v?"


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_gzip_request_above_the_threshold(protocol: str) -> None:
    rows = OtlpProtobufRows() if protocol == "http/protobuf" else OtlpJsonRows()
    sink = make_sink(protocol, compression="gzip", threshold=4096)
    try:
        small = sink.prepare(TRACES, batch(rows, TRACES, 1), None)
        large = sink.prepare(TRACES, batch(rows, TRACES, 200), None)
    finally:
        sink.close()
    assert "Content-Encoding" not in small.headers
    assert large.headers["Content-Encoding"] == "gzip"
    assert len(items(TRACES, decode(protocol, TRACES, gzip.decompress(large.wire)))[2]) == 200


def test_protobuf_frame_with_multi_byte_lengths() -> None:
    body = bytearray()
    rows = OtlpProtobufRows()
    big = {"blob": "x" * 70_000}  # 3-byte varint lengths at every level
    for i in range(3):
        body += rows.span(T, f"big{i}", big, None)
    request = ExportTraceServiceRequest()
    request.ParseFromString(frame_protobuf(b"\x0a\x00", b"\x0a\x02\x0a\x00", bytes(body)))
    spans = request.resource_spans[0].scope_spans[0].spans
    assert [s.name for s in spans] == ["big0", "big1", "big2"]
    assert spans[2].attributes[0].value.string_value == "x" * 70_000


def test_resource_attributes_are_the_documented_set() -> None:
    assert resource_attributes(RESOURCE) == EXPECTED_RESOURCE
    no_org = Resource(**{**RESOURCE.__dict__, "organization": ""})
    assert "service.organization" not in resource_attributes(no_org)


def test_request_headers_keep_ours_and_the_users() -> None:
    headers = request_headers(
        "application/json", {"content-type": "text/plain", "Authorization": "Bearer x"}, "gzip"
    )
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Authorization"] == "Bearer x"
    assert headers["User-Agent"].startswith("automagik-telemetry/")
    assert "content-type" not in headers
    assert request_headers("a/b", {"user-agent": "mine"}, None)["user-agent"] == "mine"


# --- answers --------------------------------------------------------------------------------


def answer(
    status: int, body: bytes = b"", content_type: str = "", headers: dict[str, str] | None = None
) -> urllib3.HTTPResponse:
    all_headers = dict(headers or {})
    if content_type:
        all_headers["Content-Type"] = content_type
    return urllib3.HTTPResponse(body=body, status=status, headers=all_headers, preload_content=True)


URL = "https://collector.example:4318/v1/traces?api_key=s3cret"


def test_success_and_partial_success_in_both_encodings() -> None:
    assert classify(answer(200), kind=TRACES, url=URL).ok
    empty = ExportTraceServiceResponse().SerializeToString()
    plain = classify(answer(200, empty, "application/x-protobuf"), kind=TRACES, url=URL)
    assert plain.ok and not plain.message
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 3
    response.partial_success.error_message = "3 spans too old"
    partial = classify(
        answer(200, response.SerializeToString(), "application/x-protobuf"), kind=TRACES, url=URL
    )
    assert partial.ok and partial.rejected == 3
    assert "rejected 3 spans" in partial.message and "3 spans too old" in partial.message
    assert "s3cret" not in partial.message
    logs = classify(
        answer(
            200,
            b'{"partialSuccess":{"rejectedLogRecords":"5","errorMessage":"bad body"}}',
            "application/json",
        ),
        kind=LOGS,
        url=URL,
    )
    assert logs.ok and logs.rejected == 5 and "5 log records" in logs.message
    warning_only = ExportLogsServiceResponse()
    warning_only.partial_success.error_message = "deprecated field"
    warned = classify(
        answer(200, warning_only.SerializeToString(), "application/x-protobuf"), kind=LOGS, url=URL
    )
    assert warned.ok and warned.rejected == 0 and "deprecated field" in warned.message


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_retryable_statuses_honour_retry_after_in_both_forms(status: int) -> None:
    seconds = classify(answer(status, headers={"Retry-After": "7"}), kind=METRICS, url=URL)
    assert not seconds.ok and seconds.retryable and seconds.retry_after == 7.0
    date = formatdate(time.time() + 30, usegmt=True)
    dated = classify(answer(status, headers={"Retry-After": date}), kind=METRICS, url=URL)
    assert dated.retry_after is not None and 25 <= dated.retry_after <= 31
    assert classify(answer(status), kind=METRICS, url=URL).retry_after is None


def google_rpc_status(code: int, message: str) -> bytes:
    text = message.encode()
    return b"\x08" + bytes([code]) + b"\x12" + bytes([len(text)]) + text


@pytest.mark.parametrize(
    ("status", "body", "content_type", "said", "fix"),
    [
        (400, google_rpc_status(3, "name too long"), PROTOBUF, "name too long", "report it"),
        (401, b'{"code":16,"message":"bad api key"}', JSON, "bad api key", "otlp_headers"),
        (403, b"forbidden for tenant", "text/plain", "forbidden for tenant", "otlp_headers"),
        (404, b"<html>\n<h1>Not Found</h1></html>", "text/html", "Not Found", "endpoint"),
        (413, b"", "", "Payload Too Large", "max_batch_bytes"),
        (415, b"", "", "", "otlp_protocol"),
        (500, b"boom", "text/plain", "boom", "receiver's logs"),
    ],
)  # fmt: skip
def test_permanent_answers_carry_the_receivers_message_and_the_fix(
    status: int, body: bytes, content_type: str, said: str, fix: str
) -> None:
    response = answer(status, body, content_type, {"Retry-After": "1"})
    if status == 413:
        response.reason = "Payload Too Large"
    outcome = classify(response, kind=TRACES, url=URL, request_bytes=123)
    assert not outcome.ok and not outcome.retryable
    assert f"HTTP {status}" in outcome.message
    assert said in outcome.message
    assert fix in outcome.message
    assert "s3cret" not in outcome.message
    assert outcome.key == f"otlp:{status}:traces"


def test_receiver_message_of_unreadable_protobuf() -> None:
    text = receiver_message(answer(400, b"\x12\xff", "application/x-protobuf"))
    assert "unreadable" in text


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_a_signal_without_destination_is_acknowledged_unsent_and_counted(protocol: str) -> None:
    rows = OtlpProtobufRows() if protocol == "http/protobuf" else OtlpJsonRows()
    config = settings(protocol)
    otlp = config.sink
    assert isinstance(otlp, OtlpSettings)
    config = msgspec.structs.replace(
        config, sink=msgspec.structs.replace(otlp, endpoints=("", *otlp.endpoints[1:]))
    )
    sink = OtlpSink.from_settings(config, HttpClient(config.timeout))
    try:
        prepared = sink.prepare(TRACES, batch(rows, TRACES, 7), None)
        outcome = sink.send(prepared)  # no request: there is nowhere it may go
    finally:
        sink.close()
    assert prepared.wire == b""
    assert outcome.ok and outcome.rejected == 7
    assert "traces are not sent" in outcome.message and "opt-in" in outcome.message


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_a_batch_of_another_origin_is_sent_with_its_own_resource(protocol: str) -> None:
    """A batch replayed from a spool file another process wrote (``Sink.origin`` in its header)
    goes out with that process's resource; an origin of the other protocol or a damaged one
    falls back to this sink's own (the rows are sent either way)."""
    import dataclasses

    from automagik_telemetry.sinks.otlp.sink import origin_of

    protobuf = protocol == "http/protobuf"
    other = dataclasses.replace(RESOURCE, service_version="0.9-old", session_id="old-session")
    encoded = protobuf_resource(other) if protobuf else json_resource(other)
    foreign = origin_of(encoded, protobuf=protobuf)
    wrong = origin_of(
        json_resource(other) if protobuf else protobuf_resource(other), protobuf=not protobuf
    )
    rows = OtlpProtobufRows() if protobuf else OtlpJsonRows()
    sink = make_sink(protocol)
    try:
        assert sink.origin(TRACES) != foreign
        for origin, version in ((foreign, "0.9-old"), ("", "2.0"), (wrong, "2.0"),
                                ("json:{broken", "2.0"), (sink.origin(TRACES), "2.0")):  # fmt: skip
            prepared = sink.prepare(TRACES, batch(rows, TRACES, 3), None, origin)
            resource, _, listed = items(TRACES, decode(protocol, TRACES, bytes(prepared.wire)))
            assert resource_dict(resource)["service.version"] == version and len(listed) == 3
    finally:
        sink.close()
