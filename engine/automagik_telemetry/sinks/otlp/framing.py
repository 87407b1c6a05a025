"""OTLP requests around a batch of wire rows: the JSON envelope per signal, the protobuf
``ResourceX``/``ScopeX`` fields around the rows, and the requests' content types."""

from __future__ import annotations

from typing import Final

from ...rows.otlp_protobuf import varint

JSON_TYPE: Final = "application/json"
PROTOBUF_TYPE: Final = "application/x-protobuf"

# JSON envelope names per signal: (resource list, scope list, item list).
_JSON_NAMES: Final = (
    ("resourceSpans", "scopeSpans", "spans"),
    ("resourceMetrics", "scopeMetrics", "metrics"),
    ("resourceLogs", "scopeLogs", "logRecords"),
)


def json_envelope(kind: int, resource: bytes, scope: bytes) -> tuple[bytes, bytes]:
    """(prefix, suffix) of an OTLP/JSON export request of ring kind ``kind``."""
    outer, inner, items = _JSON_NAMES[kind]
    prefix = (
        f'{{"{outer}":[{{"resource":'.encode()
        + resource
        + f',"{inner}":[{{"scope":'.encode()
        + scope
        + f',"{items}":['.encode()
    )
    return prefix, b"]}]}]}"


def frame_json(prefix: bytes, suffix: bytes, body: bytes | bytearray) -> bytes:
    """A JSON request around rows that each end with ``}\\n``."""
    return b"".join((prefix, body.replace(b"\n{", b",{"), suffix))


def frame_protobuf(resource_field: bytes, scope_field: bytes, body: bytes | bytearray) -> bytes:
    """An ``Export*ServiceRequest`` around rows that are each a field 2 of ``Scope*``:
    ``resource_*`` (1) { ``resource`` (1), ``scope_*`` (2) { ``scope`` (1), body } }."""
    scope_length = len(scope_field) + len(body)
    scope_head = b"\x12" + varint(scope_length)
    outer_length = len(resource_field) + len(scope_head) + scope_length
    head = b"\x0a" + varint(outer_length) + resource_field + scope_head + scope_field
    return b"".join((head, body))
