"""The interface every 0.1 backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class TelemetryBackend(ABC):
    """Takes spans, metric points and log records, and delivers them on ``flush``. Every method
    returns whether it succeeded and never raises because of the destination."""

    @abstractmethod
    def send_trace(self, payload: dict[str, Any]) -> bool:
        """Deliver (or queue) one span."""

    @abstractmethod
    def send_metric(self, payload: dict[str, Any], **kwargs: Any) -> bool:
        """Deliver (or queue) one metric point."""

    @abstractmethod
    def send_log(self, payload: dict[str, Any], **kwargs: Any) -> bool:
        """Deliver (or queue) one log record."""

    @abstractmethod
    def flush(self) -> bool:
        """Deliver everything queued; True if all of it was accepted. Safe to call again."""
