"""The retry policy: waits per retry, the cap, jitter bounds, Retry-After, retryable statuses,
and waits that end when the writer is asked to exit. No network."""

from __future__ import annotations

import threading

import pytest

from automagik_telemetry.retry import RETRYABLE_STATUS, RetryPolicy, pause
from automagik_telemetry.sinks import clickhouse
from automagik_telemetry.sinks.otlp import answers as otlp_answers


def test_waits_double_from_the_base_and_stop_at_the_cap() -> None:
    policy = RetryPolicy(retries=8, base=0.5, cap=3.0, jitter=0.0)
    assert [policy.wait_before(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]


def test_retries_are_spent_after_the_configured_number() -> None:
    policy = RetryPolicy(retries=2, base=1.0, jitter=0.0)
    assert policy.wait_before(2) == 2.0
    assert policy.wait_before(3) is None
    assert RetryPolicy(retries=0).wait_before(1) is None


def test_jitter_stays_within_its_fraction_of_the_base() -> None:
    policy = RetryPolicy(retries=3, base=2.0, jitter=0.25)
    waits = [policy.wait_before(2) for _ in range(2000)]
    assert all(w is not None and 4.0 <= w <= 4.5 for w in waits)
    assert len({round(w or 0, 6) for w in waits}) > 100  # not a constant


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(retries=3, base=1.0, jitter=0.0, retry_after_cap=60.0)
    assert policy.wait_before(1, retry_after=5.0) == 5.0  # longer than the back-off: obeyed
    assert policy.wait_before(3, retry_after=0.5) == 4.0  # shorter: the back-off stands
    assert policy.wait_before(1, retry_after=3600.0) == 60.0  # an hour is not obeyed
    assert policy.wait_before(4, retry_after=5.0) is None  # spent whatever the server says


def test_negative_values_are_refused() -> None:
    with pytest.raises(ValueError, match="no negative value"):
        RetryPolicy(retries=-1)


def test_one_retryable_set_which_clickhouse_extends_with_500() -> None:
    policy = RetryPolicy()
    assert all(policy.retryable_status(s) for s in (408, 429, 502, 503, 504))
    assert not policy.retryable_status(500) and not policy.retryable_status(400)
    assert policy.extended_by(frozenset({500})).retryable_status(500)
    assert frozenset({408, 429, 502, 503, 504}) == RETRYABLE_STATUS
    assert RETRYABLE_STATUS | {500} == clickhouse.RETRYABLE_STATUS
    assert otlp_answers.RETRYABLE_STATUS is RETRYABLE_STATUS


def test_a_pause_ends_as_soon_as_the_event_is_set() -> None:
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    assert pause(300.0, stop) is True  # True: ended by the event (a full wait says False)
    assert pause(0.0, threading.Event()) is False
    assert pause(0.01, threading.Event()) is False
