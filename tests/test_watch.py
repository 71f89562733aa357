"""The local file-arrival trigger."""

from __future__ import annotations

import threading
import time

from orderlake.engine.autoloader.files import SourceFile
from orderlake.engine.watch import ArrivalTrigger, TriggerTimings, watch
from tests.conftest import order_row


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_trigger_waits_for_files_to_settle_and_spaces_updates():
    clock = FakeClock()
    trigger = ArrivalTrigger(TriggerTimings(2.0, 10.0), clock)
    a = [SourceFile("a.csv", 1, 1)]
    ab = a + [SourceFile("b.csv", 1, 2)]
    assert not trigger.observe([])
    assert not trigger.observe(a)  # just arrived
    clock.now = 1.5
    assert not trigger.observe(ab)  # still changing: the wait restarts
    clock.now = 3.0
    assert not trigger.observe(ab)
    clock.now = 3.6
    assert trigger.observe(ab)  # settled for 2 s
    clock.now = 8.0
    assert not trigger.observe([SourceFile("c.csv", 1, 3)])
    clock.now = 11.0
    assert not trigger.observe([SourceFile("c.csv", 1, 3)])  # settled, but < 10 s since last
    clock.now = 13.7
    assert trigger.observe([SourceFile("c.csv", 1, 3)])


def test_watch_picks_up_a_file_dropped_while_it_runs(tmp_path, spark, drop_file, make_pipeline):
    pipeline = make_pipeline()
    source = tmp_path / "volume" / "source"
    source.mkdir(parents=True, exist_ok=True)
    results = []

    def drop_later() -> None:
        time.sleep(1.0)
        drop_file("late.csv", [order_row("TRK00000077", "2026-03-01T10:00:00Z")])

    dropper = threading.Thread(target=drop_later)
    dropper.start()
    ran = watch(
        source,
        lambda: results.append(pipeline.update()),
        TriggerTimings(0.5, 0.0, poll_seconds=0.2),
        max_updates=1,
        idle_exit_seconds=120,
        log=lambda message: None,
    )
    dropper.join()
    assert ran == 1 and results[0].bronze_rows == 1
    assert (tmp_path / "volume" / "archive" / "late.csv").exists()
    target = spark.read.format("delta").load(
        str(tmp_path / "warehouse" / "tables" / "orders_target")
    )
    assert [r.tracking_num for r in target.collect()] == ["TRK00000077"]
