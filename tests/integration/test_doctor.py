"""``automagik-telemetry doctor`` against a real ClickHouse (Debian's 18.16), one failure at a
time: nothing listening, a wrong password, an unknown database, a missing table, missing
columns; and a healthy server, where the test row goes through a real writer and is removed."""

from __future__ import annotations

import json
import socket
import time

import pytest

from automagik_telemetry import cli
from automagik_telemetry.config import TelemetryConfig
from automagik_telemetry.doctor import DOCTOR_EVENT, FAIL, PASS, SKIP, Report, run
from automagik_telemetry.local_clickhouse import LocalClickHouse
from tests.support import ClickHouseDatabase


def _config(db: ClickHouseDatabase, **extra: object) -> TelemetryConfig:
    return TelemetryConfig(**db.client_options(**extra))  # type: ignore[arg-type]


def _status(report: Report) -> dict[str, str]:
    return {c.step: c.status for c in report.checks}


def _check(report: Report, step: str) -> tuple[str, str, str]:
    found = [c for c in report.checks if c.step == step]
    assert found, [c.step for c in report.checks]
    return found[0].status, found[0].detail, found[0].fix


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_healthy_server_passes_every_step_and_leaves_no_test_row(ch_db: ClickHouseDatabase) -> None:
    report = run(_config(ch_db))
    assert report.ok, report.text()
    steps = _status(report)
    assert set(steps.values()) == {PASS}
    for step in ("consent", "clickhouse ping", "clickhouse credentials", "clickhouse database",
                 f"clickhouse table {ch_db.name}.traces", f"clickhouse table {ch_db.name}.logs",
                 "spool", "writer", "test row"):  # fmt: skip
        assert step in steps
    assert "then removed" in _check(report, "test row")[1]
    # the delete is a mutation: once done, the test row is gone
    # (18.16 applies mutations in the background: the row goes within seconds, not at once)
    deadline = time.monotonic() + 30
    while ch_db.count(where=f"span_name = '{DOCTOR_EVENT}'") and time.monotonic() < deadline:
        ch_db.query(f"OPTIMIZE TABLE {ch_db.name}.traces FINAL")
        time.sleep(0.2)
    assert ch_db.count(where=f"span_name = '{DOCTOR_EVENT}'") == 0
    assert "***" in report.text() and ch_db.server.password not in report.text()


def test_nothing_listening(ch_db: ClickHouseDatabase) -> None:
    port = _free_port()
    report = run(_config(ch_db, clickhouse_endpoint=f"http://127.0.0.1:{port}"))
    status, detail, fix = _check(report, "clickhouse ping")
    assert status == FAIL and f"127.0.0.1:{port}" in detail
    assert "make start" in fix
    assert _status(report)["clickhouse credentials"] == SKIP
    assert _status(report)["test row"] == SKIP
    assert not report.ok


def test_native_port_and_https_are_named(ch_db: ClickHouseDatabase) -> None:
    native = run(_config(ch_db, clickhouse_endpoint="http://127.0.0.1:9000"))
    status, detail, fix = _check(native, "clickhouse endpoint")
    assert status == FAIL and "native protocol" in detail and "not port 9000" in fix
    tls = run(_config(ch_db, clickhouse_endpoint=ch_db.server.url.replace("http:", "https:")))
    status, _, fix = _check(tls, "clickhouse ping")
    assert status == FAIL and fix.startswith("this server speaks plain HTTP: use http://")


def test_wrong_password_shows_the_servers_message(ch_db: ClickHouseDatabase) -> None:
    report = run(_config(ch_db, clickhouse_password="not-the-password"))
    status, detail, fix = _check(report, "clickhouse credentials")
    assert status == FAIL
    assert "telemetry" in detail and "password" in detail.lower()  # the server's own words
    assert "clickhouse_password" in fix
    assert "not-the-password" not in report.text()
    assert _status(report)["clickhouse database"] == SKIP


def test_unknown_database(ch_db: ClickHouseDatabase) -> None:
    report = run(_config(ch_db, clickhouse_database="no_such_db"))
    status, detail, fix = _check(report, "clickhouse database")
    assert status == FAIL and "no_such_db" in detail and "schema --apply" in fix
    assert _status(report)["clickhouse tables"] == SKIP


def test_missing_table(ch_db: ClickHouseDatabase) -> None:
    ch_db.query(f"DROP TABLE {ch_db.name}.logs")
    report = run(_config(ch_db))
    status, detail, fix = _check(report, f"clickhouse table {ch_db.name}.logs")
    assert status == FAIL and f"no table {ch_db.name}.logs" in detail
    assert fix == "automagik-telemetry schema --apply --legacy"  # 18.16: the legacy schema
    assert _status(report)[f"clickhouse table {ch_db.name}.traces"] == PASS
    assert _status(report)["writer"] == SKIP


def test_missing_columns_are_named(ch_db: ClickHouseDatabase) -> None:
    ch_db.query(f"ALTER TABLE {ch_db.name}.metrics DROP COLUMN histogram_sum")
    ch_db.query(f"ALTER TABLE {ch_db.name}.metrics DROP COLUMN hostname")
    report = run(_config(ch_db))
    status, detail, _ = _check(report, f"clickhouse table {ch_db.name}.metrics")
    assert status == FAIL
    assert detail == "missing columns the engine writes: hostname, histogram_sum"


def test_cli_exit_status_and_json(
    ch_db: ClickHouseDatabase, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server: LocalClickHouse = ch_db.server
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_CLICKHOUSE_PASSWORD", server.password)
    args = ["doctor", "--backend", "clickhouse", "--clickhouse-endpoint", server.url,
            "--clickhouse-username", server.username,
            "--clickhouse-database", ch_db.name]  # fmt: skip
    assert cli.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert out["config"]["clickhouse_password"] == {
        "value": "***", "source": "AUTOMAGIK_TELEMETRY_CLICKHOUSE_PASSWORD",
    }  # fmt: skip
    assert out["config"]["clickhouse_endpoint"]["source"] == "argument"
    assert cli.main([*args, "--clickhouse-database", "absent"]) == 1
    text = capsys.readouterr().out
    assert "✘ clickhouse database: no database 'absent'" in text
    assert "fix: automagik-telemetry schema --apply" in text


def test_spool_step_counts_set_aside_and_corrupt(ch_db: ClickHouseDatabase) -> None:
    from automagik_telemetry.spool import Spool
    from automagik_telemetry.spool_admin import destination_directory

    config = _config(ch_db)
    directory = destination_directory(config)
    Spool(directory, 1 << 20, "drop_newest").put(0, 3, "t1", "", b'{"a":1}\n' * 3)
    Spool(f"{directory}/rejected", 1 << 20, "drop_newest").put(0, 2, "t2", "", b"{}\n{}\n")
    report = run(config)
    status, detail, fix = _check(report, "spool")
    assert status == FAIL
    assert "1 batches waiting (3 rows" in detail and "1 set aside (2 rows)" in detail
    assert "spool replay --rejected" in fix


def _schema_env(db: ClickHouseDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    server = db.server
    for name, value in (("CLICKHOUSE_ENDPOINT", server.url), ("CLICKHOUSE_USERNAME",
                        server.username), ("CLICKHOUSE_PASSWORD", server.password),
                        ("CLICKHOUSE_DATABASE", db.name)):  # fmt: skip
        monkeypatch.setenv(f"AUTOMAGIK_TELEMETRY_{name}", value)


def test_schema_apply_refuses_a_server_too_old_and_points_at_legacy(
    ch_db: ClickHouseDatabase, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _schema_env(ch_db, monkeypatch)
    ch_db.query(f"DROP TABLE {ch_db.name}.logs")
    assert cli.main(["schema", "--apply"]) == 1
    err = capsys.readouterr().err
    assert "ClickHouse 18.16" in err and "needs 22.8 or newer" in err and "--legacy" in err
    assert ch_db.query(f"EXISTS TABLE {ch_db.name}.logs") == "0"  # nothing was applied
    assert cli.main(["schema", "--apply", "--legacy"]) == 0
    assert ch_db.query(f"EXISTS TABLE {ch_db.name}.logs") == "1"


def test_schema_check_names_missing_columns_with_the_statements_that_add_them(
    ch_db: ClickHouseDatabase, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _schema_env(ch_db, monkeypatch)
    assert cli.main(["schema", "--check"]) == 0
    assert capsys.readouterr().out.count("✔") == 3
    ch_db.query(f"ALTER TABLE {ch_db.name}.logs DROP COLUMN exception_type")
    assert cli.main(["schema", "--check"]) == 1
    out = capsys.readouterr().out
    assert f"✘ {ch_db.name}.logs: lacks exception_type; fix:" in out
    statement = out.split("fix:\n", 1)[1].strip().rstrip(";")
    assert statement.startswith(f"ALTER TABLE {ch_db.name}.logs ADD COLUMN exception_type")
    ch_db.query(statement)  # the printed fix works
    assert cli.main(["schema", "--check"]) == 0


def test_schema_apply_says_when_nothing_listens(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_CLICKHOUSE_ENDPOINT", f"http://127.0.0.1:{port}")
    assert cli.main(["schema", "--apply"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach ClickHouse at http://127.0.0.1:{port}" in err and "make start" in err


def test_a_test_row_that_cannot_be_deleted_is_left_marked(ch_db: ClickHouseDatabase) -> None:
    from automagik_telemetry.sinks.clickhouse import schema_statements

    traces = next(s for s in schema_statements(ch_db.name, legacy=True) if ".traces" in s)
    ch_db.query(f"DROP TABLE {ch_db.name}.traces")
    ch_db.query(traces[: traces.index("ENGINE")] + "ENGINE = Log")  # no mutations: no DELETE
    report = run(_config(ch_db))
    status, detail, _ = _check(report, "test row")
    assert status == PASS, report.text()
    assert "left in place (marked span_name='automagik_telemetry.doctor'" in detail
    assert ch_db.count(where=f"span_name = '{DOCTOR_EVENT}'") == 1
