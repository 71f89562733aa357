"""Row counts that a write collects on its way (Spark `Observation`s): no job of their own.

An update must not pay a Spark job per figure it reports; an observation rides on the job
that writes the rows and is posted when that job ends.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from pyspark.sql import Column, DataFrame, Observation

_IDS = itertools.count(1)


def observed_values(observation: Observation, timeout: float = 10.0) -> dict[str, Any] | None:
    """The observed values; Spark posts them right after the job that read the rows ends
    (None when no job read them within `timeout`)."""
    found: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: found.update(observation.get), daemon=True)
    waiter.start()
    waiter.join(timeout)
    return found or None


class RowCounts:
    """Named aggregates of a frame's rows, counted by whatever action reads `frame` first.

    Read `values()` only after that action ran (it waits for the figures, up to a timeout)."""

    def __init__(self, frame: DataFrame, **aggregates: Column) -> None:
        self.observation = Observation(f"orderlake_counts_{next(_IDS)}")
        self.frame = frame.observe(
            self.observation, *[agg.alias(name) for name, agg in aggregates.items()]
        )

    def values(self) -> dict[str, int] | None:
        found = observed_values(self.observation)
        if found is None:
            return None
        return {name: int(value or 0) for name, value in found.items()}
