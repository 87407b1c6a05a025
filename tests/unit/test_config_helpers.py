"""The 0.1 configuration helpers: same names, fields, precedence and messages (word for word),
for this package's TelemetryConfig, an object shaped like the original's, and a mapping."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import pytest

import automagik_telemetry
from automagik_telemetry import config as config_module
from automagik_telemetry.config import (
    DEFAULT_CONFIG,
    ENV_VARS,
    ConfigError,
    ConfigSchema,
    TelemetryConfig,
    ValidatedConfig,
    create_config,
    load_config_from_env,
    merge_config,
    validate_config,
)
from automagik_telemetry.config_helpers import _parse_boolean_env


@dataclass
class OldConfig:
    """The fields of the original's TelemetryConfig that its helpers read."""

    project_name: str
    version: str
    endpoint: str | None = None
    organization: str | None = "namastex"
    timeout: Any = None
    enabled: bool | None = None
    verbose: bool | None = None


def test_the_helpers_are_the_same_objects_everywhere() -> None:
    from automagik_telemetry import config_helpers

    for name in config_helpers.__all__:
        assert getattr(config_module, name) is getattr(config_helpers, name)
        if not name.startswith("_"):
            assert getattr(automagik_telemetry, name) is getattr(config_helpers, name)


def test_defaults_and_variables_are_the_originals() -> None:
    assert DEFAULT_CONFIG == {
        "endpoint": "https://telemetry.namastex.ai/v1/traces",
        "organization": "namastex",
        "timeout": 5,
        "enabled": False,
        "verbose": False,
    }
    assert ENV_VARS == {
        "ENABLED": "AUTOMAGIK_TELEMETRY_ENABLED",
        "ENDPOINT": "AUTOMAGIK_TELEMETRY_ENDPOINT",
        "VERBOSE": "AUTOMAGIK_TELEMETRY_VERBOSE",
        "TIMEOUT": "AUTOMAGIK_TELEMETRY_TIMEOUT",
    }


def test_the_dataclasses_have_the_original_fields() -> None:
    assert [(f.name, f.default) for f in dataclasses.fields(ConfigSchema)] == [
        ("project_name", dataclasses.MISSING),
        ("version", dataclasses.MISSING),
        ("endpoint", None),
        ("organization", None),
        ("timeout", None),
        ("enabled", None),
        ("verbose", None),
    ]
    assert [f.name for f in dataclasses.fields(ValidatedConfig)] == [
        "project_name",
        "version",
        "endpoint",
        "organization",
        "timeout",
        "enabled",
        "verbose",
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        (" ON ", True),
        ("Yes", True),
        ("1", True),
        ("false", False),
        ("0", False),
        ("off", False),
        ("maybe", False),
    ],
)
def test_boolean_variables_are_read_as_the_original_reads_them(text: str, value: bool) -> None:
    assert _parse_boolean_env(text) is value


def test_load_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_config_from_env() == ConfigSchema(project_name="", version="")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENABLED", "yes")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENDPOINT", "https://c.example/v1/traces")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_VERBOSE", "nope")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_TIMEOUT", "8")
    assert load_config_from_env() == ConfigSchema(
        project_name="",
        version="",
        endpoint="https://c.example/v1/traces",
        enabled=True,
        verbose=False,
        timeout=8,
    )


@pytest.mark.parametrize("timeout", ["", "0", "-3", "2.5", "soon"])
def test_an_unusable_timeout_variable_is_ignored(
    monkeypatch: pytest.MonkeyPatch, timeout: str
) -> None:
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_TIMEOUT", timeout)
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENDPOINT", "")
    loaded = load_config_from_env()
    assert loaded.timeout is None
    assert loaded.endpoint is None


MESSAGES = [
    ({"project_name": ""}, "TelemetryConfig: project_name is required and cannot be empty"),
    ({"project_name": "  "}, "TelemetryConfig: project_name is required and cannot be empty"),
    ({"version": ""}, "TelemetryConfig: version is required and cannot be empty"),
    ({"endpoint": "not-a-url"}, "TelemetryConfig: endpoint must use http or https protocol"),
    ({"endpoint": "ftp://h/x"}, "TelemetryConfig: endpoint must use http or https protocol"),
    ({"endpoint": "http://"}, "TelemetryConfig: endpoint must be a valid URL (got: http://)"),
    ({"endpoint": 42}, "TelemetryConfig: endpoint must be a valid URL (got: 42)"),
    ({"timeout": 0}, "TelemetryConfig: timeout must be a positive integer (got: 0)"),
    ({"timeout": -100}, "TelemetryConfig: timeout must be a positive integer (got: -100)"),
    ({"timeout": "x"}, "TelemetryConfig: timeout must be a positive integer (got: x)"),
    ({"timeout": True}, "TelemetryConfig: timeout must be a positive integer (got: True)"),
    ({"timeout": 70}, "TelemetryConfig: timeout should not exceed 60 seconds (got: 70)"),
    ({"organization": "   "}, "TelemetryConfig: organization cannot be empty if provided"),
]


@pytest.mark.parametrize(("change", "message"), MESSAGES)
def test_validate_config_messages_for_an_original_style_object(
    change: dict[str, Any], message: str
) -> None:
    config = dataclasses.replace(OldConfig("app", "1.0"), **change)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate_config(config)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        create_config(config)


@pytest.mark.parametrize(("change", "message"), MESSAGES)
def test_validate_config_messages_for_a_mapping(change: dict[str, Any], message: str) -> None:
    options = {"project_name": "app", "version": "1.0", **change}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate_config(options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 70}, "TelemetryConfig: timeout should not exceed 60 seconds (got: 70)"),
        ({"timeout": 61.5}, "TelemetryConfig: timeout should not exceed 60 seconds (got: 61.5)"),
        ({"organization": ""}, "TelemetryConfig: organization cannot be empty if provided"),
    ],
)
def test_validate_config_applies_the_original_rules_to_our_config(
    options: dict[str, Any], message: str
) -> None:
    config = TelemetryConfig(project_name="app", version="1.0", **options)  # we accept these
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate_config(config)


def test_valid_configs_pass() -> None:
    validate_config(TelemetryConfig(project_name="app", version="1.0"))
    validate_config(TelemetryConfig(project_name="app", version="1.0", timeout=2.5))
    validate_config(OldConfig("app", "1.0", endpoint="http://example.com/traces", timeout=60))
    validate_config(OldConfig("app", "1.0", organization=None))
    validate_config({"project_name": "app", "version": "1.0", "backend": "clickhouse"})


def test_a_mapping_is_also_checked_as_options() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        validate_config({"project_name": "app", "version": "1.0", "batchsize": 10})
    with pytest.raises(ConfigError, match="batch_size"):
        validate_config({"project_name": "app", "version": "1.0", "batch_size": 0})


def test_merge_config_prefers_code_then_environment_then_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert merge_config(OldConfig("app", "1.0")) == ValidatedConfig(
        "app", "1.0", "https://telemetry.namastex.ai/v1/traces", "namastex", 5, False, False
    )
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENDPOINT", "https://env.example/v1/traces")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_TIMEOUT", "7")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENABLED", "true")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_VERBOSE", "true")
    from_env = merge_config(OldConfig("app", "1.0"))
    assert (from_env.endpoint, from_env.timeout, from_env.enabled, from_env.verbose) == (
        "https://env.example/v1/traces",
        7,
        True,
        True,
    )
    in_code = merge_config(
        OldConfig("app", "1.0", "https://code.example/t", "org", 9, enabled=False, verbose=False)
    )
    assert in_code == ValidatedConfig(
        "app", "1.0", "https://code.example/t", "org", 9, False, False
    )


def test_merge_config_of_our_config_and_of_a_mapping() -> None:
    ours = merge_config(TelemetryConfig(project_name="app", version="2.0", timeout=3))
    assert ours == ValidatedConfig(
        "app", "2.0", "https://telemetry.namastex.ai/v1/traces", "namastex", 3, False, False
    )
    assert isinstance(ours.timeout, int)
    assert (
        merge_config(TelemetryConfig(project_name="app", version="2.0", timeout=2.5)).timeout == 2.5
    )
    mapped = create_config({"project_name": "m", "version": "1", "enabled": True})
    assert (mapped.project_name, mapped.enabled, mapped.organization) == ("m", True, "namastex")
