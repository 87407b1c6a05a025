"""Where OTLP rows go: endpoint derivation, the OTEL_EXPORTER_OTLP_* variables, precedence,
consent. Pure functions, an explicit environment mapping per case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from automagik_telemetry import opt_in
from automagik_telemetry.config import ConfigError, TelemetryConfig
from automagik_telemetry.sinks.otlp.config import (
    OtlpDestination,
    derive_endpoints,
    redact_url,
    resolve_otlp,
    unconsented_signals,
)

VENDOR = (
    "https://telemetry.namastex.ai/v1/traces",
    "https://telemetry.namastex.ai/v1/metrics",
    "https://telemetry.namastex.ai/v1/logs",
)
COLLECTOR = (
    "http://collector:4318/v1/traces",
    "http://collector:4318/v1/metrics",
    "http://collector:4318/v1/logs",
)


def resolve(env: dict[str, str] | None = None, **options: Any) -> OtlpDestination:
    environ = env or {}
    config = TelemetryConfig("app", "1.0", environ=environ, **options)
    return resolve_otlp(config, environ)


# --- endpoints ------------------------------------------------------------------------------


def test_default_is_the_vendor_and_not_configured() -> None:
    d = resolve()
    assert d.endpoints == VENDOR
    assert d.configured == (False, False, False)
    assert d.protocol == "http/json"
    assert d.compressions == ("gzip", "gzip", "gzip")
    assert d.timeouts == (5.0, 5.0, 5.0)
    assert d.headers == ({}, {}, {})
    assert d.warnings == ()
    assert d.sources["traces_endpoint"] == "default"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://collector:4318", COLLECTOR),  # base URL without a path
        ("http://collector:4318/", COLLECTOR),
        ("http://collector:4318/v1/traces", COLLECTOR),  # the traces URL: siblings derived
        ("http://collector:4318/v1/traces/", COLLECTOR),
        ("http://collector:4318/v1/metrics", COLLECTOR),  # any signal URL names all three
        (
            "https://gateway.example/otlp",  # a base URL with a path prefix
            (
                "https://gateway.example/otlp/v1/traces",
                "https://gateway.example/otlp/v1/metrics",
                "https://gateway.example/otlp/v1/logs",
            ),
        ),
        (
            "https://api.example/custom/traces",  # a custom path ending in "traces"
            (
                "https://api.example/custom/traces",
                "https://api.example/custom/metrics",
                "https://api.example/custom/logs",
            ),
        ),
        (
            "https://api.example/v1/traces?tenant=a",  # the query travels with every signal
            (
                "https://api.example/v1/traces?tenant=a",
                "https://api.example/v1/metrics?tenant=a",
                "https://api.example/v1/logs?tenant=a",
            ),
        ),
    ],
)
def test_endpoint_names_all_three_signals(endpoint: str, expected: tuple[str, ...]) -> None:
    assert derive_endpoints(endpoint.rstrip("/")) == expected
    d = resolve(endpoint=endpoint)
    assert d.endpoints == expected
    assert d.configured == (True, True, True)
    assert d.sources["metrics_endpoint"] == "code"


def test_signal_options_are_used_as_given_or_get_their_path() -> None:
    d = resolve(
        endpoint="http://collector:4318",
        metrics_endpoint="http://metrics-host:9000/ingest/otlp",
        logs_endpoint="http://logs-host:9000",
    )
    assert d.endpoints == (
        "http://collector:4318/v1/traces",
        "http://metrics-host:9000/ingest/otlp",
        "http://logs-host:9000/v1/logs",
    )


def test_automagik_environment_variables() -> None:
    env = {
        "AUTOMAGIK_TELEMETRY_ENDPOINT": "http://collector:4318",
        "AUTOMAGIK_TELEMETRY_LOGS_ENDPOINT": "http://logs-host:9000/v1/logs",
    }
    d = resolve(env)
    assert d.endpoints == (COLLECTOR[0], COLLECTOR[1], "http://logs-host:9000/v1/logs")
    assert d.sources["traces_endpoint"] == "AUTOMAGIK_TELEMETRY_ENDPOINT"
    assert d.sources["logs_endpoint"] == "AUTOMAGIK_TELEMETRY_LOGS_ENDPOINT"


def test_code_beats_automagik_environment_even_when_the_variable_is_more_specific() -> None:
    env = {"AUTOMAGIK_TELEMETRY_METRICS_ENDPOINT": "http://env-metrics:1/v1/metrics"}
    d = resolve(env, endpoint="http://collector:4318")
    assert d.endpoints == COLLECTOR
    # ... and a signal option in code beats an endpoint from the environment.
    env = {"AUTOMAGIK_TELEMETRY_ENDPOINT": "http://env:1"}
    d = resolve(env, metrics_endpoint="http://code-metrics:2/v1/metrics")
    assert d.endpoints == (
        "http://env:1/v1/traces",
        "http://code-metrics:2/v1/metrics",
        "http://env:1/v1/logs",
    )


def test_otel_endpoint_is_a_base_url_per_the_specification() -> None:
    d = resolve({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert d.endpoints == COLLECTOR
    assert d.configured == (True, True, True)
    assert d.sources["traces_endpoint"] == "OTEL_EXPORTER_OTLP_ENDPOINT"
    # /v1/<signal> is appended whatever the path holds (the spec's rule).
    d = resolve({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw.example/otlp/"})
    assert d.endpoints[1] == "https://gw.example/otlp/v1/metrics"
    d = resolve({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/v1/traces"})
    assert d.endpoints[0] == "http://collector:4318/v1/traces/v1/traces"


def test_otel_signal_endpoints_are_used_as_is_and_beat_the_generic_one() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces-host:4318/custom",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs-host:4318",
    }
    d = resolve(env)
    assert d.endpoints == (
        "http://traces-host:4318/custom",
        "http://collector:4318/v1/metrics",
        "http://logs-host:4318",  # as-is, no path added
    )
    assert d.sources["traces_endpoint"] == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    assert d.sources["metrics_endpoint"] == "OTEL_EXPORTER_OTLP_ENDPOINT"


def test_automagik_beats_otel_per_signal() -> None:
    env = {
        "AUTOMAGIK_TELEMETRY_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://other:4318/v1/metrics",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318",
    }
    assert resolve(env).endpoints == COLLECTOR


def test_invalid_otel_endpoint_is_ignored_with_a_warning() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318",  # no scheme
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
    }
    d = resolve(env)
    assert d.endpoints == COLLECTOR
    assert len(d.warnings) == 1
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in d.warnings[0]
    assert "ignored" in d.warnings[0]


def test_invalid_automagik_endpoint_in_the_environment_warns_and_the_default_is_used() -> None:
    env = {"AUTOMAGIK_TELEMETRY_ENDPOINT": "collector:4318"}
    config = TelemetryConfig("app", "1.0", environ=env)
    assert config.endpoint is None
    (warning,) = config.environment_warnings
    assert warning.startswith("AUTOMAGIK_TELEMETRY_ENDPOINT='collector:4318' is not allowed")
    assert resolve(env).endpoints == VENDOR
    with pytest.raises(ConfigError, match="endpoint='collector:4318'"):
        resolve(endpoint="collector:4318")


# --- protocol -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "options", "expected", "source"),
    [
        ({}, {}, "http/json", "default"),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            {},
            "http/protobuf",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
            },
            {},
            "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
        (
            {
                "AUTOMAGIK_TELEMETRY_OTLP_PROTOCOL": "http/json",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            {},
            "http/json",
            "AUTOMAGIK_TELEMETRY_OTLP_PROTOCOL",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            {"otlp_protocol": "http/protobuf"},
            "http/protobuf",
            "code",
        ),
    ],
)
def test_protocol_precedence(
    env: dict[str, str], options: dict[str, Any], expected: str, source: str
) -> None:
    d = resolve(env, **options)
    assert d.protocol == expected
    assert d.sources["protocol"] == source
    assert d.warnings == ()


def test_grpc_falls_back_to_http_protobuf_with_a_warning() -> None:
    d = resolve(
        {
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        }
    )
    assert d.protocol == "http/protobuf"
    assert len(d.warnings) == 1
    assert "grpc is not supported" in d.warnings[0]
    assert "4318" in d.warnings[0]


def test_unknown_otel_protocol_is_ignored_and_mixed_protocols_warn() -> None:
    d = resolve({"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"})
    assert d.protocol == "http/json"
    assert any("thrift" in w for w in d.warnings)
    d = resolve({"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf"})
    assert d.protocol == "http/json"  # the traces' protocol, for all signals
    assert any("not supported" in w and "metrics=http/protobuf" in w for w in d.warnings)


def test_grpc_in_code_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="otlp_protocol='grpc'"):
        resolve(otlp_protocol="grpc")


# --- headers --------------------------------------------------------------------------------


def test_headers_from_code_and_automagik_environment() -> None:
    d = resolve(endpoint="http://collector:4318", otlp_headers={"api-key": "s3cret"})
    assert d.headers == ({"api-key": "s3cret"},) * 3
    env = {"AUTOMAGIK_TELEMETRY_OTLP_HEADERS": "api-key=s3cret,x-team=a%20b"}
    d = resolve(env, endpoint="http://collector:4318")
    assert d.headers[0] == {"api-key": "s3cret", "x-team": "a b"}


def test_otel_headers_per_signal_replace_the_generic_ones() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc,x-a=1",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "x-logs=2",
    }
    d = resolve(env)
    assert d.headers == (
        {"authorization": "Bearer abc", "x-a": "1"},
        {"authorization": "Bearer abc", "x-a": "1"},
        {"x-logs": "2"},
    )
    assert d.sources["logs_headers"] == "OTEL_EXPORTER_OTLP_LOGS_HEADERS"


def test_automagik_headers_beat_otel_headers() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-otel=1",
        "AUTOMAGIK_TELEMETRY_OTLP_HEADERS": "x-automagik=1",
    }
    assert resolve(env).headers[0] == {"x-automagik": "1"}


def test_otel_headers_are_never_sent_to_the_vendor() -> None:
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20for-my-collector"}
    d = resolve(env, enabled=True)
    assert d.headers == ({}, {}, {})
    assert any("not sent to the vendor" in w for w in d.warnings)
    # ...while otlp_headers, given for the vendor on purpose, are.
    d = resolve(env, enabled=True, otlp_headers={"x-key": "k"})
    assert d.headers[0] == {"x-key": "k"}


def test_malformed_otel_headers_are_ignored_with_a_warning() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "novalue",
    }
    d = resolve(env)
    assert d.headers == ({}, {}, {})
    assert any("OTEL_EXPORTER_OTLP_HEADERS" in w and "ignored" in w for w in d.warnings)


# --- compression and time-out ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://collector:4318", "gzip"),
        ("http://127.0.0.1:4318", "none"),
        ("http://localhost:4318", "none"),
        ("http://[::1]:4318", "none"),
        ("http://127.8.9.10:4318", "none"),
    ],
)
def test_auto_compression_is_gzip_except_on_loopback(endpoint: str, expected: str) -> None:
    assert resolve(endpoint=endpoint).compressions == (expected,) * 3


def test_explicit_compression_is_honoured() -> None:
    assert resolve(endpoint="http://127.0.0.1:1", compression="gzip").compressions[0] == "gzip"
    assert resolve(endpoint="http://collector:1", compression="none").compressions[0] == "none"
    off = resolve(endpoint="http://collector:1", compression_enabled=False)
    assert off.compressions == ("none",) * 3
    env = {"AUTOMAGIK_TELEMETRY_COMPRESSION": "none", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}
    assert resolve(env, endpoint="http://collector:1").compressions[0] == "none"


def test_otel_compression_per_signal_and_generic() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "none",
        "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "brotli",  # not allowed: ignored
    }
    d = resolve(env)
    assert d.compressions == ("gzip", "none", "gzip")
    assert any("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION" in w for w in d.warnings)


def test_otel_timeout_is_milliseconds_and_code_beats_it() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "10000",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "-1",  # not allowed: the generic one applies
    }
    d = resolve(env)
    assert d.timeouts == (2.5, 2.5, 10.0)
    assert any("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT" in w for w in d.warnings)
    assert resolve(env, timeout=1.0).timeouts == (1.0, 1.0, 1.0)
    env["AUTOMAGIK_TELEMETRY_TIMEOUT"] = "3"
    assert resolve(env).timeouts == (3.0, 3.0, 3.0)


# --- consent --------------------------------------------------------------------------------


def decide(env: dict[str, str] | None = None, **options: Any) -> opt_in.Consent:
    environ = env or {}
    config = TelemetryConfig("app", "1.0", environ=environ, **options)
    return opt_in.decide(config, environ)


def test_vendor_default_needs_an_opt_in() -> None:
    consent = decide()
    assert not consent.enabled
    assert "needs an opt-in" in consent.reason
    assert decide(enabled=True).enabled
    assert decide({"AUTOMAGIK_TELEMETRY_ENABLED": "true"}).enabled


def test_a_configured_destination_is_the_consent() -> None:
    assert decide(endpoint="http://collector:4318").enabled
    assert decide({"AUTOMAGIK_TELEMETRY_ENDPOINT": "http://collector:4318"}).enabled
    assert decide({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}).enabled
    assert decide({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://c:4318/v1/logs"}).enabled
    assert decide(backend="clickhouse").enabled


@pytest.mark.parametrize(
    "options",
    [
        {"endpoint": "https://telemetry.namastex.ai/v1/traces"},  # the vendor, named
        {"endpoint": "https://telemetry.namastex.ai"},  # its base URL
        {"metrics_endpoint": "https://telemetry.namastex.ai/v1/metrics"},
    ],
)
def test_the_vendor_named_explicitly_is_not_a_configured_destination(
    options: dict[str, Any],
) -> None:
    assert not decide(None, **options).enabled


def test_an_otel_endpoint_shadowed_by_the_vendor_endpoint_is_not_the_consent() -> None:
    env = {
        "AUTOMAGIK_TELEMETRY_ENDPOINT": "https://telemetry.namastex.ai/v1/traces",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
    }
    assert not decide(env).enabled  # rows would go to the vendor, not to the collector


@pytest.mark.parametrize(
    ("env", "options", "reason"),
    [
        ({}, {"enabled": False}, "enabled=False"),
        ({"AUTOMAGIK_TELEMETRY_ENABLED": "false"}, {}, "AUTOMAGIK_TELEMETRY_ENABLED"),
        ({"DO_NOT_TRACK": "1"}, {}, "DO_NOT_TRACK"),
        ({"DO_NOT_TRACK": "true"}, {}, "DO_NOT_TRACK"),
    ],
)
def test_opt_outs_disable_a_configured_destination(
    env: dict[str, str], options: dict[str, Any], reason: str
) -> None:
    consent = decide(env, endpoint="http://collector:4318", **options)
    assert not consent.enabled
    assert reason in consent.reason


def test_do_not_track_zero_is_not_an_opt_out() -> None:
    assert decide({"DO_NOT_TRACK": "0"}, endpoint="http://collector:4318").enabled


def test_the_opt_out_file_disables(isolated_environment: Path) -> None:
    (isolated_environment / ".automagik-no-telemetry").touch()
    consent = decide(endpoint="http://collector:4318")
    assert not consent.enabled
    assert ".automagik-no-telemetry" in consent.reason


def test_signals_left_on_the_vendor_are_not_sent_without_an_opt_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (*opt_in.CI_VARIABLES, "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    environ: dict[str, str] = {}
    config = TelemetryConfig(
        "app", "1.0", environ=environ, metrics_endpoint="http://collector:4318/v1/metrics"
    )
    destination = resolve_otlp(config, environ)
    assert destination.configured == (False, True, False)
    assert opt_in.decide(config, environ).enabled
    assert unconsented_signals(config, destination) == ["traces", "logs"]
    config = TelemetryConfig(
        "app", "1.0", environ=environ, metrics_endpoint="http://c:4318", enabled=True
    )
    assert unconsented_signals(config, resolve_otlp(config, environ)) == []
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # in CI, enabled=True in code is no opt-in
    assert unconsented_signals(config, resolve_otlp(config, environ)) == ["traces", "logs"]


def test_redact_url_drops_query_and_credentials() -> None:
    assert redact_url("https://u:p@host:4318/v1/traces?api_key=x") == "https://host:4318/v1/traces"
    assert redact_url("http://[::1]:4318/v1/logs") == "http://[::1]:4318/v1/logs"
