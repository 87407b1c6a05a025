"""``automagik-telemetry spool list | replay | discard`` on a destination's spool, against a
real ClickHouse (Debian's 18.16) and the embedded engine, with exact counts.

Spool files are written as the writer writes them (``Spool.put`` of the ring's rows, LZ4-framed,
each with its deduplication token), in the directory the configuration names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lz4.frame
import pytest

from automagik_telemetry import cli
from automagik_telemetry.config import TelemetryConfig
from automagik_telemetry.rows.clickhouse import ClickHouseRows
from automagik_telemetry.spool import Spool
from automagik_telemetry.spool_admin import destination_directory, inventory, replay
from tests.support import ClickHouseDatabase


def _rows(names: list[str]) -> bytes:
    rows = ClickHouseRows()
    return b"".join(bytes(rows.span(time.time_ns(), n, {"i": 1}, None)) for n in names)


def _put(directory: str, names: list[str], token: str, body: bytes | None = None) -> None:
    raw = _rows(names) if body is None else body
    Spool(directory, 1 << 30, "drop_newest").put(
        0, len(names), token, "lz4-rows", bytes(lz4.frame.compress(raw))
    )


def _args(db: ClickHouseDatabase, spool: Path) -> list[str]:
    server = db.server
    return ["--backend", "clickhouse", "--clickhouse-endpoint", server.url,
            "--clickhouse-username", server.username, f"--clickhouse-password={server.password}",
            "--clickhouse-database", db.name, "--spool-dir", str(spool),
            "--project-name", "the-app", "--project-version", "1.0.0"]  # fmt: skip


def _config(db: ClickHouseDatabase, spool: Path) -> TelemetryConfig:
    return TelemetryConfig(**db.client_options(spool_dir=str(spool), project_name="the-app"))  # type: ignore[arg-type]


def test_list_replay_and_discard_with_exact_counts(
    ch_db: ClickHouseDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(ch_db, tmp_path / "spool")
    directory = destination_directory(config)
    _put(directory, [f"w{i}" for i in range(7)], "tok-a")
    _put(directory, [f"x{i}" for i in range(5)], "tok-b")
    rejected = os.path.join(directory, "rejected")
    _put(rejected, ["r0", "r1", "r2"], "tok-c")
    corrupt = Path(directory, "corrupt")
    corrupt.mkdir()
    (corrupt / "00000000000000000001-1-0.batch").write_bytes(b"not a batch")

    assert cli.main(["spool", "list", "--json", *_args(ch_db, tmp_path / "spool")]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["directory"] == directory
    assert listed["waiting"]["batches"] == 2 and listed["waiting"]["rows"] == 12
    assert listed["rejected"]["batches"] == 1 and listed["rejected"]["rows"] == 3
    assert listed["corrupt"]["batches"] == 1
    assert listed["waiting"]["oldest_age_s"] is not None
    assert cli.main(["spool", "list", *_args(ch_db, tmp_path / "spool")]) == 0
    text = capsys.readouterr().out
    assert "waiting                2 batches, 12 rows" in text
    assert "set aside (rejected/)  1 batches, 3 rows" in text

    anonymous = [a for a in _args(ch_db, tmp_path / "spool") if a not in ("the-app", "1.0.0")]
    anonymous = [a for a in anonymous if not a.startswith("--project-")]
    assert cli.main(["spool", "replay", *anonymous]) == 2
    assert "--project-name APP --project-version VERSION" in capsys.readouterr().err
    assert ch_db.count() == 0
    assert cli.main(["spool", "replay", *_args(ch_db, tmp_path / "spool")]) == 0
    assert "replayed 2 batches (12 rows)" in capsys.readouterr().out
    assert ch_db.count() == 12
    assert ch_db.count(where="project_name = 'the-app' AND span_name LIKE 'w%'") == 7
    assert ch_db.count(where="project_version = '1.0.0'") == 12
    assert inventory(directory).waiting.batches == 0
    assert inventory(directory).rejected.batches == 1  # not replayed without --rejected

    assert cli.main(["spool", "replay", "--rejected", *_args(ch_db, tmp_path / "spool")]) == 0
    assert ch_db.count() == 15 and ch_db.count(where="span_name = 'r2'") == 1
    assert inventory(directory).rejected.batches == 0

    assert cli.main(["spool", "discard", "--corrupt", *_args(ch_db, tmp_path / "spool")]) == 0
    assert "discarded 1 corrupt batches" in capsys.readouterr().out
    assert inventory(directory).corrupt.batches == 0


def test_a_batch_refused_again_stays_set_aside_and_a_bad_waiting_one_is_set_aside(
    ch_db: ClickHouseDatabase, tmp_path: Path
) -> None:
    config = _config(ch_db, tmp_path / "spool")
    directory = destination_directory(config)
    bad = b'{"timestamp_ns":"not a number","span_name":"bad"}\n'
    _put(os.path.join(directory, "rejected"), ["bad"], "tok-bad", bad)
    again = replay(config, rejected=True)
    assert again.batches == 0 and again.set_aside_batches == 1
    assert "not a number" in again.messages[0] or "Cannot parse" in again.messages[0]
    assert inventory(directory).rejected.batches == 1

    _put(directory, ["bad"], "tok-bad-2", bad)
    _put(directory, ["good"], "tok-good")
    waiting = replay(config)
    assert waiting.batches == 1 and waiting.rows == 1 and waiting.set_aside_batches == 1
    assert inventory(directory).rejected.batches == 2 and inventory(directory).waiting.batches == 0
    assert ch_db.count(where="span_name = 'good'") == 1

    removed = cli.main(["spool", "discard", "--rejected", *_args(ch_db, tmp_path / "spool")])
    assert removed == 0 and inventory(directory).rejected.batches == 0


def test_replay_stops_with_the_servers_message_and_keeps_the_batches(
    ch_db: ClickHouseDatabase, tmp_path: Path
) -> None:
    options = ch_db.client_options(spool_dir=str(tmp_path / "spool"), clickhouse_password="bad")
    config = TelemetryConfig(**options)  # type: ignore[arg-type]
    directory = destination_directory(config)
    _put(directory, ["a", "b"], "tok-1")
    result = replay(config)
    assert (
        result.batches == 0 and result.error is not None and "clickhouse_password" in result.error
    )
    assert inventory(directory).waiting.batches == 1 and inventory(directory).waiting.claimed == 0


def test_replay_keeps_each_batchs_token_so_a_batch_that_had_landed_is_stored_once(
    tmp_path: Path,
) -> None:
    pytest.importorskip("chdb")
    from chdb import session as chdb_session

    config = TelemetryConfig(
        project_name="the-app", version="1", backend="embedded",
        embedded_path=str(tmp_path / "db"), spool_dir=str(tmp_path / "spool"),
    )  # fmt: skip
    directory = destination_directory(config)
    command = [sys.executable, "-m", "automagik_telemetry.cli", "spool", "replay", "--backend",
               "embedded", "--embedded-path", str(tmp_path / "db"), "--spool-dir",
               str(tmp_path / "spool"), "--project-name", "the-app",
               "--project-version", "1"]  # fmt: skip
    # The same batch spooled again after it had landed, its rows made anew (another time
    # stamp: other bytes), so that only its token, not the server's hash of the data, can
    # make the server store it once.
    for _ in range(2):
        _put(directory, ["d0", "d1", "d2"], "same-token")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "replayed 1 batches (3 rows)" in done.stdout
    session = chdb_session.Session(str(tmp_path / "db"))
    try:
        count = session.query("SELECT count() FROM telemetry.traces", "CSV").bytes().strip()
    finally:
        session.close()
    assert count == b"3"
    shutil.rmtree(tmp_path / "db", ignore_errors=True)
