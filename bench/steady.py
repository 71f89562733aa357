"""`python -m bench.steady [--updates N]`: small updates over a long run, with and without
compaction (orderlake/engine/run/maintenance.py).

Two warehouses load the same 200k-row first load; then N small files (50 rows, 30% of them
updates of keys the first load holds) are each loaded by one `update()` into both, alternating
which goes first, on one warm session. Prints the update seconds at the start and the end of
the run and the target's file count, and writes bench/results/steady.json. Measures what
`watch` does all day: the benchmark's other figures start from fresh tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.data import build, drop_into
from bench.latency import UPDATE_RATIO
from bench.report import machine_info
from bench.run import RESULTS, SIZES, TMP, start_spark
from orderlake.synthetic import generate_order_files


def _files(table: Path) -> int:
    from delta.tables import DeltaTable
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    return int(DeltaTable.forPath(spark, str(table)).detail().first()["numFiles"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steady", description=__doc__)
    parser.add_argument("--updates", type=int, default=150)
    parser.add_argument("--rows", type=int, default=50)
    args = parser.parse_args(argv)
    from orderlake.engine.run import maintenance
    from orderlake.engine.run.runner import LocalPipeline

    spec = SIZES["quick"].initial
    data = build(spec, TMP / "data", {})
    work = TMP / "steady"
    shutil.rmtree(work, ignore_errors=True)
    spark = start_spark(work / "eventlog")
    modes = {"compacted": maintenance.MIN_FILES, "never compacted": 0}
    pipes = {}
    for mode in modes:
        root = work / mode.replace(" ", "_")
        drop_into(data, root / "volume" / "source")
        pipes[mode] = LocalPipeline(root / "volume", root / "warehouse", spark=spark)
        pipes[mode].update()
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    staging = work / "staging"
    for i in range(args.updates):
        made = generate_order_files(
            staging, rows=args.rows, files=1, update_ratio=UPDATE_RATIO, unique_keys=True,
            seed=5000 + i, start=datetime(2027, 6, 1, tzinfo=UTC) + timedelta(hours=i),
            name_prefix=f"steady{i:04d}", existing_keys=data.new_keys,
        )
        order = list(modes) if i % 2 == 0 else list(reversed(modes))
        for mode in order:
            shutil.copy(made.paths[0], pipes[mode].volume_path / "source" / made.paths[0].name)
            os.environ["ORDERLAKE_COMPACT_MIN_FILES"] = str(modes[mode])
            start = time.perf_counter()
            pipes[mode].update()
            seconds[mode].append(time.perf_counter() - start)
        made.paths[0].unlink()
        if (i + 1) % 25 == 0:
            print(f"[steady] {i + 1} updates", {m: round(s[-1], 2) for m, s in seconds.items()},
                  flush=True)
    os.environ.pop("ORDERLAKE_COMPACT_MIN_FILES", None)
    window = min(20, args.updates // 3)
    result = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": machine_info(spark.version, "")["commit"],
        "updates": args.updates,
        "rows_per_update": args.rows,
        "first_load_rows": spec.rows,
        "update_ratio": UPDATE_RATIO,
        "min_files": maintenance.MIN_FILES,
    }
    for mode, times in seconds.items():
        result[mode] = {
            f"median first {window}": round(statistics.median(times[:window]), 2),
            f"median last {window}": round(statistics.median(times[-window:]), 2),
            "max": round(max(times), 2),
            "total s": round(sum(times), 1),
            "target files at the end": _files(pipes[mode].table_path("orders_target")),
            "bronze files at the end": _files(pipes[mode].table_path("orders_bronze")),
        }
        print(mode, result[mode], flush=True)
    out = RESULTS / "steady.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"[steady] wrote {out}")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
