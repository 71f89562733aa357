"""`python -m bench.profile [--quick]`: where an update's time goes, without touching the engine.

Wraps the engine's stages (ingest, each flow, expectations, the CDC merge) with timers, runs an
initial and an incremental update, and prints each stage's seconds, the Spark jobs per update
and the MERGE's own metrics from the Delta history (files rewritten, deletion vectors, ...).
Extra Spark or table settings to try go in with --conf key=value / --prop key=value.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from bench import jobs
from bench.data import drop_into
from bench.run import TMP, pair_data, start_spark

TIMES: dict[str, float] = defaultdict(float)


def timed(name: str, func: Callable) -> Callable:
    """Time `func`, and label the Spark jobs it starts with `name` (innermost label wins)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from pyspark import SparkContext

        sc = SparkContext._active_spark_context
        outer = sc.getLocalProperty("spark.job.description") if sc else None
        if sc:
            sc.setJobDescription(name.strip())
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            TIMES[name] += time.perf_counter() - start
            if sc:
                sc.setJobDescription(outer)

    return wrapper


def _wrap(module: object, attr: str, label: str) -> None:
    """Time `module.attr` if the engine still has it (its internals move as it evolves)."""
    if hasattr(module, attr):
        setattr(module, attr, timed(label, getattr(module, attr)))


def instrument() -> None:
    """Patch timers around the engine's stages (module attributes, not the files)."""
    from delta.tables import DeltaMergeBuilder

    from orderlake.engine.autoloader import ingest
    from orderlake.engine.run import flows, runner

    _wrap(runner, "run_ingest", "ingest (total)")
    _wrap(ingest, "_plan", "ingest: inspect files (Python)")
    _wrap(ingest, "_archive", "ingest: archive moves")
    _wrap(ingest, "_rows_written", "ingest: read back row count")
    _wrap(ingest, "recover", "ingest: recover")
    _wrap(runner.LocalPipeline, "_append", "bronze/quarantine appends")
    _wrap(flows, "enforce", "flow: expectations")
    _wrap(flows, "apply_batch", "flow: AUTO CDC apply_batch")
    _wrap(DeltaMergeBuilder, "execute", "  of which MERGE execute")
    _wrap(runner, "run_flows", "flows (total)")
    _wrap(runner.LocalPipeline, "_register", "catalog registration")
    _wrap(runner.LocalPipeline, "_prepare", "prepare")


def merge_metrics(spark, table: Path) -> dict:
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, str(table)).history(5).collect()
    for row in history:
        if row.operation == "MERGE":
            keep = (
                "numTargetFilesAdded numTargetFilesRemoved numTargetRowsCopied "
                "numTargetRowsUpdated numTargetRowsInserted numTargetDeletionVectorsAdded "
                "numTargetDeletionVectorsRemoved executionTimeMs scanTimeMs rewriteTimeMs"
            ).split()
            return {k: row.operationMetrics.get(k) for k in keep if k in row.operationMetrics}
    return {}


def table_files(table: Path) -> tuple[int, float]:
    files = [p for p in table.glob("**/*.parquet")]
    return len(files), sum(p.stat().st_size for p in files) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--big", action="store_true", help="use the big target pair")
    parser.add_argument("--jobs", action="store_true", help="print each Spark job's time")
    parser.add_argument("--conf", action="append", default=[], help="spark conf key=value")
    args = parser.parse_args(argv)
    init, inc, data = pair_data(args.quick, args.big)
    work = TMP / "profile"
    shutil.rmtree(work, ignore_errors=True)
    spark = start_spark(work / "eventlog")
    for item in args.conf:
        key, value = item.split("=", 1)
        spark.conf.set(key, value)
    instrument()
    from orderlake.engine.run.runner import LocalPipeline

    pipe = LocalPipeline(volume_path=work / "volume", warehouse_path=work / "wh", spark=spark)
    target = pipe.table_path("orders_target")
    windows = []
    for label, spec in (("initial", init), ("incremental", inc)):
        TIMES.clear()
        drop_into(data[spec.name], work / "volume" / "source")
        start = time.time()
        pipe.update()
        seconds = time.time() - start
        windows.append((label, start, time.time()))
        print(f"\n== {label}: {spec.rows:,} rows in {seconds:.1f} s")
        for name, value in TIMES.items():
            print(f"  {name:<40} {value:7.2f} s")
        print("  merge:", json.dumps(merge_metrics(spark, target)))
        files, mib = table_files(target)
        print(f"  target files / MiB: {files} / {mib:.0f}")
    spark.stop()
    times = jobs.job_start_times(work / "eventlog")
    spans = jobs.job_spans(work / "eventlog")
    for label, start, end in windows:
        print(f"  spark jobs during {label}: {jobs.count_in(times, start, end)}")
        if args.jobs:
            for begin, finish, site in spans:
                if start * 1000 <= begin <= end * 1000:
                    at, took = begin / 1000 - start, (finish - begin) / 1000
                    print(f"    +{at:6.2f}s {took:6.2f}s  {site}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
