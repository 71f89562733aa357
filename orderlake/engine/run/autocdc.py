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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StructType

from orderlake.engine.delta_log import (
    holds_no_rows,
    is_delta_table,
    latest_commit_info,
    latest_version,
)
from orderlake.engine.dp.graph import AutoCdcFlow
from orderlake.engine.run import dv_upsert
from orderlake.engine.run.observed import RowCounts
from orderlake.engine.run.spark_settings import spark_settings

SEQUENCE_COLUMN = "__cdc_sequence"
DELETE_COLUMN = "__cdc_delete"
FRESH_COLUMN = "__cdc_fresh"  # ignore_null_updates: the key was deleted earlier in the batch
TRUNCATE_COLUMN = "__cdc_truncate"
START_AT, END_AT = "__START_AT", "__END_AT"  # SCD type 2 validity, typed like sequence_by
_INTERNAL = (DELETE_COLUMN, FRESH_COLUMN)
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
# A MERGE of a small batch broadcasts the batch's changes: finding the touched rows then reads
# the target without shuffling it (millions of rows). Spark would only do so under 10 MB. The
# bounds keep the broadcast under ~100 MB of the 2 GB driver heap: 200k bench rows (12 MB of
# Parquet) took 40-72 MB in memory.
BROADCAST_MAX_ROWS = 250_000
BROADCAST_MAX_BYTES = 16 * 2**20  # of the input's Parquet files
# A MERGE writes its changed rows through an outer join that keeps every change, so it cannot
# broadcast them and shuffles every row of the touched files: all of a big target, whose keys
# are scattered. A small batch also names its keys on the target's side of the condition, and
# only the rows they can match are shuffled. 1,000 keys into 2.2M rows: 6.4 s -> 5.4 s per
# update. A long list costs more than it saves: 20,000 keys made an update 3x slower (one py4j
# call per value) and, built inside the JVM, still 1.8x (every MERGE pass plans the list).
KEY_FILTER_MAX_ROWS = 1_000
# A broadcastable SCD1 batch skips the MERGE where the target allows (`dv_upsert`).
WITHOUT_MERGE = True


@dataclass(frozen=True)
class BatchSize:
    """A batch's input: rows, and the bytes of the Parquet files they were read from."""

    rows: int
    size: int

    def broadcastable(self) -> bool:
        return self.rows <= BROADCAST_MAX_ROWS and self.size <= BROADCAST_MAX_BYTES

    def names_its_keys(self) -> bool:
        return self.rows <= KEY_FILTER_MAX_ROWS


@dataclass(frozen=True)
class CdcResult:
    """What the batch changed in the target (older or repeated changes change nothing)."""

    inserted: int
    updated: int
    deleted: int  # target rows a change of the batch deleted
    changes: int = 0  # the latest change per key the batch held (what went into the MERGE)
    # Where the batch's rows went besides (SCD1; None when not counted, e.g. a skipped write):
    # rows in the batch, rows with a NULL key, rows dropped by a TRUNCATE in the batch, rows
    # collapsed into a later change of their key, changes that changed nothing.
    rows: int | None = None
    null_keys: int = 0
    truncated: int = 0
    collapsed: int = 0
    ignored: int = 0
    target_truncated: int = 0  # stored rows a TRUNCATE removed (not rows of the batch)

    def accounting(self) -> dict[str, int] | None:
        """The `num_*_rows` metrics (`accounting.py`) this batch fills, or None."""
        if self.rows is None:
            return None
        return {
            "num_null_key_rows": self.null_keys,
            "num_truncated_rows": self.truncated,
            "num_collapsed_rows": self.collapsed,
            "num_ignored_rows": self.ignored,
            "num_inserted_rows": self.inserted,
            "num_updated_rows": self.updated,
            "num_deleted_rows": self.deleted,
        }


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


def _staged(batch: DataFrame, flow: AutoCdcFlow, values: list[str]) -> DataFrame:
    """keys, values, the sequence and the delete flag of each change."""
    return batch.select(
        *flow.keys,
        *values,
        flow.sequence_by.alias(SEQUENCE_COLUMN),
        (
            F.coalesce(flow.apply_as_deletes, F.lit(False))
            if flow.apply_as_deletes is not None
            else F.lit(False)
        ).alias(DELETE_COLUMN),
    )


def _fill_nulls(staged: DataFrame, flow: AutoCdcFlow, values: list[str]) -> DataFrame:
    """ignore_null_updates inside a batch: a NULL takes the key's previous value in sequence
    order, never across a delete (after a delete the key starts again). `FRESH_COLUMN` marks
    changes with a delete before them in the batch: those must not take the target's values."""
    ordered = Window.partitionBy(*flow.keys).orderBy(SEQUENCE_COLUMN)
    upto = ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    deletes = F.sum(F.col(DELETE_COLUMN).cast("int")).over(upto)
    staged = staged.withColumn("__cdc_segment", deletes)
    segment = (
        Window.partitionBy(*flow.keys, "__cdc_segment")
        .orderBy(SEQUENCE_COLUMN)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    filled = [F.last(F.col(c), ignorenulls=True).over(segment).alias(c) for c in values]
    return staged.select(
        *flow.keys,
        *filled,
        SEQUENCE_COLUMN,
        DELETE_COLUMN,
        (F.col("__cdc_segment") > 0).alias(FRESH_COLUMN),
    )


def _latest_per_key(batch: DataFrame, flow: AutoCdcFlow, values: list[str]) -> DataFrame:
    staged = _staged(batch, flow, values)
    extra = []
    if flow.ignore_null_updates:
        staged, extra = _fill_nulls(staged, flow, values), [FRESH_COLUMN]
    # One row per key: the change with the highest sequence. A sort aggregate (the struct
    # buffer is not fixed-width); a window or a uniqueness check first measured no faster.
    latest = F.max_by(
        F.struct(*values, SEQUENCE_COLUMN, DELETE_COLUMN, *extra), F.col(SEQUENCE_COLUMN)
    )
    return staged.groupBy(*flow.keys).agg(latest.alias("__latest")).select(*flow.keys, "__latest.*")


def _literal(value: Any, data_type: DataType) -> Column:
    """A literal of `data_type` (a struct sequence gives a Row)."""
    if isinstance(data_type, StructType):
        return F.struct(
            *[_literal(value[f.name], f.dataType).alias(f.name) for f in data_type.fields]
        )
    return F.lit(value).cast(data_type)


def _truncated_before(batch: DataFrame, flow: AutoCdcFlow) -> tuple[DataFrame, Column | None]:
    """apply_as_truncates: (the changes after the batch's latest TRUNCATE, that TRUNCATE's
    sequence as a literal, or None when the batch holds none)."""
    if flow.apply_as_truncates is None:
        return batch, None
    flagged = batch.withColumn(
        TRUNCATE_COLUMN, F.coalesce(flow.apply_as_truncates, F.lit(False))
    ).withColumn("__cdc_seq_t", flow.sequence_by)
    row = flagged.where(TRUNCATE_COLUMN).agg(F.max("__cdc_seq_t").alias("t")).first()
    if row is None or row["t"] is None:
        return flagged.where(~F.col(TRUNCATE_COLUMN)).drop(TRUNCATE_COLUMN, "__cdc_seq_t"), None
    cut = _literal(row["t"], flagged.schema["__cdc_seq_t"].dataType)
    kept = flagged.where(~F.col(TRUNCATE_COLUMN) & (F.col("__cdc_seq_t") > cut))
    return kept.drop(TRUNCATE_COLUMN, "__cdc_seq_t"), cut


def _key_condition(keys: list[str], left: str, right: str) -> str:
    # Plain `=`: NULL keys never reach the MERGE, and `=` lets Spark use a hash join.
    return " AND ".join(f"{left}.`{k}` = {right}.`{k}`" for k in keys)


def _match(keys: list[str], only: Column | None) -> str | Column:
    on = _key_condition(keys, "t", "s")
    return on if only is None else F.expr(on) & only


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
    size: BatchSize | None = None,
) -> CdcResult:
    """Apply one batch of changes to the target. Rows with a NULL key are skipped.

    Commits carry `tag`; tables in `skip` hold this batch already (a replay) and are left.
    `size`, when known, is the batch's input size (a small batch's changes are broadcast)."""
    if flow.scd_type == 2:
        return apply_scd2(spark, batch, flow, target_path, table_properties, tag, skip)
    key_present = F.lit(True)
    for key in flow.keys:
        key_present = key_present & F.col(key).isNotNull()
    # Counted on the way by the write itself (observations): no Spark job of their own.
    arriving = RowCounts(batch, rows=F.count(F.lit(1)), null_keys=_count(~key_present))
    batch, truncated_before = _truncated_before(arriving.frame, flow)
    values = value_columns(flow, batch.columns)
    after_truncate: RowCounts | None = None
    if flow.apply_as_truncates is not None:  # the TRUNCATE events are not keyless rows
        after_truncate = RowCounts(batch, rows=F.count(F.lit(1)), null_keys=_count(~key_present))
        batch = after_truncate.frame
    latest = _latest_per_key(batch.where(key_present), flow, values)
    deletes = flow.apply_as_deletes is not None
    if deletes:
        latest = latest.persist(StorageLevel.DISK_ONLY)  # read again for the tombstones
    latest_counts = RowCounts(latest, rows=F.count(F.lit(1)))
    changes = latest_counts.frame
    cached: DataFrame | None = None
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
            only, result = None, None
            if size is not None and size.broadcastable() and truncated_before is None:
                changes = changes.persist(StorageLevel.MEMORY_AND_DISK)
                cached = changes
                if size.names_its_keys():
                    only = _key_filter(changes, flow.keys)
                if WITHOUT_MERGE:
                    result = _upsert(spark, changes, flow, values, only, target_path, tag)
            if result is None:
                if size is not None and size.broadcastable():
                    changes = F.broadcast(changes)
                result = _merge(
                    spark, changes, flow, values, target_path, tag, truncated_before, only
                )
        else:
            result = _first_load(changes, target_path, table_properties, tag)
        if deletes and tombstone_path not in skip:
            _record_tombstones(spark, changes, flow, tombstone_path, tag)
        if target_path in skip:
            return result
        return _accounted(result, arriving, after_truncate, latest_counts)
    finally:
        latest.unpersist()
        if cached is not None:
            cached.unpersist()


_EXCLUDED_RULES = "spark.sql.adaptive.optimizer.excludedRules"
_EMPTY_RELATION_RULE = "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"


def _empty_joins_kept(spark: SparkSession) -> dict[str, str]:
    """Adaptive execution's rules with the one that replaces a join with an empty side left
    out, besides any the session already leaves out."""
    given = (spark.conf.get(_EXCLUDED_RULES, None) or "").split(",")
    excluded = [r.strip() for r in given if r.strip()]
    if _EMPTY_RELATION_RULE not in excluded:
        excluded.append(_EMPTY_RELATION_RULE)
    return {_EXCLUDED_RULES: ",".join(excluded)}


def _upsert(
    spark: SparkSession,
    changes: DataFrame,
    flow: AutoCdcFlow,
    values: list[str],
    only: Column | None,
    target_path: Path,
    tag: str | None,
) -> CdcResult | None:
    """A broadcastable batch's changes in one commit without MERGE (`dv_upsert`), or None
    when the target needs a MERGE."""
    fresh = FRESH_COLUMN if flow.ignore_null_updates else None
    # Adaptive execution must keep joins with an empty side: replacing one, once the changes'
    # cache is filled, loses the rows counted on the way (a batch its tombstones drop whole).
    with _tagged(spark, tag), spark_settings(spark, _empty_joins_kept(spark)):
        counts = dv_upsert.upsert(
            spark, changes, flow.keys, values, only, target_path, SEQUENCE_COLUMN,
            DELETE_COLUMN, fresh,
        )
    if counts is None:
        return None
    return CdcResult(inserted=counts.inserted, updated=counts.updated, deleted=counts.deleted,
                     changes=counts.changes)


def _key_filter(changes: DataFrame, keys: list[str]) -> Column:
    """A condition on the target alone that holds for every row a change can match (each key
    column against its own values: for compound keys a superset, never less)."""
    rows = changes.select(*keys).collect()
    condition = F.lit(True)
    for i, key in enumerate(keys):
        condition = condition & F.col(f"t.`{key}`").isin(sorted({r[i] for r in rows}))
    return condition


def _count(condition: Column) -> Column:
    return F.sum(F.when(condition, 1).otherwise(0))


def _accounted(
    result: CdcResult, arriving: RowCounts, after_truncate: RowCounts | None, latest: RowCounts
) -> CdcResult:
    """The result with every row of the batch in one bucket; unchanged when a count is
    missing (then nothing is claimed)."""
    seen, changes = arriving.values(), latest.values()
    kept = after_truncate.values() if after_truncate is not None else seen
    if seen is None or changes is None or kept is None:
        return result
    with_key = kept["rows"] - kept["null_keys"]
    applied = result.inserted + result.updated + result.deleted
    return replace(
        result,
        changes=changes["rows"],
        rows=seen["rows"],
        null_keys=kept["null_keys"],
        truncated=seen["rows"] - kept["rows"],
        collapsed=with_key - changes["rows"],
        ignored=changes["rows"] - applied,
    )


def _merge(
    spark: SparkSession,
    changes: DataFrame,
    flow: AutoCdcFlow,
    values: list[str],
    target_path: Path,
    tag: str | None,
    truncated_before: Column | None = None,
    only: Column | None = None,
) -> CdcResult:
    """One MERGE: newer changes update or delete, new keys insert; with a TRUNCATE in the
    batch, the target rows older than it go in the same commit."""
    target = DeltaTable.forPath(spark, str(target_path))
    newer = f"s.{SEQUENCE_COLUMN} > t.{SEQUENCE_COLUMN}"
    inserts = {f"`{c}`": f"s.`{c}`" for c in [*flow.keys, *values, SEQUENCE_COLUMN]}
    updates = dict(inserts)
    if flow.ignore_null_updates:
        # A NULL keeps the stored value, unless the key was deleted earlier in the batch.
        for c in values:
            updates[f"`{c}`"] = (
                f"CASE WHEN s.{FRESH_COLUMN} THEN s.`{c}` ELSE coalesce(s.`{c}`, t.`{c}`) END"
            )
    with _tagged(spark, tag):
        merge = (
            target.alias("t")
            .merge(changes.alias("s"), _match(flow.keys, only))
            .whenMatchedDelete(condition=f"{newer} AND s.{DELETE_COLUMN}")
            .whenMatchedUpdate(condition=newer, set=updates)
            .whenNotMatchedInsert(condition=f"NOT s.{DELETE_COLUMN}", values=inserts)
        )
        if truncated_before is not None:
            merge = merge.whenNotMatchedBySourceDelete(
                condition=F.col(f"t.{SEQUENCE_COLUMN}") < truncated_before
            )
        before = latest_version(target_path)
        metrics = merge.execute().first()
    if metrics is None:
        return CdcResult(0, 0, 0)
    info = (latest_commit_info(target_path) or {}) if latest_version(target_path) != before else {}
    commit = info.get("operationMetrics") or {}
    deleted = int(metrics["num_deleted_rows"])
    # A TRUNCATE's deletes are stored rows, not changes of the batch: counted apart.
    truncated = int(commit.get("numTargetRowsNotMatchedBySourceDeleted", 0))
    return CdcResult(
        inserted=int(metrics["num_inserted_rows"]),
        updated=int(metrics["num_updated_rows"]),
        deleted=int(commit.get("numTargetRowsMatchedDeleted", deleted - truncated)),
        changes=int(commit.get("numSourceRows", 0)),
        target_truncated=truncated,
    )


def _first_load(
    changes: DataFrame, path: Path, properties: dict[str, str], tag: str | None
) -> CdcResult:
    """Into a target with no rows every change is an insert (deletes find no row)."""
    rows = changes.where(~F.col(DELETE_COLUMN)).drop(*_INTERNAL)
    writer = rows.write.format("delta")
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
    if flow.scd_type == 2:
        staged = _staged(source.limit(0), flow, values)
        sequence = staged.schema[SEQUENCE_COLUMN].dataType
        rows = staged.select(
            *flow.keys,
            *values,
            F.col(SEQUENCE_COLUMN).alias(START_AT),
            F.lit(None).cast(sequence).alias(END_AT),
        )
    else:
        rows = _latest_per_key(source.limit(0), flow, values).drop(*_INTERNAL)
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


# SCD type 2 -----------------------------------------------------------------------------------


def tracked_columns(flow: AutoCdcFlow, values: list[str]) -> list[str]:
    """The columns whose change starts a new version (track_history_*; default: all)."""
    if flow.track_history_column_list:
        missing = sorted(set(flow.track_history_column_list) - set(values))
        if missing:
            raise ValueError(
                f"track_history_column_list names columns not in the target: {missing}"
            )
        return [c for c in values if c in flow.track_history_column_list]
    excluded = set(flow.track_history_except_column_list or [])
    return [c for c in values if c not in excluded]


def _history_events(target: DataFrame, flow: AutoCdcFlow, values: list[str]) -> DataFrame:
    """The changes a stored history stands for: an upsert at each version's __START_AT, and a
    delete at each __END_AT that no version of the key starts at."""
    upserts = target.select(
        *flow.keys,
        *values,
        F.col(START_AT).alias(SEQUENCE_COLUMN),
        F.lit(False).alias(DELETE_COLUMN),
    )
    starts = target.select(*flow.keys, F.col(START_AT).alias("__cdc_next"))
    closed = target.where(F.col(END_AT).isNotNull())
    deletes = closed.join(
        starts,
        [*[closed[k] == starts[k] for k in flow.keys], closed[END_AT] == starts["__cdc_next"]],
        "left_anti",
    ).select(
        *flow.keys,
        *[F.lit(None).cast(target.schema[c].dataType).alias(c) for c in values],
        F.col(END_AT).alias(SEQUENCE_COLUMN),
        F.lit(True).alias(DELETE_COLUMN),
    )
    return upserts.unionByName(deletes)


def _versions(events: DataFrame, flow: AutoCdcFlow, values: list[str]) -> DataFrame:
    """A key's history from its changes in sequence order: an upsert whose tracked columns
    differ from the change before it (or that follows a delete, or comes first) opens a
    version; any other upsert updates the open version in place; the next version or a delete
    closes it (__END_AT)."""
    tracked = tracked_columns(flow, values)
    # One change per key and sequence: a change of this batch replaces the stored one.
    per_seq = Window.partitionBy(*flow.keys, SEQUENCE_COLUMN).orderBy(F.col("__cdc_new").desc())
    events = events.withColumn("__cdc_rank", F.row_number().over(per_seq)).where("__cdc_rank = 1")
    ordered = Window.partitionBy(*flow.keys).orderBy(SEQUENCE_COLUMN)
    upto = ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    if flow.ignore_null_updates:
        events = events.withColumn(
            "__cdc_segment", F.sum(F.col(DELETE_COLUMN).cast("int")).over(upto)
        )
        segment = (
            Window.partitionBy(*flow.keys, "__cdc_segment")
            .orderBy(SEQUENCE_COLUMN)
            .rowsBetween(Window.unboundedPreceding, Window.currentRow)
        )
        for c in values:
            events = events.withColumn(c, F.last(F.col(c), ignorenulls=True).over(segment))
    state = F.struct(*[F.col(c) for c in tracked]) if tracked else F.lit(True)
    previous_deleted = F.lag(DELETE_COLUMN).over(ordered)
    opens = ~F.col(DELETE_COLUMN) & (
        previous_deleted.isNull() | previous_deleted | ~F.lag(state).over(ordered).eqNullSafe(state)
    )
    staged = events.select(
        *flow.keys,
        *values,
        SEQUENCE_COLUMN,
        DELETE_COLUMN,
        F.sum(opens.cast("int")).over(upto).alias("__cdc_version"),
        F.lead(SEQUENCE_COLUMN).over(ordered).alias("__cdc_next"),
    )
    latest = F.max_by(F.struct(*values, "__cdc_next"), F.col(SEQUENCE_COLUMN))
    return (
        staged.where(~F.col(DELETE_COLUMN))
        .groupBy(*flow.keys, "__cdc_version")
        .agg(F.min(SEQUENCE_COLUMN).alias(START_AT), latest.alias("__latest"))
        .select(
            *flow.keys,
            *[F.col(f"__latest.{c}").alias(c) for c in values],
            F.col(START_AT),
            F.col("__latest.__cdc_next").alias(END_AT),
        )
    )


def apply_scd2(
    spark: SparkSession,
    batch: DataFrame,
    flow: AutoCdcFlow,
    target_path: Path,
    table_properties: dict[str, str],
    tag: str | None = None,
    skip: frozenset[Path] = frozenset(),
) -> CdcResult:
    """Keep every version of each key (SCD type 2). The history of each key the batch touches
    is rebuilt from its stored versions plus the batch's changes, so a late change lands in
    the right place of the history; one MERGE writes the difference (rows of rebuilt
    histories updated or inserted, versions that no longer exist deleted). Re-applying a batch
    rebuilds the same histories: nothing changes."""
    if target_path in skip:
        return CdcResult(0, 0, 0)
    values = value_columns(flow, batch.columns)
    key_present = F.lit(True)
    for key in flow.keys:
        key_present = key_present & F.col(key).isNotNull()
    changes = _staged(batch.where(key_present), flow, values).withColumn("__cdc_new", F.lit(1))
    stored = is_delta_table(target_path) and not holds_no_rows(target_path)
    if not stored:
        rows = _versions(changes, flow, values)
        writer = rows.write.format("delta")
        for key, value in table_properties.items():
            if key.startswith("delta."):
                writer = writer.option(key, value)
        if tag is not None:
            writer = writer.option("userMetadata", tag)
        writer.mode("append").save(str(target_path))
        info = latest_commit_info(target_path) or {}
        inserted = int((info.get("operationMetrics") or {}).get("numOutputRows", 0))
        return CdcResult(inserted=inserted, updated=0, deleted=0, changes=inserted)
    changes = changes.persist(StorageLevel.DISK_ONLY)
    try:
        target = spark.read.format("delta").load(str(target_path))
        touched = changes.select(*flow.keys).distinct()
        history = target.join(touched, flow.keys, "left_semi")
        old = _history_events(history, flow, values).withColumn("__cdc_new", F.lit(0))
        rebuilt = _versions(changes.unionByName(old), flow, values)
        gone = history.join(
            rebuilt.select(*flow.keys, START_AT), [*flow.keys, START_AT], "left_anti"
        )
        diff = rebuilt.withColumn("__cdc_gone", F.lit(False)).unionByName(
            gone.withColumn("__cdc_gone", F.lit(True))
        )
        columns = [*flow.keys, *values, START_AT, END_AT]
        assignments = {f"`{c}`": f"s.`{c}`" for c in columns}
        same = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in [*values, END_AT])
        match = f"{_key_condition(flow.keys, 't', 's')} AND t.{START_AT} = s.{START_AT}"
        with _tagged(spark, tag):
            metrics = (
                DeltaTable.forPath(spark, str(target_path))
                .alias("t")
                .merge(diff.alias("s"), match)
                .whenMatchedDelete(condition="s.__cdc_gone")
                .whenMatchedUpdate(condition=f"NOT ({same})", set=assignments)
                .whenNotMatchedInsert(condition="NOT s.__cdc_gone", values=assignments)
                .execute()
                .first()
            )
    finally:
        changes.unpersist()
    if metrics is None:
        return CdcResult(0, 0, 0)
    return CdcResult(
        inserted=int(metrics["num_inserted_rows"]),
        updated=int(metrics["num_updated_rows"]),
        deleted=int(metrics["num_deleted_rows"]),
    )
