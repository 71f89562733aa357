"""Spark's scratch space for this process, removed by a later start once its owner is gone.

Spark keeps shuffle blocks, the files it serves and the native libraries it unpacks in
temporary folders that only a clean exit deletes: every killed run used to leave them in /tmp
(86 MB each while the Delta jars were copied there), until the disk filled. Each process gets
`<cache>/orderlake/spark-scratch/<pid>-<random>/` and holds a `flock` on its `owner` file for
its life; every session start deletes the folders whose lock is free and whose JVM has exited.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

from orderlake.engine.lock import jvm_in_record, spark_jvm_alive
from orderlake.settings import cache_home

OWNER = "owner"
# A folder without its owner file is being created; one that stays so this long is debris.
UNCLAIMED_GRACE_SECONDS = 60.0

_claimed: dict[int, tuple[Path, int]] = {}  # pid -> (folder, fd holding the lock)


def scratch_root() -> Path:
    cache = cache_home()
    return cache / "orderlake" / "spark-scratch"


def usable_root() -> Path:
    """The cache's scratch root, or one in the system's temp folder when the cache is not
    writable (a read-only home): Spark must start either way."""
    root = scratch_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        root = Path(tempfile.gettempdir()) / f"orderlake-spark-scratch-{os.getuid()}"
        root.mkdir(parents=True, exist_ok=True)
    return root


def claim(root: Path | None = None) -> Path:
    """This process's scratch folder (the same one for every session it starts)."""
    pid = os.getpid()
    if pid in _claimed:
        return _claimed[pid][0]
    root = root or usable_root()
    sweep(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{pid}-", dir=root))
    fd = os.open(folder / OWNER, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.pwrite(fd, f"pid {pid}".encode(), 0)
    _claimed[pid] = (folder, fd)
    atexit.register(_release, pid)
    return folder


def _release(pid: int) -> None:
    """At a clean exit: Spark has removed its own folders; remove the rest."""
    if os.getpid() != pid or pid not in _claimed:
        return
    folder, fd = _claimed.pop(pid)
    shutil.rmtree(folder, ignore_errors=True)
    os.close(fd)


def note_jvm(jvm_pid: int | None) -> None:
    """Record the JVM that writes into this process's folder: a sweep waits for it to exit."""
    held = _claimed.get(os.getpid())
    if held is None or jvm_pid is None:
        return
    record = f"pid {os.getpid()} jvm {jvm_pid}".encode()
    os.ftruncate(held[1], 0)
    os.pwrite(held[1], record, 0)


def sweep(root: Path) -> list[Path]:
    """Delete the folders of processes that are gone (and whose JVM has exited too)."""
    removed = []
    try:
        children = list(root.iterdir())
    except FileNotFoundError:
        return removed
    for folder in children:
        if folder.is_dir() and _abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _abandoned(folder: Path) -> bool:
    try:
        fd = os.open(folder / OWNER, os.O_RDWR)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime > UNCLAIMED_GRACE_SECONDS
        except FileNotFoundError:
            return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its process is alive
        jvm = jvm_in_record(os.pread(fd, 200, 0).decode(errors="replace"))
        return jvm is None or not spark_jvm_alive(jvm)
    finally:
        os.close(fd)
