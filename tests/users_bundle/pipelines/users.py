"""Users change feed -> raw table (two append flows: CSV files and a hand-kept fix-up view) ->
a checked view -> SCD type 2 history and SCD type 1 current table -> a materialized view."""

from pyspark import pipelines as dp
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

VOLUME = spark.conf.get("orders.volume_path")
CHANGE_SCHEMA = StructType(
    [StructField("user_id", StringType(), nullable=False)]
    + [StructField(c, StringType()) for c in ("name", "city", "operation", "sequence_num")]
)


def _files(folder: str):
    return (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "csv")
        .option("header", "true")
        .option("cloudFiles.cleanSource", "MOVE")
        .option("cloudFiles.cleanSource.moveDestination", f"{VOLUME}/archive")
        .schema(CHANGE_SCHEMA)
        .load(f"{VOLUME}/{folder}")
    )


dp.create_streaming_table("users_raw", comment="Every change row, from both feeds.")


@dp.table(name="users_files")
def users_files():
    return _files("source")


@dp.append_flow(target="users_raw", name="from_files")
def from_files():
    return spark.readStream.table("users_files")


@dp.append_flow(target="users_raw", name="from_files_upper")
def from_files_upper():
    # A second feed into the same table: the same rows, names upper-cased, keys prefixed.
    return (
        spark.readStream.table("users_files")
        .withColumn("user_id", F.concat(F.lit("U"), "user_id"))
        .withColumn("name", F.upper("name"))
    )


@dp.temporary_view(name="users_changes")
@dp.expect_or_drop("has_sequence", "sequence_num IS NOT NULL")
def users_changes():
    return spark.readStream.table("users_raw").withColumn(
        "sequence_num", F.col("sequence_num").cast("long")
    )


dp.create_streaming_table("users_history")
dp.create_auto_cdc_flow(
    target="users_history",
    source="users_changes",
    keys=["user_id"],
    sequence_by="sequence_num",
    apply_as_deletes="operation = 'DELETE'",
    except_column_list=["operation", "sequence_num"],
    stored_as_scd_type=2,
)

dp.create_streaming_table("users_current")
dp.create_auto_cdc_flow(
    target="users_current",
    source="users_changes",
    keys=["user_id"],
    sequence_by="sequence_num",
    apply_as_deletes="operation = 'DELETE'",
    except_column_list=["operation", "sequence_num"],
)


@dp.materialized_view(name="users_per_city")
def users_per_city():
    return spark.read.table("users_current").groupBy("city").agg(F.count("*").alias("users"))
