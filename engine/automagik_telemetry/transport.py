"""HTTP delivery pieces shared by the sinks: codecs, the connection pool, outcomes.

Nothing here knows about ClickHouse or OTLP: a sink plans its request (URL, headers, body) and
classifies the answer; this module compresses and sends (how long to wait before the next
attempt is ``retry.py``'s). ``Retry-After`` parsing comes from ``urllib3.util.Retry``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

import lz4.frame
import urllib3
from urllib3.util import Retry

from .__about__ import __version__

USER_AGENT: Final = f"automagik-telemetry/{__version__}"


# --- codecs ---------------------------------------------------------------------------------


class Codec(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def content_encoding(self) -> str | None: ...

    def compress(self, data: bytes | bytearray) -> bytes: ...


class _Identity:
    name = "none"
    content_encoding: str | None = None

    def compress(self, data: bytes | bytearray) -> bytes:
        return bytes(data)


class _Gzip:
    """gzip at level 1: the cheapest level, and what every HTTP server reads."""

    name = "gzip"
    content_encoding: str | None = "gzip"

    def compress(self, data: bytes | bytearray) -> bytes:
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        return compressor.compress(data) + compressor.flush()


class _Lz4:
    """LZ4 frame format (what ClickHouse's ``Content-Encoding: lz4`` reads)."""

    name = "lz4"
    content_encoding: str | None = "lz4"

    def compress(self, data: bytes | bytearray) -> bytes:
        return bytes(lz4.frame.compress(data, compression_level=0))


class _Zstd:
    name = "zstd"
    content_encoding: str | None = "zstd"

    def __init__(self) -> None:
        import zstandard

        self._compressor = zstandard.ZstdCompressor(level=1)

    def compress(self, data: bytes | bytearray) -> bytes:
        return bytes(self._compressor.compress(bytes(data)))


def codec(name: str) -> Codec:
    if name == "gzip":
        return _Gzip()
    if name == "lz4":
        return _Lz4()
    if name == "zstd":
        return _Zstd()
    if name == "none":
        return _Identity()
    raise ValueError(f"unknown codec {name!r}")


# --- outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one attempt to deliver a batch came to."""

    ok: bool
    retryable: bool = False
    message: str = ""
    status: int | None = None
    retry_after: float | None = None
    key: str = ""  # identifies the kind of trouble, so it is logged once, not per batch
    # ok with a message: delivered, but the destination kept only part of it (OTLP partial
    # success) or the sink says something worth logging; ``rejected`` items were not kept
    rejected: int = 0
    # not ok, and about this batch, not the destination: the destination refused what the
    # batch holds (a parse error, a value it does not take), so the same bytes will be refused
    # again while other batches may pass. The writer sets such a batch aside on disk.
    refused_content: bool = False
    # not ok: the request was larger than the destination takes (HTTP 413); the writer
    # sends the batch again in halves
    too_large: bool = False
    # not ok: no answer came within the timeout; the request may still have landed, so sending
    # the batch again may store it twice where the destination cannot deduplicate
    timed_out: bool = False
    # not ok: the sink has changed how it builds this batch's request (it learnt the tables
    # again, or left a way of inserting the server refused); prepare the batch again and retry
    replan: bool = False

    @classmethod
    def delivered(cls, status: int = 200) -> Outcome:
        return cls(ok=True, status=status)


# --- HTTP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """One batch ready to send: compressed once, sent as often as the retries need."""

    kind: int
    wire: bytes | bytearray
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    raw_bytes: int = 0  # the framed body before compression (for the compression ratio)
    params: Mapping[str, str] = field(default_factory=dict)  # the statement's parameters


class BatchTooLarge(ValueError):
    """``Sink.prepare``: the request of this batch would be larger than the configured limit;
    the writer prepares it again in halves."""


class Sink(Protocol):
    """Where batches go. ``discover`` learns what the destination accepts (again after a
    failure); ``prepare`` frames and compresses a batch; ``send`` makes one attempt.

    ``origin(kind)`` is what the sink adds to every batch of ring ``kind`` that its rows do not
    hold (the shared columns, the OTLP resource), as text: the writer keeps it with a batch it
    writes to disk, and a batch replayed from there is prepared with its own origin (""
    for the sink's own), so rows keep the service, version, host and session that tracked
    them whichever process sends them."""

    name: str

    def discover(self) -> Outcome: ...

    def origin(self, kind: int) -> str: ...

    def prepare(
        self, kind: int, body: bytes | bytearray, token: str | None, origin: str = ""
    ) -> Prepared: ...

    def send(self, prepared: Prepared) -> Outcome: ...

    def close(self) -> None: ...


class HttpClient:
    """A keep-alive connection pool with the configured timeouts; never retries by itself."""

    def __init__(self, timeout: float, *, pool_size: int = 2) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            retries=False,
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            headers={"User-Agent": USER_AGENT},
        )

    def post(
        self, url: str, body: bytes | bytearray, headers: Mapping[str, str]
    ) -> urllib3.BaseHTTPResponse:
        """Send and read the whole answer. Raises ``urllib3.exceptions.HTTPError`` on connection
        errors and time-outs."""
        return self._pool.request(
            "POST", url, body=bytes(body) if isinstance(body, bytearray) else body,
            headers=dict(headers), redirect=False, preload_content=True,
        )  # fmt: skip

    def close(self) -> None:
        self._pool.clear()


def connection_failure(exc: Exception, message: Callable[[str], str]) -> Outcome:
    """A request that got no answer (refused, reset, timed out): worth another attempt;
    ``message(cause)`` says where and how to fix it."""
    cause = describe_connection_error(exc)
    return Outcome(
        ok=False, retryable=True, key=f"connect:{cause}", message=message(cause),
        timed_out=cause == "timed out",
    )  # fmt: skip


def describe_connection_error(exc: Exception) -> str:
    """The root cause of a urllib3 error, without the noise of its wrappers."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text:
        return "connection refused"
    # urllib3 2.x's NewConnectionError (a name that does not resolve, no route to the host)
    # subclasses ConnectTimeoutError: a connection that failed at once is not a timeout
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        return text
    if isinstance(reason, urllib3.exceptions.TimeoutError) or "timed out" in text.lower():
        return "timed out"
    return text


# --- answers ---------------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds, from either form (delta-seconds or an HTTP date)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, Retry().parse_retry_after(value))
    except urllib3.exceptions.InvalidHeader:
        return None
