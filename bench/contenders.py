"""What the pipeline is measured against: the original design and a raw-append floor.

Both take plain folders (a volume with `source/` and `archive/`, Delta tables by path) so they
run on the same session and the same files as the pipeline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from orderlake.contract import COLUMN_NAMES

RAW_TEXT = StructType([StructField(name, StringType(), True) for name in COLUMN_NAMES])


def naive_update(spark: SparkSession, volume: Path, stage: Path, target: Path) -> None:
    """The original two notebooks, translated to local Spark (see shared/original-design.md).

    Read every file in source/ with schema inference, overwrite the stage table, move every
    file to archive/, then MERGE stage into target on tracking_num (or create the target).
    Unguarded: an older row overwrites a newer one, and a key twice in one batch fails.
    """
    source, archive = volume / "source", volume / "archive"
    df = spark.read.csv(str(source), header=True, inferSchema=True)
    df.write.format("delta").mode("overwrite").save(str(stage))
    archive.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        shutil.move(path, archive / path.name)
    stage_df = spark.read.format("delta").load(str(stage))
    if not DeltaTable.isDeltaTable(spark, str(target)):
        stage_df.write.format("delta").save(str(target))
        return
    (
        DeltaTable.forPath(spark, str(target))
        .alias("target")
        .merge(stage_df.alias("stage"), "stage.tracking_num = target.tracking_num")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def raw_append(spark: SparkSession, source: Path, table: Path) -> None:
    """The floor: CSV text straight into a Delta append. No inference, rules, merge or moves."""
    df = spark.read.schema(RAW_TEXT).option("header", "true").csv(str(source))
    df.write.format("delta").mode("append").save(str(table))
