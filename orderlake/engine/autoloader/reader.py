"""Local Auto Loader: what `spark.readStream.format("cloudFiles")` gives the definitions here.

It does not list anything itself. The runner first calls the flow in *probe* mode to learn the
source path and options, then decides which files this update takes (see `ingest.py`), and
calls the flow again with those files set; `load` then reads exactly them, as text, with the
columns matched by header name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from orderlake.errors import ConfigurationError
from orderlake.storage.path import AnyPath, as_path

# Options understood here; anything else is refused rather than silently ignored.
KNOWN_OPTIONS = {
    "cloudFiles.format",
    "header",
    "multiLine",
    "rescuedDataColumn",
    "readerCaseSensitive",
    "cloudFiles.schemaEvolutionMode",
    "cloudFiles.allowOverwrites",
    "cloudFiles.cleanSource",
    "cloudFiles.cleanSource.moveDestination",
    "cloudFiles.cleanSource.retentionDuration",
}

METADATA_SCHEMA = StructType(
    [
        StructField("file_path", StringType()),
        StructField("file_name", StringType()),
        StructField("file_size", LongType()),
        StructField("file_block_start", LongType()),
        StructField("file_block_length", LongType()),
        StructField("file_modification_time", TimestampType()),
    ]
)


class AutoLoaderError(ConfigurationError, ValueError):
    """The definitions ask the local Auto Loader for something it does not do."""


@dataclass(frozen=True)
class CloudFilesSource:
    """What a flow's `cloudFiles` read asked for."""

    path: AnyPath
    options: dict[str, str]
    schema: StructType

    @property
    def archive_path(self) -> AnyPath | None:
        if self.options.get("cloudFiles.cleanSource", "OFF").upper() != "MOVE":
            return None
        return as_path(self.options["cloudFiles.cleanSource.moveDestination"])

    @property
    def rescued_column(self) -> str | None:
        return self.options.get("rescuedDataColumn")

    @property
    def reader_case_sensitive(self) -> bool:
        """`readerCaseSensitive` (Auto Loader's default: true): whether header names must have
        the schema's case to fill its columns."""
        return self.options.get("readerCaseSensitive", "true").strip().lower() != "false"


_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")


def literal_path(path: AnyPath) -> str:
    """A path Spark reads as exactly that file: Hadoop would expand `[1]`, `*`, `{a,b}`..."""
    return _GLOB_CHARS.sub(r"\\\1", str(path))


@dataclass(frozen=True)
class FileToRead:
    path: AnyPath
    header: tuple[str, ...]


@dataclass
class LocalAutoLoader:
    spark: SparkSession
    probing: bool = True
    files: list[FileToRead] = field(default_factory=list)
    requests: list[CloudFilesSource] = field(default_factory=list)

    def load(self, path: str | None, options: dict[str, str], schema: Any) -> DataFrame:
        source = self._validate(path, options, schema)
        self.requests.append(source)
        if self.probing or not self.files:
            return self._empty(source)
        return self._read(source)

    def _validate(self, path: str | None, options: dict[str, str], schema: Any) -> CloudFilesSource:
        if not path:
            raise AutoLoaderError("cloudFiles load() needs the source folder path")
        unknown = sorted(set(options) - KNOWN_OPTIONS)
        if unknown:
            raise AutoLoaderError(f"cloudFiles options not supported locally: {unknown}")
        if options.get("cloudFiles.format", "").lower() != "csv":
            raise AutoLoaderError("the local Auto Loader reads cloudFiles.format=csv only")
        if options.get("header", "false").lower() != "true":
            raise AutoLoaderError("the local Auto Loader needs header=true")
        if not isinstance(schema, StructType):
            raise AutoLoaderError("give the cloudFiles reader an explicit schema (a StructType)")
        if options.get("readerCaseSensitive", "true").strip().lower() not in ("true", "false"):
            raise AutoLoaderError("readerCaseSensitive must be true or false")
        clean = options.get("cloudFiles.cleanSource", "OFF").upper()
        if clean not in ("OFF", "MOVE"):
            raise AutoLoaderError(f"cloudFiles.cleanSource={clean} is not supported locally")
        if clean == "MOVE" and not options.get("cloudFiles.cleanSource.moveDestination"):
            raise AutoLoaderError("cleanSource=MOVE needs cloudFiles.cleanSource.moveDestination")
        return CloudFilesSource(as_path(path), options, schema)

    def _output_schema(self, source: CloudFilesSource) -> StructType:
        fields = list(source.schema.fields)
        rescued = source.rescued_column
        if rescued and rescued not in source.schema.fieldNames():
            fields.append(StructField(rescued, StringType()))
        return StructType([*fields, StructField("_metadata", METADATA_SCHEMA)])

    def _empty(self, source: CloudFilesSource) -> DataFrame:
        return self.spark.createDataFrame([], self._output_schema(source))

    def _read(self, source: CloudFilesSource) -> DataFrame:
        """Files grouped by header layout; each group read as text and mapped by name."""
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for f in self.files:
            groups[f.header].append(literal_path(f.path))
        wanted = [f.name for f in source.schema.fields]
        rescued = source.rescued_column or "_corrupt_record"
        frames = []
        for header, paths in groups.items():
            positional = StructType(
                [StructField(f"_c{i}", StringType()) for i in range(len(header))]
                + [StructField(rescued, StringType())]
            )
            frame = (
                self.spark.read.format("csv")
                .schema(positional)
                .option("header", "true")
                .option("multiLine", source.options.get("multiLine", "false"))
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", rescued)
                .option("escape", '"')
                .option("encoding", "UTF-8")
                .option("enforceSchema", "true")
                .load(paths)
            )
            key = (lambda name: name) if source.reader_case_sensitive else str.lower
            index = {key(name): i for i, name in enumerate(header)}
            columns = [
                (
                    F.col(f"_c{index[key(name)]}")
                    if key(name) in index
                    else F.lit(None).cast("string")
                ).alias(name)
                for name in wanted
                if name != rescued
            ]
            columns.append(F.col(rescued))
            frames.append(frame.select(*columns, F.col("_metadata")))
        result = frames[0]
        for frame in frames[1:]:
            result = result.unionByName(frame)
        return result.select(*[c.name for c in self._output_schema(source).fields])
