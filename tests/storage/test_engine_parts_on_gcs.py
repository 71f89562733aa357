"""The engine's object-store parts one by one on gs:// (emulator + connector, in this process):
the crash-safe move, the source listing, the lease lock, the event log of one object per event.

The states a crash leaves are built directly (a kill cannot land between the copy and the
delete of one rename), then the engine's code must finish from them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from orderlake.engine.autoloader.files import list_source, move
from orderlake.engine.lock import Busy, LeaseLock, warehouse_lock
from orderlake.engine.run.eventlog import EventLog
from orderlake.storage.path import RemotePath, as_path


@pytest.fixture
def root(gcs_spark, gcs_bucket: str) -> RemotePath:
    path = as_path(f"gs://{gcs_bucket}/parts-{uuid.uuid4().hex[:8]}")
    assert isinstance(path, RemotePath)
    return path


def test_a_move_cut_between_copy_and_delete_is_finished_by_the_retry(root: RemotePath) -> None:
    src, dst = root / "source" / "a.csv", root / "archive" / "a.csv"
    src.write_bytes(b"a,b\n1,2\n")
    dst.write_bytes(b"a,b\n1,2\n")  # what the crash left: the copy done, the delete not
    assert move(src, dst) is True
    assert not src.exists() and dst.read_bytes() == b"a,b\n1,2\n"
    assert move(src, dst) is False  # moved before: nothing to do


def test_a_move_never_replaces_a_different_file(root: RemotePath) -> None:
    src, dst = root / "source" / "a.csv", root / "archive" / "a.csv"
    src.write_bytes(b"new bytes\n")
    dst.write_bytes(b"other\n")
    with pytest.raises(FileExistsError):
        move(src, dst)
    assert src.read_bytes() == b"new bytes\n" and dst.read_bytes() == b"other\n"


def test_a_plain_move_lands_whole_and_creates_the_folder(root: RemotePath) -> None:
    src, dst = root / "source" / "sub" / "a.csv", root / "archive" / "sub" / "a.csv"
    src.write_bytes(b"x" * 100_000)
    assert move(src, dst) is True
    assert not src.exists() and dst.read_bytes() == b"x" * 100_000


def test_the_source_listing_skips_hidden_names_and_keeps_subfolders(root: RemotePath) -> None:
    source = root / "source"
    for name in ("b.csv", "sub/a.csv", ".upload.csv", "_SUCCESS", "_tmp/c.csv"):
        (source / name).write_bytes(b"h\n")
    (root / "elsewhere.csv").write_bytes(b"h\n")
    assert sorted(f.relpath for f in list_source(source)) == ["b.csv", "sub/a.csv"]
    assert list_source(root / "missing") == []


def test_the_lease_lock_admits_one_holder_and_is_gone_after_release(root: RemotePath) -> None:
    first, second = warehouse_lock(root), warehouse_lock(root)
    assert isinstance(first, LeaseLock)
    with first.acquired():
        with pytest.raises(Busy, match="another orderlake update is running"):
            second.acquire(0)
    assert not (root / "_orderlake" / "lock").exists()
    with second.acquired():
        assert (root / "_orderlake" / "lock").exists()


def test_a_dead_holders_lease_is_taken_over_by_exactly_one(root: RemotePath) -> None:
    lock = root / "_orderlake" / "lock"
    dead = {"owner": "dead", "holder": "pid 1 (killed)", "expires": time.time() - 1}
    lock.write_bytes(json.dumps(dead).encode())
    contenders = [warehouse_lock(root) for _ in range(4)]
    won: list[LeaseLock] = []
    barrier = threading.Barrier(len(contenders))

    def contend(candidate: LeaseLock) -> None:
        barrier.wait()
        try:
            candidate.acquire(0)
            won.append(candidate)
        except Busy:
            pass

    threads = [threading.Thread(target=contend, args=(c,)) for c in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert json.loads(lock.read_bytes())["owner"] == won[0].owner
    won[0].release()
    assert not lock.exists()


def test_a_live_holders_lease_is_not_taken_over(root: RemotePath) -> None:
    lock = root / "_orderlake" / "lock"
    alive = {"owner": "alive", "holder": "pid 1", "expires": time.time() + 3600}
    lock.write_bytes(json.dumps(alive).encode())
    with pytest.raises(Busy, match="pid 1"):
        warehouse_lock(root).acquire(0)
    assert json.loads(lock.read_bytes())["owner"] == "alive"


def test_the_heartbeat_extends_the_lease(root: RemotePath, monkeypatch) -> None:
    monkeypatch.setenv("ORDERLAKE_LOCK_LEASE_SECONDS", "2")
    holder = warehouse_lock(root)
    with holder.acquired():
        lock = root / "_orderlake" / "lock"
        first = json.loads(lock.read_bytes())["expires"]
        deadline = time.monotonic() + 60
        while json.loads(lock.read_bytes())["expires"] == first:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.2)
        assert not holder.lost


def test_two_event_logs_on_one_folder_lose_no_event(root: RemotePath) -> None:
    path = root / "_orderlake" / "event_log.jsonl"
    a, b = EventLog(path, "p"), EventLog(path, "p")
    for n in range(3):
        a.emit("update_progress", f"a{n}", update_id=n, details={"state": "RUNNING"})
        b.emit("flow_progress", f"b{n}", update_id=n)
    messages = [e["message"] for e in EventLog(path, "p").events()]
    assert messages == ["a0", "b0", "a1", "b1", "a2", "b2"]
    assert EventLog(path, "p").last_update_progress()["message"] == "a2"
    assert not path.exists()  # one object per event, no JSONL object
