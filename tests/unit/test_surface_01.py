"""The public surface of automagik-telemetry 0.1: its 26 exported names, its module paths and
the values of its vocabulary, as this package provides them."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import automagik_telemetry

ORIGINAL_NAMES = (
    "AutomagikTelemetry",
    "TelemetryConfig",
    "MetricType",
    "LogSeverity",
    "StandardEvents",
    "TelemetryOptIn",
    "prompt_user_if_needed",
    "should_prompt_user",
    "ConfigSchema",
    "ValidatedConfig",
    "create_config",
    "load_config_from_env",
    "merge_config",
    "validate_config",
    "DEFAULT_CONFIG",
    "ENV_VARS",
    "PrivacyConfig",
    "SENSITIVE_KEYS",
    "detect_pii",
    "hash_value",
    "redact_sensitive_keys",
    "sanitize_email",
    "sanitize_phone",
    "sanitize_telemetry_data",
    "sanitize_value",
    "truncate_string",
)

#: where the original's names live, module by module (the same paths as 0.1)
MODULE_PATHS = {
    "automagik_telemetry.client": ("AutomagikTelemetry", "MetricType", "LogSeverity"),
    "automagik_telemetry.config": (
        "TelemetryConfig",
        "ConfigSchema",
        "ValidatedConfig",
        "create_config",
        "load_config_from_env",
        "merge_config",
        "validate_config",
        "DEFAULT_CONFIG",
        "ENV_VARS",
    ),
    "automagik_telemetry.opt_in": ("TelemetryOptIn", "prompt_user_if_needed", "should_prompt_user"),
    "automagik_telemetry.privacy": (
        "PrivacyConfig",
        "SENSITIVE_KEYS",
        "DEFAULT_CONFIG",
        "Patterns",
        "detect_pii",
        "hash_value",
        "redact_sensitive_keys",
        "sanitize_email",
        "sanitize_phone",
        "sanitize_telemetry_data",
        "sanitize_value",
        "truncate_string",
    ),
    "automagik_telemetry.schema": ("StandardEvents", "MetricType", "LogSeverity"),
    "automagik_telemetry.backends": ("TelemetryBackend", "ClickHouseBackend", "OTLPBackend"),
    "automagik_telemetry.backends.base": ("TelemetryBackend",),
    "automagik_telemetry.backends.clickhouse": ("ClickHouseBackend",),
    "automagik_telemetry.backends.otlp": ("OTLPBackend",),
}


def test_the_26_names_are_exported() -> None:
    assert len(ORIGINAL_NAMES) == 26
    assert set(ORIGINAL_NAMES) <= set(automagik_telemetry.__all__)
    for name in ORIGINAL_NAMES:
        assert getattr(automagik_telemetry, name) is not None
    namespace: dict[str, object] = {}
    exec("from automagik_telemetry import *", namespace)
    assert set(ORIGINAL_NAMES) <= set(namespace)


def test_every_exported_name_resolves_and_is_listed_by_dir() -> None:
    for name in automagik_telemetry.__all__:
        assert hasattr(automagik_telemetry, name)
    assert set(automagik_telemetry.__all__) <= set(dir(automagik_telemetry))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        automagik_telemetry.NoSuchName  # noqa: B018


@pytest.mark.parametrize(("module", "names"), MODULE_PATHS.items())
def test_the_module_paths_of_the_original(module: str, names: tuple[str, ...]) -> None:
    loaded = importlib.import_module(module)
    for name in names:
        assert hasattr(loaded, name), f"{module}.{name}"


def test_the_top_level_names_are_the_modules_objects() -> None:
    from automagik_telemetry import client, config, opt_in, privacy, schema

    assert automagik_telemetry.DEFAULT_CONFIG is config.DEFAULT_CONFIG  # the config one
    assert automagik_telemetry.DEFAULT_CONFIG is not privacy.DEFAULT_CONFIG
    assert automagik_telemetry.TelemetryOptIn is opt_in.TelemetryOptIn
    assert automagik_telemetry.sanitize_value is privacy.sanitize_value
    assert client.MetricType is schema.MetricType is automagik_telemetry.MetricType


def test_version_is_a_string() -> None:
    assert isinstance(automagik_telemetry.__version__, str)
    assert automagik_telemetry.__version__[0].isdigit()


def test_the_vocabulary_has_the_original_values() -> None:
    from automagik_telemetry import LogSeverity, MetricType, StandardEvents

    assert {m.name: m.value for m in MetricType} == {
        "GAUGE": "gauge",
        "COUNTER": "counter",
        "HISTOGRAM": "histogram",
    }
    assert {s.name: s.value for s in LogSeverity} == {
        "TRACE": 1,
        "DEBUG": 5,
        "INFO": 9,
        "WARN": 13,
        "ERROR": 17,
        "FATAL": 21,
    }
    assert {k: v for k, v in vars(StandardEvents).items() if k.isupper()} == {
        "FEATURE_USED": "automagik.feature.used",
        "API_REQUEST": "automagik.api.request",
        "COMMAND_EXECUTED": "automagik.cli.command",
        "OPERATION_LATENCY": "automagik.performance.latency",
        "ERROR_OCCURRED": "automagik.error",
        "SERVICE_HEALTH": "automagik.health",
    }


LAZY = r"""
import json, sys
import automagik_telemetry
before = sorted(m for m in sys.modules if m.startswith("automagik_telemetry."))
from automagik_telemetry import hash_value, validate_config
after = sorted(m for m in sys.modules if m.startswith("automagik_telemetry."))
print(json.dumps({"before": before, "after": after}))
"""


def test_the_names_are_loaded_on_first_use() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LAZY], capture_output=True, text=True, check=True, timeout=60
    )
    modules = json.loads(out.stdout)
    assert modules["before"] == ["automagik_telemetry.__about__"]
    assert "automagik_telemetry.privacy" in modules["after"]
    assert "automagik_telemetry.config_helpers" in modules["after"]
    assert "automagik_telemetry.client" not in modules["after"]
