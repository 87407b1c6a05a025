"""Issue 13, the client's half: a ``PrivacyConfig`` sanitises what is stored (checked value by
value at a real OTLP receiver and in the ClickHouse 18.16 server), and ``disable()`` lets go of
the writer process and the ring's shared memory, keeping the rows in the spool until
``enable()`` (checked by query, by the writer's PID and by the segment in /dev/shm)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automagik_telemetry import AutomagikTelemetry, LogSeverity, MetricType, TelemetryConfig
from automagik_telemetry.client import spool_directory
from automagik_telemetry.privacy import PrivacyConfig, Sanitizer, hash_value
from tests.support import ClickHouseDatabase, process_alive, shm_segments
from tests.support.otlp import attribute_dict
from tests.support.servers.http_front import Answer, HttpFront, inserts
from tests.support.servers.otlp_receiver import OtlpReceiver

EMAIL = "john.doe@example.com"
NOTE = "call +1 555-123-4567 or write to john.doe@example.com"
PATH = "/home/alice/reports/q3.csv"
ATTRIBUTES: dict[str, Any] = {
    "email": EMAIL,
    "password": "hunter2",
    "note": NOTE,
    "path": PATH,
    "count": 3,
    "ok": True,
    "short": "ab",
}


def expected_attributes(privacy: PrivacyConfig) -> dict[str, Any]:
    """What the receiver must hold: the sensitive key redacted, the personal data replaced by
    the strategy's replacement, everything else as given."""
    sanitizer = Sanitizer(privacy)
    return {
        "email": hash_value(EMAIL),
        "password": "[REDACTED]",
        "note": sanitizer.text(NOTE),
        "path": "/[USER_PATH]/reports/q3.csv",
        "count": 3,
        "ok": True,
        "short": "ab",
    }


def wait_for(condition: Any, what: str, limit: float = 60.0) -> None:
    """Wait until ``condition()`` holds (a bound against a hang, not a timed assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


def otlp_client(receiver: OtlpReceiver, **options: Any) -> AutomagikTelemetry:
    return AutomagikTelemetry(
        project_name="tests", version="1.0.0", endpoint=receiver.url, flush_interval=30.0,
        ring_size=1 << 20, **options,
    )  # fmt: skip


def track_everything(client: AutomagikTelemetry) -> None:
    client.track_event("signup", ATTRIBUTES)
    try:
        raise LookupError(f"no account for {EMAIL}")
    except LookupError as exc:
        client.track_error(exc, {"api_token": "tok_0123456789", "who": EMAIL})
    client.track_metric("logins", 1, MetricType.COUNTER, {"user": EMAIL, "region": "eu"})
    client.track_log(f"password reset sent to {EMAIL}", LogSeverity.INFO, {"path": PATH})


def test_privacy_sanitises_attributes_labels_bodies_and_errors_at_the_receiver(
    receiver: OtlpReceiver,
) -> None:
    privacy = PrivacyConfig()
    with otlp_client(receiver, privacy=privacy) as client:
        assert client.get_status()["privacy"] is True
        track_everything(client)
        assert client.flush(30)
        status = client.get_status()
    assert status["accepted"] == status["sent"] == 4
    hashed = hash_value(EMAIL)
    event, error = (span for _, _, span in receiver.spans())
    assert attribute_dict(event.attributes) == expected_attributes(privacy)
    assert error.status.message == f"no account for {hashed}"
    assert attribute_dict(error.attributes) == {
        "error_type": "LookupError",
        "error_message": f"no account for {hashed}",
        "api_token": "[REDACTED]",
        "who": hashed,
    }
    (exception,) = error.events
    details = attribute_dict(exception.attributes)
    assert details["exception.message"] == f"no account for {hashed}"
    assert EMAIL not in details["exception.stacktrace"]
    assert details["exception.stacktrace"].endswith(f"LookupError: no account for {hashed}\n")
    ((_, _, metric),) = receiver.metrics()
    (point,) = metric.sum.data_points
    assert attribute_dict(point.attributes) == {"user": hashed, "region": "eu"}
    ((_, _, record),) = receiver.log_records()
    assert record.body.string_value == f"password reset sent to {hashed}"
    assert attribute_dict(record.attributes) == {"path": "/[USER_PATH]/reports/q3.csv"}


@pytest.mark.parametrize(
    ("strategy", "email", "phone"),
    [("redact", "[GONE]", "[GONE]"), ("truncate", "jo***@example.com", "XXX-XXX-XXXX")],
)
def test_each_strategy_is_applied_as_configured(
    receiver: OtlpReceiver, strategy: Any, email: str, phone: str
) -> None:
    privacy = PrivacyConfig(strategy=strategy, redaction_text="[GONE]")
    with otlp_client(receiver, privacy=privacy) as client:
        client.track_event("contact", {"email": EMAIL, "phone": "555-123-4567", "token": "x"})
        assert client.flush(30)
    ((_, _, span),) = receiver.spans()
    assert attribute_dict(span.attributes) == {"email": email, "phone": phone, "token": "[GONE]"}


def test_without_privacy_values_are_stored_as_given(receiver: OtlpReceiver) -> None:
    with otlp_client(receiver) as client:
        assert client.get_status()["privacy"] is False
        client.track_event("signup", ATTRIBUTES)
        client.track_log(f"password reset sent to {EMAIL}")
        assert client.flush(30)
    ((_, _, span),) = receiver.spans()
    assert attribute_dict(span.attributes) == ATTRIBUTES
    ((_, _, record),) = receiver.log_records()
    assert record.body.string_value == f"password reset sent to {EMAIL}"


def test_privacy_from_the_environment(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_PRIVACY", "true")
    with otlp_client(receiver) as client:
        assert client.config.privacy == PrivacyConfig()
        client.track_event("signup", {"email": EMAIL})
        assert client.flush(30)
    ((_, _, span),) = receiver.spans()
    assert attribute_dict(span.attributes) == {"email": hash_value(EMAIL)}


def test_privacy_in_clickhouse_18_log_bodies_and_error_messages(ch_db: ClickHouseDatabase) -> None:
    """The legacy schema of old servers keeps no attributes: what it stores of a call's text
    (the log body, the error's status message) is sanitised, row for row."""
    hashed = hash_value(EMAIL)
    with AutomagikTelemetry(**ch_db.client_options(privacy=PrivacyConfig())) as client:
        for i in range(20):
            client.track_log(f"reset {i} sent to {EMAIL}", LogSeverity.WARN)
        try:
            raise PermissionError(f"{EMAIL} may not do that")
        except PermissionError as exc:
            client.track_error(exc)
        assert client.flush(30)
    assert ch_db.count("logs") == 20
    assert ch_db.count("logs", f"body LIKE 'reset % sent to {hashed}'") == 20
    assert ch_db.count("logs", "position(body, 'example.com') > 0") == 0
    assert ch_db.query(f"SELECT status_message FROM {ch_db.name}.traces") == (
        f"{hashed} may not do that"
    )


def test_a_bad_privacy_config_in_code_is_refused_at_construction() -> None:
    from automagik_telemetry import ConfigError

    with pytest.raises(ConfigError, match="privacy: PrivacyConfig: strategy='scramble'"):
        TelemetryConfig("app", "1.0", privacy=PrivacyConfig(strategy="scramble"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="privacy='sometimes' is not allowed"):
        TelemetryConfig("app", "1.0", privacy="sometimes")  # type: ignore[arg-type]


# --- disable() lets go ----------------------------------------------------------------------


def test_disable_lets_go_and_enable_delivers_what_was_spooled(
    ch_db: ClickHouseDatabase, isolated_environment: Path
) -> None:
    with HttpFront(ch_db.server.url) as front:
        front.script(*[Answer(503)] * 10_000, only=inserts)  # the destination is down
        client = AutomagikTelemetry(
            **ch_db.client_options(
                clickhouse_endpoint=front.url, max_retries=0, retry_backoff_base=0.05,
                flush_interval=0.05,
            )
        )  # fmt: skip
        for i in range(500):
            client.track_event("before-disable", {"i": i})
        status = client.get_status()
        writer_pid, segment = status["writer_pid"], client._settings.segment
        assert process_alive(writer_pid) and segment in shm_segments()
        assert client.flush(timeout=2.0) is False  # down: not delivered

        client.disable()
        assert client.is_enabled() is False
        wait_for(lambda: not process_alive(writer_pid), "the writer exits")
        wait_for(lambda: segment not in shm_segments(), "the segment is unlinked")
        status = client.get_status()
        assert status["writer_alive"] is False and status["accepted"] == 500
        spooled = list(Path(spool_directory(client.config)).rglob("*"))
        assert any(p.is_file() for p in spooled), "the rows wait in the spool"
        assert ch_db.count() == 0
        client.track_event("while-disabled")  # not recorded
        assert client.get_status()["accepted"] == 500

        front.clear_script()  # the destination is back
        client.enable()
        new_pid = client.get_status()["writer_pid"]
        assert new_pid != writer_pid and process_alive(new_pid)
        client.track_event("after-enable")
        assert client.flush(timeout=30)
        wait_for(lambda: ch_db.count() == 501, "the spooled rows are replayed")
        assert ch_db.count(where="span_name = 'before-disable'") == 500
        assert ch_db.query(f"SELECT uniqExact(span_name) FROM {ch_db.name}.traces") == "2"
        assert ch_db.count(where="span_name = 'while-disabled'") == 0
        new_segment = client._settings.segment
        client.shutdown()
        wait_for(lambda: not process_alive(new_pid), "the second writer exits")
        assert new_segment not in shm_segments()
    assert ch_db.count() == 501  # each row exactly once


def test_disable_of_a_delivering_client_delivers_first(ch_db: ClickHouseDatabase) -> None:
    client = AutomagikTelemetry(**ch_db.client_options())
    for i in range(1000):
        client.track_event("e", {"i": i})
    pid = client.get_status()["writer_pid"]
    segment = client._settings.segment
    client.disable()
    assert ch_db.count() == 1000
    wait_for(lambda: not process_alive(pid), "the writer exits")
    assert segment not in shm_segments()
    assert client.flush() is True  # nothing to wait for while disabled


def test_disable_while_other_threads_track_keeps_every_accepted_row(
    ch_db: ClickHouseDatabase,
) -> None:
    import threading

    client = AutomagikTelemetry(**ch_db.client_options())
    pid = client.get_status()["writer_pid"]
    stop = threading.Event()
    errors: list[BaseException] = []
    started = threading.Barrier(5)

    def work(thread: int) -> None:
        started.wait()
        i = 0
        try:
            while not stop.is_set():
                client.track_event(f"t{thread}", {"i": i})
                i += 1
        except BaseException as exc:  # a track call must never raise
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    started.wait()
    while client.get_status()["accepted"] < 20_000:
        time.sleep(0.01)
    client.disable()
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    accepted = client.get_status()["accepted"]
    wait_for(lambda: not process_alive(pid), "the writer exits")
    assert accepted >= 20_000
    assert ch_db.count() == accepted  # every accepted row landed, once
