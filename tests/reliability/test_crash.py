"""Crash safety: SIGKILL the CLI (its Spark JVM included) at many points, restart, check.

Each case: a warehouse that already holds an earlier update, a second set of files (new keys,
updates, out-of-order updates, duplicates, invalid rows, one file to reject), then
`orderlake run` (or `watch`) in a child process killed at one point, then a restart, then every
invariant of `harness.check_all`. The default run kills twice (during the target MERGE, and in
`watch` halfway through archiving a set); `--long` runs the whole matrix.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .harness import (
    TableWatch,
    Volume,
    check_all,
    finish_cli,
    output_of,
    start_cli,
    volume_args,
)

LATIN1 = "tracking_num,order_id,last_updated,origin\nTRK00000009,O-9,2026-01-01,Málaga\n"


def prepare(volume: Volume, pipeline_for: Callable, *, files: int = 4) -> None:
    """An earlier update already loaded; then the files the killed update will take."""
    first = volume.drop_generated(
        rows=120, files=2, seed=11, invalid_ratio=0.05, name_prefix="first"
    )
    pipeline_for(volume).update()
    volume.drop_generated(
        rows=400,
        files=files,
        seed=12,
        start=first.end,
        existing_keys=first.new_keys,
        update_ratio=0.4,
        out_of_order_ratio=0.2,
        invalid_ratio=0.05,
        duplicate_ratio=0.03,
        name_prefix="second",
    )
    volume.drop("clientx_latin1.csv", LATIN1.encode("latin-1"))  # rejected: not UTF-8


@dataclass(frozen=True)
class Kill:
    """Where to kill: a named kill point (`at`), or a marker seen from outside (`when`)."""

    name: str
    at: str | None = None  # ORDERLAKE_KILL_AT value
    # bronze_writing | target_merging | quarantine_writing | delay:<s> | compacting:<s>
    when: str | None = None
    command: str = "run"
    compact_at: int | None = None  # ORDERLAKE_COMPACT_MIN_FILES for the killed child


COMPACT = 2  # every table with two files or more is compacted after the update
NAMED_POINTS = [
    "after_plan",
    "after_inspect:2",
    "reject_move",
    "before_bronze_write",
    "after_bronze_commit",
    "after_commit_mark",
    "archive_move:1",
    "archive_move:2",
    "after_archive",
    "before_write:orders_quarantine",
    "after_write:orders_quarantine",
    "before_write:orders_target",
    "after_write:orders_target",
]
MATRIX = (
    [Kill(p, at=p) for p in NAMED_POINTS]
    + [
        Kill("reading files + bronze write in progress", when="bronze_writing"),
        Kill("quarantine append in progress", when="quarantine_writing"),
        Kill("target MERGE in progress", when="target_merging"),
    ]
    + [Kill(f"{s}s after listing", when=f"delay:{s}") for s in ("0.3", "1.5", "4", "8")]
    + [
        Kill("watch: halfway through archiving", at="archive_move:2", command="watch"),
        Kill("watch: target MERGE in progress", when="target_merging", command="watch"),
        Kill("watch: after the update, idle", when="idle", command="watch"),
        Kill("refresh: after writing its intent", at="refresh_planned", command="refresh"),
        Kill("refresh: one downstream table dropped", at="refresh_drop:2", command="refresh"),
        Kill("compaction: before it starts", at="before_compaction:orders_target",
             compact_at=COMPACT),
        Kill("compaction in progress", when="compacting:0.5", compact_at=COMPACT),
        Kill("watch: compaction in progress", when="compacting:0.2", compact_at=COMPACT,
             command="watch"),
    ]
)
DEFAULT = {"target MERGE in progress", "watch: halfway through archiving"}
WATCH_ARGS = [
    "--wait-after-last-change", "0.5", "--min-between-triggers", "0", "--poll", "0.2",
    "--idle-exit", "600",
]  # fmt: skip


def _trigger(volume: Volume, kill: Kill, proc) -> Callable[[], bool] | None:
    if kill.when is None:
        return None
    tables = volume.warehouse / "tables"
    if kill.when in ("bronze_writing", "target_merging", "quarantine_writing"):
        name = {
            "bronze_writing": "orders_bronze",
            "target_merging": "orders_target",
            "quarantine_writing": "orders_quarantine",
        }[kill.when]
        watcher = TableWatch(tables / name)
        return watcher.writing
    if kill.when == "idle":
        return lambda: (
            "no new files" in output_of(proc)
            or bool(re.search(r"update \d+ done", output_of(proc)))
        )
    kind, _, after = kill.when.partition(":")
    delay = float(after)
    marker = "compacting its" if kind == "compacting" else "new file(s) in"
    seen: dict[str, float] = {}

    def after_listing() -> bool:
        if marker not in output_of(proc):
            return False
        seen.setdefault("at", time.monotonic())
        return time.monotonic() - seen["at"] >= delay

    return after_listing


def run_and_kill(volume: Volume, kill: Kill, logs: Path):
    args = [kill.command, *volume_args(volume)] + (WATCH_ARGS if kill.command == "watch" else [])
    env = {"ORDERLAKE_KILL_AT": kill.at} if kill.at else {}
    if kill.compact_at is not None:
        env["ORDERLAKE_COMPACT_MIN_FILES"] = str(kill.compact_at)
    proc = start_cli(args, logs, env)
    trigger = _trigger(volume, kill, proc)
    return finish_cli(proc, kill_when=trigger, timeout=900)


def _crash_case(kill: Kill, volume: Volume, pipeline_for: Callable, tmp_path: Path, record):
    prepare(volume, pipeline_for)
    target_log = volume.warehouse / "tables" / "orders_target" / "_delta_log"
    versions_before = len(list(target_log.glob("*.json")))
    crashed = run_and_kill(volume, kill, tmp_path / "logs")
    assert crashed.killed, f"the kill did not happen: {crashed.describe()}"
    merge_committed = len(list(target_log.glob("*.json"))) > versions_before
    restarted = pipeline_for(volume).update()
    check_all(pipeline_for(volume).spark, volume)
    record(
        "kill",
        name=kill.name,
        command=kill.command,
        merge_committed_before_kill=merge_committed,
        recovered_updates=restarted.ingest[0].recovered_updates,
        child_seconds=round(crashed.seconds, 1),
    )


@pytest.mark.parametrize(
    "kill", [k for k in MATRIX if k.name in DEFAULT], ids=lambda k: k.name.replace(" ", "_")
)
def test_kill_and_restart(kill: Kill, volume, pipeline_for, tmp_path, record):
    _crash_case(kill, volume, pipeline_for, tmp_path, record)


@pytest.mark.long
@pytest.mark.parametrize(
    "kill", [k for k in MATRIX if k.name not in DEFAULT], ids=lambda k: k.name.replace(" ", "_")
)
def test_kill_and_restart_matrix(kill: Kill, volume, pipeline_for, tmp_path, record):
    _crash_case(kill, volume, pipeline_for, tmp_path, record)


@pytest.mark.long
def test_killed_again_during_recovery(volume, pipeline_for, tmp_path, record):
    """A crash while finishing the previous crash's update, then a clean restart."""
    prepare(volume, pipeline_for)
    for at in ("archive_move:1", "archive_move:1", "before_write:orders_target"):
        crashed = run_and_kill(volume, Kill(at, at=at), tmp_path / "logs")
        assert crashed.killed, crashed.describe()
    pipeline_for(volume).update()
    check_all(pipeline_for(volume).spark, volume)
    record("kill", name="three kills in a row, during recovery", command="run")


@pytest.mark.long
@pytest.mark.parametrize("at", ["after_archive", "before_write:orders_target"])
def test_restarted_watch_finishes_the_killed_update(at, volume, pipeline_for, tmp_path, record):
    """Killed once every file was archived: a restarted `watch` sees an empty source/ and must
    still finish the update (its rows are in bronze, not yet in the target)."""
    prepare(volume, pipeline_for)
    crashed = run_and_kill(volume, Kill(at, at=at, command="watch"), tmp_path / "logs")
    assert crashed.killed, crashed.describe()
    args = ["watch", *volume_args(volume), *WATCH_ARGS[:-1], "5"]  # idle-exit after 5 s
    restarted = finish_cli(start_cli(args, tmp_path / "logs"), timeout=900)
    assert restarted.returncode == 0, restarted.describe()
    check_all(pipeline_for(volume).spark, volume)
    record("kill", name=f"watch: {at}, restarted as watch", command="watch")
