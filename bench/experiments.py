"""`python -m bench.experiments [--quick] [--big]`: which Delta settings make the SCD1 MERGE cheap.

Loads the initial data set with the pipeline, then replays the increment's MERGE (the engine's
own `apply_batch`, or a variant of its MERGE) against fresh copies of the target laid out in
different ways: deletion vectors on/off, few or many files, clustered on the key, a broadcast
of the changes, `=` instead of `<=>`, and an append instead of a MERGE for a first load.
Each variant prints its seconds and the MERGE's metrics from the Delta history.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from bench.data import drop_into
from bench.memory import cpu_seconds, descendants
from bench.profile import merge_metrics, table_files
from bench.run import TMP, pair_data, start_spark


def changes_of(spark, pipe, spec_name: str) -> tuple[DataFrame, object, list[str]]:
    """The increment's rows as the target flow sees them: bronze -> parsed -> latest per key."""
    from orderlake import transforms
    from orderlake.engine.dp.graph import AutoCdcFlow
    from orderlake.engine.run.autocdc import _latest_per_key, value_columns

    flow = next(f for f in pipe.graph.flows if isinstance(f, AutoCdcFlow))
    bronze = spark.read.format("delta").load(str(pipe.table_path("orders_bronze")))
    batch = transforms.parse_orders(bronze.where(F.col("_source_file").contains(spec_name)))
    values = value_columns(flow, batch.columns)
    return _latest_per_key(batch, flow, values), flow, values


def merge(
    spark, target: Path, changes: DataFrame, flow, values: list[str], *, nullsafe: bool = True
) -> None:
    """The engine's SCD1 MERGE (autocdc.apply_batch), minus deletes, with knobs."""
    from orderlake.engine.run.autocdc import SEQUENCE_COLUMN

    op = "<=>" if nullsafe else "="
    cond = " AND ".join(f"t.`{k}` {op} s.`{k}`" for k in flow.keys)
    assignments = {f"`{c}`": f"s.`{c}`" for c in [*flow.keys, *values, SEQUENCE_COLUMN]}
    newer = f"s.{SEQUENCE_COLUMN} > t.{SEQUENCE_COLUMN}"
    (
        DeltaTable.forPath(spark, str(target))
        .alias("t")
        .merge(changes.drop("__cdc_delete").alias("s"), cond)
        .whenMatchedUpdate(condition=newer, set=assignments)
        .whenNotMatchedInsert(values=assignments)
        .execute()
    )


def copy_target(
    spark, source: Path, dest: Path, files: int, props: dict[str, str], cluster: bool = False
) -> None:
    """Rewrite the target into `dest` with `files` files and the given table properties."""
    shutil.rmtree(dest, ignore_errors=True)
    df = spark.read.format("delta").load(str(source))
    if cluster:
        df.limit(0).write.format("delta").save(str(dest))
        spark.sql(f"ALTER TABLE delta.`{dest}` CLUSTER BY (tracking_num)")
        for k, v in props.items():
            spark.sql(f"ALTER TABLE delta.`{dest}` SET TBLPROPERTIES ('{k}' = '{v}')")
        df.repartition(files).write.format("delta").mode("append").save(str(dest))
        spark.sql(f"OPTIMIZE delta.`{dest}` FULL")
        return
    writer = df.repartition(files).write.format("delta")
    for k, v in props.items():
        writer = writer.option(k, v)
    writer.save(str(dest))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--big", action="store_true", help="use the big target pair")
    parser.add_argument("--only", action="append", default=[], help="run only these variants")
    parser.add_argument("--repeat", type=int, default=1, help="run each variant N times")
    parser.add_argument("--reuse", action="store_true", help="reuse the loaded tables of a run")
    args = parser.parse_args(argv)
    init, inc, data = pair_data(args.quick, args.big)
    work = (
        TMP
        / ("experiments_big" if args.big else "experiments")
        / ("quick" if args.quick else "full")
    )
    reuse = args.reuse and (work / "base_target").exists()
    if not reuse:
        shutil.rmtree(work, ignore_errors=True)
    spark = start_spark(work / "eventlog")
    from orderlake.engine.run.autocdc import apply_batch
    from orderlake.engine.run.runner import LocalPipeline

    pipe = LocalPipeline(volume_path=work / "volume", warehouse_path=work / "wh", spark=spark)
    if not reuse:
        drop_into(data[init.name], work / "volume" / "source")
        t0 = time.time()
        pipe.update()
        print(f"pipeline initial load of {init.rows:,} rows: {time.time() - t0:.1f} s")
        # Bronze gets the increment, but the target stays as the initial load left it.
        drop_into(data[inc.name], work / "volume" / "source")
        shutil.copytree(pipe.table_path("orders_target"), work / "base_target")
        pipe.update()
    base = work / "base_target"
    changes, flow, values = changes_of(spark, pipe, inc.name)
    changes = changes.persist()
    changes.count()
    n_base = spark.read.format("delta").load(str(base)).count()
    files0, mib0 = table_files(base)
    print(f"target {n_base:,} rows in {files0} files ({mib0:.0f} MiB); changes {changes.count():,}")
    dv = {"delta.enableDeletionVectors": "true"}
    no_dv = {"delta.enableDeletionVectors": "false"}
    target = work / "target"
    engine_batch = spark.read.format("delta").load(str(pipe.table_path("orders_bronze")))
    from orderlake import transforms

    batch = transforms.parse_orders(engine_batch.where(F.col("_source_file").contains(inc.name)))
    batch = batch.persist()
    batch.count()

    def engine(props: dict[str, str]) -> Callable[[], None]:
        return lambda: apply_batch(spark, batch, flow, target, work / "tomb", props)

    bc = F.broadcast(changes)
    variants: dict[str, tuple[int, dict[str, str], bool, Callable[[], None]]] = {
        "engine apply_batch, DV on, 4 files": (4, dv, False, engine(dv)),
        "engine apply_batch, DV off, 4 files": (4, no_dv, False, engine(no_dv)),
        "merge <=>, DV on, 4 files": (
            4,
            dv,
            False,
            lambda: merge(spark, target, changes, flow, values),
        ),
        "merge =, DV on, 4 files": (
            4,
            dv,
            False,
            lambda: merge(spark, target, changes, flow, values, nullsafe=False),
        ),
        "merge = + broadcast, DV on, 4 files": (
            4,
            dv,
            False,
            lambda: merge(spark, target, bc, flow, values, nullsafe=False),
        ),
        "merge = + broadcast, DV off, 4 files": (
            4,
            no_dv,
            False,
            lambda: merge(spark, target, bc, flow, values, nullsafe=False),
        ),
        "merge = + broadcast, DV on, 32 files": (
            32,
            dv,
            False,
            lambda: merge(spark, target, bc, flow, values, nullsafe=False),
        ),
        "merge = + broadcast, DV on, clustered 32": (
            32,
            dv,
            True,
            lambda: merge(spark, target, bc, flow, values, nullsafe=False),
        ),
    }
    chosen = [
        (name, v)
        for name, v in variants.items()
        if not args.only or any(o == name or o in name for o in args.only)
    ]
    for name, (files, props, cluster, run) in chosen * args.repeat:
        copy_target(spark, base, target, files, props, cluster)
        pids = [os.getpid(), *descendants(os.getpid())]
        cpu = sum(map(cpu_seconds, pids))
        start = time.time()
        run()
        seconds = time.time() - start
        cpu = sum(map(cpu_seconds, pids)) - cpu
        metrics = merge_metrics(spark, target)
        print(
            f"{name:<42} {seconds:6.1f} s {cpu:6.1f} CPU s  "
            f"files+{metrics.get('numTargetFilesAdded')} "
            f"-{metrics.get('numTargetFilesRemoved')} dv+"
            f"{metrics.get('numTargetDeletionVectorsAdded')} copied "
            f"{metrics.get('numTargetRowsCopied')} scan {metrics.get('scanTimeMs')} ms "
            f"rewrite {metrics.get('rewriteTimeMs')} ms",
            flush=True,
        )
    # A first load: MERGE into an empty target vs a plain append of the same rows.
    all_rows = spark.read.format("delta").load(str(base))
    first_loads = (("first load as MERGE", "merge"), ("first load as append", "append"))
    for name, how in first_loads if not args.only or "first load" in args.only else ():
        shutil.rmtree(target, ignore_errors=True)
        all_rows.limit(0).write.format("delta").save(str(target))
        start = time.time()
        if how == "merge":
            merge(spark, target, all_rows, flow, values, nullsafe=False)
        else:
            all_rows.write.format("delta").mode("append").save(str(target))
        print(f"{name:<42} {time.time() - start:6.1f} s", flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
