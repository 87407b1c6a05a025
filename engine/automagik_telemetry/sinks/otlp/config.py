"""Where OTLP rows go, and how: endpoints, protocol, headers, compression and time-out per signal.

``resolve_otlp(config, environ)`` is a pure function of a ``TelemetryConfig`` and an environment
mapping. It layers, for each signal (traces, metrics, logs, in ring-kind order):

1. the option given in code (``config.sources[name] == "code"``),
2. its ``AUTOMAGIK_TELEMETRY_*`` variable (already resolved by ``TelemetryConfig``),
3. ``OTEL_EXPORTER_OTLP_<SIGNAL>_*`` (``TRACES``, ``METRICS``, ``LOGS``),
4. ``OTEL_EXPORTER_OTLP_*``,
5. the default (the vendor's endpoint for endpoints).

Endpoints
---------
* ``endpoint`` (code or ``AUTOMAGIK_TELEMETRY_ENDPOINT``) names all three signals, as the
  original SDK did: when its last path segment is ``traces``, ``metrics`` or ``logs``
  (``https://collector:4318/v1/traces``) the other signals replace that segment
  (``.../v1/metrics``, ``.../v1/logs``); any other URL is a base URL and gets
  ``/v1/<signal>`` appended (``https://collector:4318`` or ``https://gateway/otlp``).
* ``metrics_endpoint`` / ``logs_endpoint`` are used as given, except that a URL without a path
  gets ``/v1/<signal>``. Within a layer the signal's own option wins over ``endpoint``; a layer
  above wins over a layer below (so ``endpoint=`` in code beats
  ``AUTOMAGIK_TELEMETRY_METRICS_ENDPOINT``: code > environment, as for every option).
* ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL to which ``/v1/<signal>`` is always appended;
  ``OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`` is used as-is (both per the OpenTelemetry
  specification). They apply only when neither layer above gives an endpoint.

A signal whose endpoint is the vendor's (``https://telemetry.namastex.ai/v1/<signal>``) is *not
configured* (``OtlpDestination.configured``): sending there needs an explicit opt-in
(``enabled=True``), see ``opt_in.py``. ``OTEL_EXPORTER_OTLP_*HEADERS`` are never sent to the
vendor's endpoint: they carry credentials meant for the collector the user configured.

Invalid values
--------------
``AUTOMAGIK_TELEMETRY_*`` values are checked by ``TelemetryConfig`` and fail at construction.
An invalid ``OTEL_EXPORTER_OTLP_*`` value is ignored with a warning (``warnings``), as the
OpenTelemetry specification asks of SDKs, so a variable meant for another SDK in the same
environment never stops the application. ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` is such a value:
this engine speaks OTLP/HTTP only, so it uses ``http/protobuf`` and says so (and, when the
endpoint's port is 4317, that the collector's OTLP/HTTP port is usually 4318).
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from ..._net import is_loopback
from ...config import VENDOR_ENDPOINT, ConfigError, TelemetryConfig, _as_headers, _as_url

SIGNALS: Final = ("traces", "metrics", "logs")  # ring kind order
PROTOCOLS: Final = ("http/json", "http/protobuf")
DEFAULT_PROTOCOL: Final = "http/json"
OTEL_PREFIX: Final = "OTEL_EXPORTER_OTLP_"
MAX_TIMEOUT_SECONDS: Final = 300.0

_ENDPOINT_OPTIONS: Final = ("endpoint", "metrics_endpoint", "logs_endpoint")


@dataclass(frozen=True)
class OtlpDestination:
    """Everything about where and how each signal is sent, in ring-kind order."""

    endpoints: tuple[str, str, str]
    configured: tuple[bool, bool, bool]  # chosen by the user, not the vendor's default
    protocol: str  # http/json | http/protobuf (one for all signals)
    headers: tuple[dict[str, str], dict[str, str], dict[str, str]]
    compressions: tuple[str, str, str]  # gzip | none (| lz4 | zstd when asked in code)
    timeouts: tuple[float, float, float]  # seconds
    sources: dict[str, str] = field(default_factory=dict)  # "<signal>_<what>" -> where from
    warnings: tuple[str, ...] = ()


def otel_var(what: str, signal: str | None = None) -> str:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``."""
    return f"{OTEL_PREFIX}{signal.upper()}_{what}" if signal else f"{OTEL_PREFIX}{what}"


def vendor_endpoints() -> tuple[str, str, str]:
    return derive_endpoints(VENDOR_ENDPOINT)


class SignalNotSent(RuntimeError):
    """A track call for a signal that has no destination it may be sent to."""


def _with_path(url: str, path: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=path))


def derive_endpoints(endpoint: str) -> tuple[str, str, str]:
    """The three signal URLs named by one ``endpoint`` (see the module docstring)."""
    path = urllib.parse.urlsplit(endpoint).path.rstrip("/")
    head, _, last = path.rpartition("/")
    if last in SIGNALS:
        return _three(_with_path(endpoint, f"{head}/{s}") for s in SIGNALS)
    return _three(_with_path(endpoint, f"{path}/v1/{s}") for s in SIGNALS)


def signal_endpoint(url: str, signal: str) -> str:
    """A signal's own endpoint option: as given, or with ``/v1/<signal>`` when it has no path."""
    if urllib.parse.urlsplit(url).path.strip("/"):
        return url
    return _with_path(url, f"/v1/{signal}")


def otel_base_endpoint(url: str, signal: str) -> str:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` semantics: always a base URL."""
    path = urllib.parse.urlsplit(url).path.rstrip("/")
    return _with_path(url, f"{path}/v1/{signal}")


def _three(items: Iterable[str]) -> tuple[str, str, str]:
    a, b, c = items
    return a, b, c


class _Resolver:
    """One resolution: the environment, and the warnings collected on the way."""

    def __init__(self, config: TelemetryConfig, environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = environ
        self.warnings: list[str] = []
        self.sources: dict[str, str] = {}
        self.endpoints: tuple[str, ...] = ()

    def source(self, option: str) -> str:
        return self.config.sources.get(option, "default")

    def given(self, option: str) -> bool:
        """Whether an option was set in code or by its AUTOMAGIK_TELEMETRY_* variable."""
        return self.source(option) != "default" and getattr(self.config, option) is not None

    def otel(self, what: str, signal: str) -> list[tuple[str, str]]:
        """(variable, value) of the per-signal variable, then of the generic one, those set.
        Callers take the first valid one: an invalid value is ignored with a warning."""
        found = []
        for name in (otel_var(what, signal), otel_var(what)):
            value = self.environ.get(name)
            if value is not None and value.strip():
                found.append((name, value.strip()))
        return found

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    # --- endpoints

    def endpoint(self, index: int, signal: str) -> str:
        config = self.config
        # The signal's own option, then `endpoint`: first those given in code, then those from
        # AUTOMAGIK_TELEMETRY_* variables.
        options = tuple(dict.fromkeys((_ENDPOINT_OPTIONS[index], "endpoint")))
        for in_code in (True, False):
            for option in options:
                if not self.given(option) or (self.source(option) == "code") != in_code:
                    continue
                url: str = getattr(config, option)
                self.sources[f"{signal}_endpoint"] = self.source(option)
                if option == "endpoint":
                    return derive_endpoints(url)[index]
                return signal_endpoint(url, signal)
        for name in (otel_var("ENDPOINT", signal), otel_var("ENDPOINT")):
            value = self.environ.get(name, "").strip()
            if not value:
                continue
            try:
                url = _as_url(name, value, "http://collector:4318")
            except ConfigError as exc:
                self.warn(f"{exc}; {name} is ignored")
                continue
            self.sources[f"{signal}_endpoint"] = name
            return url if name != otel_var("ENDPOINT") else otel_base_endpoint(url, signal)
        self.sources[f"{signal}_endpoint"] = "default"
        return vendor_endpoints()[index]

    # --- protocol

    def protocol(self) -> str:
        if self.given("otlp_protocol"):
            self.sources["protocol"] = self.source("otlp_protocol")
            return self.config.otlp_protocol
        chosen: list[tuple[str, str]] = []  # per signal: (protocol, where it came from)
        for signal in SIGNALS:
            valid = (
                (value, name)
                for name, text in self.otel("PROTOCOL", signal)
                if (value := self._otel_protocol(name, text))
            )
            chosen.append(next(valid, (DEFAULT_PROTOCOL, "default")))
        protocol, where = chosen[0]
        if len({value for value, _ in chosen}) > 1:
            each = ", ".join(f"{s}={v}" for s, (v, _) in zip(SIGNALS, chosen, strict=True))
            self.warn(
                "different OTLP protocols per signal are not supported (one client writes one "
                f"encoding): {each}; using {protocol} for all signals"
            )
        self.sources["protocol"] = where
        return protocol

    def _otel_protocol(self, name: str, text: str) -> str | None:
        value = text.lower()
        if value in PROTOCOLS:
            return value
        if value == "grpc":
            hint = ""
            ports = [urllib.parse.urlsplit(url).port for url in self.endpoints]
            if 4317 in ports:
                hint = (
                    "; the endpoint's port is 4317 (OTLP/gRPC): a collector's OTLP/HTTP port is "
                    "usually 4318"
                )
            self.warn(
                f"{name}=grpc is not supported: automagik-telemetry speaks OTLP/HTTP only, so it "
                f"sends http/protobuf{hint}"
            )
            return "http/protobuf"
        self.warn(
            f"{name}={text!r} is not allowed: expected http/json or http/protobuf; "
            f"{name} is ignored"
        )
        return None

    # --- headers

    def headers(self, signal: str, configured: bool) -> dict[str, str]:
        if self.given("otlp_headers"):
            self.sources[f"{signal}_headers"] = self.source("otlp_headers")
            return dict(self.config.otlp_headers or {})
        for name, text in self.otel("HEADERS", signal):
            if not configured:
                self.warn(
                    f"{name} is not sent to the vendor's endpoint (it holds credentials for a "
                    "collector you configure with OTEL_EXPORTER_OTLP_ENDPOINT); use "
                    "otlp_headers for the vendor"
                )
                return {}
            try:
                parsed = _as_headers(name, text)
            except ConfigError as exc:
                self.warn(f"{exc}; {name} is ignored")
                continue
            self.sources[f"{signal}_headers"] = name
            return parsed
        return {}

    # --- compression

    def compression(self, signal: str, url: str) -> str:
        config = self.config
        if not config.compression_enabled:
            self.sources[f"{signal}_compression"] = self.source("compression_enabled")
            return "none"
        if self.given("compression"):
            self.sources[f"{signal}_compression"] = self.source("compression")
            return auto_codec(url) if config.compression == "auto" else config.compression
        for name, text in self.otel("COMPRESSION", signal):
            value = text.lower()
            if value in ("gzip", "none"):
                self.sources[f"{signal}_compression"] = name
                return value
            self.warn(f"{name}={text!r} is not allowed: expected gzip or none; {name} is ignored")
        self.sources[f"{signal}_compression"] = "default"
        return auto_codec(url)

    # --- time-out

    def timeout(self, signal: str) -> float:
        config = self.config
        if self.given("timeout"):
            self.sources[f"{signal}_timeout"] = self.source("timeout")
            return config.timeout
        for name, text in self.otel("TIMEOUT", signal):
            try:
                millis = float(text)
            except ValueError:
                millis = math.nan
            if 0 < millis <= MAX_TIMEOUT_SECONDS * 1000:
                self.sources[f"{signal}_timeout"] = name
                return millis / 1000.0
            self.warn(
                f"{name}={text!r} is not allowed: expected milliseconds from 1 to "
                f"{int(MAX_TIMEOUT_SECONDS * 1000)}; {name} is ignored"
            )
        self.sources[f"{signal}_timeout"] = "default"
        return config.timeout


def auto_codec(url: str) -> str:
    """``compression="auto"`` for OTLP: gzip (what every OTLP receiver reads), except on
    loopback, where compressing costs CPU and saves nothing."""
    return "none" if is_loopback(url) else "gzip"


def resolve_otlp(config: TelemetryConfig, environ: Mapping[str, str]) -> OtlpDestination:
    """The OTLP destination of ``config`` in ``environ`` (see the module docstring)."""
    r = _Resolver(config, environ)
    endpoints = _three(r.endpoint(i, s) for i, s in enumerate(SIGNALS))
    r.endpoints = endpoints
    vendor = vendor_endpoints()
    configured = (
        endpoints[0] != vendor[0],
        endpoints[1] != vendor[1],
        endpoints[2] != vendor[2],
    )
    protocol = r.protocol()
    headers = (
        r.headers(SIGNALS[0], configured[0]),
        r.headers(SIGNALS[1], configured[1]),
        r.headers(SIGNALS[2], configured[2]),
    )
    compressions = _three(r.compression(s, u) for s, u in zip(SIGNALS, endpoints, strict=True))
    timeouts = (r.timeout(SIGNALS[0]), r.timeout(SIGNALS[1]), r.timeout(SIGNALS[2]))
    return OtlpDestination(
        endpoints=endpoints,
        configured=configured,
        protocol=protocol,
        headers=headers,
        compressions=compressions,
        timeouts=timeouts,
        sources=r.sources,
        warnings=tuple(r.warnings),
    )


def unconsented_signals(config: TelemetryConfig, destination: OtlpDestination) -> list[str]:
    """Signals that would go to the vendor's endpoint although only a destination the user
    configured (for other signals) gave the consent: those are not sent (see ``opt_in.py``)."""
    from ...opt_in import vendor_opted_in  # opt_in imports the sink registry

    if vendor_opted_in(config):
        return []
    return [s for s, ok in zip(SIGNALS, destination.configured, strict=True) if not ok]


def redact_url(url: str) -> str:
    """A URL fit for logs: scheme, host, port and path (a query may hold an API key)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
