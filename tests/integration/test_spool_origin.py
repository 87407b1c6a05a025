"""A batch keeps its origin on disk: rows spooled by one application and replayed by another
(a restarted service of a new version, another application sharing the spool directory, or
``automagik-telemetry spool replay``) land with the service, version, host and session of the
process that tracked them. Debian's 18.16 (completed rows) and chdb (constants)."""

from __future__ import annotations

import json
from pathlib import Path

from automagik_telemetry import AutomagikTelemetry, LogSeverity, cli
from automagik_telemetry.config import TelemetryConfig
from automagik_telemetry.spool_admin import destination_directory, inventory
from tests.support import ClickHouseDatabase

EVENTS, LOGS = 3_000, 500


def _track(client: AutomagikTelemetry, tag: str) -> None:
    for i in range(EVENTS):
        client.track_event(f"{tag}.event", {"i": i})
    for i in range(LOGS):
        client.track_log(f"{tag} log {i}", LogSeverity.INFO)


def _origins(db: ClickHouseDatabase, table: str) -> list[list[str]]:
    text = db.query(
        f"SELECT project_name, project_version, session_id, count() FROM {db.name}.{table} "
        "GROUP BY project_name, project_version, session_id ORDER BY project_name "
        "FORMAT JSONCompact"
    )
    return [[str(v) for v in row] for row in json.loads(text)["data"]]


def test_rows_spooled_by_one_application_land_with_its_columns_when_another_replays_them(
    ch_db: ClickHouseDatabase, tmp_path: Path
) -> None:
    spool = str(tmp_path / "spool")
    refused = AutomagikTelemetry(  # a wrong password: every batch is kept on disk
        **ch_db.client_options(project_name="app-a", version="1.0", spool_dir=spool,
                               clickhouse_password="wrong", max_retries=0)  # type: ignore[arg-type]
    )  # fmt: skip
    session_a = refused.session_id
    _track(refused, "a")
    assert not refused.flush(timeout=5)
    refused.shutdown()
    directory = destination_directory(refused.config)
    spooled = inventory(directory).waiting
    assert spooled.rows == EVENTS + LOGS and spooled.without_origin == 0
    assert ch_db.count() == 0

    replayer = AutomagikTelemetry(
        **ch_db.client_options(project_name="app-b", version="2.0", spool_dir=spool)  # type: ignore[arg-type]
    )
    _track(replayer, "b")
    assert replayer.flush(timeout=60)
    session_b = replayer.session_id
    replayer.shutdown()
    assert session_a != session_b
    assert _origins(ch_db, "traces") == [
        ["app-a", "1.0", session_a, str(EVENTS)], ["app-b", "2.0", session_b, str(EVENTS)]
    ]  # fmt: skip
    assert _origins(ch_db, "logs") == [
        ["app-a", "1.0", session_a, str(LOGS)], ["app-b", "2.0", session_b, str(LOGS)]
    ]  # fmt: skip
    assert inventory(directory).waiting.batches == 0


def test_spool_replay_needs_no_names_for_files_that_keep_their_origin(tmp_path: Path) -> None:
    from chdb import session as chdb_session

    spool, path = str(tmp_path / "spool"), str(tmp_path / "db")
    Path(path).write_text("not a directory: the engine cannot open it")
    options = {"backend": "embedded", "embedded_path": path, "spool_dir": spool}
    tracked = AutomagikTelemetry(project_name="app-a", version="1.0", **options)  # type: ignore[arg-type]
    session_a = tracked.session_id
    for i in range(EVENTS):
        tracked.track_event("a.event", {"i": i})
    assert not tracked.flush(timeout=3)
    tracked.shutdown()  # the rows go to the spool, with their origin
    directory = destination_directory(TelemetryConfig(project_name="x", **options))  # type: ignore[arg-type]
    waiting = inventory(directory).waiting
    assert waiting.rows == EVENTS and waiting.without_origin == 0
    Path(path).unlink()  # the cause fixed; replayed by hand, no names given
    command = ["spool", "replay", "--backend", "embedded", "--embedded-path", path,
               "--spool-dir", spool]  # fmt: skip
    assert cli.main(command) == 0
    session = chdb_session.Session(path)
    try:
        text = session.query(
            "SELECT project_name, project_version, session_id, toString(count()) "
            "FROM telemetry.traces GROUP BY 1, 2, 3",
            "JSONCompact",
        ).bytes()
    finally:
        session.close()
    assert json.loads(text)["data"] == [["app-a", "1.0", session_a, str(EVENTS)]]
