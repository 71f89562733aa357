"""Watch-mode latency: a file lands in source/ -> its rows are visible in orders_target.

Runs the engine's file-arrival loop (`orderlake.engine.watch.watch`) in a thread on the warm
session and the already-loaded small target, drops small files one at a time (atomic rename),
and takes as the moment of visibility the mtime of the first Delta commit of orders_target that
holds the file's new key (checked by time travel, so polling never delays the pipeline).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import functions as F

from orderlake.synthetic import generate_order_files

# Local trigger timings for the measurement (the bundle's job uses Databricks' 60 s minimum).
WAIT_AFTER_LAST_CHANGE_S = 0.5
POLL_S = 0.25
TIMEOUT_S = 300.0
UPDATE_RATIO = 0.3
START = datetime(2027, 1, 1, tzinfo=UTC)  # later than every benchmark data set


def _versions(log: Path) -> dict[int, float]:
    """Commit version -> commit file mtime, from the table's _delta_log."""
    found = {}
    for entry in os.scandir(log):
        name = entry.name
        if name.endswith(".json") and name[:-5].isdigit():
            found[int(name[:-5])] = entry.stat().st_mtime
    return found


def _holds(spark, table: Path, version: int, key: str) -> bool:
    df = spark.read.format("delta").option("versionAsOf", version).load(str(table))
    return df.where(F.col("tracking_num") == key).limit(1).count() > 0


def measure_watch(b, files: int, rows: int, target_keys: Sequence[str]) -> dict:
    """p50/p95/max seconds from landing to visibility over `files` files of `rows` rows.

    Like an increment, 30% of each file's rows update keys the target holds (`target_keys`):
    an update costs a MERGE far more than an insert (it reads the touched files)."""
    from orderlake.engine.run.runner import LocalPipeline
    from orderlake.engine.watch import TriggerTimings, watch

    root = b.work / "pipeline" / "small"
    pipe = LocalPipeline(
        volume_path=root / "volume", warehouse_path=root / "warehouse", spark=b.spark
    )
    source = root / "volume" / "source"
    staging = b.work / "watch_staging"
    table = pipe.table_path("orders_target")
    log = table / "_delta_log"
    timings = TriggerTimings(WAIT_AFTER_LAST_CHANGE_S, 0.0, POLL_S)
    done = threading.Event()

    def loop() -> None:
        try:
            watch(
                source,
                pipe.update,
                timings,
                max_updates=files,
                idle_exit_seconds=TIMEOUT_S,
                log=lambda message: None,
                between_updates=pipe.warm_up,  # as `orderlake watch` does
            )
        finally:
            done.set()

    thread = threading.Thread(target=loop, name="bench-watch", daemon=True)
    start = time.time()
    latencies: list[float] = []
    b.sampler.take_peak()
    thread.start()
    for i in range(files):
        made = generate_order_files(
            staging,
            rows=rows,
            files=1,
            update_ratio=UPDATE_RATIO,
            unique_keys=True,
            existing_keys=target_keys,
            seed=1000 + i,
            start=START + timedelta(hours=i),
            name_prefix=f"watch{i:03d}",
        )
        key = made.new_keys[0]
        seen = set(_versions(log))
        landed = time.time()
        os.replace(made.paths[0], source / made.paths[0].name)
        latencies.append(_wait_visible(b.spark, table, log, seen, key, landed, done))
    thread.join(timeout=TIMEOUT_S)
    peak = b.sampler.take_peak()
    return {
        "n": len(latencies),
        "rows_per_file": rows,
        "p50": statistics.median(latencies),
        "p95": _percentile(latencies, 0.95),
        "max": max(latencies),
        "all": [round(x, 3) for x in latencies],
        "seconds": round(time.time() - start, 1),
        "peak_rss_mb": round(peak / 2**20),
        "update_ratio": UPDATE_RATIO,
        "trigger": {"wait_after_last_change_s": WAIT_AFTER_LAST_CHANGE_S, "poll_s": POLL_S},
    }


def _wait_visible(
    spark, table: Path, log: Path, seen: set[int], key: str, landed: float, done: threading.Event
) -> float:
    deadline = landed + TIMEOUT_S
    while time.time() < deadline:
        for version, mtime in sorted(_versions(log).items()):
            if version in seen:
                continue
            seen.add(version)
            if _holds(spark, table, version, key):
                return max(0.0, mtime - landed)
        if done.is_set():
            break
        time.sleep(0.05)
    raise TimeoutError(f"rows of key {key} never became visible in {table}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
