"""Consent: whether a client sends anything, and why.

The rule (documented in the README, "Consent"):
1. ``enabled=True`` / ``enabled=False`` given in code decides.
2. Else ``AUTOMAGIK_TELEMETRY_ENABLED`` (true/false) decides.
3. Else an opt-out disables: ``DO_NOT_TRACK`` set to anything but 0/false, or the file
   ``~/.automagik-no-telemetry``.
4. Else a destination the user configured (ClickHouse, the embedded engine, an OTLP endpoint
   other than the vendor's) is enabled: configuring it is the consent.
5. Else (the vendor's endpoint by default) it stays disabled: sending there needs an opt-in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .config import VENDOR_ENDPOINT, TelemetryConfig
from .sinks import sink_spec

OPT_OUT_FILE: Final = Path("~/.automagik-no-telemetry")


def opt_out_file() -> Path:
    return OPT_OUT_FILE.expanduser()


@dataclass(frozen=True)
class Consent:
    enabled: bool
    reason: str


def _do_not_track(environ: Mapping[str, str]) -> bool:
    value = environ.get("DO_NOT_TRACK")
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def destination_configured(config: TelemetryConfig, environ: Mapping[str, str]) -> bool:
    """Whether the user chose where rows go: a ClickHouse backend, or an OTLP endpoint that is
    not the vendor's for at least one signal, as ``otlp_config.resolve_otlp`` derives it (an
    OTEL_* variable shadowed by an option does not count; the vendor's URL given explicitly,
    or its base URL, does not either). Signals left on the vendor's endpoint are then not sent
    without an opt-in (``otlp_config.unconsented_signals``)."""
    return sink_spec(config.backend).configured(config, environ)


def decide(config: TelemetryConfig, environ: Mapping[str, str] | None = None) -> Consent:
    env = os.environ if environ is None else environ
    if config.enabled is not None:
        source = config.sources.get("enabled", "code")
        where = "enabled=" + str(config.enabled) if source == "code" else f"{source}"
        return Consent(config.enabled, f"{where} ({'opt-in' if config.enabled else 'opt-out'})")
    if _do_not_track(env):
        return Consent(False, "DO_NOT_TRACK is set (opt-out)")
    if opt_out_file().exists():
        return Consent(False, f"{opt_out_file()} exists (opt-out)")
    if destination_configured(config, env):
        return Consent(True, f"a destination was configured (backend={config.backend})")
    return Consent(
        False,
        f"no destination configured: sending to the vendor's {VENDOR_ENDPOINT} needs an opt-in "
        "(enabled=True or AUTOMAGIK_TELEMETRY_ENABLED=true)",
    )
