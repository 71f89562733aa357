"""One loader at a time per warehouse and volume: an advisory lock a crash releases by itself."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path


class Busy(RuntimeError):
    """Another loader holds the lock."""


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it into the lock file."""
    return os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"


class ExclusiveLock:
    """`flock` on a file; the kernel drops it when the holder dies, even by SIGKILL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, wait_seconds: float = 0.0) -> None:
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def acquired(self, wait_seconds: float = 0.0) -> Iterator[ExclusiveLock]:
        self.acquire(wait_seconds)
        try:
            yield self
        finally:
            self.release()


def warehouse_lock(warehouse: Path) -> ExclusiveLock:
    """The lock every update of a warehouse takes."""
    return ExclusiveLock(Path(warehouse) / "_orderlake" / "lock")
