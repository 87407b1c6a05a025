"""The backend guide's walk-through, as a newcomer types it: ``cd infra && make start``, the
guide's Python snippet with the guide's credentials, the guide's ``curl`` count, ``make stop``.

Through the no-Docker path (``RUNTIME=local``: no Docker engine runs on this machine or in CI),
which starts the Debian clickhouse-server as a local process. The port is a free one, passed
through the Makefile's ``PORT`` variable, not the guide's 8123: tests run in parallel with
other suites and servers, and a developer may have a ClickHouse of their own on 8123. Every
other word is the guide's (user, password, database, table, query).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from automagik_telemetry import AutomagikTelemetry

INFRA = Path(__file__).resolve().parents[2] / "infra"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Make:
    def __init__(self, local_dir: Path) -> None:
        self.port = _free_port()
        self.tcp_port = _free_port()
        self.local_dir = local_dir

    def __call__(self, target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "-s", "-C", str(INFRA), target, "RUNTIME=local", f"PORT={self.port}",
             f"TCP_PORT={self.tcp_port}", f"LOCAL_DIR={self.local_dir}"],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    runner = Make(tmp_path / "local-clickhouse")
    yield runner
    runner("stop")  # whatever the test did: nothing left running


def test_guide_walk_through_without_docker(make: Make) -> None:
    started = make("start")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "starting the\nDebian clickhouse-server as a local process" in started.stdout
    pid = int((make.local_dir / "clickhouse.pid").read_text())
    assert Path(f"/proc/{pid}").exists()

    # the guide's snippet, with its credentials (the port is this test's)
    client = AutomagikTelemetry(
        project_name="my-app",
        version="1.0.0",
        backend="clickhouse",
        clickhouse_endpoint=f"http://localhost:{make.port}",
        clickhouse_database="telemetry",
        clickhouse_username="telemetry",
        clickhouse_password="telemetry_password",
    )
    client.track_event("test", {})
    assert client.flush(timeout=30)
    client.shutdown()

    # the guide's verification, with credentials
    count = subprocess.run(
        ["curl", "-sS", "-u", "telemetry:telemetry_password",
         f"http://localhost:{make.port}/?query=SELECT%20count()%20FROM%20telemetry.traces"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert count.stdout.strip() == "1"
    verified = make("verify")
    assert verified.stdout.strip() == "1", verified.stdout + verified.stderr
    status = make("status")
    assert "traces 1," in status.stdout

    stopped = make("stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert not _listening(make.port)
    assert not _listening(make.tcp_port)
    assert not (make.local_dir / "clickhouse.pid").exists()
    assert (make.local_dir / "data").is_dir()  # the data stays until make clean
    cleaned = make("clean")
    assert cleaned.returncode == 0 and not make.local_dir.exists()


def test_start_twice_is_one_server_and_stop_leaves_others_alone(make: Make) -> None:
    first = make("start")
    assert first.returncode == 0, first.stdout + first.stderr
    pid = int((make.local_dir / "clickhouse.pid").read_text())
    again = make("start")
    assert again.returncode == 0 and f"already running (pid {pid})" in again.stdout
    # a PID file that names another process (a reboot, a reused PID) is not signalled
    (make.local_dir / "clickhouse.pid").write_text(f"{pid}\n")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (make.local_dir / "clickhouse.pid").write_text(f"{sleeper.pid}\n")
        stale = make("stop")
        assert "not running (stale PID file removed)" in stale.stdout
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    (make.local_dir / "clickhouse.pid").write_text(f"{pid}\n")
    assert make("stop").returncode == 0
    assert not _listening(make.port)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
