"""Spark's per-process scratch folders: who may delete which (the kill test is in reliability/)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orderlake.engine import scratch

HOLD = """
import sys, time
from pathlib import Path
from orderlake.engine import scratch
print(scratch.claim(Path(sys.argv[1])), flush=True)
time.sleep(60)
"""


def test_a_live_owner_keeps_its_folder_and_a_dead_ones_is_swept(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        held = Path(owner.stdout.readline().strip())  # type: ignore[union-attr]
        assert held.parent == tmp_path and (held / scratch.OWNER).is_file()
        (held / "blockmgr-1").mkdir()
        assert scratch.sweep(tmp_path) == []  # its process holds the lock
        assert held.is_dir()
    finally:
        owner.kill()
        owner.wait()
    assert scratch.sweep(tmp_path) == [held]  # SIGKILLed: the lock is free, no JVM recorded
    assert not held.exists()


def test_a_folder_without_owner_is_left_while_it_may_still_be_made(tmp_path: Path) -> None:
    young, old = tmp_path / "1-young", tmp_path / "2-old"
    young.mkdir()
    old.mkdir()
    past = time.time() - scratch.UNCLAIMED_GRACE_SECONDS - 5
    os.utime(old, (past, past))
    assert scratch.sweep(tmp_path) == [old]
    assert young.is_dir()


def test_a_dead_owners_folder_waits_for_its_jvm(spark, tmp_path: Path) -> None:
    from orderlake.engine.session import spark_jvm_pid

    folder = tmp_path / "1-x"
    folder.mkdir()
    jvm = spark_jvm_pid(spark)  # the test session's JVM: alive, and a Spark JVM
    assert jvm is not None
    (folder / scratch.OWNER).write_text(f"pid 1 jvm {jvm}")
    assert scratch.sweep(tmp_path) == []
    (folder / scratch.OWNER).write_text("pid 1 jvm 999999999")
    assert scratch.sweep(tmp_path) == [folder]


def test_an_unwritable_cache_falls_back_to_the_temp_folder(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    root = scratch.usable_root()
    assert root.parent == Path(tempfile.gettempdir()) and root.is_dir()
