"""The sender threads: each delivers one batch at a time, with its retries, while the main
thread prepares the next."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from .batch import Batch

log = logging.getLogger("automagik_telemetry.writer")


class Senders:
    """A few threads that each deliver one batch at a time, with its retries, while the main
    thread prepares the next. ClickHouse parses each insert on one core, so two inserts in
    flight use the server's cores (measured on 18.16, 2 cores: 214k rows/s with one, 352k with
    two); compression and HTTP release the GIL, so the threads overlap with the main one."""

    def __init__(self, deliver: Callable[[Batch], bool], count: int) -> None:
        self._deliver = deliver
        self._jobs: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[Batch, bool]] = queue.SimpleQueue()
        self.in_flight: list[Batch] = []
        self.capacity = count
        self._threads = [
            threading.Thread(target=self._run, name=f"automagik-telemetry-sender-{i}", daemon=True)
            for i in range(count)
        ]

    @property
    def free(self) -> bool:
        return len(self.in_flight) < self.capacity

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, batch: Batch) -> None:
        batch.sent_at = time.monotonic()
        self.in_flight.append(batch)
        self._jobs.put(batch)

    def done(self, batch: Batch) -> None:
        self.in_flight.remove(batch)

    def oldest_sent_at(self) -> float | None:
        return min((b.sent_at for b in self.in_flight), default=None)

    def stop(self, timeout: float) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        while (batch := self._jobs.get()) is not None:
            try:
                ok = self._deliver(batch)
            except Exception as exc:  # a bug must not stop delivery silently
                log.exception("delivery failed unexpectedly: %s", exc)
                ok = False
            self.results.put((batch, ok))
