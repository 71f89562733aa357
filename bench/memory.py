"""Peak resident memory and CPU time of this Python process and its JVM, from /proc (no psutil).

CPU seconds are reported next to wall seconds: on a shared 2-core machine the wall clock
swings with other people's load, the CPU a phase burns much less.

A background thread samples the summed RSS of the tracked processes; each phase reports the
peak it saw. Sampling can miss a spike shorter than the interval; the per-process kernel
high-water marks (VmHWM) are read too, as an upper check.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (the JVM that pyspark started is one)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far, 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def hwm_bytes(pid: int) -> int:
    """The kernel's peak RSS of one process (VmHWM), 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples RSS of this process and its descendants; `take_peak()` returns and resets."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.pids = [os.getpid()]
        self._peak = 0
        self.overall = 0  # peak over the sampler's whole life
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def refresh(self) -> None:
        """Pick up processes started since (call after the Spark session is up)."""
        self.pids = [os.getpid(), *descendants(os.getpid())]

    def sample(self) -> int:
        total = sum(rss_bytes(p) for p in self.pids)
        with self._lock:
            self._peak = max(self._peak, total)
            self.overall = max(self.overall, total)
        return total

    def take_peak(self) -> int:
        """Peak summed RSS since the last call, then start a new window."""
        current = self.sample()
        with self._lock:
            peak, self._peak = self._peak, current
        return peak

    def cpu_total(self) -> float:
        """CPU seconds used so far by the tracked processes."""
        return sum(cpu_seconds(p) for p in self.pids)

    def hwm_total(self) -> int:
        return sum(hwm_bytes(p) for p in self.pids)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
