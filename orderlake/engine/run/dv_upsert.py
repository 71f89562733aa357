"""An SCD1 batch of changes applied in one Delta commit without MERGE.

A Delta MERGE reads the files it touches three times (to find them, to write the changed
rows, and again for the deletion vectors), shuffles every row of them to write the changed
ones, and then re-reads their statistics. Here the target's keys are read once, with each
stored row's file and row index, from the transaction's own file list (a few keys: those
files read as Parquet, the driver dropping the candidates their deletion vectors delete;
more: a Delta scan of the listed files, no data-skipping jobs first); the decision (insert,
replace, delete, ignore) is made by Spark with the MERGE's own conditions; Delta's writer
writes the new rows, the replaced rows get deletion vectors, and all of it goes into one
commit of an optimistic transaction, tagged like a MERGE's. The table is the one a MERGE
would leave.

It runs only where it is known to be equivalent: a classic (py4j) session, an unpartitioned
target with deletion vectors and without change data feed, row tracking, column mapping,
type widening or generated columns, whose columns are the changes' own. Elsewhere `upsert`
returns None and the caller MERGEs.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from orderlake.engine.run.spark_settings import spark_settings

_DELTA = "org.apache.spark.sql.delta"
_REFUSED_CONFIG = ("delta.enableChangeDataFeed", "delta.enableRowTracking")
_REFUSED_FEATURES = (
    "rowTracking", "columnMapping", "generatedColumns", "identityColumns",
    "typeWidening", "typeWidening-preview",  # older files hold narrower types than the schema
)
# What each change does, decided in Spark (sequence comparisons keep Spark's semantics).
INSERT, UPDATE, DELETE, IGNORE = 1, 2, 3, 0
_ACTION = "__dv_action"
_FILE, _ROW = "__dv_file", "__dv_row"


@dataclass(frozen=True)
class Applied:
    """What the changes did: target rows inserted, updated and deleted, of `changes`."""

    inserted: int
    updated: int
    deleted: int
    changes: int

    def metrics(self) -> dict[str, int]:
        """The MERGE metrics Delta records in the commit's history."""
        return {
            "operationNumSourceRows": self.changes,
            "numTargetRowsInserted": self.inserted,
            "numTargetRowsUpdated": self.updated,
            "numTargetRowsMatchedUpdated": self.updated,
            "numTargetRowsNotMatchedBySourceUpdated": 0,
            "numTargetRowsDeleted": self.deleted,
            "numTargetRowsMatchedDeleted": self.deleted,
            "numTargetRowsNotMatchedBySourceDeleted": 0,
            "numTargetRowsCopied": 0,
            "numOutputRows": self.inserted + self.updated,
            "numTargetFilesRemoved": 0,
            "numTargetChangeFilesAdded": 0,
        }


def _jvm_of(spark: SparkSession) -> Any | None:
    """The session's JVM view, or None on Spark Connect (no py4j gateway)."""
    return getattr(spark, "_jvm", None) if hasattr(spark, "_jsparkSession") else None


def _object(jvm: Any, name: str) -> Any:
    """A Scala `object` (its module instance: no static forwarders for some)."""
    return getattr(getattr(jvm, f"{_DELTA}.{name}$"), "MODULE$")


def _option_value(option: Any) -> Any:
    return option.get() if option.isDefined() else None


def _plain(snapshot: Any, schema: dict[str, Any]) -> bool:
    """A target (its snapshot and parsed schema) this path writes exactly as a MERGE would."""
    metadata = snapshot.metadata()
    config = metadata.configuration()
    if str(_option_value(config.get("delta.enableDeletionVectors"))).lower() != "true":
        return False
    if any(str(_option_value(config.get(k))).lower() == "true" for k in _REFUSED_CONFIG):
        return False
    mode = _option_value(config.get("delta.columnMapping.mode"))
    if mode not in (None, "none") or not metadata.partitionColumns().isEmpty():
        return False
    features = snapshot.protocol().readerAndWriterFeatureNames()
    if any(features.contains(f) for f in _REFUSED_FEATURES):
        return False
    return not any(
        key.startswith("delta.") for field in schema["fields"] for key in field.get("metadata", {})
    )


def _seq(jvm: Any, items: list[Any]) -> Any:
    values = jvm.java.util.ArrayList()
    for item in items:
        values.add(item)
    return jvm.scala.jdk.javaapi.CollectionConverters.asScala(values).toSeq()


def _pylist(jvm: Any, seq: Any) -> list[Any]:
    return list(jvm.scala.jdk.javaapi.CollectionConverters.asJava(seq))


def _decided(
    changes: DataFrame,
    stored: DataFrame,
    keys: list[str],
    values: list[str],
    sequence: str,
    delete: str,
    fresh: str | None,
    few: bool,
) -> DataFrame:
    """Each change, joined with the stored row of its key (if any), and what it does there:
    the MERGE's `newer` condition, so NULL sequences and ties behave the same."""
    on = [F.col(f"s.`{k}`") == F.col(f"t.`{k}`") for k in keys]
    # The lookup holds at most a row per change (a target holds a key once), and the batch is
    # broadcastable: so is the lookup. Not for a few compound keys, filtered column by column
    # (a superset of their rows).
    stored = F.broadcast(stored) if not few or len(keys) == 1 else stored
    joined = changes.alias("s").join(stored.alias("t"), on, "left")
    matched = F.col(f"t.{_FILE}").isNotNull()
    newer = F.coalesce(F.col(f"s.{sequence}") > F.col(f"t.{sequence}"), F.lit(False))
    is_delete = F.col(f"s.{delete}")
    action = (
        # `when(NOT delete)`, as the MERGE's insert clause: a NULL flag inserts nothing
        F.when(~matched, F.when(~is_delete, F.lit(INSERT)).otherwise(F.lit(IGNORE)))
        .when(newer & is_delete, F.lit(DELETE))
        .when(newer, F.lit(UPDATE))
        .otherwise(F.lit(IGNORE))
    )
    columns: list[Column] = [F.col(f"s.`{k}`").alias(k) for k in keys]
    for c in values:
        value = F.col(f"s.`{c}`")
        if fresh is not None:  # ignore_null_updates: a NULL keeps the stored value
            kept = F.coalesce(value, F.col(f"t.`{c}`"))
            value = F.when(matched & ~F.col(f"s.{fresh}"), kept).otherwise(value)
        columns.append(value.alias(c))
    columns += [
        F.col(f"s.{sequence}").alias(sequence),
        action.alias(_ACTION),
        F.col(f"t.{_FILE}").alias(_FILE),
        F.col(f"t.{_ROW}").alias(_ROW),
    ]
    return joined.select(*columns)


def upsert(
    spark: SparkSession,
    changes: DataFrame,
    keys: list[str],
    values: list[str],
    key_filter: Column | None,
    target_path: Path,
    sequence: str,
    delete: str,
    fresh: str | None,
) -> Applied | None:
    """Apply `changes` (one per key, small, cached by the caller) to the SCD1 target in one
    commit. Returns what they did, or None when this target needs a MERGE.
    `key_filter`, for a batch of a few keys, holds for every stored row a change can match
    (on `t.` columns): the lookup reads only those. Without it the target is joined with the
    changes' keys (broadcast). The caller sets the commit's userMetadata (the session conf a
    MERGE takes it from too)."""
    jvm = _jvm_of(spark)
    if jvm is None:
        return None
    log = getattr(jvm, f"{_DELTA}.DeltaLog").forTable(spark._jsparkSession, str(target_path))
    txn = log.startTransaction()
    snapshot = txn.snapshot()
    schema = json.loads(snapshot.metadata().schemaString())
    if not _plain(snapshot, schema):
        return None
    table = StructType.fromJson(schema)
    given = changes.schema
    written = [*keys, *values, sequence]
    if sorted(table.names) != sorted(written) or any(
        given[c].dataType.simpleString() != table[c].dataType.simpleString() for c in written
    ):
        return None  # a MERGE casts the changes to the target's columns (or evolves them)
    txn.readWholeTable()  # any concurrent change to the table fails this commit
    read = [*keys, sequence, *(values if fresh is not None else [])]
    few = key_filter is not None
    files = _snapshot_files(jvm, log, snapshot)
    if few and files:  # a few keys: the snapshot's files read directly, their DVs checked here
        stored = _stored_in_files(spark, jvm, log, table, files, read, key_filter)
        try:
            with spark_settings(spark, _packed(spark, files)):  # read when the scan runs
                deleted = _deleted_rows(jvm, log, files, stored)
        except BaseException:
            stored.unpersist()
            raise
        live = _live(stored, deleted)
    else:  # the stored rows of the batch's keys, in one pass over the snapshot's files
        # Filled once first: the lookup and the decision both read the changes, and two
        # query stages would each compute the same uncached partitions side by side.
        changes.count()
        scanned = _lookup(_scan(spark, jvm, log, snapshot, files), read)
        stored = scanned.join(F.broadcast(changes.select(*keys)), keys, "left_semi").persist(
            StorageLevel.MEMORY_AND_DISK
        )
        live = stored
    # Not cached: the cached changes joined with the small cached lookup again per query
    # costs less than caching every column of the batch once more.
    decided = _decided(changes, live, keys, values, sequence, delete, fresh, few)
    try:
        # Per action and file: how many, and (a few keys) which rows, for the driver's DVs.
        rows_of = [F.collect_list(_ROW).alias("rows")] if few else []
        outcome = decided.groupBy(_ACTION, _FILE).agg(F.count(F.lit(1)).alias("n"), *rows_of)
        outcome = outcome.collect()
        counts = Counter()
        for row in outcome:
            counts[row[_ACTION]] += row["n"]
        applied = Applied(counts[INSERT], counts[UPDATE], counts[DELETE], sum(counts.values()))
        if applied.inserted + applied.updated + applied.deleted == 0:
            return applied
        touched = {r[_FILE] for r in outcome if r[_ACTION] in (UPDATE, DELETE)}
        added = []
        if applied.inserted + applied.updated:
            rows = decided.where(F.col(_ACTION).isin(INSERT, UPDATE)).select(*table.names)
            if few:  # a few hundred rows: one file, one job (no optimized-write shuffle)
                rows = rows.coalesce(1)
            added = _pylist(jvm, txn.writeFiles(rows._jdf))
        files = _touched(log, files, touched)
        if few:
            removed: dict[str, list[int]] = defaultdict(list)
            for row in outcome:
                if row[_ACTION] in (UPDATE, DELETE):
                    removed[row[_FILE]] += row["rows"]
            dvs = _driver_deletion_vectors(jvm, log, files, removed)
        else:
            dvs = _spark_deletion_vectors(spark, jvm, log, files, decided)
        marked, dv_metrics = _marked(files, dvs)
        _register_metrics(spark, jvm, txn, {
            **applied.metrics(),
            "numTargetFilesAdded": len(added),
            "numTargetBytesAdded": sum(a.size() for a in added),
            **dv_metrics,
        })
        none, empty = jvm.scala.Option.empty(), _seq(jvm, [])
        merge = getattr(jvm, f"{_DELTA}.DeltaOperations$Merge")
        txn.commit(_seq(jvm, added + marked), merge(none, none, none, none, empty, empty, empty))
    finally:
        stored.unpersist()
    return applied


def _register_metrics(spark: SparkSession, jvm: Any, txn: Any, values: dict[str, int]) -> None:
    """The MERGE metrics of the commit (its history shows them as a MERGE's)."""
    context = spark._jsparkSession.sparkContext()
    metrics = jvm.java.util.HashMap()
    for name, value in values.items():
        metric = jvm.org.apache.spark.sql.execution.metric.SQLMetrics.createMetric(context, name)
        metric.set(value)
        metrics.put(name, metric)
    txn.registerSQLMetrics(spark._jsparkSession, jvm.PythonUtils.toScalaMap(metrics))


def _file_prefix(jvm: Any, log: Any) -> str:
    """What Spark's `_metadata.file_path` (URL-encoded) puts before a data file's path as the
    log names it."""
    spark_path = getattr(jvm, "org.apache.spark.paths.SparkPath")
    absolute = getattr(jvm, f"{_DELTA}.util.DeltaFileOperations").absolutePath
    return spark_path.fromPath(absolute(log.dataPath().toString(), "x")).urlEncoded()[:-1]


def _snapshot_files(jvm: Any, log: Any, snapshot: Any) -> dict[str, Any]:
    """Every data file of the snapshot (its log entry), by its `_metadata.file_path`."""
    prefix = _file_prefix(jvm, log)
    return {prefix + add.path(): add for add in snapshot.allFiles().collect()}


def _stored_in_files(
    spark: SparkSession,
    jvm: Any,
    log: Any,
    table: StructType,
    files: dict[str, Any],
    read: list[str],
    key_filter: Column,
) -> DataFrame:
    """The stored rows `key_filter` names, deleted ones included, cached: the snapshot's
    Parquet files read as they are. A Delta scan of the same rows plans for three Spark jobs
    more (data skipping, which scattered keys defeat, and its deletion vectors)."""
    from orderlake.engine.autoloader.reader import literal_path

    absolute = getattr(jvm, f"{_DELTA}.util.DeltaFileOperations").absolutePath
    table_path = log.dataPath().toString()
    paths = [literal_path(absolute(table_path, add.path()).toString()) for add in files.values()]
    rows = spark.read.schema(table).parquet(*paths).alias("t").where(key_filter)
    return _lookup(rows, read).persist(StorageLevel.MEMORY_AND_DISK)


def _lookup(rows: DataFrame, read: list[str]) -> DataFrame:
    """The `read` columns of the stored rows (aliased `t`), with each row's file and index."""
    return rows.alias("t").select(
        *[F.col(f"t.`{c}`").alias(c) for c in read],
        F.col("_metadata.file_path").alias(_FILE),
        F.col("_metadata.row_index").alias(_ROW),
    )


def _scan(
    spark: SparkSession, jvm: Any, log: Any, snapshot: Any, files: dict[str, Any]
) -> DataFrame:
    """The snapshot's rows as Delta reads them (deletion vectors applied), from its files as
    listed: planning `spark.read` of the table runs Spark jobs for data skipping first."""
    listed = _seq(jvm, list(files.values()))
    frame = log.createDataFrame(snapshot, listed, False, jvm.scala.Option.empty())
    return DataFrame(frame, spark)


def _packed(spark: SparkSession, files: dict[str, Any]) -> dict[str, str]:
    """Settings that read `files` in as many tasks as the session's default parallelism:
    the session reads one file per task, and a target gets a small file per update until
    compaction (each task costs more than its few rows)."""
    total = sum(add.size() for add in files.values())
    tasks = max(1, spark.sparkContext.defaultParallelism)
    return {
        "spark.sql.files.maxPartitionBytes": str(max(1 << 20, total // tasks + 1)),
        "spark.sql.files.openCostInBytes": str(4 << 20),
    }


def _deleted_rows(
    jvm: Any, log: Any, files: dict[str, Any], candidates: DataFrame
) -> dict[str, list[int]]:
    """Of the candidate rows (collected: one Spark job, which fills their cache), those
    their file's deletion vector deletes, by file."""
    store = _object(jvm, "storage.dv.DeletionVectorStore").createInstance(
        log.newDeltaHadoopConf()
    )
    bitmaps: dict[str, Any] = {}
    deleted: dict[str, list[int]] = defaultdict(list)
    for row in candidates.select(_FILE, _ROW).collect():
        path, index = row[_FILE], row[_ROW]
        add = files.get(path)
        if add is None:
            raise RuntimeError(f"{path} is not a file of the table at {log.dataPath()}")
        dv = add.deletionVector()
        if dv is None:
            continue
        if path not in bitmaps:
            bitmaps[path] = store.read(dv, log.dataPath())
        if bitmaps[path].contains(index):
            deleted[path].append(index)
    return deleted


def _live(candidates: DataFrame, deleted: dict[str, list[int]]) -> DataFrame:
    """The candidates without the `deleted` rows."""
    gone = F.lit(False)
    for path, rows in deleted.items():
        gone = gone | ((F.col(_FILE) == path) & F.col(_ROW).isin(rows))
    return candidates.where(~gone) if deleted else candidates


def _touched(log: Any, files: dict[str, Any], paths: set[str]) -> dict[str, Any]:
    """The log entries of the files at `paths` (as `_metadata.file_path` gives them)."""
    missing = paths - files.keys()
    if missing:
        raise RuntimeError(f"{sorted(missing)[0]} is not a file of the table at {log.dataPath()}")
    return {path: files[path] for path in paths}


def _earlier_dv(add: Any) -> str | None:
    """The file's DV as Delta's DML helpers name it (serialized), or None."""
    earlier = add.deletionVector()
    return None if earlier is None else earlier.serializeToBase64()


def _driver_deletion_vectors(
    jvm: Any, log: Any, files: dict[str, Any], removed: dict[str, list[int]]
) -> dict[str, Any]:
    """The new DV of each file (row indexes `removed`, merged with its earlier DV), built and
    written by the driver: a few rows, no Spark job."""
    table = log.dataPath()
    store = _object(jvm, "storage.dv.DeletionVectorStore").createInstance(
        log.newDeltaHadoopConf()
    )
    writers = _object(jvm, "commands.DeletionVectorWriter")
    created = writers.createWriter(store, store.pathWithFileSystem(table), "")
    writer, file_id = created._1(), created._2()
    context = getattr(jvm, f"{_DELTA}.commands.DeletionVectorWriter$DeletionVectorMapperContext")(
        store, writer, table, file_id, ""
    )
    portable = _object(jvm, "deletionvectors.RoaringBitmapArrayFormat").Portable()
    data = getattr(jvm, f"{_DELTA}.commands.DeletionVectorData")
    dvs = {}
    try:
        for path, add in files.items():
            bitmap = getattr(jvm, f"{_DELTA}.deletionvectors.RoaringBitmapArray")()
            for index in removed[path]:
                bitmap.add(index)
            earlier = jvm.scala.Option.apply(_earlier_dv(add))
            row = data(path, earlier, bitmap.serializeAsByteArray(portable), bitmap.cardinality())
            dvs[path] = writers.storeBitmapAndGenerateResult(context, row).deletionVector()
    finally:
        writer.close()
    return dvs


def _spark_deletion_vectors(
    spark: SparkSession, jvm: Any, log: Any, files: dict[str, Any], decided: DataFrame
) -> dict[str, Any]:
    """The new DV of each file, built by Delta's own DML helper in one Spark job (the rows
    the changes replace, merged with each file's earlier DV)."""
    # Each file's earlier DV as a literal map (one entry per touched file): no join, no job.
    pairs = [F.lit(v) for path, add in files.items() for v in (path, _earlier_dv(add))]
    earlier = F.create_map(*pairs).cast("map<string,string>")
    marked = decided.where(F.col(_ACTION).isin(UPDATE, DELETE)).select(
        F.col(_FILE).alias("filePath"),
        earlier[F.col(_FILE)].alias("deletionVectorId"),
        F.col(_ROW).alias("rowIndexCol"),
    )
    generator = _object(jvm, "commands.DeletionVectorBitmapGenerator")
    built = generator.buildDeletionVectors(spark._jsparkSession, marked._jdf, log, 0)
    return {r.filePath(): r.deletionVector() for r in _pylist(jvm, built)}


def _marked(files: dict[str, Any], dvs: dict[str, Any]) -> tuple[list[Any], dict[str, int]]:
    """The add/remove pair of each file that gets a new DV (its statistics kept, with wide
    bounds), and the MERGE's DV metrics."""
    actions = []
    metrics = {"numTargetDeletionVectorsAdded": 0, "numTargetDeletionVectorsUpdated": 0}
    for path, add in files.items():
        earlier = add.deletionVector()
        metrics["numTargetDeletionVectorsAdded" if earlier is None else
                "numTargetDeletionVectorsUpdated"] += 1
        pair = add.removeRows(dvs[path], True, True)
        actions += [pair._1(), pair._2()]
    return actions, metrics
