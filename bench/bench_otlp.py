"""backend="otlp": cost per call on the calling thread, and events/s landed at a receiver.

    python bench/bench_otlp.py [--events 200000] [--calls 200000]

Both places of the wire encoding are measured (``otlp_encode_in``: ``writer``, the default, and
``caller``).

* Producer cost: the median of many timeit repeats of ``track_event`` (ns per call), for both
  encodings, on a client whose writer has nowhere to deliver (a closed port, a 64 MiB ring that
  holds every row), so the number is the calling thread alone; then the same pointed at a live
  receiver (the writer and the receiver then compete for the cores). The ClickHouse rows and a
  disabled client are printed alongside for scale.
* Landing rate: ``--events`` events tracked as fast as one thread can, then flushed, into the
  loopback receiver running in its own process (``validate=False``: it still decodes every
  request with the official protobuf messages); events/s = events / (last span received -
  first call).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

from automagik_telemetry import AutomagikTelemetry

ROOT = Path(__file__).resolve().parents[1]
ATTRS = {"user": "alice", "count": 3, "ok": True}
ENCODE_IN = ("writer", "caller")
RECEIVER = """
import json, sys
from tests.support.servers.otlp_receiver import OtlpReceiver
with OtlpReceiver(validate=False, max_body_bytes=64 << 20) as rx:
    print(rx.url, flush=True)
    for line in sys.stdin:
        print(json.dumps(rx.counts()), flush=True)
"""
# Reads each request and answers 200 with an empty export response, decoding nothing: the
# rate the engine itself delivers at, without the test receiver's Python decoding.
NULL_RECEIVER = """
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
counts = {"requests": 0, "bytes": 0}
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        counts["requests"] += 1
        counts["bytes"] += len(data)
        self.send_response(200)
        self.send_header("Content-Type", self.headers["Content-Type"])
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
for line in sys.stdin:
    print(json.dumps(counts), flush=True)
"""


class ReceiverProcess:
    def __init__(self, code: str = RECEIVER) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,  # the receiver is tests/support/servers/otlp_receiver.py of this checkout
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def counts(self) -> dict[str, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("counts\n")
        self.process.stdin.flush()
        counts: dict[str, int] = json.loads(self.process.stdout.readline())
        return counts

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


def per_call_ns(fn: Any, *args: Any, calls: int, repeats: int = 15) -> float:
    timer = timeit.Timer(lambda: fn(*args))
    per_repeat = max(1, calls // repeats)
    times = timer.repeat(repeat=repeats, number=per_repeat)
    return statistics.median(times) / per_repeat * 1e9


def client(backend: str, protocol: str, endpoint: str, **extra: Any) -> AutomagikTelemetry:
    options: dict[str, Any] = {
        "project_name": "bench",
        "version": "1",
        "backend": backend,
        "ring_size": 64 * 1024 * 1024,
        "on_full": "drop",
    }
    if backend == "otlp":
        options.update(endpoint=endpoint, otlp_protocol=protocol)
    else:
        options.update(clickhouse_endpoint=endpoint)
    options.update(extra)
    return AutomagikTelemetry(**options)


def producer_cost(calls: int, receiver: ReceiverProcess) -> None:
    print(f"\nper call on the calling thread (median ns, {calls} calls each)")
    print(f"{'client':44} {'no attrs':>10} {'3 attrs':>10}")
    nowhere = "http://127.0.0.1:9"
    cases = [
        ("otlp http/json, nowhere to deliver", "otlp", "http/json", nowhere, "writer"),
        ("otlp http/protobuf, nowhere to deliver", "otlp", "http/protobuf", nowhere, "writer"),
        ("  the same, otlp_encode_in=caller", "otlp", "http/json", nowhere, "caller"),
        ("  the same, otlp_encode_in=caller", "otlp", "http/protobuf", nowhere, "caller"),
        ("clickhouse rows, nowhere to deliver", "clickhouse", "", nowhere, ""),
        ("otlp http/json, delivering to receiver", "otlp", "http/json", receiver.url, "writer"),
        ("otlp http/protobuf, delivering", "otlp", "http/protobuf", receiver.url, "writer"),
    ]
    for label, backend, protocol, endpoint, encode_in in cases:
        extra = {"otlp_encode_in": encode_in} if encode_in else {}
        c = client(backend, protocol, endpoint, max_batch_bytes=4 << 20, timeout=120.0, **extra)
        bare = per_call_ns(c.track_event, "user.signup", calls=calls)
        attrs = per_call_ns(c.track_event, "user.signup", ATTRS, calls=calls)
        dropped = c.get_status()["dropped_total"]
        c.shutdown(timeout=0.2 if endpoint.endswith(":9") else 120)
        note = f"  (dropped {dropped})" if dropped else ""
        print(f"{label:44} {bare:10.0f} {attrs:10.0f}{note}")
    disabled = AutomagikTelemetry(project_name="bench", version="1", backend="otlp")
    print(
        f"{'disabled client (no opt-in)':44} "
        f"{per_call_ns(disabled.track_event, 'user.signup', calls=calls):10.0f} "
        f"{per_call_ns(disabled.track_event, 'user.signup', ATTRS, calls=calls):10.0f}"
    )


def landing_rate(events: int, receiver: ReceiverProcess, *, decoding: bool) -> None:
    what = "the receiver (decodes, validate=False)" if decoding else "a null receiver"
    print(f"\n{events} events into {what}, in its own process")
    print(
        f"{'encoding':16} {'encoded in':10} {'track s':>8} {'landed s':>9} {'events/s':>10} "
        f"{'requests':>9}"
    )
    for protocol, encode_in in itertools.product(("http/json", "http/protobuf"), ENCODE_IN):
        before = receiver.counts()
        # 4 MiB requests and a long time-out: the receiver decodes in Python, and a 16 MiB
        # OTLP/JSON request takes it longer than the default 5 s time-out.
        c = client(
            "otlp", protocol, receiver.url, on_full="block", flush_interval=0.2,
            max_batch_bytes=4 << 20, timeout=120.0, otlp_encode_in=encode_in,
        )  # fmt: skip
        start = time.perf_counter()
        for i in range(events):
            c.track_event("bulk", {"i": i, "user": "alice"})
        tracked = time.perf_counter() - start
        assert c.flush(timeout=300)
        landed = time.perf_counter() - start
        status = c.get_status()
        c.shutdown()
        after = receiver.counts()
        if decoding:
            assert after["spans"] - before["spans"] == events, (before, after)
        assert status["sent"] == events and status["dropped_total"] == 0, status
        print(
            f"{protocol:16} {encode_in:10} {tracked:8.2f} {landed:9.2f} {events / landed:10.0f} "
            f"{after['requests'] - before['requests']:9d}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=100_000)  # x2 rows must fit the ring
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="bench-otlp-home-")
    os.environ["HOME"] = home  # keep the user id and opt-out file out of the real home
    receiver = ReceiverProcess()
    null_receiver = ReceiverProcess(NULL_RECEIVER)
    try:
        if args.calls:
            producer_cost(args.calls, receiver)
        landing_rate(args.events, receiver, decoding=True)
        landing_rate(args.events, null_receiver, decoding=False)
    finally:
        receiver.close()
        null_receiver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
