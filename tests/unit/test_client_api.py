"""The public API as the original SDK's users know it, and its behaviour when disabled."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import automagik_telemetry
from automagik_telemetry import AutomagikTelemetry, LogSeverity, MetricType, StandardEvents


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
