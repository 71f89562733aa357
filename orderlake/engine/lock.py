"""One loader at a time per warehouse and volume: an advisory lock a crash releases by itself.

On a bucket there is no flock: `LeaseLock` (below) is a lock object with a lease instead.

The holder writes `pid <python> jvm <spark jvm> since <time>` into the lock file and clears it
when it releases the lock. A holder killed on its own (SIGKILL of the Python process only)
releases the `flock` at once, but its Spark JVM may still be finishing a commit for a moment:
the next holder waits for that JVM to exit before it touches any table.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from orderlake.errors import BusyError
from orderlake.storage.path import AnyPath, RemotePath, as_path, is_remote

LEFT_JVM_GRACE_SECONDS = 30.0


class Busy(BusyError, RuntimeError):
    """Another loader holds the lock."""


def _record(fd: int) -> str:
    return os.pread(fd, 200, 0).decode(errors="replace").strip()


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it into the lock file."""
    return _record(fd) or "unknown"


def spark_jvm_alive(pid: int) -> bool:
    """Is `pid` a running Spark JVM (not a reused pid of something else)?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
    except OSError:
        return False
    return b"org.apache.spark" in cmdline


def jvm_in_record(record: str) -> int | None:
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
        left = jvm_in_record(_record(fd))
        if left is None or left == own_jvm:
            return
        give_up = max(deadline, time.monotonic() + LEFT_JVM_GRACE_SECONDS)
        while spark_jvm_alive(left):
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


def lease_seconds() -> float:
    return float(os.environ.get("ORDERLAKE_LOCK_LEASE_SECONDS", "60"))


class LeaseLock:
    """The lock on an object store, which has no flock: a lock object with a lease.

    - acquire: `create_exclusive(lock)` (put-if-absent, one winner of any race) with a JSON
      record {owner, pid, host, since, expires}. A heartbeat thread rewrites it every
      lease/4 seconds with a later `expires`.
    - a holder that died stops renewing; once `expires` has passed (by the contender's wall
      clock: clocks must agree to well within the lease), a contender takes over. Only one
      may: it first claims `lock-takeovers/<dead owner>` with create_exclusive, re-reads the
      lock to check it still is that dead owner's, deletes it and creates its own.
    - release: delete the lock object if it is still ours.
    The lease also covers a dead holder's JVM finishing a commit: it exits within seconds,
    well inside the 60 s default (ORDERLAKE_LOCK_LEASE_SECONDS).
    """

    def __init__(self, path: RemotePath) -> None:
        self.path = path
        self.lease = lease_seconds()
        self.owner = uuid.uuid4().hex
        self._jvm: int | None = None
        self._held = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.lost = False

    def _record(self) -> bytes:
        jvm = f" jvm {self._jvm}" if self._jvm else ""
        record = {
            "owner": self.owner,
            "holder": f"pid {os.getpid()}{jvm} on {socket.gethostname()} "
            f"since {time.strftime('%H:%M:%S')}",
            "expires": time.time() + self.lease,
        }
        return json.dumps(record).encode()

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:
            return {"owner": "?", "holder": "unreadable lock record", "expires": 0}

    def _try_once(self) -> dict | None:
        """Take the lock (None) or return the record of whoever holds it."""
        storage = self.path.storage
        if storage.create_exclusive(str(self.path), self._record()):
            return None
        current = self._read()
        if current is None:
            return {"holder": "a holder releasing it", "expires": time.time() + 1}
        if float(current.get("expires", 0)) >= time.time():
            return current
        # Expired: one contender wins the takeover of this dead owner's lease.
        claim = self.path.parent / "lock-takeovers" / str(current.get("owner"))
        if not storage.create_exclusive(str(claim), self._record()):
            return current
        again = self._read()
        if again is not None and again.get("owner") == current.get("owner"):
            storage.delete(str(self.path))
        if storage.create_exclusive(str(self.path), self._record()):
            return None
        return self._read() or current

    def acquire(self, wait_seconds: float = 0.0, jvm_pid: int | None = None) -> None:
        self._jvm = jvm_pid
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            holder = self._try_once()
            if holder is None:
                break
            if time.monotonic() >= deadline:
                raise Busy(
                    f"another orderlake update is running ({holder.get('holder')}; lock "
                    f"{self.path}, lease until {time.ctime(float(holder.get('expires', 0)))}). "
                    "Wait for it, or pass --wait SECONDS."
                )
            if not told:
                print(
                    f"orderlake: another update is running ({holder.get('holder')}); "
                    f"waiting up to {wait_seconds:g}s for it to finish",
                    file=sys.stderr,
                    flush=True,
                )
                told = True
            time.sleep(min(1.0, self.lease / 10))
        self._held = True
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="orderlake-lease", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease / 4):
            current = self._read()
            if current is None or current.get("owner") != self.owner:
                self.lost = True
                print(
                    f"orderlake: lost the lock {self.path} (lease expired and taken over)",
                    file=sys.stderr,
                    flush=True,
                )
                return
            try:
                self.path.write_bytes(self._record())
            except OSError:
                continue  # retried at the next beat, well before the lease ends

    def note_jvm(self, jvm_pid: int | None) -> None:
        self._jvm = jvm_pid or self._jvm

    def release(self) -> None:
        if not self._held:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        current = self._read()
        if current is not None and current.get("owner") == self.owner:
            self.path.storage.delete(str(self.path))
        self._held = False

    @contextlib.contextmanager
    def acquired(
        self, wait_seconds: float = 0.0, jvm_pid: int | None = None
    ) -> Iterator[LeaseLock]:
        self.acquire(wait_seconds, jvm_pid)
        try:
            yield self
        finally:
            self.release()


def warehouse_lock(warehouse: AnyPath) -> ExclusiveLock | LeaseLock:
    """The lock every update of a warehouse takes: flock locally, a lease on a bucket."""
    path = as_path(warehouse) / "_orderlake" / "lock"
    if is_remote(path):
        return LeaseLock(path)
    return ExclusiveLock(path)
