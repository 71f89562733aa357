"""The rows appended to a Delta table between two versions, read from its log and data files.

What a Structured Streaming read of a Delta table would deliver as one micro-batch, without a
streaming query: the `add` actions of the commits in the range (JSON lines in `_delta_log/`)
name the files, and those are read as Parquet with the table's schema. Like a Delta streaming
source, it refuses a commit that changed existing rows (a `remove` with `dataChange`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from orderlake.engine.delta_log import latest_version
from orderlake.errors import ConfigurationError
from orderlake.storage.path import AnyPath, as_path


class NotAppendOnly(ConfigurationError, RuntimeError):
    """A streaming source table had rows changed or deleted: only appends can be streamed
    (the fix is the user's: `orderlake refresh`)."""


@dataclass(frozen=True)
class AppendedFile:
    path: str  # absolute
    size: int
    rows: int | None  # from the file's statistics, when written


def _commit_file(table: AnyPath, version: int) -> AnyPath:
    return as_path(table) / "_delta_log" / f"{version:020d}.json"


def commit_actions(table: Path, version: int) -> list[dict[str, Any]]:
    """The actions of one commit."""
    path = _commit_file(table, version)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotAppendOnly(
            f"{table}: the log no longer holds version {version} (cleaned up); "
            "run `orderlake refresh` to rebuild the tables that read it"
        ) from None
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def appended_files(table: Path, start: int, end: int) -> list[AppendedFile]:
    """The data files versions `start`..`end` (inclusive) added to the table."""
    files = []
    for version in range(start, end + 1):
        for action in commit_actions(table, version):
            remove = action.get("remove")
            if remove is not None and remove.get("dataChange", True):
                raise NotAppendOnly(
                    f"{table}: version {version} changed or deleted rows; a streaming read "
                    "takes appends only (rebuild its readers with `orderlake refresh`)"
                )
            add = action.get("add")
            if add is None or not add.get("dataChange", True):
                continue  # compaction and the like: no new rows
            if add.get("partitionValues") or add.get("deletionVector"):
                raise NotAppendOnly(
                    f"{table}: version {version} adds a partitioned file or a deletion vector; "
                    "streaming reads of such tables are not supported by the local engine"
                )
            stats = json.loads(add["stats"]) if add.get("stats") else {}
            path = str(as_path(table) / unquote(add["path"]))
            files.append(AppendedFile(path, int(add["size"]), stats.get("numRecords")))
    return files


def schema_at(table: Path, version: int) -> StructType | None:
    """The table's schema as of `version`, from the newest `metaData` in the commits up to it.

    None when those commits are gone (cleaned up after a checkpoint): ask Delta instead."""
    for v in range(version, -1, -1):
        try:
            actions = commit_actions(table, v)
        except NotAppendOnly:
            return None
        for action in actions:
            meta = action.get("metaData")
            if meta is None:
                continue
            mode = (meta.get("configuration") or {}).get("delta.columnMapping.mode", "none")
            if mode != "none":
                raise NotAppendOnly(f"{table}: column mapping ({mode}) is not supported here")
            return StructType.fromJson(json.loads(meta["schemaString"]))
    return None


@dataclass(frozen=True)
class Appended:
    """The rows some versions of a table appended."""

    frame: DataFrame
    rows: int | None  # how many, when every file's statistics say
    size: int  # the bytes of their Parquet files


def read_appended(spark: SparkSession, table: Path, start: int, end: int) -> Appended:
    """The rows versions `start`..`end` appended."""
    schema = schema_at(table, end)
    if schema is None:
        schema = spark.read.format("delta").load(str(table)).schema
    files = appended_files(table, start, end)
    if not files:
        return Appended(spark.createDataFrame([], schema), 0, 0)
    rows = None if any(f.rows is None for f in files) else sum(f.rows or 0 for f in files)
    frame = spark.read.schema(schema).parquet(*[_literal(f.path) for f in files])
    return Appended(frame, rows, sum(f.size for f in files))


def _literal(path: str) -> str:
    """A path Spark reads as exactly that file (Hadoop would expand glob characters)."""
    from orderlake.engine.autoloader.reader import literal_path

    return literal_path(as_path(path))


def source_version(table: Path) -> int:
    """The newest version of a source table (-1 when it has no commit yet)."""
    version = latest_version(table)
    return -1 if version is None else version
