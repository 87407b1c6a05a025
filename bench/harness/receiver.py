"""A counting OTLP/HTTP receiver on loopback, fast enough not to be what is measured.

The project's ``localservers.otlp_receiver.OtlpReceiver`` checks every request against the
spec and decodes OTLP/JSON through ``google.protobuf.json_format`` (pure Python): measured here,
~1,500 spans per second, so a throughput run against it measures the receiver. This one decodes
protobuf bodies with the official messages (``ParseFromString``, in C) and JSON bodies with the
standard ``json`` module (in C), counts spans, metric data points and log records, notes the
probe spans of the latency phase, and answers 200 with an empty export response. It does not
validate: correctness is the test suite's job, against the strict receiver.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}


@dataclass(frozen=True)
class Received:
    signal: str
    items: int
    raw_body_len: int
    content_encoding: str
    received_at: float  # time.time()
    probes: tuple[str, ...]


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    return body


def _count_json(signal: str, document: dict[str, Any]) -> tuple[int, list[str]]:
    n = 0
    probes: list[str] = []
    if signal == "traces":
        for rs in document.get("resourceSpans", ()):
            for ss in rs.get("scopeSpans", ()):
                spans = ss.get("spans", ())
                n += len(spans)
                probes.extend(
                    s["name"] for s in spans if str(s.get("name", "")).startswith("probe.")
                )
    elif signal == "metrics":
        for rm in document.get("resourceMetrics", ()):
            for sm in rm.get("scopeMetrics", ()):
                for metric in sm.get("metrics", ()):
                    for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                        if kind in metric:
                            n += len(metric[kind].get("dataPoints", ()))
    else:
        for rl in document.get("resourceLogs", ()):
            for sl in rl.get("scopeLogs", ()):
                n += len(sl.get("logRecords", ()))
    return n, probes


def _count_protobuf(signal: str, body: bytes) -> tuple[int, list[str]]:
    from .destinations import _items

    message: Any
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        message = ExportTraceServiceRequest()
    elif signal == "metrics":
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        message = ExportMetricsServiceRequest()
    else:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        message = ExportLogsServiceRequest()
    message.ParseFromString(body)
    return _items(message)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "automagik-bench-receiver/1"
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        signal = _PATHS.get(path)
        is_json = (self.headers.get("Content-Type") or "").startswith("application/json")
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
        try:
            if signal is None:
                raise ValueError(f"unknown path {path}")
            data = _decompress(body, encoding)
            if is_json:
                items, probes = _count_json(signal, json.loads(data))
            else:
                items, probes = _count_protobuf(signal, data)
        except Exception as exc:
            receiver.error(f"{path}: {type(exc).__name__}: {exc}"[:300])
            self._answer(400, b'{"message": "bad request"}', "application/json")
            return
        receiver.record(
            Received(
                signal,
                items,
                len(body),
                encoding if encoding != "identity" else "",
                time.time(),
                tuple(probes),
            )
        )
        if is_json:
            self._answer(200, b"{}", "application/json")
        else:
            self._answer(200, b"", "application/x-protobuf")

    def _answer(self, status: int, payload: bytes, media: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: CountingReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)


class CountingReceiver:
    """``start()``, ``url``, ``requests``, ``errors``, ``clear()``, ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        self._errors: list[str] = []
        self._server = _Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> CountingReceiver:
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, received: Received) -> None:
        with self._lock:
            self._requests.append(received)

    def error(self, message: str) -> None:
        with self._lock:
            if len(self._errors) < 20:
                self._errors.append(message)

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._errors.clear()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
