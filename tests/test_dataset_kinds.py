"""Every dataset kind the local engine runs, added next to the orders pipeline: a view read by
a streaming table and by a materialized view, materialized views, several append flows into one
streaming table. Real files, real Spark, real Delta tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orderlake.engine.run.expectations import ExpectationFailed
from orderlake.engine.run.runner import LocalPipeline
from tests.conformance.conftest import copy_bundle
from tests.conftest import order_row

KINDS = """
from pyspark import pipelines as dp
from pyspark.sql import functions as F


@dp.temporary_view(name="big_orders")
@dp.expect("known_carrier", "carrier IN ('UPS', 'DHL')")
@dp.expect_or_drop("amount_at_least_5", "CAST(amount AS DOUBLE) >= 5")
def big_orders():
    return spark.readStream.table("orders_bronze").select("tracking_num", "carrier", "amount")


@dp.table(name="big_orders_log")
def big_orders_log():
    return spark.readStream.table("big_orders")


@dp.materialized_view(name="orders_per_carrier")
def orders_per_carrier():
    return spark.read.table("orders_target").groupBy("carrier").agg(F.count("*").alias("n"))


@dp.materialized_view(name="big_per_carrier")
def big_per_carrier():
    return spark.read.table("big_orders").groupBy("carrier").agg(F.count("*").alias("n"))


dp.create_streaming_table("carrier_feed")


@dp.append_flow(target="carrier_feed", name="ups_feed")
def ups_feed():
    return spark.readStream.table("orders_bronze").where("carrier = 'UPS'").select("tracking_num")


@dp.append_flow(target="carrier_feed", name="dhl_feed")
def dhl_feed():
    return spark.readStream.table("big_orders_log").where("carrier = 'DHL'").select("tracking_num")
"""


@pytest.fixture
def kinds_bundle(tmp_path: Path) -> Path:
    root = copy_bundle(tmp_path / "bundle")
    (root / "dlt" / "kinds.py").write_text(KINDS)
    return root


def _pipeline(tmp_path: Path, spark, root: Path) -> LocalPipeline:
    return LocalPipeline(tmp_path / "volume", tmp_path / "warehouse", spark=spark, bundle_root=root)


def _rows(spark, tmp_path: Path, table: str) -> list[dict]:
    path = tmp_path / "warehouse" / "tables" / table
    return [r.asDict() for r in spark.read.format("delta").load(str(path)).collect()]


def _events(tmp_path: Path) -> list[dict]:
    log = tmp_path / "warehouse" / "_orderlake" / "event_log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_a_view_read_by_a_streaming_table_applies_and_counts_its_expectations(
    tmp_path, spark, drop_file, kinds_bundle
):
    drop_file(
        "a.csv",
        [
            order_row("TRK00000001", "2026-03-01T10:00:00Z", amount="10.00"),
            order_row("TRK00000002", "2026-03-01T10:00:00Z", amount="1.00", carrier="DHL"),
            order_row("TRK00000003", "2026-03-01T10:00:00Z", amount="7.00", carrier="FEDEX"),
        ],
    )
    pipeline = _pipeline(tmp_path, spark, kinds_bundle)
    result = pipeline.update()
    log = sorted(r["tracking_num"] for r in _rows(spark, tmp_path, "big_orders_log"))
    assert log == ["TRK00000001", "TRK00000003"]  # the drop rule filtered TRK00000002
    details = result.flow("big_orders_log").as_details()["data_quality"]
    counts = {
        e["name"]: (e["passed_records"], e["failed_records"]) for e in details["expectations"]
    }
    assert counts == {"known_carrier": (2, 1), "amount_at_least_5": (2, 1)}
    assert details["dropped_records"] == 1
    logged = [
        e
        for e in _events(tmp_path)
        if e["event_type"] == "flow_progress" and e["origin"].get("flow_name") == "big_orders_log"
    ]
    assert (
        logged[-1]["details"]["flow_progress"]["data_quality"]["expectations"][0]["dataset"]
        == "big_orders"
    )

    # The next update takes only the new bronze rows through the view.
    drop_file("b.csv", [order_row("TRK00000004", "2026-03-02T10:00:00Z", amount="50.00")])
    pipeline.update()
    assert len(_rows(spark, tmp_path, "big_orders_log")) == 3


def test_a_fail_expectation_on_a_view_stops_the_update_before_its_reader_writes(
    tmp_path, spark, drop_file, kinds_bundle
):
    path = kinds_bundle / "dlt" / "kinds.py"
    path.write_text(path.read_text().replace("@dp.expect(", "@dp.expect_or_fail(", 1))
    drop_file("a.csv", [order_row("TRK00000001", "2026-03-01T10:00:00Z", carrier="FEDEX")])
    pipeline = _pipeline(tmp_path, spark, kinds_bundle)
    with pytest.raises(ExpectationFailed, match="known_carrier"):
        pipeline.update()
    assert _rows(spark, tmp_path, "orders_bronze")  # bronze committed, the reader did not
    assert not (tmp_path / "warehouse" / "tables" / "big_orders_log" / "_delta_log").exists()


def test_materialized_views_are_recomputed_each_update_in_one_commit(
    tmp_path, spark, drop_file, kinds_bundle
):
    drop_file(
        "a.csv",
        [
            order_row("TRK00000001", "2026-03-01T10:00:00Z", amount="10.00"),
            order_row("TRK00000002", "2026-03-01T10:00:00Z", amount="9.00", carrier="DHL"),
        ],
    )
    pipeline = _pipeline(tmp_path, spark, kinds_bundle)
    pipeline.update()
    per_carrier = {r["carrier"]: r["n"] for r in _rows(spark, tmp_path, "orders_per_carrier")}
    assert per_carrier == {"UPS": 1, "DHL": 1}
    # A materialized view reading a streaming view reads its table's current rows, checked.
    big = {r["carrier"]: r["n"] for r in _rows(spark, tmp_path, "big_per_carrier")}
    assert big == {"UPS": 1, "DHL": 1}

    drop_file(
        "b.csv",
        [
            order_row("TRK00000001", "2026-03-02T10:00:00Z", carrier="DHL"),  # an update
            order_row("TRK00000003", "2026-03-02T10:00:00Z", amount="1.00"),  # dropped in view
        ],
    )
    result = pipeline.update()
    per_carrier = {r["carrier"]: r["n"] for r in _rows(spark, tmp_path, "orders_per_carrier")}
    assert per_carrier == {"DHL": 2, "UPS": 1}
    assert result.flow("orders_per_carrier").output_rows == 2
    big = {r["carrier"]: r["n"] for r in _rows(spark, tmp_path, "big_per_carrier")}
    assert big == {"UPS": 1, "DHL": 2}
    # Each recompute is one overwrite commit, tagged with its run.
    log = tmp_path / "warehouse" / "tables" / "orders_per_carrier" / "_delta_log"
    commits = sorted(log.glob("*.json"))
    assert len(commits) == 2
    info = next(
        json.loads(line)["commitInfo"]
        for line in commits[-1].read_text().splitlines()
        if "commitInfo" in line
    )
    assert info["operation"] == "WRITE" and info["operationParameters"]["mode"] == "Overwrite"
    assert info["userMetadata"] == "orderlake flow orders_per_carrier run 2"


def test_several_append_flows_fill_one_streaming_table_each_from_its_own_state(
    tmp_path, spark, drop_file, kinds_bundle
):
    drop_file(
        "a.csv",
        [
            order_row("TRK00000001", "2026-03-01T10:00:00Z"),
            order_row("TRK00000002", "2026-03-01T10:00:00Z", carrier="DHL"),
        ],
    )
    pipeline = _pipeline(tmp_path, spark, kinds_bundle)
    pipeline.update()
    assert sorted(r["tracking_num"] for r in _rows(spark, tmp_path, "carrier_feed")) == [
        "TRK00000001",
        "TRK00000002",
    ]
    states = tmp_path / "warehouse" / "_orderlake" / "flows"
    assert json.loads((states / "ups_feed.json").read_text())["ranges"] == {"orders_bronze": [0, 1]}
    assert "big_orders_log" in json.loads((states / "dhl_feed.json").read_text())["ranges"]
    drop_file("b.csv", [order_row("TRK00000003", "2026-03-02T10:00:00Z", carrier="DHL")])
    pipeline.update()
    pipeline.update()  # nothing new: neither flow appends again
    assert sorted(r["tracking_num"] for r in _rows(spark, tmp_path, "carrier_feed")) == [
        "TRK00000001",
        "TRK00000002",
        "TRK00000003",
    ]


SCD2 = """
from pyspark import pipelines as dp

dp.create_streaming_table("orders_history")
dp.create_auto_cdc_flow(
    target="orders_history",
    source="orders_clean",
    keys=["tracking_num"],
    sequence_by="last_updated",
    stored_as_scd_type=2,
    column_list=["tracking_num", "status", "carrier"],
    track_history_column_list=["status"],
)
"""


def test_an_scd_type_2_target_keeps_each_version_across_updates(tmp_path, spark, drop_file):
    root = copy_bundle(tmp_path / "bundle")
    (root / "dlt" / "history.py").write_text(SCD2)
    pipeline = _pipeline(tmp_path, spark, root)
    drop_file("a.csv", [order_row("TRK00000001", "2026-03-01T10:00:00Z", status="CREATED")])
    pipeline.update()
    drop_file(
        "b.csv",
        [
            order_row("TRK00000001", "2026-03-02T10:00:00Z", status="IN_TRANSIT"),
            order_row("TRK00000001", "2026-03-01T12:00:00Z", carrier="DHL"),  # late, in place
        ],
    )
    pipeline.update()
    pipeline.update()  # nothing new: the history stays as it is
    path = tmp_path / "warehouse" / "tables" / "orders_history"
    table = spark.read.format("delta").load(str(path))
    assert table.schema["__START_AT"].dataType.simpleString() == "timestamp"
    shown = table.selectExpr(
        "status", "carrier", "CAST(__START_AT AS STRING)", "CAST(__END_AT AS STRING)"
    )
    rows = sorted(tuple(r) for r in shown.collect())
    assert rows == [
        ("CREATED", "DHL", "2026-03-01 10:00:00", "2026-03-02 10:00:00"),
        ("IN_TRANSIT", "UPS", "2026-03-02 10:00:00", None),
    ]


CLOUDFILES_VIEW = """
from pyspark import pipelines as dp

from orderlake.contract import RAW_SCHEMA
from orderlake.settings import PipelineSettings
from orderlake.source_options import autoloader_options

settings = PipelineSettings.from_conf(spark.conf)


@dp.temporary_view(name="raw_changes")
{expectation}
def raw_changes():
    return (
        spark.readStream.format("cloudFiles")
        .options(**autoloader_options(settings))
        .schema(RAW_SCHEMA)
        .load(settings.source_path)
    )

{reader}
"""


@pytest.mark.parametrize(
    ("expectation", "reader", "message"),
    [
        (
            "",
            'dp.create_streaming_table("raw_target")\n'
            'dp.create_auto_cdc_flow(target="raw_target", source="raw_changes", '
            'keys=["tracking_num"], sequence_by="last_updated")',
            "AUTO CDC source 'raw_changes' reads cloudFiles",
        ),
        (
            '@dp.expect_or_drop("has_key", "tracking_num IS NOT NULL")',
            '@dp.table(name="raw_copy")\ndef raw_copy():\n'
            '    return spark.readStream.table("raw_changes")',
            "does not apply while loading files",
        ),
    ],
)
def test_cloudfiles_behind_a_view_is_refused_where_it_would_run_differently(
    tmp_path, spark, expectation, reader, message
):
    """A view over cloudFiles feeding AUTO CDC would never load a file here, and a view's
    expectations are not applied while files load: both refused when the pipeline loads."""
    from orderlake.errors import ConfigurationError

    root = copy_bundle(tmp_path / "bundle")
    code = CLOUDFILES_VIEW.format(expectation=expectation, reader=reader)
    (root / "dlt" / "raw.py").write_text(code)
    with pytest.raises(ConfigurationError, match=message):
        _pipeline(tmp_path, spark, root)


CLOUDFILES_TABLE = """
from pyspark import pipelines as dp

from orderlake.contract import RAW_SCHEMA
from orderlake.settings import PipelineSettings
from orderlake.source_options import autoloader_options

settings = PipelineSettings.from_conf(spark.conf)


@dp.table(name="raw_orders")
@dp.expect("known_carrier", "carrier IN ('UPS', 'DHL')")
{rule}
def raw_orders():
    return (
        spark.readStream.format("cloudFiles")
        .options(**autoloader_options(settings))
        .schema(RAW_SCHEMA)
        .load(settings.source_path)
    )
"""


def _cloudfiles_bundle(tmp_path: Path, rule: str) -> Path:
    """A bundle whose only table loads the files itself, with expectations on it."""
    root = copy_bundle(tmp_path / "bundle")
    (root / "dlt" / "orders_pipeline.py").unlink()
    (root / "dlt" / "raw.py").write_text(CLOUDFILES_TABLE.format(rule=rule))
    return root


def test_expectations_on_a_table_that_loads_files_apply_as_the_rows_are_appended(
    tmp_path, spark, drop_file
):
    """A bronze table reading cloudFiles with expectations (a common Databricks shape):
    drop rules filter the appended rows, warn rules only count, both in the event log."""
    drop_file(
        "a.csv",
        [
            order_row("TRK00000001", "2026-03-01T10:00:00Z", amount="10.00"),
            order_row("TRK00000002", "2026-03-01T10:00:00Z", amount="-1.00", carrier="DHL"),
            order_row("TRK00000003", "2026-03-01T10:00:00Z", amount="7.00", carrier="FEDEX"),
        ],
    )
    root = _cloudfiles_bundle(
        tmp_path, '@dp.expect_or_drop("amount_not_negative", "amount NOT LIKE \'-%\'")'
    )
    _pipeline(tmp_path, spark, root).update()
    kept = sorted(r["tracking_num"] for r in _rows(spark, tmp_path, "raw_orders"))
    assert kept == ["TRK00000001", "TRK00000003"]  # the drop rule; the warn rule keeps FEDEX
    (event,) = [
        e
        for e in _events(tmp_path)
        if e["event_type"] == "flow_progress" and e["origin"].get("flow_name") == "raw_orders"
    ]
    quality = event["details"]["flow_progress"]["data_quality"]
    counts = {
        e["name"]: (e["passed_records"], e["failed_records"]) for e in quality["expectations"]
    }
    assert counts == {"known_carrier": (2, 1), "amount_not_negative": (2, 1)}
    assert quality["dropped_records"] == 1
    assert event["details"]["flow_progress"]["metrics"]["num_output_rows"] == 2
    assert sorted(p.name for p in (tmp_path / "volume" / "archive").iterdir()) == ["a.csv"]


def test_a_fail_rule_on_a_table_that_loads_files_keeps_the_file_for_the_next_update(
    tmp_path, spark, drop_file
):
    """Databricks' semantics: the update fails, nothing of the batch is written, and the same
    rows are retried by the next update (here the file stays in source/)."""
    drop_file("a.csv", [order_row("TRK00000001", "2026-03-01T10:00:00Z", carrier="FEDEX")])
    root = _cloudfiles_bundle(tmp_path, '@dp.expect_or_fail("ups_only", "carrier = \'UPS\'")')
    for _ in range(2):
        with pytest.raises(ExpectationFailed, match="ups_only"):
            _pipeline(tmp_path, spark, root).update()
        assert [p.name for p in (tmp_path / "volume" / "source").iterdir()] == ["a.csv"]
        assert not (tmp_path / "volume" / "archive").exists() or not any(
            (tmp_path / "volume" / "archive").iterdir()
        )
        assert _rows(spark, tmp_path, "raw_orders") == []
