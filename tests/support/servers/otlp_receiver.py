"""A real OTLP/HTTP receiver on loopback, for tests and benchmarks.

:class:`OtlpReceiver` is a :class:`http.server.ThreadingHTTPServer` (HTTP/1.1, keep-alive, every
answer carries ``Content-Length``) served from a background thread. It accepts
``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` and decodes every request with the official
``opentelemetry-proto`` messages (``ExportTraceServiceRequest``, ``ExportMetricsServiceRequest``,
``ExportLogsServiceRequest``), so a test sees exactly what a real collector would:

* ``Content-Type``: ``application/x-protobuf`` (``ParseFromString``) or ``application/json``
  (OTLP/JSON); anything else is answered 415.
* ``Content-Encoding``: ``gzip``, ``deflate`` or none (``identity``); anything else is answered
  415. A body (compressed or not) larger than ``max_body_bytes`` is answered 413.
* OTLP/JSON is checked against the spec before ``google.protobuf.json_format`` sees it, because
  ``json_format`` alone is too lenient: keys must be lowerCamelCase (a key containing ``_`` is an
  error), enum fields (``kind``, ``status.code``, ``severityNumber``,
  ``aggregationTemporality``...) must be integers, and the ``traceId`` / ``spanId`` /
  ``parentSpanId`` of spans, span links, log records and exemplars must be hex strings (32/16
  hex characters, converted to bytes here; ``json_format`` would read them as base64). Unknown
  fields and duplicate keys are errors.
* With ``validate=True`` (the default) decoded messages are also checked for what neither
  decoder catches: unknown protobuf fields (a client using wrong field numbers), spans and links
  without a valid 16-byte trace id / 8-byte span id (missing, wrong length or all zero), and
  wrong-length optional ids (parent span, log records, exemplars). ``validate=False`` skips that
  walk.
* With ``counting=True`` the receiver only counts, fast enough not to be what a throughput
  benchmark measures (the harness behind ``automagik-telemetry bench`` uses it): protobuf bodies
  are decoded with ``ParseFromString`` (in C), JSON bodies with :func:`json.loads` (in C), the
  spans, metric data points and log records are counted (:attr:`ReceivedRequest.items`), and the
  message is not kept (:attr:`ReceivedRequest.message` is None). Nothing is checked against the
  spec: ``google.protobuf.json_format`` (pure Python) decodes ~1,500 spans per second, so a run
  against the strict mode measures the receiver. Correctness is the strict mode's job.

``keep_span_names="probe."`` keeps, in :attr:`ReceivedRequest.span_names`, the names of the spans
that start with that prefix (in either mode), so that a benchmark can see when a marked span
arrived.

A request that cannot be decoded is answered 400 (body: a ``google.rpc.Status`` in the request's
encoding) and described in :attr:`OtlpReceiver.errors`. A decoded request is answered with the
next scripted :class:`Response` (see :meth:`OtlpReceiver.script`) or, when none is queued, 200
with the empty ``Export*ServiceResponse`` in the request's encoding; it is recorded as a
:class:`ReceivedRequest` in :attr:`OtlpReceiver.requests` when the answer is 2xx, in
:attr:`OtlpReceiver.rejected_requests` otherwise. Protocol errors (400/404/405/411/413/415) never
consume a scripted response.

Run ``python -m tests.support.servers.otlp_receiver [--port N] [--count]`` from the checkout's
root to keep a receiver in the foreground, printing what it got every few seconds, until Ctrl-C.

Needs the ``otlp-proto`` extra (``opentelemetry-proto`` and ``protobuf``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, TypeAlias, get_args

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
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
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "SIGNALS",
    "ExportRequest",
    "OtlpReceiver",
    "ReceivedRequest",
    "Response",
    "Signal",
    "main",
]

_log = logging.getLogger(__name__)

Signal: TypeAlias = Literal["traces", "metrics", "logs"]
"""The three OTLP signals, as they appear in the ``/v1/<signal>`` paths."""

SIGNALS: Final[tuple[Signal, ...]] = get_args(Signal)

ExportRequest: TypeAlias = (
    ExportTraceServiceRequest | ExportMetricsServiceRequest | ExportLogsServiceRequest
)
"""A decoded request body: one of the three official ``Export*ServiceRequest`` messages."""

DEFAULT_MAX_BODY_BYTES: Final = 16 * 1024 * 1024

_JSON: Final = "application/json"
_PROTOBUF: Final = "application/x-protobuf"
_ENCODINGS: Final = frozenset({"", "identity", "gzip", "deflate"})

_REQUEST_TYPES: Final[dict[Signal, type[ExportRequest]]] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_PATHS: Final[dict[str, Signal]] = {f"/v1/{signal}": signal for signal in SIGNALS}

# OTLP/JSON: bytes fields that hold trace/span ids are hex strings, not base64. Keyed by the full
# protobuf message name, then by field name: the id length in bytes.
_HEX_ID_FIELDS: Final[dict[str, dict[str, int]]] = {
    "opentelemetry.proto.trace.v1.Span": {"trace_id": 16, "span_id": 8, "parent_span_id": 8},
    "opentelemetry.proto.trace.v1.Span.Link": {"trace_id": 16, "span_id": 8},
    "opentelemetry.proto.logs.v1.LogRecord": {"trace_id": 16, "span_id": 8},
    "opentelemetry.proto.metrics.v1.Exemplar": {"trace_id": 16, "span_id": 8},
}
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]*")

# google.rpc.Code values for the Status message carried by error answers.
_RPC_CODES: Final[dict[int, int]] = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    408: 4,  # DEADLINE_EXCEEDED
    413: 8,  # RESOURCE_EXHAUSTED
    429: 8,  # RESOURCE_EXHAUSTED
    500: 13,  # INTERNAL
    501: 12,  # UNIMPLEMENTED
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE
    504: 4,  # DEADLINE_EXCEEDED
}


# --- public records -------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """One scripted answer, consumed by one decoded request (see :meth:`OtlpReceiver.script`).

    ``status``: the HTTP status. A 2xx answer counts the request as delivered; anything else
    records it in :attr:`OtlpReceiver.rejected_requests`.
    ``headers``: extra response headers (e.g. ``{"Retry-After": "1"}``).
    ``partial_success``: ``(rejected_count, error_message)`` to set ``partial_success`` in the
    ``Export*ServiceResponse`` (``rejected_spans`` / ``rejected_data_points`` /
    ``rejected_log_records`` according to the signal), encoded like the request.
    ``body``: raw response body, replacing the generated one (``content_type`` then names it).
    ``delay``: seconds to wait before answering (to exercise client timeouts).
    ``drop``: close the connection without answering (the request counts as rejected).
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    partial_success: tuple[int, str] | None = None
    body: bytes | None = None
    content_type: str | None = None
    delay: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class ReceivedRequest:
    """A decoded export request, as the receiver saw it.

    ``content_type`` is the media type without parameters (``application/json`` or
    ``application/x-protobuf``); ``content_encoding`` is ``""`` when the body was not compressed;
    ``raw_body_len`` is the length of the body on the wire (before decompression); ``headers``
    holds every request header with a lower-cased name; ``message`` is the decoded request (None
    in counting mode, which keeps none); ``received_at`` is a :func:`time.monotonic` timestamp;
    ``response_status`` is the HTTP status answered (0 for a dropped connection); ``items`` is the
    number of spans, metric data points or log records the request held; ``span_names`` holds the
    names of its spans that start with the receiver's ``keep_span_names`` prefix.
    """

    signal: Signal
    content_type: str
    content_encoding: str
    raw_body_len: int
    headers: dict[str, str]
    message: ExportRequest | None
    received_at: float
    response_status: int = 200
    items: int = 0
    span_names: tuple[str, ...] = ()


# --- decoding -------------------------------------------------------------------------------


class _RequestError(Exception):
    """A request that is answered with an error status and recorded in ``errors``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding``, refusing output larger than ``limit`` bytes (413)."""
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return _inflate(body, 16 + zlib.MAX_WBITS, limit, multi_member=True)
    try:  # HTTP "deflate" is the zlib format; some clients send raw deflate anyway.
        return _inflate(body, zlib.MAX_WBITS, limit, multi_member=False)
    except _RequestError as exc:
        if exc.status != 400:
            raise
        return _inflate(body, -zlib.MAX_WBITS, limit, multi_member=False)


def _inflate(body: bytes, wbits: int, limit: int, *, multi_member: bool) -> bytes:
    out = bytearray()
    data = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise _RequestError(400, f"corrupt compressed body: {exc}") from None
        if len(out) > limit:
            raise _RequestError(413, f"decompressed body larger than {limit} bytes")
        if not inflater.eof:
            raise _RequestError(400, "truncated compressed body")
        data = inflater.unused_data
        if not data:
            return bytes(out)
        if not multi_member:
            raise _RequestError(400, "trailing bytes after the compressed body")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _RequestError(400, f"duplicate JSON key {key!r}")
        result[key] = value
    return result


def _hex_id_to_base64(value: object, size: int, path: str) -> str:
    if not isinstance(value, str):
        raise _RequestError(400, f"{path}: id must be a hex string, got {type(value).__name__}")
    if value == "":
        return ""
    if len(value) != 2 * size or not _HEX_RE.fullmatch(value):
        raise _RequestError(
            400, f"{path}: id must be {2 * size} hex characters (OTLP/JSON), got {value!r}"
        )
    return base64.b64encode(binascii.unhexlify(value)).decode("ascii")


def _prepare_json(value: Any, descriptor: Any, path: str) -> Any:
    """Check one OTLP/JSON message against the spec and turn its hex ids into base64.

    Walks ``value`` alongside the protobuf ``descriptor``. Shapes that ``json_format`` rejects on
    its own (a list where a message is expected, unknown keys...) are passed through unchanged.
    """
    if not isinstance(value, dict):
        return value
    fields = {f.json_name: f for f in descriptor.fields}
    hex_ids = _HEX_ID_FIELDS.get(descriptor.full_name, {})
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}"
        if "_" in key:
            raise _RequestError(400, f"{where}: OTLP/JSON keys must be lowerCamelCase")
        fd = fields.get(key)
        if fd is None or item is None:
            out[key] = item
        elif fd.name in hex_ids:
            out[key] = _hex_id_to_base64(item, hex_ids[fd.name], where)
        elif fd.type == fd.TYPE_ENUM:
            for number in item if fd.is_repeated and isinstance(item, list) else [item]:
                if isinstance(number, bool) or not isinstance(number, int):
                    raise _RequestError(
                        400, f"{where}: OTLP/JSON enum values must be integers, got {number!r}"
                    )
            out[key] = item
        elif fd.type == fd.TYPE_MESSAGE:
            if fd.is_repeated and isinstance(item, list):
                out[key] = [
                    _prepare_json(element, fd.message_type, f"{where}[{index}]")
                    for index, element in enumerate(item)
                ]
            else:
                out[key] = _prepare_json(item, fd.message_type, where)
        else:
            out[key] = item
    return out


def _decode_json(body: bytes, message: ExportRequest) -> None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _RequestError(400, f"JSON body is not UTF-8: {exc}") from None
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except ValueError as exc:
        raise _RequestError(400, f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _RequestError(400, "the JSON body must be an object")
    prepared = _prepare_json(document, message.DESCRIPTOR, "$")
    try:
        json_format.ParseDict(prepared, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise _RequestError(400, f"JSON does not match {type(message).__name__}: {exc}") from None


def _decode_protobuf(body: bytes, message: ExportRequest) -> None:
    try:
        message.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise _RequestError(400, f"cannot decode {type(message).__name__}: {exc}") from None


# --- counting -------------------------------------------------------------------------------

_METRIC_KINDS: Final = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


def _count_message(message: ExportRequest, prefix: str | None) -> tuple[int, tuple[str, ...]]:
    """Spans, metric data points or log records in a decoded request, and the names of its
    spans that start with ``prefix``."""
    names: list[str] = []
    if isinstance(message, ExportTraceServiceRequest):
        n = 0
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                n += len(ss.spans)
                if prefix is not None:
                    names.extend(span.name for span in ss.spans if span.name.startswith(prefix))
        return n, tuple(names)
    if isinstance(message, ExportMetricsServiceRequest):
        n = 0
        for rm in message.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    n += len(getattr(metric, kind).data_points) if kind else 0
        return n, ()
    return sum(len(sl.log_records) for rl in message.resource_logs for sl in rl.scope_logs), ()


def _count_json(signal: Signal, body: bytes, prefix: str | None) -> tuple[int, tuple[str, ...]]:
    """:func:`_count_message` for an OTLP/JSON body, read with :func:`json.loads` only."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise _RequestError(400, f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _RequestError(400, "the JSON body must be an object")
    n = 0
    names: list[str] = []
    try:
        if signal == "traces":
            for rs in document.get("resourceSpans", ()):
                for ss in rs.get("scopeSpans", ()):
                    spans = ss.get("spans", ())
                    n += len(spans)
                    if prefix is not None:
                        names.extend(
                            s["name"] for s in spans if str(s.get("name", "")).startswith(prefix)
                        )
        elif signal == "metrics":
            for rm in document.get("resourceMetrics", ()):
                for sm in rm.get("scopeMetrics", ()):
                    for metric in sm.get("metrics", ()):
                        for kind in _METRIC_KINDS:
                            if kind in metric:
                                n += len(metric[kind].get("dataPoints", ()))
        else:
            for rl in document.get("resourceLogs", ()):
                for sl in rl.get("scopeLogs", ()):
                    n += len(sl.get("logRecords", ()))
    except (AttributeError, TypeError) as exc:  # a shape that is not OTLP/JSON
        raise _RequestError(400, f"JSON is not an OTLP {signal} request: {exc}") from None
    return n, tuple(names)


def _unknown_field_path(message: Any, path: str) -> str | None:
    """The path of the first message carrying unknown protobuf fields, or None."""
    if len(UnknownFieldSet(message)):
        return path
    for fd, value in message.ListFields():
        if fd.type != fd.TYPE_MESSAGE:
            continue
        if fd.is_repeated:
            for index, element in enumerate(value):
                found = _unknown_field_path(element, f"{path}.{fd.name}[{index}]")
                if found is not None:
                    return found
        else:
            found = _unknown_field_path(value, f"{path}.{fd.name}")
            if found is not None:
                return found
    return None


_ZERO_TRACE_ID: Final = bytes(16)
_ZERO_SPAN_ID: Final = bytes(8)


def _check_id(value: bytes, size: int, required: bool, what: str) -> None:
    if not value and not required:
        return
    if len(value) != size:
        raise _RequestError(400, f"{what} must be {size} bytes, got {len(value)}")
    if value == bytes(size):
        raise _RequestError(400, f"{what} must not be all zeros")


def _check_span(span: Span, where: str) -> None:
    _check_id(span.trace_id, 16, True, f"{where}.traceId")
    _check_id(span.span_id, 8, True, f"{where}.spanId")
    _check_id(span.parent_span_id, 8, False, f"{where}.parentSpanId")
    for k, link in enumerate(span.links):
        _check_id(link.trace_id, 16, True, f"{where}.links[{k}].traceId")
        _check_id(link.span_id, 8, True, f"{where}.links[{k}].spanId")


def _validate(signal: Signal, message: ExportRequest) -> None:
    """Reject unknown fields and invalid trace/span ids in a decoded request."""
    stripped = type(message)()
    stripped.CopyFrom(message)
    stripped.DiscardUnknownFields()
    if stripped.ByteSize() != message.ByteSize():  # fast, in C; the walk only names the place
        where = _unknown_field_path(message, "$") or "$"
        raise _RequestError(400, f"{where}: unknown protobuf fields")
    if isinstance(message, ExportTraceServiceRequest):
        for r, rs in enumerate(message.resource_spans):
            for s, ss in enumerate(rs.scope_spans):
                for i, span in enumerate(ss.spans):
                    # Fast check first: paths are only formatted for spans that need a look.
                    trace_id, span_id = span.trace_id, span.span_id
                    if (
                        len(trace_id) != 16
                        or len(span_id) != 8
                        or trace_id == _ZERO_TRACE_ID
                        or span_id == _ZERO_SPAN_ID
                        or len(span.parent_span_id) not in (0, 8)
                        or len(span.links)
                    ):
                        _check_span(span, f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]")
    elif isinstance(message, ExportLogsServiceRequest):
        for r, rl in enumerate(message.resource_logs):
            for s, sl in enumerate(rl.scope_logs):
                for i, record in enumerate(sl.log_records):
                    trace_id, span_id = record.trace_id, record.span_id
                    if (trace_id or span_id) and (
                        len(trace_id) not in (0, 16)
                        or len(span_id) not in (0, 8)
                        or trace_id == _ZERO_TRACE_ID
                        or span_id == _ZERO_SPAN_ID
                    ):
                        where = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]"
                        _check_id(trace_id, 16, False, f"{where}.traceId")
                        _check_id(span_id, 8, False, f"{where}.spanId")
    else:
        for r, rm in enumerate(message.resource_metrics):
            for s, sm in enumerate(rm.scope_metrics):
                for i, metric in enumerate(sm.metrics):
                    for n, exemplar in _exemplars(metric):
                        where = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{i}].{n}"
                        _check_id(exemplar.trace_id, 16, False, f"{where}.traceId")
                        _check_id(exemplar.span_id, 8, False, f"{where}.spanId")


def _exemplars(metric: Metric) -> Iterator[tuple[str, Any]]:
    kind = metric.WhichOneof("data")
    if kind not in ("gauge", "sum", "histogram", "exponential_histogram"):
        return
    container = getattr(metric, kind)
    for p, point in enumerate(container.data_points):
        for e, exemplar in enumerate(point.exemplars):
            yield f"{kind}.dataPoints[{p}].exemplars[{e}]", exemplar


# --- answers --------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _status_body(status: int, message: str, json_answer: bool) -> tuple[bytes, str]:
    """A ``google.rpc.Status`` (code, message) in JSON or protobuf, as OTLP/HTTP wants."""
    code = _RPC_CODES.get(status, 2)  # 2 = UNKNOWN
    if json_answer:
        return json.dumps({"code": code, "message": message}).encode(), _JSON
    text = message.encode("utf-8")
    # Field 1 (int32 code, varint) and field 2 (string message, length-delimited).
    body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    return body, _PROTOBUF


_EMPTY_ANSWERS: dict[tuple[Signal, bool], tuple[bytes, str]] = {}


def _success_body(
    signal: Signal, partial_success: tuple[int, str] | None, json_answer: bool
) -> tuple[bytes, str]:
    if partial_success is None:  # the common answer, made once per signal and encoding
        key = (signal, json_answer)
        cached = _EMPTY_ANSWERS.get(key)
        if cached is None:
            cached = _EMPTY_ANSWERS[key] = _export_response(signal, None, json_answer)
        return cached
    return _export_response(signal, partial_success, json_answer)


def _export_response(
    signal: Signal, partial_success: tuple[int, str] | None, json_answer: bool
) -> tuple[bytes, str]:
    answer: ExportTraceServiceResponse | ExportMetricsServiceResponse | ExportLogsServiceResponse
    if signal == "traces":
        answer = ExportTraceServiceResponse()
        if partial_success is not None:
            answer.partial_success.rejected_spans = partial_success[0]
            answer.partial_success.error_message = partial_success[1]
    elif signal == "metrics":
        answer = ExportMetricsServiceResponse()
        if partial_success is not None:
            answer.partial_success.rejected_data_points = partial_success[0]
            answer.partial_success.error_message = partial_success[1]
    else:
        answer = ExportLogsServiceResponse()
        if partial_success is not None:
            answer.partial_success.rejected_log_records = partial_success[0]
            answer.partial_success.error_message = partial_success[1]
    if json_answer:
        document = json_format.MessageToDict(answer, preserving_proto_field_name=False)
        return json.dumps(document, separators=(",", ":")).encode(), _JSON
    body: bytes = answer.SerializeToString()
    return body, _PROTOBUF


# --- HTTP plumbing --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """Tracks its connections and handler threads, so that :meth:`close_all` can end them."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: list[threading.Thread] = []
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"otlp-receiver-conn-{client_address[1]}",
            daemon=True,
        )
        with self._conn_lock:
            self._connections.add(request)
            self._handler_threads = [t for t in self._handler_threads if t.is_alive()]
            self._handler_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("OTLP receiver: connection from %s failed", client_address, exc_info=True)

    def close_all(self, timeout: float) -> None:
        """Shut down every open connection (idle keep-alive ones included), join the threads."""
        with self._conn_lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            threads = list(self._handler_threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "automagik-otlp-receiver/1"
    disable_nagle_algorithm = True
    wbufsize = -1  # buffered: headers and a small body leave in one segment
    server: _Server

    def do_POST(self) -> None:
        self.server.receiver._handle_post(self)

    def _method_not_allowed(self) -> None:
        self.server.receiver._handle_other_method(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("OTLP receiver: " + format, *args)

    def answer(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        """Send one complete answer, always with ``Content-Length`` (except 1xx/204/304)."""
        self.send_response(status)
        no_body = status < 200 or status in (204, 304)
        if not no_body:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if not no_body:
            self.wfile.write(body)
        self.wfile.flush()

    def read_body(self, limit: int) -> bytes:
        """Read the request body (``Content-Length`` or chunked), at most ``limit`` bytes."""
        transfer_encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if transfer_encoding:
            if transfer_encoding != "chunked":
                raise _RequestError(501, f"unsupported Transfer-Encoding {transfer_encoding!r}")
            return self._read_chunked(limit)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise _RequestError(411, "Content-Length is required")
        try:
            length = int(length_header)
        except ValueError:
            raise _RequestError(400, f"bad Content-Length {length_header!r}") from None
        if length < 0:
            raise _RequestError(400, f"bad Content-Length {length_header!r}")
        if length > limit:
            raise _RequestError(413, f"body of {length} bytes exceeds {limit} bytes")
        body = self.rfile.read(length)
        if len(body) != length:
            raise ConnectionError("client closed the connection mid-body")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _RequestError(400, "bad chunk size") from None
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            if len(body) + size > limit:
                raise _RequestError(413, f"chunked body exceeds {limit} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise ConnectionError("client closed the connection mid-body")
            body += chunk
            self.rfile.readline(8)  # the CRLF after the chunk


# --- the receiver ---------------------------------------------------------------------------


class OtlpReceiver:
    """An OTLP/HTTP receiver on loopback that decodes and records every export request.

    ``with OtlpReceiver() as rx:`` starts it on a free port (``port=0``); post to
    ``rx.endpoint("traces")`` and inspect :attr:`requests`, :meth:`spans`, :meth:`metrics`,
    :meth:`log_records`, :attr:`errors`, :attr:`rejected_requests`. All accessors return
    snapshots and are safe to call while requests arrive.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        validate: bool = True,
        counting: bool = False,
        keep_span_names: str | None = None,
    ) -> None:
        """Prepare a receiver; nothing listens until :meth:`start`. ``counting=True``: count
        only, keep no message, check nothing (see the module's docstring)."""
        self.host = host
        self.requested_port = port
        self.max_body_bytes = max_body_bytes
        self.validate = validate and not counting
        self.counting = counting
        self.keep_span_names = keep_span_names
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._rejected: list[ReceivedRequest] = []
        self._errors: list[str] = []
        self._scripts: dict[Signal | None, collections.deque[Response]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> OtlpReceiver:
        """Bind the port and serve from a background thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("OtlpReceiver already started")
        server = _Server((self.host, self.requested_port), self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"otlp-receiver-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close every connection and the listening socket, join the threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_all(timeout)
        server.server_close()
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port actually bound (the receiver must be started)."""
        if self._server is None:
            raise RuntimeError("OtlpReceiver is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://<host>:<port>``, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def endpoint(self, signal: Signal) -> str:
        """The full URL of one signal, e.g. ``http://127.0.0.1:4318/v1/traces``."""
        if signal not in SIGNALS:
            raise ValueError(f"unknown OTLP signal {signal!r}; expected one of {SIGNALS}")
        return f"{self.url}/v1/{signal}"

    # scripting

    def script(self, signal: Signal | None, responses: Sequence[Response]) -> None:
        """Queue answers for the next decoded requests of ``signal`` (``None``: any signal).

        Replaces the previous queue for that key. Each decoded request consumes one answer from
        its signal's queue, or else from the ``None`` queue; with both empty it gets 200.
        """
        if signal is not None and signal not in SIGNALS:
            raise ValueError(f"unknown OTLP signal {signal!r}; expected one of {SIGNALS}")
        with self._lock:
            self._scripts[signal] = collections.deque(responses)

    def pending_responses(self, signal: Signal | None = None) -> int:
        """How many scripted answers are queued for ``signal`` (``None``: the shared queue)."""
        with self._lock:
            return len(self._scripts.get(signal, ()))

    def _next_response(self, signal: Signal) -> Response | None:
        with self._lock:
            for key in (signal, None):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
        return None

    # records

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Snapshot of the delivered (2xx-answered) requests, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def rejected_requests(self) -> list[ReceivedRequest]:
        """Snapshot of the decoded requests that got a scripted non-2xx answer (or a drop)."""
        with self._lock:
            return list(self._rejected)

    @property
    def errors(self) -> list[str]:
        """Snapshot of the descriptions of requests refused as malformed (400, 404, 415...)."""
        with self._lock:
            return list(self._errors)

    def clear(self) -> None:
        """Forget every recorded request and error, and every scripted answer still queued."""
        with self._lock:
            self._requests.clear()
            self._rejected.clear()
            self._errors.clear()
            self._scripts.clear()

    def spans(self) -> list[tuple[Resource, InstrumentationScope, Span]]:
        """Every delivered span with its resource and scope, in arrival order."""
        out: list[tuple[Resource, InstrumentationScope, Span]] = []
        for request in self.requests:
            if isinstance(request.message, ExportTraceServiceRequest):
                for rs in request.message.resource_spans:
                    for ss in rs.scope_spans:
                        out.extend((rs.resource, ss.scope, span) for span in ss.spans)
        return out

    def metrics(self) -> list[tuple[Resource, InstrumentationScope, Metric]]:
        """Every delivered metric with its resource and scope, in arrival order."""
        out: list[tuple[Resource, InstrumentationScope, Metric]] = []
        for request in self.requests:
            if isinstance(request.message, ExportMetricsServiceRequest):
                for rm in request.message.resource_metrics:
                    for sm in rm.scope_metrics:
                        out.extend((rm.resource, sm.scope, metric) for metric in sm.metrics)
        return out

    def log_records(self) -> list[tuple[Resource, InstrumentationScope, LogRecord]]:
        """Every delivered log record with its resource and scope, in arrival order."""
        out: list[tuple[Resource, InstrumentationScope, LogRecord]] = []
        for request in self.requests:
            if isinstance(request.message, ExportLogsServiceRequest):
                for rl in request.message.resource_logs:
                    for sl in rl.scope_logs:
                        out.extend((rl.resource, sl.scope, record) for record in sl.log_records)
        return out

    def counts(self) -> dict[str, int]:
        """Delivered items per signal plus request/rejection/error totals (for progress output).

        In counting mode, with no messages kept: metric data points instead of metrics."""
        if self.counting:
            requests = self.requests
            items = dict.fromkeys(SIGNALS, 0)
            for request in requests:
                items[request.signal] += request.items
            return {
                "requests": len(requests),
                "spans": items["traces"],
                "metric_points": items["metrics"],
                "log_records": items["logs"],
                "rejected_requests": len(self.rejected_requests),
                "errors": len(self.errors),
            }
        return {
            "requests": len(self.requests),
            "spans": len(self.spans()),
            "metrics": len(self.metrics()),
            "log_records": len(self.log_records()),
            "rejected_requests": len(self.rejected_requests),
            "errors": len(self.errors),
        }

    def wait_for(
        self, predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01
    ) -> bool:
        """Poll ``predicate()`` until it is truthy (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    # request handling (called from the handler threads)

    def _record_error(self, handler: _Handler, status: int, message: str) -> None:
        with self._lock:
            self._errors.append(f"{handler.command} {handler.path}: {status} {message}")

    def _handle_other_method(self, handler: _Handler) -> None:
        message = f"method {handler.command} not allowed, use POST"
        self._record_error(handler, 405, message)
        # The body, if any, is not read: close the connection rather than parse it as a request.
        handler.answer(
            405, message.encode(), "text/plain", {"Allow": "POST"}, close=_has_body(handler)
        )

    def _handle_post(self, handler: _Handler) -> None:
        content_type = _media_type(handler.headers.get("Content-Type"))
        json_answer = content_type == _JSON
        try:
            body = handler.read_body(self.max_body_bytes)
        except _RequestError as exc:
            # The body was not (entirely) read: this connection cannot carry another request.
            self._record_error(handler, exc.status, exc.message)
            payload, media = _status_body(exc.status, exc.message, json_answer)
            handler.answer(exc.status, payload, media, close=True)
            return
        except (ConnectionError, OSError):
            handler.close_connection = True
            return
        try:
            signal, encoding, message, items, names = self._decode(handler, content_type, body)
        except _RequestError as exc:
            self._record_error(handler, exc.status, exc.message)
            payload, media = _status_body(exc.status, exc.message, json_answer)
            handler.answer(exc.status, payload, media)
            return
        except Exception as exc:  # a bug here must still answer, and show up in errors
            _log.exception("OTLP receiver: unexpected error while decoding")
            self._record_error(handler, 500, f"internal error: {exc!r}")
            payload, media = _status_body(500, repr(exc), json_answer)
            handler.answer(500, payload, media)
            return
        self._respond(handler, signal, content_type, encoding, len(body), message, items, names)

    def _decode(
        self, handler: _Handler, content_type: str, body: bytes
    ) -> tuple[Signal, str, ExportRequest | None, int, tuple[str, ...]]:
        path = handler.path.split("?", 1)[0]
        signal = _PATHS.get(path)
        if signal is None:
            raise _RequestError(404, f"unknown path {path!r}; expected /v1/traces|metrics|logs")
        if content_type not in (_JSON, _PROTOBUF):
            raise _RequestError(415, f"unsupported Content-Type {content_type or None!r}")
        encoding = (handler.headers.get("Content-Encoding") or "").strip().lower()
        if encoding not in _ENCODINGS:
            raise _RequestError(415, f"unsupported Content-Encoding {encoding!r}")
        data = _decompress(body, encoding, self.max_body_bytes)
        encoding = "" if encoding == "identity" else encoding
        if self.counting and content_type == _JSON:
            items, names = _count_json(signal, data, self.keep_span_names)
            return signal, encoding, None, items, names
        message = _REQUEST_TYPES[signal]()
        if content_type == _JSON:
            _decode_json(data, message)
        else:
            _decode_protobuf(data, message)
        if self.validate:
            _validate(signal, message)
        items, names = _count_message(message, self.keep_span_names)
        return signal, encoding, None if self.counting else message, items, names

    def _respond(
        self,
        handler: _Handler,
        signal: Signal,
        content_type: str,
        encoding: str,
        raw_body_len: int,
        message: ExportRequest | None,
        items: int,
        span_names: tuple[str, ...],
    ) -> None:
        received_at = time.monotonic()
        scripted = self._next_response(signal) or Response()
        if scripted.delay > 0:
            time.sleep(scripted.delay)
        status = 0 if scripted.drop else scripted.status
        record = ReceivedRequest(
            signal=signal,
            content_type=content_type,
            content_encoding=encoding,
            raw_body_len=raw_body_len,
            headers={name.lower(): value for name, value in handler.headers.items()},
            message=message,
            received_at=received_at,
            response_status=status,
            items=items,
            span_names=span_names,
        )
        with self._lock:
            (self._requests if 200 <= status < 300 else self._rejected).append(record)
        if scripted.drop:
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        json_answer = content_type == _JSON
        if scripted.body is not None:
            payload, media = scripted.body, scripted.content_type or content_type
        elif 200 <= status < 300:
            payload, media = _success_body(signal, scripted.partial_success, json_answer)
        else:
            payload, media = _status_body(status, f"scripted {status} answer", json_answer)
        handler.answer(status, payload, scripted.content_type or media, scripted.headers)


def _has_body(handler: _Handler) -> bool:
    length = handler.headers.get("Content-Length")
    return bool(handler.headers.get("Transfer-Encoding")) or (
        length is not None and length.strip() not in ("", "0")
    )


# --- CLI ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run a receiver in the foreground, printing counts every ``--interval`` seconds."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.servers.otlp_receiver",
        description="A throwaway OTLP/HTTP receiver that decodes and counts what it gets.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=4318, help="port (4318; 0 = any free port)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between reports")
    parser.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="413 above this"
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="skip unknown-field and trace-id checks"
    )
    parser.add_argument(
        "--count", action="store_true", help="counting mode: count items, check nothing (fast)"
    )
    args = parser.parse_args(argv)
    receiver = OtlpReceiver(
        args.host,
        args.port,
        max_body_bytes=args.max_body_bytes,
        validate=not args.no_validate,
        counting=args.count,
    )
    receiver.start()
    print(f"OTLP/HTTP receiver listening on {receiver.url} (Ctrl-C to stop)", flush=True)
    last = receiver.counts()
    seen_errors = 0
    try:
        while True:
            time.sleep(args.interval)
            counts = receiver.counts()
            errors = receiver.errors
            for line in errors[seen_errors:]:
                print(f"  error: {line}", flush=True)
            seen_errors = len(errors)
            if counts != last:
                print("  ".join(f"{key}={value}" for key, value in counts.items()), flush=True)
                last = counts
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
