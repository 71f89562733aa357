"""Two loaders at once, files arriving during an update, and a burst of small files."""

from __future__ import annotations

import threading
import time

import pytest

from orderlake.engine import faults
from orderlake.engine.lock import Busy

from .harness import (
    check_all,
    finish_cli,
    output_of,
    placement,
    sha,
    start_cli,
    volume_args,
    wait_for,
)


class Paused:
    """Holds an in-process update at a kill point until released."""

    def __init__(self, point: str) -> None:
        self.point = point
        self.reached = threading.Event()
        self.go = threading.Event()
        faults.on_point(point, self._hook)

    def _hook(self, _name: str) -> None:
        self.reached.set()
        assert self.go.wait(900), "never released"

    def release(self) -> None:
        faults.on_point(self.point, None)
        self.go.set()


def test_second_loader_refuses_or_waits_and_late_files_go_to_the_next_update(
    volume, pipeline_for, tmp_path, record
):
    first = volume.drop_generated(rows=200, files=3, seed=21, name_prefix="early")
    pipeline = pipeline_for(volume)
    paused = Paused("after_plan")
    holder: dict[str, object] = {}

    def run_first() -> None:
        try:
            holder["result"] = pipeline.update()
        except BaseException as exc:  # surfaced below
            holder["error"] = exc

    thread = threading.Thread(target=run_first, daemon=True)
    try:
        thread.start()
        assert paused.reached.wait(600), "the first update never reached its plan"

        # A second loader in this process: refused at once, with a clear message.
        with pytest.raises(Busy, match="another orderlake update is running"):
            pipeline_for(volume).update()
        # The CLI: exit 75 without --wait; with --wait it waits, then runs the next update.
        refused = start_cli(["run", *volume_args(volume)], tmp_path / "logs")
        waiting = start_cli(["run", "--wait", "900", *volume_args(volume)], tmp_path / "logs")
        # Files that arrive while the first update is running.
        late = volume.drop_generated(rows=60, files=2, seed=22, start=first.end, name_prefix="late")
        refused_run = finish_cli(refused, timeout=600)
        assert refused_run.returncode == 75, refused_run.describe()
        assert "another orderlake update is running" in refused_run.stderr
        wait_for(lambda: "waiting up to" in output_of(waiting), 600, "the second CLI to wait")
    finally:
        paused.release()
    thread.join(600)
    assert "error" not in holder, holder.get("error")
    result = holder["result"]
    taken = set(result.ingest[0].loaded)  # type: ignore[attr-defined]
    assert taken == {p.name for p in first.paths}, taken
    waited = finish_cli(waiting, timeout=900)
    assert waited.returncode == 0, waited.describe()
    assert f"{len(late.paths)} file(s) loaded" in waited.stdout, waited.stdout[-2000:]
    late_hashes = {sha((volume.archive / p.name).read_bytes()) for p in late.paths}
    assert late_hashes <= set(placement(volume)["archive"])
    pipeline_for(volume).update()  # nothing left: must change nothing
    check_all(pipeline_for(volume).spark, volume)
    record("concurrency", refused_exit=refused_run.returncode, waited_exit=waited.returncode)


def test_files_dropped_after_the_bronze_commit_stay_for_the_next_update(volume, pipeline_for):
    """A file that lands between the bronze commit and the archive moves is not archived."""
    volume.drop_generated(rows=50, files=2, seed=31, name_prefix="a")
    dropped: list[str] = []

    def drop_now(_name: str) -> None:
        if not dropped:
            volume.drop("b_late.csv", (volume.root.parent / "late.csv").read_text())
            dropped.append("b_late.csv")

    (volume.root.parent / "late.csv").write_text(
        "tracking_num,order_id,last_updated\nLATE0000001,O-L,2099-01-01T00:00:00Z\n"
    )
    faults.on_point("after_bronze_commit", drop_now)
    try:
        first = pipeline_for(volume).update()
    finally:
        faults.on_point("after_bronze_commit", None)
    assert dropped and "b_late.csv" not in first.ingest[0].loaded
    assert (volume.source / "b_late.csv").exists()
    second = pipeline_for(volume).update()
    assert second.ingest[0].loaded == ["b_late.csv"]
    volume.expected["LATE0000001"] = {
        "tracking_num": "LATE0000001", "order_id": "O-L", "customer_id": None,
        "order_date": None, "carrier": None, "origin": None, "destination": None,
        "status": None, "weight_kg": None, "amount": None, "currency": None,
        "last_updated": _utc(2099, 1, 1),
    }  # fmt: skip
    check_all(pipeline_for(volume).spark, volume)


def _utc(*args: int):
    from datetime import UTC, datetime

    return datetime(*args, tzinfo=UTC)


def _burst(volume, pipeline_for, record, files: int) -> None:
    volume.drop_generated(
        rows=files * 3, files=files, seed=41, update_ratio=0.3, invalid_ratio=0.02,
        duplicate_ratio=0.02, name_prefix="burst",
    )  # fmt: skip
    started = time.monotonic()
    result = pipeline_for(volume).update()
    seconds = time.monotonic() - started
    assert len(result.ingest[0].loaded) == files
    check_all(pipeline_for(volume).spark, volume)
    record("burst", files=files, rows=files * 3, seconds=round(seconds, 1))


def test_burst_of_small_files(volume, pipeline_for, record):
    _burst(volume, pipeline_for, record, 150)


@pytest.mark.long
def test_big_burst_of_small_files(volume, pipeline_for, record):
    _burst(volume, pipeline_for, record, 1200)


@pytest.mark.long
def test_two_clis_at_once_on_a_fresh_warehouse(volume, pipeline_for, tmp_path, record):
    """Both start together on a warehouse that does not exist yet; neither corrupts it."""
    volume.drop_generated(rows=300, files=4, seed=51, invalid_ratio=0.05, name_prefix="both")
    runs = [
        start_cli(["run", "--wait", "900", *volume_args(volume)], tmp_path / "logs")
        for _ in range(2)
    ]
    done = [finish_cli(p, timeout=1200) for p in runs]
    assert [d.returncode for d in done] == [0, 0], "\n".join(d.describe() for d in done)
    pipeline_for(volume).update()
    check_all(pipeline_for(volume).spark, volume)
    record("concurrency", fresh_warehouse_exits=[d.returncode for d in done])
