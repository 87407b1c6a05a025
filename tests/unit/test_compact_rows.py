"""Compact rows (what the application thread writes for OTLP) and their transcoding by the sink.

Whatever a track call holds, the request the writer builds from its compact row must be, byte
for byte, the request of the straightforward encoding (``tests/support/otlp_reference.py``) of
what MessagePack carries: the same values, ids drawn by the producer, names and messages as
given. The protobuf requests are also parsed with the official messages, the JSON ones by the
test receiver's strict OTLP/JSON path.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValueList

from automagik_telemetry.rows.compact import CompactRows, decode_batch, is_compact, portable
from automagik_telemetry.rows.framing import split_sized
from automagik_telemetry.schema import LogSeverity, MetricType
from automagik_telemetry.settings import WriterSettings
from automagik_telemetry.sinks.otlp.framing import frame_protobuf
from automagik_telemetry.sinks.otlp.sink import OtlpSink
from automagik_telemetry.transport import BatchTooLarge, HttpClient
from tests.support import otlp_reference as ref
from tests.support.otlp import assert_no_unknown_fields, attribute_dict, key_values
from tests.support.servers import otlp_receiver
from tests.unit.test_otlp_encoding import settings as wire_settings
from tests.unit.test_otlp_rows_property import ATTRIBUTES, NAMES, NUMBERS

T = 1_795_000_000_123_456_789
TRACES, METRICS, LOGS = 0, 1, 2
REQUESTS = (ExportTraceServiceRequest, ExportMetricsServiceRequest, ExportLogsServiceRequest)


def make_sink(protocol: str, max_batch_bytes: int = 1 << 20) -> OtlpSink:
    config: WriterSettings = msgspec.structs.replace(
        wire_settings(protocol), record_format="sized", max_batch_bytes=max_batch_bytes
    )
    return OtlpSink.from_settings(config, HttpClient(config.timeout))


SINKS = {"http/json": make_sink("http/json"), "http/protobuf": make_sink("http/protobuf")}


def carried(value: Any) -> Any:
    """What MessagePack carries of ``value``, spelled out independently of ``portable``:
    msgspec's own encodings, ``str()`` for the rest; when that fails, ints beyond 64 bits as
    their text and lone surrogates as "?"."""
    try:
        return msgspec.msgpack.decode(msgspec.msgpack.encode(value, enc_hook=str))
    except (OverflowError, UnicodeEncodeError):
        return msgspec.msgpack.decode(msgspec.msgpack.encode(_tamed(value), enc_hook=str))


def _tamed(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return _tamed(value.value)
    if isinstance(value, str):
        return ref.scrub(str(value))
    if type(value) is int and not -(1 << 63) <= value < 1 << 64:
        return str(value)
    if isinstance(value, dict):
        return {_tamed_key(k): _tamed(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_tamed(item) for item in value]
    return value


def _tamed_key(key: Any) -> Any:
    if type(key) is tuple:
        return tuple(_tamed_key(k) for k in key)
    if isinstance(key, str) and not isinstance(key, enum.Enum):  # keys: a subclass's text
        return ref.scrub(str.__str__(key))
    return _tamed(key)


def framed(protocol: str, kind: int, rows: list[bytes]) -> bytes:
    route = SINKS[protocol].routes[kind]
    if protocol == "http/protobuf":
        return frame_protobuf(route.prefix, route.suffix, b"".join(rows))
    return b"".join((route.prefix, b",".join(rows), route.suffix))


def check_request(protocol: str, kind: int, payload: bytes) -> None:
    message = REQUESTS[kind]()
    if protocol == "http/protobuf":
        message.ParseFromString(payload)
        assert_no_unknown_fields(message)
    else:
        otlp_receiver._decode_json(payload, message)
    otlp_receiver._validate(otlp_receiver.SIGNALS[kind], message)


def check_all(attributes: Any, name: str, number: Any, message: str) -> None:
    compact = CompactRows()
    spans = metrics = logs = b""
    for error in (None, "boom \udcff"):
        spans += compact.span(T, name, attributes, error)
    for kind in MetricType:
        metrics += compact.metric(T, name, number, kind, attributes)
    for severity in (LogSeverity.INFO, LogSeverity.FATAL):
        logs += compact.log(T, message, severity, attributes)
    ids = [row[1] for row in decode_batch(spans)]
    attrs = carried(attributes)
    name_, message_ = carried(name), carried(message)
    errors = (None, carried("boom \udcff"))
    expected = {
        "http/json": (
            [
                ref.json_span(i[:16].hex(), i[16:].hex(), T, name_, attrs, e)
                for i, e in zip(ids, errors, strict=True)
            ],
            [ref.json_metric(T, name_, number, kind, attrs) for kind in MetricType],
            [ref.json_log(T, message_, s, attrs) for s in (LogSeverity.INFO, LogSeverity.FATAL)],
        ),
        "http/protobuf": (
            [
                ref.protobuf_span(i[:16], i[16:], T, name_, attrs, e)
                for i, e in zip(ids, errors, strict=True)
            ],
            [ref.protobuf_metric(T, name_, number, kind, attrs) for kind in MetricType],
            [
                ref.protobuf_log(T, message_, s, attrs)
                for s in (LogSeverity.INFO, LogSeverity.FATAL)
            ],
        ),
    }
    for protocol, rows in expected.items():
        for kind, body in enumerate((spans, metrics, logs)):
            payload = SINKS[protocol].frame(kind, body)
            assert payload == framed(protocol, kind, rows[kind])
            check_request(protocol, kind, payload)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ATTRIBUTES, NAMES, NUMBERS, st.sampled_from(["m", "ü\udcff", "x" * 200]))
def test_requests_match_the_straightforward_encoding_of_what_the_rows_carry(
    attributes: Any, name: str, number: Any, message: str
) -> None:
    check_all(attributes, name, number, message)


class Method(str, enum.Enum):  # noqa: UP042  (on purpose: str() is "Method.GET", not "GET")
    GET = "GET"


class Loud(str):
    def __str__(self) -> str:
        return self.upper() + "!"


@dataclasses.dataclass
class Limits:
    soft: int
    hard: float


class Opaque:
    def __str__(self) -> str:
        return "opaque"


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_values_as_the_receiver_decodes_them(protocol: str) -> None:
    """The decisions of ``compact_rows`` about values, as they arrive: enums by value, str
    subclasses and unknown objects by ``str()``, dataclasses and other mappings as key-value
    lists, ints beyond int64 as text, non-finite doubles, bytes, tuple keys by their text."""
    attributes = {
        "enum": Method.GET,
        "loud": Loud("get"),
        "opaque": Opaque(),
        "limits": Limits(3, 7.5),
        "proxy": types.MappingProxyType({"a": 1}),
        "uint64": (1 << 64) - 1,
        "huge": 1 << 70,
        "nan": math.nan,
        "inf": -math.inf,
        "raw": b"\x00\xff",
        "set": frozenset({2}),
        (1, "a"): "tuple key",
        "bad": "a\ud800b",
    }
    body = bytes(CompactRows().span(T, "typed", attributes, None))
    message = REQUESTS[TRACES]()
    payload = SINKS[protocol].frame(TRACES, body)
    if protocol == "http/protobuf":
        message.ParseFromString(payload)
    else:
        otlp_receiver._decode_json(payload, message)
    (span,) = message.resource_spans[0].scope_spans[0].spans
    got = attribute_dict(span.attributes)
    assert math.isnan(got.pop("nan"))
    assert got.pop("limits") == KeyValueList(values=key_values({"soft": 3, "hard": 7.5}))
    assert got.pop("set") == ArrayValue(values=[AnyValue(int_value=2)])
    assert got.pop("proxy") == KeyValueList(values=key_values({"a": 1}))
    assert got == {
        "enum": "GET",
        "loud": "GET!",
        "opaque": "opaque",
        "uint64": str((1 << 64) - 1),
        "huge": str(1 << 70),
        "inf": -math.inf,
        "raw": b"\x00\xff",
        "(1, 'a')": "tuple key",
        "bad": "a?b",
    }


def test_spans_keep_their_ids_whenever_the_batch_is_framed() -> None:
    """Ids are drawn by the producer: a batch framed again (a retry, a spool replay, a later
    writer) is the same request, so a receiver can recognise the repeat."""
    compact = CompactRows()
    body = b"".join(bytes(compact.span(T, f"e{i}", {"i": i}, None)) for i in range(50))
    for sink in SINKS.values():
        assert sink.frame(TRACES, body) == sink.frame(TRACES, body)
    ids = [row[1] for row in decode_batch(body)]
    assert len(set(ids)) == 50 and all(len(i) == 24 for i in ids)
    assert len({i[:16] for i in ids}) == 50  # every span is the root of its own trace


def test_split_sized_finds_whole_rows_and_stops_before_a_cut_one() -> None:
    compact = CompactRows()
    rows = [bytes(compact.log(T, "x" * n, LogSeverity.INFO, None)) for n in (1, 300, 20, 5)]
    body = b"".join(rows)
    ends = [sum(map(len, rows[: i + 1])) for i in range(4)]
    assert split_sized(body, len(body)) == (len(body), 4)
    assert split_sized(body, ends[1]) == (ends[1], 2)
    assert split_sized(body, ends[1] - 1) == (ends[0], 1)
    assert split_sized(body, 1) == (ends[0], 1)  # at least one row, whatever its size
    assert split_sized(body[: ends[2] - 1], len(body)) == (ends[1], 2)  # cut inside row 3
    assert split_sized(body[: ends[2] + 3], len(body)) == (ends[2], 3)  # cut inside a header
    assert split_sized(b"", 100) == (0, 0)
    assert is_compact(body) and not is_compact(b'{"name":"x"}\n') and not is_compact(b"\x12\x01")


def test_a_batch_that_ends_inside_a_row_is_refused_not_misread() -> None:
    body = bytes(CompactRows().span(T, "e", {"a": 1}, None))
    with pytest.raises(ValueError, match="ends inside a row"):
        decode_batch(body[:-1])
    with pytest.raises(ValueError):
        SINKS["http/json"].frame(TRACES, body + body[:7])


def test_portable_keeps_what_it_can() -> None:
    assert portable({"a": 1 << 70, (1, "\ud800"): ["\ud800", 1 << 63, {2}]}) == {
        "a": str(1 << 70),
        (1, "?"): ["?", 1 << 63, [2]],
    }
    assert portable(Loud("x")) == "X!"
    assert portable(Method.GET) == "GET"  # by value, as msgspec encodes it


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_a_batch_whose_request_outgrows_the_limit_is_refused_for_halving(protocol: str) -> None:
    """Compact rows grow into their wire form: the sink learns by how much (to size the next
    batches) and refuses a batch whose request is larger than max_batch_bytes."""
    sink = make_sink(protocol, max_batch_bytes=64 * 1024)
    compact = CompactRows()
    row_of = {f"k{j}": j for j in range(30)}  # small ints: ~5x larger on the wire
    body = b"".join(bytes(compact.span(T, "e", row_of, None)) for _ in range(200))
    before = sink.ring_bytes_for(TRACES, 64 * 1024)
    with pytest.raises(BatchTooLarge, match="max_batch_bytes"):
        sink.frame(TRACES, body)
    after = sink.ring_bytes_for(TRACES, 64 * 1024)
    assert after != before  # learned from this batch (the first guess is 4x)
    one = bytes(compact.span(T, "e", {"pad": "x" * 100_000}, None))
    assert len(sink.frame(TRACES, one)) > 64 * 1024  # a single row goes as it is
    size = split_sized(body, after)[0]
    assert len(sink.frame(TRACES, body[:size])) <= 64 * 1024
    sink.close()
