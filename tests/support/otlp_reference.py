"""The straightforward OTLP row encodings: the reference the fast encoders are held to.

Written for clarity, not speed, and independent of ``otlp_rows``: JSON rows are plain dicts
encoded by msgspec (dicts keep their order; str subclasses and unknown objects through
``str()``, as the engine's encoder hook does), protobuf rows are built field by field. The bytes
are the engine's rows as they were before the fragment caches, except that a non-str key is
always ``str(key)`` (the old protobuf key cache could hand ``True`` the field of ``1``). The
trace and span ids are random in the engine, so they are parameters here.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import msgspec

from automagik_telemetry.rows.clickhouse import HISTOGRAM_BOUNDS, histogram_bucket
from automagik_telemetry.schema import LogSeverity, MetricType

INT64 = range(-(1 << 63), 1 << 63)
EXCEPTION_KEYS = ("exception.type", "exception.message", "exception.stacktrace")


def scrub(value: Any) -> Any:
    """Every str made encodable as UTF-8 (lone surrogates -> "?"), as the engine retries.
    Written character by character, not as the engine does it, so it can disagree."""
    if isinstance(value, str):
        return "".join("?" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    if isinstance(value, Mapping):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(item) for item in value]
    return value


def hex_id(value: Any, digits: int) -> str:
    """A log record's id from an attribute: ``digits`` hex digits, not all zeros."""
    if type(value) is not str or len(value) != digits:
        return ""
    if any(c not in "0123456789abcdefABCDEF" for c in value) or set(value) == {"0"}:
        return ""
    return value.lower()


def key_text(key: Any) -> str:
    return key if type(key) is str else str(key)


# --- JSON -----------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder(enc_hook=str)


def json_double(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def json_any(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": bool(value)}
    if isinstance(value, int):
        number = int(value)
        return {"intValue": str(number)} if number in INT64 else {"stringValue": str(number)}
    if isinstance(value, float):
        return {"doubleValue": json_double(float(value))}
    if isinstance(value, str):
        return {"stringValue": value if type(value) is str else str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytesValue": bytes(value)}  # msgspec: base64
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": json_key_values(value)}}
    if isinstance(value, list | tuple | set | frozenset):
        return {"arrayValue": {"values": [json_any(item) for item in value]}}
    return {"stringValue": str(value)}


def json_key_values(attributes: Mapping[Any, Any]) -> list[dict[str, Any]]:
    return [{"key": key_text(k), "value": json_any(v)} for k, v in attributes.items()]


def _json_row(build: Any, *args: Any) -> bytes:
    try:
        return _encoder.encode(build(*args)) + b"\n"
    except UnicodeEncodeError:
        return _encoder.encode(build(*(scrub(arg) for arg in args))) + b"\n"


def json_span(
    trace_id: str,
    span_id: str,
    time_ns: int,
    name: str,
    attributes: Mapping[Any, Any] | None,
    error: str | None,
) -> bytes:
    def build(name: str, attributes: Mapping[Any, Any] | None, error: str | None) -> Any:
        ts = str(time_ns)
        row: dict[str, Any] = {
            "traceId": trace_id,
            "spanId": span_id,
            "name": name,
            "kind": 1,
            "startTimeUnixNano": ts,
            "endTimeUnixNano": ts,
        }
        if error is None:
            if attributes:
                row["attributes"] = json_key_values(attributes)
            return row
        items = dict(attributes or {})
        exception = {k: items.pop(k) for k in list(items) if k in EXCEPTION_KEYS}
        row["attributes"] = json_key_values(items)
        row["events"] = [
            {"timeUnixNano": ts, "name": "exception", "attributes": json_key_values(exception)}
        ]
        row["status"] = {"message": error, "code": 2}
        return row

    return _json_row(build, name, attributes, error)


def json_metric(
    time_ns: int,
    name: str,
    value: float,
    kind: MetricType,
    attributes: Mapping[Any, Any] | None,
) -> bytes:
    def build(name: str, attributes: Mapping[Any, Any] | None) -> Any:
        ts = str(time_ns)
        if kind is MetricType.HISTOGRAM:
            number = float(value)
            bucket = histogram_bucket(number)
            point: dict[str, Any] = {
                "startTimeUnixNano": ts,
                "timeUnixNano": ts,
                "count": "1",
                "sum": json_double(number),
                "bucketCounts": [str(int(i == bucket)) for i in range(len(HISTOGRAM_BOUNDS) + 1)],
                "explicitBounds": list(HISTOGRAM_BOUNDS),
                "min": json_double(number),
                "max": json_double(number),
            }
            if attributes:
                point["attributes"] = json_key_values(attributes)
            return {"name": name, "histogram": {"dataPoints": [point], "aggregationTemporality": 1}}
        point = {"timeUnixNano": ts}
        if kind is MetricType.COUNTER:
            point["startTimeUnixNano"] = ts
        if type(value) is int and value in INT64:
            point["asInt"] = str(value)
        else:
            point["asDouble"] = json_double(float(value))
        if attributes:
            point["attributes"] = json_key_values(attributes)
        if kind is MetricType.COUNTER:
            data = {"dataPoints": [point], "aggregationTemporality": 1, "isMonotonic": True}
            return {"name": name, "sum": data}
        return {"name": name, "gauge": {"dataPoints": [point]}}

    return _json_row(build, name, attributes)


def json_log(
    time_ns: int, message: str, severity: LogSeverity, attributes: Mapping[Any, Any] | None
) -> bytes:
    def build(message: Any, attributes: Mapping[Any, Any] | None) -> Any:
        ts = str(time_ns)
        row: dict[str, Any] = {
            "timeUnixNano": ts,
            "observedTimeUnixNano": ts,
            "severityNumber": severity.value,
            "severityText": severity.name,
            "body": {"stringValue": message if type(message) is str else str(message)},
        }
        if attributes:
            row["attributes"] = json_key_values(attributes)
            trace_id = hex_id(attributes.get("trace_id"), 32)
            span_id = hex_id(attributes.get("span_id"), 16)
            if trace_id:
                row["traceId"] = trace_id
            if span_id:
                row["spanId"] = span_id
        return row

    return _json_row(build, message, attributes)


# --- protobuf -------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def text(number: int, value: str) -> bytes:
    return length_delimited(number, value.encode("utf-8", "replace"))


def fixed64(number: int, value: int) -> bytes:
    return tag(number, 1) + struct.pack("<Q", value)


def double(number: int, value: float) -> bytes:
    return tag(number, 1) + struct.pack("<d", value)


def pb_any(value: Any) -> bytes:
    """An AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return tag(2, 0) + varint(int(value))
    if isinstance(value, int):
        number = int(value)
        return tag(3, 0) + varint(number) if number in INT64 else text(1, str(number))
    if isinstance(value, float):
        return double(4, float(value))
    if isinstance(value, str):
        return text(1, value if type(value) is str else str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return length_delimited(7, bytes(value))
    if isinstance(value, Mapping):
        return length_delimited(6, pb_key_values(1, value))
    if isinstance(value, list | tuple | set | frozenset):
        return length_delimited(5, b"".join(length_delimited(1, pb_any(v)) for v in value))
    return text(1, str(value))


def pb_key_values(number: int, attributes: Mapping[Any, Any]) -> bytes:
    """Repeated KeyValue fields: key 1, value 2 (always present, even empty)."""
    return b"".join(
        length_delimited(number, text(1, key_text(k)) + length_delimited(2, pb_any(v)))
        for k, v in attributes.items()
    )


def protobuf_span(
    trace_id: bytes,
    span_id: bytes,
    time_ns: int,
    name: str,
    attributes: Mapping[Any, Any] | None,
    error: str | None,
) -> bytes:
    """ScopeSpans.spans (2) holding a Span: trace_id 1, span_id 2, name 5, kind 6, start 7,
    end 8, attributes 9, events 11, status 15."""
    span = (
        length_delimited(1, trace_id)
        + length_delimited(2, span_id)
        + text(5, name)
        + tag(6, 0)
        + varint(1)
        + fixed64(7, time_ns)
        + fixed64(8, time_ns)
    )
    if error is None:
        span += pb_key_values(9, attributes or {})
    else:
        items = dict(attributes or {})
        exception = {k: items.pop(k) for k in list(items) if k in EXCEPTION_KEYS}
        span += pb_key_values(9, items)
        event = fixed64(1, time_ns) + text(2, "exception") + pb_key_values(3, exception)
        span += length_delimited(11, event)
        span += length_delimited(15, text(2, error) + tag(3, 0) + varint(2))
    return length_delimited(2, span)


def protobuf_metric(
    time_ns: int,
    name: str,
    value: float,
    kind: MetricType,
    attributes: Mapping[Any, Any] | None,
) -> bytes:
    """ScopeMetrics.metrics (2) holding a Metric: name 1, gauge 5, sum 7, histogram 9. Points
    start with their attributes (the engine's order)."""
    if kind is MetricType.HISTOGRAM:
        number = float(value)
        bucket = histogram_bucket(number)
        counts = b"".join(
            struct.pack("<Q", int(i == bucket)) for i in range(len(HISTOGRAM_BOUNDS) + 1)
        )
        bounds = b"".join(struct.pack("<d", b) for b in HISTOGRAM_BOUNDS)
        point = (
            pb_key_values(9, attributes or {})
            + fixed64(2, time_ns)
            + fixed64(3, time_ns)
            + fixed64(4, 1)
            + double(5, number)
            + length_delimited(6, counts)
            + length_delimited(7, bounds)
            + double(11, number)
            + double(12, number)
        )
        data = length_delimited(9, length_delimited(1, point) + tag(2, 0) + varint(1))
        return length_delimited(2, text(1, name) + data)
    point = pb_key_values(7, attributes or {})
    if kind is MetricType.COUNTER:
        point += fixed64(2, time_ns)
    point += fixed64(3, time_ns)
    if type(value) is int and value in INT64:
        point += tag(6, 1) + struct.pack("<q", value)
    else:
        point += double(4, float(value))
    if kind is MetricType.COUNTER:
        data = length_delimited(
            7, length_delimited(1, point) + tag(2, 0) + varint(1) + tag(3, 0) + varint(1)
        )
    else:
        data = length_delimited(5, length_delimited(1, point))
    return length_delimited(2, text(1, name) + data)


def protobuf_log(
    time_ns: int, message: str, severity: LogSeverity, attributes: Mapping[Any, Any] | None
) -> bytes:
    """ScopeLogs.log_records (2) holding a LogRecord: time 1, severity_number 2,
    severity_text 3, body 5, observed time 11, attributes 6, trace_id 9, span_id 10."""
    record = (
        fixed64(1, time_ns)
        + tag(2, 0)
        + varint(severity.value)
        + text(3, severity.name)
        + length_delimited(5, pb_any(message if type(message) is str else str(message)))
        + fixed64(11, time_ns)
    )
    if attributes:
        record += pb_key_values(6, attributes)
        trace_id = hex_id(attributes.get("trace_id"), 32)
        span_id = hex_id(attributes.get("span_id"), 16)
        if trace_id:
            record += length_delimited(9, bytes.fromhex(trace_id))
        if span_id:
            record += length_delimited(10, bytes.fromhex(span_id))
    return length_delimited(2, record)
