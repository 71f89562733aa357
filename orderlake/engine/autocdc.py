"""AUTO CDC, SCD type 1, as a Delta MERGE guarded by the sequence.

- several changes to one key in a batch: only the one with the highest sequence is applied;
- a change older than what the target holds never overwrites it (the sequence is stored in the
  hidden column `__cdc_sequence`);
- applying the same batch twice changes nothing, so an at-least-once retry is safe; each
  commit carries the caller's tag (`userMetadata`), and a replay skips a table whose commit of
  that tag is already there;
- deletes leave a tombstone (key + sequence) so a late, older upsert cannot bring a row back;
- into an empty target, the latest change per key is appended: no MERGE is needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from delta.tables import DeltaTable
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from orderlake.engine.delta_log import holds_no_rows, is_delta_table, latest_commit_info
from orderlake.engine.graph import AutoCdcFlow

SEQUENCE_COLUMN = "__cdc_sequence"
DELETE_COLUMN = "__cdc_delete"
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


@dataclass(frozen=True)
class CdcResult:
    """What the batch changed in the target (older or repeated changes change nothing)."""

    inserted: int
    updated: int
    deleted: int
    changes: int = 0  # the latest change per key the batch held (what went into the MERGE)


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


@contextlib.contextmanager
def _tagged(spark: SparkSession, tag: str | None) -> Iterator[None]:
    """The userMetadata of the DML commits made inside (a MERGE takes no writer options)."""
    if tag is None:
        yield
        return
    spark.conf.set(USER_METADATA_CONF, tag)
    try:
        yield
    finally:
        spark.conf.unset(USER_METADATA_CONF)


def apply_batch(
    spark: SparkSession,
    batch: DataFrame,
    flow: AutoCdcFlow,
    target_path: Path,
    tombstone_path: Path,
    table_properties: dict[str, str],
    tag: str | None = None,
    skip: frozenset[Path] = frozenset(),
) -> CdcResult:
    """Apply one batch of changes to the target. Rows with a NULL key are skipped.

    Commits carry `tag`; tables in `skip` hold this batch already (a replay) and are left."""
    values = value_columns(flow, batch.columns)
    key_present = F.lit(True)
    for key in flow.keys:
        key_present = key_present & F.col(key).isNotNull()
    latest = _latest_per_key(batch.where(key_present), flow, values)
    deletes = flow.apply_as_deletes is not None
    if deletes:
        latest = latest.persist(StorageLevel.DISK_ONLY)  # read again for the tombstones
    changes = latest
    try:
        if deletes and is_delta_table(tombstone_path):
            tomb = spark.read.format("delta").load(str(tombstone_path))
            changes = (
                changes.alias("c")
                .join(tomb.alias("t"), flow.keys, "left")
                .where(f"t.{SEQUENCE_COLUMN} IS NULL OR c.{SEQUENCE_COLUMN} > t.{SEQUENCE_COLUMN}")
                .select("c.*")
            )
        if target_path in skip:
            result = CdcResult(0, 0, 0)
        elif is_delta_table(target_path) and not holds_no_rows(target_path):
            result = _merge(spark, changes, flow, values, target_path, tag)
        else:
            result = _first_load(changes, target_path, table_properties, tag)
        if deletes and tombstone_path not in skip:
            _record_tombstones(spark, changes, flow, tombstone_path, tag)
        return result
    finally:
        latest.unpersist()


def _merge(
    spark: SparkSession,
    changes: DataFrame,
    flow: AutoCdcFlow,
    values: list[str],
    target_path: Path,
    tag: str | None,
) -> CdcResult:
    target = DeltaTable.forPath(spark, str(target_path))
    newer = f"s.{SEQUENCE_COLUMN} > t.{SEQUENCE_COLUMN}"
    assignments = {f"`{c}`": f"s.`{c}`" for c in [*flow.keys, *values, SEQUENCE_COLUMN]}
    with _tagged(spark, tag):
        metrics = (
            target.alias("t")
            .merge(changes.alias("s"), _key_condition(flow.keys, "t", "s"))
            .whenMatchedDelete(condition=f"{newer} AND s.{DELETE_COLUMN}")
            .whenMatchedUpdate(condition=newer, set=assignments)
            .whenNotMatchedInsert(condition=f"NOT s.{DELETE_COLUMN}", values=assignments)
            .execute()
            .first()
        )
    if metrics is None:
        return CdcResult(0, 0, 0)
    info = latest_commit_info(target_path) or {}
    source_rows = int((info.get("operationMetrics") or {}).get("numSourceRows", 0))
    return CdcResult(
        inserted=int(metrics["num_inserted_rows"]),
        updated=int(metrics["num_updated_rows"]),
        deleted=int(metrics["num_deleted_rows"]),
        changes=source_rows,
    )


def _first_load(
    changes: DataFrame, path: Path, properties: dict[str, str], tag: str | None
) -> CdcResult:
    """Into a target with no rows every change is an insert (deletes find no row)."""
    writer = changes.where(~F.col(DELETE_COLUMN)).drop(DELETE_COLUMN).write.format("delta")
    for key, value in properties.items():
        if key.startswith("delta."):
            writer = writer.option(key, value)
    if tag is not None:
        writer = writer.option("userMetadata", tag)
    writer.mode("append").save(str(path))
    info = latest_commit_info(path) or {}
    inserted = int((info.get("operationMetrics") or {}).get("numOutputRows", 0))
    return CdcResult(inserted=inserted, updated=0, deleted=0, changes=inserted)


def empty_target(spark: SparkSession, source: DataFrame, flow: AutoCdcFlow) -> DataFrame:
    """No rows, with the columns the target gets from `source` (the flow's input)."""
    values = value_columns(flow, source.columns)
    rows = _latest_per_key(source.limit(0), flow, values).drop(DELETE_COLUMN)
    return spark.createDataFrame([], rows.schema)


def create_target(
    spark: SparkSession,
    source: DataFrame,
    flow: AutoCdcFlow,
    path: Path,
    properties: dict[str, str],
) -> None:
    """An empty target with the columns `source` (the flow's input) would give it."""
    writer = empty_target(spark, source, flow).write.format("delta").mode("errorifexists")
    for key, value in properties.items():
        if key.startswith("delta."):
            writer = writer.option(key, value)
    writer.save(str(path))


def _record_tombstones(
    spark: SparkSession, changes: DataFrame, flow: AutoCdcFlow, path: Path, tag: str | None
) -> None:
    tombs = changes.where(F.col(DELETE_COLUMN)).select(*flow.keys, SEQUENCE_COLUMN)
    if not is_delta_table(path):
        spark.createDataFrame([], tombs.schema).write.format("delta").save(str(path))
    with _tagged(spark, tag):
        (
            DeltaTable.forPath(spark, str(path))
            .alias("t")
            .merge(tombs.alias("s"), _key_condition(flow.keys, "t", "s"))
            .whenMatchedUpdateAll(condition=f"s.{SEQUENCE_COLUMN} > t.{SEQUENCE_COLUMN}")
            .whenNotMatchedInsertAll()
            .execute()
        )
