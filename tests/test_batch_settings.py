"""Small runs skip Spark's big-data machinery, except where the MERGE target is big: a tiny
batch still reads every key of its target, and interpreted that read is slow."""

from __future__ import annotations

from orderlake.engine.delta_log import data_file_bytes, latest_version
from orderlake.engine.run import autocdc, flows
from orderlake.engine.run.runner import LocalPipeline
from orderlake.engine.run.table_changes import appended_files, commit_actions
from orderlake.storage.path import as_path
from tests.conformance.conftest import copy_bundle
from tests.conftest import order_row
from tests.test_autocdc import _flow

CODEGEN = "spark.sql.codegen.wholeStage"
AQE = "spark.sql.adaptive.enabled"
PARTITIONS = "spark.sql.shuffle.partitions"
OPTIMIZE_WRITE = "spark.databricks.delta.optimizeWrite.enabled"

# A second AUTO CDC flow over the same bronze rows (so it runs in the orders flow's group); its
# view notes the session's code generation setting each time the engine builds its query.
MIRROR = """
from pyspark import pipelines as dp
from pyspark.sql import functions as F

NOTES = {notes!r}


@dp.temporary_view(name="mirror_source")
def mirror_source():
    with open(NOTES, "a") as notes:
        notes.write(spark.conf.get("spark.sql.codegen.wholeStage", "true") + "\\n")
    return spark.readStream.table("orders_bronze").select("tracking_num", "status", "last_updated")


dp.create_streaming_table("mirror")
dp.create_auto_cdc_flow(
    target="mirror", source="mirror_source", keys=["tracking_num"], sequence_by="last_updated"
)
"""


def test_batch_conf_turns_compiling_off_only_when_batch_and_target_are_tiny():
    tiny_rows, small_rows = flows.TINY_BATCH_ROWS - 1, flows.SMALL_BATCH_ROWS - 1
    small_target = flows.TINY_TARGET_BYTES - 1
    assert flows.batch_conf(tiny_rows, small_target)[CODEGEN] == "false"
    assert flows.batch_conf(tiny_rows, small_target)[PARTITIONS] == "1"
    assert PARTITIONS not in flows.batch_conf(tiny_rows, flows.TINY_TARGET_BYTES)
    assert flows.batch_conf(tiny_rows, flows.TINY_TARGET_BYTES)[OPTIMIZE_WRITE] == "true"
    assert OPTIMIZE_WRITE not in flows.batch_conf(tiny_rows, small_target)
    assert OPTIMIZE_WRITE not in flows.batch_conf(flows.TINY_BATCH_ROWS, float("inf"))
    assert PARTITIONS not in flows.batch_conf(small_rows, 0)
    assert flows.batch_conf(tiny_rows, 0)[AQE] == "false"
    assert CODEGEN not in flows.batch_conf(tiny_rows, flows.TINY_TARGET_BYTES)
    assert flows.batch_conf(tiny_rows, flows.TINY_TARGET_BYTES)[AQE] == "false"
    assert CODEGEN not in flows.batch_conf(tiny_rows, float("inf"))  # a bucket: size unknown
    assert CODEGEN not in flows.batch_conf(flows.TINY_BATCH_ROWS, 0)
    assert flows.batch_conf(small_rows, 0) == {AQE: "false"}
    assert flows.batch_conf(flows.SMALL_BATCH_ROWS, 0) == {}


def test_data_file_bytes_counts_every_data_file_of_a_partitioned_table(spark, tmp_path):
    path = tmp_path / "t"
    assert data_file_bytes(path) == 0
    frame = spark.range(200).selectExpr("id", "id % 3 AS part")
    frame.write.format("delta").partitionBy("part").save(str(path))
    frame.write.format("delta").mode("overwrite").partitionBy("part").save(str(path))
    # Every Parquet file the two commits added (the overwrite's removed files are still there).
    added = spark.read.json(str(path / "_delta_log" / "*.json")).where("add IS NOT NULL")
    expected = sum(row.size for row in added.select("add.size").collect())
    assert added.count() >= 6 and data_file_bytes(path) == expected
    assert data_file_bytes(as_path("gs://bucket/warehouse/t")) is None


def test_a_tiny_batch_into_a_big_target_runs_compiled(spark, tmp_path, drop_file, monkeypatch):
    notes = tmp_path / "notes.txt"
    root = copy_bundle(tmp_path / "bundle")
    (root / "dlt" / "mirror.py").write_text(MIRROR.format(notes=str(notes)))
    pipeline = LocalPipeline(
        tmp_path / "volume", tmp_path / "warehouse", spark=spark, bundle_root=root
    )

    def update_with(rows: list[str], name: str) -> str:
        notes.write_text("")
        drop_file(name, rows)
        pipeline.update()
        return notes.read_text().split()[-1]  # the run's query (loading notes come first)

    assert update_with([order_row("TRK00000001", "2026-03-01T10:00:00")], "a.csv") == "false"
    assert update_with([order_row("TRK00000002", "2026-03-01T11:00:00")], "b.csv") == "false"
    # Both targets now hold more than the threshold: the next tiny batch is compiled.
    stored = sum(data_file_bytes(pipeline.table_path(t)) for t in ("orders_target", "mirror"))
    monkeypatch.setattr(flows, "TINY_TARGET_BYTES", stored)
    assert update_with([order_row("TRK00000003", "2026-03-01T12:00:00")], "c.csv") == "true"
    assert spark.conf.get(CODEGEN, "true") == "true"  # restored after the run


def test_a_tiny_batch_into_a_big_target_adds_one_file_to_it(
    spark, tmp_path, drop_file, monkeypatch
):
    pipeline = LocalPipeline(tmp_path / "volume", tmp_path / "warehouse", spark=spark)
    drop_file("a.csv", [order_row(f"TRK{i:08d}", "2026-03-01T10:00:00") for i in range(40)])
    pipeline.update()
    monkeypatch.setattr(flows, "TINY_TARGET_BYTES", 1)  # the target now counts as big
    # Through a MERGE, as batches over KEY_FILTER_MAX_ROWS go (test_dv_upsert: the others)
    monkeypatch.setattr(autocdc, "WITHOUT_MERGE", False)
    changed = [order_row(f"TRK{i:08d}", "2026-03-01T11:00:00", status="SHIPPED") for i in range(12)]
    added = [order_row(f"TRK{i:08d}", "2026-03-01T11:00:00") for i in range(100, 128)]
    drop_file("b.csv", changed + added)
    pipeline.update()
    target = pipeline.table_path("orders_target")
    actions = commit_actions(target, latest_version(target))
    assert any(a.get("commitInfo", {}).get("operation") == "MERGE" for a in actions)
    new_files = [a["add"] for a in actions if "add" in a and not a["add"].get("deletionVector")]
    assert len(new_files) == 1  # four (one per shuffle partition) without optimized writes
    rows = spark.read.format("delta").load(str(target)).groupBy("status").count().collect()
    assert {r.status: r["count"] for r in rows} == {"SHIPPED": 12, "CREATED": 56}
    assert spark.conf.get(OPTIMIZE_WRITE, "false") == "false"  # restored after the run


def test_only_a_batch_small_in_rows_and_bytes_is_broadcast_into_its_merge():
    rows, size = autocdc.BROADCAST_MAX_ROWS, autocdc.BROADCAST_MAX_BYTES
    assert autocdc.BatchSize(rows, size).broadcastable()
    assert not autocdc.BatchSize(rows + 1, 0).broadcastable()
    assert not autocdc.BatchSize(1, size + 1).broadcastable()  # wide rows: few, but big


def test_a_flow_run_gives_its_merge_the_rows_and_bytes_it_read(
    spark, tmp_path, drop_file, monkeypatch
):
    pipeline = LocalPipeline(tmp_path / "volume", tmp_path / "warehouse", spark=spark)
    sizes: list[autocdc.BatchSize | None] = []
    real = flows.apply_batch

    def noting(*args, **kwargs):
        sizes.append(kwargs.get("size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(flows, "apply_batch", noting)
    drop_file("a.csv", [order_row(f"TRK0000000{i}", "2026-03-01T10:00:00") for i in range(3)])
    pipeline.update()
    drop_file("b.csv", [order_row(f"TRK0000001{i}", "2026-03-01T11:00:00") for i in range(5)])
    pipeline.update()
    bronze = pipeline.table_path("orders_bronze")
    last = latest_version(bronze)
    read = appended_files(bronze, last, last)  # the second update's ingest: what its flow read
    assert sizes[-1] == autocdc.BatchSize(rows=5, size=sum(f.size for f in read))
    assert sizes[0] is not None and sizes[0].rows == 3


def _merge_predicate(spark, table) -> str:
    last = spark.sql(f"DESCRIBE HISTORY delta.`{table}` LIMIT 1").first()
    assert last.operation == "MERGE"
    return last.operationParameters["predicate"]


def test_a_small_batch_names_its_keys_in_its_merge_and_a_big_one_does_not(
    spark, tmp_path, monkeypatch
):
    """The keys let the MERGE drop the target rows no change can match before its joins
    (it shuffles the rest); collecting them is one more job, worth it only for few keys."""
    schema = "k string, v string, seq int, op string"

    def apply(rows, size):
        batch = spark.createDataFrame(rows, schema)
        flow = _flow()
        autocdc.apply_batch(spark, batch, flow, tmp_path / "t", tmp_path / "x", {}, size=size)
        table = spark.read.format("delta").load(str(tmp_path / "t"))
        return {r.k: r.v for r in table.collect()}

    apply([("a", "a1", 1, "u"), ("b", "b1", 1, "u"), ("c", "c1", 1, "u")], None)
    monkeypatch.setattr(autocdc, "KEY_FILTER_MAX_ROWS", 2)
    state = apply([("b", "b2", 2, "u"), ("d", "d1", 1, "u")], autocdc.BatchSize(2, 0))
    assert state == {"a": "a1", "b": "b2", "c": "c1", "d": "d1"}
    predicate = _merge_predicate(spark, tmp_path / "t")
    assert "IN (b,d)" in predicate  # as Delta's history prints it: the keys, sorted
    state = apply(
        [("a", "a2", 2, "u"), ("b", "b0", 0, "u"), ("e", "e1", 1, "u")], autocdc.BatchSize(3, 0)
    )
    assert state == {"a": "a2", "b": "b2", "c": "c1", "d": "d1", "e": "e1"}
    assert "IN" not in _merge_predicate(spark, tmp_path / "t")


def test_the_key_filter_keeps_every_stored_row_a_change_can_match(spark):
    changes = spark.createDataFrame([("a", 1), ("b", 2), ("b", 3)], "k1 string, k2 int")
    stored = spark.createDataFrame(
        [("a", 1), ("b", 2), ("b", 3), ("a", 3), ("c", 1), ("a", 9)], "k1 string, k2 int"
    ).alias("t")
    kept = stored.where(autocdc._key_filter(changes, ["k1", "k2"])).collect()
    # Each column's values are checked apart: a superset of the pairs, never less.
    assert {tuple(r) for r in kept} == {("a", 1), ("b", 2), ("b", 3), ("a", 3)}
    assert stored.where(autocdc._key_filter(changes.limit(0), ["k1", "k2"])).count() == 0
