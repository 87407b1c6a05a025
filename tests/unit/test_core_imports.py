"""The core import path: an application that imports the package, builds clients and tracks loads
neither the benchmark harness (``bench.harness``) nor a server of the tests
(``tests.support.servers``), nor the local ClickHouse runner, nor ``http.server``. Checked in a
fresh interpreter started in the checkout, where all of them could be imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NOT_IN_THE_CORE = (
    "bench",  # bench.harness, the benchmark harness
    "tests",  # tests.support.servers: the OTLP receiver, the HTTP fault front
    "automagik_telemetry.local_clickhouse",
    "http.server",
)

TRACK = r"""
import importlib.util, json, socket, sys

import automagik_telemetry
from automagik_telemetry import AutomagikTelemetry, MetricType

closed = socket.socket()
closed.bind(("127.0.0.1", 0))
port = closed.getsockname()[1]
closed.close()  # nothing listens there: the writer spools what it cannot deliver
clients = [
    AutomagikTelemetry(
        project_name="imports", version="1.0.0", backend="clickhouse",
        clickhouse_endpoint=f"http://127.0.0.1:{port}", spool_dir=sys.argv[1],
        max_retries=0, retry_backoff_base=0.01, flush_interval=0.1,
    ),
    AutomagikTelemetry(project_name="imports", version="1.0.0", enabled=False),
]
assert clients[0].enabled and not clients[1].enabled
for client in clients:
    client.track_event("user.signup", {"plan": "pro", "seats": 3})
    client.track_metric("queue.depth", 42, MetricType.GAUGE)
tracked = sorted(sys.modules)
for client in clients:
    client.shutdown(timeout=10)
shut_down = sorted(sys.modules)
# They could have been imported here (the check below imports them, so it comes last):
assert importlib.util.find_spec("bench.harness") is not None
assert importlib.util.find_spec("tests.support.servers.otlp_receiver") is not None
print(json.dumps({"tracked": tracked, "shut_down": shut_down}))
"""

CLI = r"""
import contextlib, io, json, sys

from automagik_telemetry.cli import main

with contextlib.redirect_stdout(io.StringIO()):
    assert main(["config"]) == 0
print(json.dumps({"config": sorted(sys.modules)}))
"""


def _modules_loaded(code: str, *args: str) -> dict[str, list[str]]:
    # cwd: the checkout, so that sys.path[0] ("") would let an import of bench or tests succeed.
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    loaded: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def _outside_the_core(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_IN_THE_CORE)]


def test_importing_building_clients_and_tracking_loads_no_harness_nor_test_server(
    tmp_path: Path,
) -> None:
    loaded = _modules_loaded(TRACK, str(tmp_path / "spool"))
    assert "automagik_telemetry.client" in loaded["tracked"]
    assert _outside_the_core(loaded["tracked"]) == []
    assert _outside_the_core(loaded["shut_down"]) == []


def test_the_cli_loads_the_harness_only_for_bench() -> None:
    loaded = _modules_loaded(CLI)
    assert "automagik_telemetry.cli" in loaded["config"]
    assert _outside_the_core(loaded["config"]) == []
