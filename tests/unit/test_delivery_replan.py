"""A sink that answers ``replan``: the writer prepares the batch again before the next attempt
(it never resends the request the sink no longer builds), and delivers it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from automagik_telemetry.control import Control
from automagik_telemetry.retry import RetryPolicy
from automagik_telemetry.transport import Outcome, Prepared
from automagik_telemetry.writer.batch import Batch
from automagik_telemetry.writer.delivery import Delivery


class _Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def write(self, level: int, text: str) -> None:
        self.lines.append((level, text))


@dataclass
class _SwitchingSink:
    """Refuses the first way of building a request, then takes the second."""

    name: str = "switching"
    way: str = "first"
    sent: list[str] = field(default_factory=list)

    def discover(self) -> Outcome:
        return Outcome.delivered()

    def origin(self, kind: int) -> str:
        return ""

    def prepare(
        self, kind: int, body: bytes | bytearray, token: str | None, origin: str = ""
    ) -> Prepared:
        return Prepared(kind, bytes(body), url=self.way)

    def send(self, prepared: Prepared) -> Outcome:
        self.sent.append(prepared.url)
        if prepared.url == "first":
            self.way = "second"
            return Outcome(ok=False, retryable=True, replan=True, key="k", message="left")
        return Outcome.delivered()

    def close(self) -> None:
        pass


def test_a_replan_outcome_prepares_the_batch_again() -> None:
    from automagik_telemetry.writer.publish import Publisher

    sink = _SwitchingSink()
    lines = _Lines()
    delivery = Delivery(
        sink,  # type: ignore[arg-type]
        Control(memoryview(bytearray(8 * 4096)).cast("Q")),
        RetryPolicy(retries=3, base=0.001),
        lambda body, at: (at, 1),
        publisher=Publisher(lines),  # type: ignore[arg-type]
        put_aside=lambda batch, outcome: None,
        token=lambda batch: "tok",
        stats_lock=threading.Lock(),
    )
    assert delivery.deliver(Batch(0, -1, -1, 1, b'{"a":1}\n'))
    assert sink.sent == ["first", "second"]  # not "first" twice
    assert lines.lines[0][1] == "left"  # the sink's message, logged once
