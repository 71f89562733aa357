"""Auto Loader CSV header names keep their case and align with the schema's by
`readerCaseSensitive`, as documented, on real CSV files.

https://docs.databricks.com/aws/en/ingestion/cloud-object-storage/auto-loader/options (CSV
options): `readerCaseSensitive` (default true) "Specifies the case sensitivity behavior when
rescuedDataColumn is enabled. If true, rescue the data columns whose names differ by case from
the schema; otherwise, read the data in a case-insensitive manner"; the deprecated
`parserCaseSensitive`: "whether to align columns declared in the header with the schema case
sensitively. This is true by default for Auto Loader."
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orderlake.engine.autoloader.files import inspect_file
from orderlake.engine.run.runner import LocalPipeline

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ("userId", "name", "sequenceNum")
REQUIRED = ("userId",)

DEFINITIONS = """
from pyspark import pipelines as dp
from pyspark.sql.types import StringType, StructField, StructType

VOLUME = spark.conf.get("orders.volume_path")
SCHEMA = StructType(
    [StructField("userId", StringType(), nullable=False)]
    + [StructField(c, StringType()) for c in ("name", "sequenceNum")]
)


@dp.table(name="users_raw")
def users_raw():
    return (
        spark.readStream.format("cloudFiles")
        .option("cloudFiles.format", "csv")
        .option("header", "true")
        .option("cloudFiles.cleanSource", "MOVE")
        .option("cloudFiles.cleanSource.moveDestination", f"{{VOLUME}}/archive"){options}
        .schema(SCHEMA)
        .load(f"{{VOLUME}}/source")
    )
"""


def _csv(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_mixed_case_header_matches_the_schema_column_of_that_case(tmp_path):
    """A CSV column `userId` is the schema's `userId` (it was refused: the header was
    lower-cased before it was compared with the schema's names)."""
    path = _csv(tmp_path, "users.csv", "userId,name,sequenceNum\n124,Raul,1\n")
    verdict = inspect_file(path, COLUMNS, REQUIRED)
    assert (verdict.outcome, verdict.reason) == ("load", "")
    assert verdict.header == ("userId", "name", "sequenceNum")


def test_by_default_a_header_name_in_another_case_does_not_fill_the_column(tmp_path):
    """readerCaseSensitive=true (the default): `USERID` is not `userId`; the file is refused
    here (its required key would be empty) with the reason and the option that changes it."""
    path = _csv(tmp_path, "users.csv", "USERID,name,sequenceNum\n124,Raul,1\n")
    verdict = inspect_file(path, COLUMNS, REQUIRED)
    assert verdict.outcome == "reject"
    assert "required columns missing from the header: userId" in verdict.reason
    assert "USERID for userId" in verdict.reason and "readerCaseSensitive=false" in verdict.reason


def test_reader_case_insensitive_matches_any_case_and_keeps_the_header_as_written(tmp_path):
    """readerCaseSensitive=false: "read the data in a case-insensitive manner"."""
    path = _csv(tmp_path, "users.csv", "USERID,Name,sequencenum\n124,Raul,1\n")
    verdict = inspect_file(path, COLUMNS, REQUIRED, case_sensitive=False)
    assert verdict.outcome == "load"
    assert verdict.header == ("USERID", "Name", "sequencenum")


@pytest.fixture
def header_bundle(tmp_path: Path):
    """The users bundle with one Auto Loader table; `options` adds reader options."""

    def make(options: str = "") -> Path:
        root = tmp_path / "bundle"
        shutil.copytree(REPO / "tests" / "users_bundle", root, dirs_exist_ok=True)
        (root / "pipelines" / "users.py").write_text(DEFINITIONS.format(options=options))
        return root

    return make


def _rows(spark, tmp_path: Path) -> list[dict]:
    table = tmp_path / "warehouse" / "tables" / "users_raw"
    frame = spark.read.format("delta").load(str(table))
    return sorted((r.asDict() for r in frame.select(*COLUMNS).collect()), key=str)


def test_a_mixed_case_csv_loads_into_the_mixed_case_columns(tmp_path, spark, header_bundle):
    """End to end on the engine: files with the schema's own case and, with
    readerCaseSensitive=false, in another case and order, land in `userId`, `sequenceNum`."""
    root = header_bundle('\n        .option("readerCaseSensitive", "false")')
    source = tmp_path / "volume" / "source"
    _csv(source, "a.csv", "userId,name,sequenceNum\n124,Raul,1\n")
    _csv(source, "b.csv", "SEQUENCENUM,UserId,NAME\n2,125,Mercedes\n")
    pipeline = LocalPipeline(
        tmp_path / "volume", tmp_path / "warehouse", spark=spark, bundle_root=root
    )
    result = pipeline.update()
    assert result.bronze_rows == 2
    assert _rows(spark, tmp_path) == [
        {"userId": "124", "name": "Raul", "sequenceNum": "1"},
        {"userId": "125", "name": "Mercedes", "sequenceNum": "2"},
    ]


def test_by_default_the_schema_case_loads_and_another_case_is_rejected(
    tmp_path, spark, header_bundle
):
    """End to end with the default readerCaseSensitive=true: `userId` fills `userId`; a file
    whose key column is `USERID` is rejected with the reason (Auto Loader would rescue it)."""
    root = header_bundle()
    source = tmp_path / "volume" / "source"
    _csv(source, "a.csv", "userId,name,sequenceNum\n124,Raul,1\n")
    _csv(source, "c.csv", "USERID,name,sequenceNum\n126,Lily,2\n")
    pipeline = LocalPipeline(
        tmp_path / "volume", tmp_path / "warehouse", spark=spark, bundle_root=root
    )
    result = pipeline.update()
    assert _rows(spark, tmp_path) == [{"userId": "124", "name": "Raul", "sequenceNum": "1"}]
    rejected = [r for ingested in result.ingest for r in ingested.rejected]
    assert [name for name, _ in rejected] == ["c.csv"]
    assert "USERID for userId" in rejected[0][1]
