"""The local file-arrival trigger."""

from __future__ import annotations

import threading
import time

import pytest

from orderlake.engine.autoloader.files import SourceFile
from orderlake.engine.watch import ArrivalTrigger, TriggerTimings, watch
from tests.conftest import order_row


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


WALL = 1_800_000_000.0  # the wall clock when the fake monotonic clock reads 0


def wall_ns(at: float) -> int:
    """The mtime of a file last written at `at` on the fake monotonic clock."""
    return int((WALL + at) * 1e9)


def trigger_with(wait: float, spacing: float = 0.0) -> tuple[ArrivalTrigger, FakeClock]:
    clock = FakeClock()
    return ArrivalTrigger(TriggerTimings(wait, spacing), clock, lambda: WALL + clock.now), clock


def test_trigger_waits_for_files_to_settle_and_spaces_updates():
    trigger, clock = trigger_with(2.0, 10.0)
    a = [SourceFile("a.csv", 1, wall_ns(0.0))]
    ab = a + [SourceFile("b.csv", 1, wall_ns(1.5))]
    assert not trigger.observe([])
    assert not trigger.observe(a)  # just arrived
    clock.now = 1.5
    assert not trigger.observe(ab)  # still changing: the wait restarts
    clock.now = 3.0
    assert not trigger.observe(ab)
    clock.now = 3.6
    assert trigger.observe(ab)  # settled for 2 s
    c = [SourceFile("c.csv", 1, wall_ns(8.0))]
    clock.now = 8.0
    assert not trigger.observe(c)
    clock.now = 11.0
    assert not trigger.observe(c)  # settled, but < 10 s since last
    clock.now = 13.7
    assert trigger.observe(c)


def test_the_wait_counts_from_the_files_last_write_not_from_the_poll_that_saw_it():
    trigger, clock = trigger_with(2.0)
    assert not trigger.observe([])
    clock.now = 1.9  # written at 1.0, seen by the next poll
    late = [SourceFile("a.csv", 10, wall_ns(1.0))]
    assert not trigger.observe(late)
    assert trigger.due_in() == pytest.approx(1.1)  # 1.0 + 2.0 - 1.9
    clock.now = 2.95
    assert not trigger.observe(late)
    clock.now = 3.0
    assert trigger.observe(late)  # two seconds after the write, 1.1 s after the poll


def test_an_old_or_future_mtime_is_bounded_by_the_polls():
    trigger, clock = trigger_with(2.0)
    clock.now = 5.0
    assert not trigger.observe([])
    clock.now = 5.3  # renamed in with a day-old mtime: not settled before the previous poll
    moved = [SourceFile("old.csv", 10, wall_ns(-86_400.0))]
    assert not trigger.observe(moved)
    clock.now = 6.99
    assert not trigger.observe(moved)
    clock.now = 7.0
    assert trigger.observe(moved)
    clock.now = 20.0  # a clock ahead of ours (a network mount): counted from now
    skewed = moved + [SourceFile("ahead.csv", 10, wall_ns(600.0))]
    assert not trigger.observe(skewed)
    clock.now = 21.9
    assert not trigger.observe(skewed)
    clock.now = 22.0
    assert trigger.observe(skewed)


def test_files_present_at_start_wait_from_the_first_listing():
    trigger, clock = trigger_with(2.0)
    clock.now = 50.0
    assert not trigger.observe([SourceFile("a.csv", 1, wall_ns(0.0))])  # age unknown
    clock.now = 51.9
    assert not trigger.observe([SourceFile("a.csv", 1, wall_ns(0.0))])
    clock.now = 52.0
    assert trigger.observe([SourceFile("a.csv", 1, wall_ns(0.0))])


def test_a_removed_file_does_not_restart_the_wait_but_a_grown_one_does():
    trigger, clock = trigger_with(2.0)
    assert not trigger.observe([])
    a, b = SourceFile("a.csv", 1, wall_ns(0.5)), SourceFile("b.csv", 1, wall_ns(1.0))
    clock.now = 1.0
    assert not trigger.observe([a, b])
    clock.now = 2.5  # a moved away (archived, deleted): nothing new to settle
    assert not trigger.observe([b])
    clock.now = 3.0
    assert trigger.observe([b])
    grown = SourceFile("b.csv", 2, wall_ns(3.5))
    clock.now = 3.6
    assert not trigger.observe([grown])
    clock.now = 5.4
    assert not trigger.observe([grown])
    clock.now = 5.501  # (mtimes in ns against a float clock)
    assert trigger.observe([grown])


def test_a_file_still_being_written_never_triggers(tmp_path):
    """A real writer appends with pauses shorter than the wait, polled at random moments: the
    trigger must not fire before the file is closed, and then must fire within a wait."""
    import random

    from orderlake.engine.autoloader.files import list_source

    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rnd = random.Random(seed)
    wait = 0.4
    trigger = ArrivalTrigger(TriggerTimings(wait, 0.0))
    finished = threading.Event()
    closed_at: list[float] = []

    def writer() -> None:
        with open(tmp_path / "slow.csv", "w") as out:
            for _ in range(rnd.randint(5, 12)):
                out.write("x" * rnd.randint(1, 5000))
                out.flush()
                time.sleep(rnd.uniform(0.0, wait * 0.6))
        closed_at.append(time.monotonic())
        finished.set()

    assert not trigger.observe(list_source(tmp_path))
    thread = threading.Thread(target=writer)
    thread.start()
    fired_at = None
    while fired_at is None:
        listing = list_source(tmp_path)
        if trigger.observe(listing):
            fired_at = time.monotonic()
            assert finished.is_set(), f"fired while the file was being written (seed {seed})"
        time.sleep(rnd.uniform(0.0, wait))
    thread.join()
    assert fired_at - closed_at[0] < 2 * wait, f"seed {seed}"


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
