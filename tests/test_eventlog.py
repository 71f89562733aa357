"""The local event log: the newest update is found from the end of the file."""

from __future__ import annotations

from orderlake.engine.run.eventlog import EventLog


def test_last_update_id_reads_back_across_blocks_and_skips_a_cut_line(tmp_path):
    log = EventLog(tmp_path / "event_log.jsonl", "p")
    assert log.last_update_id() is None
    for update in range(1, 40):
        log.emit("update_progress", "Update started", update_id=update)
        log.emit("flow_progress", "x" * 5000, update_id=update, flow_name="f")
    for _ in range(30):  # newer events of another type, longer than one read block
        log.emit("flow_progress", "y" * 5000, update_id=39, flow_name="f")
    with open(log.path, "a", encoding="utf-8") as handle:
        handle.write('{"event_type": "update_progr')  # a crash cut the last line
    assert log.last_update_id() == "39"
    assert log._lines_from_end(block=7).__next__().startswith('{"event_type": "update_progr')
    assert [e["origin"]["update_id"] for e in log.events() if e["event_type"] == "update_progress"][
        -1
    ] == "39"
