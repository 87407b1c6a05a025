"""The row encoder of a client given a ``PrivacyConfig``: every attribute (event attributes,
error context and the ``exception.*`` attributes, metric labels, log attributes), the error's
status message and every log body go through the ``Sanitizer`` before they are encoded.

A client without ``privacy`` never builds one: its track calls go straight to the plain
encoder, with no test or call added to the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .privacy import PrivacyConfig, Sanitizer
from .rows.clickhouse import RowEncoder
from .schema import LogSeverity, MetricType


class SanitisingRows:
    """A ``RowEncoder`` that sanitises what it is given, then hands it to ``rows``."""

    def __init__(self, rows: RowEncoder, privacy: PrivacyConfig) -> None:
        self._rows = rows
        self.sanitizer = sanitizer = Sanitizer(privacy)
        self._attributes = sanitizer.attributes
        self._text = sanitizer.text

    def span(
        self, time_ns: int, name: str, attributes: Mapping[str, Any] | None, error: str | None
    ) -> bytes | bytearray:
        return self._rows.span(
            time_ns,
            name,
            attributes if not attributes else self._attributes(attributes),
            None if error is None else self._text(error),
        )

    def metric(
        self,
        time_ns: int,
        name: str,
        value: float,
        kind: MetricType,
        attributes: Mapping[str, Any] | None,
    ) -> bytes | bytearray:
        labels = attributes if not attributes else self._attributes(attributes)
        return self._rows.metric(time_ns, name, value, kind, labels)

    def log(
        self,
        time_ns: int,
        message: str,
        severity: LogSeverity,
        attributes: Mapping[str, Any] | None,
    ) -> bytes | bytearray:
        return self._rows.log(
            time_ns,
            self._text(message),
            severity,
            attributes if not attributes else self._attributes(attributes),
        )


def sanitising(rows: RowEncoder, privacy: PrivacyConfig | None) -> RowEncoder:
    """``rows`` itself without ``privacy``; else its sanitising wrapper."""
    return rows if privacy is None else SanitisingRows(rows, privacy)
