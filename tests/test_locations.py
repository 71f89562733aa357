"""Where a file is now, from the moves the event log records (no JVM): a row's `_source_file`
(Spark's `file:` URI) finds its file's move; a name sent twice is told apart by when the row
was ingested."""

from __future__ import annotations

from datetime import UTC, datetime

from orderlake.engine.run.eventlog import EventLog
from orderlake.views.locations import canonical, file_moves, move_of, where_now


def _ingest_event(log: EventLog, update: int, records: list[dict]) -> None:
    log.emit("flow_progress", "x", update_id=update, flow_name="orders_bronze",
             details={"metrics": {"num_output_rows": 1}, "files": records})


def test_a_row_finds_where_its_file_went(tmp_path):
    source, archive = tmp_path / "vol ume" / "source", tmp_path / "vol ume" / "archive"
    archive.mkdir(parents=True)
    first, second = archive / "a.csv", archive / "a.u2.csv"
    first.write_text("x")
    log = EventLog(tmp_path / "event_log.jsonl", "p")
    _ingest_event(log, 1, [{"file": "a.csv", "outcome": "loaded", "source": str(source / "a.csv"),
                            "moved_to": str(first), "update_id": 1}])
    between = datetime.now(UTC).replace(tzinfo=None)  # rows carry naive UTC `_ingested_at`
    _ingest_event(log, 2, [
        {"file": "a.csv", "outcome": "loaded", "source": str(source / "a.csv"),
         "moved_to": str(second), "update_id": 2},
        {"file": "b.csv", "outcome": "rejected", "source": str(source / "b.csv"),
         "moved_to": str(tmp_path / "rejected" / "b.csv"), "update_id": 2},
    ])
    moves = file_moves(log.events())
    uri = "file:" + str(source / "a.csv").replace(" ", "%20")
    assert canonical(uri) == str(source / "a.csv")
    # the same name, loaded by update 1 and again by update 2
    assert move_of(moves, uri, datetime(2000, 1, 1)).moved_to == str(first)
    assert move_of(moves, uri, between).moved_to == str(second)
    assert where_now(move_of(moves, uri, datetime(2000, 1, 1))) == str(first)
    assert where_now(move_of(moves, uri, between)) is None  # a.u2.csv is not there (any more)
    assert move_of(moves, str(source / "b.csv")) is None  # rows never come from a rejected file
    assert move_of(moves, "file:/elsewhere/c.csv") is None
