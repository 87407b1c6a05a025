"""What a track_event costs the application while the server is down, against healthy: the
same client in the same run, the median of many timed chunks of calls. An outage must not tax
the application (the rows go to the writer's spool, the track call stays a memcpy): within 2x.

This is a measurement, taken here because it needs the fault machinery (a server to kill and
restart); bench/ has the micro-benchmarks of the healthy path.
"""

from __future__ import annotations

import time
from pathlib import Path

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.local_clickhouse import LocalClickHouse
from tests.faults.conftest import ClientFactory
from tests.faults.helpers import FaultDatabase, numbers, wait_until
from tests.faults.report import REPORT, ProducerCost, ScenarioRecord, median_and_p90

CHUNK = 100  # calls per timed chunk
CHUNKS = 100  # chunks per phase and round
ROUNDS = 3  # healthy, down, healthy, down, ...: drift of the machine hits both phases alike
BOUND = 2.0


def timed_chunks(client: AutomagikTelemetry, prefix: str) -> list[float]:
    """Nanoseconds per call of each of CHUNKS chunks of CHUNK track_event calls; a short sleep
    between chunks lets the writer work as it would beside a real application."""
    per_call: list[float] = []
    track = client.track_event
    clock = time.perf_counter_ns
    for chunk in range(CHUNKS):
        names = numbers(CHUNK, prefix, chunk * CHUNK)
        started = clock()
        for name in names:
            track(name)
        per_call.append((clock() - started) / CHUNK)
        time.sleep(0.0005)
    return per_call


def test_producer_cost_while_server_down_within_2x_of_healthy(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Producer cost: healthy, then server down (rows of both phases delivered after restart)"""
    scenario.guarantee = "exactly once"
    client = clients(**fault_db.client_options(
        timeout=1.0, max_retries=2, retry_backoff_base=0.05, flush_interval=0.05,
        spool_dir=str(tmp_path / "spool")))  # fmt: skip
    # warm up: the writer connected, the encoder and the ring's pages touched
    for name in numbers(20_000, "w"):
        client.track_event(name)
    assert client.flush(timeout=30)

    healthy: list[float] = []
    down: list[float] = []
    names = numbers(20_000, "w")
    states: list[str] = []
    recoveries: list[float] = []
    for round_ in range(ROUNDS):
        healthy += timed_chunks(client, f"h{round_}_")
        names += numbers(CHUNK * CHUNKS, f"h{round_}_")
        assert client.flush(timeout=30)
        states.append(client.get_status()["sink_state"])

        fault_server.kill()
        warm = numbers(1_000, f"x{round_}_")  # until the writer has noticed and spools
        for name in warm:
            client.track_event(name)
        names += warm
        assert wait_until(lambda: client.get_status()["spooled"] > 0, 20), client.get_status()
        down += timed_chunks(client, f"d{round_}_")
        names += numbers(CHUNK * CHUNKS, f"d{round_}_")
        down_status = client.get_status()
        states.append(down_status["sink_state"])

        fault_server.restart()
        restarted = time.monotonic()
        flushed = client.flush(timeout=60)
        recoveries.append(time.monotonic() - restarted)
        assert flushed, client.get_status()
    status = client.get_status()
    tally = fault_db.tally(names)

    healthy_median, healthy_p90 = median_and_p90(healthy)
    down_median, down_p90 = median_and_p90(down)
    cost = ProducerCost(healthy_median, down_median, CHUNK * CHUNKS * ROUNDS, CHUNK,
                        healthy_p90, down_p90)  # fmt: skip
    cost.notes.append(
        f"{ROUNDS} rounds of healthy then down (server SIGKILLed, then restarted); while down "
        f"the writer spooled {status['spooled']} rows in {status['spooled_batches']} batches; "
        f"after the restart every row of both phases was stored once "
        f"({tally.stored} rows, {tally.duplicates} duplicates)"
    )
    REPORT.producer = cost
    scenario.sent, scenario.stored, scenario.distinct = len(names), tally.stored, tally.distinct
    scenario.duplicates, scenario.missing = tally.duplicates, len(tally.missing)
    scenario.dropped = status["dropped_total"]
    scenario.recover_s, scenario.recover_note = max(recoveries), "slowest flush after restart"
    scenario.note(f"{healthy_median:.0f} ns/call healthy, {down_median:.0f} ns/call down "
                  f"({cost.ratio:.2f}x)")  # fmt: skip

    assert states == ["healthy", "retrying"] * ROUNDS
    assert status["dropped_total"] == 0, status  # the ring never filled
    assert (tally.stored, tally.distinct, tally.duplicates) == (len(names),) * 2 + (0,), (
        tally.summary()
    )
    assert cost.ratio <= BOUND, (
        f"a track_event costs {down_median:.0f} ns with the server down against "
        f"{healthy_median:.0f} ns healthy ({cost.ratio:.2f}x, bound {BOUND}x)"
    )
