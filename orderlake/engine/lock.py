"""One loader at a time per warehouse and volume: an advisory lock a crash releases by itself.

The holder writes `pid <python> jvm <spark jvm> since <time>` into the lock file and clears it
when it releases the lock. A holder killed on its own (SIGKILL of the Python process only)
releases the `flock` at once, but its Spark JVM may still be finishing a commit for a moment:
the next holder waits for that JVM to exit before it touches any table.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from orderlake.errors import BusyError

LEFT_JVM_GRACE_SECONDS = 30.0


class Busy(BusyError, RuntimeError):
    """Another loader holds the lock."""


def _record(fd: int) -> str:
    return os.pread(fd, 200, 0).decode(errors="replace").strip()


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it into the lock file."""
    return _record(fd) or "unknown"


def _spark_jvm_alive(pid: int) -> bool:
    """Is `pid` a running Spark JVM (not a reused pid of something else)?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except OSError:
        return False
    return b"org.apache.spark" in cmdline


def _left_jvm(record: str) -> int | None:
    match = re.search(r"\bjvm (\d+)", record)
    return int(match.group(1)) if match else None


class ExclusiveLock:
    """`flock` on a file; the kernel drops it when the holder dies, even by SIGKILL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._jvm: int | None = None

    def acquire(self, wait_seconds: float = 0.0, jvm_pid: int | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(fd)
                    os.close(fd)
                    raise Busy(
                        f"another orderlake update is running ({holder}; lock {self.path}). "
                        "Wait for it, or pass --wait SECONDS."
                    ) from None
                if not told:
                    print(
                        f"orderlake: another update is running ({_holder(fd)}); "
                        f"waiting up to {wait_seconds:g}s for it to finish",
                        file=sys.stderr,
                        flush=True,
                    )
                    told = True
                time.sleep(0.2)
        try:
            self._wait_for_left_jvm(fd, deadline, jvm_pid)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._fd = fd
        self.note_jvm(jvm_pid)

    def _wait_for_left_jvm(self, fd: int, deadline: float, own_jvm: int | None) -> None:
        """A holder that died without releasing may have left its JVM finishing a write.

        Such a JVM exits within seconds on its own (it reads EOF from its Python's pipe)."""
        left = _left_jvm(_record(fd))
        if left is None or left == own_jvm:
            return
        give_up = max(deadline, time.monotonic() + LEFT_JVM_GRACE_SECONDS)
        while _spark_jvm_alive(left):
            if time.monotonic() >= give_up:
                raise Busy(
                    f"the Spark JVM of an update that stopped (pid {left}) is still running; "
                    f"wait for it to exit, or pass --wait SECONDS (lock {self.path})"
                )
            time.sleep(0.1)

    def note_jvm(self, jvm_pid: int | None) -> None:
        """Record who holds the lock, with the Spark JVM that writes for it."""
        if self._fd is None:
            return
        self._jvm = jvm_pid or self._jvm
        jvm = f" jvm {self._jvm}" if self._jvm else ""
        record = f"pid {os.getpid()}{jvm} since {time.strftime('%H:%M:%S')}".encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, record, 0)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # released cleanly: nothing of ours is left running
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def acquired(
        self, wait_seconds: float = 0.0, jvm_pid: int | None = None
    ) -> Iterator[ExclusiveLock]:
        self.acquire(wait_seconds, jvm_pid)
        try:
            yield self
        finally:
            self.release()


def warehouse_lock(warehouse: Path) -> ExclusiveLock:
    """The lock every update of a warehouse takes."""
    return ExclusiveLock(Path(warehouse) / "_orderlake" / "lock")
