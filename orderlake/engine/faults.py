"""Named kill points, so crash tests can SIGKILL the engine at exact steps.

`ORDERLAKE_KILL_AT=<point>[:<n>]` kills the process with SIGKILL the n-th time (default 1st)
it reaches `<point>`. Unset, a kill point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def kill_point(name: str) -> None:
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
        os.kill(os.getpid(), signal.SIGKILL)
