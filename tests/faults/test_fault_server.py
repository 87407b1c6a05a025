"""The fault machinery itself: LocalClickHouse taken down and brought back on the same port with
the same data (kill, halt, restart, pause/resume), and the HTTP front's script, hooks and
holds."""

from __future__ import annotations

import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable

import pytest
import urllib3

from automagik_telemetry.local_clickhouse import LocalClickHouse
from tests.faults.helpers import wait_until
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


def test_http_front_holds_delay_throttle_release_and_drop_abandoned_requests(
    fault_server: LocalClickHouse,
) -> None:
    """``delay`` holds each insert, ``throttle`` lets them through one at a time at a rate of
    rows, ``release`` lets held requests go at once, and a request whose client gave up during
    its hold is never forwarded (the server does not store it)."""
    database = "front_" + secrets.token_hex(3)
    fault_server.query(f"CREATE DATABASE {database}")
    fault_server.query(f"CREATE TABLE {database}.t (x UInt32) ENGINE = MergeTree ORDER BY x")
    target = "/?" + urllib.parse.urlencode(
        {"query": f"INSERT INTO {database}.t FORMAT JSONEachRow"}
    )
    headers = {"X-ClickHouse-User": fault_server.username,
               "X-ClickHouse-Key": fault_server.password}  # fmt: skip
    pool = urllib3.PoolManager(retries=False, maxsize=4)

    def insert(rows: int, first: int = 0, read: float = 10.0) -> int:
        body = b"".join(b'{"x":%d}\n' % i for i in range(first, first + rows))
        answer = pool.request("POST", front.url + target, body=body, headers=headers,
                              timeout=urllib3.Timeout(connect=2, read=read))  # fmt: skip
        return answer.status

    def timed(what: Callable[[], object]) -> float:
        started = time.monotonic()
        what()
        return time.monotonic() - started

    try:
        with HttpFront(fault_server.url) as front:
            front.delay(0.4)
            assert timed(lambda: insert(10)) >= 0.4
            query = pool.request("POST", front.url + "/", body=b"SELECT 1", headers=headers)
            assert query.data.strip() == b"1"  # not an insert: not held

            front.throttle(100)  # rows per second: 20 rows take 0.2 s, two inserts 0.4 s
            both = [threading.Thread(target=insert, args=(20, 100 + 20 * i)) for i in range(2)]
            assert timed(lambda: [(t.start(), t.join()) for t in both]) >= 0.38

            front.delay(1.0)
            with pytest.raises(urllib3.exceptions.ReadTimeoutError):
                insert(5, 1000, read=0.3)  # gives up during the hold
            pool.clear()
            assert wait_until(lambda: any(e.action == "client-gone" for e in front.exchanges), 3)

            front.delay(30.0)
            late = threading.Thread(target=insert, args=(5, 2000))
            late.start()
            time.sleep(0.2)
            assert timed(lambda: (front.release(), late.join(5))) < 2.0
            # the front logs an exchange after its answer went out: wait for the log, not the
            # client
            assert wait_until(lambda: sum(e.insert for e in front.exchanges) >= 5, 3)
            exchanges = front.exchanges
        held = [(e.rows, e.action, e.status) for e in exchanges if e.insert]
        assert held == [(10, "forwarded", 200), (20, "forwarded", 200), (20, "forwarded", 200),
                        (5, "client-gone", None), (5, "forwarded", 200)], held  # fmt: skip
        stored = fault_server.query(f"SELECT count(), countIf(x >= 1000 AND x < 2000) "
                                    f"FROM {database}.t").split()  # fmt: skip
        assert stored == ["55", "0"]  # 10 + 20 + 20 + 5: the abandoned insert is not there
    finally:
        pool.clear()
        fault_server.query(f"DROP DATABASE IF EXISTS {database}")
