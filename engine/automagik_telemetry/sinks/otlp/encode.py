"""OTLP, the application side: which row encoder a track call uses, and what the writer must
know about the destination (``WriterSettings`` fields)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from ...rows.compact import CompactRows
from ...rows.otlp_json import OtlpJsonRows, json_resource
from ...rows.otlp_protobuf import OtlpProtobufRows, protobuf_resource
from .config import SIGNALS, resolve_otlp, unconsented_signals

if TYPE_CHECKING:
    from ...config import TelemetryConfig
    from ...resource import Resource
    from ...rows.clickhouse import RowEncoder

log = logging.getLogger("automagik_telemetry.otlp")


class SignalNotSent(RuntimeError):
    """A track call for a signal that has no destination it may be sent to."""


def otlp_row_encoder(config: TelemetryConfig, resource: Resource) -> RowEncoder:
    """The application thread's row encoder: compact rows (the writer spells them out in JSON
    or protobuf), or, with ``otlp_encode_in="caller"``, the wire rows themselves. Signals that
    may not be sent (no endpoint of their own while consent came only from the endpoint
    configured for another signal) raise ``SignalNotSent`` instead: the client counts those
    calls as dropped and logs why once, and nothing of them leaves the process."""
    destination = resolve_otlp(config, os.environ)
    rows: CompactRows | OtlpJsonRows | OtlpProtobufRows
    if config.otlp_encode_in == "writer":
        rows = CompactRows()
    elif destination.protocol == "http/protobuf":
        rows = OtlpProtobufRows()
    else:
        rows = OtlpJsonRows()
    refused = unconsented_signals(config, destination)
    for signal in refused:
        method = {"traces": "span", "metrics": "metric", "logs": "log"}[signal]
        setattr(rows, method, _refuse(not_sent_message(refused)))
    return rows


def _refuse(message: str) -> Any:
    def refuse(*args: Any) -> bytes:
        raise SignalNotSent(message)

    return refuse


def not_sent_message(signals: list[str]) -> str:
    options = {"traces": "endpoint", "metrics": "metrics_endpoint", "logs": "logs_endpoint"}
    names = " and ".join(signals)
    return (
        f"{names} are not sent: no endpoint is configured for them "
        f"({', '.join(options[s] for s in signals)} or "
        f"OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT) and sending them to the vendor's default "
        "endpoint needs an opt-in (enabled=True or AUTOMAGIK_TELEMETRY_ENABLED=true)"
    )


def writer_options(config: TelemetryConfig, resource: Resource) -> dict[str, Any]:
    """The OTLP fields of ``WriterSettings``: destination per signal and the encoded resource.
    Warnings about ignored ``OTEL_EXPORTER_OTLP_*`` values are logged here, once per start."""
    destination = resolve_otlp(config, os.environ)
    for warning in destination.warnings:
        log.warning("%s", warning)
    endpoints = list(destination.endpoints)
    for signal in unconsented_signals(config, destination):
        endpoints[SIGNALS.index(signal)] = ""
    protobuf = destination.protocol == "http/protobuf"
    headers = destination.headers
    same_headers = headers[0] == headers[1] == headers[2]
    return {
        "otlp_endpoints": (endpoints[0], endpoints[1], endpoints[2]),
        "otlp_protocol": destination.protocol,
        "otlp_headers": headers[0] if same_headers else {},
        "otlp_signal_headers": None if same_headers else headers,
        "otlp_resource": protobuf_resource(resource) if protobuf else json_resource(resource),
        "otlp_compressions": destination.compressions,
        "otlp_timeouts": destination.timeouts,
        "record_format": (
            "sized" if config.otlp_encode_in == "writer" else "protobuf" if protobuf else "lines"
        ),
    }
