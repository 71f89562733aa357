"""Named kill points, so crash tests can SIGKILL the engine at exact steps.

`ORDERLAKE_KILL_AT=<point>[:<n>]` kills the process with SIGKILL the n-th time (default 1st)
it reaches `<point>`. When the process leads its own process group (a test started it in a new
session), the whole group dies at once, its Spark JVM included, as in a real crash. Unset, a
kill point costs two dictionary lookups.

`ORDERLAKE_SLOW_AT=<point>:<seconds>` makes the process sleep there instead (a long step that
no signal can cut short, to test what a second Ctrl-C does).

In-process tests can also hook a point (`on_point`) to pause an update there, e.g. to drop
files or start a second loader while the first one is at a known step.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

_hits: dict[str, int] = {}
_hooks: dict[str, Callable[[str], None]] = {}


def on_point(name: str, hook: Callable[[str], None] | None) -> None:
    """Call `hook(name)` whenever this process reaches kill point `name` (None removes it)."""
    if hook is None:
        _hooks.pop(name, None)
    else:
        _hooks[name] = hook


def kill_point(name: str) -> None:
    hook = _hooks.get(name)
    if hook is not None:
        hook(name)
    slow = os.environ.get("ORDERLAKE_SLOW_AT")
    if slow:
        point, _, seconds = slow.rpartition(":")
        if point == name:
            print(f"[fault] pausing {seconds}s at {name}", flush=True)  # tests wait for it
            time.sleep(float(seconds))
    wanted = os.environ.get("ORDERLAKE_KILL_AT")
    if not wanted:
        return
    point, sep, nth = wanted.rpartition(":")
    if not sep or not nth.isdigit():
        point, nth = wanted, "1"
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth):
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
