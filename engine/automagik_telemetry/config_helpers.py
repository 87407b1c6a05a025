"""The configuration helpers of automagik-telemetry 0.1: ``ConfigSchema``, ``ValidatedConfig``,
``load_config_from_env``, ``merge_config``, ``validate_config``, ``create_config``,
``DEFAULT_CONFIG`` and ``ENV_VARS``, with the same names, fields, defaults, precedence and error
messages (importable from ``automagik_telemetry`` and ``automagik_telemetry.config`` too).

They work on whatever they are handed: this package's ``TelemetryConfig``, an object with the
original's attributes (``project_name``, ``version``, ``endpoint``, ``organization``, ``timeout``,
``enabled``, ``verbose``), or a mapping of options.

This package's ``TelemetryConfig`` already refuses bad values when it is built, with messages
naming the option, the value and what is allowed; ``validate_config`` adds the original's rules
on top (a timeout of at most 60 seconds, a non-blank organization) with the original's words.
Two differences on purpose: a fractional timeout (``2.5``) is accepted, since the engine honours
fractions of a second, and ``True``/``False`` are not taken for a timeout of 1/0 seconds.

This module does not import ``config`` when it is loaded (``config`` re-exports these names).
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_VARS",
    "ConfigSchema",
    "ValidatedConfig",
    "_parse_boolean_env",
    "create_config",
    "load_config_from_env",
    "merge_config",
    "validate_config",
]


@dataclass
class ConfigSchema:
    """The options the environment can give (``load_config_from_env``); the identity fields
    are empty strings there, the others None when their variable is unset or unusable."""

    project_name: str
    version: str
    endpoint: str | None = None
    organization: str | None = None
    timeout: int | None = None
    enabled: bool | None = None
    verbose: bool | None = None


@dataclass
class ValidatedConfig:
    """The result of ``merge_config``: every field has a value (code, then environment, then
    ``DEFAULT_CONFIG``)."""

    project_name: str
    version: str
    endpoint: str
    organization: str
    timeout: int | float
    enabled: bool
    verbose: bool


DEFAULT_CONFIG: Final[dict[str, str | int | bool]] = {
    "endpoint": "https://telemetry.namastex.ai/v1/traces",
    "organization": "namastex",
    "timeout": 5,
    "enabled": False,
    "verbose": False,
}

ENV_VARS: Final[dict[str, str]] = {
    "ENABLED": "AUTOMAGIK_TELEMETRY_ENABLED",
    "ENDPOINT": "AUTOMAGIK_TELEMETRY_ENDPOINT",
    "VERBOSE": "AUTOMAGIK_TELEMETRY_VERBOSE",
    "TIMEOUT": "AUTOMAGIK_TELEMETRY_TIMEOUT",
}

_TRUTHY: Final = frozenset({"true", "1", "yes", "on"})


def _parse_boolean_env(value: str) -> bool:
    """The original's reading of a boolean variable: true/1/yes/on (any case, trimmed) are
    True, anything else False."""
    return value.strip().lower() in _TRUTHY


def load_config_from_env() -> ConfigSchema:
    """The four ``ENV_VARS`` read now: booleans as ``_parse_boolean_env``, an empty endpoint
    ignored, a timeout kept only if it is a whole number above 0."""
    env = os.environ
    loaded = ConfigSchema(project_name="", version="")
    enabled = env.get(ENV_VARS["ENABLED"])
    if enabled is not None:
        loaded.enabled = _parse_boolean_env(enabled)
    endpoint = env.get(ENV_VARS["ENDPOINT"])
    if endpoint:
        loaded.endpoint = endpoint
    verbose = env.get(ENV_VARS["VERBOSE"])
    if verbose is not None:
        loaded.verbose = _parse_boolean_env(verbose)
    timeout = env.get(ENV_VARS["TIMEOUT"])
    if timeout:
        try:
            seconds = int(timeout)
        except ValueError:
            seconds = 0
        if seconds > 0:
            loaded.timeout = seconds
    return loaded


def _get(config: object, name: str) -> Any:
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def _shown(value: Any) -> str:
    """A value as the original's messages print it (a whole float as an integer)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def validate_config(config: object) -> None:
    """Raise ``ValueError`` with the original's message for the first rule ``config`` breaks:
    project_name and version not blank; endpoint an http(s) URL with a host; timeout a positive
    number of at most 60 seconds; organization, if given, not blank.

    A mapping of options is then also checked as ``TelemetryConfig(**options)`` would check it
    (unknown options and this package's own rules, as ``ValueError``)."""
    if _blank(_get(config, "project_name")):
        raise ValueError("TelemetryConfig: project_name is required and cannot be empty")
    if _blank(_get(config, "version")):
        raise ValueError("TelemetryConfig: version is required and cannot be empty")

    endpoint = _get(config, "endpoint")
    if endpoint is not None:
        try:
            parts = urllib.parse.urlparse(endpoint)
            scheme, netloc = parts.scheme, parts.netloc
        except Exception:
            raise ValueError(
                f"TelemetryConfig: endpoint must be a valid URL (got: {endpoint})"
            ) from None
        if scheme not in ("http", "https"):
            raise ValueError("TelemetryConfig: endpoint must use http or https protocol")
        if not netloc:
            raise ValueError(f"TelemetryConfig: endpoint must be a valid URL (got: {endpoint})")

    timeout = _get(config, "timeout")
    if timeout is not None:
        number = (
            isinstance(timeout, int | float)
            and not isinstance(timeout, bool)
            and math.isfinite(timeout)
        )
        if not number or timeout <= 0:
            raise ValueError(
                f"TelemetryConfig: timeout must be a positive integer (got: {_shown(timeout)})"
            )
        if timeout > 60:
            raise ValueError(
                f"TelemetryConfig: timeout should not exceed 60 seconds (got: {_shown(timeout)})"
            )

    organization = _get(config, "organization")
    if organization is not None and _blank(organization):
        raise ValueError("TelemetryConfig: organization cannot be empty if provided")

    if isinstance(config, Mapping):
        _check_as_options(config)


def _check_as_options(options: Mapping[str, Any]) -> None:
    from .config import TelemetryConfig

    try:
        TelemetryConfig(**{str(k): v for k, v in options.items()})
    except TypeError as exc:  # unknown option names
        raise ValueError(str(exc)) from None


def merge_config(user_config: object) -> ValidatedConfig:
    """Every field resolved: the value in ``user_config`` if it is set (not None, and for
    endpoint and organization not empty), else the environment's (``load_config_from_env``),
    else ``DEFAULT_CONFIG``."""
    env = load_config_from_env()

    def pick(name: str) -> Any:
        given = _get(user_config, name)
        if given is not None:
            return given
        from_env = getattr(env, name)
        return DEFAULT_CONFIG[name] if from_env is None else from_env

    timeout = pick("timeout")
    if isinstance(timeout, float) and timeout.is_integer():
        timeout = int(timeout)
    return ValidatedConfig(
        project_name=str(_get(user_config, "project_name")),
        version=str(_get(user_config, "version")),
        endpoint=str(_get(user_config, "endpoint") or env.endpoint or DEFAULT_CONFIG["endpoint"]),
        organization=str(_get(user_config, "organization") or DEFAULT_CONFIG["organization"]),
        timeout=timeout if isinstance(timeout, float) else int(timeout),
        enabled=bool(pick("enabled")),
        verbose=bool(pick("verbose")),
    )


def create_config(user_config: object) -> ValidatedConfig:
    """``validate_config`` then ``merge_config``."""
    validate_config(user_config)
    return merge_config(user_config)
