"""Local file-arrival trigger: start an update when new files have settled in the source folder.

Mirrors the Databricks job trigger: fire once no file changed for
`wait_after_last_change_seconds`, and no sooner than `min_time_between_triggers_seconds` after
the previous trigger. Files that arrive during an update are taken by the next one.

A change counts from the file's last write (its mtime), not from the poll that saw it, so the
poll interval adds no latency; the previous poll bounds it from below (a coarse or skewed mtime
can make a file look older than it is, never more than one poll older).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orderlake.engine.autoloader.files import SourceFile, list_source
from orderlake.engine.interrupt import STOP


@dataclass(frozen=True)
class TriggerTimings:
    wait_after_last_change_seconds: float
    min_time_between_triggers_seconds: float
    poll_seconds: float = 0.5


class ArrivalTrigger:
    """Decides, from successive listings, when an update should start."""

    def __init__(
        self,
        timings: TriggerTimings,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.timings = timings
        self.clock = clock
        self.wall_clock = wall_clock
        self._listing: list[SourceFile] | None = None
        self._changed_at = clock()
        self._observed_at: float | None = None
        self._last_trigger: float | None = None

    def observe(self, listing: list[SourceFile]) -> bool:
        """Feed the current listing; True when an update should start now."""
        now = self.clock()
        if listing != self._listing:
            written = set(listing) - set(self._listing or [])
            if written:  # a file only removed (archived, deleted) needs no settling
                self._changed_at = self._last_write(written, now)
            self._listing = listing
        self._observed_at = now
        if not listing:
            return False
        if now - self._changed_at < self.timings.wait_after_last_change_seconds:
            return False
        if (
            self._last_trigger is not None
            and now - self._last_trigger < self.timings.min_time_between_triggers_seconds
        ):
            return False
        self._last_trigger = now
        return True

    def _last_write(self, written: set[SourceFile], now: float) -> float:
        """When the newest of `written` was last written, on `clock`'s scale: its mtime, but
        not before the previous poll (which did not see it) and not after now."""
        if self._observed_at is None:
            return now  # the first listing: nothing to bound a file's age with
        newest = max(f.mtime_ns for f in written) / 1e9
        at = now - (self.wall_clock() - newest)
        return min(now, max(self._observed_at, at))

    def due_in(self) -> float | None:
        """Seconds until the files waiting now would start an update (None: none is waiting),
        so the loop can wake exactly then instead of at its next poll."""
        if not self._listing:
            return None
        now = self.clock()
        settle = self._changed_at + self.timings.wait_after_last_change_seconds - now
        spacing = 0.0
        if self._last_trigger is not None:
            spacing = self._last_trigger + self.timings.min_time_between_triggers_seconds - now
        return max(settle, spacing, 0.0)


def watch(
    source: Path,
    run_update: Callable[[], object],
    timings: TriggerTimings,
    *,
    max_updates: int | None = None,
    idle_exit_seconds: float | None = None,
    log: Callable[[str], None] = print,
    pending: Callable[[], str | None] | None = None,
    between_updates: Callable[[], None] | None = None,
) -> int:
    """Poll `source` and run updates until stopped; returns how many updates ran.

    `pending()` says why an update must run even with no new file (an earlier update left
    work undone): then one runs at once, since no file arrival may ever trigger it.
    `between_updates()` runs in the background after each update (e.g. to warm what the next
    one reads); the next update waits for it."""
    trigger = ArrivalTrigger(timings)
    updates = 0
    reason = pending() if pending is not None else None
    if reason:
        log(f"{reason}: finishing it now")
        run_update()
        updates += 1
    idle_since = time.monotonic()
    log(
        f"watching {source} (wait {timings.wait_after_last_change_seconds:g}s after the last "
        f"change, at least {timings.min_time_between_triggers_seconds:g}s between updates)"
    )
    background: threading.Thread | None = None
    while max_updates is None or updates < max_updates:
        STOP.check()
        listing = list_source(source)
        if listing:
            idle_since = time.monotonic()
        if trigger.observe(listing):
            log(f"{len(listing)} file(s) waiting: starting an update")
            if background is not None:
                background.join()
            run_update()
            updates += 1
            idle_since = time.monotonic()
            if between_updates is not None:
                background = threading.Thread(target=between_updates, daemon=True)
                background.start()
            continue
        if idle_exit_seconds is not None and time.monotonic() - idle_since >= idle_exit_seconds:
            log(f"no new files for {idle_exit_seconds:g}s: stopping")
            break
        due = trigger.due_in()
        time.sleep(timings.poll_seconds if due is None else min(timings.poll_seconds, due + 0.001))
    return updates
