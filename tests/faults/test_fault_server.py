"""The fault machinery itself: LocalClickHouse taken down and brought back on the same port with
the same data (kill, halt, restart, pause/resume), and the HTTP front's script and hooks."""

from __future__ import annotations

import time

import pytest
import urllib3

from automagik_telemetry.local_clickhouse import LocalClickHouse
from tests.support import process_alive
from tests.support.servers.http_front import DROP, Answer, HttpFront


def test_kill_halt_restart_pause_keep_port_data_and_user() -> None:
    with LocalClickHouse(username="faults") as server:
        port, data, first = server.port, server.data_dir, server.pid
        server.query("CREATE TABLE default.t (x UInt32) ENGINE = MergeTree ORDER BY x")
        server.query("INSERT INTO default.t VALUES (1), (2)")

        server.kill()
        assert not server.running and not process_alive(first)
        with pytest.raises(urllib3.exceptions.HTTPError):
            server.query("SELECT 1")
        with pytest.raises(RuntimeError, match="not running"):
            server.pause()
        server.restart()
        assert (server.port, server.data_dir) == (port, data) and server.pid != first
        assert server.query("SELECT count() FROM default.t").strip() == "2"

        server.pause()
        assert server.paused
        pool = urllib3.PoolManager(retries=False)
        started = time.monotonic()
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            pool.request("GET", f"{server.url}/ping", timeout=urllib3.Timeout(connect=1, read=0.5))
        assert time.monotonic() - started >= 0.5  # connected (the kernel accepts), no answer
        pool.clear()
        server.resume()
        assert not server.paused and server.query("SELECT 1").strip() == "1"

        second = server.pid
        server.halt()
        assert not server.running and not process_alive(second)
        server.restart()
        assert server.port == port
        assert server.query("SELECT sum(x) FROM default.t").strip() == "3"
        assert (data / "log" / "run-1").is_dir() and (data / "log" / "run-2").is_dir()
        server.pause()  # stop() copes with a stopped server
    assert not data.exists()


def test_http_front_scripts_answers_and_passes_through(fault_server: LocalClickHouse) -> None:
    pool = urllib3.PoolManager(retries=False)
    headers = {"X-ClickHouse-User": fault_server.username,
               "X-ClickHouse-Key": fault_server.password}  # fmt: skip
    with HttpFront(fault_server.url) as front:
        front.script(Answer(429, retry_after=2, body=b"slow down"), DROP)
        limited = pool.request("POST", front.url + "/", body=b"SELECT 1", headers=headers)
        assert (limited.status, limited.headers["Retry-After"], limited.data) == (
            429, "2", b"slow down")  # fmt: skip
        with pytest.raises(urllib3.exceptions.ProtocolError):
            pool.request("POST", front.url + "/", body=b"SELECT 1", headers=headers)
        passed = pool.request("POST", front.url + "/", body=b"SELECT 40 + 2", headers=headers)
        assert (passed.status, passed.data.strip()) == (200, b"42")
        refused = pool.request("POST", front.url + "/", body=b"SELECT 1",
                               headers={**headers, "X-ClickHouse-Key": "wrong"})  # fmt: skip
        assert refused.status in (401, 403, 500, 516) and b"assword" in refused.data
        actions = [(e.action, e.status) for e in front.exchanges]
    pool.clear()
    assert actions[:3] == [("scripted", 429), ("dropped", None), ("forwarded", 200)]
    assert actions[3][0] == "forwarded"
