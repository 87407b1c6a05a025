"""The engine's OTLP rows against the straightforward encoding, byte for byte.

``tests/support/otlp_reference.py`` encodes rows the plain way (dicts through msgspec, protobuf
field by field); the engine's encoders (rows joined by hand, name and key caches, ids from a
pool) must produce the same bytes for any input, on the first call and on every later one,
whatever went through their caches before. The encoders here live as long as the module, so
every example meets caches filled by the examples before it, and keys and values come partly
from small pools of equal-but-different ones: ``True`` / ``1`` / ``1.0`` (equal and hashed
alike), ``0.0`` / ``-0.0``, str and str subclasses, ints and IntEnum. Protobuf rows are also
parsed with the official messages and JSON rows decoded by the test receiver's strict OTLP/JSON
path.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import ScopeMetrics
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans

from automagik_telemetry.resource import Resource
from automagik_telemetry.rows import otlp_common, otlp_protobuf
from automagik_telemetry.rows.otlp_json import OtlpJsonRows, json_resource, json_scope
from automagik_telemetry.rows.otlp_protobuf import OtlpProtobufRows
from automagik_telemetry.schema import LogSeverity, MetricType
from automagik_telemetry.sinks.otlp.framing import frame_json, json_envelope
from tests.support import otlp_reference as ref
from tests.support.otlp import assert_no_unknown_fields
from tests.support.servers import otlp_receiver

T = 1_795_000_000_123_456_789
IDS = re.compile(rb'"traceId":"([0-9a-f]{32})","spanId":"([0-9a-f]{16})"')


class Level(enum.IntEnum):
    ONE = 1


class Method(str, enum.Enum):  # noqa: UP042  (on purpose: str() is "Method.GET", not "GET")
    GET = "GET"


class Tier(enum.StrEnum):
    PRO = "pro"


class Loud(str):
    """A str subclass whose str() is not its text."""

    def __str__(self) -> str:
        return self.upper() + "!"


ODD_VALUES: list[Any] = [Level.ONE, Method.GET, Tier.PRO, Loud("get"), Loud("GET")]
KEYS = st.one_of(
    st.sampled_from(["a", "b", "GET", "http.method", "trace_id", "span_id", "exception.type"]),
    st.text(max_size=6),
    st.text(min_size=65, max_size=67),
    st.sampled_from(
        [0, 1, -1, True, False, 1.0, 0.0, -0.0, None, Method.GET, Loud("a"), Level.ONE]
    ),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=2),  # 0 and 1 are equal to False and True
    st.integers(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),  # int64 and beyond
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, math.nan, -math.nan, math.inf]),
    st.text(max_size=8),
    st.sampled_from(["", "GET", "pro", "a\udcffb", "\ud800", 'é\n"\\<\x00\u2028', "1"]),
    st.text(min_size=60, max_size=70),
    st.text(min_size=1000, max_size=1100, alphabet="xyz"),
    st.binary(max_size=6),
    st.sampled_from(ODD_VALUES),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(st.integers(min_value=0, max_value=3), max_size=2),
        st.dictionaries(KEYS, inner, max_size=3),
    ),
    max_leaves=5,
)
# Values equal to one another (and hashed alike) but encoded differently, under few keys.
CONFUSABLE = st.sampled_from(
    [True, 1, 1.0, Level.ONE, False, 0, 0.0, -0.0, "GET", Method.GET, Loud("GET"), Tier.PRO]
)
ATTRIBUTES = st.one_of(
    st.none(),
    st.dictionaries(KEYS, VALUES, max_size=9),
    st.dictionaries(st.sampled_from(["a", "b", 1, True, Loud("a")]), CONFUSABLE, max_size=3),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(1 << 64), max_value=1 << 64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, True, 0.0, -0.0, 5.0, 1e9]),
)
NAMES = st.one_of(st.sampled_from(["e", "api.request", "n\udcff"]), st.text(max_size=5))

# One pair for the whole module: each example meets what the earlier ones left in the caches.
JSON = OtlpJsonRows()
PROTOBUF = OtlpProtobufRows()
RESOURCE = Resource.detect("svc", "1.0", "org", "test")
REQUESTS = (ExportTraceServiceRequest, ExportMetricsServiceRequest, ExportLogsServiceRequest)


def json_span(rows: OtlpJsonRows, name: str, attributes: Any, error: str | None) -> bytes:
    row = bytes(rows.span(T, name, attributes, error))
    ids = IDS.search(row)
    assert ids is not None
    assert row == ref.json_span(ids[1].decode(), ids[2].decode(), T, name, attributes, error)
    return row


def protobuf_span(rows: OtlpProtobufRows, name: str, attributes: Any, error: str | None) -> bytes:
    row = bytes(rows.span(T, name, attributes, error))
    holder = ScopeSpans()
    holder.ParseFromString(row)
    assert_no_unknown_fields(holder)
    (span,) = holder.spans
    assert len(span.trace_id) == 16 and len(span.span_id) == 8
    assert row == ref.protobuf_span(span.trace_id, span.span_id, T, name, attributes, error)
    return row


def check_json_request(kind: int, body: bytes) -> None:
    """The rows, framed as the writer frames them, pass the receiver's strict decoding."""
    prefix, suffix = json_envelope(kind, json_resource(RESOURCE), json_scope())
    message = REQUESTS[kind]()
    otlp_receiver._decode_json(frame_json(prefix, suffix, body), message)
    otlp_receiver._validate(otlp_receiver.SIGNALS[kind], message)


def check_all(attributes: Mapping[Any, Any] | None, name: str, number: Any, message: str) -> None:
    spans, metrics, logs = bytearray(), bytearray(), bytearray()
    for _ in range(2):  # the second time from the caches
        for error in (None, "boom \udcff"):
            spans += json_span(JSON, name, attributes, error)
            protobuf_span(PROTOBUF, name, attributes, error)
        for kind in MetricType:
            row = bytes(JSON.metric(T, name, number, kind, attributes))
            assert row == ref.json_metric(T, name, number, kind, attributes)
            metrics += row
            pb = bytes(PROTOBUF.metric(T, name, number, kind, attributes))
            assert pb == ref.protobuf_metric(T, name, number, kind, attributes)
            ScopeMetrics().ParseFromString(pb)
        for severity in (LogSeverity.INFO, LogSeverity.FATAL):
            row = bytes(JSON.log(T, message, severity, attributes))
            assert row == ref.json_log(T, message, severity, attributes)
            logs += row
            pb = bytes(PROTOBUF.log(T, message, severity, attributes))
            assert pb == ref.protobuf_log(T, message, severity, attributes)
            ScopeLogs().ParseFromString(pb)
    for signal, body in enumerate((spans, metrics, logs)):
        check_json_request(signal, bytes(body))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(ATTRIBUTES, min_size=1, max_size=4),
    NAMES,
    NUMBERS,
    st.sampled_from(["m", "ü\udcff", "x" * 200]),
)
def test_rows_match_the_straightforward_encoding(
    attribute_dicts: list[dict[Any, Any] | None], name: str, number: Any, message: str
) -> None:
    for attributes in attribute_dicts:
        check_all(attributes, name, number, message)


@pytest.mark.parametrize("order", [1, -1])
def test_equal_keys_and_values_of_different_types_keep_their_own_text(order: int) -> None:
    """Equal (and equally hashed) keys and values, one after another, in both orders, with
    fresh encoders: the key cache (keyed by the key) must never give ``True`` the text of
    ``1``, nor a str subclass that of its str."""
    values: list[Any] = [True, 1, 1.0, Level.ONE, False, 0, 0.0, -0.0, "GET", Method.GET]
    values += [Loud("GET"), "pro", Tier.PRO, math.nan, None, 2.0, 2]
    keys: list[Any] = ["k", Loud("k"), True, 1, 1.0]
    json_rows, protobuf_rows = OtlpJsonRows(), OtlpProtobufRows()
    for _ in range(2):
        for key in keys[::order]:
            for value in values[::order]:
                attributes = {key: value, "other": value}
                json_span(json_rows, "e", attributes, None)
                protobuf_span(protobuf_rows, "e", attributes, None)
                for kind in MetricType:
                    assert bytes(json_rows.metric(T, "m", 1, kind, attributes)) == (
                        ref.json_metric(T, "m", 1, kind, attributes)
                    )
                    assert bytes(protobuf_rows.metric(T, "m", 1, kind, attributes)) == (
                        ref.protobuf_metric(T, "m", 1, kind, attributes)
                    )
                assert bytes(json_rows.log(T, "l", LogSeverity.WARN, attributes)) == (
                    ref.json_log(T, "l", LogSeverity.WARN, attributes)
                )
                assert bytes(protobuf_rows.log(T, "l", LogSeverity.WARN, attributes)) == (
                    ref.protobuf_log(T, "l", LogSeverity.WARN, attributes)
                )


def json_or_pb_span(rows: OtlpJsonRows | OtlpProtobufRows, attributes: dict[Any, Any]) -> None:
    if isinstance(rows, OtlpJsonRows):
        json_span(rows, "e", attributes, None)
    else:
        protobuf_span(rows, "e", attributes, None)


def test_caches_are_bounded_and_keep_no_large_key() -> None:
    for rows in (OtlpJsonRows(), OtlpProtobufRows()):
        for i in range(otlp_common.NAME_CACHE_LIMIT + 10):
            rows.span(T, f"event-{i}", None, None)
            rows.metric(T, f"metric-{i}", 1, MetricType.GAUGE, None)
        assert len(rows._span_names) <= otlp_common.NAME_CACHE_LIMIT
        assert len(rows._metric_names if isinstance(rows, OtlpProtobufRows) else rows._names) <= (
            otlp_common.NAME_CACHE_LIMIT
        )
        for i in range(otlp_common.NAME_CACHE_LIMIT + 10):
            json_or_pb_span(rows, {f"key-{i}": i})
        long_key = "k" * (otlp_protobuf._KEY_CACHE_MAX + 1)
        json_or_pb_span(rows, {long_key: 1})
    assert len(otlp_protobuf._KEY_FIELDS) <= otlp_common.NAME_CACHE_LIMIT
    assert long_key not in otlp_protobuf._KEY_FIELDS
    assert all(type(key) is str for key in otlp_protobuf._KEY_FIELDS)
