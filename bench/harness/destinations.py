"""Where the systems send, and how the harness counts what landed there.

* ``ClickHouseTarget``: the server the user names (``--clickhouse-url``) or the Debian server
  started on loopback (``LocalClickHouse``). Each system and phase gets its own database, so a
  count is one system's rows.
* ``OtlpTarget``: the tests' loopback receiver (``tests/support/servers/otlp_receiver.py``)
  started here in its counting mode (its strict mode decodes OTLP/JSON at ~1,500 spans/s in
  Python and would be what a throughput run measures), cleared between runs; or an endpoint the
  user names, where nothing can be counted (the report says so).
* ``EmbeddedTarget``: a fresh chdb data directory per run, counted after the system's process
  exited (a chdb directory is used by one process at a time).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from automagik_telemetry._net import is_loopback
from automagik_telemetry.sinks.clickhouse import (
    MIN_SCHEMA_VERSION,
    auth_headers,
    schema_statements,
)

from .workload import PROBE_PREFIX, probe_seq

RECEIVER_MAX_BODY = 64 << 20  # the receiver's 413 limit: above any system's batches


class TargetError(RuntimeError):
    """A destination could not be started or reached."""


@dataclass
class Landing:
    """The count at a destination, polled while a system runs: ``series`` of (wall time,
    count), and when the count first reached its final value."""

    series: list[tuple[float, int]] = field(default_factory=list)

    def add(self, count: int) -> None:
        if not self.series or self.series[-1][1] != count:
            self.series.append((time.time(), count))

    @property
    def final(self) -> int:
        return self.series[-1][1] if self.series else 0

    @property
    def final_at(self) -> float | None:
        return self.series[-1][0] if self.series else None


class Poller:
    """Calls ``read()`` every ``interval`` seconds on a thread until stopped."""

    def __init__(self, read: Any, interval: float) -> None:
        self._read = read
        self._interval = interval
        self._stop = threading.Event()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="bench-poller", daemon=True)

    def start(self) -> Poller:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._read()
            except Exception as exc:  # reported, the run goes on
                if len(self.errors) < 3:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        with contextlib.suppress(Exception):
            self._read()


# --- ClickHouse -----------------------------------------------------------------------------


class ClickHouseTarget:
    """A ClickHouse server, started here (``url=None``) or the user's."""

    def __init__(
        self, url: str | None, username: str = "default", password: str = "", keep: bool = False
    ) -> None:
        self.server: Any = None
        if url is None:
            from automagik_telemetry.local_clickhouse import LocalClickHouse

            self.server = LocalClickHouse()
            self.server.start()
            url, username, password = self.server.url, self.server.username, self.server.password
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.keep = keep
        self._http = urllib3.PoolManager(num_pools=2, maxsize=4, retries=False)
        self._headers = auth_headers(username, password)
        self.databases: list[str] = []
        try:
            self.version = self.query("SELECT version()").strip()
        except Exception:
            self.stop()
            raise
        major_minor = tuple(int(p) for p in self.version.split(".")[:2])
        self.legacy = major_minor < MIN_SCHEMA_VERSION
        self.loopback = is_loopback(self.url)
        self.run_id = secrets.token_hex(3)

    @property
    def started_here(self) -> bool:
        return self.server is not None

    def describe(self) -> str:
        where = "started by the harness on loopback" if self.started_here else self.url
        kind = "Debian's package" if self.started_here and self.legacy else "server"
        return f"ClickHouse {self.version} ({kind}, {where})"

    def query(self, sql: str, timeout: float = 60.0) -> str:
        response = self._http.request(
            "POST", self.url + "/", body=sql.encode(), headers=self._headers,
            timeout=urllib3.Timeout(connect=5.0, read=timeout),
        )  # fmt: skip
        text = response.data.decode("utf-8", "replace")
        if response.status != 200:
            raise TargetError(f"ClickHouse at {self.url} answered {response.status}: {text[:300]}")
        return text

    def new_database(self, label: str) -> dict[str, Any]:
        """A fresh database with the telemetry tables; the destination part of a child spec."""
        name = f"bench_{self.run_id}_{label}".replace("-", "_").replace(".", "_")
        for statement in schema_statements(name, legacy=self.legacy):
            self.query(statement)
        self.databases.append(name)
        return {
            "kind": "clickhouse", "url": self.url, "username": self.username,
            "password": self.password, "database": name, "legacy": self.legacy,
            "loopback": self.loopback,
        }  # fmt: skip

    def count(self, database: str) -> int:
        sql = (
            f"SELECT sum(c) FROM (SELECT count() AS c FROM {database}.traces UNION ALL "
            f"SELECT count() AS c FROM {database}.metrics UNION ALL "
            f"SELECT count() AS c FROM {database}.logs)"
        )
        return int(self.query(sql, timeout=10.0).strip() or 0)

    def probe_names(self, database: str) -> list[str]:
        return self.query(f"SELECT span_name FROM {database}.traces", timeout=10.0).split()

    def skip_unknown_fields_for_user(self, timeout: float = 20.0) -> bool:
        """Turn on ``input_format_skip_unknown_fields`` in the profile of the server started
        here (the original SDK sends a Map and extra columns that 18.16's tables lack, and
        cannot send settings). The server re-reads users.xml by itself; wait until it did."""
        if self.server is None:
            return False
        users = Path(self.server.data_dir) / "users.xml"
        text = users.read_text()
        marker = "<load_balancing>random</load_balancing>"
        setting = "<input_format_skip_unknown_fields>1</input_format_skip_unknown_fields>"
        if setting not in text:
            users.write_text(text.replace(marker, marker + setting, 1))
        # The server reloads a file whose mtime changed (whole seconds): move it forward.
        later = time.time() + 2
        os.utime(users, (later, later))
        deadline = time.monotonic() + timeout
        sql = "SELECT value FROM system.settings WHERE name = 'input_format_skip_unknown_fields'"
        while time.monotonic() < deadline:
            if self.query(sql).strip() == "1":
                return True
            time.sleep(0.25)
        return False

    def drop(self, database: str) -> None:
        with contextlib.suppress(Exception):
            self.query(f"DROP DATABASE IF EXISTS {database}")

    def stop(self) -> None:
        """Drop the databases made here (on the user's server, unless ``keep``) and stop the
        server started here."""
        if self.server is None and not self.keep:
            for name in self.databases:
                self.drop(name)
        self.databases.clear()
        self._http.clear()
        if self.server is not None:
            server, self.server = self.server, None
            server.stop()


# --- OTLP -----------------------------------------------------------------------------------


class OtlpTarget:
    """The loopback OTLP receiver (``url=None``) or the user's endpoint."""

    def __init__(self, url: str | None) -> None:
        self.receiver: Any = None
        if url is None:
            from tests.support.servers.otlp_receiver import OtlpReceiver

            self.receiver = OtlpReceiver(
                counting=True, keep_span_names=PROBE_PREFIX, max_body_bytes=RECEIVER_MAX_BODY
            ).start()
            url = self.receiver.url
        self.url = url.rstrip("/")
        self._seen = 0
        self._count = 0
        self._bytes = 0
        self._probes: dict[int, float] = {}
        self._lock = threading.Lock()

    @property
    def countable(self) -> bool:
        return self.receiver is not None

    def describe(self) -> str:
        if self.receiver is None:
            return f"OTLP/HTTP endpoint {self.url} (nothing counted there)"
        return (
            "OTLP/HTTP receiver of the tests in its counting mode, started by the harness on "
            "loopback (protobuf decoded with the official messages, JSON with the json module)"
        )

    def destination(self) -> dict[str, Any]:
        return {"kind": "otlp", "url": self.url, "loopback": True}

    def reset(self) -> None:
        with self._lock:
            if self.receiver is not None:
                self.receiver.clear()
            self._seen = self._count = self._bytes = 0
            self._probes = {}

    def _scan(self) -> None:
        if self.receiver is None:
            return
        with self._lock:
            requests = self.receiver.requests
            # The receiver stamps arrivals on the monotonic clock, the probes are wall-clock.
            wall = time.time() - time.monotonic()
            for request in requests[self._seen :]:
                self._count += request.items
                self._bytes += request.raw_body_len
                for name in request.span_names:
                    seq = probe_seq(name)
                    if seq is not None and seq not in self._probes:
                        self._probes[seq] = request.received_at + wall
            self._seen = len(requests)

    def count(self) -> int:
        self._scan()
        return self._count

    def wire_bytes(self) -> int:
        self._scan()
        return self._bytes

    def probes(self) -> dict[int, float]:
        self._scan()
        return dict(self._probes)

    def errors(self) -> list[str]:
        return list(self.receiver.errors[:3]) if self.receiver is not None else []

    def stop(self) -> None:
        if self.receiver is not None:
            receiver, self.receiver = self.receiver, None
            receiver.stop()


# --- embedded -------------------------------------------------------------------------------


class EmbeddedTarget:
    """A chdb data directory per run, in one temporary directory removed at the end."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="automagik-bench-chdb-"))

    def describe(self) -> str:
        return "embedded ClickHouse (chdb), a fresh data directory per run"

    def new_path(self, label: str) -> dict[str, Any]:
        path = self.root / f"{label}-{secrets.token_hex(3)}"
        return {"kind": "embedded", "path": str(path), "loopback": True}

    def count(self, path: str) -> int:
        """Rows in the three tables (the directory must be free: its writer has exited)."""
        from chdb import session as chdb_session

        session: Any = chdb_session.Session(path)  # type: ignore[no-untyped-call]
        try:
            total = 0
            for table in ("traces", "metrics", "logs"):
                answer = session.query(f"SELECT count() FROM telemetry.{table}", "CSV")
                total += int(answer.bytes().decode().strip() or 0)
            return total
        finally:
            session.close()

    def stop(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
