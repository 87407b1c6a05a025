"""The loopback OTLP/HTTP receiver, driven by hand-built requests over real HTTP.

Requests are built with the official ``opentelemetry-proto`` messages (protobuf) or written by
hand following the OTLP/HTTP JSON spec (hex ids, lowerCamelCase keys, integer enums, 64-bit
integers as strings), posted with urllib3, and compared with what the receiver decoded.
"""

from __future__ import annotations

import base64
import gzip
import json
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, SeverityNumber
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.support.servers.otlp_receiver import OtlpReceiver, Response

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
PARENT_ID = "eee19b7ec3c1b173"
LINK_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
LINK_SPAN_ID = "b7ad6b7169203331"
BIG_INT = 9_007_199_254_740_993  # 2**53 + 1: survives only as a JSON string


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


@pytest.fixture
def pool(receiver: OtlpReceiver) -> Iterator[urllib3.HTTPConnectionPool]:
    with urllib3.HTTPConnectionPool(
        "127.0.0.1", receiver.port, maxsize=1, retries=False, timeout=10.0
    ) as p:
        yield p


def compress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "raw-deflate":
        deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return deflater.compress(body) + deflater.flush()
    return body


def post(
    pool: urllib3.HTTPConnectionPool,
    signal_name: str,
    body: bytes,
    content_type: str = PROTOBUF,
    encoding: str | None = None,
    path: str | None = None,
    **extra_headers: str,
) -> urllib3.BaseHTTPResponse:
    headers = {"Content-Type": content_type, **extra_headers}
    if encoding is not None:
        headers["Content-Encoding"] = "deflate" if encoding == "raw-deflate" else encoding
    return pool.request(
        "POST", path or f"/v1/{signal_name}", body=compress(body, encoding), headers=headers
    )


def post_json(
    pool: urllib3.HTTPConnectionPool,
    signal_name: str,
    document: Any,
    encoding: str | None = None,
) -> urllib3.BaseHTTPResponse:
    return post(pool, signal_name, json.dumps(document).encode(), JSON, encoding)


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def status_of(response: urllib3.BaseHTTPResponse) -> tuple[int, str]:
    """The (code, message) of the google.rpc.Status carried by an error answer."""
    if response.headers["Content-Type"] == JSON:
        document = json.loads(response.data)
        return document["code"], document["message"]
    # google.rpc.Status: field 1 varint code, field 2 length-delimited message (short here).
    data = response.data
    assert data[0] == 0x08 and data[2] == 0x12
    return data[1], data[4 : 4 + data[3]].decode()


# --- hand-built protobuf requests -----------------------------------------------------------


def trace_request() -> ExportTraceServiceRequest:
    """One span using every field of Span, Event, Link and Status, and every AnyValue kind."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.schema_url = "https://opentelemetry.io/schemas/1.24.0"
    rs.resource.CopyFrom(
        Resource(
            attributes=[kv("service.name", string_value="checkout"), kv("host.cpus", int_value=8)],
            dropped_attributes_count=1,
        )
    )
    ss = rs.scope_spans.add()
    ss.schema_url = "https://opentelemetry.io/schemas/1.24.0"
    ss.scope.CopyFrom(
        InstrumentationScope(
            name="automagik", version="0.2.0", attributes=[kv("scope.attr", bool_value=True)]
        )
    )
    span = Span(
        trace_id=bytes.fromhex(TRACE_ID),
        span_id=bytes.fromhex(SPAN_ID),
        trace_state="vendor=1",
        parent_span_id=bytes.fromhex(PARENT_ID),
        flags=0x101,
        name="GET /cart",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_544_712_660_000_000_000,
        end_time_unix_nano=1_544_712_661_000_000_000,
        attributes=[
            kv("http.status_code", int_value=BIG_INT),
            kv("ok", bool_value=True),
            kv("ratio", double_value=0.25),
            kv(
                "tags",
                array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=-1)]),
            ),
            kv(
                "nested",
                kvlist_value=KeyValueList(values=[kv("inner", string_value="v")]),
            ),
            kv("raw", bytes_value=b"\x00\x01\x02"),
        ],
        dropped_attributes_count=2,
        events=[
            Span.Event(
                time_unix_nano=1_544_712_660_500_000_000,
                name="exception",
                attributes=[kv("exception.message", string_value="boom")],
                dropped_attributes_count=5,
            )
        ],
        dropped_events_count=3,
        links=[
            Span.Link(
                trace_id=bytes.fromhex(LINK_TRACE_ID),
                span_id=bytes.fromhex(LINK_SPAN_ID),
                trace_state="x=y",
                attributes=[kv("link.kind", string_value="follows")],
                dropped_attributes_count=6,
                flags=0x100,
            )
        ],
        dropped_links_count=4,
        status=Status(message="boom", code=Status.STATUS_CODE_ERROR),
    )
    ss.spans.append(span)
    return request


def trace_json() -> dict[str, Any]:
    """The same request as :func:`trace_request`, written by hand as OTLP/JSON."""
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "checkout"}},
                        {"key": "host.cpus", "value": {"intValue": "8"}},
                    ],
                    "droppedAttributesCount": 1,
                },
                "schemaUrl": "https://opentelemetry.io/schemas/1.24.0",
                "scopeSpans": [
                    {
                        "scope": {
                            "name": "automagik",
                            "version": "0.2.0",
                            "attributes": [{"key": "scope.attr", "value": {"boolValue": True}}],
                        },
                        "schemaUrl": "https://opentelemetry.io/schemas/1.24.0",
                        "spans": [
                            {
                                "traceId": TRACE_ID,
                                "spanId": SPAN_ID,
                                "traceState": "vendor=1",
                                "parentSpanId": PARENT_ID,
                                "flags": 257,
                                "name": "GET /cart",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {
                                        "key": "http.status_code",
                                        "value": {"intValue": str(BIG_INT)},
                                    },
                                    {"key": "ok", "value": {"boolValue": True}},
                                    {"key": "ratio", "value": {"doubleValue": 0.25}},
                                    {
                                        "key": "tags",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"stringValue": "a"},
                                                    {"intValue": "-1"},
                                                ]
                                            }
                                        },
                                    },
                                    {
                                        "key": "nested",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {
                                                        "key": "inner",
                                                        "value": {"stringValue": "v"},
                                                    }
                                                ]
                                            }
                                        },
                                    },
                                    # AnyValue.bytesValue stays base64, as in proto3 JSON.
                                    {"key": "raw", "value": {"bytesValue": "AAEC"}},
                                ],
                                "droppedAttributesCount": 2,
                                "events": [
                                    {
                                        "timeUnixNano": "1544712660500000000",
                                        "name": "exception",
                                        "attributes": [
                                            {
                                                "key": "exception.message",
                                                "value": {"stringValue": "boom"},
                                            }
                                        ],
                                        "droppedAttributesCount": 5,
                                    }
                                ],
                                "droppedEventsCount": 3,
                                "links": [
                                    {
                                        "traceId": LINK_TRACE_ID,
                                        "spanId": LINK_SPAN_ID,
                                        "traceState": "x=y",
                                        "attributes": [
                                            {
                                                "key": "link.kind",
                                                "value": {"stringValue": "follows"},
                                            }
                                        ],
                                        "droppedAttributesCount": 6,
                                        "flags": 256,
                                    }
                                ],
                                "droppedLinksCount": 4,
                                "status": {"message": "boom", "code": 2},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def metrics_request() -> ExportMetricsServiceRequest:
    """One metric of each kind (sum with an exemplar, gauge, histogram, exp histogram, summary)."""
    exemplar = m.Exemplar(
        filtered_attributes=[kv("user", string_value="u1")],
        time_unix_nano=2,
        as_double=1.5,
        span_id=bytes.fromhex(SPAN_ID),
        trace_id=bytes.fromhex(TRACE_ID),
    )
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", string_value="checkout"))
    sm = rm.scope_metrics.add()
    sm.scope.name = "meter"
    sm.metrics.extend(
        [
            m.Metric(
                name="requests",
                description="requests served",
                unit="1",
                sum=m.Sum(
                    data_points=[
                        m.NumberDataPoint(
                            attributes=[kv("route", string_value="/cart")],
                            start_time_unix_nano=1,
                            time_unix_nano=2,
                            as_int=BIG_INT,
                            exemplars=[exemplar],
                        )
                    ],
                    aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE,
                    is_monotonic=True,
                ),
            ),
            m.Metric(
                name="temperature",
                gauge=m.Gauge(data_points=[m.NumberDataPoint(time_unix_nano=3, as_double=21.5)]),
            ),
            m.Metric(
                name="latency",
                unit="ms",
                histogram=m.Histogram(
                    data_points=[
                        m.HistogramDataPoint(
                            start_time_unix_nano=1,
                            time_unix_nano=2,
                            count=3,
                            sum=6.0,
                            bucket_counts=[1, 1, 1],
                            explicit_bounds=[1.0, 5.0],
                            min=1.0,
                            max=3.0,
                        )
                    ],
                    aggregation_temporality=m.AGGREGATION_TEMPORALITY_DELTA,
                ),
            ),
            m.Metric(
                name="sizes",
                exponential_histogram=m.ExponentialHistogram(
                    data_points=[
                        m.ExponentialHistogramDataPoint(
                            time_unix_nano=2,
                            count=4,
                            sum=10.0,
                            scale=2,
                            zero_count=1,
                            positive=m.ExponentialHistogramDataPoint.Buckets(
                                offset=-1, bucket_counts=[1, 2]
                            ),
                            zero_threshold=0.5,
                        )
                    ],
                    aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE,
                ),
            ),
            m.Metric(
                name="quantiles",
                summary=m.Summary(
                    data_points=[
                        m.SummaryDataPoint(
                            time_unix_nano=2,
                            count=2,
                            sum=3.0,
                            quantile_values=[
                                m.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0),
                                m.SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=2.0),
                            ],
                        )
                    ]
                ),
            ),
        ]
    )
    return request


def metrics_json() -> dict[str, Any]:
    """The same request as :func:`metrics_request`, as hand-written OTLP/JSON."""
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "meter"},
                        "metrics": [
                            {
                                "name": "requests",
                                "description": "requests served",
                                "unit": "1",
                                "sum": {
                                    "dataPoints": [
                                        {
                                            "attributes": [
                                                {"key": "route", "value": {"stringValue": "/cart"}}
                                            ],
                                            "startTimeUnixNano": "1",
                                            "timeUnixNano": "2",
                                            "asInt": str(BIG_INT),
                                            "exemplars": [
                                                {
                                                    "filteredAttributes": [
                                                        {
                                                            "key": "user",
                                                            "value": {"stringValue": "u1"},
                                                        }
                                                    ],
                                                    "timeUnixNano": "2",
                                                    "asDouble": 1.5,
                                                    "spanId": SPAN_ID,
                                                    "traceId": TRACE_ID,
                                                }
                                            ],
                                        }
                                    ],
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                },
                            },
                            {
                                "name": "temperature",
                                "gauge": {"dataPoints": [{"timeUnixNano": "3", "asDouble": 21.5}]},
                            },
                            {
                                "name": "latency",
                                "unit": "ms",
                                "histogram": {
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": "1",
                                            "timeUnixNano": "2",
                                            "count": "3",
                                            "sum": 6.0,
                                            "bucketCounts": ["1", "1", "1"],
                                            "explicitBounds": [1.0, 5.0],
                                            "min": 1.0,
                                            "max": 3.0,
                                        }
                                    ],
                                    "aggregationTemporality": 1,
                                },
                            },
                            {
                                "name": "sizes",
                                "exponentialHistogram": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": "2",
                                            "count": "4",
                                            "sum": 10.0,
                                            "scale": 2,
                                            "zeroCount": "1",
                                            "positive": {"offset": -1, "bucketCounts": ["1", "2"]},
                                            "zeroThreshold": 0.5,
                                        }
                                    ],
                                    "aggregationTemporality": 2,
                                },
                            },
                            {
                                "name": "quantiles",
                                "summary": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": "2",
                                            "count": "2",
                                            "sum": 3.0,
                                            "quantileValues": [
                                                {"quantile": 0.5, "value": 1.0},
                                                {"quantile": 1.0, "value": 2.0},
                                            ],
                                        }
                                    ]
                                },
                            },
                        ],
                    }
                ],
            }
        ]
    }


def logs_request() -> ExportLogsServiceRequest:
    """One log record using every LogRecord field."""
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.append(kv("service.name", string_value="checkout"))
    sl = rl.scope_logs.add()
    sl.scope.name = "logger"
    sl.log_records.append(
        LogRecord(
            time_unix_nano=1_700_000_000_000_000_001,
            observed_time_unix_nano=1_700_000_000_000_000_002,
            severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR,
            severity_text="ERROR",
            body=AnyValue(string_value="payment failed"),
            attributes=[kv("order.id", int_value=BIG_INT)],
            dropped_attributes_count=1,
            flags=1,
            trace_id=bytes.fromhex(TRACE_ID),
            span_id=bytes.fromhex(SPAN_ID),
            event_name="payment.failure",
        )
    )
    return request


def logs_json() -> dict[str, Any]:
    """The same request as :func:`logs_request`, as hand-written OTLP/JSON."""
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]
                },
                "scopeLogs": [
                    {
                        "scope": {"name": "logger"},
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000001",
                                "observedTimeUnixNano": "1700000000000000002",
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "body": {"stringValue": "payment failed"},
                                "attributes": [
                                    {"key": "order.id", "value": {"intValue": str(BIG_INT)}}
                                ],
                                "droppedAttributesCount": 1,
                                "flags": 1,
                                "traceId": TRACE_ID,
                                "spanId": SPAN_ID,
                                "eventName": "payment.failure",
                            }
                        ],
                    }
                ],
            }
        ]
    }


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_protobuf_trace_request_is_decoded_field_by_field(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool, encoding: str | None
) -> None:
    sent = trace_request()
    response = post(pool, "traces", sent.SerializeToString(), PROTOBUF, encoding)

    assert response.status == 200
    assert response.headers["Content-Type"] == PROTOBUF
    assert ExportTraceServiceResponse.FromString(response.data) == ExportTraceServiceResponse()
    assert receiver.errors == []
    [record] = receiver.requests
    assert record.signal == "traces"
    assert record.content_type == PROTOBUF
    assert record.content_encoding == (encoding or "")
    assert record.raw_body_len == len(compress(sent.SerializeToString(), encoding))
    assert record.headers["content-type"] == PROTOBUF
    assert record.message == sent

    [(resource, scope, span)] = receiver.spans()
    assert [a.key for a in resource.attributes] == ["service.name", "host.cpus"]
    assert resource.dropped_attributes_count == 1
    assert (scope.name, scope.version) == ("automagik", "0.2.0")
    assert span.trace_id.hex() == TRACE_ID
    assert span.span_id.hex() == SPAN_ID
    assert span.parent_span_id.hex() == PARENT_ID
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.attributes[0].value.int_value == BIG_INT
    assert span.links[0].trace_id.hex() == LINK_TRACE_ID
    assert span.status.code == Status.STATUS_CODE_ERROR


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_hand_written_json_traces_decode_to_the_same_message(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool, encoding: str | None
) -> None:
    response = post_json(pool, "traces", trace_json(), encoding)

    assert response.status == 200, response.data
    assert response.headers["Content-Type"] == JSON
    assert response.data == b"{}"
    assert receiver.errors == []
    [record] = receiver.requests
    assert record.content_type == JSON
    assert record.content_encoding == (encoding or "")
    # Every field, hex ids included, matches the protobuf request built by hand.
    assert record.message == trace_request()
    [(_, _, span)] = receiver.spans()
    assert span.trace_id == bytes.fromhex(TRACE_ID)
    assert span.span_id == bytes.fromhex(SPAN_ID)
    assert span.parent_span_id == bytes.fromhex(PARENT_ID)
    assert span.links[0].span_id == bytes.fromhex(LINK_SPAN_ID)
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.start_time_unix_nano == 1_544_712_660_000_000_000
    assert span.attributes[0].value.int_value == BIG_INT
    assert span.attributes[5].value.bytes_value == b"\x00\x01\x02"
    assert span.events[0].attributes[0].value.string_value == "boom"
    assert (span.dropped_events_count, span.dropped_links_count) == (3, 4)


@pytest.mark.parametrize(
    ("encoding", "as_json"), [(None, False), ("deflate", False), ("gzip", True), (None, True)]
)
def test_metrics_of_every_kind_are_decoded(
    receiver: OtlpReceiver,
    pool: urllib3.HTTPConnectionPool,
    encoding: str | None,
    as_json: bool,
) -> None:
    if as_json:
        response = post_json(pool, "metrics", metrics_json(), encoding)
    else:
        response = post(pool, "metrics", metrics_request().SerializeToString(), PROTOBUF, encoding)

    assert response.status == 200, response.data
    assert receiver.errors == []
    [record] = receiver.requests
    assert record.signal == "metrics"
    assert record.message == metrics_request()
    metrics = {metric.name: metric for _, _, metric in receiver.metrics()}
    assert list(metrics) == ["requests", "temperature", "latency", "sizes", "quantiles"]
    point = metrics["requests"].sum.data_points[0]
    assert point.as_int == BIG_INT
    assert point.exemplars[0].trace_id.hex() == TRACE_ID
    assert point.exemplars[0].span_id.hex() == SPAN_ID
    assert metrics["requests"].sum.aggregation_temporality == 2
    assert metrics["latency"].histogram.aggregation_temporality == 1
    assert list(metrics["latency"].histogram.data_points[0].bucket_counts) == [1, 1, 1]
    assert metrics["sizes"].exponential_histogram.data_points[0].positive.offset == -1
    assert metrics["quantiles"].summary.data_points[0].quantile_values[1].value == 2.0


@pytest.mark.parametrize(
    ("encoding", "as_json"),
    [(None, False), ("gzip", False), ("raw-deflate", False), (None, True), ("deflate", True)],
)
def test_log_records_are_decoded(
    receiver: OtlpReceiver,
    pool: urllib3.HTTPConnectionPool,
    encoding: str | None,
    as_json: bool,
) -> None:
    if as_json:
        response = post_json(pool, "logs", logs_json(), encoding)
    else:
        response = post(pool, "logs", logs_request().SerializeToString(), PROTOBUF, encoding)

    assert response.status == 200, response.data
    [record] = receiver.requests
    assert record.signal == "logs"
    assert record.message == logs_request()
    [(resource, scope, log)] = receiver.log_records()
    assert resource.attributes[0].value.string_value == "checkout"
    assert scope.name == "logger"
    assert log.severity_number == SeverityNumber.SEVERITY_NUMBER_ERROR
    assert log.body.string_value == "payment failed"
    assert log.trace_id.hex() == TRACE_ID
    assert log.span_id.hex() == SPAN_ID
    assert log.attributes[0].value.int_value == BIG_INT
    assert log.time_unix_nano == 1_700_000_000_000_000_001
    assert log.event_name == "payment.failure"


def test_json_with_charset_parameter_and_empty_optional_ids_is_accepted(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    document = logs_json()
    record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    record["traceId"] = ""  # optional on log records: empty means "not set"
    del record["spanId"]
    response = post(pool, "logs", json.dumps(document).encode(), "application/json; charset=utf-8")

    assert response.status == 200, response.data
    [(_, _, log)] = receiver.log_records()
    assert (log.trace_id, log.span_id) == (b"", b"")


def test_chunked_request_body_is_accepted(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    body = trace_request().SerializeToString()
    response = pool.urlopen(
        "POST",
        "/v1/traces",
        body=iter([body[:10], body[10:]]),
        headers={"Content-Type": PROTOBUF},
        chunked=True,
    )

    assert response.status == 200
    assert receiver.requests[0].message == trace_request()


# --- rejections -----------------------------------------------------------------------------


def _span(document: dict[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    return span


def _bad_trace_json(mutate: str) -> dict[str, Any]:
    document = trace_json()
    span = _span(document)
    if mutate == "snake_case top-level key":
        document["resource_spans"] = document.pop("resourceSpans")
    elif mutate == "snake_case span key":
        span["start_time_unix_nano"] = span.pop("startTimeUnixNano")
    elif mutate == "snake_case id key":
        span["trace_id"] = span.pop("traceId")
    elif mutate == "string kind":
        span["kind"] = "SPAN_KIND_SERVER"
    elif mutate == "numeric string kind":
        span["kind"] = "2"
    elif mutate == "string status code":
        span["status"]["code"] = "STATUS_CODE_ERROR"
    elif mutate == "short traceId":
        span["traceId"] = TRACE_ID[:-1]
    elif mutate == "long spanId":
        span["spanId"] = SPAN_ID + "00"
    elif mutate == "non-hex traceId":
        span["traceId"] = "z" * 32
    elif mutate == "base64 spanId":
        span["spanId"] = base64.b64encode(bytes.fromhex(SPAN_ID)).decode()
    elif mutate == "bad link traceId":
        span["links"][0]["traceId"] = "0" * 30
    elif mutate == "numeric traceId":
        span["traceId"] = 12
    elif mutate == "all-zero traceId":
        span["traceId"] = "0" * 32
    elif mutate == "empty spanId":
        span["spanId"] = ""
    elif mutate == "unknown field":
        span["fooBar"] = 1
    else:
        raise AssertionError(mutate)
    return document


@pytest.mark.parametrize(
    "mutate",
    [
        "snake_case top-level key",
        "snake_case span key",
        "snake_case id key",
        "string kind",
        "numeric string kind",
        "string status code",
        "short traceId",
        "long spanId",
        "non-hex traceId",
        "base64 spanId",
        "bad link traceId",
        "numeric traceId",
        "all-zero traceId",
        "empty spanId",
        "unknown field",
    ],
)
def test_off_spec_trace_json_is_rejected(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool, mutate: str
) -> None:
    response = post_json(pool, "traces", _bad_trace_json(mutate), "gzip")

    assert response.status == 400
    assert response.headers["Content-Type"] == JSON
    code, message = status_of(response)
    assert code == 3  # INVALID_ARGUMENT
    assert message
    assert receiver.requests == [] and receiver.rejected_requests == []
    [error] = receiver.errors
    assert error.startswith("POST /v1/traces: 400 ")


def test_rejection_messages_name_the_offending_field(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    for mutate in ("snake_case id key", "string kind", "short traceId"):
        assert post_json(pool, "traces", _bad_trace_json(mutate)).status == 400
    snake, enum, short = receiver.errors
    assert "spans[0].trace_id" in snake and "lowerCamelCase" in snake
    assert "spans[0].kind" in enum and "SPAN_KIND_SERVER" in enum
    assert "spans[0].traceId" in short and "32 hex characters" in short


def test_string_enums_in_logs_and_metrics_are_rejected(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    logs = logs_json()
    logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["severityNumber"] = (
        "SEVERITY_NUMBER_ERROR"
    )
    metrics = metrics_json()
    metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"][
        "aggregationTemporality"
    ] = "AGGREGATION_TEMPORALITY_CUMULATIVE"
    bad_exemplar = metrics_json()
    bad_exemplar["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0][
        "exemplars"
    ][0]["spanId"] = "xyz"

    assert post_json(pool, "logs", logs).status == 400
    assert post_json(pool, "metrics", metrics).status == 400
    assert post_json(pool, "metrics", bad_exemplar).status == 400
    assert receiver.requests == []
    assert "severityNumber" in receiver.errors[0]
    assert "aggregationTemporality" in receiver.errors[1]
    assert "exemplars[0].spanId" in receiver.errors[2]


@pytest.mark.parametrize(
    ("signal_name", "build"),
    [("traces", trace_request), ("metrics", metrics_request), ("logs", logs_request)],
)
def test_generic_proto3_json_is_not_otlp_json(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool, signal_name: Any, build: Any
) -> None:
    """``json_format.MessageToJson`` writes base64 ids and enum names: an OTLP client bug."""
    body = json_format.MessageToJson(build()).encode()
    assert post(pool, signal_name, body, JSON).status == 400
    assert len(receiver.errors) == 1
    assert receiver.requests == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"resourceSpans": [], "resourceSpans": []}',
        "{}".encode("utf-16"),
    ],
    ids=["syntax", "array", "duplicate-key", "not-utf8"],
)
def test_malformed_json_is_rejected(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool, body: bytes
) -> None:
    response = post(pool, "traces", body, JSON)

    assert response.status == 400
    assert len(receiver.errors) == 1
    assert receiver.requests == []


def test_bad_protobuf_is_rejected(receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool) -> None:
    good = trace_request()
    no_ids = trace_request()
    no_ids.resource_spans[0].scope_spans[0].spans[0].ClearField("trace_id")
    nested_unknown = trace_request()
    # Field 99, varint 1: a field this Span does not have.
    nested_unknown.resource_spans[0].scope_spans[0].spans[0].MergeFromString(b"\x98\x06\x01")
    bodies = [
        b"\xff\xff\xff\xff",  # not protobuf
        good.SerializeToString()[:-3],  # truncated
        good.SerializeToString() + b"\x98\x06\x01",  # unknown top-level field
        nested_unknown.SerializeToString(),
        no_ids.SerializeToString(),
    ]
    for body in bodies:
        response = post(pool, "traces", body)
        assert response.status == 400
        assert response.headers["Content-Type"] == PROTOBUF
        assert status_of(response)[0] == 3

    assert receiver.requests == []
    errors = receiver.errors
    assert len(errors) == 5
    assert "unknown protobuf fields" in errors[2]
    assert "spans[0]" in errors[3] and "unknown protobuf fields" in errors[3]
    assert "traceId must be 16 bytes" in errors[4]


def test_bad_ids_in_protobuf_logs_and_metrics_are_rejected(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    short_log_id = logs_request()
    short_log_id.resource_logs[0].scope_logs[0].log_records[0].trace_id = b"\x01" * 3
    zero_exemplar = metrics_request()
    point = zero_exemplar.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0]
    point.exemplars[0].span_id = bytes(8)

    assert post(pool, "logs", short_log_id.SerializeToString()).status == 400
    assert post(pool, "metrics", zero_exemplar.SerializeToString()).status == 400
    log_error, metric_error = receiver.errors
    assert "logRecords[0].traceId must be 16 bytes, got 3" in log_error
    assert "exemplars[0].spanId must not be all zeros" in metric_error
    assert receiver.requests == []


def test_validate_false_accepts_what_only_validation_rejects(
    pool: urllib3.HTTPConnectionPool,
) -> None:
    no_ids = trace_request()
    no_ids.resource_spans[0].scope_spans[0].spans[0].ClearField("trace_id")
    with (
        OtlpReceiver(validate=False) as lax,
        urllib3.HTTPConnectionPool("127.0.0.1", lax.port, retries=False) as lax_pool,
    ):
        assert post(lax_pool, "traces", no_ids.SerializeToString()).status == 200
        assert post(lax_pool, "traces", b"\x98\x06\x01").status == 200  # only an unknown field
        assert len(lax.requests) == 2


@pytest.mark.parametrize("wire", ["protobuf", "json+gzip"])
def test_counting_mode_counts_what_the_strict_mode_decodes_and_keeps_no_message(wire: str) -> None:
    bodies = {
        "traces": (trace_request(), trace_json()),
        "metrics": (metrics_request(), metrics_json()),
        "logs": (logs_request(), logs_json()),
    }
    with OtlpReceiver() as strict, OtlpReceiver(counting=True) as counting:
        for rx in (strict, counting):
            with urllib3.HTTPConnectionPool("127.0.0.1", rx.port, retries=False) as rx_pool:
                for signal_name, (message, document) in bodies.items():
                    if wire == "protobuf":
                        answer = post(rx_pool, signal_name, message.SerializeToString())
                    else:
                        answer = post_json(rx_pool, signal_name, document, "gzip")
                    assert answer.status == 200, answer.data
        points = sum(
            len(getattr(metric, metric.WhichOneof("data")).data_points)
            for _, _, metric in strict.metrics()
        )
        assert points > 0
        assert counting.counts() == {
            "requests": 3,
            "spans": len(strict.spans()),
            "metric_points": points,
            "log_records": len(strict.log_records()),
            "rejected_requests": 0,
            "errors": 0,
        }
        assert [r.items for r in counting.requests] == [r.items for r in strict.requests]
        assert all(r.message is None for r in counting.requests)
        assert counting.spans() == counting.metrics() == counting.log_records() == []
        assert [r.content_encoding for r in counting.requests] == [
            r.content_encoding for r in strict.requests
        ]


def test_counting_mode_keeps_marked_span_names_and_checks_only_the_envelope() -> None:
    marked = ExportTraceServiceRequest()
    spans = marked.resource_spans.add().scope_spans.add().spans
    for name in ("probe.000001", "user.signup", "probe.000002"):
        spans.add(name=name)  # no ids: the strict mode refuses these spans
    string_enum = {  # a string enum: the strict mode refuses it too
        "resourceSpans": [{"scopeSpans": [{"spans": [{"name": "probe.000003", "kind": "X"}]}]}]
    }
    with (
        OtlpReceiver(counting=True, keep_span_names="probe.") as rx,
        urllib3.HTTPConnectionPool("127.0.0.1", rx.port, retries=False) as rx_pool,
    ):
        assert post(rx_pool, "traces", marked.SerializeToString()).status == 200
        assert post_json(rx_pool, "traces", string_enum).status == 200
        assert post(rx_pool, "traces", b"{not json", JSON).status == 400
        assert post_json(rx_pool, "traces", [1]).status == 400
        assert post_json(rx_pool, "traces", {"resourceSpans": 3}).status == 400
        assert post(rx_pool, "traces", b"\xff\xff\xff\xff").status == 400
        assert post(rx_pool, "traces", b"{}", "text/plain").status == 415
        assert post(rx_pool, "nowhere", b"{}", JSON).status == 404
        assert [(r.items, r.span_names) for r in rx.requests] == [
            (3, ("probe.000001", "probe.000002")),
            (1, ("probe.000003",)),
        ]
        assert len(rx.errors) == 6


def test_unsupported_media_encoding_path_and_method(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    body = trace_request().SerializeToString()
    assert post(pool, "traces", body, "text/plain").status == 415
    assert pool.request("POST", "/v1/traces", body=body).status == 415  # no Content-Type
    assert post(pool, "traces", body, PROTOBUF, "br").status == 415
    assert post(pool, "traces", b"\x1f\x8b garbage").status == 400  # not protobuf
    response = pool.request(
        "POST",
        "/v1/traces",
        body=b"\x1f\x8b\x08 not gzip",
        headers={"Content-Type": PROTOBUF, "Content-Encoding": "gzip"},
    )
    assert response.status == 400
    assert post(pool, "traces", body, path="/v1/profiles").status == 404
    get = pool.request("GET", "/v1/traces")
    assert get.status == 405
    assert get.headers["Allow"] == "POST"

    assert receiver.requests == []
    assert [e.split(":", 1)[1].split()[0] for e in receiver.errors] == [
        "415",
        "415",
        "415",
        "400",
        "400",
        "404",
        "405",
    ]
    # None of this broke the keep-alive connection.
    assert post(pool, "traces", body).status == 200
    assert pool.num_connections == 1


def test_bodies_over_the_limit_get_413() -> None:
    big = trace_request()
    big.resource_spans[0].scope_spans[0].spans[0].name = "x" * 5000
    with (
        OtlpReceiver(max_body_bytes=4096) as small,
        urllib3.HTTPConnectionPool("127.0.0.1", small.port, maxsize=1, retries=False) as pool,
    ):
        plain = post(pool, "traces", big.SerializeToString())
        assert plain.status == 413
        assert plain.headers["Connection"] == "close"
        # Small on the wire, too big once inflated.
        bomb = post(pool, "traces", big.SerializeToString(), PROTOBUF, "gzip")
        assert bomb.status == 413
        assert post(pool, "traces", trace_request().SerializeToString()).status == 200
        assert [e.split(":", 1)[1].split()[0] for e in small.errors] == ["413", "413"]
        assert len(small.requests) == 1


# --- scripted answers -----------------------------------------------------------------------


def test_scripted_429_then_503_then_default_200(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    receiver.script(
        "traces", [Response(status=429, headers={"Retry-After": "1"}), Response(status=503)]
    )
    assert receiver.pending_responses("traces") == 2
    body = trace_request().SerializeToString()

    first = post(pool, "traces", body)
    # Another signal does not consume the traces script.
    other = post(pool, "logs", logs_request().SerializeToString())
    second = post(pool, "traces", body)
    third = post(pool, "traces", body)

    assert first.status == 429
    assert first.headers["Retry-After"] == "1"
    assert status_of(first) == (8, "scripted 429 answer")
    assert other.status == 200
    assert second.status == 503
    assert "Retry-After" not in second.headers
    assert status_of(second)[0] == 14
    assert third.status == 200
    assert ExportTraceServiceResponse.FromString(third.data) == ExportTraceServiceResponse()
    assert receiver.pending_responses("traces") == 0

    rejected = receiver.rejected_requests
    assert [r.response_status for r in rejected] == [429, 503]
    assert all(r.message == trace_request() for r in rejected)  # decoded, but not delivered
    assert [(r.signal, r.response_status) for r in receiver.requests] == [
        ("logs", 200),
        ("traces", 200),
    ]
    assert len(receiver.spans()) == 1
    assert receiver.errors == []


def test_scripted_error_in_json_and_shared_queue_priority(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    receiver.script(None, [Response(status=500), Response(status=502)])
    receiver.script("metrics", [Response(status=429, headers={"Retry-After": "2"})])

    metrics = post_json(pool, "metrics", metrics_json())  # own queue first
    logs = post_json(pool, "logs", logs_json())  # shared queue
    metrics_again = post_json(pool, "metrics", metrics_json())  # own queue empty: shared
    last = post_json(pool, "metrics", metrics_json())

    assert (metrics.status, metrics.headers["Retry-After"]) == (429, "2")
    assert metrics.headers["Content-Type"] == JSON
    assert json.loads(metrics.data) == {"code": 8, "message": "scripted 429 answer"}
    assert logs.status == 500
    assert metrics_again.status == 502
    assert last.status == 200 and last.data == b"{}"
    assert [r.signal for r in receiver.rejected_requests] == ["metrics", "logs", "metrics"]
    assert len(receiver.metrics()) == 5


@pytest.mark.parametrize(
    ("signal_name", "build", "response_type", "field_name", "json_name"),
    [
        ("traces", trace_request, ExportTraceServiceResponse, "rejected_spans", "rejectedSpans"),
        (
            "metrics",
            metrics_request,
            ExportMetricsServiceResponse,
            "rejected_data_points",
            "rejectedDataPoints",
        ),
        (
            "logs",
            logs_request,
            ExportLogsServiceResponse,
            "rejected_log_records",
            "rejectedLogRecords",
        ),
    ],
)
def test_partial_success_answers_in_the_request_encoding(
    receiver: OtlpReceiver,
    pool: urllib3.HTTPConnectionPool,
    signal_name: Any,
    build: Any,
    response_type: Any,
    field_name: str,
    json_name: str,
) -> None:
    receiver.script(
        signal_name,
        [
            Response(status=200, partial_success=(3, "3 items dropped")),
            Response(partial_success=(1, "json too")),
        ],
    )

    binary = post(pool, signal_name, build().SerializeToString())
    document = {"traces": trace_json, "metrics": metrics_json, "logs": logs_json}[signal_name]()
    as_json = post_json(pool, signal_name, document)

    assert binary.status == 200
    assert binary.headers["Content-Type"] == PROTOBUF
    answer = response_type.FromString(binary.data)
    assert getattr(answer.partial_success, field_name) == 3
    assert answer.partial_success.error_message == "3 items dropped"

    assert as_json.status == 200
    assert as_json.headers["Content-Type"] == JSON
    assert json.loads(as_json.data) == {
        "partialSuccess": {json_name: "1", "errorMessage": "json too"}  # int64 as a string
    }
    parsed = json_format.Parse(as_json.data, response_type())
    assert getattr(parsed.partial_success, field_name) == 1
    # Partial success still counts as delivered.
    assert [r.response_status for r in receiver.requests] == [200, 200]
    assert receiver.rejected_requests == []


def test_dropped_connection_and_delayed_answer(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    receiver.script(None, [Response(drop=True), Response(delay=0.5)])
    body = trace_request().SerializeToString()

    with pytest.raises(urllib3.exceptions.ProtocolError):
        post(pool, "traces", body)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        pool.request(
            "POST",
            "/v1/traces",
            body=body,
            headers={"Content-Type": PROTOBUF},
            timeout=urllib3.Timeout(connect=2.0, read=0.1),
        )
    assert receiver.wait_for(lambda: len(receiver.requests) == 1, timeout=5.0)
    assert [r.response_status for r in receiver.rejected_requests] == [0]
    assert post(pool, "traces", body).status == 200


def test_clear_forgets_records_and_scripts(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    receiver.script("traces", [Response(status=503)])
    post(pool, "traces", trace_request().SerializeToString())  # 503
    post(pool, "traces", b"garbage")  # 400
    receiver.script("traces", [Response(status=503)])
    receiver.clear()

    assert (receiver.requests, receiver.rejected_requests, receiver.errors) == ([], [], [])
    assert receiver.pending_responses("traces") == 0
    assert post(pool, "traces", trace_request().SerializeToString()).status == 200


# --- HTTP behaviour and lifecycle -----------------------------------------------------------


def test_keep_alive_and_content_length_on_every_answer(
    receiver: OtlpReceiver, pool: urllib3.HTTPConnectionPool
) -> None:
    receiver.script(None, [Response(status=429, headers={"Retry-After": "0"})])
    answers = [post(pool, "traces", trace_request().SerializeToString()) for _ in range(4)]
    answers.append(post_json(pool, "logs", {"resourceLogs": []}))
    answers.append(post(pool, "traces", b"junk"))

    assert [a.status for a in answers] == [429, 200, 200, 200, 200, 400]
    assert all(int(a.headers["Content-Length"]) == len(a.data) for a in answers)
    assert all(a.version == 11 for a in answers)
    assert pool.num_connections == 1  # one TCP connection carried everything


def test_url_endpoint_and_wait_for(receiver: OtlpReceiver) -> None:
    assert receiver.url == f"http://127.0.0.1:{receiver.port}"
    assert receiver.endpoint("traces") == receiver.url + "/v1/traces"
    assert receiver.endpoint("metrics").endswith("/v1/metrics")
    assert receiver.endpoint("logs").endswith("/v1/logs")
    with pytest.raises(ValueError):
        receiver.endpoint("profiles")  # type: ignore[arg-type]

    def send_later() -> None:
        time.sleep(0.2)
        with urllib3.PoolManager(retries=False) as manager:
            manager.request(
                "POST",
                receiver.endpoint("traces"),
                body=trace_request().SerializeToString(),
                headers={"Content-Type": PROTOBUF},
            )

    sender = threading.Thread(target=send_later)
    sender.start()
    try:
        assert receiver.wait_for(lambda: len(receiver.spans()) == 1, timeout=5.0)
    finally:
        sender.join()
    assert not receiver.wait_for(lambda: False, timeout=0.05)


def test_stop_closes_idle_keep_alive_connections_quickly() -> None:
    receiver = OtlpReceiver().start()
    with pytest.raises(RuntimeError):
        receiver.start()
    with urllib3.HTTPConnectionPool("127.0.0.1", receiver.port, retries=False) as pool:
        assert post(pool, "traces", trace_request().SerializeToString()).status == 200
        began = time.monotonic()
        receiver.stop()  # the client still holds its idle connection open
        assert time.monotonic() - began < 2.0
        receiver.stop()  # idempotent
        with pytest.raises(urllib3.exceptions.HTTPError):
            post(pool, "traces", trace_request().SerializeToString())
    with pytest.raises(RuntimeError):
        _ = receiver.url


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", [[], ["--count"]], ids=["strict", "counting"])
def test_cli_runs_in_the_foreground_and_prints_counts(mode: list[str]) -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.servers.otlp_receiver",
            "--port",
            "0",
            "--interval",
            "0.05",
            *mode,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],  # the checkout: tests.support is found there
    ) as process:
        assert process.stdout is not None
        try:
            banner = process.stdout.readline()
            assert "listening on http://127.0.0.1:" in banner
            url = banner.split("listening on ", 1)[1].split()[0]
            with urllib3.PoolManager(retries=False) as manager:
                response = manager.request(
                    "POST",
                    url + "/v1/traces",
                    body=trace_request().SerializeToString(),
                    headers={"Content-Type": PROTOBUF},
                )
                assert response.status == 200
            while True:
                line = process.stdout.readline()
                assert line, "the receiver exited early"
                if "spans=1" in line:
                    break
            assert line.startswith("requests=1 "), line
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
