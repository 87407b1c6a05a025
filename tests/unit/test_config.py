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


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="AUTOMAGIK_TELEMETRY_BATCH_SIZE"):
        config({"AUTOMAGIK_TELEMETRY_BATCH_SIZE": "many"})


def test_credentials_never_in_urls_or_repr() -> None:
    with pytest.raises(ConfigError, match="credentials in the URL"):
        config(clickhouse_endpoint="http://user:pw@localhost:8123")
    c = config(clickhouse_password="s3cret", backend="clickhouse")
    assert "s3cret" not in repr(c)


def test_constructor_forms_and_the_missing_config_message() -> None:
    with pytest.raises(TypeError, match="missing its config"):
        AutomagikTelemetry()
    with pytest.raises(TypeError, match="TelemetryConfig needs project_name and version"):
        TelemetryConfig()
    with pytest.raises(TypeError, match="unknown option"):
        TelemetryConfig(project_name="a", version="1", batchsize=3)
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
