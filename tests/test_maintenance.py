"""Compaction after an update (orderlake/engine/run/maintenance.py), on real Delta tables."""

from __future__ import annotations

import random

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from orderlake.engine.delta_log import latest_version, newest_checksum
from orderlake.engine.run.maintenance import (
    MANAGED_PROPERTY,
    SMALL_FILE_BYTES,
    compact_due,
    small_files,
)
from orderlake.engine.run.table_changes import appended_files
from tests.conftest import order_row


def _files(spark, path) -> int:
    return int(DeltaTable.forPath(spark, str(path)).detail().first()["numFiles"])


def _small_appends(spark, path, appends: int) -> list[int]:
    for i in range(appends):
        spark.range(i * 10, i * 10 + 10).write.format("delta").mode("append").save(str(path))
    return sorted(r.id for r in spark.read.format("delta").load(str(path)).collect())


def test_small_files_are_packed_in_one_commit_that_adds_no_rows(spark, tmp_path, monkeypatch):
    path = tmp_path / "t"
    rows = _small_appends(spark, path, 6)
    files = _files(spark, path)
    monkeypatch.setenv("ORDERLAKE_COMPACT_MIN_FILES", str(files))
    said: list[str] = []
    done = compact_due(spark, [("t", path, {})], said.append)
    assert [(d.table, d.files_removed, d.files_added) for d in done] == [("t", files, 1)]
    assert said == [
        f"t: compacting its {files} small files",
        f"t: compacted {files} small files into 1 ({done[0].seconds:.1f}s)",
    ]
    assert _files(spark, path) == 1
    assert sorted(r.id for r in spark.read.format("delta").load(str(path)).collect()) == rows
    version = latest_version(path)
    assert appended_files(path, version, version) == []  # a reader of appends sees no rows
    assert compact_due(spark, [("t", path, {})]) == []  # one file: not due again


def test_no_compaction_below_the_threshold_when_off_or_not_managed(spark, tmp_path, monkeypatch):
    path = tmp_path / "t"
    _small_appends(spark, path, 3)
    files = _files(spark, path)
    version = latest_version(path)
    monkeypatch.setenv("ORDERLAKE_COMPACT_MIN_FILES", str(files + 1))
    assert compact_due(spark, [("t", path, {})]) == []
    monkeypatch.setenv("ORDERLAKE_COMPACT_MIN_FILES", "0")
    assert compact_due(spark, [("t", path, {})]) == []
    monkeypatch.setenv("ORDERLAKE_COMPACT_MIN_FILES", "2")
    assert compact_due(spark, [("t", path, {MANAGED_PROPERTY: "False"})]) == []
    assert compact_due(spark, [("missing", tmp_path / "none", {})]) == []
    checksum = path / "_delta_log" / f"{version:020d}.crc"
    kept = checksum.read_bytes()
    checksum.unlink()  # no checksum for the newest version: counts unknown, nothing is done
    assert compact_due(spark, [("t", path, {})]) == []
    checksum.write_bytes(kept)
    assert compact_due(spark, [("t", path, {MANAGED_PROPERTY: "false"})]) == []
    assert latest_version(path) == version and _files(spark, path) == files
    assert [d.table for d in compact_due(spark, [("t", path, {})])] == ["t"]  # it was due


def test_updates_keep_their_semantics_across_compactions(
    spark, tmp_path, drop_file, make_pipeline, monkeypatch
):
    """Random small files, compacted every few updates: the target holds the newest change of
    every key (an older change arriving later loses), bronze and the quarantine every row
    once."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rnd = random.Random(seed)
    monkeypatch.setenv("ORDERLAKE_COMPACT_MIN_FILES", "6")
    pipeline = make_pipeline()
    newest: dict[str, tuple[str, str]] = {}
    sent = compactions = bad = 0
    for update in range(10):
        lines = []
        for _ in range(rnd.randint(1, 6)):
            key = f"TRK{rnd.randrange(12):08d}"
            stamp = f"2026-03-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:00:00Z"
            status = rnd.choice(["CREATED", "IN_TRANSIT", "DELIVERED"])
            if rnd.random() < 0.2:  # a negative amount: quarantined, never in the target
                lines.append(order_row(key, stamp, amount="-5.00", order_id=f"O-{update}"))
                bad += 1
                continue
            lines.append(order_row(key, stamp, status=status, order_id=f"O-{update}"))
            if key not in newest or stamp > newest[key][0]:
                newest[key] = (stamp, status)
            elif stamp == newest[key][0]:
                newest[key] = (stamp, status)  # a tie: the later file wins
        drop_file(f"u{update:02d}.csv", lines)
        sent += len(lines)
        result = pipeline.update()
        compactions += len(result.compactions)
    assert compactions >= 1, f"seed {seed}: nothing was compacted"
    tables = tmp_path / "warehouse" / "tables"
    target = spark.read.format("delta").load(str(tables / "orders_target"))
    got = {
        r.tracking_num: (r.last_updated, r.status)
        for r in target.select(
            "tracking_num", F.date_format("last_updated", "yyyy-MM-dd'T'HH:mm:ss'Z'")
            .alias("last_updated"), "status"
        ).collect()
    }
    assert got == newest, f"seed {seed}"
    assert spark.read.format("delta").load(str(tables / "orders_bronze")).count() == sent
    quarantined = spark.read.format("delta").load(str(tables / "orders_quarantine")).count()
    assert quarantined == bad, f"seed {seed}"  # a compacted bronze file is not read again


def test_a_big_file_is_neither_counted_nor_rewritten(spark, tmp_path, monkeypatch):
    """Only files under SMALL_FILE_BYTES count toward the threshold and get packed: a client's
    big file loaded into bronze stays as it is."""
    path = tmp_path / "t"
    big = spark.range(400_000).selectExpr("id", "sha2(cast(id AS STRING), 256) AS h")
    big.coalesce(1).write.format("delta").save(str(path))
    [big_file] = DeltaTable.forPath(spark, str(path)).toDF().inputFiles()
    for i in range(5):
        tiny = spark.range(i * 10, i * 10 + 10).selectExpr("id", "CAST(id AS STRING) AS h")
        tiny.coalesce(1).write.format("delta").mode("append").save(str(path))
    histogram = newest_checksum(path)
    assert small_files(histogram) == 5
    monkeypatch.setenv("ORDERLAKE_COMPACT_MIN_FILES", "6")
    assert compact_due(spark, [("t", path, {})]) == []  # six files, but five small ones
    monkeypatch.setenv("ORDERLAKE_COMPACT_MIN_FILES", "5")
    done = compact_due(spark, [("t", path, {})])
    assert [(d.files_removed, d.files_added) for d in done] == [(5, 1)]
    assert big_file in DeltaTable.forPath(spark, str(path)).toDF().inputFiles()
    assert spark.read.format("delta").load(str(path)).count() == 400_050


def test_small_files_reads_the_histogram_bins_up_to_the_limit():
    bins = [0, 8192, SMALL_FILE_BYTES // 2, SMALL_FILE_BYTES, 2 * SMALL_FILE_BYTES]
    checksum = {"fileSizeHistogram": {"sortedBinBoundaries": bins, "fileCounts": [3, 4, 5, 6, 7]}}
    assert small_files(checksum) == 12  # the bins ending at or below the limit
    assert small_files({"numFiles": 9}) is None  # no histogram: the caller falls back
