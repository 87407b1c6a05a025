"""OTLP rows in their wire form: one span, metric or log record, as it goes inside a request.

The writer makes them from the application's compact rows, batch by batch (``compact.py``,
``OtlpSink.prepare``), or, with ``otlp_encode_in="caller"``, the application thread makes them
per track call. Two encodings, one per ``otlp_protocol``; each row is exactly what goes inside
the request's ``spans`` / ``metrics`` / ``logRecords`` list, so framing a batch is one envelope
around the rows (``sinks/otlp/sink.py``).

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
reach ``NAME_CACHE_LIMIT`` entries), keyed by exact str only (``1``, ``1.0`` and ``True`` are
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
  ``rows.clickhouse.HISTOGRAM_BOUNDS``, one-hot bucket counts, DELTA). Integers travel as ``asInt``.
* ``track_log``: a log record with ``severityNumber`` / ``severityText``, the message as a string
  ``body``, time = observed time; ``trace_id`` / ``span_id`` attributes that are valid hex ids are
  also set as the record's ids, so logs correlate with traces.

Ids: every span is the root of its own trace: a random 16-byte trace id and 8-byte span id,
given with the row (``ids``: drawn by the application thread, ``compact.py``) or, when not
given, from a pool refilled from ``os.urandom`` every 4096 spans, laid out and split in C, ready
to copy (protobuf: both id fields; JSON: the row's start up to its name) (a fresh pool per
encoder, so a forked child, which builds its own encoder, never repeats its parent's ids).

Encoders are not thread-safe: the client calls them under its ring lock, the sink under its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..__about__ import __version__
from ..resource import Resource
from ..schema import MetricType

SCOPE_NAME: Final = "automagik-telemetry"
SCOPE_VERSION: Final = __version__
SPAN_KIND_INTERNAL: Final = 1
STATUS_CODE_ERROR: Final = 2
TEMPORALITY_DELTA: Final = 1
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_KEYS: Final = frozenset({"exception.type", "exception.message", "exception.stacktrace"})
IDS_PER_REFILL: Final = 4096
# Enum members as constants: ``MetricType.HISTOGRAM`` is a slow attribute lookup on a hot path
HISTOGRAM: Final = MetricType.HISTOGRAM
COUNTER: Final = MetricType.COUNTER

INT64_LOW: Final = -(1 << 63)
INT64_END: Final = 1 << 63
UINT64_MASK: Final = (1 << 64) - 1
NAME_CACHE_LIMIT: Final = 4096

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


def scrub(value: Any) -> Any:
    """``value`` with every string (keys too) made encodable as UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, Mapping):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(item) for item in value]
    return value
