"""Where an AUTO CDC flow's input rows went, so that the figures add up.

rows in = quarantined + filtered + without a key + before a TRUNCATE + collapsed + ignored as
older + inserted + updated + deleted (+ applied by an interrupted update). The engine records
each bucket as a `num_*_rows` metric of the flow's `flow_progress` event; `show`, the report
and the progress line print them from here. Pure Python: the views load no JVM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (metric, label), in the order a row meets them. Buckets shown only when not zero are the
# ones most pipelines never fill.
BUCKETS: tuple[tuple[str, str], ...] = (
    ("num_quarantined_rows", "quarantined"),  # failed a drop rule
    ("num_filtered_rows", "filtered by the query"),  # the view's own filter passed fewer on
    ("num_null_key_rows", "without a key"),  # skipped: a NULL key column
    ("num_truncated_rows", "before a TRUNCATE"),  # apply_as_truncates: the event and older
    ("num_collapsed_rows", "collapsed into a later change"),  # same key, later in this batch
    # not newer than the stored row or tombstone (the sequence guard), or a delete of a key
    # the target does not hold: changes nothing
    ("num_ignored_rows", "ignored as older"),
    ("num_inserted_rows", "inserted"),
    ("num_updated_rows", "updated"),
    ("num_deleted_rows", "deleted"),
    ("num_replayed_rows", "applied by an interrupted update"),  # recovered run: its counts
)
ALWAYS_SHOWN = frozenset(
    {"num_quarantined_rows", "num_collapsed_rows", "num_ignored_rows", "num_inserted_rows",
     "num_updated_rows", "num_deleted_rows"}
)
MARKER = "num_collapsed_rows"  # present only when the flow's rows were accounted for


def breakdown(metrics: Mapping[str, Any]) -> list[tuple[str, int]] | None:
    """(label, rows) of each bucket to show, or None when the flow logged no accounting."""
    if MARKER not in metrics:
        return None
    shown = []
    for key, label in BUCKETS:
        value = int(metrics.get(key) or 0)
        if key in ALWAYS_SHOWN or value:
            shown.append((label, value))
    return shown


def accounted(metrics: Mapping[str, Any]) -> int:
    """The rows the buckets hold (equal to the flow's input rows when they add up)."""
    return sum(int(metrics.get(key) or 0) for key, _ in BUCKETS)


def sentence(rows_in: int | None, metrics: Mapping[str, Any]) -> str | None:
    """`2,000 rows in = 40 quarantined + 599 collapsed into a later change + ...`, or None."""
    parts = breakdown(metrics)
    if parts is None:
        return None
    total = accounted(metrics) if rows_in is None else rows_in
    return f"{total:,} rows in = " + " + ".join(f"{n:,} {label}" for label, n in parts)
