"""automagik-telemetry: events, metrics, logs and errors to ClickHouse or any OTLP/HTTP endpoint,
through a shared-memory ring and a writer process."""

from .__about__ import __version__
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
