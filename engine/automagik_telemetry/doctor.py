"""``automagik-telemetry doctor``: the backend guide's debug checklist, run for real.

``run(config)`` checks, against the configuration the application would use, each thing the
guide's troubleshooting section asks a user to check by hand, and returns one ``Check`` per
step (passed or not, what was found, and the fix):

* consent: whether a client with this configuration sends anything, and why (``opt_in``);
* ClickHouse (``backend="clickhouse"``): the endpoint is an http(s) URL on the HTTP port (not
  the native port 9000, not https on a plain server), ``/ping`` answers, the credentials work
  (the server's own message when not), the database and the three tables exist with the
  columns the engine writes (missing ones named), then a test row goes through a real client
  and its writer (tracked, flushed, counted back), and is removed again;
* OTLP: each of the three endpoints answers an empty export;
* the embedded engine: chdb imports and the database path is writable;
* the spool of this destination: batches waiting, set aside, corrupt, the oldest's age;
* the writer process starts.

A step whose prerequisite failed is reported as skipped (not passed). Nothing is sent to the
vendor's endpoint without consent: those checks are skipped. The test row uses a temporary
spool directory, so the doctor never replays (nor disturbs) the application's spool.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import urllib3

from . import opt_in
from .config import OPTIONS, TelemetryConfig

PASS: Final = "pass"
FAIL: Final = "fail"
SKIP: Final = "skip"
NATIVE_PORTS: Final = (9000, 9440)
DOCTOR_EVENT: Final = "automagik_telemetry.doctor"
APPLY: Final = "automagik-telemetry schema --apply"


@dataclass(frozen=True)
class Check:
    step: str
    status: str  # pass | fail | skip
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status == PASS


@dataclass
class Report:
    config: dict[str, Any]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, step: str, status: str, detail: str, fix: str = "") -> Check:
        check = Check(step, status, detail, fix)
        self.checks.append(check)
        return check

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "config": self.config, "checks": [asdict(c) for c in self.checks]}

    def text(self) -> str:
        marks = {PASS: "✔", FAIL: "✘", SKIP: "-"}
        lines = ["configuration (arguments > environment > defaults; secrets hidden):"]
        for name, shown in self.config.items():
            lines.append(f"  {name} = {shown['value']!r}  ({shown['source']})")
        lines.append("")
        for c in self.checks:
            lines.append(f"{marks[c.status]} {c.step}: {c.detail}")
            if c.fix and not c.ok:
                lines.append(f"    fix: {c.fix}")
        passed = sum(c.ok for c in self.checks)
        lines.append("")
        verdict = "all checks passed" if self.ok else "some checks did not pass"
        lines.append(f"{passed}/{len(self.checks)} passed: {verdict}")
        return "\n".join(lines)


def shown_config(config: TelemetryConfig) -> dict[str, Any]:
    """Every option not at its default, plus the backend, without secrets."""
    values = config.as_dict(redact=True)
    out: dict[str, Any] = {}
    for option in OPTIONS:
        source = config.sources.get(option.name, "default")
        if source != "default" or option.name == "backend":
            out[option.name] = {"value": values[option.name], "source": source}
    return out


def run(
    config: TelemetryConfig, environ: Mapping[str, str] | None = None, *, timeout: float = 10.0
) -> Report:
    """Run every check for ``config``; never raises for what it finds."""
    env = os.environ if environ is None else environ
    report = Report(shown_config(config))
    consent = opt_in.decide(config, env)
    report.add(
        "consent",
        PASS if consent.enabled else FAIL,
        ("enabled: " if consent.enabled else "disabled: ") + consent.reason,
        "enabled=True in code, or AUTOMAGIK_TELEMETRY_ENABLED=true (and no DO_NOT_TRACK, no "
        f"{opt_in.opt_out_file()})",
    )
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=timeout))
    try:
        if config.backend == "clickhouse":
            ready = _clickhouse(report, config, http)
        elif config.backend == "otlp":
            ready = _otlp(report, config, env, http, consent.enabled)
        else:
            ready = _embedded(report, config)
        _spool(report, config)
        _writer(report, config, ready and consent.enabled, timeout)
    except Exception as exc:  # a check that broke is a failed check, never a traceback
        report.add("doctor", FAIL, f"a check could not run: {type(exc).__name__}: {exc}",
                   "please report this to automagik-telemetry")  # fmt: skip
    finally:
        http.clear()
    return report


# --- ClickHouse -----------------------------------------------------------------------------


def _clickhouse(report: Report, config: TelemetryConfig, http: urllib3.PoolManager) -> bool:
    from .sinks.clickhouse import auth_headers, exception_code, server_message

    endpoint = config.clickhouse_endpoint.rstrip("/")
    parts = urllib.parse.urlsplit(endpoint)
    steps = ("clickhouse ping", "clickhouse credentials", "clickhouse database",
             "clickhouse tables")  # fmt: skip
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme not in ("http", "https") or port in NATIVE_PORTS:
        why = (
            f"port {port} is ClickHouse's native protocol, not its HTTP interface"
            if port in NATIVE_PORTS
            else f"{parts.scheme!r} is not http or https"
        )
        report.add("clickhouse endpoint", FAIL, f"{endpoint}: {why}",
                   "set clickhouse_endpoint to the HTTP interface, e.g. http://localhost:8123 "
                   "(not https, not port 9000)")  # fmt: skip
        _skip_rest(report, steps, "the endpoint is wrong")
        return False
    report.add("clickhouse endpoint", PASS, f"{endpoint} (HTTP interface)")
    try:
        ping = http.request("GET", f"{endpoint}/ping")
    except urllib3.exceptions.HTTPError as exc:
        # A TLS hello sent to a plain HTTP port ends in an SSL error, or, when the server
        # closes first, in a reset connection: ask the same port in plain HTTP to tell which.
        if not (
            isinstance(exc, urllib3.exceptions.SSLError)
            or (parts.scheme == "https" and _speaks_plain_http(parts.netloc))
        ):
            report.add("clickhouse ping", FAIL,
                       f"nothing answers at {parts.hostname}:{port}: {_cause(exc)}",
                       "start ClickHouse (cd infra && make start), or set clickhouse_endpoint "
                       "(AUTOMAGIK_TELEMETRY_CLICKHOUSE_ENDPOINT) to where it runs")  # fmt: skip
            _skip_rest(report, steps[1:], "the server does not answer")
            return False
        plain = f"http://{parts.netloc}"
        report.add("clickhouse ping", FAIL, f"TLS failed at {endpoint}: {_cause(exc)}",
                   f"this server speaks plain HTTP: use {plain} (not https)")  # fmt: skip
        _skip_rest(report, steps[1:], "the server does not answer")
        return False
    text = ping.data.decode("utf-8", "replace").strip()
    if ping.status != 200 or text != "Ok.":
        native = "clickhouse-client" in text
        report.add("clickhouse ping", FAIL,
                   f"{endpoint}/ping answered {ping.status}: {text[:200]!r}",
                   "that is the native port: use the HTTP port, e.g. http://localhost:8123"
                   if native else "point clickhouse_endpoint at ClickHouse's HTTP interface "
                   "(http://host:8123)")  # fmt: skip
        _skip_rest(report, steps[1:], "the server does not answer /ping")
        return False
    report.add("clickhouse ping", PASS, f"{endpoint}/ping answered Ok.")

    headers = auth_headers(config.clickhouse_username, config.clickhouse_password)

    def query(sql: str) -> tuple[bool, str]:
        answer = http.request("POST", f"{endpoint}/", body=sql.encode(), headers=headers)
        if answer.status == 200 and "X-ClickHouse-Exception-Code" not in answer.headers:
            return True, answer.data.decode("utf-8", "replace")
        code = exception_code(answer)
        return False, f"{server_message(answer.data)} (HTTP {answer.status}, code {code})"

    ok, answer = query("SELECT version()")
    if not ok:
        report.add("clickhouse credentials", FAIL,
                   f"user {config.clickhouse_username!r} refused: {answer}",
                   "set clickhouse_username / clickhouse_password (AUTOMAGIK_TELEMETRY_CLICKHOUSE_"
                   "USERNAME / _PASSWORD) to an account of this server (the guide's: telemetry / "
                   "telemetry_password)")  # fmt: skip
        _skip_rest(report, steps[2:], "the credentials do not work")
        return False
    version = answer.strip()
    report.add("clickhouse credentials", PASS,
               f"user {config.clickhouse_username!r} logged in (ClickHouse {version})")  # fmt: skip

    database = config.clickhouse_database
    ok, answer = query(f"SELECT count() FROM system.databases WHERE name = '{database}'")
    if not ok or answer.strip() != "1":
        report.add("clickhouse database", FAIL,
                   f"no database {database!r}" + ("" if ok else f": {answer}"),
                   f"{APPLY} (creates it and the tables), or set clickhouse_database")  # fmt: skip
        _skip_rest(report, steps[3:], "the database is missing")
        return False
    report.add("clickhouse database", PASS, f"database {database!r} exists")

    checked = check_tables(config, query, version)
    for table, missing_table, missing in checked:
        name = f"{database}.{table}"
        if missing_table:
            report.add(f"clickhouse table {name}", FAIL, f"no table {name}",
                       f"{APPLY}{_legacy_flag(version)}")  # fmt: skip
        elif missing:
            report.add(f"clickhouse table {name}", FAIL,
                       f"missing columns the engine writes: {', '.join(missing)}",
                       f"{APPLY}{_legacy_flag(version)} creates missing tables only: add the "
                       f"columns (`automagik-telemetry schema --check` prints the ALTER "
                       f"statements) or recreate {name}")  # fmt: skip
        else:
            report.add(f"clickhouse table {name}", PASS, "has every column the engine writes")
    return all(not t and not m for _, t, m in checked)


def _legacy_flag(version: str) -> str:
    from .sinks.clickhouse import MIN_SCHEMA_VERSION

    return "" if _major(version) >= MIN_SCHEMA_VERSION else " --legacy"


def _major(version: str) -> tuple[int, int]:
    parts = version.strip().split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return 0, 0


def check_tables(
    config: TelemetryConfig, query: Any, version: str
) -> list[tuple[str, bool, list[str]]]:
    """For each of the three tables: (table, missing, [columns the engine writes that it
    lacks]). ``query(sql)`` returns (ok, text). The columns expected are those the engine
    writes that the schema for this server's version has (old servers' tables keep no
    ``attributes``: the engine's inserts skip it there)."""
    from .schema_check import expected_columns

    tables = (config.clickhouse_table, config.clickhouse_metrics_table,
              config.clickhouse_logs_table)  # fmt: skip
    names = ", ".join(f"'{t}'" for t in tables)
    ok, answer = query(
        f"SELECT table, name FROM system.columns WHERE database = "
        f"'{config.clickhouse_database}' AND table IN ({names}) FORMAT TSV"
    )
    if not ok:
        raise RuntimeError(f"cannot read system.columns: {answer}")
    live: dict[str, set[str]] = {}
    for line in answer.splitlines():
        table, _, column = line.partition("\t")
        live.setdefault(table, set()).add(column)
    expected = expected_columns(legacy=_legacy_flag(version) != "")
    out: list[tuple[str, bool, list[str]]] = []
    for kind, table in enumerate(tables):
        if table not in live:
            out.append((table, True, []))
        else:
            out.append((table, False, [c for c in expected[kind] if c not in live[table]]))
    return out


def _skip_rest(report: Report, steps: tuple[str, ...], why: str) -> None:
    for step in steps:
        report.add(step, SKIP, f"not checked: {why}")


def _cause(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)


# --- OTLP -----------------------------------------------------------------------------------


def _otlp(
    report: Report,
    config: TelemetryConfig,
    env: Mapping[str, str],
    http: urllib3.PoolManager,
    consented: bool,
) -> bool:
    from .sinks.otlp.config import resolve_otlp

    destination = resolve_otlp(config, env)
    protobuf = destination.protocol == "http/protobuf"
    body = b"" if protobuf else b"{}"
    content_type = "application/x-protobuf" if protobuf else "application/json"
    ready = True
    for signal, url, chosen, headers in zip(
        ("traces", "metrics", "logs"), destination.endpoints, destination.configured,
        destination.headers, strict=True,
    ):  # fmt: skip
        step = f"otlp {signal} endpoint"
        if not chosen and not consented:
            report.add(step, SKIP, f"{url} is the vendor's: nothing is sent there without "
                       "consent")  # fmt: skip
            ready = False
            continue
        try:
            answer = http.request(
                "POST", url, body=body, headers={**headers, "Content-Type": content_type}
            )
        except urllib3.exceptions.HTTPError as exc:
            report.add(step, FAIL, f"nothing answers at {url}: {_cause(exc)}",
                       "start the collector (cd infra && make start, with Docker), or set "
                       "endpoint / metrics_endpoint / logs_endpoint")  # fmt: skip
            ready = False
            continue
        if 200 <= answer.status < 300:
            report.add(step, PASS, f"{url} took an empty export (HTTP {answer.status})")
        else:
            text = answer.data[:200].decode("utf-8", "replace").strip()
            fix = ("check otlp_headers (credentials)" if answer.status in (401, 403)
                   else "check the URL: OTLP/HTTP receivers take POST /v1/traces, /v1/metrics, "
                   "/v1/logs")  # fmt: skip
            report.add(step, FAIL, f"{url} answered {answer.status}: {text!r}", fix)
            ready = False
    return ready


# --- embedded -------------------------------------------------------------------------------


def _embedded(report: Report, config: TelemetryConfig) -> bool:
    try:
        import chdb  # noqa: F401
    except ImportError:
        report.add("embedded engine", FAIL, "chdb is not installed",
                   "pip install 'automagik-telemetry[embedded]'")  # fmt: skip
        return False
    path = config.resolved_embedded_path()
    parent = path if os.path.isdir(path) else os.path.dirname(path) or "."
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK):
        report.add("embedded engine", FAIL, f"{path} is not writable",
                   "set embedded_path to a writable directory")  # fmt: skip
        return False
    report.add("embedded engine", PASS, f"chdb imports; database at {path}")
    return True


# --- spool ----------------------------------------------------------------------------------


def _spool(report: Report, config: TelemetryConfig) -> None:
    from .spool_admin import destination_directory, inventory

    directory = destination_directory(config)
    if not directory:
        report.add("spool", PASS, "no spool (spool_max_bytes=0): nothing is kept on disk")
        return
    found = inventory(directory)
    w, r, c = found.waiting, found.rejected, found.corrupt
    age = f", oldest {_age(w.oldest_age_s)} old" if w.batches else ""
    detail = (f"{directory}: {w.batches} batches waiting ({w.rows} rows{age}), {r.batches} set "
              f"aside ({r.rows} rows), {c.batches} corrupt")  # fmt: skip
    if r.batches or c.batches:
        fixes = []
        if r.batches:
            fixes.append("fix what the destination refused (the application's log says), then "
                         "`automagik-telemetry spool replay --rejected` (or `spool discard "
                         "--rejected`)")  # fmt: skip
        if c.batches:
            fixes.append("`automagik-telemetry spool discard --corrupt`")
        report.add("spool", FAIL, detail, "; ".join(fixes))
    else:
        tail = " (the next writer replays them, or `automagik-telemetry spool replay`)"
        report.add("spool", PASS, detail + (tail if w.batches else ""))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --- the writer (and, for ClickHouse, a test row through it) --------------------------------


def _writer(report: Report, config: TelemetryConfig, ready: bool, timeout: float) -> None:
    from .client import AutomagikTelemetry
    from .spool_admin import given_options

    row = config.backend == "clickhouse"
    if not ready:
        report.add("writer", SKIP, "not started: fix the steps above first")
        if row:
            report.add("test row", SKIP, "not sent: fix the steps above first")
        return
    spool = tempfile.mkdtemp(prefix="automagik-telemetry-doctor-")
    options = given_options(config)
    options.update(enabled=True, spool_dir=spool, batch_size=1, flush_interval=0.05)
    client = None
    try:
        client = AutomagikTelemetry(config=TelemetryConfig(**options))
        status = client.get_status()
        if not status.get("writer_alive"):
            report.add("writer", FAIL, f"the writer process did not start: "
                       f"{status.get('last_error')}", "run with logging at DEBUG")  # fmt: skip
            return
        report.add("writer", PASS, f"the writer process started (pid {status.get('writer_pid')})")
        if not row:
            return
        marker = secrets.token_hex(8)
        client.track_event(DOCTOR_EVENT, {"doctor_run": marker})
        flushed = client.flush(timeout=timeout)
        status = client.get_status()
        if not flushed:
            report.add("test row", FAIL, f"not delivered within {timeout:.0f} s: "
                       f"{status.get('last_error') or 'no error reported'}",
                       "the error above says what to fix")  # fmt: skip
            return
        report.add("test row", *_count_and_remove(config, client.session_id, timeout))
    except Exception as exc:
        report.add("writer", FAIL, f"{type(exc).__name__}: {exc}", "see the message")
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()
        shutil.rmtree(spool, ignore_errors=True)


def _speaks_plain_http(netloc: str) -> bool:
    """Whether ``netloc`` answers a plain HTTP ``/ping`` (an https endpoint that is not)."""
    try:
        with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=5.0)) as plain:
            return plain.request("GET", f"http://{netloc}/ping").status < 500
    except urllib3.exceptions.HTTPError:
        return False


def _count_and_remove(config: TelemetryConfig, session: str, timeout: float) -> tuple[str, ...]:
    from .sinks.clickhouse import auth_headers, server_message

    endpoint = config.clickhouse_endpoint.rstrip("/")
    table = f"{config.clickhouse_database}.{config.clickhouse_table}"
    where = f"span_name = '{DOCTOR_EVENT}' AND session_id = '{session}'"
    headers = auth_headers(config.clickhouse_username, config.clickhouse_password)
    with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=timeout)) as http:
        count_sql = f"SELECT count() FROM {table} WHERE {where}"
        answer = http.request("POST", f"{endpoint}/", headers=headers, body=count_sql.encode())
        counted = answer.data.decode().strip() if answer.status == 200 else "?"
        if counted != "1":
            return (FAIL, f"flushed, but {table} holds {counted} test rows, not 1",
                    "another process may rewrite the table; see the server's log")  # fmt: skip
        delete_sql = f"ALTER TABLE {table} DELETE WHERE {where}"
        removed = http.request("POST", f"{endpoint}/", headers=headers, body=delete_sql.encode())
    if removed.status == 200:
        return (PASS, f"tracked, flushed and counted back in {table}, then removed")
    return (PASS, f"tracked, flushed and counted back in {table}; left in place (marked "
            f"span_name={DOCTOR_EVENT!r}, session_id={session!r}): the delete was refused: "
            f"{server_message(removed.data)}")  # fmt: skip
