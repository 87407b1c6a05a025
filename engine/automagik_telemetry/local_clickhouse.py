"""A real, throwaway ClickHouse server for tests and benchmarks, no Docker needed.

:class:`LocalClickHouse` runs the ``clickhouse-server`` binary that Debian packages
(``apt-get install clickhouse-server``, ClickHouse 18.16) or any newer ``clickhouse`` build, as a
child process of the caller:

* everything lives in a fresh temporary directory (``tempfile.mkdtemp``): the generated
  ``config.xml`` and ``users.xml`` (old ``<yandex>`` format, which newer servers still read), the
  data, the temporary files and the server's logs;
* the server listens on 127.0.0.1 only, on a free HTTP port and a free native (TCP) port, with no
  interserver port and no graphite/prometheus endpoints;
* the ``default`` user cannot log in from anywhere; one user (``telemetry`` unless told
  otherwise) with a password, random unless given, may connect from 127.0.0.1 and ::1;
* :meth:`LocalClickHouse.stop` (or leaving the ``with`` block) sends SIGTERM to the server's PID,
  SIGKILL a few seconds later if needed, reaps it and deletes the temporary directory;
* for fault tests, the server can be taken down and brought back *without* losing its port, data
  directory or user: :meth:`~LocalClickHouse.kill` (SIGKILL, no shutdown of any kind),
  :meth:`~LocalClickHouse.halt` (SIGTERM, a clean shutdown), :meth:`~LocalClickHouse.restart`
  (start again on the same HTTP and TCP ports and the same data), and
  :meth:`~LocalClickHouse.pause` / :meth:`~LocalClickHouse.resume` (SIGSTOP / SIGCONT: the kernel
  still accepts connections on its port, but nothing answers until it is resumed).

Run ``python -m automagik_telemetry.local_clickhouse [--port N] [--password P]`` (or
``infra/local/run-clickhouse.sh``) to keep a server in the foreground with the legacy telemetry
schema applied, until Ctrl-C.

A tool for running ClickHouse without Docker, not part of the engine: nothing the client or the
writer imports imports this module.

The binary is looked up as: the ``binary`` argument, the ``AUTOMAGIK_TELEMETRY_CLICKHOUSE_SERVER``
environment variable, ``clickhouse-server`` on ``PATH``, ``/usr/sbin/clickhouse-server``, then a
``clickhouse`` multi-call binary on ``PATH`` (started as ``clickhouse server``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Final
from xml.sax.saxutils import escape

import urllib3

__all__ = [
    "BINARY_ENV",
    "ClickHouseQueryError",
    "ClickHouseServerMissing",
    "LocalClickHouse",
    "find_server_binary",
    "main",
]

BINARY_ENV: Final = "AUTOMAGIK_TELEMETRY_CLICKHOUSE_SERVER"
INSTALL_HINT: Final = (
    "install it with `apt-get update && apt-get install -y clickhouse-server` "
    f"(Debian/Ubuntu), or point {BINARY_ENV} at a clickhouse-server or clickhouse binary"
)
_DEFAULT_SBIN: Final = "/usr/sbin/clickhouse-server"
_START_ATTEMPTS: Final = 5
_TERM_GRACE_S: Final = 5.0
_LOG_TAIL_LINES: Final = 40
_PORT_IN_USE: Final = re.compile(r"Address already in use: [^\s]*:(\d+)")


class ClickHouseServerMissing(RuntimeError):
    """No ClickHouse server binary could be found."""


class ClickHouseQueryError(RuntimeError):
    """The server answered a query with a non-200 status."""

    def __init__(self, status: int, message: str, sql: str) -> None:
        self.status = status
        self.message = message
        self.sql = sql
        super().__init__(f"ClickHouse HTTP {status}: {message}")


# --- binary lookup ------------------------------------------------------------------------------


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_server_binary(binary: str | os.PathLike[str] | None = None) -> list[str]:
    """Return the argv prefix that starts a ClickHouse server.

    ``["/usr/sbin/clickhouse-server"]`` for the dedicated binary, ``[".../clickhouse", "server"]``
    for the multi-call one. Raises :class:`ClickHouseServerMissing` when nothing usable exists.
    """
    explicit = os.fspath(binary) if binary is not None else os.environ.get(BINARY_ENV) or None
    if explicit is not None:
        resolved = explicit if os.sep in explicit else shutil.which(explicit)
        if resolved is None or not _is_executable(resolved):
            source = "binary argument" if binary is not None else BINARY_ENV
            raise ClickHouseServerMissing(
                f"ClickHouse server binary {explicit!r} (from {source}) is not an executable "
                f"file; {INSTALL_HINT}"
            )
        candidate = resolved
    else:
        found = shutil.which("clickhouse-server")
        if found is None and _is_executable(_DEFAULT_SBIN):
            found = _DEFAULT_SBIN
        if found is None:
            found = shutil.which("clickhouse")
        if found is None:
            raise ClickHouseServerMissing(f"no ClickHouse server binary found; {INSTALL_HINT}")
        candidate = found
    if os.path.basename(candidate) == "clickhouse":
        return [candidate, "server"]
    return [candidate]


# --- configuration files ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _config_xml(root: Path, http_port: int, tcp_port: int) -> str:
    def directory(name: str) -> str:
        return escape(str(root / name) + "/")

    def file(name: str) -> str:
        return escape(str(root / name))

    return f"""<?xml version="1.0"?>
<!-- Written by automagik_telemetry.local_clickhouse; deleted with its directory. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{file("log/clickhouse-server.log")}</log>
        <errorlog>{file("log/clickhouse-server.err.log")}</errorlog>
        <size>100M</size>
        <count>1</count>
        <console>0</console>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>64</max_concurrent_queries>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mark_cache_size>5368709</mark_cache_size>
    <path>{directory("data")}</path>
    <tmp_path>{directory("tmp")}</tmp_path>
    <user_files_path>{directory("user_files")}</user_files_path>
    <format_schema_path>{directory("format_schemas")}</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
"""


def _users_xml(username: str, password: str) -> str:
    user = escape(username)
    return f"""<?xml version="1.0"?>
<!-- Written by automagik_telemetry.local_clickhouse; deleted with its directory. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <!-- Kept because the server expects it, but it may not connect from anywhere. -->
        <default>
            <password>{escape(secrets.token_hex(24))}</password>
            <networks></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <{user}>
            <password>{escape(password)}</password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </{user}>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"""


# --- SQL helpers --------------------------------------------------------------------------------


def split_sql(text: str) -> list[str]:
    """Split a script into statements: drop ``--`` comment lines, cut on ``;``, skip blanks."""
    kept = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [stmt.strip() for stmt in kept.split(";") if stmt.strip()]


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- the server ---------------------------------------------------------------------------------


class LocalClickHouse:
    """A ClickHouse server process in a temporary directory, for tests and benchmarks.

    >>> with LocalClickHouse() as ch:  # doctest: +SKIP
    ...     ch.query("SELECT 1")
    '1\\n'
    """

    def __init__(
        self,
        username: str = "telemetry",
        password: str | None = None,
        binary: str | os.PathLike[str] | None = None,
        *,
        http_port: int | None = None,
        tcp_port: int | None = None,
    ) -> None:
        if not username or not username.replace("_", "").isalnum():
            raise ValueError(f"username must be letters, digits and '_', got {username!r}")
        if username == "default":
            raise ValueError("the 'default' user is locked out; pick another username")
        self.username: Final = username
        self.password: Final = password if password is not None else secrets.token_urlsafe(18)
        self._binary = binary
        self._fixed_http_port = http_port
        self._fixed_tcp_port = tcp_port
        self._argv: list[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._data_dir: Path | None = None
        self._http_port: int | None = None
        self._tcp_port: int | None = None
        self._pool: urllib3.PoolManager | None = None
        self._paused = False
        self._runs = 1  # how many times the server was launched (restart() counts up)

    # -- state ------------------------------------------------------------------------------

    def _require_started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("LocalClickHouse is not running; call start() first")
        return self._process

    @property
    def port(self) -> int:
        """The HTTP port."""
        self._require_started()
        assert self._http_port is not None
        return self._http_port

    @property
    def tcp_port(self) -> int:
        """The native protocol port (for ``clickhouse-client --port``)."""
        self._require_started()
        assert self._tcp_port is not None
        return self._tcp_port

    @property
    def pid(self) -> int:
        return self._require_started().pid

    @property
    def data_dir(self) -> Path:
        """The temporary directory holding the configuration, data and logs."""
        self._require_started()
        assert self._data_dir is not None
        return self._data_dir

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """The server process exists (it may be paused: see :attr:`paused`)."""
        return self._process is not None and self._process.poll() is None

    @property
    def paused(self) -> bool:
        """Stopped with SIGSTOP by :meth:`pause`, not resumed yet."""
        return self._paused and self.running

    @property
    def error_log(self) -> Path:
        return self.data_dir / "log" / "clickhouse-server.err.log"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> LocalClickHouse:
        """Write the configuration, launch the server and wait until ``/ping`` answers ``Ok.``."""
        if self._process is not None:
            raise RuntimeError("LocalClickHouse is already started")
        argv = self._argv = find_server_binary(self._binary)
        root = Path(tempfile.mkdtemp(prefix="automagik-clickhouse-"))
        fixed_ports = {self._fixed_http_port, self._fixed_tcp_port} - {None}
        deadline = time.monotonic() + timeout
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                self._launch(argv, root)
                try:
                    self._wait_ready(deadline)
                    return self
                except _StartFailure as failure:
                    self._terminate()
                    busy = failure.busy_port
                    if busy is None or busy in fixed_ports or attempt == _START_ATTEMPTS:
                        raise RuntimeError(str(failure)) from None
                    _reset_logs(root)
            raise AssertionError("unreachable")
        except BaseException:
            self._terminate()
            shutil.rmtree(root, ignore_errors=True)
            self._data_dir = None
            raise

    def _launch(self, argv: list[str], root: Path, ports: tuple[int, int] | None = None) -> None:
        http_port, tcp_port = ports or (
            self._fixed_http_port or _free_port(),
            self._fixed_tcp_port or _free_port(),
        )
        while tcp_port == http_port:
            tcp_port = _free_port()
        for name in ("data", "tmp", "user_files", "format_schemas", "log"):
            (root / name).mkdir(exist_ok=True)
        config = root / "config.xml"
        config.write_text(_config_xml(root, http_port, tcp_port), encoding="utf-8")
        users = root / "users.xml"
        users.write_text(_users_xml(self.username, self.password), encoding="utf-8")
        users.chmod(0o600)
        self._data_dir = root
        self._http_port = http_port
        self._tcp_port = tcp_port
        self._output = open(root / "log" / "stdout.log", "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [*argv, f"--config-file={config}"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_ready(self, deadline: float) -> None:
        process = self._require_started()
        url = f"http://127.0.0.1:{self._http_port}/ping"
        assert self._data_dir is not None
        err_log = self._data_dir / "log" / "clickhouse-server.err.log"
        delay = 0.02
        with urllib3.PoolManager(num_pools=1, maxsize=1, retries=False) as pool:
            while True:
                code = process.poll()
                if code is not None:
                    raise self._failure(f"ClickHouse server exited with status {code} at start")
                with contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
                    response = pool.request("GET", url, timeout=urllib3.Timeout(total=1.0))
                    if response.status == 200 and response.data.strip() == b"Ok.":
                        return
                if _mentions_port_in_use(err_log):
                    # Old servers take seconds to exit after a failed bind: don't wait for it.
                    raise self._failure("ClickHouse server could not bind its ports")
                if time.monotonic() >= deadline:
                    raise self._failure("ClickHouse server did not answer /ping in time")
                time.sleep(delay)
                delay = min(delay * 1.5, 0.25)

    def _failure(self, reason: str) -> _StartFailure:
        assert self._data_dir is not None
        log_dir = self._data_dir / "log"
        if self._output is not None:
            self._output.flush()
        err = _tail(log_dir / "clickhouse-server.err.log")
        out = _tail(log_dir / "stdout.log")
        busy = _busy_port(err) or _busy_port(out)
        parts = [f"{reason} (binary {self._argv}, directory {self._data_dir})"]
        if err:
            parts.append(f"--- tail of clickhouse-server.err.log ---\n{err}")
        if out:
            parts.append(f"--- tail of stdout/stderr ---\n{out}")
        if not err and not out:
            parts.append("(the server wrote no log)")
        return _StartFailure("\n".join(parts), busy_port=busy)

    def _terminate(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL), reap it and close the output file."""
        process, self._process = self._process, None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.clear()  # an open keep-alive connection holds a stopping server back ~3 s
        if process is not None:
            try:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGTERM)
                    try:
                        process.wait(timeout=_TERM_GRACE_S)
                    except subprocess.TimeoutExpired:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(process.pid, signal.SIGKILL)
                        process.wait()
            finally:
                # Also reaps on KeyboardInterrupt, so Popen.__del__ finds no live child.
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGKILL)
                    process.wait()
        output, self._output = self._output, None
        if output is not None:
            output.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.clear()

    # -- faults: take the server down and bring it back, keeping its port and data ----------

    def _require_running(self) -> subprocess.Popen[bytes]:
        process = self._require_started()
        if process.poll() is not None:
            raise RuntimeError(
                f"the ClickHouse server (pid {process.pid}) is not running; call restart()"
            )
        return process

    def pause(self) -> None:
        """SIGSTOP the server. Its listening socket stays open, so clients still connect (the
        kernel completes the handshake) and then wait for an answer that only comes after
        :meth:`resume`."""
        process = self._require_running()
        os.kill(process.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT a server stopped by :meth:`pause` (nothing happens when it is not paused)."""
        process = self._require_started()
        if self._paused and process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
        self._paused = False

    def kill(self) -> None:
        """SIGKILL the server (no shutdown of any kind: inserts in progress die with it) and
        reap it. The data directory, the ports and the user stay, for :meth:`restart`."""
        process = self._require_started()
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)  # also ends a SIGSTOPped process
        process.wait()
        self._paused = False
        self._release_io()

    def halt(self, timeout: float = _TERM_GRACE_S) -> None:
        """Stop the server cleanly (SIGTERM; SIGKILL after ``timeout`` seconds) and reap it,
        keeping the data directory, the ports and the user for :meth:`restart`."""
        process = self._require_started()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.clear()  # an open keep-alive connection holds a stopping server back ~3 s
        if process.poll() is None:
            self.resume()  # a stopped process would not act on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self._paused = False
        self._release_io()

    def restart(self, timeout: float = 30.0) -> LocalClickHouse:
        """Start the server again on the same HTTP and TCP ports, with the same data directory
        and user, and wait until ``/ping`` answers. A running server is halted first. The ports
        are not given up: if something else took one meanwhile, this retries until ``timeout``
        and then raises ``RuntimeError`` with the server's log."""
        self._require_started()
        if self.running:
            self.halt()
        argv, root = self._argv, self._data_dir
        assert argv is not None and root is not None
        assert self._http_port is not None and self._tcp_port is not None
        ports = (self._http_port, self._tcp_port)
        self._runs += 1
        _rotate_logs(root, self._runs - 1)
        deadline = time.monotonic() + timeout
        while True:
            self._launch(argv, root, ports)
            try:
                self._wait_ready(deadline)
                return self
            except _StartFailure as failure:
                process = self._process
                assert process is not None
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait()
                self._release_io()
                if failure.busy_port is None or time.monotonic() + 0.5 >= deadline:
                    raise RuntimeError(str(failure)) from None
                _rotate_logs(root, self._runs - 1)  # a clean log for the next attempt
                time.sleep(0.5)  # the port may still be held by a socket that is closing

    def _release_io(self) -> None:
        """Close the dead server's output file and the query pool (its connections are gone)."""
        output, self._output = self._output, None
        if output is not None:
            output.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.clear()

    def stop(self) -> None:
        """Stop the server and delete its temporary directory. Safe to call more than once."""
        try:
            if self._paused:
                self.resume()
            self._terminate()
        finally:
            root, self._data_dir = self._data_dir, None
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> LocalClickHouse:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<LocalClickHouse {self.username}@{where}>"

    # -- queries ----------------------------------------------------------------------------

    def query(
        self,
        sql: str,
        *,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
    ) -> str:
        """Run one statement over HTTP (SQL as the POST body) and return the response text."""
        self._require_started()
        if self._pool is None:
            self._pool = urllib3.PoolManager(num_pools=1, maxsize=4, retries=False)
        response = self._pool.request(
            "POST",
            self.url + "/",
            body=sql.encode("utf-8"),
            headers={
                "X-ClickHouse-User": user if user is not None else self.username,
                "X-ClickHouse-Key": password if password is not None else self.password,
                "Content-Type": "text/plain; charset=utf-8",
            },
            timeout=urllib3.Timeout(connect=5.0, read=timeout),
        )
        text = response.data.decode("utf-8", errors="replace")
        if response.status != 200:
            raise ClickHouseQueryError(response.status, text.strip(), sql)
        return text

    def apply_sql_file(
        self,
        path_or_text: str | os.PathLike[str],
        *,
        user: str | None = None,
        password: str | None = None,
    ) -> list[str]:
        """Run every statement of a SQL script (a path, or the script text itself).

        A ``str`` is read as a file when it names an existing file and holds no newline or
        ``;``; otherwise it is the SQL. Lines starting with ``--`` are dropped, the rest is cut
        on ``;``. Returns each statement's output.
        """
        if isinstance(path_or_text, str):
            looks_like_path = "\n" not in path_or_text and ";" not in path_or_text
            if looks_like_path and os.path.isfile(path_or_text):
                text = Path(path_or_text).read_text(encoding="utf-8")
            else:
                text = path_or_text
        else:
            text = Path(path_or_text).read_text(encoding="utf-8")
        return [self.query(stmt, user=user, password=password) for stmt in split_sql(text)]

    def version(self) -> str:
        """The server's version string, e.g. ``18.16.1``."""
        return self.query("SELECT version()").strip()


class _StartFailure(Exception):
    def __init__(self, message: str, *, busy_port: int | None) -> None:
        super().__init__(message)
        self.busy_port = busy_port


def _busy_port(log_text: str) -> int | None:
    """The port of an ``Address already in use: 127.0.0.1:PORT`` message, if any."""
    match = _PORT_IN_USE.search(log_text)
    return int(match.group(1)) if match else None


def _mentions_port_in_use(err_log: Path) -> bool:
    try:
        if err_log.stat().st_size == 0:
            return False
        return (
            _PORT_IN_USE.search(err_log.read_text(encoding="utf-8", errors="replace")) is not None
        )
    except OSError:
        return False


def _rotate_logs(root: Path, run: int) -> None:
    """Keep the logs of an earlier run of the server under ``log/run-N/`` (``restart``): the
    next run writes fresh ones, so start-up failures are read from its own log only."""
    log_dir = root / "log"
    kept = log_dir / f"run-{run}"
    kept.mkdir(exist_ok=True)
    for path in log_dir.glob("*.log"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, kept / path.name)


def _reset_logs(root: Path) -> None:
    for log in (root / "log").glob("*"):
        if log.is_file():
            with contextlib.suppress(FileNotFoundError):
                log.unlink()


# --- command line -------------------------------------------------------------------------------


def legacy_schema_sql() -> str:
    """The packaged ``schema/clickhouse-legacy.sql`` (tables for ClickHouse 18.16 to 22.7)."""
    resource = importlib.resources.files("automagik_telemetry").joinpath(
        "schema/clickhouse-legacy.sql"
    )
    return resource.read_text(encoding="utf-8")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m automagik_telemetry.local_clickhouse",
        description="Run a throwaway local ClickHouse server (no Docker) with the legacy "
        "telemetry schema, until Ctrl-C. Its data is deleted on exit.",
    )
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: a free one)")
    parser.add_argument("--tcp-port", type=int, default=None, help="native protocol port")
    parser.add_argument("--username", default="telemetry", help="user to create")
    parser.add_argument("--password", default=None, help="its password (default: random)")
    parser.add_argument("--binary", default=None, help=f"server binary (default: ${BINARY_ENV})")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for start")
    parser.add_argument("--no-schema", action="store_true", help="skip clickhouse-legacy.sql")
    args = parser.parse_args(argv)

    server = LocalClickHouse(
        username=args.username,
        password=args.password,
        binary=args.binary,
        http_port=args.port,
        tcp_port=args.tcp_port,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        try:
            server.start(timeout=args.timeout)
        except ClickHouseServerMissing as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if not args.no_schema:
            server.apply_sql_file(legacy_schema_sql())
        print(f"ClickHouse {server.version()} running (pid {server.pid})", flush=True)
        print(f"  url:       {server.url}")
        print(f"  tcp port:  {server.tcp_port}")
        print(f"  user:      {server.username}")
        print(f"  password:  {server.password}")
        print(f"  directory: {server.data_dir}")
        if not args.no_schema:
            print("  schema:    clickhouse-legacy.sql applied (database telemetry)")
        print("Press Ctrl-C to stop.", flush=True)
        while server.running:
            time.sleep(0.5)
        print(f"error: the server exited:\n{_tail(server.error_log)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ClickHouse ...", file=sys.stderr, flush=True)
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
