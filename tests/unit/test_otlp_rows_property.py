"""The fast OTLP rows against the straightforward encoding, byte for byte.

``tests/support/otlp_reference.py`` encodes rows the plain way (dicts through msgspec, protobuf
field by field); the engine's encoders (fragment caches, hand-formatted rows) must produce the
same bytes for any input, on the first call and on every later one, whatever went through their
caches before. The encoders here live as long as the module, so every example meets caches
filled by the examples before it, and the keys come from a small pool, so one key meets many
value types: ``True`` / ``1`` / ``1.0`` (equal and hashed alike), ``0.0`` / ``-0.0``, str and str
subclasses, ints and IntEnum. Protobuf rows are also parsed with the official messages and JSON
rows decoded by the test receiver's strict OTLP/JSON path.
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

from automagik_telemetry import otlp_rows
from automagik_telemetry.localservers import otlp_receiver
from automagik_telemetry.otlp_rows import (
    CACHED_TEXT_MAX,
    FRAGMENT_CACHE_LIMIT,
    FRAGMENT_TEXT_BUDGET,
    LONG_TEXT_MAX,
    UNCACHED_CALLS,
    OtlpJsonRows,
    OtlpProtobufRows,
    json_resource,
    json_scope,
)
from automagik_telemetry.resource import Resource
from automagik_telemetry.schema import LogSeverity, MetricType
from automagik_telemetry.sinks.otlp import frame_json, json_envelope
from tests.support import otlp_reference as ref
from tests.support.otlp import assert_no_unknown_fields

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
    st.text(min_size=CACHED_TEXT_MAX + 1, max_size=CACHED_TEXT_MAX + 3),
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
    st.text(min_size=CACHED_TEXT_MAX - 1, max_size=CACHED_TEXT_MAX + 2),
    st.text(min_size=LONG_TEXT_MAX - 1, max_size=LONG_TEXT_MAX + 2, alphabet="xyz"),
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
    for fragments in caches(JSON) + caches(PROTOBUF):
        # keep what the caches hold, but forget the keys routed around them, else a key that
        # once held a list would never meet the cache again, and end a rest (the examples'
        # many distinct values would make every cache rest)
        fragments.direct_keys.clear()
        fragments.uncached = 0
    for attributes in attribute_dicts:
        check_all(attributes, name, number, message)


@pytest.mark.parametrize("order", [1, -1])
def test_equal_values_of_different_types_never_share_a_fragment(order: int) -> None:
    """Equal (and equally hashed) values, one after another under one key, fresh encoders."""
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


def caches(rows: OtlpJsonRows | OtlpProtobufRows) -> list[otlp_rows.Fragments]:
    found = [value for value in vars(rows).values() if isinstance(value, otlp_rows.Fragments)]
    assert found
    return found


def test_caches_are_bounded_and_keep_no_large_value() -> None:
    for rows in (OtlpJsonRows(), OtlpProtobufRows()):
        (fragments, *_) = caches(rows)
        info = fragments.cached.cache_info  # type: ignore[attr-defined]
        for i in range(FRAGMENT_CACHE_LIMIT + 100):  # one value per key: cleared when full
            json_or_pb_span(rows, {f"key-{i}": 1})
        assert 0 < info().currsize < FRAGMENT_CACHE_LIMIT
        for name in (f"event-{i}" for i in range(otlp_rows._NAME_CACHE_LIMIT + 10)):
            rows.span(T, name, None, None)
        assert len(rows._span_names) <= otlp_rows._NAME_CACHE_LIMIT

        fragments.cached.cache_clear()  # type: ignore[attr-defined]
        fragments.uncached = 0
        big = "x" * (LONG_TEXT_MAX + 1)  # too long to keep: encoded every time, never cached
        for _ in range(3):
            json_or_pb_span(rows, {"big": big, "small": "s"})
        assert info().currsize == 1 and "big" in fragments.direct_keys
        long_values = 3 * FRAGMENT_TEXT_BUDGET // LONG_TEXT_MAX
        for i in range(long_values):  # long text: kept only within the budget
            json_or_pb_span(rows, {"long": f"{i:08d}" + "y" * (LONG_TEXT_MAX - 8)})
            assert info().currsize <= FRAGMENT_TEXT_BUDGET // LONG_TEXT_MAX + 2

        fragments.uncached = 0
        for i in range(otlp_rows._NAME_CACHE_LIMIT + 10):  # keys of refused values: bounded
            json_or_pb_span(rows, {f"list-{i}": [i]})
        assert len(fragments.direct_keys) <= otlp_rows._NAME_CACHE_LIMIT
    assert len(otlp_rows._KEY_FIELDS) <= otlp_rows._NAME_CACHE_LIMIT
    assert len(otlp_rows._JSON_KEYS) <= otlp_rows._NAME_CACHE_LIMIT


def test_a_cache_that_misses_too_often_rests_then_tries_again() -> None:
    for rows in (OtlpJsonRows(), OtlpProtobufRows()):
        (fragments, *_) = caches(rows)
        info = fragments.cached.cache_info  # type: ignore[attr-defined]
        repeated = {"route": "/a", "status": 200, "ok": True}
        unique = 0
        while not fragments.uncached:  # ids and durations only: every lookup misses
            unique += 1
            json_or_pb_span(rows, {**repeated, "id": f"{unique:016x}", "d": unique + 0.5})
            assert unique <= FRAGMENT_CACHE_LIMIT
        assert fragments.uncached == UNCACHED_CALLS and info().currsize <= 1
        for i in range(UNCACHED_CALLS):  # resting: nothing cached, rows exact
            attributes = {**repeated, "id": f"{i:08x}"}
            if i % 1024 == 0:
                json_or_pb_span(rows, attributes)  # checked against the reference
            else:
                rows.span(T, "e", attributes, None)
        assert fragments.uncached == 0 and info().currsize <= 1
        for _ in range(3):  # tried again: the repeated values are cached
            json_or_pb_span(rows, repeated)
        assert info().currsize <= 4 and info().hits >= 6
        assert fragments.uncached == 0


def json_or_pb_span(rows: OtlpJsonRows | OtlpProtobufRows, attributes: dict[str, Any]) -> None:
    if isinstance(rows, OtlpJsonRows):
        json_span(rows, "e", attributes, None)
    else:
        protobuf_span(rows, "e", attributes, None)


def test_values_the_cache_refuses_go_item_by_item_and_stay_exact() -> None:
    """A list (unhashable), a long str, a zero double, NaN: the first mapping with such a value
    takes the exception path, the next ones the direct-key comprehension; every row exact."""
    for rows in (OtlpJsonRows(), OtlpProtobufRows()):
        (fragments, *_) = caches(rows)
        samples: list[dict[str, Any]] = [
            {"a": "x", "tags": [1, "two"], "b": 2},
            {"a": "x", "ua": "Mozilla/5.0 " * 200, "b": 2},
            {"a": "x", "d": 0.0, "b": 2},
            {"a": "x", "d": -0.0, "b": 2},
            {"a": "x", "d": math.nan, "b": 2},
            {"a": "x", "d": 1.5, "b": 2},
        ]
        for _ in range(3):
            for attributes in samples:
                json_or_pb_span(rows, attributes)
        assert {"tags", "ua", "d"} <= fragments.direct_keys
