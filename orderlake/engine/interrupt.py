"""Stopping on SIGINT / SIGTERM: promptly, at a safe point, without a traceback.

The first signal only records the request and cancels the running Spark jobs from another
thread (a py4j call from the signal handler itself would re-enter the connection the main
thread is blocked on: pyspark's own SIGINT handler does that, hence its "reentrant call"
tracebacks). The engine checks the request between steps and raises `Interrupted`; every step
is crash-safe, so the next update finishes what this one left. A second signal stops at once:
the Spark JVM is killed with the process, exactly like a crash, which is just as safe.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

from orderlake.errors import OrderlakeError

SIGNAL_NAMES = {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}


class Interrupted(OrderlakeError):
    """The update stopped because a signal asked it to."""

    def __init__(self, signum: int, update_id: int | None = None) -> None:
        self.signum = signum
        self.update_id = update_id
        super().__init__(f"stopped by {SIGNAL_NAMES.get(signum, f'signal {signum}')}")

    def describe(self) -> str:
        """One line for the user: what stopped, and that nothing is lost."""
        if self.update_id is None:
            return str(self)
        return (
            f"{self} during update {self.update_id}; nothing is lost: the next "
            "`orderlake run` or `watch` finishes it"
        )

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequest:
    """Whether a stop was asked for, and what to do (off the signal handler) when it is."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._on_request: list[Callable[[], None]] = []

    def on_request(self, callback: Callable[[], None]) -> None:
        """Run `callback` in a background thread when a stop is requested."""
        self._on_request.append(callback)

    def request(self, signum: int) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        for callback in self._on_request:
            threading.Thread(target=_quietly, args=(callback,), daemon=True).start()

    def check(self) -> None:
        """A safe point: raise `Interrupted` when a stop was requested."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    def reset(self) -> None:
        self.signum = None
        self._on_request.clear()


def _quietly(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # the JVM may be going away too (SIGTERM to the process group)
        pass


STOP = StopRequest()
_JVM_PIDS: list[int] = []


def note_jvm(pid: int | None) -> None:
    """The Spark JVM this process started: killed with it on a second signal."""
    if pid and pid not in _JVM_PIDS:
        _JVM_PIDS.append(pid)


def _handle(signum: int, _frame: object) -> None:
    if STOP.signum is None:
        STOP.request(signum)
        return
    for pid in _JVM_PIDS:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    name = SIGNAL_NAMES.get(signum, f"signal {signum}")
    os.write(
        sys.stderr.fileno(),
        f"orderlake: stopped at once by a second {name}; the next update finishes what this "
        "one left\n".encode(),
    )
    os._exit(128 + signum)


def install_handlers() -> None:
    """SIGINT and SIGTERM request a stop (call again after Spark starts: pyspark replaces the
    SIGINT handler with one that raises KeyboardInterrupt in the middle of a py4j call)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _handle)
