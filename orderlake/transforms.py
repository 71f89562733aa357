"""Pure DataFrame -> DataFrame transforms of the orders pipeline.

The definitions in `dlt/` call these; tests call them directly, since the `dp` decorators
return None and cannot be called outside a pipeline.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from orderlake.contract import (
    COLUMN_NAMES,
    COLUMNS,
    DATE_FORMAT,
    KEY,
    RESCUED,
    SEQUENCE,
)
from orderlake.rules import null_fails

# File metadata every bronze row carries.
SOURCE_FILE = "_source_file"
FILE_MODIFICATION_TIME = "_file_modification_time"
INGESTED_AT = "_ingested_at"
ROW_POSITION = "_row_position"
RAW = "_raw"
METADATA_COLUMNS = (SOURCE_FILE, FILE_MODIFICATION_TIME, INGESTED_AT, ROW_POSITION)

# Kept out of orders_target: parsing aids and the finer ordering columns.
TARGET_EXCLUDED_COLUMNS = [RAW, RESCUED, FILE_MODIFICATION_TIME, ROW_POSITION]

FAILED_RULES = "_failed_rules"
REASON = "_reason"

_ROW_IN_PARTITION_MASK = (1 << 33) - 1
_TIMESTAMP_TEXT = (
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
    r"(Z|[+-]\d{2}(:?\d{2})?)?$"
)
_WHITESPACE = " \t\r\n"

T = TypeVar("T")
# Column expressions built once per session: with classic PySpark each function call is a
# round trip to the JVM, and a parse builds hundreds of them (a tenth of a second per update).
# Columns are plain unresolved expressions, so one list serves every DataFrame of a session.
_BUILT: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _built(frame: DataFrame, key: Any, build: Callable[[], T]) -> T:
    cache = _BUILT.setdefault(frame.sparkSession, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def with_file_metadata(files: DataFrame) -> DataFrame:
    """Raw rows of the reader plus where they came from (bronze's shape).

    The row position is the row's index inside its read partition. A file read whole (one
    partition, as `multiLine` and the local engine guarantee) gets its 0-based data row index.
    """
    return files.select(*_built(files, "file_metadata", _file_metadata_columns))


def _file_metadata_columns() -> list[Column]:
    return [
        *[F.col(name) for name in COLUMN_NAMES],
        F.col(RESCUED),
        F.col("_metadata.file_path").alias(SOURCE_FILE),
        F.col("_metadata.file_modification_time").alias(FILE_MODIFICATION_TIME),
        F.current_timestamp().alias(INGESTED_AT),
        (F.monotonically_increasing_id().bitwiseAND(F.lit(_ROW_IN_PARTITION_MASK))).alias(
            ROW_POSITION
        ),
    ]


def _clean_text(name: str) -> Column:
    """Trimmed text; an empty value is NULL."""
    trimmed = F.trim(F.col(name), F.lit(_WHITESPACE))
    return F.when(trimmed != "", trimmed)


def _decimal_text(precision: int, scale: int) -> str:
    whole = precision - scale
    return rf"^[+-]?\d{{1,{whole}}}(\.\d{{1,{scale}}})?$"


def _parse(text: Column, sql_type: str) -> Column:
    """Text to its contract type; NULL when the text is not a valid value of that type."""
    if sql_type == "string":
        return text
    if sql_type == "date":
        return F.to_date(F.try_to_timestamp(text, F.lit(DATE_FORMAT)))
    if sql_type == "timestamp":
        return F.when(text.rlike(_TIMESTAMP_TEXT), text.try_cast("timestamp"))
    decimal = re.fullmatch(r"decimal\((\d+),(\d+)\)", sql_type)
    if decimal:
        precision, scale = int(decimal.group(1)), int(decimal.group(2))
        # Strict text check first: no silent rounding, no exponents, no thousands separators.
        return F.when(text.rlike(_decimal_text(precision, scale)), text.try_cast(sql_type))
    raise ValueError(f"no parser for contract type {sql_type!r}")


def parse_orders(bronze: DataFrame) -> DataFrame:
    """Bronze text rows to typed order rows; `_raw` keeps the cleaned text for rules."""
    return bronze.select(*_built(bronze, "parsed", _parsed_columns))


def _parsed_columns() -> list[Column]:
    cleaned = {c.name: _clean_text(c.name) for c in COLUMNS}
    typed = []
    for column in COLUMNS:
        text = cleaned[column.name]
        if column.name == KEY:
            text = F.upper(text)
        typed.append(_parse(text, column.sql_type).alias(column.name))
    raw = F.struct(*[cleaned[name].alias(name) for name in COLUMN_NAMES]).alias(RAW)
    return [*typed, raw, F.col(RESCUED), *[F.col(name) for name in METADATA_COLUMNS]]


def sequence_column() -> Column:
    """SCD1 ordering: last_updated, then ingestion order (update, file time, path, row)."""
    return F.struct(SEQUENCE, INGESTED_AT, FILE_MODIFICATION_TIME, SOURCE_FILE, ROW_POSITION)


def passes(constraint: str) -> Column:
    """A rule's constraint as a never-NULL boolean: NULL counts as failed (`null_fails`)."""
    return F.expr(null_fails(constraint))


def quarantined(parsed: DataFrame, drop_rules: Mapping[str, str]) -> DataFrame:
    """Rows that fail any drop rule, with their file text and the name of every failed rule."""
    failed, keep, shown = _built(
        parsed, ("quarantined", tuple(drop_rules.items())), lambda: _quarantine_columns(drop_rules)
    )
    return parsed.withColumn(FAILED_RULES, failed).where(keep).select(*shown)


def _quarantine_columns(drop_rules: Mapping[str, str]) -> tuple[Column, Column, list[Column]]:
    failed = F.filter(
        F.array(*[F.when(~passes(c), F.lit(name)) for name, c in drop_rules.items()]).cast(
            "array<string>"  # typed even when there are no drop rules
        ),
        lambda name: name.isNotNull(),
    )
    reason = F.concat(
        F.lit("row "),
        (F.col(ROW_POSITION) + 1).cast("string"),
        F.lit(" of "),
        F.col(SOURCE_FILE),
        F.lit(": failed "),
        F.array_join(F.col(FAILED_RULES), ", "),
    )
    shown = [
        *[F.col(f"{RAW}.{name}").alias(name) for name in COLUMN_NAMES],
        F.col(RESCUED),
        F.col(FAILED_RULES),
        reason.alias(REASON),
        *[F.col(name) for name in METADATA_COLUMNS],
    ]
    # With no drop rule nothing is quarantined: a literal false lets Spark skip the read.
    keep = F.size(FAILED_RULES) > 0 if drop_rules else F.lit(False)
    return failed, keep, shown
