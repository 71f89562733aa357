"""Compaction of the pipeline's tables after an update, as Lakeflow's automatic maintenance.

Every update adds a few small files to each table it writes. Hundreds of them make every MERGE
and every read open hundreds of files: a 50-row update into a 220k-row target took 1.8-2.7 s
on fresh tables and 5.2-7.8 s after ~130 updates (docs/performance.md). So once a table holds
`min_files` files or more under `SMALL_FILE_BYTES` (1 MiB: a trickle's files; a client's big
file in bronze is left alone), they are bin-packed with Delta's OPTIMIZE:
- one atomic commit whose actions carry `dataChange=false`: readers see the same rows, and the
  engine's flows, which read what commits *appended*, see no new rows (`table_changes`);
- only files under `SMALL_FILE_BYTES` are rewritten (never a big file, not even for its
  deletion vector), so the cost follows the small files, not the table;
- a kill leaves the table as it was (unreferenced files at worst, for VACUUM).
`pipelines.autoOptimize.managed = "false"` in a table's properties turns it off for that table,
as on Databricks. `ORDERLAKE_COMPACT_MIN_FILES` sets `min_files` (0 turns it off everywhere).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from orderlake.engine.delta_log import newest_checksum
from orderlake.engine.faults import kill_point
from orderlake.engine.run.spark_settings import spark_settings
from orderlake.storage.path import AnyPath

MANAGED_PROPERTY = "pipelines.autoOptimize.managed"
MIN_FILES = 64
# A file whose opening costs more than reading it: a trickle's files, not the 6 MB bronze files
# of a client's 100k-row CSV (packing the 100 of a 10M-row first load took 20 s).
SMALL_FILE_BYTES = 2**20
PACKED_FILE_BYTES = 128 * 2**20
_OPTIMIZE_CONF = {
    "spark.databricks.delta.optimize.minFileSize": str(SMALL_FILE_BYTES),
    "spark.databricks.delta.optimize.maxFileSize": str(PACKED_FILE_BYTES),
    "spark.databricks.delta.optimize.maxDeletedRowsRatio": "1.0",
}


@dataclass(frozen=True)
class Compaction:
    table: str
    files_removed: int
    files_added: int
    seconds: float


def min_files() -> int:
    return int(os.environ.get("ORDERLAKE_COMPACT_MIN_FILES", MIN_FILES))


def is_managed(properties: dict[str, str]) -> bool:
    return str(properties.get(MANAGED_PROPERTY, "true")).strip().lower() != "false"


def small_files(checksum: dict[str, Any]) -> int | None:
    """How many live files are under SMALL_FILE_BYTES, from the checksum's file size
    histogram (its bins end at powers of two up to 8 MiB); None without a histogram."""
    histogram = checksum.get("fileSizeHistogram") or {}
    bounds, counts = histogram.get("sortedBinBoundaries"), histogram.get("fileCounts")
    if not bounds or not counts:
        return None
    ends = [*bounds[1:], float("inf")]
    return sum(int(n) for end, n in zip(ends, counts, strict=False) if end <= SMALL_FILE_BYTES)


def due_files(path: AnyPath, threshold: int) -> int | None:
    """The table's small files when there are `threshold` or more, else None. Read from the
    checksum Delta writes with each commit: the check costs no Spark job (DESCRIBE DETAIL
    costs one per table, 0.2-0.3 s an update). Without a histogram, every file counts as
    small when their average is."""
    if threshold <= 0:
        return None
    checksum = newest_checksum(path)
    if checksum is None or checksum.get("numFiles") is None:
        return None
    small = small_files(checksum)
    if small is None:
        files, size = int(checksum["numFiles"]), int(checksum.get("tableSizeBytes") or 0)
        small = files if size < files * SMALL_FILE_BYTES else 0
    return small if small >= threshold else None


def compact(spark: SparkSession, name: str, path: AnyPath) -> Compaction:
    """Bin-pack the table's small files in one commit."""
    started = time.monotonic()
    with spark_settings(spark, _OPTIMIZE_CONF):
        result = DeltaTable.forPath(spark, str(path)).optimize().executeCompaction().first()
    metrics = result["metrics"] if result is not None else None
    removed = int(metrics["numFilesRemoved"]) if metrics else 0
    added = int(metrics["numFilesAdded"]) if metrics else 0
    return Compaction(name, removed, added, time.monotonic() - started)


def compact_due(
    spark: SparkSession,
    tables: Iterable[tuple[str, AnyPath, dict[str, str]]],
    say: Callable[[str], None] = lambda message: None,
) -> list[Compaction]:
    """Compact every managed table of `tables` (name, path, properties) that is due."""
    threshold = min_files()
    done = []
    for name, path, properties in tables:
        files = due_files(path, threshold) if is_managed(properties) else None
        if files is not None:
            kill_point(f"before_compaction:{name}")
            say(f"{name}: compacting its {files} small files")
            packed = compact(spark, name, path)
            say(
                f"{name}: compacted {packed.files_removed} small files into "
                f"{packed.files_added} ({packed.seconds:.1f}s)"
            )
            done.append(packed)
    return done
