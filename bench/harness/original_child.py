"""The child process that measures the original automagik-telemetry 0.1.4 (from the package
index), run by path with the interpreter of its own virtual environment::

    bench/.venv-original/bin/python bench/harness/original_child.py < spec.json

That environment has the original package under the same import name as this one, so this file
imports nothing from this package: it loads ``driver.py`` and ``workload.py`` (standard library
only) by path. The original sends with its ClickHouse backend (inserts on the calling thread
whenever ``batch_size`` rows of a kind are waiting, and from a timer every ``flush_interval``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


driver: Any = _load("driver")
workload: Any = _load("workload")


class _SocketCounter:
    def __init__(self) -> None:
        import socket
        import threading

        self.sent = 0
        lock = threading.Lock()
        original_sendall = socket.socket.sendall
        counter = self

        def sendall(sock: Any, data: Any, *args: Any) -> None:
            with lock:
                counter.sent += memoryview(data).nbytes
            original_sendall(sock, data, *args)

        socket.socket.sendall = sendall  # type: ignore[method-assign]


class Original:
    def __init__(self, spec: dict[str, Any]) -> None:
        original: Any = importlib.import_module("automagik_telemetry")  # the original's
        self.module = original
        self.sockets = _SocketCounter()
        destination = spec["destination"]
        options: dict[str, Any] = {
            "project_name": "bench",
            "version": "1.0.0",
            "backend": "clickhouse",
            "batch_size": spec["workload"]["batch_size"],
            "clickhouse_endpoint": destination["url"],
            "clickhouse_database": destination["database"],
            "clickhouse_username": destination["username"],
            "clickhouse_password": destination["password"],
        }
        if spec.get("flush_interval"):
            options["flush_interval"] = spec["flush_interval"]
        self.client = original.AutomagikTelemetry(config=original.TelemetryConfig(**options))
        self.metric_types = [original.MetricType(name) for name in workload.METRIC_TYPES]
        self.levels = [original.LogSeverity[name.upper()] for name in workload.LOG_LEVELS]

    def prepare(self, op: Any) -> Any:
        kind, name, value, level, attrs = op
        c = self.client
        if kind == workload.EVENT:
            return c.track_event, (name, attrs)
        if kind == workload.METRIC:
            return c.track_metric, (name, value, self.metric_types[level], attrs)
        return c.track_log, (name, self.levels[level], attrs)

    def flush(self, timeout: float) -> bool:
        self.client.flush()  # returns None; whether it landed is counted at the destination
        return True

    def writer_pid(self) -> int | None:
        return None

    def stats(self) -> dict[str, Any]:
        return {
            "version": getattr(self.module, "__version__", "0.1.4"),
            "dropped_total": None,
            "dropped_what": "not reported by the SDK (failures are silent)",
            "wire_bytes": self.sockets.sent,
            "wire_bytes_what": "all bytes sent on the process's sockets",
        }

    def close(self) -> None:
        self.client._shutdown = True
        timer = getattr(self.client, "_flush_timer", None)
        if timer is not None:
            timer.cancel()
        self.client.flush()


def main() -> int:
    spec = json.loads(sys.stdin.read())
    result = driver.run_child(spec, Original, workload)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
