"""automagik-telemetry: events, metrics, logs and errors to ClickHouse or any OTLP/HTTP endpoint,
through a shared-memory ring and a writer process.

The public names are loaded on first use (PEP 562), so that the writer process, which imports
``automagik_telemetry.writer`` and never the client, starts without the client's imports
(asyncio among them): the writer is up sooner, and rows wait in the ring less at start-up."""

from typing import TYPE_CHECKING, Any

from .__about__ import __version__

if TYPE_CHECKING:
    from .client import AutomagikTelemetry
    from .config import ConfigError, TelemetryConfig
    from .schema import LogSeverity, MetricType, StandardEvents

__all__ = [
    "AutomagikTelemetry",
    "ConfigError",
    "LogSeverity",
    "MetricType",
    "StandardEvents",
    "TelemetryConfig",
    "__version__",
]

_HOMES = {
    "AutomagikTelemetry": "client",
    "ConfigError": "config",
    "TelemetryConfig": "config",
    "LogSeverity": "schema",
    "MetricType": "schema",
    "StandardEvents": "schema",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
