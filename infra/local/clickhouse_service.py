"""`make start` without Docker: the Debian ``clickhouse-server`` as a background process.

    python infra/local/clickhouse_service.py start  --dir DIR --port 8123 --tcp-port 9000
    python infra/local/clickhouse_service.py status --dir DIR
    python infra/local/clickhouse_service.py stop   --dir DIR

Unlike ``run-clickhouse.sh`` (a foreground server in a temporary directory), this keeps its
configuration, data and logs in ``DIR`` (the Makefile's ``LOCAL_DIR``) across stop and start,
and runs detached (its own session), so ``make start`` returns. ``DIR/clickhouse.pid`` holds
the PID; ``stop`` signals that PID only, and only if that process is the server started with
``DIR``'s configuration (a PID file left by a reboot names some other process, which is left
alone). The server listens on 127.0.0.1; the user and password are the guide's
(``telemetry`` / ``telemetry_password``) unless told otherwise; the database ``telemetry`` and
its three tables are created at each start (``schema.sql`` on ClickHouse 22.8 and newer,
``schema-legacy.sql`` on older servers such as Debian's 18.16).

A missing server binary is installed with ``apt-get`` when this runs as root on a system that
has it; otherwise the message says how.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import urllib3

from automagik_telemetry.local_clickhouse import (
    ClickHouseServerMissing,
    _config_xml,
    _users_xml,
    find_server_binary,
    split_sql,
)

INFRA = Path(__file__).resolve().parents[1]
SCHEMA = INFRA / "clickhouse" / "schema.sql"
LEGACY_SCHEMA = INFRA / "clickhouse" / "schema-legacy.sql"
CURRENT_FROM = (22, 8)
STOP_GRACE_S = 15.0


def _say(text: str) -> None:
    print(text, flush=True)


def _pid_file(root: Path) -> Path:
    return root / "clickhouse.pid"


def _config(root: Path) -> Path:
    return root / "config.xml"


def _ours(root: Path) -> int | None:
    """The PID of the server started with this directory's configuration, if it runs."""
    try:
        pid = int(_pid_file(root).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if f"--config-file={_config(root)}".encode() not in cmdline:
        return None  # the PID was reused by another process: not ours to signal
    return pid


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _binary() -> list[str]:
    try:
        return find_server_binary()
    except ClickHouseServerMissing as missing:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise SystemExit(f"error: {missing}") from None
    _say("clickhouse-server is not installed: installing it with apt-get (running as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "clickhouse-server"]):
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            raise SystemExit(f"error: `{' '.join(argv)}` failed; install clickhouse-server")
    try:
        return find_server_binary()
    except ClickHouseServerMissing as missing:
        raise SystemExit(f"error: {missing}") from None


def _query(port: int, user: str, password: str, sql: str) -> tuple[int, str]:
    with urllib3.PoolManager(retries=False) as http:
        answer = http.request(
            "POST",
            f"http://127.0.0.1:{port}/",
            body=sql.encode(),
            headers={"X-ClickHouse-User": user, "X-ClickHouse-Key": password},
            timeout=urllib3.Timeout(connect=2.0, read=60.0),
        )
    return answer.status, answer.data.decode("utf-8", "replace").strip()


def _tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def start(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    pid = _ours(root)
    if pid is not None:
        _say(f"ClickHouse is already running (pid {pid}) from {root}")
        return 0
    if _listening(args.port):
        _say(f"error: something else listens on 127.0.0.1:{args.port}; stop it, or pick "
             f"another port: make start PORT=18123")  # fmt: skip
        return 1
    argv = _binary()
    for name in ("data", "tmp", "user_files", "format_schemas", "log"):
        (root / name).mkdir(parents=True, exist_ok=True)
    _config(root).write_text(_config_xml(root, args.port, args.tcp_port), encoding="utf-8")
    users = root / "users.xml"
    users.write_text(_users_xml(args.user, args.password), encoding="utf-8")
    users.chmod(0o600)
    log = root / "log" / "stdout.log"
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [*argv, f"--config-file={_config(root)}"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not stopped by a Ctrl-C aimed at make
        )
    _pid_file(root).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + args.timeout
    while True:
        if process.poll() is not None:
            _pid_file(root).unlink(missing_ok=True)
            err = _tail(root / "log" / "clickhouse-server.err.log") or _tail(log)
            _say(f"error: clickhouse-server exited with status {process.returncode}:\n{err}")
            return 1
        with contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
            status, text = _query(args.port, args.user, args.password, "SELECT version()")
            if status == 200:
                version = text
                break
        if time.monotonic() > deadline:
            _stop_pid(process.pid)
            _pid_file(root).unlink(missing_ok=True)
            _say(f"error: clickhouse-server did not answer within {args.timeout:.0f} s:\n"
                 f"{_tail(root / 'log' / 'clickhouse-server.err.log')}")  # fmt: skip
            return 1
        time.sleep(0.2)
    major = tuple(int(p) for p in version.split(".")[:2])
    schema = SCHEMA if major >= CURRENT_FROM else LEGACY_SCHEMA
    for statement in split_sql(schema.read_text(encoding="utf-8")):
        status, text = _query(args.port, args.user, args.password, statement)
        if status != 200:
            _say(f"error: applying {schema.name}: {text[:400]}")
            return 1
    _say(f"ClickHouse {version} running as a local process (pid {process.pid})")
    _say(f"  url:      http://localhost:{args.port}  (HTTP; native port {args.tcp_port})")
    _say(f"  user:     {args.user} / {'*' * len(args.password)}")
    _say(f"  tables:   telemetry.traces, telemetry.metrics, telemetry.logs ({schema.name})")
    _say(f"  data:     {root}")
    _say("  stop it:  make stop")
    return 0


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        if _zombie(pid):
            break
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists() and not _zombie(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while Path(f"/proc/{pid}").exists() and not _zombie(pid):
            time.sleep(0.05)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # our own child only when start() gave up on it


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def stop(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    pid = _ours(root)
    if pid is None:
        stale = _pid_file(root).exists()
        _pid_file(root).unlink(missing_ok=True)
        _say("ClickHouse (local process) is not running" + (" (stale PID file removed)"
                                                            if stale else ""))  # fmt: skip
        return 0
    _stop_pid(pid)
    _pid_file(root).unlink(missing_ok=True)
    _say(f"stopped ClickHouse (pid {pid}); its data stays in {root} (make clean removes it)")
    return 0


def status(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    pid = _ours(root)
    if pid is None:
        _say(f"ClickHouse (local process, {root}): not running; start it with make start")
        return 1
    try:
        code, text = _query(args.port, args.user, args.password,
                            "SELECT version(), (SELECT count() FROM telemetry.traces), "
                            "(SELECT count() FROM telemetry.metrics), "
                            "(SELECT count() FROM telemetry.logs) FORMAT TSV")  # fmt: skip
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        _say(f"ClickHouse (pid {pid}) runs but does not answer on port {args.port}: {exc}")
        return 1
    if code != 200:
        _say(f"ClickHouse (pid {pid}) answered {code}: {text[:300]}")
        return 1
    version, traces, metrics, logs = text.split("\t")
    _say(f"ClickHouse {version} (local process, pid {pid}) on http://localhost:{args.port}: "
         f"traces {traces}, metrics {metrics}, logs {logs} rows; data in {root}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--dir", required=True, help="configuration, data, logs and PID file")
    parser.add_argument("--port", type=int, default=8123, help="HTTP port")
    parser.add_argument("--tcp-port", type=int, default=9000, help="native protocol port")
    parser.add_argument("--user", default="telemetry")
    parser.add_argument("--password", default="telemetry_password")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    action = {"start": start, "stop": stop, "status": status}[args.action]
    return action(args)


if __name__ == "__main__":
    sys.exit(main())
