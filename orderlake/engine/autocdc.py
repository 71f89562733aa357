"""AUTO CDC, SCD type 1, as a Delta MERGE guarded by the sequence.

- several changes to one key in a batch: only the one with the highest sequence is applied;
- a change older than what the target holds never overwrites it (the sequence is stored in the
  hidden column `__cdc_sequence`);
- applying the same batch twice changes nothing, so an at-least-once retry is safe;
- deletes leave a tombstone (key + sequence) so a late, older upsert cannot bring a row back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from delta.tables import DeltaTable
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orderlake.engine.delta_log import is_delta_table
from orderlake.engine.graph import AutoCdcFlow

SEQUENCE_COLUMN = "__cdc_sequence"
DELETE_COLUMN = "__cdc_delete"


@dataclass(frozen=True)
class CdcResult:
    """What the MERGE changed in the target (older or repeated changes change nothing)."""

    inserted: int
    updated: int
    deleted: int


def value_columns(flow: AutoCdcFlow, source_columns: list[str]) -> list[str]:
    """Target columns besides the keys, per column_list / except_column_list."""
    if flow.column_list:
        missing = sorted(set(flow.column_list) - set(source_columns))
        if missing:
            raise ValueError(f"column_list names columns not in {flow.source}: {missing}")
        chosen = list(flow.column_list)
    else:
        excluded = set(flow.except_column_list or [])
        chosen = [c for c in source_columns if c not in excluded]
    return [c for c in chosen if c not in flow.keys]


def _latest_per_key(batch: DataFrame, flow: AutoCdcFlow, values: list[str]) -> DataFrame:
    staged = batch.select(
        *flow.keys,
        *values,
        flow.sequence_by.alias(SEQUENCE_COLUMN),
        (
            F.coalesce(flow.apply_as_deletes, F.lit(False))
            if flow.apply_as_deletes is not None
            else F.lit(False)
        ).alias(DELETE_COLUMN),
    )
    # One row per key: the change with the highest sequence (a hash aggregate, no sort).
    latest = F.max_by(F.struct(*values, SEQUENCE_COLUMN, DELETE_COLUMN), F.col(SEQUENCE_COLUMN))
    return staged.groupBy(*flow.keys).agg(latest.alias("__latest")).select(*flow.keys, "__latest.*")


def _key_condition(keys: list[str], left: str, right: str) -> str:
    # Plain `=`: NULL keys never reach the MERGE, and `=` lets Spark use a hash join.
    return " AND ".join(f"{left}.`{k}` = {right}.`{k}`" for k in keys)


def apply_batch(
    spark: SparkSession,
    batch: DataFrame,
    flow: AutoCdcFlow,
    target_path: Path,
    tombstone_path: Path,
    table_properties: dict[str, str],
) -> CdcResult:
    """Merge one micro-batch of changes into the target. Rows with a NULL key are skipped."""
    values = value_columns(flow, batch.columns)
    key_present = F.lit(True)
    for key in flow.keys:
        key_present = key_present & F.col(key).isNotNull()
    latest = _latest_per_key(batch.where(key_present), flow, values)
    if flow.apply_as_deletes is not None:
        latest = latest.persist(StorageLevel.DISK_ONLY)  # read again for the tombstones
    changes = latest
    try:
        if flow.apply_as_deletes is not None and is_delta_table(tombstone_path):
            tomb = spark.read.format("delta").load(str(tombstone_path))
            changes = (
                changes.alias("c")
                .join(tomb.alias("t"), flow.keys, "left")
                .where(f"t.{SEQUENCE_COLUMN} IS NULL OR c.{SEQUENCE_COLUMN} > t.{SEQUENCE_COLUMN}")
                .select("c.*")
            )
        if not is_delta_table(target_path):
            _create(spark, changes.drop(DELETE_COLUMN), target_path, table_properties)
        target = DeltaTable.forPath(spark, str(target_path))
        newer = f"s.{SEQUENCE_COLUMN} > t.{SEQUENCE_COLUMN}"
        assignments = {f"`{c}`": f"s.`{c}`" for c in [*flow.keys, *values, SEQUENCE_COLUMN]}
        metrics = (
            target.alias("t")
            .merge(changes.alias("s"), _key_condition(flow.keys, "t", "s"))
            .whenMatchedDelete(condition=f"{newer} AND s.{DELETE_COLUMN}")
            .whenMatchedUpdate(condition=newer, set=assignments)
            .whenNotMatchedInsert(condition=f"NOT s.{DELETE_COLUMN}", values=assignments)
            .execute()
            .first()
        )
        if flow.apply_as_deletes is not None:
            _record_tombstones(spark, changes, flow, tombstone_path)
        return CdcResult(
            inserted=int(metrics["num_inserted_rows"]),
            updated=int(metrics["num_updated_rows"]),
            deleted=int(metrics["num_deleted_rows"]),
        )
    finally:
        latest.unpersist()


def _create(spark: SparkSession, rows: DataFrame, path: Path, properties: dict[str, str]) -> None:
    writer = rows.limit(0).write.format("delta").mode("errorifexists")
    for key, value in properties.items():
        if key.startswith("delta."):
            writer = writer.option(key, value)
    writer.save(str(path))


def _record_tombstones(
    spark: SparkSession, changes: DataFrame, flow: AutoCdcFlow, path: Path
) -> None:
    tombs = changes.where(F.col(DELETE_COLUMN)).select(*flow.keys, SEQUENCE_COLUMN)
    if not is_delta_table(path):
        tombs.limit(0).write.format("delta").save(str(path))
    (
        DeltaTable.forPath(spark, str(path))
        .alias("t")
        .merge(tombs.alias("s"), _key_condition(flow.keys, "t", "s"))
        .whenMatchedUpdateAll(condition=f"s.{SEQUENCE_COLUMN} > t.{SEQUENCE_COLUMN}")
        .whenNotMatchedInsertAll()
        .execute()
    )
