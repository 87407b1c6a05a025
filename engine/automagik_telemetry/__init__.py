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
    from .config_helpers import (
        DEFAULT_CONFIG,
        ENV_VARS,
        ConfigSchema,
        ValidatedConfig,
        create_config,
        load_config_from_env,
        merge_config,
        validate_config,
    )
    from .opt_in import TelemetryOptIn, prompt_user_if_needed, should_prompt_user
    from .privacy import (
        SENSITIVE_KEYS,
        PrivacyConfig,
        detect_pii,
        hash_value,
        redact_sensitive_keys,
        sanitize_email,
        sanitize_phone,
        sanitize_telemetry_data,
        sanitize_value,
        truncate_string,
    )
    from .schema import LogSeverity, MetricType, StandardEvents

#: where each public name lives; the 26 names of automagik-telemetry 0.1 first, then ours
_HOMES: dict[str, str] = {
    "AutomagikTelemetry": "client",
    "TelemetryConfig": "config",
    "MetricType": "schema",
    "LogSeverity": "schema",
    "StandardEvents": "schema",
    "TelemetryOptIn": "opt_in",
    "prompt_user_if_needed": "opt_in",
    "should_prompt_user": "opt_in",
    "ConfigSchema": "config_helpers",
    "ValidatedConfig": "config_helpers",
    "create_config": "config_helpers",
    "load_config_from_env": "config_helpers",
    "merge_config": "config_helpers",
    "validate_config": "config_helpers",
    "DEFAULT_CONFIG": "config_helpers",
    "ENV_VARS": "config_helpers",
    "PrivacyConfig": "privacy",
    "SENSITIVE_KEYS": "privacy",
    "detect_pii": "privacy",
    "hash_value": "privacy",
    "redact_sensitive_keys": "privacy",
    "sanitize_email": "privacy",
    "sanitize_phone": "privacy",
    "sanitize_telemetry_data": "privacy",
    "sanitize_value": "privacy",
    "truncate_string": "privacy",
    # ours
    "ConfigError": "config",
}

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_VARS",
    "SENSITIVE_KEYS",
    "AutomagikTelemetry",
    "ConfigError",
    "ConfigSchema",
    "LogSeverity",
    "MetricType",
    "PrivacyConfig",
    "StandardEvents",
    "TelemetryConfig",
    "TelemetryOptIn",
    "ValidatedConfig",
    "__version__",
    "create_config",
    "detect_pii",
    "hash_value",
    "load_config_from_env",
    "merge_config",
    "prompt_user_if_needed",
    "redact_sensitive_keys",
    "sanitize_email",
    "sanitize_phone",
    "sanitize_telemetry_data",
    "sanitize_value",
    "should_prompt_user",
    "truncate_string",
    "validate_config",
]


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
