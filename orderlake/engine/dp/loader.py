"""Load the `dlt/` definition files into a PipelineGraph: the seam with Databricks.

On Databricks the runtime provides `pyspark.pipelines` (with expectations and AUTO CDC) and a
`spark` whose readStream knows Auto Loader (`cloudFiles`). Here, only while the files load,
`pyspark.pipelines` is bound to `orderlake.engine.dp.api`, and the files get a `spark` that sends
`cloudFiles` reads to the local Auto Loader and everything else to the real session.
"""

from __future__ import annotations

import contextlib
import runpy
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyspark
from pyspark.sql import DataFrame, SparkSession

from orderlake.engine.autoloader.reader import LocalAutoLoader
from orderlake.engine.dp import api
from orderlake.engine.dp.graph import PipelineGraph
from orderlake.engine.faults import kill_point
from orderlake.errors import ConfigurationError


class DefinitionError(ConfigurationError, RuntimeError):
    """A definition file failed to load; the message names the file."""


class _StreamReader:
    """`spark.readStream` for definitions: records the builder calls, then routes `load`."""

    def __init__(self, session: LocalSparkSession) -> None:
        self._session = session
        self._format: str | None = None
        self._options: dict[str, str] = {}
        self._schema: Any = None

    def format(self, source: str) -> _StreamReader:
        self._format = source
        return self

    def option(self, key: str, value: Any) -> _StreamReader:
        self._options[key] = str(value).lower() if isinstance(value, bool) else str(value)
        return self

    def options(self, **options: Any) -> _StreamReader:
        for key, value in options.items():
            self.option(key, value)
        return self

    def schema(self, schema: Any) -> _StreamReader:
        self._schema = schema
        return self

    def load(self, path: str | None = None) -> DataFrame:
        if self._format == "cloudFiles":
            return self._session.autoloader.load(path, dict(self._options), self._schema)
        reader = self._session.real.readStream
        if self._format:
            reader = reader.format(self._format)
        if self._schema is not None:
            reader = reader.schema(self._schema)
        return reader.options(**self._options).load(path)

    def table(self, name: str) -> DataFrame:
        self._session.tables_read.add(name)
        self._session.check(name)
        bound = self._session.bound.get(name)
        if bound is not None:
            return bound
        view = self._session.view(name)
        if view is not None:
            return view
        if self._session.stream_source is not None:
            found = self._session.stream_source(name)
            if found is not None:
                return found
        return self._session.real.readStream.options(**self._options).table(name)


class _BatchReader:
    """`spark.read` for definitions: the real reader, with `table(name)` recorded and checked."""

    def __init__(self, session: LocalSparkSession) -> None:
        self._session = session

    def table(self, name: str) -> DataFrame:
        self._session.batch_tables_read.add(name)
        self._session.check(name)
        view = self._session.view(name)
        if view is not None:
            return view
        if self._session.learning and self._session.stream_source is not None:
            # Learning what a flow reads: a pipeline table that may not exist yet has the
            # columns its writer will give it (no rows are read).
            found = self._session.stream_source(name)
            if found is not None:
                return found
        return self._session.real.read.table(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session.real.read, name)


class LocalSparkSession:
    """The `spark` the definitions see locally: the real session plus local Auto Loader."""

    def __init__(self, real: SparkSession, autoloader: LocalAutoLoader) -> None:
        self.real = real
        self.autoloader = autoloader
        self.tables_read: set[str] = set()  # read as a stream (`readStream.table`)
        self.batch_tables_read: set[str] = set()  # read whole (`read.table`, `table`)
        # Refuses a table name the pipeline cannot read (set by the runner once loaded).
        self.check_read: Callable[[str], None] | None = None
        self.bound: dict[str, DataFrame] = {}
        # What `readStream.table(name)` gives when nothing is bound (None: a real stream).
        self.stream_source: Callable[[str], DataFrame | None] | None = None
        # True while the runner calls a flow only to learn what it reads.
        self.learning = False
        # What reading a pipeline view gives (its query, its expectations applied); None
        # for a name that is not a view. Views are never catalog objects here.
        self.view_source: Callable[[str], DataFrame | None] | None = None

    def view(self, name: str) -> DataFrame | None:
        return None if self.view_source is None else self.view_source(name)

    @contextlib.contextmanager
    def bind(self, frames: dict[str, DataFrame]) -> Iterator[None]:
        """While open, `readStream.table(name)` returns `frames[name]` (the rows to process)."""
        saved = dict(self.bound)
        self.bound.update(frames)
        try:
            yield
        finally:
            self.bound = saved

    def check(self, name: str) -> None:
        if self.check_read is not None:
            self.check_read(name)

    @property
    def readStream(self) -> _StreamReader:  # noqa: N802 - mirrors SparkSession
        return _StreamReader(self)

    @property
    def read(self) -> _BatchReader:
        return _BatchReader(self)

    def table(self, name: str) -> DataFrame:
        return self.read.table(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@contextlib.contextmanager
def pipelines_api_bound() -> Iterator[None]:
    """Make `from pyspark import pipelines as dp` give the local API, then restore."""
    saved_module = sys.modules.get("pyspark.pipelines")
    saved_attr = pyspark.__dict__.get("pipelines")
    sys.modules["pyspark.pipelines"] = api  # type: ignore[assignment]
    pyspark.pipelines = api  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if saved_module is None:
            sys.modules.pop("pyspark.pipelines", None)
        else:
            sys.modules["pyspark.pipelines"] = saved_module
        if saved_attr is None:
            pyspark.__dict__.pop("pipelines", None)
        else:
            pyspark.pipelines = saved_attr  # type: ignore[attr-defined]


def load_definitions(files: Sequence[Path], spark: LocalSparkSession) -> PipelineGraph:
    """Run each definition file once and return the graph they declared."""
    if not files:
        raise DefinitionError("no pipeline definition files found")
    graph = PipelineGraph()
    token = api._ACTIVE.set(graph)
    try:
        with pipelines_api_bound():
            for path in files:
                graph.loading = str(path)
                kill_point("definitions_loading")
                try:
                    runpy.run_path(str(path), init_globals={"spark": spark}, run_name=path.stem)
                except Exception as exc:
                    raise DefinitionError(f"{path}: {type(exc).__name__}: {exc}") from exc
    finally:
        api._ACTIVE.reset(token)
        graph.loading = None
    graph.validate()
    return graph
