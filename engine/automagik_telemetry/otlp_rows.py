"""OTLP rows in their wire form: one span, metric or log record, as it goes inside a request.

The writer makes them from the application's compact rows, batch by batch (``compact_rows.py``,
``OtlpSink.prepare``), or, with ``otlp_encode_in="caller"``, the application thread makes them
per track call. Two encodings, one per ``otlp_protocol``; each row is exactly what goes inside
the request's ``spans`` / ``metrics`` / ``logRecords`` list, so framing a batch is one envelope
around the rows (``sinks/otlp.py``).

* ``OtlpJsonRows`` (``http/json``): a JSON object per row, OTLP/JSON as the specification wants
  it: lowerCamelCase keys, trace ids as 32 and span ids as 16 hex characters, enums as integers,
  64-bit integers (times, ``intValue``, counts) as strings, non-finite doubles as ``"NaN"`` /
  ``"Infinity"`` / ``"-Infinity"``; then a newline (JSON escapes newlines inside strings, so a
  newline only ever ends a row, and ``\\n{`` only ever separates two). The row is joined by hand
  from constant pieces and cached ones; every string and double in it is encoded by msgspec (its
  escaping, its shortest float text), and the attributes as a list of msgspec structs in one
  ``encode`` call.
* ``OtlpProtobufRows`` (``http/protobuf``): the ``Span`` / ``Metric`` / ``LogRecord`` message,
  hand-encoded (tag bytes, varints, fixed64), as one length-delimited field 2 of its
  ``ScopeSpans`` / ``ScopeMetrics`` / ``ScopeLogs``: tag ``0x12``, varint length, message. No
  protobuf message object is built per row; the tests parse these bytes with the official
  ``opentelemetry-proto`` messages.

Caches: names (span and metric names, per encoder) and attribute keys (``_KEY_FIELDS``,
protobuf), the parts of a row that repeat and are small. The rule: bounded (cleared when they
reach ``_NAME_CACHE_LIMIT`` entries), keyed by exact str only (``1``, ``1.0`` and ``True`` are
equal keys, hashed alike, with different texts; a str subclass may have its own ``str()``), and
no key longer than ``_KEY_CACHE_MAX`` characters (no large text kept alive).

Attribute values are not cached, on measurement. A cache of whole ``KeyValue`` fragments,
keyed by ``(key, value, type(key), type(value))`` and looked up in C (``lru_cache(typed=True)``
and ``starmap``), encodes an event of 8 repeating attributes in ~2.2 µs instead of ~3.5 in a
loop that does nothing else; but in the client, between calls that also take the lock, read the
clock, copy the row into the ring and build the next attributes, its hits (a dict slot, a key
tuple, a fragment: long-lived objects) are cache misses, and the same encoder measured ~0.5 to
1 µs *slower* per call than encoding the values afresh, in the harness and in-process A/B runs,
with cold or freshly built attributes, with or without the ring. Values that do not repeat
(ids, durations) made it worse (an insert, then a cold free). Nor in the writer, where a batch's
rows go through one encoder in a tight loop: a per-key cache of whole fragments that stops
caching keys whose values do not repeat measured 4.2 -> 4.0 µs per span of the harness's events
(JSON) and 4.9 -> 4.7 (protobuf), not worth its code; a hit is still ~25 bytecodes here.
``tests/support/otlp_reference.py``, ``tests/unit/test_otlp_rows_property.py`` and
``tests/unit/test_compact_rows.py`` hold the rows to a straightforward encoder, byte for byte,
for any input.

Attribute values keep their type: ``str`` -> ``stringValue``, ``bool`` -> ``boolValue``, ``int``
-> ``intValue`` (an int outside int64 travels as its decimal text), ``float`` -> ``doubleValue``,
lists, tuples and sets -> ``arrayValue``, mappings -> ``kvlistValue``, ``bytes`` ->
``bytesValue``, ``None`` -> an empty value; anything else travels as its ``str()``.

What each call becomes:

* ``track_event``: a span of kind INTERNAL (1), start = end = the call's time, status UNSET.
* ``track_error``: the same with status ERROR (2) and the message, and the semantic conventions'
  ``exception`` event holding ``exception.type`` / ``exception.message`` /
  ``exception.stacktrace`` (taken out of the span's attributes; the others stay).
* ``track_metric``: a ``gauge`` point; a ``sum`` point (monotonic, temporality DELTA (1), start
  time = time); or a ``histogram`` point (count 1, sum = min = max = value, the bounds of
  ``records.HISTOGRAM_BOUNDS``, one-hot bucket counts, DELTA). Integers travel as ``asInt``.
* ``track_log``: a log record with ``severityNumber`` / ``severityText``, the message as a string
  ``body``, time = observed time; ``trace_id`` / ``span_id`` attributes that are valid hex ids are
  also set as the record's ids, so logs correlate with traces.

Ids: every span is the root of its own trace: a random 16-byte trace id and 8-byte span id,
given with the row (``ids``: drawn by the application thread, ``compact_rows.py``) or, when not
given, from a pool refilled from ``os.urandom`` every 4096 spans, laid out and split in C, ready
to copy (protobuf: both id fields; JSON: the row's start up to its name) (a fresh pool per
encoder, so a forked child, which builds its own encoder, never repeats its parent's ids).

Encoders are not thread-safe: the client calls them under its ring lock, the sink under its own.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import msgspec

from .__about__ import __version__
from .records import HISTOGRAM_BOUNDS, histogram_bucket
from .resource import Resource
from .schema import LogSeverity, MetricType

SCOPE_NAME: Final = "automagik-telemetry"
SCOPE_VERSION: Final = __version__
SPAN_KIND_INTERNAL: Final = 1
STATUS_CODE_ERROR: Final = 2
TEMPORALITY_DELTA: Final = 1
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_KEYS: Final = frozenset({"exception.type", "exception.message", "exception.stacktrace"})
IDS_PER_REFILL: Final = 4096
# Enum members as constants: ``MetricType.HISTOGRAM`` is a slow attribute lookup on a hot path
_HISTOGRAM: Final = MetricType.HISTOGRAM
_COUNTER: Final = MetricType.COUNTER

_INT64_LOW: Final = -(1 << 63)
_INT64_END: Final = 1 << 63
_UINT64_MASK: Final = (1 << 64) - 1
_NAME_CACHE_LIMIT: Final = 4096
_KEY_CACHE_MAX: Final = 64  # longer keys are not cached (no large text kept alive)

_pack_u64 = struct.Struct("<Q").pack
_pack_i64 = struct.Struct("<q").pack
_pack_f64 = struct.Struct("<d").pack

# OpenTelemetry's host.arch values, from platform.machine().
_ARCH: Final = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "x86",
    "i686": "x86",
    "x86": "x86",
    "armv7l": "arm32",
    "ppc64le": "ppc64",
    "ppc64": "ppc64",
    "s390x": "s390x",
}


def resource_attributes(resource: Resource) -> dict[str, Any]:
    """The attributes of the OTLP ``Resource``, sent once per request."""
    attributes: dict[str, Any] = {
        "service.name": resource.service_name,
        "service.version": resource.service_version,
    }
    if resource.organization:
        attributes["service.organization"] = resource.organization
    arch = resource.architecture.lower()
    attributes.update(
        {
            "deployment.environment": resource.environment,
            "telemetry.sdk.name": resource.sdk_name,
            "telemetry.sdk.version": resource.sdk_version,
            "telemetry.sdk.language": "python",
            "host.name": resource.hostname,
            "host.arch": _ARCH.get(arch, arch),
            "os.type": resource.os_type,
            "os.version": resource.os_version,
            "process.pid": resource.process_pid,
            "process.runtime.name": resource.runtime_name,
            "process.runtime.version": resource.runtime_version,
            "user.id": resource.user_id,
            "session.id": resource.session_id,
        }
    )
    return attributes


# --- protobuf primitives --------------------------------------------------------------------


def _varint_slow(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS: Final = tuple(_varint_slow(n) for n in range(2048))


def varint(value: int) -> bytes:
    """An unsigned varint (negative int64 values as their 64-bit two's complement)."""
    if 0 <= value < 2048:
        return _SMALL_VARINTS[value]
    return _varint_slow(value & _UINT64_MASK)


def delimited(tag: bytes, payload: bytes | bytearray) -> bytes:
    """A length-delimited field: tag, varint length, payload."""
    n = len(payload)
    return tag + (_SMALL_VARINTS[n] if n < 2048 else _varint_slow(n)) + payload


def _pb_text(tag: bytes, text: str) -> bytes:
    data = text.encode("utf-8", "replace")
    return delimited(tag, data)


def pb_any(value: Any) -> bytes:
    """An ``AnyValue`` message."""
    t = type(value)
    if t is str:
        data: bytes = value.encode("utf-8", "replace")
        n = len(data)
        return b"\x0a" + (_SMALL_VARINTS[n] if n < 2048 else _varint_slow(n)) + data
    if t is int:
        if _INT64_LOW <= value < _INT64_END:
            return b"\x18" + varint(value)
        return _pb_text(b"\x0a", str(value))
    if t is float:
        return b"\x21" + _pack_f64(value)
    if t is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    return _pb_any_other(value)


def _pb_any_other(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return pb_any(int(value))
    if isinstance(value, float):
        return pb_any(float(value))
    if isinstance(value, str):
        return pb_any(str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return delimited(b"\x3a", bytes(value))
    if isinstance(value, Mapping):
        return delimited(b"\x32", pb_attributes(value, b"\x0a"))
    if isinstance(value, list | tuple | set | frozenset):
        values = bytearray()
        for item in value:
            values += delimited(b"\x0a", pb_any(item))
        return delimited(b"\x2a", values)
    return pb_any(str(value))


_KEY_FIELDS: dict[str, bytes] = {}


def _key_field(key: Any) -> bytes:
    """``KeyValue.key`` (field 1) followed by the tag of ``KeyValue.value`` (field 2). Only
    str keys are cached: ``1``, ``1.0`` and ``True`` are equal keys with different texts."""
    if type(key) is not str:
        return _pb_text(b"\x0a", str(key)) + b"\x12"
    field = _pb_text(b"\x0a", key) + b"\x12"
    if len(key) <= _KEY_CACHE_MAX:
        if len(_KEY_FIELDS) >= _NAME_CACHE_LIMIT:
            _KEY_FIELDS.clear()
        _KEY_FIELDS[key] = field
    return field


def pb_attributes(attributes: Mapping[Any, Any], tag: bytes) -> bytes:
    """Repeated ``KeyValue`` fields (field ``tag``) for every item of ``attributes``."""
    parts: list[bytes] = []
    pb_key_values(parts, attributes, tag)
    return b"".join(parts)


def pb_key_values(parts: list[bytes], attributes: Mapping[Any, Any], tag: bytes) -> None:
    """Append the pieces of repeated ``KeyValue`` fields (field ``tag``) to ``parts`` (joined
    once by the caller: one copy for the whole message); the common value types inline."""
    keys = _KEY_FIELDS
    small = _SMALL_VARINTS
    for key, value in attributes.items():
        k = (keys.get(key) if type(key) is str else None) or _key_field(key)
        t = type(value)
        if t is str:
            data = value.encode("utf-8", "replace")
            n = len(data)
            if n < 125 and len(k) < 1900:  # every length below fits the small-varint table
                parts += (tag, small[len(k) + n + 3], k, small[n + 2], b"\x0a", small[n], data)
                continue
            av = b"\x0a" + varint(n) + data
        elif t is int and _INT64_LOW <= value < _INT64_END:
            av = b"\x18" + varint(value)
        elif t is bool:
            av = b"\x10\x01" if value else b"\x10\x00"
        elif t is float:
            av = b"\x21" + _pack_f64(value)
        else:
            av = pb_any(value)
        n = len(av)
        vn = small[n] if n < 2048 else _varint_slow(n)
        m = len(k) + len(vn) + n
        parts += (tag, small[m] if m < 2048 else _varint_slow(m), k, vn, av)


def protobuf_resource(resource: Resource) -> bytes:
    """The ``Resource`` message."""
    return pb_attributes(resource_attributes(resource), b"\x0a")


def protobuf_scope() -> bytes:
    """The ``InstrumentationScope`` message."""
    return _pb_text(b"\x0a", SCOPE_NAME) + _pb_text(b"\x12", SCOPE_VERSION)


_PB_ID_SIZE: Final = 28
_PB_ID_SPLIT: Final = struct.Struct(f"{_PB_ID_SIZE}s" * IDS_PER_REFILL).unpack


def _protobuf_ids() -> Iterator[bytes]:
    """Span id fields, ready to copy: ``trace_id`` (field 1, 16 bytes) then ``span_id``
    (field 2, 8 bytes), 28 bytes per span, laid out in C by strided slice assignment and
    split in C by one ``struct`` unpack."""
    n = IDS_PER_REFILL
    random = os.urandom(24 * n)
    pool = bytearray(_PB_ID_SIZE * n)
    pool[0::28] = b"\x0a" * n
    pool[1::28] = b"\x10" * n
    pool[18::28] = b"\x12" * n
    pool[19::28] = b"\x08" * n
    for j in range(16):
        pool[2 + j :: 28] = random[j::24]
    for j in range(8):
        pool[20 + j :: 28] = random[16 + j :: 24]
    return iter(_PB_ID_SPLIT(pool))


class OtlpProtobufRows:
    """Rows for ``otlp_protocol="http/protobuf"``: one length-delimited protobuf field each."""

    def __init__(self) -> None:
        self._next_ids: Callable[[], bytes] = _protobuf_ids().__next__
        self._span_names: dict[str, bytes] = {}
        self._metric_names: dict[str, bytes] = {}

    def _ids(self) -> bytes:
        """The next ids, from a fresh pool (the current one is spent)."""
        self._next_ids = _protobuf_ids().__next__
        return self._next_ids()

    @staticmethod
    def _name(cache: dict[str, bytes], tag: bytes, name: str) -> bytes:
        """A name field, cached (event and metric names repeat)."""
        cached = cache.get(name)
        if cached is None:
            if len(cache) >= _NAME_CACHE_LIMIT:
                cache.clear()
            cached = cache[name] = _pb_text(tag, name)
        return cached

    def span(
        self,
        time_ns: int,
        name: str,
        attributes: Mapping[str, Any] | None,
        error: str | None,
        ids: bytes | None = None,
    ) -> bytes:
        """``ids``: 24 bytes, trace id then span id (``compact_rows``); random when None."""
        if ids is not None:
            ids = b"\x0a\x10" + ids[:16] + b"\x12\x08" + ids[16:]
        else:
            try:
                ids = self._next_ids()
            except StopIteration:
                ids = self._ids()
        ts = _pack_u64(time_ns)
        name_field = self._span_names.get(name) or self._name(self._span_names, b"\x2a", name)
        # trace_id, span_id, name, kind INTERNAL, start_time_unix_nano, end_time_unix_nano
        parts = [ids, name_field, b"\x30\x01\x39", ts, b"\x41", ts]
        if error is None:
            if attributes:
                pb_key_values(parts, attributes, b"\x4a")
            span = b"".join(parts)
            n = len(span)
            return b"\x12" + (_SMALL_VARINTS[n] if n < 2048 else _varint_slow(n)) + span
        span_attributes: dict[Any, Any] = {}
        exception: dict[str, Any] = {}
        for key, value in (attributes or {}).items():
            (exception if key in EXCEPTION_KEYS else span_attributes)[key] = value
        pb_key_values(parts, span_attributes, b"\x4a")
        event = b"\x09" + ts + b"\x12\x09exception" + pb_attributes(exception, b"\x1a")
        parts.append(delimited(b"\x5a", event))  # events
        parts.append(delimited(b"\x7a", _pb_text(b"\x12", error) + b"\x18\x02"))  # status ERROR
        return delimited(b"\x12", b"".join(parts))

    def metric(
        self,
        time_ns: int,
        name: str,
        value: float,
        kind: MetricType,
        attributes: Mapping[str, Any] | None,
    ) -> bytes:
        ts = _pack_u64(time_ns)
        parts: list[bytes] = []
        small = _SMALL_VARINTS
        if kind is _HISTOGRAM:
            if attributes:
                pb_key_values(parts, attributes, b"\x4a")
            number = float(value)
            packed = _pack_f64(number)
            # start, time, count 1, sum, bucket_counts, explicit_bounds, min, max
            parts += (
                b"\x11", ts, b"\x19", ts, _PB_COUNT_ONE, b"\x29", packed,
                _PB_BUCKETS[histogram_bucket(number)], _PB_BOUNDS, b"\x59", packed, b"\x61", packed,
            )  # fmt: skip
            tag, tail = b"\x4a", b"\x10\x01"  # histogram, temporality DELTA
        else:
            if attributes:
                pb_key_values(parts, attributes, b"\x3a")
            if kind is _COUNTER:
                parts += (b"\x11", ts)
                tag, tail = b"\x3a", b"\x10\x01\x18\x01"  # sum, temporality DELTA, monotonic
            else:
                tag, tail = b"\x2a", b""  # gauge
            parts += (b"\x19", ts)
            if type(value) is int and _INT64_LOW <= value < _INT64_END:
                parts += (b"\x31", _pack_i64(value))
            else:
                parts += (b"\x21", _pack_f64(float(value)))
        # Metric { name, <tag> { data_points (1) { point }, tail } }: the lengths computed
        # here, one copy of the point
        point = b"".join(parts)
        n = len(point)
        n_varint = small[n] if n < 2048 else _varint_slow(n)
        m = 1 + len(n_varint) + n + len(tail)
        m_varint = small[m] if m < 2048 else _varint_slow(m)
        names = self._metric_names
        name_field = names.get(name) or self._name(names, b"\x0a", name)
        total = len(name_field) + 1 + len(m_varint) + m
        return b"".join((
            b"\x12", small[total] if total < 2048 else _varint_slow(total), name_field,
            tag, m_varint, b"\x0a", n_varint, point, tail,
        ))  # fmt: skip

    def log(
        self,
        time_ns: int,
        message: str,
        severity: LogSeverity,
        attributes: Mapping[str, Any] | None,
    ) -> bytes:
        ts = _pack_u64(time_ns)
        data = (message if type(message) is str else str(message)).encode("utf-8", "replace")
        n = len(data)
        # time_unix_nano, severity_number + severity_text, body, observed_time_unix_nano
        parts = [b"\x09", ts, _PB_SEVERITY[severity._name_]]
        if n < 125:  # the body's two lengths fit one byte each
            parts += (b"\x2a", _SMALL_VARINTS[n + 2], b"\x0a", _SMALL_VARINTS[n], data)
        else:
            parts.append(delimited(b"\x2a", b"\x0a" + varint(n) + data))
        parts += (b"\x59", ts)
        if attributes:
            pb_key_values(parts, attributes, b"\x32")
            if "trace_id" in attributes or "span_id" in attributes:
                trace_id, span_id = log_ids(attributes)
                if trace_id:
                    parts += (b"\x4a\x10", bytes.fromhex(trace_id))
                if span_id:
                    parts += (b"\x52\x08", bytes.fromhex(span_id))
        row = b"".join(parts)
        n = len(row)
        return b"\x12" + (_SMALL_VARINTS[n] if n < 2048 else _varint_slow(n)) + row


_PB_COUNT_ONE: Final = b"\x21" + _pack_u64(1)
_PB_BUCKETS: Final = tuple(
    delimited(b"\x32", b"".join(_pack_u64(c) for c in counts))
    for counts in (
        tuple(1 if i == j else 0 for i in range(len(HISTOGRAM_BOUNDS) + 1))
        for j in range(len(HISTOGRAM_BOUNDS) + 1)
    )
)
_PB_BOUNDS: Final = delimited(b"\x3a", b"".join(_pack_f64(b) for b in HISTOGRAM_BOUNDS))
# keyed by name: an Enum member's own hash is a Python method (slow on a hot path)
_PB_SEVERITY: Final = {
    level.name: b"\x10" + varint(level.value) + _pb_text(b"\x1a", level.name)
    for level in LogSeverity
}


def log_ids(attributes: Mapping[str, Any]) -> tuple[str, str]:
    """(trace id, span id) as lower-case hex from ``trace_id`` / ``span_id`` attributes that
    hold valid ids; ``""`` for those that do not."""
    get = attributes.get
    return _hex_id(get("trace_id"), 32), _hex_id(get("span_id"), 16)


def _hex_id(value: Any, digits: int) -> str:
    if type(value) is not str or len(value) != digits:
        return ""
    if value.strip(_HEX_DIGITS) or not value.strip("0"):
        return ""  # not all hex digits, or all zeros (an invalid id)
    return value.lower()


_HEX_DIGITS: Final = "0123456789abcdefABCDEF"


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
        return _Int(str(value)) if _INT64_LOW <= value < _INT64_END else _Str(str(value))
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
        elif t is int and _INT64_LOW <= value < _INT64_END:
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
        if len(cache) >= _NAME_CACHE_LIMIT:
            cache.clear()
        text = cache[name] = _json_encode(name) + b',"kind":1,"startTimeUnixNano":"'
        return text

    def _name(self, name: str) -> bytes:
        cache = self._names
        if len(cache) >= _NAME_CACHE_LIMIT:
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
        """``ids``: 24 bytes, trace id then span id (``compact_rows``); random when None."""
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
            if kind is _HISTOGRAM:
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
            if type(value) is int and _INT64_LOW <= value < _INT64_END:
                number_text = b'","asInt":"%d"' % value
            else:
                number_text = b'","asDouble":' + _json_encode(json_double(float(value)))
            if kind is _COUNTER:
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


def scrub(value: Any) -> Any:
    """``value`` with every string (keys too) made encodable as UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, Mapping):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(item) for item in value]
    return value
