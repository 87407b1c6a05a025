"""``doctor`` for the OTLP backend, against the suite's strict OTLP/HTTP receiver: each of the
three endpoints answers an empty export; a receiver that is not there is named; nothing is sent
to the vendor's endpoint without consent."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from automagik_telemetry.config import TelemetryConfig
from automagik_telemetry.doctor import FAIL, PASS, SKIP, run
from tests.support.servers.otlp_receiver import OtlpReceiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_each_endpoint_takes_an_empty_export(receiver: OtlpReceiver, protocol: str) -> None:
    config = TelemetryConfig(project_name="p", version="1", backend="otlp",
                             endpoint=receiver.url, otlp_protocol=protocol)  # fmt: skip
    report = run(config)
    steps = {c.step: c for c in report.checks}
    for signal in ("traces", "metrics", "logs"):
        check = steps[f"otlp {signal} endpoint"]
        assert check.status == PASS, check
        assert f"/v1/{signal}" in check.detail
    assert steps["writer"].status == PASS
    assert report.ok, report.text()
    assert len(receiver.requests) == 3 and not receiver.rejected_requests  # exports, no rows


def test_nothing_listening_is_named_with_the_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = TelemetryConfig(project_name="p", version="1", backend="otlp",
                             endpoint=f"http://127.0.0.1:{port}")  # fmt: skip
    report = run(config)
    check = next(c for c in report.checks if c.step == "otlp metrics endpoint")
    assert check.status == FAIL and f"127.0.0.1:{port}/v1/metrics" in check.detail
    assert "endpoint" in check.fix
    assert not report.ok


def test_the_vendors_endpoint_gets_nothing_without_consent() -> None:
    report = run(TelemetryConfig(project_name="p", version="1"))  # the default: the vendor's
    steps = {c.step: c.status for c in report.checks}
    assert steps["consent"] == FAIL
    assert steps["otlp traces endpoint"] == SKIP and steps["writer"] == SKIP


def test_embedded_backend_checks_chdb_and_starts_the_writer(tmp_path: object) -> None:
    pytest.importorskip("chdb")
    config = TelemetryConfig(project_name="p", version="1", backend="embedded",
                             embedded_path=f"{tmp_path}/db")  # fmt: skip
    report = run(config)
    steps = {c.step: c.status for c in report.checks}
    assert steps["embedded engine"] == PASS and steps["writer"] == PASS
    assert report.ok, report.text()
