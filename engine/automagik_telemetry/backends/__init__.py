"""The backends of automagik-telemetry 0.1, for code that used them directly.

``AutomagikTelemetry`` does not use these classes: its rows go through the shared-memory ring to
the writer process, which batches, retries and spools them (``automagik_telemetry.sinks``).
These keep the original's classes, arguments and methods for programs that built a backend and
called ``send_trace`` / ``send_metric`` / ``send_log`` / ``flush`` themselves: they build the
same rows, and ``flush()`` inserts them with one synchronous HTTP request per table on the
calling thread (retried with exponential back-off, as the original does), returning whether
everything was stored. They never raise because of the network or the server.
"""

from .base import TelemetryBackend
from .clickhouse import ClickHouseBackend
from .otlp import OTLPBackend

__all__ = ["ClickHouseBackend", "OTLPBackend", "TelemetryBackend"]
