"""The retry policy: how often one batch is tried again and how long the writer waits between
attempts, in one value object (the model is urllib3's ``util/retry.py``, without its request
history: a batch's attempts are counted by the caller).

* ``retries`` attempts after the first one; the wait before retry ``n`` (1-based) is
  ``base * 2 ** (n - 1)``, capped at ``cap``, plus a random ``jitter * base`` at most, so that
  writers that failed together do not come back together;
* a ``Retry-After`` from the destination is honoured: the wait is at least what it asks, at most
  ``retry_after_cap`` (a receiver asking for an hour is not obeyed for an hour);
* which HTTP statuses are worth another attempt: ``RETRYABLE_STATUS`` (the OTLP/HTTP
  specification's set, which every sink shares), extended by a sink with its own
  (``extended_by``: ClickHouse adds 500, which it answers for errors that pass).

Waits are on an ``Event`` (``pause``), so a writer asked to exit stops waiting at once instead
of polling.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, replace
from typing import Final

RETRYABLE_STATUS: Final = frozenset({408, 429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    base: float = 1.0
    cap: float = 30.0
    jitter: float = 0.5
    retry_after_cap: float = 120.0
    statuses: frozenset[int] = field(default=RETRYABLE_STATUS)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.base < 0 or self.cap < 0 or self.jitter < 0:
            raise ValueError(f"a retry policy takes no negative value: {self}")

    def extended_by(self, statuses: frozenset[int]) -> RetryPolicy:
        """The same policy, with more statuses worth another attempt."""
        return replace(self, statuses=self.statuses | statuses)

    def retryable_status(self, status: int) -> bool:
        return status in self.statuses

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry ``retry`` (1-based), jitter included."""
        if retry < 1:
            return 0.0
        wait = min(self.base * 2.0 ** (retry - 1), self.cap)
        return wait + random.uniform(0.0, self.jitter * self.base) if self.jitter else wait

    def wait_before(self, retry: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry ``retry``, or None when the retries are spent."""
        if retry > self.retries:
            return None
        wait = self.backoff(retry)
        if retry_after is not None:
            wait = min(max(retry_after, wait), self.retry_after_cap)
        return wait


def pause(seconds: float, stop: threading.Event) -> bool:
    """Wait ``seconds`` unless ``stop`` is set first. True if it was (stop waiting)."""
    return stop.wait(seconds) if seconds > 0 else stop.is_set()
