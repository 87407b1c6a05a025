"""OTLP, the application side: which row encoder a track call uses, and what the writer must
know about the destination (``WriterSettings`` fields)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from ...rows.compact import CompactRows
from ...rows.otlp_json import OtlpJsonRows, json_resource
from ...rows.otlp_protobuf import OtlpProtobufRows, protobuf_resource
from ...settings import OtlpSettings
from .config import SIGNALS, SignalNotSent, resolve_otlp, unconsented_signals

if TYPE_CHECKING:
    from ...config import TelemetryConfig
    from ...resource import Resource
    from ...rows.clickhouse import RowEncoder

log = logging.getLogger("automagik_telemetry.otlp")


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


def otlp_settings(config: TelemetryConfig, resource: Resource) -> tuple[OtlpSettings, str]:
    """The OTLP part of ``WriterSettings`` (destination per signal, the encoded resource) and
    how the rings delimit rows. Warnings about ignored ``OTEL_EXPORTER_OTLP_*`` values are
    logged here, once per start."""
    destination = resolve_otlp(config, os.environ)
    for warning in destination.warnings:
        log.warning("%s", warning)
    endpoints = list(destination.endpoints)
    for signal in unconsented_signals(config, destination):
        endpoints[SIGNALS.index(signal)] = ""
    protobuf = destination.protocol == "http/protobuf"
    headers = destination.headers
    same_headers = headers[0] == headers[1] == headers[2]
    settings = OtlpSettings(
        endpoints=(endpoints[0], endpoints[1], endpoints[2]),
        protocol=destination.protocol,
        headers=headers[0] if same_headers else {},
        signal_headers=None if same_headers else headers,
        resource=protobuf_resource(resource) if protobuf else json_resource(resource),
        compressions=destination.compressions,
        timeouts=destination.timeouts,
    )
    record_format = (
        "sized" if config.otlp_encode_in == "writer" else "protobuf" if protobuf else "lines"
    )
    return settings, record_format
