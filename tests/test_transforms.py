"""The pure transforms, on real Spark DataFrames."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from pyspark.sql import Row

from orderlake import transforms
from orderlake.contract import COLUMN_NAMES, RAW_SCHEMA
from orderlake.rules import load_rules
from orderlake.settings import REPO_ROOT


def _bronze(spark, rows: list[dict]):
    from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

    schema = StructType(
        [StructField(f.name, StringType()) for f in RAW_SCHEMA.fields]
        + [
            StructField(transforms.SOURCE_FILE, StringType()),
            StructField(transforms.FILE_MODIFICATION_TIME, TimestampType()),
            StructField(transforms.INGESTED_AT, TimestampType()),
            StructField(transforms.ROW_POSITION, LongType()),
        ]
    )
    base = {name: None for name in schema.fieldNames()}
    base.update(
        {
            "tracking_num": "TRK00000001",
            "order_id": "O1",
            "last_updated": "2026-03-01T10:00:00Z",
            transforms.SOURCE_FILE: "file:/v/source/a.csv",
            transforms.FILE_MODIFICATION_TIME: datetime(2026, 3, 1),
            transforms.INGESTED_AT: datetime(2026, 3, 2),
            transforms.ROW_POSITION: 0,
        }
    )
    data = []
    for i, row in enumerate(rows):
        values = dict(base, **{transforms.ROW_POSITION: i})
        values.update(row)
        data.append(tuple(values[n] for n in schema.fieldNames()))
    return spark.createDataFrame(data, schema)


def _parsed(spark, **raw: str) -> Row:
    return transforms.parse_orders(_bronze(spark, [raw])).first()


def test_values_are_trimmed_and_empty_is_null(spark):
    row = _parsed(spark, customer_id="  C9 \t", carrier="   ", origin="")
    assert row.customer_id == "C9"
    assert row.carrier is None and row.origin is None
    assert row._raw.carrier is None


def test_tracking_num_is_upper_cased(spark):
    assert _parsed(spark, tracking_num=" trk0000abc1 ").tracking_num == "TRK0000ABC1"


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("2026-03-01T10:15:00Z", "2026-03-01 10:15:00.000000"),
        ("2026-03-01T10:15:00+02:00", "2026-03-01 08:15:00.000000"),
        ("2026-03-01 10:15:00", "2026-03-01 10:15:00.000000"),
        ("2026-03-01T10:15:00.123456", "2026-03-01 10:15:00.123456"),
        ("2026-13-01T10:15:00Z", None),
        ("yesterday", None),
        ("12345", None),
    ],
)
def test_last_updated_accepts_iso_8601_and_no_zone_is_utc(spark, text, expected_utc):
    from pyspark.sql import functions as F

    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    parsed = transforms.parse_orders(_bronze(spark, [{"last_updated": text}]))
    shown = parsed.select(
        F.date_format("last_updated", "yyyy-MM-dd HH:mm:ss.SSSSSS").alias("t")
    ).first()
    assert shown.t == expected_utc


@pytest.mark.parametrize(
    ("column", "text", "expected"),
    [
        ("order_date", "2026-03-01", date(2026, 3, 1)),
        ("order_date", "2026-3-1", None),
        ("order_date", "01/03/2026", None),
        ("amount", "12.50", Decimal("12.50")),
        ("amount", "-3", Decimal("-3.00")),
        ("amount", "12.345", None),  # no silent rounding
        ("amount", "1e3", None),
        ("amount", "1,234.00", None),
        ("weight_kg", "0.125", Decimal("0.125")),
        ("weight_kg", "12345678.1", None),  # overflows decimal(10,3)
    ],
)
def test_typed_columns_parse_strictly(spark, column, text, expected):
    assert getattr(_parsed(spark, **{column: text}), column) == expected


def test_raw_keeps_the_file_text_for_rules(spark):
    row = _parsed(spark, amount="abc")
    assert row.amount is None
    assert row._raw.amount == "abc"


def test_quarantined_names_every_failed_drop_rule(spark):
    rules = load_rules(REPO_ROOT / "expectations" / "orders.yml")
    bronze = _bronze(
        spark,
        [
            {},  # valid
            {"tracking_num": "bad!", "amount": "-1"},
            {"last_updated": None, "order_id": None},
        ],
    )
    rows = transforms.quarantined(transforms.parse_orders(bronze), rules.drop).collect()
    by_row = {r[transforms.ROW_POSITION]: r for r in rows}
    assert set(by_row) == {1, 2}
    assert by_row[1][transforms.FAILED_RULES] == ["valid_tracking_num", "amount_not_negative"]
    assert by_row[2][transforms.FAILED_RULES] == ["order_id_present", "last_updated_present"]
    assert by_row[1].tracking_num == "bad!"  # the text as sent, not the parsed value
    assert by_row[1][transforms.REASON].startswith("row 2 of file:/v/source/a.csv: failed")
    assert list(rows[0].asDict())[: len(COLUMN_NAMES)] == list(COLUMN_NAMES)


def test_quarantine_without_drop_rules_reads_nothing(spark, tmp_path):
    # Its files deleted after planning: a read would fail, so the count shows none was made.
    _bronze(spark, [{}, {"amount": "-1"}]).write.parquet(str(tmp_path / "bronze"))
    bronze = spark.read.parquet(str(tmp_path / "bronze"))
    quarantine = transforms.quarantined(transforms.parse_orders(bronze), {})
    for part in (tmp_path / "bronze").glob("*.parquet"):
        part.unlink()
    assert quarantine.count() == 0
    assert quarantine.columns[: len(COLUMN_NAMES)] == list(COLUMN_NAMES)


def test_sequence_orders_by_last_updated_then_ingestion(spark):
    bronze = _bronze(
        spark,
        [
            {"last_updated": "2026-03-01T10:00:00Z"},
            {"last_updated": "2026-03-01T09:00:00Z"},
            {"last_updated": "2026-03-01T10:00:00Z"},
        ],
    )
    ordered = (
        transforms.parse_orders(bronze)
        .withColumn("seq", transforms.sequence_column())
        .orderBy("seq")
        .select(transforms.ROW_POSITION)
        .collect()
    )
    assert [r[0] for r in ordered] == [1, 0, 2]
