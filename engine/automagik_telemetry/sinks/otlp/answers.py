"""What an OTLP receiver's answer means for a batch (the OTLP/HTTP specification's rules; see
``sink.py``'s docstring): delivered, partly rejected, worth another attempt, refused for what
it holds, too large, or a configuration to fix. No message holds a header value or a URL's
query string."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import urllib3

from ...retry import RETRYABLE_STATUS
from ...transport import Outcome, connection_failure, parse_retry_after
from .config import SIGNALS, redact_url
from .framing import PROTOBUF_TYPE

MAX_MESSAGE: Final = 500
# partial_success counters per signal, in OTLP/JSON spelling.
_REJECTED_JSON: Final = ("rejectedSpans", "rejectedDataPoints", "rejectedLogRecords")
ITEM_NAMES: Final = ("spans", "data points", "log records")


# --- answers --------------------------------------------------------------------------------


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def protobuf_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message's top-level fields; ValueError if malformed."""
    position = 0
    size = len(data)
    while position < size:
        key, position = _read_varint(data, position)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, position = _read_varint(data, position)
        elif wire == 2:
            length, position = _read_varint(data, position)
            value = data[position : position + length]
            position += length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value = data[position : position + width]
            position += width
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if position > size:
            raise ValueError("truncated field")
        yield number, value


def _media_type(response: urllib3.BaseHTTPResponse) -> str:
    return (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def _tidy(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def receiver_message(response: urllib3.BaseHTTPResponse) -> str:
    """The receiver's own words: the message of a ``google.rpc.Status`` (protobuf or JSON), or
    the body's text."""
    data = bytes(response.data or b"")[:65536]
    media = _media_type(response)
    if not data:
        return ""
    if media == PROTOBUF_TYPE:
        try:
            for number, value in protobuf_fields(data):
                if number == 2 and isinstance(value, bytes):
                    return _tidy(value.decode("utf-8", "replace"))
        except ValueError:
            pass
        return f"(an unreadable protobuf body of {len(data)} bytes)"
    text = data.decode("utf-8", "replace")
    if media.endswith("json") or text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict):
            message = document.get("message") or document.get("error")
            if isinstance(message, str) and message:
                return _tidy(message)
    return _tidy(text)


@dataclass(frozen=True)
class PartialSuccess:
    rejected: int
    message: str


def partial_success(kind: int, response: urllib3.BaseHTTPResponse) -> PartialSuccess | None:
    """The ``partial_success`` of a 2xx ``Export*ServiceResponse``, if it says anything."""
    data = bytes(response.data or b"")
    if not data:
        return None
    rejected, message = 0, ""
    if _media_type(response) == PROTOBUF_TYPE:
        try:
            for number, value in protobuf_fields(data):
                if number == 1 and isinstance(value, bytes):
                    for inner, item in protobuf_fields(value):
                        if inner == 1 and isinstance(item, int):
                            rejected = item - (1 << 64) if item >= 1 << 63 else item
                        elif inner == 2 and isinstance(item, bytes):
                            message = item.decode("utf-8", "replace")
        except ValueError:
            return None
    else:
        try:
            document = json.loads(data)
        except ValueError:
            return None
        part = document.get("partialSuccess") or document.get("partial_success") or {}
        if not isinstance(part, dict):
            return None
        camel = _REJECTED_JSON[kind]
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
        try:
            rejected = int(part.get(camel) or part.get(snake) or 0)
        except (TypeError, ValueError):
            rejected = 0
        text = part.get("errorMessage") or part.get("error_message") or ""
        message = text if isinstance(text, str) else str(text)
    if rejected <= 0 and not message:
        return None
    return PartialSuccess(max(rejected, 0), _tidy(message))


def classify(
    response: urllib3.BaseHTTPResponse, *, kind: int, url: str, request_bytes: int = 0
) -> Outcome:
    """Turn an OTLP/HTTP answer into an Outcome, with the receiver's message and the fix."""
    status = response.status
    signal = SIGNALS[kind]
    where = f"the OTLP receiver at {redact_url(url)}"
    if 200 <= status < 300:
        partial = partial_success(kind, response)
        if partial is None:
            return Outcome.delivered(status)
        said = f": {partial.message}" if partial.message else ""
        return Outcome(
            ok=True,
            status=status,
            key=f"partial:{signal}",
            rejected=partial.rejected,
            message=(
                f"{where} accepted a {signal} request but rejected {partial.rejected} "
                f"{ITEM_NAMES[kind]} of it (partial success){said}; those items are not stored"
            ),
        )
    said = receiver_message(response) or response.reason or ""
    said = f": {said}" if said else ""
    if status in RETRYABLE_STATUS:
        return Outcome(
            ok=False,
            retryable=True,
            status=status,
            key=f"otlp:{status}",
            retry_after=parse_retry_after(response.headers),
            message=f"{where} answered HTTP {status}{said}; retrying",
        )
    if status in (401, 403):
        fix = (
            "Fix: give the credentials your vendor documents with otlp_headers (or "
            "OTEL_EXPORTER_OTLP_HEADERS), e.g. 'authorization=Bearer <token>'"
        )
    elif status == 404:
        fix = (
            "Fix: check endpoint / metrics_endpoint / logs_endpoint (a collector takes "
            "http://host:4318/v1/traces, /v1/metrics and /v1/logs)"
        )
    elif status == 413:
        fix = (
            f"The request was {request_bytes} bytes; it is sent again in halves. Fix: lower "
            "max_batch_bytes (AUTOMAGIK_TELEMETRY_MAX_BATCH_BYTES) below the receiver's limit"
        )
    elif status == 415:
        fix = "Fix: set otlp_protocol to the encoding the receiver reads, or compression='none'"
    elif 300 <= status < 400:
        location = redact_url(response.headers.get("Location") or "") or "elsewhere"
        fix = f"Fix: set the endpoint to where it redirects ({location})"
    elif status == 400:
        fix = (
            "The receiver could not accept the data: if it names an attribute or a limit, fix "
            "that; otherwise report it to automagik-telemetry"
        )
    else:
        fix = "Fix: check the receiver's logs"
    # 400 and 413 are about this request: the writer sets it aside (400) or splits it (413);
    # the others are about the configuration, and the rows wait for it to be fixed
    about_request = status in (400, 413)
    return Outcome(
        ok=False,
        retryable=False,
        status=status,
        key=f"otlp:{status}:{signal}",
        refused_content=status == 400,
        too_large=status == 413,
        message=(
            f"{where} refused a {signal} request (HTTP {status}){said}. {fix}"
            + ("" if about_request else "; the rows are kept and sent again later")
        ),
    )


def connection_outcome(exc: Exception, url: str) -> Outcome:
    return connection_failure(
        exc,
        lambda cause: (
            f"cannot reach the OTLP receiver at {redact_url(url)}: {cause}. Fix: start the "
            "collector or set endpoint (AUTOMAGIK_TELEMETRY_ENDPOINT or "
            "OTEL_EXPORTER_OTLP_ENDPOINT); rows are kept and retried"
        ),
    )
