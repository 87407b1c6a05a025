"""OTLP/JSON wire rows (``http/json``); see ``otlp_common`` for what each call becomes."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import msgspec

from ..resource import Resource
from ..schema import LogSeverity, MetricType
from .clickhouse import HISTOGRAM_BOUNDS, histogram_bucket
from .otlp_common import (
    COUNTER,
    EXCEPTION_KEYS,
    HISTOGRAM,
    IDS_PER_REFILL,
    INT64_END,
    INT64_LOW,
    NAME_CACHE_LIMIT,
    SCOPE_NAME,
    SCOPE_VERSION,
    log_ids,
    resource_attributes,
    scrub,
)

# --- JSON -----------------------------------------------------------------------------------


class _Str(msgspec.Struct, gc=False, rename="camel"):
    string_value: str


class _Bool(msgspec.Struct, gc=False, rename="camel"):
    bool_value: bool


class _Int(msgspec.Struct, gc=False, rename="camel"):
    int_value: str


class _Double(msgspec.Struct, gc=False, rename="camel"):
    double_value: float | str


class _Bytes(msgspec.Struct, gc=False, rename="camel"):
    bytes_value: bytes


class _Values(msgspec.Struct, gc=False):
    values: Sequence[Any]


class _Array(msgspec.Struct, gc=False, rename="camel"):
    array_value: _Values


class _KvList(msgspec.Struct, gc=False, rename="camel"):
    kvlist_value: _Values


class _Empty(msgspec.Struct, gc=False):
    pass


class _KeyValue(msgspec.Struct, gc=False):
    key: str
    value: Any


_TRUE: Final = _Bool(True)
_FALSE: Final = _Bool(False)
_EMPTY: Final = _Empty()


def json_double(value: float) -> float | str:
    """A double as OTLP/JSON carries it: non-finite values as proto3 JSON's strings."""
    if value - value == 0.0:
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def json_any(value: Any) -> Any:
    """An ``AnyValue`` object for msgspec to encode."""
    t = type(value)
    if t is str:
        return _Str(value)
    if t is int:
        return _Int(str(value)) if INT64_LOW <= value < INT64_END else _Str(str(value))
    if t is float:
        return _Double(value if value - value == 0.0 else json_double(value))
    if t is bool:
        return _TRUE if value else _FALSE
    return _json_any_other(value)


def _json_any_other(value: Any) -> Any:
    if value is None:
        return _EMPTY
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        return json_any(int(value))
    if isinstance(value, float):
        return json_any(float(value))
    if isinstance(value, str):
        return _Str(str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return _Bytes(bytes(value))
    if isinstance(value, Mapping):
        return _KvList(_Values(json_attributes(value)))
    if isinstance(value, list | tuple | set | frozenset):
        return _Array(_Values([json_any(item) for item in value]))
    return _Str(str(value))


def json_attributes(attributes: Mapping[Any, Any]) -> list[_KeyValue]:
    """``KeyValue`` objects for msgspec to encode; ``json_any`` inlined for the common types:
    one Python call less per attribute, which is most of an event's cost."""
    out: list[_KeyValue] = []
    append = out.append
    for key, value in attributes.items():
        t = type(value)
        if t is str:
            wrapped: Any = _Str(value)
        elif t is bool:
            wrapped = _TRUE if value else _FALSE
        elif t is int and INT64_LOW <= value < INT64_END:
            wrapped = _Int(str(value))
        elif t is float and value - value == 0.0:
            wrapped = _Double(value)
        else:
            wrapped = json_any(value)
        append(_KeyValue(key if type(key) is str else str(key), wrapped))
    return out


def _json_fallback(obj: Any) -> Any:
    return str(obj)


# One encoder for every JSON piece; ``encode`` keeps no state between calls (thread-safe).
# The hook gives str subclasses (and anything else msgspec does not take) their ``str()``.
_json_encode: Final = msgspec.json.Encoder(enc_hook=_json_fallback).encode
_JSON_BUCKETS: Final = tuple(
    msgspec.json.encode([str(int(i == j)) for i in range(len(HISTOGRAM_BOUNDS) + 1)])
    for j in range(len(HISTOGRAM_BOUNDS) + 1)
)
_JSON_BOUNDS: Final = msgspec.json.encode(list(HISTOGRAM_BOUNDS))
_JSON_SEVERITY: Final = {  # keyed by name, as _PB_SEVERITY
    level.name: b'","severityNumber":%d,"severityText":"%s","body":{"stringValue":'
    % (level.value, level.name.encode())
    for level in LogSeverity
}
_JSON_ID_HEAD: Final = (b'{"traceId":"', b'","spanId":"', b'","name":')
_JSON_ID_SIZE: Final = sum(map(len, _JSON_ID_HEAD)) + 48
_JSON_ID_SPLIT: Final = struct.Struct(f"{_JSON_ID_SIZE}s" * IDS_PER_REFILL).unpack


def _json_ids() -> Iterator[bytes]:
    """The start of a span up to its name, with its random ids as hex:
    ``{"traceId":"<32 hex>","spanId":"<16 hex>","name":``, laid out in C by strided slice
    assignment and split in C by one ``struct`` unpack."""
    n = IDS_PER_REFILL
    size = _JSON_ID_SIZE
    digits = os.urandom(24 * n).hex().encode("ascii")  # 48 per span: trace id, span id
    pool = bytearray(size * n)
    at = 0
    for text, hex_from, hex_count in zip(_JSON_ID_HEAD, (0, 32, 0), (32, 16, 0), strict=True):
        for byte in text:
            pool[at::size] = bytes((byte,)) * n
            at += 1
        for j in range(hex_from, hex_from + hex_count):
            pool[at::size] = digits[j::48]
            at += 1
    return iter(_JSON_ID_SPLIT(pool))


def json_resource(resource: Resource) -> bytes:
    """The ``resource`` object of OTLP/JSON."""
    return msgspec.json.encode({"attributes": json_attributes(resource_attributes(resource))})


def json_scope() -> bytes:
    """The ``scope`` object of OTLP/JSON."""
    return msgspec.json.encode({"name": SCOPE_NAME, "version": SCOPE_VERSION})


class OtlpJsonRows:
    """Rows for ``otlp_protocol="http/json"``: one OTLP/JSON object each, then a newline."""

    def __init__(self) -> None:
        self._next_ids: Callable[[], bytes] = _json_ids().__next__
        self._span_names: dict[str, bytes] = {}  # name -> "name","kind":1,"startTimeUnixNano":"
        self._names: dict[str, bytes] = {}  # metric name -> its JSON text
        self._scrubbing = False

    def _ids(self) -> bytes:
        """The next ids, from a fresh pool (the current one is spent)."""
        self._next_ids = _json_ids().__next__
        return self._next_ids()

    def _span_name(self, name: str) -> bytes:
        cache = self._span_names
        if len(cache) >= NAME_CACHE_LIMIT:
            cache.clear()
        text = cache[name] = _json_encode(name) + b',"kind":1,"startTimeUnixNano":"'
        return text

    def _name(self, name: str) -> bytes:
        cache = self._names
        if len(cache) >= NAME_CACHE_LIMIT:
            cache.clear()
        text = cache[name] = _json_encode(name)
        return text

    def span(
        self,
        time_ns: int,
        name: str,
        attributes: Mapping[str, Any] | None,
        error: str | None,
        ids: bytes | None = None,
    ) -> bytes:
        """``ids``: 24 bytes, trace id then span id (``rows.compact``); random when None."""
        raw_ids = ids
        if ids is not None:
            digits = ids.hex().encode()
            ids = b'{"traceId":"%b","spanId":"%b","name":' % (digits[:32], digits[32:])
        else:
            try:
                ids = self._next_ids()
            except StopIteration:
                ids = self._ids()
        ts = b"%d" % time_ns
        try:
            head = self._span_names.get(name) or self._span_name(name)
            if error is None:
                if attributes:
                    return b"".join((
                        ids, head, ts, b'","endTimeUnixNano":"', ts, b'","attributes":',
                        _json_encode(json_attributes(attributes)), b"}\n",
                    ))  # fmt: skip
                return b"".join((ids, head, ts, b'","endTimeUnixNano":"', ts, b'"}\n'))
            span_attributes: dict[Any, Any] = {}
            exception: dict[str, Any] = {}
            for key, value in (attributes or {}).items():
                (exception if key in EXCEPTION_KEYS else span_attributes)[key] = value
            return b"".join((
                ids, head, ts, b'","endTimeUnixNano":"', ts, b'","attributes":',
                _json_encode(json_attributes(span_attributes)),
                b',"events":[{"timeUnixNano":"', ts, b'","name":"exception","attributes":',
                _json_encode(json_attributes(exception)),
                b'}],"status":{"message":', _json_encode(error), b',"code":2}}\n',
            ))  # fmt: skip
        except UnicodeEncodeError:  # a lone surrogate somewhere: rare, so handled here
            return self._scrubbed(self.span, time_ns, name, attributes, error, raw_ids)

    def metric(
        self,
        time_ns: int,
        name: str,
        value: float,
        kind: MetricType,
        attributes: Mapping[str, Any] | None,
    ) -> bytes:
        ts = b"%d" % time_ns
        try:
            name_text = self._names.get(name) or self._name(name)
            end = (
                b',"attributes":' + _json_encode(json_attributes(attributes)) if attributes else b""
            )
            if kind is HISTOGRAM:
                number = float(value)
                as_json = _json_encode(json_double(number))
                # start, time, count, sum, bucket counts, bounds, min, max, attributes
                return b"".join((
                    b'{"name":', name_text, b',"histogram":{"dataPoints":[{"startTimeUnixNano":"',
                    ts, b'","timeUnixNano":"', ts, b'","count":"1","sum":', as_json,
                    b',"bucketCounts":', _JSON_BUCKETS[histogram_bucket(number)],
                    b',"explicitBounds":', _JSON_BOUNDS, b',"min":', as_json, b',"max":', as_json,
                    end, b'}],"aggregationTemporality":1}}\n',
                ))  # fmt: skip
            if type(value) is int and INT64_LOW <= value < INT64_END:
                number_text = b'","asInt":"%d"' % value
            else:
                number_text = b'","asDouble":' + _json_encode(json_double(float(value)))
            if kind is COUNTER:
                return b"".join((
                    b'{"name":', name_text, b',"sum":{"dataPoints":[{"timeUnixNano":"', ts,
                    b'","startTimeUnixNano":"', ts, number_text, end,
                    b'}],"aggregationTemporality":1,"isMonotonic":true}}\n',
                ))  # fmt: skip
            return b"".join((
                b'{"name":', name_text, b',"gauge":{"dataPoints":[{"timeUnixNano":"', ts,
                number_text, end, b"}]}}\n",
            ))  # fmt: skip
        except UnicodeEncodeError:
            return self._scrubbed(self.metric, time_ns, name, value, kind, attributes)

    def log(
        self,
        time_ns: int,
        message: str,
        severity: LogSeverity,
        attributes: Mapping[str, Any] | None,
    ) -> bytes:
        ts = b"%d" % time_ns
        try:
            body = _json_encode(message if type(message) is str else str(message))
            head = (
                b'{"timeUnixNano":"', ts, b'","observedTimeUnixNano":"', ts,
                _JSON_SEVERITY[severity._name_], body,
            )  # fmt: skip
            if not attributes:
                return b"".join((*head, b"}}\n"))
            listed = _json_encode(json_attributes(attributes))
            if "trace_id" not in attributes and "span_id" not in attributes:
                return b"".join((*head, b'},"attributes":', listed, b"}\n"))
            parts = [*head, b'},"attributes":', listed]
            trace_id, span_id = log_ids(attributes)
            if trace_id:
                parts += (b',"traceId":"', trace_id.encode(), b'"')
            if span_id:
                parts += (b',"spanId":"', span_id.encode(), b'"')
            parts.append(b"}\n")
            return b"".join(parts)
        except UnicodeEncodeError:
            return self._scrubbed(self.log, time_ns, message, severity, attributes)

    def _scrubbed(self, method: Any, *args: Any) -> bytes:
        """Encode again with lone surrogates replaced by "?" (as the protobuf rows do), once."""
        if self._scrubbing:
            raise ValueError("a value's text cannot be encoded as UTF-8")
        self._scrubbing = True
        try:
            row: bytes = method(*(scrub(arg) for arg in args))
            return row
        finally:
            self._scrubbing = False
