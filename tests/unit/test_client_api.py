"""The public API as the original SDK's users know it, and its behaviour when disabled."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

import automagik_telemetry
from automagik_telemetry import (
    AutomagikTelemetry,
    LogSeverity,
    MetricType,
    StandardEvents,
    TelemetryConfig,
)


def test_public_names_and_values() -> None:
    public = {
        "AutomagikTelemetry",
        "TelemetryConfig",
        "MetricType",
        "LogSeverity",
        "StandardEvents",
    }
    assert set(automagik_telemetry.__all__) >= public
    assert [m.value for m in MetricType] == ["gauge", "counter", "histogram"]
    assert {m.name: m.value for m in LogSeverity} == {
        "TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}  # fmt: skip
    assert StandardEvents.FEATURE_USED == "automagik.feature.used"
    assert StandardEvents.ERROR_OCCURRED == "automagik.error"
    for name in ("track_event", "track_metric", "track_log", "track_error", "flush"):
        assert inspect.iscoroutinefunction(getattr(AutomagikTelemetry, name + "_async"))


def test_disabled_client_does_nothing_and_says_why(isolated_environment: Path) -> None:
    client = AutomagikTelemetry(project_name="a", version="1")
    assert client.track_event("x", {"a": 1}) is None
    assert client.track_metric("m", 1.0) is None
    assert client.track_log("l") is None
    assert client.flush() is True
    status = client.get_status()
    assert (
        status["enabled"] is False and status["accepted"] == 0 and status["writer_alive"] is False
    )
    for key in ("user_id", "session_id", "project_name", "project_version", "endpoint",
                "metrics_endpoint", "logs_endpoint", "opt_out_file_exists", "env_var",
                "verbose", "batch_size", "compression_enabled", "queue_sizes"):  # fmt: skip
        assert key in status, key
    asyncio.run(client.track_event_async("x"))
    assert asyncio.run(client.flush_async()) is True


def test_opt_outs_disable_a_configured_destination(
    isolated_environment: Path, monkeypatch: object
) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("DO_NOT_TRACK", "1")
        client = AutomagikTelemetry(project_name="a", version="1", backend="clickhouse")
        assert not client.is_enabled() and "DO_NOT_TRACK" in client.get_status()["disabled_reason"]
        mp.delenv("DO_NOT_TRACK")
        (isolated_environment / ".automagik-no-telemetry").touch()
        client = AutomagikTelemetry(project_name="a", version="1", backend="clickhouse")
        assert not client.is_enabled()
        assert "automagik-no-telemetry" in client.get_status()["disabled_reason"]
        mp.setenv("AUTOMAGIK_TELEMETRY_ENABLED", "false")
        (isolated_environment / ".automagik-no-telemetry").unlink()
        client = AutomagikTelemetry(project_name="a", version="1", backend="clickhouse")
        assert not client.is_enabled()
    finally:
        mp.undo()


def test_disable_works_called_or_awaited(isolated_environment: Path) -> None:
    client = AutomagikTelemetry(project_name="a", version="1", enabled=False)
    client.disable()
    assert (isolated_environment / ".automagik-no-telemetry").exists()

    async def main() -> None:
        await client.disable()

    asyncio.run(main())
    assert not client.is_enabled()


# The keys of the original SDK's get_status(); this client's may add more.
ORIGINAL_STATUS_KEYS = {
    "enabled", "user_id", "session_id", "project_name", "project_version", "endpoint",
    "metrics_endpoint", "logs_endpoint", "opt_out_file_exists", "env_var", "verbose",
    "batch_size", "compression_enabled", "queue_sizes",
}  # fmt: skip


def test_status_has_the_original_keys_and_says_where_the_name_came_from(
    isolated_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-otel")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_TIMEOUT", "soon")
    client = AutomagikTelemetry(config=TelemetryConfig())
    status = client.get_status()
    assert set(status) >= ORIGINAL_STATUS_KEYS
    assert (status["project_name"], status["project_name_source"]) == (
        "from-otel", "OTEL_SERVICE_NAME")  # fmt: skip
    assert (status["project_version"], status["project_version_source"]) == ("unknown", "default")
    (warning,) = status["config_warnings"]
    assert warning.startswith("AUTOMAGIK_TELEMETRY_TIMEOUT='soon' is not allowed")
    assert client.config.environment_warnings == (warning,)
    assert status["privacy"] is False


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ("https://telemetry.namastex.ai/v1/traces", "https://telemetry.namastex.ai/v1/metrics",
              "https://telemetry.namastex.ai/v1/logs")),
        ({"endpoint": "http://collector:4318"},
         ("http://collector:4318/v1/traces", "http://collector:4318/v1/metrics",
          "http://collector:4318/v1/logs")),
        ({"endpoint": "http://collector:4318/v1/traces",
          "logs_endpoint": "http://logs:4318/v1/logs"},
         ("http://collector:4318/v1/traces", "http://collector:4318/v1/metrics",
          "http://logs:4318/v1/logs")),
    ],
)  # fmt: skip
def test_the_client_has_the_resolved_endpoints(
    isolated_environment: Path, options: dict[str, str], expected: tuple[str, str, str]
) -> None:
    client = AutomagikTelemetry(project_name="a", version="1", enabled=False, **options)
    assert (client.endpoint, client.metrics_endpoint, client.logs_endpoint) == expected
    status = client.get_status()
    assert (status["endpoint"], status["metrics_endpoint"], status["logs_endpoint"]) == expected


def test_the_user_id_file_is_found_through_path_home_when_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    (second / ".automagik").mkdir(parents=True)
    (second / ".automagik" / "user_id").write_text("known-user\n")
    monkeypatch.setattr(Path, "home", lambda: first)
    created = AutomagikTelemetry(project_name="a", version="1", enabled=False)
    assert (first / ".automagik" / "user_id").read_text() == created.user_id
    monkeypatch.setattr(Path, "home", lambda: second)
    assert AutomagikTelemetry(project_name="a", version="1", enabled=False).user_id == "known-user"


def test_no_argument_keeps_the_original_type_error() -> None:
    with pytest.raises(TypeError) as info:
        AutomagikTelemetry()
    assert "missing 1 required positional argument: 'config'" in str(info.value)
    keyword = AutomagikTelemetry(project_name="kw", version="2", enabled=False)
    assert (keyword.config.project_name, keyword.config.version) == ("kw", "2")
