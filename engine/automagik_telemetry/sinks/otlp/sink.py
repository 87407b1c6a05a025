"""OTLP/HTTP: turn batches of compact rows into export requests, send them, read the answers.

The application side (``otlp_row_encoder``, ``otlp_settings``) resolves the destination
(``sinks/otlp/config.py``); each track call is encoded once, compactly (``rows/compact.py``). The
writer side (``OtlpSink``) builds each request once per batch: it decodes the batch with one
msgspec call, spells every row out in the protocol's wire form (``rows/otlp_json.py``,
``rows/otlp_protobuf.py``: typed attribute values, hex or binary ids, lowerCamelCase names) and
frames the rows (``framing.py``):

* JSON (``http/json``): ``{"resourceSpans":[{"resource":{...},"scopeSpans":[{"scope":{...},
  "spans":[`` + the rows joined with ``,`` + ``]}]}]}``; ``resourceMetrics`` / ``scopeMetrics`` /
  ``metrics`` and ``resourceLogs`` / ``scopeLogs`` / ``logRecords`` alike.
* protobuf (``http/protobuf``): the rows are ``ScopeSpans.spans`` (field 2) fields; the request
  is ``resource_spans`` (1) { ``resource`` (1), ``scope_spans`` (2) { ``scope`` (1), the rows } },
  whose two lengths are computed here (two varints).

Why the writer and not the application thread: spelling attributes out is Python work per
attribute (~3.5 µs for 8 attributes here), the bulk of a track call's cost if done there, and
under the client's lock; in the writer process it runs on another core, outside the
application's GIL, and the application thread pays ~0.6 µs for its compact row. Batches of wire
rows (written into rings and spools by versions before compact rows) are framed as they are.

The resource (service, host, process, user, session) is in every request once, never in rows.
Requests are compressed once (gzip by default, none on loopback; ``config.auto_codec``)
before the writer's retry loop, so a retried batch costs no new work.

Answers (``answers.classify``), following the OTLP/HTTP specification:

* 2xx: delivered. A ``partial_success`` (rejected items and/or a message) in the answer, JSON or
  protobuf, is returned as ``Outcome(ok=True, message=..., rejected=n)``: the writer logs it once
  and counts the rejected items.
* 408, 429, 502, 503, 504 and connection errors: retried, honouring ``Retry-After`` (seconds or
  an HTTP date).
* 400: the receiver refused what this request holds; the writer sets the batch aside on disk
  (``rejected/`` in the spool directory) and goes on with the next ones. 413: the writer sends
  the batch again in halves (a single row too large is set aside).
* Anything else (401, 403, 404, 415, other 5xx...): a matter of configuration, logged once with
  the receiver's own message (a ``google.rpc.Status`` decoded from a protobuf or JSON body, else
  the text) and the fix; the writer keeps the rows and tries again after a long pause.

No message here contains a header value (they may hold API keys) or a URL's query string.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgspec
import urllib3

from ...ring.layout import KIND_METRIC, KIND_TRACE
from ...rows.compact import decode_batch, is_compact
from ...rows.framing import split_delimited, split_sized
from ...rows.otlp_json import OtlpJsonRows, json_scope
from ...rows.otlp_protobuf import OtlpProtobufRows, delimited, protobuf_scope
from ...schema import LogSeverity, MetricType
from ...settings import OtlpSettings
from ...transport import (
    USER_AGENT,
    BatchTooLarge,
    Codec,
    HttpClient,
    Outcome,
    Prepared,
    codec,
)
from .answers import classify, connection_outcome
from .config import SIGNALS
from .encode import not_sent_message
from .framing import JSON_TYPE, PROTOBUF_TYPE, frame_json, frame_protobuf, json_envelope

if TYPE_CHECKING:
    from ...settings import WriterSettings

log = logging.getLogger("automagik_telemetry.otlp")


# --- the sink -------------------------------------------------------------------------------


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def request_envelope(kind: int, resource: bytes, *, protobuf: bool) -> tuple[bytes, bytes]:
    """(prefix, suffix) of an export request of ring kind ``kind`` around its rows: the
    resource and the scope, in protobuf fields or the OTLP/JSON envelope."""
    if protobuf:
        return delimited(b"\x0a", resource), delimited(b"\x0a", protobuf_scope())
    return json_envelope(kind, resource or b"{}", json_scope())


def origin_of(resource: bytes, *, protobuf: bool) -> str:
    """A sink's resource as the text a spool file keeps (``Sink.origin``)."""
    if protobuf:
        return "pb:" + base64.b64encode(resource).decode("ascii")
    return "json:" + resource.decode("utf-8")


def resource_of(origin: str, *, protobuf: bool) -> bytes | None:
    """The resource bytes of ``origin`` for this protocol; None when it is of the other
    protocol or does not decode."""
    kind, _, text = origin.partition(":")
    try:
        if protobuf and kind == "pb":
            return base64.b64decode(text, validate=True)
        if not protobuf and kind == "json":
            resource = text.encode("utf-8")
            msgspec.json.decode(resource)  # whole JSON, or not used
            return resource
    except (ValueError, msgspec.DecodeError):
        return None
    return None


@dataclass
class Route:
    """Where and how one signal goes."""

    kind: int
    url: str  # "" when the signal may not be sent
    headers: dict[str, str]  # request headers without Content-Encoding
    codec: Codec
    http: HttpClient
    prefix: bytes = b""  # JSON envelope, or the protobuf resource field
    suffix: bytes = b""  # JSON envelope, or the protobuf scope field
    compressed_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Unsent(Prepared):
    """A batch of a signal that may not be sent (see ``otlp_row_encoder``): acknowledged
    without a request, reported once."""

    rows: int = 0


def request_headers(
    content_type: str, extra: Mapping[str, str], content_encoding: str | None
) -> dict[str, str]:
    """The user's headers, then ours: Content-Type and Content-Encoding always ours, User-Agent
    unless the user gave one (pool headers do not apply once a request names its own)."""
    headers = {
        k: v for k, v in extra.items() if k.lower() not in ("content-type", "content-encoding")
    }
    if not any(k.lower() == "user-agent" for k in headers):
        headers["User-Agent"] = USER_AGENT
    headers["Content-Type"] = content_type
    if content_encoding:
        headers["Content-Encoding"] = content_encoding
    return headers


class OtlpSink:
    """Sends framed batches to the three OTLP/HTTP endpoints."""

    name = "otlp"

    def __init__(
        self,
        routes: tuple[Route, Route, Route],
        *,
        protobuf: bool,
        compression_threshold: int = 1024,
        clients: tuple[HttpClient, ...] = (),
        max_request_bytes: int = 16 << 20,
        compact: bool = True,
        resource: bytes = b"",
    ) -> None:
        self.routes = routes
        self.protobuf = protobuf
        #: the resource as ``origin`` gives it: "json:" and the JSON, or "pb:" and base64
        self._origin = origin_of(resource, protobuf=protobuf)
        self._envelopes: dict[tuple[int, str], tuple[bytes, bytes]] = {}
        self.compression_threshold = compression_threshold
        self._clients = clients or tuple({id(r.http): r.http for r in routes}.values())
        self._wire: OtlpJsonRows | OtlpProtobufRows = (
            OtlpProtobufRows() if protobuf else OtlpJsonRows()
        )
        self._encoding = threading.Lock()
        self.max_request_bytes = max_request_bytes
        # wire bytes per ring byte, per signal, learned from each batch framed (compact rows
        # grow into their wire form: ~3x for OTLP/JSON, ~2x for protobuf); starts high. Wire
        # rows (otlp_encode_in="caller") do not grow.
        self._growth = [4.0, 4.0, 4.0] if compact else [1.0, 1.0, 1.0]
        # the request's bytes around the rows: the envelope, and the two varints' slack
        self._envelope = [len(r.prefix) + len(r.suffix) + 10 for r in routes]

    @classmethod
    def from_settings(cls, settings: WriterSettings, http: HttpClient) -> OtlpSink:
        otlp = settings.sink
        assert isinstance(otlp, OtlpSettings)
        protobuf = otlp.protocol == "http/protobuf"
        resource = otlp.resource
        clients: dict[float, HttpClient] = {settings.timeout: http}
        pool_size = max(2, settings.max_in_flight)
        routes: list[Route] = []
        for kind in range(len(SIGNALS)):
            timeout = otlp.timeouts[kind] or settings.timeout
            if timeout not in clients:
                clients[timeout] = HttpClient(timeout, pool_size=pool_size)
            name = otlp.compressions[kind] or settings.compression
            chosen = codec("gzip" if name == "auto" else name)
            extra = otlp.signal_headers[kind] if otlp.signal_headers is not None else otlp.headers
            content_type = PROTOBUF_TYPE if protobuf else JSON_TYPE
            prefix, suffix = request_envelope(kind, resource, protobuf=protobuf)
            routes.append(
                Route(
                    kind=kind,
                    url=otlp.endpoints[kind],
                    headers=request_headers(content_type, extra, None),
                    codec=chosen,
                    http=clients[timeout],
                    prefix=prefix,
                    suffix=suffix,
                    compressed_headers=request_headers(
                        content_type, extra, chosen.content_encoding
                    ),
                )
            )
        return cls(
            (routes[0], routes[1], routes[2]),
            protobuf=protobuf,
            compression_threshold=settings.compression_threshold,
            clients=tuple(clients.values()),
            max_request_bytes=settings.max_batch_bytes,
            compact=settings.record_format == "sized",
            resource=resource,
        )

    def discover(self) -> Outcome:
        """Nothing to learn: OTLP receivers all read the same requests."""
        return Outcome.delivered()

    def wire_rows(self, kind: int, body: bytes | bytearray) -> list[bytes]:
        """The batch's compact rows in the protocol's wire form, in order."""
        # The encoders' caches are not thread-safe: one batch at a time. The collector is off
        # meanwhile: a batch decodes into ~20 objects per row, all alive until the batch is
        # framed, and collections over them found nothing to free (measured: decoding took
        # 2.6 µs per row of 8 attributes with the collector on, 1.4 µs with it off).
        with self._encoding, _collector_off():
            rows = decode_batch(body)
            wire = self._wire
            if kind == KIND_TRACE:
                span = wire.span
                return [span(t, name, attrs, error, ids) for t, ids, name, attrs, error in rows]
            if kind == KIND_METRIC:
                metric = wire.metric
                kinds = MetricType.__members__
                return [metric(t, n, value, kinds[k], attrs) for t, n, value, k, attrs in rows]
            log_row = wire.log
            levels = LogSeverity.__members__
            return [log_row(t, message, levels[s], attrs) for t, message, s, attrs in rows]

    def ring_bytes_for(self, kind: int, request_bytes: int) -> int:
        """How many bytes of ring rows make a request of at most ``request_bytes`` bytes, if
        they grow as the last batch did (with a tenth to spare for rows that grow more: a
        batch that still outgrows the limit is prepared again in halves)."""
        rows_bytes = (request_bytes - self._envelope[kind]) * 0.9
        return max(int(rows_bytes / self._growth[kind]), 1)

    def origin(self, kind: int) -> str:
        return self._origin

    def envelope(self, kind: int, origin: str) -> tuple[bytes, bytes]:
        """The request's bytes around the rows for a batch of ``origin`` ("" or this sink's:
        its own). A resource of the other protocol, or one that does not decode, gives this
        sink's own: the rows are sent, with this writer's resource."""
        route = self.routes[kind]
        if not origin or origin == self._origin:
            return route.prefix, route.suffix
        found = self._envelopes.get((kind, origin))
        if found is None:
            resource = resource_of(origin, protobuf=self.protobuf)
            if resource is None:
                return route.prefix, route.suffix
            found = request_envelope(kind, resource, protobuf=self.protobuf)
            if len(self._envelopes) >= 64:
                self._envelopes.clear()
            self._envelopes[(kind, origin)] = found
        return found

    def frame(self, kind: int, body: bytes | bytearray, origin: str = "") -> bytes:
        """The export request of a batch (compact rows, or wire rows of older versions)."""
        prefix, suffix = self.envelope(kind, origin)
        if is_compact(body):
            rows = self.wire_rows(kind, body)
            if self.protobuf:
                payload = frame_protobuf(prefix, suffix, b"".join(rows))
            else:
                payload = b"".join((prefix, b",".join(rows), suffix))
            self._growth[kind] = max(len(payload) - self._envelope[kind], 1) / len(body)
            if len(payload) > self.max_request_bytes and len(rows) > 1:
                raise BatchTooLarge(
                    f"{len(rows)} rows make a request of {len(payload)} bytes, more than "
                    f"max_batch_bytes ({self.max_request_bytes})"
                )
            return payload
        if self.protobuf:
            return frame_protobuf(prefix, suffix, body)
        return frame_json(prefix, suffix, body)

    def prepare(
        self, kind: int, body: bytes | bytearray, token: str | None, origin: str = ""
    ) -> Prepared:
        """The request of one batch, framed and compressed once. ValueError for a batch that
        does not hold whole rows (the writer sets it aside)."""
        route = self.routes[kind]
        if not route.url:
            if is_compact(body):
                rows = split_sized(body, len(body))[1]
            elif self.protobuf:
                rows = split_delimited(bytes(body), len(body))[1]
            else:
                rows = body.count(b"\n")
            return Unsent(kind, b"", rows=rows)
        payload = self.frame(kind, body, origin)
        if route.codec.content_encoding and len(payload) >= self.compression_threshold:
            return Prepared(
                kind, route.codec.compress(payload), route.url, route.compressed_headers,
                len(payload),
            )  # fmt: skip
        return Prepared(kind, payload, route.url, route.headers, len(payload))

    def send(self, prepared: Prepared) -> Outcome:
        route = self.routes[prepared.kind]
        if isinstance(prepared, Unsent):
            return Outcome(
                ok=True,
                key=f"unsent:{SIGNALS[prepared.kind]}",
                rejected=prepared.rows,
                message=not_sent_message([SIGNALS[prepared.kind]]),
            )
        try:
            response = route.http.post(prepared.url, prepared.wire, prepared.headers)
        except urllib3.exceptions.HTTPError as exc:
            return connection_outcome(exc, prepared.url)
        return classify(
            response, kind=prepared.kind, url=prepared.url, request_bytes=len(prepared.wire)
        )

    def close(self) -> None:
        for client in self._clients:
            client.close()
