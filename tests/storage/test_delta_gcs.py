"""Delta tables on gs:// (the emulator) through the local-mode session: write, read, MERGE,
and two writers committing at once (Delta's GCS log store relies on put-if-absent)."""

from __future__ import annotations

import uuid

import pytest

from orderlake.storage import storage_for
from tests.support.racing import race


@pytest.fixture
def table_path(gcs_bucket: str) -> str:
    return f"gs://{gcs_bucket}/delta-{uuid.uuid4().hex[:8]}/orders"


def commits(spark, path: str) -> list[str]:
    log = storage_for(path, spark).list_files(f"{path}/_delta_log", recursive=False)
    return sorted(info.path.rsplit("/", 1)[1] for info in log if info.path.endswith(".json"))


def test_delta_write_read_and_merge_on_gcs(gcs_spark, table_path: str) -> None:
    from delta.tables import DeltaTable

    spark = gcs_spark
    spark.createDataFrame(
        [("T1", "CREATED", 1), ("T2", "CREATED", 1)], "key string, status string, seq int"
    ).write.format("delta").save(table_path)
    updates = spark.createDataFrame(
        [("T1", "SHIPPED", 2), ("T2", "STALE", 0), ("T3", "CREATED", 1)],
        "key string, status string, seq int",
    )
    (
        DeltaTable.forPath(spark, table_path).alias("t")
        .merge(updates.alias("u"), "t.key = u.key")
        .whenMatchedUpdateAll(condition="u.seq > t.seq")  # guarded by the sequence
        .whenNotMatchedInsertAll()
        .execute()
    )  # fmt: skip
    rows = {r.key: (r.status, r.seq) for r in spark.read.format("delta").load(table_path).collect()}
    assert rows == {"T1": ("SHIPPED", 2), "T2": ("CREATED", 1), "T3": ("CREATED", 1)}
    assert commits(spark, table_path) == [
        "00000000000000000000.json",
        "00000000000000000001.json",
    ]
    history = DeltaTable.forPath(spark, table_path).history().select("operation").collect()
    assert [r.operation for r in history] == ["MERGE", "WRITE"]
    # Delta picks its GCS log store for gs:// (commits by put-if-absent through the connector).
    chooser = spark._jvm.org.apache.spark.sql.delta.storage.DelegatingLogStore
    assert chooser.getDefaultLogStoreClassName("gs").get() == "io.delta.storage.GCSLogStore"


def test_two_writers_commit_at_once_without_losing_a_version(gcs_spark, table_path) -> None:
    spark = gcs_spark
    spark.range(0, 10).write.format("delta").save(table_path)

    def append(start: int) -> None:
        spark.range(start, start + 5).write.format("delta").mode("append").save(table_path)

    race([lambda: append(100), lambda: append(200)])
    assert commits(spark, table_path) == [f"{v:020d}.json" for v in range(3)]
    ids = sorted(r.id for r in spark.read.format("delta").load(table_path).collect())
    assert ids == list(range(10)) + list(range(100, 105)) + list(range(200, 205))
