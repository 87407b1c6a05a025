"""The vocabulary of the public API: metric types, log severities, standard event names."""

from __future__ import annotations

from enum import Enum
from typing import Final


class MetricType(Enum):
    """Kind of a metric point. Values are the original SDK's strings."""

    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"


class LogSeverity(Enum):
    """Log severity; values are OpenTelemetry severity numbers."""

    TRACE = 1
    DEBUG = 5
    INFO = 9
    WARN = 13
    ERROR = 17
    FATAL = 21


class StandardEvents:
    """Event names shared by automagik projects, so dashboards can rely on them."""

    FEATURE_USED: Final = "automagik.feature.used"
    API_REQUEST: Final = "automagik.api.request"
    COMMAND_EXECUTED: Final = "automagik.cli.command"
    OPERATION_LATENCY: Final = "automagik.performance.latency"
    ERROR_OCCURRED: Final = "automagik.error"
    SERVICE_HEALTH: Final = "automagik.health"


_SEVERITY_ALIASES: Final = {"WARNING": "WARN", "CRITICAL": "FATAL", "ERR": "ERROR"}


def parse_metric_type(value: MetricType | str) -> MetricType | None:
    """A MetricType, or its name or value in any case ("counter", "COUNTER"); None if unknown."""
    if isinstance(value, MetricType):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        for member in MetricType:
            if text in (member.value, member.name.lower()):
                return member
        if text == "sum":
            return MetricType.COUNTER
    return None


def parse_severity(value: LogSeverity | str | int) -> LogSeverity | None:
    """A LogSeverity, its name in any case (or WARNING, CRITICAL), or its number; else None."""
    if isinstance(value, LogSeverity):
        return value
    if isinstance(value, str):
        name = value.strip().upper()
        name = _SEVERITY_ALIASES.get(name, name)
        return LogSeverity.__members__.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        for member in LogSeverity:
            if member.value <= value < member.value + 4:
                return member
    return None
