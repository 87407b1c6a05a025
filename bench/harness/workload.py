"""The workload every system runs: events, metrics and logs with realistic attributes.

Standard library only: the child process of the original automagik-telemetry 0.1.4 (which runs in
its own virtual environment, where this package is not installed) loads this file by path.

The operations are generated before any measurement, from a seeded random generator, so every
system gets exactly the same calls in the same order and the generation costs nothing measured.
An operation is a tuple ``(kind, name, value, level, attributes)``:

* ``EVENT``: ``track_event(name, attributes)`` (``value`` and ``level`` unused);
* ``METRIC``: ``track_metric(name, value, METRIC_TYPES[level], attributes)``;
* ``LOG``: ``track_log(name, LOG_LEVELS[level], attributes)`` (``name`` is the message).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any, Final

EVENT: Final = 0
METRIC: Final = 1
LOG: Final = 2
KIND_NAMES: Final = ("event", "metric", "log")
METRIC_TYPES: Final = ("gauge", "counter", "histogram")
LOG_LEVELS: Final = ("debug", "info", "warn", "error")
PROBE_PREFIX: Final = "probe."  # the names of the latency phase's events: probe.000042

Op = tuple[int, str, float, int, dict[str, Any]]

_EVENTS: Final = (
    "api.request",
    "user.login",
    "feature.used",
    "job.completed",
    "cache.miss",
    "message.sent",
)
_ROUTES: Final = (
    "/v1/contacts",
    "/v1/contacts/{id}",
    "/v1/messages",
    "/v1/agents/{id}/run",
    "/healthz",
)
_METHODS: Final = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
_STATUS: Final = (200, 200, 200, 200, 201, 204, 400, 404, 500)
_REGIONS: Final = ("eu-west-1", "us-east-1", "sa-east-1")
_TIERS: Final = ("free", "pro", "enterprise")
_METRICS: Final = (
    ("http.server.duration_ms", 2),
    ("queue.depth", 0),
    ("jobs.processed", 1),
    ("db.pool.in_use", 0),
)
_LOG_LINES: Final = (
    "request handled",
    "retrying upstream call after timeout",
    "cache entry evicted",
    "slow query detected",
    "user session refreshed",
)


@dataclass(frozen=True)
class Workload:
    """What to send. ``count`` operations in all; one in ``metric_every`` is a metric and one in
    ``log_every`` a log (the rest are events); ``rate`` calls per second in all (0: as fast as
    the calling threads go); ``threads`` calling threads share the operations; ``batch_size``
    is given to every system that batches."""

    count: int = 100_000
    rate: float = 0.0
    threads: int = 1
    batch_size: int = 100
    metric_every: int = 10
    log_every: int = 10
    seed: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workload:
        return cls(**data)

    def counts(self) -> dict[str, int]:
        """How many operations of each kind ``operations()`` makes."""
        counts = [0, 0, 0]
        for i in range(self.count):
            counts[_kind_of(self, i)] += 1
        return dict(zip(KIND_NAMES, counts, strict=True))


def _kind_of(workload: Workload, i: int) -> int:
    if i % workload.metric_every == workload.metric_every - 1:
        return METRIC
    if i % workload.log_every == workload.log_every // 2 - 1:
        return LOG
    return EVENT


def operations(workload: Workload, count: int | None = None, offset: int = 0) -> list[Op]:
    """The workload's operations (``count`` of them, numbered from ``offset``)."""
    rng = random.Random(workload.seed * 1_000_003 + offset)
    n = workload.count if count is None else count
    ops: list[Op] = []
    for i in range(offset, offset + n):
        what = _kind_of(workload, i)
        if what == METRIC:
            name, kind = _METRICS[i % len(_METRICS)]
            value = round(rng.lognormvariate(3.0, 0.8), 3) if kind != 1 else 1.0
            attrs: dict[str, Any] = {
                "http.route": rng.choice(_ROUTES),
                "region": rng.choice(_REGIONS),
                "worker": rng.randrange(8),
            }
            ops.append((METRIC, name, value, kind, attrs))
        elif what == LOG:
            level = rng.choices((0, 1, 2, 3), weights=(1, 12, 3, 1))[0]
            attrs = {
                "logger": "app.worker",
                "request_id": f"{rng.getrandbits(64):016x}",
                "attempt": rng.randrange(1, 4),
            }
            ops.append((LOG, f"{rng.choice(_LOG_LINES)} (record {i})", 0.0, level, attrs))
        else:
            attrs = {
                "http.method": rng.choice(_METHODS),
                "http.route": rng.choice(_ROUTES),
                "http.status_code": rng.choice(_STATUS),
                "duration_ms": round(rng.lognormvariate(2.5, 0.9), 3),
                "user.tier": rng.choice(_TIERS),
                "region": rng.choice(_REGIONS),
                "cache_hit": rng.random() < 0.7,
                "request_id": f"{rng.getrandbits(64):016x}",
            }
            ops.append((EVENT, _EVENTS[i % len(_EVENTS)], 0.0, 0, attrs))
    return ops


def probe(seq: int) -> Op:
    """The event of the latency phase: its name carries its number (old ClickHouse tables keep
    no attributes), so the destination can say when each one became queryable."""
    return (EVENT, f"{PROBE_PREFIX}{seq:06d}", 0.0, 0, {"seq": seq, "http.route": "/v1/probe"})


def probe_seq(name: str) -> int | None:
    if name.startswith(PROBE_PREFIX) and name[len(PROBE_PREFIX) :].isdigit():
        return int(name[len(PROBE_PREFIX) :])
    return None
