"""OTLP/protobuf wire rows (``http/protobuf``); see ``otlp_common`` for what each call becomes."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

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
    UINT64_MASK,
    log_ids,
    resource_attributes,
)

_pack_u64 = struct.Struct("<Q").pack
_pack_i64 = struct.Struct("<q").pack
_pack_f64 = struct.Struct("<d").pack

_KEY_CACHE_MAX: Final = 64  # longer keys are not cached (no large text kept alive)


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
    return _varint_slow(value & UINT64_MASK)


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
        if INT64_LOW <= value < INT64_END:
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
        if len(_KEY_FIELDS) >= NAME_CACHE_LIMIT:
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
        elif t is int and INT64_LOW <= value < INT64_END:
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
            if len(cache) >= NAME_CACHE_LIMIT:
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
        """``ids``: 24 bytes, trace id then span id (``rows.compact``); random when None."""
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
        if kind is HISTOGRAM:
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
            if kind is COUNTER:
                parts += (b"\x11", ts)
                tag, tail = b"\x3a", b"\x10\x01\x18\x01"  # sum, temporality DELTA, monotonic
            else:
                tag, tail = b"\x2a", b""  # gauge
            parts += (b"\x19", ts)
            if type(value) is int and INT64_LOW <= value < INT64_END:
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
