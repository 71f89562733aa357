"""The orders file contract: which columns a client file has, their types, which are required."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import StringType, StructField, StructType


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # Spark SQL type the raw text is parsed to
    required: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("tracking_num", "string", required=True),
    Column("order_id", "string", required=True),
    Column("customer_id", "string"),
    Column("order_date", "date"),
    Column("carrier", "string"),
    Column("origin", "string"),
    Column("destination", "string"),
    Column("status", "string"),
    Column("weight_kg", "decimal(10,3)"),
    Column("amount", "decimal(12,2)"),
    Column("currency", "string"),
    Column("last_updated", "timestamp", required=True),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
TYPED_COLUMNS: tuple[Column, ...] = tuple(c for c in COLUMNS if c.sql_type != "string")

KEY = "tracking_num"
SEQUENCE = "last_updated"
TRACKING_NUM_PATTERN = "^[A-Z0-9]{8,35}$"
CURRENCY_PATTERN = "^[A-Z]{3}$"
DATE_FORMAT = "yyyy-MM-dd"
STATUSES: tuple[str, ...] = (
    "CREATED",
    "PICKED_UP",
    "IN_TRANSIT",
    "OUT_FOR_DELIVERY",
    "DELIVERED",
    "EXCEPTION",
    "RETURNED",
    "CANCELLED",
)

# Column that holds what did not fit the contract: Auto Loader's rescued-data column on
# Databricks, the malformed record's raw text locally.
RESCUED = "_rescued_data"

# What the file reader yields: every contract column as raw text, plus the rescued column.
# Required columns are marked non-nullable: the local engine rejects a file whose header lacks
# one (Spark itself reads every file column as nullable).
RAW_SCHEMA = StructType(
    [StructField(c.name, StringType(), not c.required) for c in COLUMNS]
    + [StructField(RESCUED, StringType(), True)]
)
