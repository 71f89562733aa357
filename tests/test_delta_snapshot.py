"""The JVM-free Delta reader against tables Delta itself wrote: checkpoints, deletes that
leave deletion vectors, overwrites; the row count must equal Spark's."""

from __future__ import annotations

import pytest

from orderlake.views.delta_snapshot import SnapshotError, read_rows, snapshot


def test_row_counts_match_spark_across_checkpoints_and_deletion_vectors(spark, tmp_path):
    path = str(tmp_path / "t")
    for batch in range(5):
        frame = spark.range(batch * 100, batch * 100 + 100).withColumnRenamed("id", "n")
        writer = frame.write.format("delta").mode("append")
        if batch == 0:
            writer = writer.option("delta.checkpointInterval", "2").option(
                "delta.enableDeletionVectors", "true"
            )
        writer.save(path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE n % 7 = 0")
    spark.sql(f"UPDATE delta.`{path}` SET n = n + 1000 WHERE n % 11 = 0")
    log = tmp_path / "t" / "_delta_log"
    assert any(".checkpoint." in p.name for p in log.iterdir())  # the checkpoint path is taken
    snap = snapshot(tmp_path / "t")
    assert snap is not None and snap.has_deletion_vectors
    assert snap.rows == spark.read.format("delta").load(path).count() == 500 - 72
    with pytest.raises(SnapshotError, match="deletion vectors"):
        read_rows(snap)


def test_an_overwrite_leaves_only_the_new_files(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.range(10).write.format("delta").save(path)
    spark.range(3).write.format("delta").mode("overwrite").save(path)
    snap = snapshot(tmp_path / "t")
    assert snap is not None and snap.rows == 3
    assert sorted(r["id"] for r in read_rows(snap)) == [0, 1, 2]


def test_not_a_table(tmp_path):
    (tmp_path / "t" / "_delta_log").mkdir(parents=True)  # a writer killed before commit 0
    assert snapshot(tmp_path / "t") is None
    assert snapshot(tmp_path / "nothing") is None
