"""End to end on real files and Delta tables: batches, quarantine, rejects, archive, restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from orderlake.engine.delta_log import latest_version
from orderlake.engine.run.table_changes import commit_actions
from tests.conftest import HEADER, order_row


def _table(spark, warehouse: Path, name: str) -> list[dict]:
    frame = spark.read.format("delta").load(str(warehouse / "tables" / name))
    return [r.asDict() for r in frame.collect()]


def _target(spark, warehouse: Path) -> dict[str, dict]:
    return {r["tracking_num"]: r for r in _table(spark, warehouse, "orders_target")}


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_batches_upsert_check_quarantine_reject_and_archive(
    tmp_path, spark, drop_file, make_pipeline
):
    volume, warehouse = tmp_path / "volume", tmp_path / "warehouse"
    drop_file(
        "day1.csv",
        [
            order_row("TRK00000001", "2026-03-01T10:00:00Z", status="CREATED"),
            order_row("trk00000002", "2026-03-01T10:00:00Z"),
            order_row("TRK00000001", "2026-03-01T12:00:00Z", status="IN_TRANSIT"),
            order_row("TRK00000003", "2026-03-01T10:00:00Z", amount="-5.00"),  # drop rule
            order_row("TRK00000004", "2026-03-01T10:00:00Z", status="LOST"),  # warn rule only
        ],
    )
    drop_file("header_only.csv", [])
    drop_file("no_key.csv", ["O-9,2026-03-01T10:00:00Z"], header="order_id,last_updated")
    pipeline = make_pipeline()
    first = pipeline.update()

    assert first.files_loaded == 1 and first.files_empty == 1 and first.files_rejected == 1
    assert _names(volume / "source") == set()
    assert _names(volume / "archive") == {"day1.csv", "header_only.csv"}
    assert _names(volume / "rejected") == {"no_key.csv", "no_key.csv.error.txt"}
    report = (volume / "rejected" / "no_key.csv.error.txt").read_text()
    assert "required columns missing from the header: tracking_num" in report

    target = _target(spark, warehouse)
    assert set(target) == {"TRK00000001", "TRK00000002", "TRK00000004"}
    assert target["TRK00000001"]["status"] == "IN_TRANSIT"
    assert target["TRK00000004"]["status"] == "LOST"
    quarantine = _table(spark, warehouse, "orders_quarantine")
    assert [(q["tracking_num"], q["_failed_rules"]) for q in quarantine] == [
        ("TRK00000003", ["amount_not_negative"])
    ]
    quality = first.flow("orders_target").quality.as_details()
    counts = {e["name"]: e["failed_records"] for e in quality["expectations"]}
    assert counts["known_status"] == 1 and counts["amount_not_negative"] == 1
    assert quality["dropped_records"] == 1

    # Second batch: an older update (must lose), a newer one, and a new key.
    drop_file(
        "day2.csv",
        [
            order_row("TRK00000001", "2026-03-01T11:00:00Z", status="CANCELLED"),
            order_row("TRK00000002", "2026-03-02T09:00:00+01:00", status="DELIVERED"),
            order_row("TRK00000005", "2026-03-02 09:00:00"),
        ],
    )
    second = pipeline.update()
    assert second.bronze_rows == 3
    target = _target(spark, warehouse)
    assert target["TRK00000001"]["status"] == "IN_TRANSIT"
    assert target["TRK00000002"]["status"] == "DELIVERED"
    assert set(target) == {"TRK00000001", "TRK00000002", "TRK00000004", "TRK00000005"}
    assert len(_table(spark, warehouse, "orders_bronze")) == 8

    # Nothing new: an update changes nothing.
    third = pipeline.update()
    assert third.bronze_rows == 0 and len(_table(spark, warehouse, "orders_bronze")) == 8


def test_columns_are_matched_by_header_name_not_position(tmp_path, spark, drop_file, make_pipeline):
    names = HEADER.split(",")
    reordered = list(reversed(names))
    values = dict(
        zip(names, order_row("TRK00000042", "2026-03-01T10:00:00Z").split(","), strict=True)
    )
    drop_file(
        "reordered.csv",
        [",".join(values[n] for n in reordered)],
        header=",".join(n.upper() for n in reordered),
    )
    make_pipeline().update()
    row = _target(spark, tmp_path / "warehouse")["TRK00000042"]
    assert row["carrier"] == "UPS" and row["destination"] == "LAX" and str(row["amount"]) == "10.00"


def test_full_refresh_rebuilds_the_target_from_bronze(tmp_path, spark, drop_file, make_pipeline):
    drop_file("a.csv", [order_row("TRK00000001", "2026-03-01T10:00:00Z")])
    pipeline = make_pipeline()
    pipeline.update()
    before = _target(spark, tmp_path / "warehouse")
    refreshed = pipeline.update(full_refresh=True)
    assert refreshed.flow("orders_target").input_rows == 1
    after = _target(spark, tmp_path / "warehouse")
    assert {k: v["status"] for k, v in after.items()} == {k: v["status"] for k, v in before.items()}
    assert len(_table(spark, tmp_path / "warehouse", "orders_quarantine")) == 0


def test_restart_after_a_kill_between_bronze_commit_and_archive(tmp_path, spark, drop_file):
    drop_file("a.csv", [order_row("TRK00000001", "2026-03-01T10:00:00Z")])
    drop_file("b.csv", [order_row("TRK00000002", "2026-03-01T10:00:00Z")])
    volume, warehouse = tmp_path / "volume", tmp_path / "warehouse"
    command = [
        sys.executable,
        "-m",
        "orderlake.cli",
        "run",
        "--volume",
        str(volume),
        "--warehouse",
        str(warehouse),
    ]
    env = dict(os.environ, ORDERLAKE_KILL_AT="archive_move:1")
    crashed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    assert len(_names(volume / "source")) == 1 and len(_names(volume / "archive")) == 1

    restarted = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert _names(volume / "source") == set()
    assert _names(volume / "archive") == {"a.csv", "b.csv"}
    bronze = _table(spark, warehouse, "orders_bronze")
    assert sorted(r["tracking_num"] for r in bronze) == ["TRK00000001", "TRK00000002"]
    assert set(_target(spark, warehouse)) == {"TRK00000001", "TRK00000002"}


def test_only_the_cloudfiles_flow_ingests_on_a_fresh_warehouse(tmp_path, make_pipeline):
    """Learning what orders_quarantine reads builds bronze's query before bronze exists; the
    cloudFiles read that makes belongs to bronze's flow, not to the quarantine's."""
    pipeline = make_pipeline()
    assert [f.name for f in pipeline.ingest_flows] == ["orders_bronze"]
    assert not (tmp_path / "warehouse" / "tables" / "orders_bronze").exists()


def _file_stats(table: Path) -> list[dict]:
    """The statistics of every data file the table's commits added (Delta protocol `add`)."""
    actions = [a for v in range(latest_version(table) + 1) for a in commit_actions(table, v)]
    added = [a["add"] for a in actions if "add" in a]
    return [json.loads(a["stats"]) for a in added if a.get("stats")]


def test_tables_keep_row_counts_and_only_the_statistics_readers_filter_on(built_warehouse):
    """Bronze keeps no column statistics and the target only those of the columns a reader
    filters on (`dlt/orders_pipeline.py`); every file keeps its row count, which the engine
    reads."""
    tables = built_warehouse["warehouse"] / "tables"
    bronze, target = _file_stats(tables / "orders_bronze"), _file_stats(tables / "orders_target")
    assert bronze and target
    assert all("numRecords" in s for s in bronze + target)
    assert all(not s.get("minValues") for s in bronze)
    indexed = {"tracking_num", "order_date", "last_updated"}
    assert all(set(s["minValues"]) == indexed for s in target if s["numRecords"])
