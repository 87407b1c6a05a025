"""Configuration: precedence, defaults of the original SDK, clear errors."""

from __future__ import annotations

import pytest

from automagik_telemetry import AutomagikTelemetry, ConfigError, TelemetryConfig
from automagik_telemetry.config import options_markdown


def config(environ: dict[str, str] | None = None, **options: object) -> TelemetryConfig:
    return TelemetryConfig(project_name="app", version="1.0", environ=environ or {}, **options)


def test_defaults_keep_the_original_sdk_fields() -> None:
    c = config()
    assert (c.organization, c.timeout, c.batch_size, c.flush_interval) == (
        "namastex",
        5.0,
        100,
        5.0,
    )
    assert (c.compression_enabled, c.compression_threshold, c.max_retries) == (True, 1024, 3)
    assert c.retry_backoff_base == 1.0 and c.backend == "otlp" and c.enabled is None
    assert c.endpoint is None and c.metrics_endpoint is None and c.logs_endpoint is None
    assert (c.clickhouse_endpoint, c.clickhouse_database, c.clickhouse_table) == (
        "http://localhost:8123", "telemetry", "traces")  # fmt: skip
    assert (c.clickhouse_metrics_table, c.clickhouse_logs_table) == ("metrics", "logs")
    assert (c.clickhouse_username, c.clickhouse_password, c.verbose) == ("default", "", False)


def test_code_beats_environment_beats_default() -> None:
    env = {
        "AUTOMAGIK_TELEMETRY_BACKEND": "clickhouse",
        "AUTOMAGIK_TELEMETRY_CLICKHOUSE_ENDPOINT": "http://ch.internal:8123",
        "AUTOMAGIK_TELEMETRY_CLICKHOUSE_DATABASE": "envdb",
        "AUTOMAGIK_TELEMETRY_CLICKHOUSE_USERNAME": "envuser",
        "AUTOMAGIK_TELEMETRY_CLICKHOUSE_PASSWORD": "envpass",
        "AUTOMAGIK_TELEMETRY_CLICKHOUSE_TABLE": "envtraces",
        "AUTOMAGIK_TELEMETRY_VERBOSE": "yes",
        "AUTOMAGIK_TELEMETRY_BATCH_SIZE": "500",
    }
    from_env = config(env)
    assert (
        from_env.backend == "clickhouse"
        and from_env.clickhouse_endpoint == "http://ch.internal:8123"
    )
    assert (from_env.clickhouse_database, from_env.clickhouse_username) == ("envdb", "envuser")
    assert (from_env.clickhouse_password, from_env.clickhouse_table) == ("envpass", "envtraces")
    assert from_env.verbose is True and from_env.batch_size == 500
    assert from_env.sources["batch_size"] == "AUTOMAGIK_TELEMETRY_BATCH_SIZE"
    in_code = config(env, backend="otlp", batch_size=7, clickhouse_database="codedb")
    assert (in_code.backend, in_code.batch_size, in_code.clickhouse_database) == (
        "otlp",
        7,
        "codedb",
    )
    assert in_code.sources["batch_size"] == "code"
    assert config().sources["batch_size"] == "default"


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("batch_size", 0, "from 1 to"),
        ("backend", "kafka", "'otlp', 'clickhouse', 'embedded'"),
        ("clickhouse_endpoint", "localhost", "http:// or https:// URL"),
        ("timeout", -1, "greater than 0"),
        ("flush_interval", "soon", "number of seconds"),
        ("ring_size", 100_000, "power of two"),
        ("on_full", "wait", "'block', 'drop'"),
        ("compression", "brotli", "'auto', 'lz4', 'gzip', 'zstd', 'none'"),
        ("clickhouse_table", "traces; DROP", "letters, digits and underscores"),
        ("endpoint", "ftp://x", "http:// or https:// URL"),
        ("otlp_encode_in", "thread", "'writer', 'caller'"),
        ("max_batch_bytes", 1000, "from 65536 to"),
    ],
)
def test_bad_values_fail_at_construction_naming_option_value_and_rule(
    option: str, value: object, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config(**{option: value})
    message = str(info.value)
    assert (message.startswith(f"{option}=") and repr(value) in message) or str(value) in message
    assert allowed in message


def test_request_size_and_encoding_place_defaults_per_backend() -> None:
    assert config(backend="otlp").resolved_max_batch_bytes() == 4 << 20
    assert config(backend="clickhouse").resolved_max_batch_bytes() == 16 << 20
    assert config(backend="otlp", max_batch_bytes=1 << 20).resolved_max_batch_bytes() == 1 << 20
    env = {"AUTOMAGIK_TELEMETRY_MAX_BATCH_BYTES": "2097152"}
    assert config(env, backend="otlp").resolved_max_batch_bytes() == 2 << 20
    assert config().otlp_encode_in == "writer"
    assert config({"AUTOMAGIK_TELEMETRY_OTLP_ENCODE_IN": "caller"}).otlp_encode_in == "caller"


@pytest.mark.parametrize(
    ("variable", "value", "allowed", "option", "default"),
    [
        ("AUTOMAGIK_TELEMETRY_TIMEOUT", "not_a_number", "number of seconds", "timeout", 5.0),
        ("AUTOMAGIK_TELEMETRY_ENABLED", "maybe", "expected true or false", "enabled", None),
        ("AUTOMAGIK_TELEMETRY_BACKEND", "foo", "'otlp', 'clickhouse', 'embedded'", "backend",
         "otlp"),
        ("AUTOMAGIK_TELEMETRY_BATCH_SIZE", "many", "whole number", "batch_size", 100),
        ("AUTOMAGIK_TELEMETRY_TIMEOUT", "900000", "greater than 0", "timeout", 5.0),
    ],
)  # fmt: skip
def test_a_bad_environment_value_warns_once_and_the_default_is_used(
    variable: str,
    value: str,
    allowed: str,
    option: str,
    default: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("WARNING", logger="automagik_telemetry")
    env = {variable: value}
    first, second = config(env), config(env)
    assert getattr(first, option) == default and getattr(second, option) == default
    assert first.sources[option] == "default"
    (warning,) = first.environment_warnings
    assert second.environment_warnings == (warning,)
    assert warning.startswith(f"{variable}={value!r} is not allowed") and allowed in warning
    assert "the default" in warning
    logged = [r.getMessage() for r in caplog.records if variable in r.getMessage()]
    assert logged == [warning]  # once per process, however many configs read it


def test_a_bad_value_in_code_still_fails_even_when_the_environment_is_fine() -> None:
    with pytest.raises(ConfigError, match="timeout=5000"):
        config({"AUTOMAGIK_TELEMETRY_TIMEOUT": "5"}, timeout=5000)
    with pytest.raises(ConfigError, match="enabled='maybe'"):
        config(enabled="maybe")


def test_timeout_in_milliseconds_from_the_environment() -> None:
    ms = config({"AUTOMAGIK_TELEMETRY_TIMEOUT": "5000"})
    assert ms.timeout == 5.0 and ms.sources["timeout"] == "AUTOMAGIK_TELEMETRY_TIMEOUT"
    (warning,) = ms.environment_warnings
    assert "read as milliseconds (5 s)" in warning
    assert config({"AUTOMAGIK_TELEMETRY_TIMEOUT": "300"}).timeout == 300.0  # seconds
    assert config({"AUTOMAGIK_TELEMETRY_TIMEOUT": "2500ms"}).timeout == 2.5
    assert config({"AUTOMAGIK_TELEMETRY_TIMEOUT": "7s"}).timeout == 7.0
    assert config(timeout="1500ms").timeout == 1.5
    assert config({"AUTOMAGIK_TELEMETRY_TIMEOUT": "2500ms"}).environment_warnings == ()


def test_the_config_is_a_dataclass_with_a_typed_keyword_signature() -> None:
    import dataclasses
    import inspect
    import typing

    from automagik_telemetry.config import OPTIONS

    names = [o.name for o in OPTIONS]
    assert [f.name for f in dataclasses.fields(TelemetryConfig)] == names
    defaults = {f.name: f.default for f in dataclasses.fields(TelemetryConfig)}
    for o in OPTIONS:
        if o.name not in ("project_name", "version"):
            assert defaults[o.name] == o.default, o.name
    parameters = inspect.signature(TelemetryConfig).parameters
    assert list(parameters)[: len(names)] == names
    assert list(parameters)[len(names) :] == ["environ", "unknown"]
    hints = typing.get_type_hints(TelemetryConfig.__init__)
    assert all(name in hints for name in names)
    c = config(backend="clickhouse", clickhouse_password="s3cret", batch_size=7)
    as_dict = dataclasses.asdict(c)
    assert as_dict["batch_size"] == 7 and as_dict["clickhouse_password"] == "s3cret"
    copy = dataclasses.replace(c, batch_size=9)
    assert (copy.batch_size, copy.backend, copy.clickhouse_password) == (9, "clickhouse", "s3cret")
    assert copy == dataclasses.replace(c, batch_size=9) and copy != c
    assert "s3cret" not in repr(copy)
    with pytest.raises(ConfigError, match="batch_size=0"):
        dataclasses.replace(c, batch_size=0)


def test_replace_keeps_the_environment_as_the_source_of_consent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENABLED", "true")
    c = TelemetryConfig("app", "1.0")
    assert c.sources["enabled"] == "AUTOMAGIK_TELEMETRY_ENABLED"
    copy = dataclasses.replace(c, batch_size=5)
    assert copy.enabled is True and copy.sources["enabled"] == "AUTOMAGIK_TELEMETRY_ENABLED"
    assert dataclasses.replace(c, enabled=False).sources["enabled"] == "code"


@pytest.mark.parametrize(
    ("environ", "name", "version", "name_source", "version_source"),
    [
        ({}, "python-program", "unknown", "program name", "default"),
        ({"AUTOMAGIK_TELEMETRY_PROJECT_NAME": "env-app",
          "AUTOMAGIK_TELEMETRY_PROJECT_VERSION": "2.0", "OTEL_SERVICE_NAME": "otel-app"},
         "env-app", "2.0", "AUTOMAGIK_TELEMETRY_PROJECT_NAME",
         "AUTOMAGIK_TELEMETRY_PROJECT_VERSION"),
        ({"OTEL_SERVICE_NAME": "otel-app",
          "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,service.version=3.1%2Bb"},
         "otel-app", "3.1+b", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=res-app,broken,x="},
         "res-app", "unknown", "OTEL_RESOURCE_ATTRIBUTES", "default"),
    ],
)  # fmt: skip
def test_project_name_and_version_may_be_left_out(
    environ: dict[str, str],
    name: str,
    version: str,
    name_source: str,
    version_source: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/python-program.py", "--flag"])
    c = TelemetryConfig(environ=environ)
    assert (c.project_name, c.version) == (name, version)
    assert (c.sources["project_name"], c.sources["version"]) == (name_source, version_source)
    in_code = TelemetryConfig("code-app", "9", environ=environ)
    assert (in_code.project_name, in_code.version) == ("code-app", "9")


def test_program_name_of_python_dash_m_and_dash_c(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "argv", ["/srv/tool/mytool/__main__.py"])
    assert TelemetryConfig(environ={}).project_name == "mytool"
    monkeypatch.setattr(sys, "argv", ["-c"])
    assert TelemetryConfig(environ={}).project_name == "python"


def test_an_explicitly_empty_name_keeps_the_original_error() -> None:
    for name in ("", "   "):
        with pytest.raises(ValueError) as info:
            TelemetryConfig(name, "1.0", environ={"OTEL_SERVICE_NAME": "svc"})
        assert str(info.value) == "TelemetryConfig: project_name is required and cannot be empty"
    with pytest.raises(ValueError) as info:
        TelemetryConfig("app", "", environ={})
    assert str(info.value) == "TelemetryConfig: version is required and cannot be empty"


def test_credentials_never_in_urls_or_repr() -> None:
    with pytest.raises(ConfigError, match="credentials in the URL"):
        config(clickhouse_endpoint="http://user:pw@localhost:8123")
    c = config(clickhouse_password="s3cret", backend="clickhouse")
    assert "s3cret" not in repr(c)


def test_constructor_forms_and_the_missing_config_message() -> None:
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'config'"):
        AutomagikTelemetry()
    assert TelemetryConfig(environ={}).version == "unknown"
    with pytest.raises(TypeError, match="unknown option"):
        TelemetryConfig(project_name="a", version="1", batchsize=3)  # type: ignore[misc]
    disabled = AutomagikTelemetry(config=TelemetryConfig(project_name="a", version="1"))
    assert disabled.is_enabled() is False  # vendor default without opt-in
    assert "opt-in" in disabled.get_status()["disabled_reason"]
    keyword = AutomagikTelemetry(project_name="a", version="1", enabled=False)
    assert keyword.config.project_name == "a" and keyword.is_enabled() is False
    assert "enabled=False" in keyword.get_status()["disabled_reason"]


def test_readme_table_lists_every_option() -> None:
    table = options_markdown()
    for name in ("clickhouse_endpoint", "ring_size", "AUTOMAGIK_TELEMETRY_CLICKHOUSE_PASSWORD"):
        assert name in table


def test_the_readme_holds_the_table_as_printed_and_the_section_on_0_1() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert options_markdown() in readme
    for heading in ("## Coming from automagik-telemetry 0.1", "### The same",
                    "### Fixed on purpose", "### New"):  # fmt: skip
        assert f"\n{heading}\n" in readme


def test_a_timeout_in_code_that_reads_like_milliseconds_says_how_to_write_it() -> None:
    with pytest.raises(ConfigError) as info:
        config(timeout=5000)
    assert str(info.value) == (
        "timeout=5000 is not allowed: expected a number greater than 0.0 and at most 300.0 "
        "(for 5000 milliseconds write 5 or '5000ms')"
    )
    with pytest.raises(ConfigError, match=r"at most 300\.0$"):
        config(timeout=10_000_000)


def test_without_privacy_the_plain_encoder_is_used() -> None:
    from automagik_telemetry.privacy import PrivacyConfig
    from automagik_telemetry.rows.clickhouse import ClickHouseRows
    from automagik_telemetry.sanitising import SanitisingRows, sanitising

    rows = ClickHouseRows()
    assert sanitising(rows, None) is rows
    assert isinstance(sanitising(rows, PrivacyConfig()), SanitisingRows)
