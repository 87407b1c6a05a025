"""``OTLPBackend`` of automagik-telemetry 0.1: posts OTLP/JSON payloads (``resourceSpans``,
``resourceMetrics``, ``resourceLogs``) to the three endpoints, gzip-compressed from
``compression_threshold`` bytes, on the calling thread, with up to ``max_retries`` retries of a
5xx answer or a network error. Nothing is buffered, so ``flush()`` has nothing to do."""

from __future__ import annotations

import gzip
import json
import logging
from typing import Any

import urllib3

from ..transport import USER_AGENT
from ._http import post
from .base import TelemetryBackend

logger = logging.getLogger(__name__)


class OTLPBackend(TelemetryBackend):
    def __init__(
        self,
        endpoint: str,
        metrics_endpoint: str,
        logs_endpoint: str,
        timeout: int = 5,
        max_retries: int = 3,
        retry_backoff_base: float = 1.0,
        compression_enabled: bool = True,
        compression_threshold: int = 1024,
        verbose: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.metrics_endpoint = metrics_endpoint
        self.logs_endpoint = logs_endpoint
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff_base = retry_backoff_base
        self.compression_enabled = compression_enabled
        self.compression_threshold = compression_threshold
        self.verbose = verbose
        self._pool: urllib3.PoolManager | None = None

    def _compress_payload(self, payload: bytes) -> bytes:
        if self.compression_enabled and len(payload) >= self.compression_threshold:
            return gzip.compress(payload)
        return payload

    def _send(self, url: str, payload: dict[str, Any], signal: str) -> bool:
        try:
            raw = json.dumps(payload).encode("utf-8")
        except (TypeError, ValueError) as exc:
            logger.warning("OTLPBackend: %s payload not encodable: %s", signal, exc)
            return False
        body = self._compress_payload(raw)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if body is not raw:
            headers["Content-Encoding"] = "gzip"
        if self.verbose:
            print(f"[Telemetry] Sending {signal} to {url} ({len(body)} bytes)")
        if self._pool is None:
            self._pool = urllib3.PoolManager(num_pools=3, maxsize=1)
        answer = post(
            self._pool,
            url,
            body,
            headers,
            timeout=float(self.timeout),
            attempts=self.max_retries + 1,
            backoff_base=self.retry_backoff_base,
        )
        if not answer.ok:
            logger.debug("OTLPBackend: %s not delivered: %s", signal, answer.detail)
        return answer.ok

    def send_trace(self, payload: dict[str, Any]) -> bool:
        return self._send(self.endpoint, payload, "trace")

    def send_metric(self, payload: dict[str, Any], **kwargs: Any) -> bool:
        return self._send(self.metrics_endpoint, payload, "metric")

    def send_log(self, payload: dict[str, Any], **kwargs: Any) -> bool:
        return self._send(self.logs_endpoint, payload, "log")

    def flush(self) -> bool:
        return True
